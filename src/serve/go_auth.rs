//! mosquitto-go-auth's HTTP backend, answered from the policy, so that a Mosquitto running go-auth
//! switches by pointing its `auth_opt_http_*_uri` options here.
//!
//! Source: iegomez/mosquitto-go-auth, README.md ("HTTP" backend) and `backends/http.go`: `POST`
//! with a JSON body (`auth_opt_http_params_mode json`, the default) or a form (`form`); a status
//! outside 2xx refuses; with `auth_opt_http_response_mode json` the body `{"Ok": bool, "Error":
//! string}` decides, with `text` the body `ok`.
//!
//! * `/go-auth/user` (`username`, `password`, `clientid`): the password file decides.
//! * `/go-auth/superuser` (`username`): always refused (an acl_file has no superusers; go-auth then
//!   asks `/go-auth/acl`).
//! * `/go-auth/acl` (`username`, `clientid`, `topic`, `acc`: 1 read, 2 write, 3 both, 4 subscribe):
//!   exactly the plugin's decision. Mosquitto asks go-auth for every delivery (`acc` 1), so a
//!   subscription is answered as the plugin answers it (granted when some matching topic may be read).
//!
//! Allowed: `200` with `{"Ok": true, "Error": ""}` (or `ok` with `?response_mode=text` in the URI);
//! refused: `403` with `{"Ok": false, "Error": "denied"}` (or `denied`), the same for every reason.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use super::input::{self, Reject};
use super::AppState;
use crate::audit::Peer;
use crate::policy::{Access, ClientRef};

/// `/go-auth/{user,superuser,acl}`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/go-auth/user", post(user))
        .route("/go-auth/superuser", post(superuser))
        .route("/go-auth/acl", post(acl))
}

/// The answer in the response mode the URI's query asks for (`?response_mode=text`, else JSON).
fn answer(query: Option<&str>, allowed: bool) -> Response {
    let text = query.is_some_and(|q| q.split('&').any(|kv| kv == "response_mode=text"));
    let status = if allowed {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    };
    match (text, allowed) {
        (true, true) => (status, "ok").into_response(),
        (true, false) => (status, "denied").into_response(),
        (false, _) => (
            status,
            axum::Json(json!({ "Ok": allowed, "Error": if allowed { "" } else { "denied" } })),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct User {
    username: String,
    password: String,
    clientid: String,
}

async fn user(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    let req: User = input::by_content_type(&headers, &body)?;
    let loaded = state.live().current();
    let peer = Peer {
        username: input::non_empty(Some(&req.username)),
        client_id: Some(&req.clientid),
        address: None,
    };
    let refused = state
        .authorizer()
        .login(&loaded, peer, Some(req.password.as_bytes()))
        .await;
    Ok(answer(query.as_deref(), refused.is_none()))
}

#[derive(Deserialize)]
struct Superuser {
    #[allow(dead_code)]
    username: String,
}

async fn superuser(
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    let _: Superuser = input::by_content_type(&headers, &body)?;
    Ok(answer(query.as_deref(), false))
}

#[derive(Deserialize)]
struct Acl {
    username: String,
    clientid: String,
    topic: String,
    #[serde(deserialize_with = "acc")]
    acc: i64,
}

/// `acc` as JSON sends it (a number) or a form (a string of digits).
fn acc<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Acc {
        N(i64),
        S(String),
    }
    match Acc::deserialize(d)? {
        Acc::N(n) => Ok(n),
        Acc::S(s) => s
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("acc {s:?}: expected a number"))),
    }
}

async fn acl(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    let req: Acl = input::by_content_type(&headers, &body)?;
    let accesses: &[Access] = match req.acc {
        1 => &[Access::Read],
        2 => &[Access::Write],
        3 => &[Access::Read, Access::Write],
        4 => &[Access::Subscribe],
        n => {
            return Err(Reject::bad(format!(
                "acc {n}: expected 1 (read), 2 (write), 3 (read and write) or 4 (subscribe)"
            )))
        }
    };
    let client = ClientRef::from_names(input::non_empty(Some(&req.username)), Some(&req.clientid));
    let loaded = state.live().current();
    let authorizer = state.authorizer();
    let allowed = accesses.iter().all(|&a| {
        authorizer
            .decide(&loaded, client, &req.topic, a, None)
            .is_allowed()
    });
    Ok(answer(query.as_deref(), allowed))
}
