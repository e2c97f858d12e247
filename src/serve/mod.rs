//! `mqtt-policy serve`: an HTTP/1.1 service (axum on tokio) over the policy in force.
//!
//! A thin front door: the files are loaded and reloaded by [`crate::enforce::live`] (all or nothing; a
//! SIGHUP with a bad file keeps the old policy and says why), counted in [`crate::enforce::metrics`],
//! and every answer is the engine's. Each group of endpoints is a module with a `routes()` function
//! merged by [`router`]; nothing else knows its paths:
//!
//! * [`health`]: `GET /healthz`;
//! * [`page`]: the read-only page at `/` and its JSON under `/page/api/`;
//! * the authorization contracts of clustered brokers, one module each, deciding through
//!   [`crate::enforce::authorize`] (the same decisions, audit records and counters as the plugin's):
//!   [`emqx`] (`/emqx/authn`, `/emqx/authz`), [`vernemq`] (`/vernemq`), [`rabbitmq`]
//!   (`/rabbitmq/{user,vhost,resource,topic}`) and [`go_auth`] (`/go-auth/{user,superuser,acl}`), their
//!   bodies read by [`input`] (size-limited, `400` naming what is wrong).
//!
//! [`listen`] binds the address (refusing a non-loopback one without a credential), [`bounded`] bounds
//! the connections (how many at once, how long idle) and [`auth`] checks the credential on every
//! request but `/healthz`.

use std::sync::Arc;

use axum::Router;

use crate::enforce::authorize::{Authorizer, SubscribeMode};
use crate::enforce::live::{Live, PolicySource};
use crate::enforce::metrics::Metrics;

pub mod auth;
pub mod bounded;
pub mod connections;
pub mod emqx;
pub mod go_auth;
pub mod health;
pub mod input;
pub mod listen;
pub mod page;
pub mod rabbitmq;
pub mod tls;
pub mod vernemq;

/// What `serve` was asked to do.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the policy files come from.
    pub source: PolicySource,
    /// The address to listen on, as given (`ADDRESS:PORT`; port 0 picks a free port).
    pub listen: String,
    /// The file holding the credential clients must present (required for a non-loopback address).
    pub credential_file: Option<String>,
    /// The audit log to show denials from, overriding the config's `plugin_opt_audit_log`.
    pub audit_log: Option<String>,
    /// `--subscribe`: how a SUBSCRIBE is answered to brokers that authorize it once.
    pub subscribe: SubscribeMode,
    /// `--cache-max-age`: seconds a broker may cache a positive answer (VerneMQ's `Cache-Control`).
    pub cache_max_age: Option<u32>,
    /// Connections served at once ([`bounded`]).
    pub max_connections: usize,
    /// A connection without traffic this long is closed ([`bounded`]).
    pub idle_timeout: std::time::Duration,
    /// `--tls-cert` and `--tls-key`: serve HTTPS with this certificate chain and key ([`tls`]).
    pub tls: Option<(String, String)>,
}

/// What every handler can reach: cheap to clone (one `Arc`).
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

/// The state behind [`AppState`].
#[derive(Debug)]
pub struct Shared {
    /// The policy in force (swapped whole on SIGHUP).
    pub live: Live,
    /// `--audit-log`, when given (else the config's, from [`Live::current`]).
    pub audit_log: Option<String>,
    /// Decides, counts and audits the contracts' answers.
    pub authorizer: Authorizer,
    /// `--subscribe`.
    pub subscribe: SubscribeMode,
    /// `--cache-max-age`.
    pub cache_max_age: Option<u32>,
}

impl AppState {
    /// State over a policy already loaded, answering the contracts as `options` says. The error
    /// names the audit log that cannot be opened.
    pub fn new(live: Live, options: &Options) -> Result<AppState, String> {
        let audit = options
            .audit_log
            .clone()
            .or_else(|| live.current().audit_log.clone());
        let authorizer = Authorizer::start(Arc::clone(live.metrics()), audit.as_deref())?;
        Ok(AppState(Arc::new(Shared {
            live,
            audit_log: options.audit_log.clone(),
            authorizer,
            subscribe: options.subscribe,
            cache_max_age: options.cache_max_age,
        })))
    }

