//! The accept loop: each connection served by hyper's HTTP/1.1 server in a task of its own, answering
//! pipelined requests with one write for all the answers that are ready (`pipeline_flush`: EMQX's
//! HTTP connector pipelines up to 100 requests per connection by default), until SIGINT/SIGTERM; then
//! no new connection is taken and the answers under way are finished (at most [`DRAIN_LIMIT`]).
//!
//! Written here rather than with `axum::serve`, which offers no way to set hyper's options.

use std::future::Future;
use std::time::Duration;

use axum::serve::Listener;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

use super::bounded::Bounded;

/// How long the connections still open at a stop may take to finish their answers.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Serves `app` on every connection `listener` hands out until `stop` resolves.
pub async fn serve(mut listener: Bounded, app: Router, stop: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            (io, _peer) = Listener::accept(&mut listener) => {
                let connection = http1::Builder::new()
                    .pipeline_flush(true)
                    .serve_connection(TokioIo::new(io), TowerToHyperService::new(app.clone()));
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    // A connection's error (a reset, a malformed request) ends only that connection.
                    let _ = connection.await;
                });
            }
            () = &mut stop => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_LIMIT, graceful.shutdown()).await;
}
