//! The agent pool (deploy/): the azure-agent chart rendered, linted and
//! installed with helm 3 and 4, its manifests checked for least privilege and
//! for the PAT, its objects by @kubernetes-models/keda, KEDA's rules per release
//! (keda_facts.py) and kubernetes-validate, its trigger
//! as KEDA's scaler reads it, its RBAC tried with the agent's own token, and the agent
//! image's start.sh run against a fake Azure DevOps; docs/getting-started.md
//! command by command, and the names the docs mention.

mod support;

mod chart;
mod docs;
mod guide;
mod install;
mod manifests;
mod rbac;
mod scaler;
mod start_script;
mod validators;
