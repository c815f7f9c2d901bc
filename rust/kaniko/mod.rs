//! kaniko: image references, the executor's arguments and its pod, as pure
//! functions of a resolved build (golden-tested; no I/O here).

pub mod args;
pub mod pod;
pub mod reference;