    /// The decisions of the contracts.
    pub fn authorizer(&self) -> &Authorizer {
        &self.0.authorizer
    }

    /// `--subscribe`.
    pub fn subscribe_mode(&self) -> SubscribeMode {
        self.0.subscribe
    }

    /// `--cache-max-age`.
    pub fn cache_max_age(&self) -> Option<u32> {
        self.0.cache_max_age
    }

    /// The policy in force and how to reload it.
    pub fn live(&self) -> &Live {
        &self.0.live
    }

    /// The counters of this service.
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.0.live.metrics()
    }

    /// The audit log whose denials the page shows: `--audit-log`, else the config's.
    pub fn audit_log(&self) -> Option<String> {
        self.0
            .audit_log
            .clone()
            .or_else(|| self.0.live.current().audit_log.clone())
    }
}

/// Every endpoint of the service, behind the credential check when there is a credential.
pub fn router(state: AppState, credential: Option<auth::Credential>) -> Router {
    let protected = Router::new()
        .merge(page::routes())
        .merge(emqx::routes())
        .merge(vernemq::routes())
        .merge(rabbitmq::routes())
        .merge(go_auth::routes())
        .layer(axum::extract::DefaultBodyLimit::max(input::BODY_LIMIT));
    let protected = match credential {
        Some(c) => protected.layer(axum::middleware::from_fn_with_state(
            Arc::new(c),
            auth::require,
        )),
        None => protected,
    };
    Router::new()
        .merge(health::routes())
        .merge(protected)
        .with_state(state)
}

/// Logs one line to stderr, prefixed with the program.
pub fn log(message: &str) {
    eprintln!("mqtt-policy serve: {message}");
}

/// Loads the policy, binds the address and serves until SIGINT or SIGTERM; SIGHUP reloads the
/// policy. Errors at start name the file or the address.
pub async fn serve(options: Options) -> Result<(), String> {
    let credential = match &options.credential_file {
        Some(path) => Some(auth::Credential::load(path)?),
        None => None,
    };
    let tls = match &options.tls {
        Some((cert, key)) => Some(tls::acceptor(cert, key)?),
        None => None,
    };
    let metrics = Metrics::new();
    let live = {
        let source = options.source.clone();
        tokio::task::spawn_blocking(move || Live::start(source, metrics))
            .await
            .map_err(|e| format!("loading the policy failed: {e}"))??
    };
    let loaded = live.current();
    for w in &loaded.warnings {
        log(&format!("warning: {w}"));
    }
    log(&loaded.describe());
    drop(loaded);
    let listener = listen::bind(&options.listen, credential.is_some())?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
    let state = AppState::new(live, &options)?;
    tokio::spawn(reload_on_sighup(state.clone())?);
    let app = router(state, credential);
    // Tests and scripts wait for this line (with port 0 it is the only way to learn the port).
    let scheme = if tls.is_some() { "https" } else { "http" };
    log(&format!("listening on {scheme}://{addr}/"));
    let listener =
        bounded::Bounded::new(listener, options.max_connections, options.idle_timeout, tls);
    connections::serve(listener, app, stopped()?).await;
    Ok(())
}

/// A task that reloads the policy on each SIGHUP (off the runtime's threads: a big file takes a
/// while), keeping the old policy when the new files do not load.
fn reload_on_sighup(
    state: AppState,
) -> Result<impl std::future::Future<Output = ()> + Send + 'static, String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
    Ok(async move {
        while hup.recv().await.is_some() {
            let s = state.clone();
            match tokio::task::spawn_blocking(move || s.live().reload()).await {
                Ok(Ok(loaded)) => {
                    for w in &loaded.warnings {
                        log(&format!("warning: {w}"));
                    }
                    log(&format!("SIGHUP: reloaded; {}", loaded.describe()));
                    state.authorizer().reopen_audit();
                }
                Ok(Err(e)) => log(&format!(
                    "SIGHUP: reload failed, the previous policy stays in force: {e}"
                )),
                Err(e) => log(&format!(
                    "SIGHUP: reload failed, the previous policy stays in force: {e}"
                )),
            }
        }
    })
}

/// Resolves on SIGINT or SIGTERM.
fn stopped() -> Result<impl std::future::Future<Output = ()> + Send + 'static, String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        log("stopping");
    })
}
