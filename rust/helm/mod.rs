//! helm: detecting Helm 3 or 4, building its arguments, running it, reading
//! the release back.
//!
//! Argument lists are built by pure functions (golden-tested); the runner is
//! the only place that starts helm.

pub mod args;
pub mod diff;
pub mod registry;
pub mod release;
pub mod runner;
pub mod values;
pub mod words;

pub use args::{ChartRef, Major, Upgrade};
pub use release::Release;
pub use runner::{Helm, Stdout};
