//! Storage: the seam between the service and its database, one trait per aggregate, and the
//! SQLite implementation of all of them ([`sqlite::SqliteStore`]).
//!
//! | trait | aggregate | file |
//! |---|---|---|
//! | [`RoundStore`] | rounds and their units, the link to a previous round | `rounds.rs` |
//! | [`RosterStore`] | members (the panels of the units) | `roster.rs` |
//! | [`PlanStore`] | call plans, assignments, exclusions, call lists | `plans.rs` |
//! | [`CallStore`] | the queue and its claims, attempts, reopenings, an operator's day | `calls.rs` |
//! | [`AccountStore`] | users, web sessions and sign-in throttling, API tokens | `accounts.rs` |
//! | [`ResultsStore`] | on-site data, evidence, each round's results settings | `results.rs` |
//! | [`AuditStore`] | the hash-chained audit log | `audit.rs` |
//! | [`BackupStore`] | the logged online copy the console hands out, and the copies made since | `backup.rs` |
//!
//! [`Store`] is all of them together: what the web state, the CLI and the operations hold. A
//! second backend (PostgreSQL) implements these traits; `docs/storage.md` is the contract it
//! keeps. SQLite-only maintenance (backup, checkpoint, `check`, queue rebuild) is not part of
//! the seam: it is inherent methods of [`sqlite::SqliteStore`] (`sqlite/maintenance.rs`).

pub mod accounts;
pub mod audit;
pub mod backup;
pub mod calls;
pub mod location;
pub mod maintenance;
pub mod plans;
pub mod postgres;
pub(crate) mod read_cache;
pub mod results;
pub mod roster;
pub mod rounds;
pub mod sqlite;

pub use accounts::*;
pub use audit::*;
pub use backup::*;
pub use calls::*;
pub use location::DatabaseLocation;
pub use maintenance::{CheckReport, MaintenanceStore};
pub use plans::*;
pub use results::*;
pub use roster::*;
pub use rounds::*;

use chrono::{DateTime, Utc};

/// The storage traits, for code that calls them on a concrete store (`SqliteStore`): a trait
/// object (`&dyn Store`) has every supertrait's methods without importing them.
pub mod prelude {
    pub use super::{
        AccountStore, AuditStore, BackupStore, CallStore, MaintenanceStore, PlanStore,
        ResultsStore, RosterStore, RoundStore, Store,
    };
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("round `{0}` is locked; nothing about it can change")]
    Locked(String),
    #[error(
        "存储空间已满(磁盘或数据库大小上限),本次修改未保存;已保存的数据不受影响。请清理磁盘空间后重试"
    )]
    Full,
    #[error("database error: {0}")]
    Database(rusqlite::Error),
    /// Input this backend cannot store (a NUL character in text on PostgreSQL): the request's
    /// fault, answered as a bad request, with what to change.
    #[error("{0}")]
    Invalid(String),
    /// An error of a backend other than SQLite (PostgreSQL), with the server's whole message.
    #[error("database error: {0}")]
    Backend(String),
    /// A stored enumerated value no reader knows: written before migration 013's triggers,
    /// or by hand. Named, never read as some default.
    #[error(transparent)]
    BadStoredValue(#[from] BadStoredValue),
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("stored survey definition of round `{round}` is invalid: {error}")]
    CorruptSurvey { round: String, error: String },
    #[error("cannot open the database at {path}: {error}")]
    Open { path: String, error: String },
}

/// Which stored value could not be read: table, row id, column and the value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "数据库表 {table} 第 {row_id} 行的 {column} 列存有无法识别的值 `{value}`,该行无法读取。请运行 `sheping check` 查看,由管理员更正这一行后再试"
)]
pub struct BadStoredValue {
    pub table: &'static str,
    pub row_id: i64,
    pub column: &'static str,
    pub value: String,
}

/// Row mappers run inside rusqlite, so a strict decoder's error travels as a conversion
/// failure; here it becomes the named error again.
impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::FromSqlConversionFailure(i, t, inner) => {
                match inner.downcast::<BadStoredValue>() {
                    Ok(bad) => StorageError::BadStoredValue(*bad),
                    Err(inner) => StorageError::Database(
                        rusqlite::Error::FromSqlConversionFailure(i, t, inner),
                    ),
                }
            }
            e => StorageError::Database(e),
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// All the storage the service needs, over one handle (`Arc<dyn Store>`).
///
/// The methods are synchronous: the web layer calls them inside `spawn_blocking` (or on the
/// call screen's reader threads), the CLI directly. A backend whose client is async (a
/// PostgreSQL pool on tokio) blocks on its runtime handle inside these calls; it must not be
/// called from an async task's own thread. Every write the service acknowledges is durable
/// (committed) when its method returns; see `docs/storage.md` for the rest of the contract.
pub trait Store:
    RoundStore
    + RosterStore
    + PlanStore
    + CallStore
    + AccountStore
    + ResultsStore
    + AuditStore
    + BackupStore
    + MaintenanceStore
    + Send
    + Sync
{
    /// Runs `f` with every read it makes on this thread taken from one snapshot: the reads
    /// agree with each other, and share one read transaction instead of starting (and, after
    /// any write, warming) one each. A write made inside `f` starts a new snapshot, so `f`
    /// always reads its own writes; other writers' commits stay unseen until then.
    fn snapshot(&self, f: &mut dyn FnMut());
}

/// [`Store::snapshot`] for a closure that returns a value.
pub fn in_snapshot<T>(store: &(impl Store + ?Sized), f: impl FnOnce() -> T) -> T {
    let mut f = Some(f);
    let mut out = None;
    store.snapshot(&mut || {
        if let Some(f) = f.take() {
            out = Some(f());
        }
    });
    out.expect("snapshot runs its closure once")
}

/// A write queued for the writer; resolves to its answer once it is durable.
pub type Queued<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

pub fn ms_to_utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
