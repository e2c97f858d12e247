//! `GET /healthz`: 200 and `ok` while the service runs (a policy is always in force once it started).
//! Open without the credential, for load balancers and supervisors; it tells nothing about the policy.

use axum::routing::get;
use axum::Router;

use super::AppState;

/// The health endpoint.
pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(|| async { "ok\n" }))
}
