//! [`BackupStore`] on SQLite: the online backup, logged.

use std::path::Path;

use super::SqliteStore;
use crate::storage::{AuditEvent, AuditStore, BackupRecord, BackupStore, Result};

impl BackupStore for SqliteStore {
    fn backup_logged(&self, out: &Path, recorded_as: &str, actor: &str) -> Result<()> {
        self.backup_to(out)?;
        self.audit(&AuditEvent {
            actor,
            action: "backup",
            round_key: None,
            detail: serde_json::json!({ "out": recorded_as }),
        })
    }

    fn backups_made_since(&self, since_ms: i64) -> Result<Vec<BackupRecord>> {
        self.backups_since(since_ms)
    }
}
