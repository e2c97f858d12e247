//! The read-only page: `GET /` and its JSON under `/page/api/`. Nothing here changes anything.

use axum::response::Html;
use axum::routing::get;
use axum::Router;

use super::AppState;

/// The page's endpoints.
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/",
        get(|| async { Html("<!doctype html><title>mqtt-policy</title>\n") }),
    )
}
