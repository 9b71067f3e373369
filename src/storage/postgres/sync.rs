//! [`PgStore`] behind the synchronous storage traits (`storage::Store`). The traits block (the
//! web layer calls them inside `spawn_blocking`, the CLI directly); the pool's connections are
//! tasks of a runtime of the store's own, and each trait method blocks on it. Owning the
//! runtime keeps the connections alive whoever calls — the CLI has no runtime, the server's
//! blocking threads must not block on the server's own.

use std::future::Future;

use super::{PgError, PgStore, describe};
use crate::storage::StorageError;

/// The PostgreSQL backend: a [`PgStore`] and the runtime its connections live on.
pub struct PgBackend {
    // Declared first: dropped before the runtime that runs its connections.
    store: PgStore,
    runtime: tokio::runtime::Runtime,
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
        Ok(PgBackend { store, runtime })
    }

    pub fn store(&self) -> &PgStore {
        &self.store
    }

    /// Runs `f` on the store's runtime as a task of its own: for work a caller on another
    /// runtime awaits (an async request must not block its thread, nor call [`Self::block_on`]
    /// from inside a runtime).
    pub fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(f)
    }

    /// Runs `f` to completion on the store's runtime. Call it from a thread that is not
    /// driving async tasks (the CLI, `spawn_blocking`, a reader thread).
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }
}

/// Every aggregate's trait is implemented on [`PgBackend`] (one file each beside this one).
/// A snapshot here only runs `f`: each method reads in its own transaction, so the reads of
/// one page agree per method but not across methods (the SQLite store pins one read
/// transaction per thread). Pinning a `REPEATABLE READ` connection to the thread is the way to
/// give PostgreSQL the same guarantee; until then a page may mix two moments in a busy round.
impl crate::storage::Store for PgBackend {
    fn snapshot(&self, f: &mut dyn FnMut()) {
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
