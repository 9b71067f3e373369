//! [`PgStore`] behind the synchronous storage traits (`storage::Store`). The traits block (the
//! web layer calls them inside `spawn_blocking`, the CLI directly); the pool's connections are
//! tasks of a runtime of the store's own, and each trait method blocks on it. Owning the
//! runtime keeps the connections alive whoever calls — the CLI has no runtime, the server's
//! blocking threads must not block on the server's own.

use std::cell::RefCell;
use std::future::Future;
use std::ops::{Deref, DerefMut};

use deadpool_postgres::Client;

use super::{PgError, PgStore, describe};
use crate::storage::read_cache::{Generations, ReadCache};
use crate::storage::{RoundRecord, SessionRecord, StorageError};

/// The PostgreSQL backend: a [`PgStore`] and the runtime its connections live on.
pub struct PgBackend {
    // Declared first: dropped before the runtime that runs its connections.
    store: PgStore,
    runtime: tokio::runtime::Runtime,
    pub(super) caches: Caches,
}

/// The reads every request repeats (a session, an operator's rounds), kept in memory as the
/// SQLite store keeps them (`storage/read_cache.rs`): an entry is dropped when a write through
/// THIS instance may have changed it (the generation of its group moves), and is never used
/// after `read_cache::TTL` (one second), which bounds how long a change made through another
/// instance on the same database goes unseen.
pub(super) struct Caches {
    pub(super) generations: Generations,
    pub(super) sessions: ReadCache<String, SessionRecord>,
    pub(super) operator_rounds: ReadCache<i64, Vec<RoundRecord>>,
}

/// Starts the read transaction of a snapshot. REPEATABLE READ takes its snapshot at the first
/// statement after it, so a snapshot begun here sees every commit made before that read.
const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

thread_local! {
    /// The connections of the [`Store::snapshot`](crate::storage::Store::snapshot)s running
    /// on this thread, one per backend (by address).
    static PINNED: RefCell<Vec<Pinned>> = const { RefCell::new(Vec::new()) };
}

/// A snapshot's connection and the state of its read transaction.
struct Pinned {
    key: usize,
    /// `None` before the first read, while a method uses it, or after it was lost.
    client: Option<Client>,
    /// A read transaction is open on `client`.
    open: bool,
    /// Something was written since that transaction began (or a read failed in it): the next
    /// read starts another, so `f` reads its own writes.
    stale: bool,
}

fn with_pinned<R>(key: usize, f: impl FnOnce(&mut Pinned) -> R) -> Option<R> {
    PINNED.with(|p| p.borrow_mut().iter_mut().find(|p| p.key == key).map(f))
}

/// A connection a trait method uses: the thread's snapshot connection when a snapshot of this
/// backend runs on the thread (given back to it when dropped), else one from the pool.
pub(crate) struct Conn {
    client: Option<Client>,
    /// The backend whose snapshot this connection belongs to.
    pinned: Option<usize>,
    /// A transaction of ours is open on it (a snapshot's read transaction).
    open: bool,
}

impl Conn {
    pub(crate) fn client(&self) -> &Client {
        self.client.as_ref().expect("a connection until dropped")
    }
}

impl Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client()
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("a connection until dropped")
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let clean = !std::thread::panicking();
        if let Some(key) = self.pinned
            && clean
        {
            let mut client = Some(client);
            let open = self.open;
            with_pinned(key, |p| {
                if p.client.is_none() {
                    p.client = client.take();
                    p.open = open;
                }
            });
            if let Some(client) = client {
                // The snapshot is gone, or holds another connection already (a method that
                // took a second one while the first was out): this one is not needed.
                discard_if(client, open);
            }
            return;
        }
        // A panic may have left a statement or a transaction half done: close the connection
        // rather than give the pool one whose next user would run inside our transaction.
        discard_if(client, self.open || !clean);
        if let Some(key) = self.pinned {
            with_pinned(key, |p| p.open = false);
        }
    }
}

/// Returns `client` to the pool, or, when `discard`, closes it (taken out of the pool, the
/// connection ends when the client is dropped).
fn discard_if(client: Client, discard: bool) {
    if discard {
        drop(deadpool_postgres::Object::take(client));
    } else {
        drop(client);
    }
}

/// Takes the snapshot's connection out for a method, and whether its read transaction is open
/// (the method's [`Conn`] knows that until it gives the connection back).
fn take_client(p: &mut Pinned) -> (Option<Client>, bool) {
    let client = p.client.take();
    let open = std::mem::replace(&mut p.open, false) && client.is_some();
    (client, open)
}

