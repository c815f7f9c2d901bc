//! Pure builders of pod status fields (container states, conditions), shaped like kubelet's.

use serde_json::{Value, json};

use super::runtime::ContainerExit;

/// `state.waiting`.
pub fn waiting(reason: &str, message: Option<&str>) -> Value {
    let mut state = json!({"waiting": {"reason": reason}});
    if let Some(message) = message {
        state["waiting"]["message"] = json!(message);
    }
    state
}

/// `state.running`.
pub fn running(started_at: &str) -> Value {
    json!({"running": {"startedAt": started_at}})
}

/// `state.terminated` for an exit.
pub fn terminated(exit: &ContainerExit, started_at: &str, container_id: &str) -> Value {
    let reason =
        exit.reason.clone().unwrap_or_else(|| if exit.exit_code == 0 { "Completed".into() } else { "Error".into() });
    let mut state = json!({"terminated": {
        "exitCode": exit.exit_code, "reason": reason, "startedAt": started_at,
        "finishedAt": crate::store::now(), "containerID": container_id,
    }});
    if let Some(message) = exit.message.as_deref().filter(|m| !m.is_empty()) {
        state["terminated"]["message"] = json!(message);
    }
    state
}

/// A fresh container status in the given state.
pub fn container_status(container: &Value, state: Value) -> Value {
    let image = container["image"].as_str().unwrap_or_default();
    json!({
        "name": container["name"], "image": image, "imageID": "", "ready": false, "started": false,
        "restartCount": 0, "state": state,
    })
}

/// A pod condition.
pub fn condition(kind: &str, status: &str, reason: Option<&str>, message: Option<&str>) -> Value {
    let mut c =
        json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": crate::store::now()});
    if let Some(reason) = reason {
        c["reason"] = json!(reason);
    }
    if let Some(message) = message {
        c["message"] = json!(message);
    }
    c
}

/// Sets (or replaces) a condition in `status.conditions`.
pub fn set_condition(status: &mut Value, cond: Value) {
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    if let Some(list) = status["conditions"].as_array_mut() {
        list.retain(|c| c["type"] != cond["type"]);
        list.push(cond);
    }
}

/// The status entry of one container in `containerStatuses` or `initContainerStatuses`.
pub fn container_mut<'a>(status: &'a mut Value, list: &str, name: &str) -> Option<&'a mut Value> {
    status[list].as_array_mut()?.iter_mut().find(|c| c["name"] == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminated_reason_follows_exit_code() {
        let ok = terminated(&ContainerExit::code(0), "t", "id");
        assert_eq!(ok["terminated"]["reason"], "Completed");
        let oom = ContainerExit { exit_code: 137, reason: Some("OOMKilled".into()), message: Some("m".into()) };
        let state = terminated(&oom, "t", "id");
        assert_eq!(state["terminated"]["reason"], "OOMKilled");
        assert_eq!(state["terminated"]["message"], "m");
    }

    #[test]
    fn conditions_replace_by_type() {
        let mut status = json!({});
        set_condition(&mut status, condition("Ready", "False", None, None));
        set_condition(&mut status, condition("Ready", "True", None, None));
        assert_eq!(status["conditions"].as_array().map(Vec::len), Some(1));
        assert_eq!(status["conditions"][0]["status"], "True");
    }
}
