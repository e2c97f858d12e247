//! EMQX 5's HTTP authentication and HTTP authorization, answered from the policy.
//!
//! Sources: EMQX documentation, "Use HTTP Service" under Access Control → Authentication
//! (docs.emqx.com/en/emqx/latest/access-control/authn/http.html: `result`, `is_superuser`, and since
//! 5.8 `acl` and `expire_at`), its "Access Control List (ACL)" page for the rules' format
//! (authn/acl.html), and "Use HTTP Service" under Authorization
//! (docs.emqx.com/en/emqx/latest/access-control/authz/http.html: `{"result": "allow"|"deny"|"ignore"}`).
//!
//! EMQX sends the body its operator templates; these endpoints take the templates in README.md:
//!
//! * `POST /emqx/authn` `{"username": "${username}", "password": "${password}", "clientid":
//!   "${clientid}", "peerhost": "${peerhost}"}` → `200 {"result": "allow", "is_superuser": false,
//!   "acl": [...]}` or `200 {"result": "deny"}` (the same body whether the user is unknown or the
//!   password wrong). The `acl` list carries the client's publish rules compiled at CONNECT (the own
//!   list's denials, then its grants, then the patterns' denials and grants, `%u`/`%c` substituted, a
//!   filter without wildcards written as an `eq` literal, and a last rule denying every other publish);
//!   subscriptions are not in it, so EMQX asks `/emqx/authz`, where `--subscribe` applies. When a rule
//!   cannot be written so that EMQX reads it as Mosquitto does (a filter containing `${`, or one with
//!   wildcards beginning `eq `), no list is sent and EMQX asks `/emqx/authz` for everything.
//!   A password file has no superusers and no expiry: `is_superuser` is always `false`, `expire_at`
//!   never sent.
//! * `POST /emqx/authz` `{"username": "${username}", "clientid": "${clientid}", "topic": "${topic}",
//!   "action": "${action}", "peerhost": "${peerhost}"}` → `200 {"result": "allow"|"deny"}` (never
//!   `ignore`: the policy decides everything, as Mosquitto's acl_file does).

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::input::{self, nullable, Reject};
use super::AppState;
use crate::audit::Peer;
use crate::policy::acl::{EffectiveRule, EffectiveRules};
use crate::policy::topic::has_wildcard;
use crate::policy::{Access, ClientRef};

/// `/emqx/authn` and `/emqx/authz`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/emqx/authn", post(authn))
        .route("/emqx/authz", post(authz))
}

#[derive(Deserialize)]
struct Authn {
    #[serde(deserialize_with = "nullable")]
    username: Option<String>,
    #[serde(deserialize_with = "nullable")]
    password: Option<String>,
    clientid: String,
    #[serde(default)]
    peerhost: Option<String>,
}

async fn authn(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, Reject> {
    let req: Authn = input::json(&body)?;
    let username = input::non_empty(req.username.as_deref());
    let loaded = state.live().current();
    let peer = Peer {
        username,
        client_id: Some(&req.clientid),
        address: req.peerhost.as_deref(),
    };
    let refused = state
        .authorizer()
        .login(&loaded, peer, req.password.as_deref().map(str::as_bytes))
        .await;
    if refused.is_some() {
        return Ok(Json(json!({ "result": "deny" })));
    }
    let client = ClientRef::from_names(username, Some(&req.clientid));
    let mut answer = json!({ "result": "allow", "is_superuser": false });
    if let Some(acl) = acl_list(&loaded.acl.effective_rules(client)) {
        answer["acl"] = Value::Array(acl);
    }
    Ok(Json(answer))
}

/// The client's publish rules as EMQX's `acl` list (see the module documentation); `None` when one
/// cannot be written faithfully.
pub fn acl_list(rules: &EffectiveRules) -> Option<Vec<Value>> {
    let mut out = Vec::new();
    for list in [&rules.own, &rules.patterns] {
        for deny in [true, false] {
            for rule in list.iter().filter(|r| r.permission.is_deny() == deny) {
                if !deny && !rule.permission.grants(Access::Write) {
                    continue;
                }
                out.push(json!({
                    "permission": if deny { "deny" } else { "allow" },
                    "action": "publish",
                    "topic": emqx_topic(rule)?,
                }));
            }
        }
    }
    out.push(json!({ "permission": "deny", "action": "publish", "topic": "#" }));
    Some(out)
}

/// How EMQX must be told a rule's filter: an `eq` literal without wildcards, as written with them.
fn emqx_topic(rule: &EffectiveRule) -> Option<String> {
    let f = &rule.filter;
    if f.contains("${") {
        return None;
    }
    if !has_wildcard(f) {
        return Some(format!("eq {f}"));
    }
    if f.starts_with("eq ") {
        return None;
    }
    Some(f.clone())
}

#[derive(Deserialize)]
struct Authz {
    #[serde(deserialize_with = "nullable")]
    username: Option<String>,
    clientid: String,
    topic: String,
    action: String,
    #[serde(default)]
    peerhost: Option<String>,
}

async fn authz(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, Reject> {
    let req: Authz = input::json(&body)?;
    let client = ClientRef::from_names(
        input::non_empty(req.username.as_deref()),
        Some(&req.clientid),
    );
    let loaded = state.live().current();
    let address = req.peerhost.as_deref();
    let authorizer = state.authorizer();
    let decision = match req.action.as_str() {
        "publish" => authorizer.decide(&loaded, client, &req.topic, Access::Write, address),
        "subscribe" => {
            authorizer.subscribe(&loaded, client, &req.topic, state.subscribe_mode(), address)
        }
        other => {
            return Err(Reject::bad(format!(
                "action {other:?}: expected \"publish\" or \"subscribe\""
            )))
        }
    };
    Ok(Json(json!({
        "result": if decision.is_allowed() { "allow" } else { "deny" }
    })))
}