/// Sends `sql` on `client` without waiting for its answer. The connection runs requests in
/// the order they were sent, so what is sent next on it — by this thread or by the pool's next
/// user — runs after it: a round trip saved per snapshot. Only for a ROLLBACK, whose failure
/// leaves nothing to do (it fails only with the connection, which the pool then drops).
/// tokio-postgres sends a request when its future is first polled (its pipelining), which is
/// what the one poll here relies on; `tests/it/pg_snapshot.rs` checks that no connection is
/// left in a transaction.
fn send_only(client: &Client, sql: &str) {
    let mut request = std::pin::pin!(client.batch_execute(sql));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let _ = request.as_mut().poll(&mut cx);
}

/// Errors that come from the server: after one, the read transaction may be aborted.
fn server_error<T>(out: &Result<T, StorageError>) -> bool {
    matches!(
        out,
        Err(StorageError::Backend(_) | StorageError::Conflict(_) | StorageError::Full)
    )
}

impl PgBackend {
    /// Connects to `url` and brings the schema up to date (see [`PgStore::connect`]).
    pub fn open(url: &str) -> Result<PgBackend, PgError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sheping-pg")
            .enable_all()
            .build()
            .map_err(|e| PgError::Pool(format!("无法启动数据库连接线程:{e}")))?;
        let store = runtime.block_on(PgStore::connect(url))?;
        Ok(PgBackend {
            store,
            runtime,
            caches: Caches {
                generations: Generations::default(),
                sessions: ReadCache::new(4096),
                operator_rounds: ReadCache::new(4096),
            },
        })
    }

    pub fn store(&self) -> &PgStore {
        &self.store
    }

    /// Runs `f` on the store's runtime as a task of its own: for work a caller on another
    /// runtime awaits (an async request must not block its thread, nor call [`Self::block_on`]
    /// from inside a runtime). Counts as a write for a snapshot running on this thread.
    pub fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.after_write();
        self.runtime.spawn(f)
    }

    /// Runs `f` to completion on the store's runtime. Call it from a thread that is not
    /// driving async tasks (the CLI, `spawn_blocking`, a reader thread).
    ///
    /// Every trait method that is not a read ([`Self::read`]) runs through here, and counts as
    /// a write: a snapshot running on this thread starts a new read transaction at its next
    /// read, which sees what `f` wrote.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        let out = self.runtime.block_on(f);
        self.after_write();
        out
    }

    /// Which backend a snapshot on this thread belongs to (its address).
    fn snapshot_key(&self) -> usize {
        self as *const PgBackend as usize
    }

    fn after_write(&self) {
        with_pinned(self.snapshot_key(), |p| p.stale = true);
    }

    /// A connection for a method that writes: the snapshot's own when one runs on this
    /// thread (its read transaction ended first), so a thread never holds two connections and
    /// a pool full of snapshots cannot wait on itself; else one from the pool.
    pub(crate) async fn conn(&self) -> Result<Conn, PgError> {
        let key = self.snapshot_key();
        let Some((client, open)) = with_pinned(key, take_client) else {
            return Ok(Conn {
                client: Some(self.store.client().await?),
                pinned: None,
                open: false,
            });
        };
        let mut conn = Conn {
            client: None,
            pinned: Some(key),
            open,
        };
        if let Some(client) = client {
            if !client.is_closed() {
                if open {
                    // The write's own statements queue behind it on the connection.
                    send_only(&client, "ROLLBACK");
                }
                conn.client = Some(client);
                conn.open = false;
                return Ok(conn);
            }
            discard_if(client, true);
        }
        conn.open = false;
        conn.client = Some(self.store.client().await?);
        Ok(conn)
    }

    /// Runs a read: inside a snapshot of this backend on this thread, in the snapshot's read
    /// transaction (begun here at its first read, or again after a write); otherwise on a
    /// connection of the pool, as it is (each statement its own snapshot).
    pub(crate) fn read<T>(
        &self,
        f: impl AsyncFnOnce(&Client) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        self.read_with(false, f)
    }

    /// [`Self::read`] for a read of several statements that must agree: outside a snapshot it
    /// runs in a `REPEATABLE READ` transaction of its own.
    pub(crate) fn read_consistent<T>(
        &self,
        f: impl AsyncFnOnce(&Client) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        self.read_with(true, f)
    }

    fn read_with<T>(
        &self,
        consistent: bool,
        f: impl AsyncFnOnce(&Client) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        self.runtime.block_on(async {
            let key = self.snapshot_key();
            let Some(((client, open), stale)) = with_pinned(key, |p| (take_client(p), p.stale))
            else {
                let mut conn = Conn {
                    client: Some(self.store.client().await?),
                    pinned: None,
                    open: false,
                };
                if !consistent {
                    return f(conn.client()).await;
                }
                conn.open = true;
                let (begun, out) =
                    tokio::join!(biased; conn.client().batch_execute(BEGIN_READ), f(conn.client()));
                begun?;
                // COMMIT also ends a transaction an error aborted (as a rollback).
                conn.batch_execute("COMMIT").await?;
                conn.open = false;
                return out;
            };
            let mut conn = Conn {
                client: None,
                pinned: Some(key),
                open,
            };
            let client = match client {
                Some(c) if !c.is_closed() => c,
                lost => {
                    // The connection broke (or there was none yet): the snapshot goes on
                    // with another, in a new transaction.
                    if let Some(c) = lost {
                        discard_if(c, true);
                    }
                    conn.open = false;
                    self.store.client().await?
                }
            };
            let begin = match (conn.open, stale) {
                (true, false) => None,
                (true, true) => Some("ROLLBACK; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
                (false, _) => Some(BEGIN_READ),
            };
            conn.client = Some(client);
            conn.open = true;
            with_pinned(key, |p| p.stale = false);
            let out = match begin {
                None => f(conn.client()).await,
                Some(begin) => {
                    // Pipelined: BEGIN goes out first (`biased`: polled first) and the read's
                    // statements right behind it, without waiting a round trip for it (the
                    // connection runs them in order; tokio-postgres sends a request when its
                    // future is first polled).
                    let (begun, out) =
                        tokio::join!(biased; conn.client().batch_execute(begin), f(conn.client()));
                    match begun {
                        Ok(()) => out,
                        // The reads may have run outside the snapshot: not answered.
                        Err(e) => Err(e.into()),
                    }
                }
            };
            if server_error(&out) {
                with_pinned(key, |p| p.stale = true);
            }
            out
        })
    }
}

