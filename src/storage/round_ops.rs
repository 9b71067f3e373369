//! What the console's round operations need beyond the other traits: a round's counts for
//! its path (`domain::round_path`), and the logged online backup. The SQLite implementation
//! is `sqlite/round_ops.rs`.

use std::path::Path;

use super::{Result, RoundRecord};
use crate::domain::round_path::RoundCounts;
pub use crate::storage::sqlite::BackupRecord;

pub trait RoundOpsStore: Send + Sync {
    /// The counts a round's path is computed from, read in one snapshot.
    fn round_counts(&self, round: &RoundRecord) -> Result<RoundCounts>;
    /// Copies the whole database to `out` (a new file) with SQLite's online backup, then
    /// logs a `backup` entry naming the copy as `recorded_as` (a path, or how it was handed
    /// out): a backup holds personal data, and the purge lists backups made before it.
    fn backup_logged(&self, out: &Path, recorded_as: &str, actor: &str) -> Result<()>;
    /// Backups recorded in the audit log at or after `since_ms`, oldest first.
    fn backups_made_since(&self, since_ms: i64) -> Result<Vec<BackupRecord>>;
}
