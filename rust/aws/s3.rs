//! S3: the build context's upload (streaming multipart), presigned GET URLs,
//! and clean-up.
