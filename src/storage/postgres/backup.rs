//! [`BackupStore`] on PostgreSQL: there is no file to copy online; the database's own tools
//! (`pg_dump`, a standby) make its backups, so `backup_logged` refuses and says so. The
//! backups recorded in the audit log (by `sheping migrate`, or a copy made before the move)
//! are listed as on SQLite.

use std::path::Path;

use super::PgBackend;
use crate::storage::{BackupRecord, BackupStore, Result, StorageError};

/// What `backup_logged` answers on PostgreSQL.
pub const NO_ONLINE_BACKUP: &str = "PostgreSQL 数据库不能用 sheping 备份:请用 PostgreSQL 自带的 `pg_dump`(或备用服务器)备份整个数据库,做法见 docs/deploy.md 的“PostgreSQL”一节。备份中含有个人信息,请妥善保管";

impl BackupStore for PgBackend {
    fn backup_logged(&self, _out: &Path, _recorded_as: &str, _actor: &str) -> Result<()> {
        Err(StorageError::Conflict(NO_ONLINE_BACKUP.to_owned()))
    }

    fn backups_made_since(&self, since_ms: i64) -> Result<Vec<BackupRecord>> {
        self.read(async |c| {
            let rows = c
                .query(
                    "SELECT at, detail FROM audit_log WHERE action = 'backup' AND at >= $1 ORDER BY id",
                    &[&since_ms],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| {
                    let (at_ms, detail): (i64, String) = (r.get(0), r.get(1));
                    let out = serde_json::from_str::<serde_json::Value>(&detail)
                        .ok()
                        .and_then(|v| v.get("out").and_then(|o| o.as_str()).map(str::to_string))
                        .unwrap_or(detail);
                    BackupRecord { at_ms, out }
                })
                .collect())
        })
    }
}
