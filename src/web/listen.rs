//! The accept loop: connections served by hyper directly, because `axum::serve` sets no
//! header-read timeout and no bound on open connections (issue 17: 260 clients that send half
//! a request and then nothing kept their sockets forever, until `accept` failed with "too many
//! open files" and `/healthz` went dark).
//!
//! - Each connection must send a whole request head within the header timeout, or hyper
//!   closes it.
//! - Each connection holds a permit of a semaphore of `max_connections` (bounded by the
//!   process's open-files limit). When a new connection finds none free, the oldest connection
//!   with no request running (half a request head, or idle between keep-alive requests) is
//!   closed to make room:
//!   a flood of idle sockets then costs its own sockets, not the service. Only when every
//!   connection is running a request does the new one wait (and the ones behind it stay in
//!   the kernel's backlog).
//! - On shutdown the loop stops accepting, every connection finishes the request it is
//!   running (idle ones close at once), and the loop returns when all have ended or after
//!   [`DRAIN_LIMIT`].

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};

/// How long shutdown waits for the requests in flight before giving up on them.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// File descriptors kept for SQLite (the database, its WAL and shared memory, one pair per
/// reader connection), logs and reports, out of the open-files limit.
const RESERVED_FILES: u64 = 128;

/// Connection settings of [`serve_connections`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub max_connections: usize,
}

/// The connection cap actually used: the configured one, lowered to what the open-files limit
/// allows (raising the soft limit to the hard one first).
pub fn effective_cap(configured: u32) -> usize {
    let configured = configured.max(1) as usize;
    match raise_open_files_limit() {
        Some(files) => {
            let room = files.saturating_sub(RESERVED_FILES).max(16) as usize;
            if room < configured {
                tracing::warn!(
                    configured,
                    allowed = room,
                    open_files = files,
                    "the open-files limit allows fewer connections than SHEPING_MAX_CONNECTIONS"
                );
            }
            configured.min(room)
        }
        None => configured,
    }
}

/// Raises the soft open-files limit to the hard one (as Go's runtime does) and returns it.
#[cfg(unix)]
fn raise_open_files_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every unix
    Some(lim.rlim_cur as u64)
}

#[cfg(not(unix))]
fn raise_open_files_limit() -> Option<u64> {
    None
}

/// A served connection, as the accept loop sees it.
struct Conn {
    /// Requests of this connection being answered right now.
    busy: Arc<AtomicUsize>,
    /// Wakes the connection's task to close it (to make room under the cap).
    evict: Arc<Notify>,
}

/// Open connections by the order they were accepted.
#[derive(Default)]
struct Registry {
    conns: Mutex<BTreeMap<u64, Conn>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Conn>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes the oldest connection with no request running; false when every one is busy.
    fn evict_oldest_idle(&self) -> bool {
        let conns = self.lock();
        match conns.values().find(|c| c.busy.load(Ordering::SeqCst) == 0) {
            Some(c) => {
                c.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Counts a request as running on its connection while alive.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn enter(counter: &Arc<AtomicUsize>) -> Busy {
        counter.fetch_add(1, Ordering::SeqCst);
        Busy(Arc::clone(counter))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request counted as running until it is sent.
struct Tracked {
    inner: axum::body::Body,
    _running: Busy,
}

impl hyper::body::Body for Tracked {
    type Data = hyper::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains (see the module doc).
/// Handlers see the peer as `ConnectInfo<SocketAddr>`, as with `axum::serve`.
pub async fn serve_connections(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let registry = Arc::new(Registry::default());
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut next_id: u64 = 0;
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: the listener stays good; wait for files to free.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return drain(graceful).await,
        };
        // A slot for it: at the cap, make one by closing the oldest idle connection, or wait
        // for a request to end (its connection then counts as idle).
        let permit = loop {
            if let Ok(p) = Arc::clone(&permits).try_acquire_owned() {
                break p;
            }
            let evicted = registry.evict_oldest_idle();
            tokio::select! {
                p = Arc::clone(&permits).acquire_owned() => match p {
                    Ok(p) => break p,
                    Err(_) => return Ok(()), // never closed
                },
                _ = tokio::time::sleep(Duration::from_millis(if evicted { 50 } else { 200 })) => {}
                _ = &mut shutdown => return drain(graceful).await,
            }
        };
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        let busy = Arc::new(AtomicUsize::new(0));
        let evict = Arc::new(Notify::new());
        registry.lock().insert(
            id,
            Conn {
                busy: Arc::clone(&busy),
                evict: Arc::clone(&evict),
            },
        );
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(remote));
            let running = Busy::enter(&busy);
            let mut app = app.clone();
            async move {
                let response = tower_service::Service::call(&mut app, req)
                    .await
                    .map_err(|never: Infallible| match never {})?;
                // Busy until the body is sent: a download is a request running.
                Ok::<_, Infallible>(response.map(|inner| Tracked {
                    inner,
                    _running: running,
                }))
            }
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                result = &mut conn => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, %remote, "connection ended with an error");
                    }
                }
                // Dropping the connection closes the socket.
                _ = evict.notified() => tracing::debug!(%remote, "idle connection closed to make room"),
            }
            registry.lock().remove(&id);
            drop(permit);
        });
    }
}

/// Lets every connection finish its request in flight, at most [`DRAIN_LIMIT`].
async fn drain(graceful: GracefulShutdown) -> std::io::Result<()> {
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(DRAIN_LIMIT) => {
            tracing::warn!("requests still running after {DRAIN_LIMIT:?}; stopping without them");
        }
    }
    Ok(())
}
