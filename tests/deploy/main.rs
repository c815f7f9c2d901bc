//! The agent pool (deploy/): the azure-agent chart rendered, linted and
//! installed with helm 3 and 4, its manifests checked for least privilege and
//! for the PAT, its RBAC tried with the agent's own token, and the agent
//! image's start.sh run against a fake Azure DevOps.

mod support;

mod chart;
mod install;
mod manifests;
mod rbac;
mod start_script;
