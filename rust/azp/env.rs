//! The process environment as the agent sets it, read in one place.
//!
//! Tests and the command line build an `Env` from a map instead, so every
//! reader of `INPUT_*` and friends goes through here (as rustup's `Process`).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// A snapshot of environment variables.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The current process environment (non-UTF-8 values are converted lossily).
    pub fn from_process() -> Self {
        let vars = std::env::vars_os()
            .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()))
            .collect();
        Self { vars }
    }

    /// An environment made of exactly these variables.
    pub fn from_vars<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        Self { vars: vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// This environment with some variables replaced.
    pub fn with(mut self, overrides: impl IntoIterator<Item = (String, String)>) -> Self {
        self.vars.extend(overrides);
        self
    }

    /// The names of every variable, for passing a filtered environment on.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }

    /// A variable's value; unset and empty are the same thing.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// A switch the tests set (a fixed clock, short waits). Only debug builds,
    /// which `cargo test` runs, read them: the release binary that the VSIX
    /// ships has none, so no pipeline variable can change its behaviour.
    #[cfg(debug_assertions)]
    pub fn test_switch(&self, name: &str) -> Option<&str> {
        self.var(name)
    }

    /// Release builds have no test switches.
    #[cfg(not(debug_assertions))]
    pub fn test_switch(&self, _name: &str) -> Option<&str> {
        None
    }

    /// A test switch holding whole seconds; any other value is a broken test,
    /// which stops here rather than running with the default.
    pub fn test_seconds(&self, name: &str) -> Option<std::time::Duration> {
        let text = self.test_switch(name)?;
        match text.trim().parse::<u64>() {
            Ok(seconds) => Some(std::time::Duration::from_secs(seconds)),
            Err(_) => panic!("test switch {name}={text:?} is not whole seconds"),
        }
    }

    /// A variable's value even when it is empty (`None` only when unset).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Whether a variable holds `true` (case-insensitive), as the agent's booleans.
    pub fn flag(&self, name: &str) -> bool {
        self.var(name).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }

    /// The values of the pipeline's secret variables: the agent passes each
    /// to a Node handler's process as `SECRET_<NAME>`.
    pub fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.vars
            .iter()
            .filter(|(name, value)| name.starts_with("SECRET_") && !value.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Run by the agent (`TF_BUILD` is set), rather than from a terminal.
    pub fn under_agent(&self) -> bool {
        self.var("TF_BUILD").is_some()
    }

    /// `System.Debug` is on.
    pub fn system_debug(&self) -> bool {
        self.flag("SYSTEM_DEBUG")
    }

    /// The agent's temp directory, emptied at the start of every job.
    pub fn temp_dir(&self) -> PathBuf {
        self.var("AGENT_TEMPDIRECTORY").map(PathBuf::from).unwrap_or_else(std::env::temp_dir)
    }

    /// The directories an empty filePath input is rooted at.
    pub fn default_directories(&self) -> impl Iterator<Item = &str> {
        ["BUILD_SOURCESDIRECTORY", "SYSTEM_DEFAULTWORKINGDIRECTORY"].into_iter().filter_map(|n| self.var(n))
    }
}

/// The agent's mangling of a name into an environment variable name: `.` and
/// space become `_`, then upper case. `-` and `/` stay.
pub fn mangle(name: &str) -> String {
    name.chars().map(|c| if c == '.' || c == ' ' { '_' } else { c }).collect::<String>().to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mangling_follows_the_agent() {
        assert_eq!(mangle("buildContext"), "BUILDCONTEXT");
        assert_eq!(mangle("Build.SourcesDirectory"), "BUILD_SOURCESDIRECTORY");
        assert_eq!(mangle("my var.name"), "MY_VAR_NAME");
        assert_eq!(mangle("a-b/c"), "A-B/C");
    }

    #[test]
    fn empty_is_unset_but_raw_keeps_it() {
        let env = Env::from_vars([("A", ""), ("B", "x")]);
        assert_eq!(env.var("A"), None);
        assert_eq!(env.raw("A"), Some(""));
        assert_eq!(env.var("B"), Some("x"));
        assert_eq!(env.var("C"), None);
    }

    #[test]
    fn flags_are_case_insensitive_true_only() {
        let env = Env::from_vars([("A", "TRUE"), ("B", "True "), ("C", "yes"), ("D", "1")]);
        assert!(env.flag("A"));
        assert!(env.flag("B"));
        assert!(!env.flag("C"));
        assert!(!env.flag("D"));
    }
}
