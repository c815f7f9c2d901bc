//! Hardening: bad input, hostile content, faults and secrets, as tables of
//! named cases. Each runs a task through run.js as the agent does.

mod bad_input;
mod ecr_secrets;
mod helm_isolation;
mod hostile;
mod kaniko_secrets;
mod oidc_secrets;
mod proxy_secrets;
mod secrets;
mod support;
