//! KanikoBuild@1 end to end: the task runs through run.js as the agent runs
//! it, against the simulated cluster and moto's S3.
//!
//! Until the world's kaniko runtime builds images for real, the pods here
//! run scripted containers that print a log and report a digest as kaniko
//! does (the termination message); each test picks its own kaniko image so
//! tests can run in parallel on one shared world.

mod support;

mod aws_faults;
mod failures;
mod faults;
mod fidelity;
mod ground_truth;
mod load;
mod pod_secrets;
mod proxy;
mod real_builds;
mod tenant;
mod transports;
