//! The request bodies of the authorization contracts: JSON or form-encoded, limited in size, and a
//! clear `400 Bad Request` naming what is wrong (malformed JSON, a missing field) when they do not
//! parse. Oversized bodies are refused with `413` by the router's body limit ([`BODY_LIMIT`]).

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// The largest request body the contracts take (a login or a check is a few hundred bytes; a
/// VerneMQ `auth_on_publish` carries the message payload, base64-encoded, unless the hook is
/// registered with `no_payload`).
pub const BODY_LIMIT: usize = 256 * 1024;

/// A refused request: its status and why, answered as `{"error": "..."}`.
#[derive(Debug)]
pub struct Reject(pub StatusCode, pub String);

impl Reject {
    /// `400 Bad Request` saying `why`.
    pub fn bad(why: impl Into<String>) -> Reject {
        Reject(StatusCode::BAD_REQUEST, why.into())
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        (self.0, axum::Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

/// Parses a JSON body.
pub fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Reject> {
    serde_json::from_slice(body).map_err(|e| Reject::bad(format!("malformed JSON body: {e}")))
}

/// Parses a form-encoded body (or query string).
pub fn form<T: DeserializeOwned>(body: &[u8]) -> Result<T, Reject> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| Reject::bad(format!("malformed form-encoded request: {e}")))
}

/// Parses a body as its `Content-Type` says: form-encoded for
/// `application/x-www-form-urlencoded`, JSON otherwise.
pub fn by_content_type<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, Reject> {
    let is_form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        form(body)
    } else {
        json(body)
    }
}

/// For a field that must be present but may be `null` (serde lets a missing `Option` pass).
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

/// An empty string as "absent" (brokers send `""` for a client without a username).
pub fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}
