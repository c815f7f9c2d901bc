//! Kubernetes `Status` errors, shaped like the real API server's (code, reason, message, details),
//! so that clients map them to the same error kinds (`IsNotFound`, `IsConflict`, ...).

use serde_json::{Value, json};

/// An API error that becomes a `Status` object in the response body.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The HTTP status code (also the Status `code`).
    pub code: u16,
    /// The Status `reason` (`NotFound`, `Conflict`, ...).
    pub reason: &'static str,
    /// The human-readable message, worded like the real API's.
    pub message: String,
    /// The Status `details`, when the real API sends them.
    pub details: Option<Value>,
}

/// A resource named the way Status messages and details name it: `pods`, `deployments.apps`.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// API group; empty for core.
    pub group: &'a str,
    /// Plural resource name.
    pub plural: &'a str,
}

impl Target<'_> {
    fn qualified(&self) -> String {
        if self.group.is_empty() { self.plural.to_string() } else { format!("{}.{}", self.plural, self.group) }
    }

    fn details(&self, name: &str) -> Value {
        let mut details = json!({ "name": name, "kind": self.plural });
        if !self.group.is_empty() {
            details["group"] = json!(self.group);
        }
        details
    }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self { code, reason, message: message.into(), details: None }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 404 for a named object.
    pub fn not_found(target: Target<'_>, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{} \"{name}\" not found", target.qualified()))
            .with_details(target.details(name))
    }

    /// 404 for a path that names nothing.
    pub fn no_route(path: &str) -> Self {
        Self::new(404, "NotFound", format!("the server could not find the requested resource ({path})"))
    }

    /// 409 when creating an object whose name is taken.
    pub fn already_exists(target: Target<'_>, name: &str) -> Self {
        Self::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", target.qualified()))
            .with_details(target.details(name))
    }

    /// 409 on an update with a stale resourceVersion.
    pub fn conflict(target: Target<'_>, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                target.qualified()
            ),
        )
        .with_details(target.details(name))
    }

    /// 422 with one cause per invalid field.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: &[(String, String)]) -> Self {
        let text: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        let causes: Vec<Value> = causes
            .iter()
            .map(|(field, message)| json!({"reason": "FieldValueInvalid", "message": message, "field": field}))
            .collect();
        let mut details = json!({ "name": name, "kind": kind, "causes": causes });
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        let text = if text.len() == 1 { text[0].clone() } else { format!("[{}]", text.join(", ")) };
        Self::new(422, "Invalid", format!("{kind} \"{name}\" is invalid: {text}")).with_details(details)
    }

    /// 400 for a malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 401 for a missing or unknown credential.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 with the message the real authorizer produces.
    pub fn forbidden(message: impl Into<String>, target: Option<Target<'_>>, name: &str) -> Self {
        let err = Self::new(403, "Forbidden", message);
        match target {
            Some(t) => err.with_details(t.details(name)),
            None => err,
        }
    }

    /// 405 for a verb the resource does not support.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 410 for a watch or list from a resourceVersion that is no longer kept.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(410, "Expired", format!("too old resource version: {requested} ({oldest})"))
    }

    /// 415 for a body type the server cannot decode.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type})"
            ),
        )
    }

    /// 422 for a JSON patch that does not apply.
    pub fn invalid_patch(message: &str) -> Self {
        Self::new(422, "Invalid", format!("the server rejected our request due to an error in our request: {message}"))
    }

    /// 429, as sent by API priority and fairness.
    pub fn too_many_requests() -> Self {
        Self::new(429, "TooManyRequests", "Too many requests, please try again later.")
            .with_details(json!({ "retryAfterSeconds": 1 }))
    }

    /// 503, as an overloaded or restarting API server answers.
    pub fn service_unavailable() -> Self {
        Self::new(503, "ServiceUnavailable", "the server is currently unable to handle the request")
            .with_details(json!({ "retryAfterSeconds": 1 }))
    }

    /// An injected fault with this status code.
    pub fn injected(code: u16) -> Self {
        match code {
            429 => Self::too_many_requests(),
            503 => Self::service_unavailable(),
            500 => {
                Self::internal("an error on the server (\"injected fault\") has prevented the request from succeeding")
            }
            other => Self::new(other, "InternalError", format!("injected fault {other}")),
        }
    }

    /// 500 for a server-side fault.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// The `Status` object for a response body or a watch ERROR event.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// Result of an API operation.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_group() {
        let err = ApiError::not_found(Target { group: "apps", plural: "deployments" }, "web");
        assert_eq!(err.message, "deployments.apps \"web\" not found");
        assert_eq!(err.to_status()["details"]["group"], "apps");
    }

    #[test]
    fn invalid_lists_causes() {
        let err = ApiError::invalid("Pod", "", "p", &[("metadata.name".into(), "Required value".into())]);
        assert_eq!(err.message, "Pod \"p\" is invalid: metadata.name: Required value");
        assert_eq!(err.code, 422);
    }
}
