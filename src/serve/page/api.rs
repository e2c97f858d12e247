//! The page's questions about the policy in force: what it is (`/page/api/status`), what applies to a
//! client (`/page/api/client`) and "may X do Y on T, and why" (`/page/api/check`), answered with the
//! words of `mqtt-policy check` ([`crate::enforce::answer`]). Nothing is decided for real here: these
//! are questions, so they are neither audited nor counted.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::super::AppState;
use crate::enforce::answer::{render, LoginStatus};
use crate::enforce::live::Loaded;
use crate::policy::acl::{Explanation, Permission, RuleRef};
use crate::policy::{Access, ClientRef, RuleId, Semantics};

/// Who a question is about: an empty or missing `user` is an anonymous client; an empty or missing
/// `client_id` is the username (or `anonymous`), as `check` takes them.
#[derive(Debug, Deserialize)]
pub struct Who {
    /// The username.
    #[serde(default)]
    pub user: Option<String>,
    /// The client id.
    #[serde(default)]
    pub client_id: Option<String>,
}

impl Who {
    fn client(&self) -> ClientRef<'_> {
        ClientRef::from_names(
            self.user.as_deref(),
            self.client_id.as_deref().filter(|c| !c.is_empty()),
        )
    }
}

/// `/page/api/status`: the policy in force.
#[derive(Debug, Serialize)]
pub struct Status {
    acl_file: String,
    rules: usize,
    password_file: Option<String>,
    users: Option<usize>,
    semantics: Semantics,
    fingerprint: String,
    loaded_at: String,
    audit_log: Option<String>,
    broker_metrics: Option<String>,
    warnings: Vec<String>,
}

/// `GET /page/api/status`.
pub async fn status(State(state): State<AppState>) -> Json<Status> {
    let l = state.live().current();
    Json(Status {
        acl_file: l.acl_file.clone(),
        rules: l.acl.rules().len(),
        password_file: l.password_file.clone(),
        users: l.passwords.as_ref().map(|p| p.len()),
        semantics: l.semantics,
        fingerprint: l.fingerprint.clone(),
        loaded_at: crate::audit::rfc3339(l.loaded_at),
        audit_log: state.audit_log(),
        broker_metrics: l.metrics_listen.clone(),
        warnings: l.warnings.clone(),
    })
}

/// A rule that applies to the client, with its filter after `%u`/`%c`.
#[derive(Debug, Serialize)]
pub struct AppliedRule {
    #[serde(flatten)]
    rule: RuleRef,
    /// `file:line`.
    location: String,
    /// The filter as written.
    filter: String,
    /// The filter for this client.
    effective_filter: String,
}

/// A pattern that does not apply to the client, and why.
#[derive(Debug, Serialize)]
pub struct SkippedRule {
    #[serde(flatten)]
    rule: RuleRef,
    location: String,
    why: &'static str,
}

/// `/page/api/client`: what applies to one client.
#[derive(Debug, Serialize)]
pub struct ClientView {
    username: Option<String>,
    client_id: String,
    semantics: Semantics,
    login: Option<LoginStatus>,
    /// Every rule that applies, own list first, then patterns, in file order.
    rules: Vec<AppliedRule>,
    /// Patterns that do not apply to this client.
    skipped: Vec<SkippedRule>,
    /// Filters (after substitution) of the rules that grant reading.
    read: Vec<String>,
    /// Filters of the rules that grant writing.
    write: Vec<String>,
    /// Filters of the deny rules (checked before any grant).
    denied: Vec<String>,
    /// How to read the lists, as sentences.
    notes: Vec<String>,
}

/// `GET /page/api/client?user=U&client_id=C`.
pub async fn client(State(state): State<AppState>, Query(who): Query<Who>) -> Json<ClientView> {
    let loaded = state.live().current();
    Json(client_view(&loaded, who.client()))
}

