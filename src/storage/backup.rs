//! The logged online copy of the whole database that the console hands out, and the copies
//! made since a moment (the purge lists them: a copy holds personal data). The SQLite
//! implementation is `sqlite/backup.rs`; a backend without a file copy (PostgreSQL: `pg_dump`
//! and its standby) refuses `backup_logged` with a message naming its own tool.

use std::path::Path;

use super::Result;
pub use crate::storage::sqlite::BackupRecord;

pub trait BackupStore: Send + Sync {
    /// Copies the whole database to `out` (a new file) with SQLite's online backup, then
    /// logs a `backup` entry naming the copy as `recorded_as` (a path, or how it was handed
    /// out): a backup holds personal data, and the purge lists backups made before it.
    fn backup_logged(&self, out: &Path, recorded_as: &str, actor: &str) -> Result<()>;
    /// Backups recorded in the audit log at or after `since_ms`, oldest first.
    fn backups_made_since(&self, since_ms: i64) -> Result<Vec<BackupRecord>>;
}
