//! The agent pool chart and image (deploy/): tests come with issue 7.