/// What applies to `client` under `loaded`.
pub fn client_view(loaded: &Loaded, client: ClientRef<'_>) -> ClientView {
    let policy = &loaded.acl;
    let (own, patterns) = policy.applicable_rules(client);
    let mut view = ClientView {
        username: client.username.map(str::to_owned),
        client_id: client.client_id.to_owned(),
        semantics: loaded.semantics,
        login: loaded
            .passwords
            .as_ref()
            .map(|p| LoginStatus::new(p, client.username)),
        rules: Vec::new(),
        skipped: Vec::new(),
        read: Vec::new(),
        write: Vec::new(),
        denied: Vec::new(),
        notes: Vec::new(),
    };
    let applied: std::collections::HashSet<u32> =
        own.iter().chain(&patterns).map(|(id, _)| id.0).collect();
    for (id, effective) in own.into_iter().chain(patterns) {
        let rule = policy.rule(id);
        if rule.permission == Permission::Deny {
            view.denied.push(effective.clone());
        }
        if rule.permission.grants(Access::Read) {
            view.read.push(effective.clone());
        }
        if rule.permission.grants(Access::Write) {
            view.write.push(effective.clone());
        }
        let rule_ref = RuleRef::new(policy, id);
        view.rules.push(AppliedRule {
            location: rule_ref.location(),
            rule: rule_ref,
            filter: rule.filter.clone(),
            effective_filter: effective,
        });
    }
    for (index, rule) in policy.rules().iter().enumerate() {
        let id = RuleId(u32::try_from(index).unwrap_or(u32::MAX));
        if !rule.is_pattern() || applied.contains(&id.0) {
            continue;
        }
        let why = if rule.uses_username() && client.username.is_none() {
            "the pattern has %u and the client has no username: Mosquitto skips it"
        } else {
            "a %u or %c level cannot hold this client's value (empty, with a `/`, or a first level \
             starting with `$`): Mosquitto 2.1 never matches it"
        };
        let rule_ref = RuleRef::new(policy, id);
        view.skipped.push(SkippedRule {
            location: rule_ref.location(),
            rule: rule_ref,
            why,
        });
    }
    if view.rules.is_empty() {
        view.notes.push(match client.username {
            Some(u) => format!(
                "no rule applies to user {u:?}: no `user {u}` block and no pattern, so every topic is denied"
            ),
            None => "no rule applies to an anonymous client: no `topic` line before the first \
                     `user` line and no pattern without %u, so every topic is denied"
                .to_owned(),
        });
    }
    if !view.denied.is_empty() {
        view.notes.push(
            "deny rules are checked first: a topic one of them matches is refused even if another rule grants it"
                .to_owned(),
        );
    }
    view.notes.push(
        "`#` and `+` at the start of a filter never match a topic starting with `$` (such as $SYS/...); \
         publishing to $SYS/... is always denied"
            .to_owned(),
    );
    view.notes.push(
        "subscribing: Mosquitto grants every SUBSCRIBE and checks each delivery against the read rules; \
         mqtt-policy refuses a filter that can never deliver a topic the client may read \
         (plugin_opt_refuse_subscriptions true). Ask with `subscribe` below to check a filter."
            .to_owned(),
    );
    view
}

/// `/page/api/check`'s question.
#[derive(Debug, Deserialize)]
pub struct Question {
    #[serde(flatten)]
    who: Who,
    /// `read`, `write` or `subscribe`.
    access: String,
    /// The topic, or the filter for `subscribe`.
    topic: String,
}

/// `/page/api/check`'s answer.
#[derive(Debug, Serialize)]
pub struct Answer {
    /// `allow` or `deny`.
    verdict: &'static str,
    /// What `mqtt-policy check` prints for the same question.
    text: String,
    /// What `mqtt-policy check --json` prints for it.
    explanation: Explanation,
    semantics: Semantics,
    #[serde(skip_serializing_if = "Option::is_none")]
    login: Option<LoginStatus>,
}

/// `GET /page/api/check?user=U&client_id=C&access=read|write|subscribe&topic=T`.
pub async fn check(State(state): State<AppState>, Query(q): Query<Question>) -> Response {
    let access = match q.access.as_str() {
        "read" => Access::Read,
        "write" => Access::Write,
        "subscribe" => Access::Subscribe,
        other => {
            return (
                StatusCode::BAD_REQUEST,
                format!("access: expected read, write or subscribe, got {other:?}\n"),
            )
                .into_response()
        }
    };
    let loaded = state.live().current();
    Json(answer(&loaded, q.who.client(), access, &q.topic)).into_response()
}

/// The answer `check` would give to `client` doing `access` on `topic` under `loaded`.
pub fn answer(loaded: &Loaded, client: ClientRef<'_>, access: Access, topic: &str) -> Answer {
    let explanation = loaded.acl.explain(client, topic, access);
    let login = loaded
        .passwords
        .as_ref()
        .map(|p| LoginStatus::new(p, client.username));
    Answer {
        verdict: crate::audit::verdict_word(explanation.verdict),
        text: render(&explanation, login.as_ref(), loaded.semantics),
        semantics: loaded.semantics,
        login,
        explanation,
    }
}
