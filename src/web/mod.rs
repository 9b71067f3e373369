//! The web console and HTTP API: one module per feature, merged here over one shared state.
//!
//! | module | routes | who |
//! |---|---|---|
//! | `pages` | `/` (public list of rounds and units), `/results`, `/rounds/{key}/results`, `/rounds/{key}/units/{unit}`, `/rounds/{key}/compare/{with}` | public; results: admin, statistician, evaluator |
//! | `auth` | `/login`, `/logout`, `/console`, `/account/password` | everyone |
//! | `call` | `/call`, `/call/next`, `/call/record`, `/call/release`, `/call/list` | operators |
//! | `supervise` | `/progress`, `/rounds/{key}/progress[/live]`, `/audit` | admin; statisticians read-only |
//! | `admin` | `/admin/...` | admin |
//! | `tokens` | `/admin/tokens` (API tokens) | admin |
//! | `round_ops` | `/admin/rounds/{key}/field`, `/admin/rounds/{key}/purge-contacts`, `/admin/backup` | admin |
//! | `round_path` | `/rounds/{key}` (the round's path, read-only) | admin, statistician, evaluator |
//! | `round_tasks` | `/admin/rounds/{key}/onsite`, `/attempts` (upload, preview, confirm), `/exclusions` | admin |
//! | `api` | `/api/v1/...` | see that module |

mod admin;
mod api;
mod assets;
mod auth;
mod call;
mod charts;
pub mod config;
mod error;
pub mod listen;
mod pages;
mod round_ops;
mod round_path;
mod round_tasks;
mod screen_reader;
mod security;
mod supervise;
mod temp_area;
mod tokens;
mod views;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use config::WebConfig;
pub use error::WebError;

use crate::storage::Store;

#[derive(Clone)]
pub struct AppState {
    /// The one storage handle (every aggregate's trait).
    pub store: Arc<dyn Store>,
    pub config: Arc<WebConfig>,
    /// Session → the claim it just made: the first display of that contact is covered by the
    /// claim's audit entry; any later display of the full number is logged as a view.
    fresh_claims: Arc<Mutex<HashMap<String, String>>>,
    /// The call screens' reads, batched in shared snapshots ([`AppState::screen_read`]).
    screen_reader: Arc<screen_reader::ScreenReader>,
}

impl AppState {
    pub fn new<S: Store + 'static>(store: Arc<S>, config: WebConfig) -> std::io::Result<AppState> {
        let store: Arc<dyn Store> = store;
        let screen_reader =
            screen_reader::ScreenReader::start(store.clone(), config.screen_reads as usize)?;
        Ok(AppState {
            store,
            config: Arc::new(config),
            fresh_claims: Arc::default(),
            screen_reader: Arc::new(screen_reader),
        })
    }

    /// Storage reads for the operators' call screen: on the screen reader's threads, in a
    /// snapshot shared with the other screens asked for at the same moment
    /// (see `web/screen_reader.rs`).
    pub async fn screen_read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, WebError> + Send + 'static,
    ) -> Result<T, WebError> {
        self.screen_reader.read(f).await
    }

    /// Runs blocking storage work off the async threads.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, WebError> + Send + 'static,
    ) -> Result<T, WebError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| WebError::Internal(format!("task failed: {e}")))?
    }

    fn mark_fresh_claim(&self, session: &str, token: &str) {
        let mut m = self.fresh_claims.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() > 10_000 {
            m.clear();
        }
        m.insert(session.to_string(), token.to_string());
    }

    /// True once after the claim was made in this session.
    fn take_fresh_claim(&self, session: &str, token: &str) -> bool {
        let mut m = self.fresh_claims.lock().unwrap_or_else(|p| p.into_inner());
        if m.get(session).is_some_and(|t| t == token) {
            m.remove(session);
            true
        } else {
            false
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(assets::router())
        .route("/login", get(auth::login_form).post(auth::login_submit))
        .route("/logout", post(auth::logout))
        .route("/console", get(auth::console))
        .route(
            "/account/password",
            get(auth::password_form).post(auth::password_submit),
        )
        .merge(pages::router())
        .merge(charts::router())
        .merge(call::router())
        .merge(supervise::router())
        .merge(admin::router())
        .merge(tokens::router())
        .merge(round_ops::router())
        .merge(round_path::router())
        .merge(round_tasks::router())
        .merge(api::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::same_origin,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::headers,
        ))
        .with_state(state)
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http())
}

async fn healthz() -> &'static str {
    "ok"
}

async fn not_found() -> WebError {
    WebError::NotFound("没有这个页面。请从工作台的菜单进入。".into())
}

/// Serves until `shutdown` resolves, then stops accepting and finishes the requests in flight
/// (see [`listen`]). Settings come from the environment ([`WebConfig::from_env`]).
pub async fn serve<S: Store + 'static>(
    listener: TcpListener,
    store: Arc<S>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = WebConfig::from_env().map_err(std::io::Error::other)?;
    let limits = listen::Limits {
        header_timeout: Duration::from_secs(config.header_timeout_secs.into()),
        max_connections: listen::effective_cap(config.max_connections),
    };
    let request_timeout = Duration::from_secs(config.request_timeout_secs.into());
    let state = AppState::new(store, config)?;
    let purger = spawn_purger(state.clone());
    let app = router(state).layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        request_timeout,
    ));
    let served = listen::serve_connections(listener, app, limits, shutdown).await;
    // The purger holds the store; stopping it lets the caller close the store cleanly.
    purger.abort();
    served
}

/// Deletes ended sessions and old failed sign-ins every ten minutes.
fn spawn_purger(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            tick.tick().await;
            let (limits, policy) = (state.config.limits, state.config.throttle);
            let now = chrono::Utc::now().timestamp_millis();
            let r = state
                .blocking(move |s| Ok(s.purge_web_state(now, &limits, &policy)?))
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "purging sessions failed");
            }
        }
    })
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C). The handlers are installed when this is called,
/// not when the future is first polled: a signal that arrives while the server is still
/// starting must stop it gracefully, not kill it. Call it inside the runtime, before the
/// server announces its address.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                }
                (Ok(mut only), Err(_)) | (Err(_), Ok(mut only)) => {
                    only.recv().await;
                }
                (Err(_), Err(_)) => std::future::pending::<()>().await,
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
