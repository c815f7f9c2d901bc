//! Per-image pod behaviours: which runtime runs a container, or which failure the world
//! shows instead (image pull errors, unschedulable pods, eviction, a lost node).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::runtime::{ContainerRuntime, ScriptRuntime};

/// What happens to a pod whose container uses an image.
#[derive(Clone)]
pub enum Behaviour {
    /// The container runs in this runtime.
    Run(Arc<dyn ContainerRuntime>),
    /// Pulling the image fails (ErrImagePull, then ImagePullBackOff).
    PullError {
        /// The pull error message.
        message: String,
    },
    /// The scheduler finds no node (PodScheduled=False, reason Unschedulable).
    Unschedulable {
        /// The scheduler's message.
        message: String,
    },
    /// The pod runs, then is evicted (phase Failed, reason Evicted).
    Evicted {
        /// Time until eviction.
        after: Duration,
        /// The eviction message.
        message: String,
    },
    /// The pod runs, then its node stops reporting (phase Unknown, reason NodeLost).
    NodeLost {
        /// Time until the node is lost.
        after: Duration,
    },
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Behaviour::Run(_) => f.write_str("Run(..)"),
            Behaviour::PullError { message } => write!(f, "PullError({message})"),
            Behaviour::Unschedulable { message } => write!(f, "Unschedulable({message})"),
            Behaviour::Evicted { after, .. } => write!(f, "Evicted(after {after:?})"),
            Behaviour::NodeLost { after } => write!(f, "NodeLost(after {after:?})"),
        }
    }
}

impl Behaviour {
    /// Prints `lines`, then exits with `exit_code` once `after` has passed.
    pub fn exit(lines: &[&str], exit_code: i32, after: Duration) -> Self {
        Self::script(ScriptRuntime {
            lines: lines.iter().map(|l| l.to_string()).collect(),
            exit_code,
            after,
            ..Default::default()
        })
    }

    /// Like [`Behaviour::exit`], and writes a termination message.
    pub fn exit_with_message(lines: &[&str], exit_code: i32, after: Duration, message: &str) -> Self {
        Self::script(ScriptRuntime {
            lines: lines.iter().map(|l| l.to_string()).collect(),
            exit_code,
            after,
            message: Some(message.to_string()),
            ..Default::default()
        })
    }

    /// Prints `lines`, then runs until the pod is deleted.
    pub fn serve(lines: &[&str]) -> Self {
        Self::script(ScriptRuntime {
            lines: lines.iter().map(|l| l.to_string()).collect(),
            forever: true,
            ..Default::default()
        })
    }

    /// Runs for `after`, then is killed for exceeding its memory limit.
    pub fn oom_killed(after: Duration) -> Self {
        Self::script(ScriptRuntime { exit_code: 137, after, reason: Some("OOMKilled".into()), ..Default::default() })
    }

    /// The image cannot be pulled.
    pub fn pull_error() -> Self {
        Self::PullError { message: "failed to pull and unpack image: failed to resolve reference: not found".into() }
    }

    /// No node fits the pod.
    pub fn unschedulable(message: &str) -> Self {
        Self::Unschedulable { message: message.into() }
    }

    /// The pod is evicted after `after`.
    pub fn evicted(after: Duration) -> Self {
        Self::Evicted { after, message: "The node was low on resource: memory. ".into() }
    }

    /// The pod's node is lost after `after`.
    pub fn node_lost(after: Duration) -> Self {
        Self::NodeLost { after }
    }

    /// A custom runtime.
    pub fn runtime(runtime: Arc<dyn ContainerRuntime>) -> Self {
        Self::Run(runtime)
    }

    fn script(script: ScriptRuntime) -> Self {
        Self::Run(Arc::new(script))
    }
}

/// Behaviours chosen by image. A rule matches the image exactly or its repository
/// (the image without tag or digest). Later rules win.
#[derive(Default)]
pub struct Behaviours {
    rules: RwLock<Vec<(String, Behaviour)>>,
    defaults: RwLock<Vec<DefaultRule>>,
}

/// A behaviour chosen by a predicate on the image when no rule names it (kaniko executors).
pub type DefaultRule = Arc<dyn Fn(&str) -> Option<Behaviour> + Send + Sync>;

impl Behaviours {
    /// Sets the behaviour of an image (or of every tag of a repository).
    pub fn set(&self, image: &str, behaviour: Behaviour) {
        let mut rules = self.rules.write().unwrap_or_else(|e| e.into_inner());
        rules.retain(|(i, _)| i != image);
        rules.push((image.to_string(), behaviour));
    }

    /// Adds a default for images no rule names (asked before the built-in defaults).
    pub fn add_default(&self, rule: DefaultRule) {
        self.defaults.write().unwrap_or_else(|e| e.into_inner()).push(rule);
    }

    /// Forgets every rule.
    pub fn clear(&self) {
        self.rules.write().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The behaviour for an image. Without a rule, containers of pods that restart `Always`
    /// run until deleted, and others exit 0 after a moment.
    pub fn for_image(&self, image: &str, restart_policy: &str) -> Behaviour {
        let repository = repository(image);
        let rules = self.rules.read().unwrap_or_else(|e| e.into_inner());
        let found = rules.iter().rev().find(|(rule, _)| rule == image || rule == repository);
        match found {
            Some((_, behaviour)) => behaviour.clone(),
            None if let Some(b) =
                self.defaults.read().unwrap_or_else(|e| e.into_inner()).iter().find_map(|rule| rule(image)) =>
            {
                b
            }
            None if restart_policy == "Always" => Behaviour::serve(&[]),
            None => Behaviour::exit(&[], 0, Duration::from_millis(100)),
        }
    }
}

/// The image without its tag or digest.
pub fn repository(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => without_digest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_image_or_repository() {
        let b = Behaviours::default();
        b.set("registry:5000/app", Behaviour::pull_error());
        assert!(matches!(b.for_image("registry:5000/app:1.2", "Never"), Behaviour::PullError { .. }));
        assert!(matches!(b.for_image("registry:5000/other:1", "Never"), Behaviour::Run(_)));
        assert_eq!(repository("localhost:5000/a/b@sha256:00"), "localhost:5000/a/b");
        assert_eq!(repository("localhost:5000/a"), "localhost:5000/a");
    }
}
