//! Faults on demand: answer the next N requests with an error status (429 and 503 carry
//! `Retry-After`), optionally only for a path prefix or an HTTP method; delay responses;
//! end watch streams after N events and followed log streams after N bytes. Rules are
//! consumed as they fire, compose (a request can be delayed and then failed), and
//! [`Faults::reset`] forgets them all.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Which requests a fault applies to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Only paths starting with this (e.g. `/api/v1/namespaces/ns/pods`).
    pub path_prefix: Option<String>,
    /// Only this HTTP method (`GET`, `POST`, ...).
    pub method: Option<String>,
}

impl Scope {
    /// Every request.
    pub fn all() -> Self {
        Self::default()
    }

    /// Requests whose path starts with `prefix`.
    pub fn path(prefix: &str) -> Self {
        Self { path_prefix: Some(prefix.into()), method: None }
    }

    /// Also restrict to one HTTP method.
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.path_prefix.as_ref().is_none_or(|p| path.starts_with(p.as_str()))
            && self.method.as_ref().is_none_or(|m| m.eq_ignore_ascii_case(method))
    }
}

#[derive(Debug, Clone)]
enum Action {
    Status(u16),
    Delay(Duration),
}

#[derive(Debug, Clone)]
struct Rule {
    action: Action,
    remaining: u32,
    scope: Scope,
}

/// What to do to one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Planned {
    /// Wait this long first.
    pub delay: Duration,
    /// Then answer with this status instead of serving.
    pub status: Option<u16>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    /// (events after which a watch ends, how many more watches)
    watches: Option<(usize, u32)>,
    /// (bytes after which a followed log ends, how many more streams)
    logs: Option<(usize, u32)>,
    fired: u64,
    /// Every request seen, for measuring how many calls a client makes.
    requests: u64,
}

/// The fault plan of one cluster.
#[derive(Default)]
pub struct Faults {
    state: Mutex<State>,
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answers the next `n` matching requests with `status` (429, 500, 503, ...).
    pub fn fail_next(&self, n: u32, status: u16, scope: Scope) {
        self.lock().rules.push(Rule { action: Action::Status(status), remaining: n, scope });
    }

    /// Delays the next `n` matching requests by `delay`.
    pub fn delay_next(&self, n: u32, delay: Duration, scope: Scope) {
        self.lock().rules.push(Rule { action: Action::Delay(delay), remaining: n, scope });
    }

    /// The next `streams` watch streams end after `events` events each.
    pub fn drop_watches_after(&self, events: usize, streams: u32) {
        self.lock().watches = Some((events, streams));
    }

    /// The next `streams` followed log streams end after `bytes` bytes each.
    pub fn drop_logs_after(&self, bytes: usize, streams: u32) {
        self.lock().logs = Some((bytes, streams));
    }

    /// Forgets every fault.
    pub fn reset(&self) {
        let mut state = self.lock();
        let (fired, requests) = (state.fired, state.requests);
        *state = State { fired, requests, ..State::default() };
    }

    /// How many faults have fired so far (requests failed or delayed, streams cut).
    pub fn fired(&self) -> u64 {
        self.lock().fired
    }

    /// How many API requests the simulator has answered (faults or not).
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// Consumes the rules that match a request; what to do to it.
    pub fn plan(&self, method: &str, path: &str) -> Planned {
        let mut state = self.lock();
        state.requests += 1;
        let mut planned = Planned::default();
        let mut fired = 0;
        for rule in state.rules.iter_mut().filter(|r| r.remaining > 0 && r.scope.matches(method, path)) {
            match rule.action {
                Action::Delay(d) => planned.delay += d,
                Action::Status(_) if planned.status.is_some() => continue,
                Action::Status(s) => planned.status = Some(s),
            }
            rule.remaining -= 1;
            fired += 1;
        }
        state.rules.retain(|r| r.remaining > 0);
        state.fired += fired;
        planned
    }

    /// For a new watch stream: after how many events it ends, if it is to be cut.
    pub fn watch_limit(&self) -> Option<usize> {
        take(&mut self.lock(), |s| &mut s.watches)
    }

    /// For a new followed log stream: after how many bytes it ends, if it is to be cut.
    pub fn log_limit(&self) -> Option<usize> {
        take(&mut self.lock(), |s| &mut s.logs)
    }
}

fn take(state: &mut State, slot: impl Fn(&mut State) -> &mut Option<(usize, u32)>) -> Option<usize> {
    let (limit, left) = (*slot(state))?;
    *slot(state) = (left > 1).then_some((limit, left - 1));
    state.fired += 1;
    Some(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_compose_and_are_consumed() {
        let f = Faults::default();
        f.fail_next(2, 503, Scope::path("/api/v1/namespaces/a").method("get"));
        f.delay_next(1, Duration::from_millis(5), Scope::all());
        assert_eq!(
            f.plan("GET", "/api/v1/namespaces/b/pods"),
            Planned { delay: Duration::from_millis(5), status: None }
        );
        assert_eq!(f.plan("POST", "/api/v1/namespaces/a/pods").status, None);
        assert_eq!(f.plan("GET", "/api/v1/namespaces/a/pods").status, Some(503));
        assert_eq!(f.plan("GET", "/api/v1/namespaces/a/pods").status, Some(503));
        assert_eq!(f.plan("GET", "/api/v1/namespaces/a/pods").status, None);
        f.drop_watches_after(3, 2);
        assert_eq!((f.watch_limit(), f.watch_limit(), f.watch_limit()), (Some(3), Some(3), None));
        f.drop_logs_after(10, 5);
        f.reset();
        assert_eq!(f.log_limit(), None);
    }
}
