//! RabbitMQ's HTTP authentication and authorization backend, as its MQTT plugin uses it, answered
//! from the policy.
//!
//! Source: RabbitMQ, `deps/rabbitmq_auth_backend_http/README.md` in rabbitmq/rabbitmq-server
//! (`auth_http.user_path`, `vhost_path`, `resource_path`, `topic_path`; `GET` with a query string, or
//! `POST` form-encoded with `auth_http.http_method = post`; answers `allow` or `deny` as plain text),
//! and the MQTT plugin's topic translation (`deps/rabbitmq_mqtt/src/rabbit_mqtt_util.erl`: an MQTT
//! topic's `/` becomes `.` and `+` becomes `*` in the AMQP routing key).
//!
//! * `/rabbitmq/user` (`username`, `password`): the password file decides; `deny` whatever the reason.
//! * `/rabbitmq/vhost` (`username`, `vhost`, `ip`): `allow` (the policy has no virtual hosts).
//! * `/rabbitmq/resource` (`username`, `vhost`, `resource`, `name`, `permission`): `allow` (the
//!   exchange and queues the MQTT plugin declares; topics are decided at `/rabbitmq/topic`).
//! * `/rabbitmq/topic` (`username`, `vhost`, `resource`, `name`, `permission`, `routing_key`, and the
//!   client id as `variable_map.client_id`): the routing key mapped back to an MQTT topic (`.` → `/`,
//!   `*` → `+`); `write` is a publish, `read` a subscription to that filter (RabbitMQ checks it once,
//!   at SUBSCRIBE: `--subscribe` applies).
//!
//! Lossy: RabbitMQ turns `/` into `.` but leaves a `.` inside an MQTT level as it is, so `a.b/c` and
//! `a/b/c` reach us as the same routing key `a.b.c` and are decided as `a/b/c`; a literal `*` in a
//! topic level is decided as `+`.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::Method;
use axum::routing::any;
use axum::Router;
use serde::Deserialize;

use super::input::{self, Reject};
use super::AppState;
use crate::audit::Peer;
use crate::policy::{Access, ClientRef};

/// `/rabbitmq/{user,vhost,resource,topic}`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rabbitmq/user", any(user))
        .route("/rabbitmq/vhost", any(vhost))
        .route("/rabbitmq/resource", any(resource))
        .route("/rabbitmq/topic", any(topic))
}

/// The parameters: the query string of a `GET`, the form-encoded body of a `POST`.
fn params<T: serde::de::DeserializeOwned>(
    method: &Method,
    query: Option<String>,
    body: &Bytes,
) -> Result<T, Reject> {
    if method == Method::GET {
        input::form(query.unwrap_or_default().as_bytes())
    } else if method == Method::POST {
        input::form(body)
    } else {
        Err(Reject(
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
            format!("{method}: expected GET or POST"),
        ))
    }
}

fn word(allowed: bool) -> &'static str {
    if allowed {
        "allow"
    } else {
        "deny"
    }
}

#[derive(Deserialize)]
struct User {
    username: String,
    password: String,
    #[serde(default)]
    client_id: Option<String>,
}

async fn user(
    State(state): State<AppState>,
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<&'static str, Reject> {
    let req: User = params(&method, query, &body)?;
    let loaded = state.live().current();
    let peer = Peer {
        username: Some(&req.username),
        client_id: req.client_id.as_deref(),
        address: None,
    };
    let refused = state
        .authorizer()
        .login(&loaded, peer, Some(req.password.as_bytes()))
        .await;
    Ok(word(refused.is_none()))
}

#[derive(Deserialize)]
struct Vhost {
    #[allow(dead_code)]
    username: String,
    #[allow(dead_code)]
    vhost: String,
}

async fn vhost(
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<&'static str, Reject> {
    let _: Vhost = params(&method, query, &body)?;
    Ok("allow")
}

#[derive(Deserialize)]
struct Resource {
    #[allow(dead_code)]
    username: String,
    #[allow(dead_code)]
    vhost: String,
    #[allow(dead_code)]
    resource: String,
    #[allow(dead_code)]
    name: String,
    #[allow(dead_code)]
    permission: String,
}

async fn resource(
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<&'static str, Reject> {
    let _: Resource = params(&method, query, &body)?;
    Ok("allow")
}

#[derive(Deserialize)]
struct Topic {
    username: String,
    permission: String,
    routing_key: String,
    #[serde(rename = "variable_map.client_id", default)]
    variable_client_id: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
}

async fn topic(
    State(state): State<AppState>,
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<&'static str, Reject> {
    let req: Topic = params(&method, query, &body)?;
    let mqtt = to_mqtt(&req.routing_key);
    let client_id = req
        .variable_client_id
        .as_deref()
        .or(req.client_id.as_deref())
        .unwrap_or("");
    let client = ClientRef::from_names(Some(&req.username), Some(client_id));
    let loaded = state.live().current();
    let authorizer = state.authorizer();
    let decision = match req.permission.as_str() {
        "write" => authorizer.decide(&loaded, client, &mqtt, Access::Write, None),
        "read" => authorizer.subscribe(&loaded, client, &mqtt, state.subscribe_mode(), None),
        other => {
            return Err(Reject::bad(format!(
                "permission {other:?}: expected \"write\" or \"read\""
            )))
        }
    };
    Ok(word(decision.is_allowed()))
}

/// An AMQP routing key of the MQTT plugin back to the MQTT topic or filter (lossy: see the module
/// documentation).
pub fn to_mqtt(routing_key: &str) -> String {
    routing_key
        .chars()
        .map(|c| match c {
            '.' => '/',
            '*' => '+',
            c => c,
        })
        .collect()
}

/// An MQTT topic or filter as the MQTT plugin makes it a routing key (for tests and the docs).
pub fn to_amqp(mqtt: &str) -> String {
    mqtt.chars()
        .map(|c| match c {
            '/' => '.',
            '+' => '*',
            c => c,
        })
        .collect()
}
