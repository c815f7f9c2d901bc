//! Faults on demand: answer the next N requests with an error status (429 and 503 carry
//! `Retry-After`), optionally only for a path prefix or an HTTP method; delay responses;
//! end watch streams after N events and followed log streams after N bytes. Rules are
//! consumed as they fire, compose (a request can be delayed and then failed), and
//! [`Faults::reset`] forgets them all. [`Faults::unreachable_for`] takes the whole API away
//! for a while: open connections are cut and new ones closed as soon as they are accepted,
//! as a client sees an API server that is down or a network that is partitioned.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

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
    /// No connection is served before this.
    unreachable_until: Option<Instant>,
}

/// The fault plan of one cluster.
pub struct Faults {
    state: Mutex<State>,
    /// Bumped when an outage begins, so that open connections end.
    outages: tokio::sync::watch::Sender<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self { state: Mutex::default(), outages: tokio::sync::watch::Sender::new(0) }
    }
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

    /// The API is unreachable for `duration` from now: open connections are cut at once,
    /// and connections made before it is over are closed unanswered.
    pub fn unreachable_for(&self, duration: Duration) {
        let mut state = self.lock();
        state.unreachable_until = Some(Instant::now() + duration);
        self.outages.send_modify(|n| *n += 1);
    }

    /// Whether a connection accepted now is to be dropped unanswered.
    pub fn unreachable(&self) -> bool {
        let mut state = self.lock();
        match state.unreachable_until {
            Some(until) if Instant::now() < until => {
                state.fired += 1;
                true
            }
            Some(_) => {
                state.unreachable_until = None;
                false
            }
            None => false,
        }
    }

    /// Changes when an outage begins; open connections end then.
    pub fn outages(&self) -> tokio::sync::watch::Receiver<u64> {
        self.outages.subscribe()
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

    #[test]
    fn an_outage_ends_open_connections_and_is_over_after_its_time() {
        let f = Faults::default();
        let mut outages = f.outages();
        assert!(!f.unreachable());
        f.unreachable_for(Duration::from_millis(50));
        assert!(outages.has_changed().unwrap(), "open connections are told");
        outages.mark_unchanged();
        assert!(f.unreachable());
        std::thread::sleep(Duration::from_millis(60));
        assert!(!f.unreachable());
    }
}
