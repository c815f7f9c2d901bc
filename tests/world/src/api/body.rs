//! Request bodies in (JSON, YAML, protobuf) and responses out (JSON, Status errors, streams).

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::{Response, StatusCode, header};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::{ApiError, ApiResult};

/// The response body type.
pub type Body = BoxBody<Bytes, Infallible>;

/// Decodes a request body by its Content-Type.
pub fn decode(content_type: &str, bytes: &[u8]) -> ApiResult<Value> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    match mime {
        "application/vnd.kubernetes.protobuf" => crate::protobuf::decode(bytes),
        "application/yaml" | "application/apply-patch+yaml" | "application/x-yaml" | "text/yaml" => {
            serde_saphyr::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
        }
        ""
        | "application/json"
        | "application/json-patch+json"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json"
        | "*/*" => {
            serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))
        }
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// A JSON response.
pub fn json(status: u16, value: &Value) -> Response<Body> {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() = code;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

/// `response` with one `Warning: 299 - "…"` header per warning, as the API server sends them.
pub fn with_warnings(mut response: Response<Body>, warnings: &[String]) -> Response<Body> {
    for warning in warnings {
        let quoted = serde_json::to_string(warning).unwrap_or_default();
        if let Ok(value) = header::HeaderValue::from_str(&format!("299 - {quoted}")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

/// A Status error response.
pub fn error(err: &ApiError) -> Response<Body> {
    let mut response = json(err.code, &err.to_status());
    if err.code == 429 || err.code == 503 {
        response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

/// A plain-text response.
pub fn text(status: u16, body: &str) -> Response<Body> {
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// A streamed (chunked) response fed by the returned sender; it ends when the sender drops.
pub fn stream(content_type: &'static str) -> (mpsc::Sender<Bytes>, Response<Body>) {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let frames = tokio_stream::StreamExt::map(ReceiverStream::new(rx), |chunk| Ok::<_, Infallible>(Frame::data(chunk)));
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(frames)));
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache, private"));
    (tx, response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_json_and_yaml_and_refuses_unknown() {
        assert_eq!(decode("application/json", br#"{"a":1}"#).expect("json")["a"], 1);
        assert_eq!(decode("application/apply-patch+yaml", b"a: 1\n").expect("yaml")["a"], 1);
        assert_eq!(decode("text/html", b"x").err().map(|e| e.code), Some(415));
        assert_eq!(decode("application/json", b"{").err().map(|e| e.code), Some(400));
    }
}
