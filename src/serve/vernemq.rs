//! VerneMQ's webhooks for authentication and authorization, answered from the policy.
//!
//! Source: VerneMQ documentation, "Webhooks" (docs.vernemq.com/plugin-development/webhookplugins):
//! every hook is a `POST` to the registered endpoint naming the hook in the `vernemq-hook` header,
//! with a JSON body, answered `200` with `{"result": "ok"}`, `{"result": {"error": "..."}}` or
//! `{"result": "next"}`; a positive answer may carry `cache-control: max-age=SECONDS`.
//!
//! All six authorization hooks are answered at `POST /vernemq`:
//!
//! * `auth_on_register`, `auth_on_register_m5`: the password checked against the password file;
//!   `{"result": {"error": "not_allowed"}}` whatever the reason (an unknown user and a wrong password
//!   look the same).
//! * `auth_on_publish`, `auth_on_publish_m5`: a write to `topic`.
//! * `auth_on_subscribe`, `auth_on_subscribe_m5`: each filter of `topics` as `--subscribe` says
//!   (VerneMQ does not check deliveries); when some are refused, the answer lists every filter with
//!   its granted QoS, or `128` (`135`, "not authorized", for `_m5`) for a refused one.
//!
//! `mountpoint` is not applied (the policy has none; register hooks with an empty mountpoint).
//! `Cache-Control: max-age` is sent on positive answers only with `serve --cache-max-age`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::input::{self, nullable, Reject};
use super::AppState;
use crate::audit::Peer;
use crate::policy::{Access, ClientRef};

/// `/vernemq`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/vernemq", post(hook))
}

#[derive(Deserialize)]
struct Register {
    #[serde(default)]
    peer_addr: Option<String>,
    #[serde(deserialize_with = "nullable")]
    username: Option<String>,
    #[serde(deserialize_with = "nullable")]
    password: Option<String>,
    client_id: String,
}

#[derive(Deserialize)]
struct Publish {
    #[serde(deserialize_with = "nullable")]
    username: Option<String>,
    client_id: String,
    topic: String,
}

#[derive(Deserialize)]
struct Subscribe {
    #[serde(deserialize_with = "nullable")]
    username: Option<String>,
    client_id: String,
    topics: Vec<Filter>,
}

#[derive(Deserialize)]
struct Filter {
    topic: String,
    qos: i64,
}

async fn hook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    let Some(name) = headers.get("vernemq-hook") else {
        return Err(Reject::bad("no vernemq-hook header: which hook is this?"));
    };
    let name = name.to_str().unwrap_or_default();
    let m5 = name.ends_with("_m5");
    let (allowed, answer) = match name.trim_end_matches("_m5") {
        "auth_on_register" => register(&state, input::json(&body)?).await,
        "auth_on_publish" => publish(&state, input::json(&body)?),
        "auth_on_subscribe" => subscribe(&state, input::json(&body)?, m5),
        _ => {
            return Err(Reject::bad(format!(
                "vernemq-hook {name:?}: expected auth_on_register, auth_on_publish or auth_on_subscribe (or their _m5 variants)"
            )))
        }
    };
    let mut response = Json(answer).into_response();
    if let (true, Some(age)) = (allowed, state.cache_max_age()) {
        if let Ok(v) = HeaderValue::from_str(&format!("max-age={age}")) {
            response.headers_mut().insert(header::CACHE_CONTROL, v);
        }
    }
    Ok(response)
}

fn ok() -> Value {
    json!({ "result": "ok" })
}

fn not_allowed() -> Value {
    json!({ "result": { "error": "not_allowed" } })
}

async fn register(state: &AppState, req: Register) -> (bool, Value) {
    let loaded = state.live().current();
    let peer = Peer {
        username: req.username.as_deref(),
        client_id: Some(&req.client_id),
        address: req.peer_addr.as_deref(),
    };
    let refused = state
        .authorizer()
        .login(&loaded, peer, req.password.as_deref().map(str::as_bytes))
        .await;
    match refused {
        None => (true, ok()),
        Some(_) => (false, not_allowed()),
    }
}

fn publish(state: &AppState, req: Publish) -> (bool, Value) {
    let loaded = state.live().current();
    let client = ClientRef::from_names(req.username.as_deref(), Some(&req.client_id));
    let d = state
        .authorizer()
        .decide(&loaded, client, &req.topic, Access::Write, None);
    if d.is_allowed() {
        (true, ok())
    } else {
        (false, not_allowed())
    }
}

fn subscribe(state: &AppState, req: Subscribe, m5: bool) -> (bool, Value) {
    let loaded = state.live().current();
    let client = ClientRef::from_names(req.username.as_deref(), Some(&req.client_id));
    let refused = if m5 { 135 } else { 128 };
    let mode = state.subscribe_mode();
    let answers: Vec<(String, i64, bool)> = req
        .topics
        .into_iter()
        .map(|f| {
            let d = state
                .authorizer()
                .subscribe(&loaded, client, &f.topic, mode, None);
            (f.topic, f.qos, d.is_allowed())
        })
        .collect();
    if answers.iter().all(|(_, _, ok)| *ok) {
        return (true, ok());
    }
    let topics: Vec<Value> = answers
        .into_iter()
        .map(|(topic, qos, ok)| json!({ "topic": topic, "qos": if ok { qos } else { refused } }))
        .collect();
    (false, json!({ "result": "ok", "topics": topics }))
}