/// Every aggregate's trait is implemented on [`PgBackend`] (one file each beside this one).
///
/// A snapshot pins one connection of the pool to the thread while `f` runs: every read of
/// this backend on the thread runs in its `REPEATABLE READ READ ONLY` transaction, begun at
/// the first read, so the reads agree with each other whatever other instances commit. A
/// write on the thread runs on the same connection after ending that transaction, and the
/// next read begins a new one, which sees the write. (So a thread holds at most one
/// connection: snapshots on every reader thread cannot leave the writes inside them waiting
/// for a free one.) A snapshot inside a snapshot of the same backend is the outer one.
impl crate::storage::Store for PgBackend {
    fn snapshot(&self, f: &mut dyn FnMut()) {
        let key = self.snapshot_key();
        if with_pinned(key, |_| ()).is_some() {
            return f();
        }
        PINNED.with(|p| {
            p.borrow_mut().push(Pinned {
                key,
                client: None,
                open: false,
                stale: false,
            })
        });
        /// Ends the read transaction and gives the connection back, also if `f` panics.
        struct Unpin(usize);
        impl Drop for Unpin {
            fn drop(&mut self) {
                let key = self.0;
                let pinned = PINNED.with(|p| {
                    let mut p = p.borrow_mut();
                    let i = p.iter().position(|x| x.key == key)?;
                    Some(p.remove(i))
                });
                let Some(Pinned {
                    client: Some(client),
                    open,
                    ..
                }) = pinned
                else {
                    return;
                };
                if !open {
                    return drop(client);
                }
                if std::thread::panicking() || client.is_closed() {
                    return discard_if(client, true);
                }
                // The pool's next user of the connection queues behind the ROLLBACK.
                send_only(&client, "ROLLBACK");
                drop(client);
            }
        }
        let _unpin = Unpin(key);
        f()
    }
}

/// SQLSTATE classes the service answers as its own errors; everything else is a database
/// error with the server's whole message.
impl From<PgError> for StorageError {
    fn from(e: PgError) -> Self {
        if let PgError::Database(db) = &e
            && let Some(server) = db.as_db_error()
        {
            let code = server.code().code();
            return match code {
                // unique_violation, exclusion_violation: the row named by the server's message.
                "23505" | "23P01" => StorageError::Conflict(server.message().to_string()),
                // check_violation, raised by migration 013's triggers with SQLite's messages.
                "23514" => StorageError::Conflict(server.message().to_string()),
                // character_not_in_repertoire: a NUL in a text value, which SQLite stores and
                // PostgreSQL cannot; the input's fault, not the service's.
                "22021" => StorageError::Invalid(
                    "文本中含有 PostgreSQL 无法保存的字符(NUL,\\0):请删去该字符后重试".to_owned(),
                ),
                // disk_full, insufficient_resources, out_of_memory.
                "53100" | "53000" | "53200" => StorageError::Full,
                _ => StorageError::Backend(describe(db)),
            };
        }
        StorageError::Backend(e.to_string())
    }
}

impl From<tokio_postgres::Error> for StorageError {
    fn from(e: tokio_postgres::Error) -> Self {
        StorageError::from(PgError::Database(e))
    }
}
