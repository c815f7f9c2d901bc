//! End-to-end tests of the agent contract: each runs the real binary through
//! the real launcher (`node run.js`), the way the Azure Pipelines agent does,
//! and reads its output with the agent's grammar (the `azp-harness` crate).

mod contract;
mod inputs_stay_in_sync;
mod layers;
mod migration;
mod readme;
mod schema;
mod tasks;
mod vsix;

use std::path::Path;

use azp_harness::{StagedTask, TaskRun};

/// The azp-kube binary that cargo built for these tests.
pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_azp-kube"))
}

/// A task folder from the repository, with the test build of the binary.
pub fn staged(folder: &str) -> StagedTask {
    StagedTask::new(folder, binary())
}

/// A run of a staged task.
pub fn run_of(task: &StagedTask) -> TaskRun {
    TaskRun::new(task.path())
}
