//! The read-only page: `GET /` (HTML, with its script and style under `/page/`, all built into the
//! binary, nothing from elsewhere) and the JSON it asks for under `/page/api/`:
//!
//! * `status`: the policy in force (files, rule and user counts, semantics, fingerprint);
//! * `client?user=U&client_id=C`: the rules that apply to a client, `%u`/`%c` substituted, and what
//!   they let it read and write ([`api`]);
//! * `check?user=U&client_id=C&access=read|write|subscribe&topic=T`: "may X do Y on T, and why", in the
//!   words of `mqtt-policy check` ([`api`]);
//! * `denials?limit=N`: recent denials from the audit log with their explanations ([`denials`]);
//! * `counters`: the broker's counters (scraped from `plugin_opt_metrics_listen`) and this service's
//!   ([`counters`]).
//!
//! Only GET: nothing here changes anything. The page's script writes every value with `textContent`
//! (usernames, client ids and topics come from clients), and a Content-Security-Policy allows only
//! this origin's script and style.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::AppState;

pub mod api;
pub mod counters;
pub mod denials;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The page's endpoints.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/page/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/page/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route("/page/api/status", get(api::status))
        .route("/page/api/client", get(api::client))
        .route("/page/api/check", get(api::check))
        .route("/page/api/denials", get(denials::denials))
        .route("/page/api/counters", get(counters::counters))
}

/// A file of the page, with headers that keep it to itself.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                 img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
