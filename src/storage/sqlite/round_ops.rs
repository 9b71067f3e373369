//! [`RoundOpsStore`] on SQLite: a round's counts in one read transaction, and the logged
//! backup.

use std::path::Path;

use rusqlite::params;

use super::SqliteStore;
use crate::domain::round_path::RoundCounts;
use crate::storage::round_ops::{BackupRecord, RoundOpsStore};
use crate::storage::{AuditEvent, Result, RoundRecord, Storage};

/// Every count in one statement (one snapshot). Completes are members with an attempt coded
/// AAPOR 1.1, as in the progress tallies.
const COUNTS: &str = "
WITH m AS (
    SELECT m.id, m.unit_id, m.name IS NOT NULL OR m.phone IS NOT NULL OR m.phone_alt IS NOT NULL
           OR m.organization IS NOT NULL OR m.note IS NOT NULL AS contact
    FROM members m JOIN units u ON u.id = m.unit_id WHERE u.round_id = ?1
),
done AS (
    SELECT m.unit_id, COUNT(DISTINCT m.id) AS n FROM m JOIN attempts a ON a.member_id = m.id
    WHERE a.aapor_code = '1.1' GROUP BY m.unit_id
)
SELECT
    (SELECT COUNT(*) FROM units WHERE round_id = ?1),
    (SELECT COUNT(DISTINCT unit_id) FROM m),
    (SELECT COUNT(*) FROM m),
    (SELECT COUNT(*) FROM m WHERE NOT EXISTS (SELECT 1 FROM assignments s WHERE s.member_id = m.id)
                              AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.member_id = m.id)),
    (SELECT COUNT(*) FROM m WHERE contact),
    (SELECT COUNT(*) FROM users WHERE role = 'operator' AND active = 1),
    (SELECT COUNT(*) FROM operator_exclusions WHERE round_id = ?1),
    (SELECT COUNT(*) FROM plans WHERE round_id = ?1),
    (SELECT COUNT(*) FROM attempts a JOIN m ON m.id = a.member_id),
    (SELECT COALESCE(SUM(n), 0) FROM done),
    (SELECT COUNT(*) FROM done),
    (SELECT COUNT(*) FROM units u LEFT JOIN done d ON d.unit_id = u.id
     WHERE u.round_id = ?1 AND COALESCE(d.n, 0) < ?2),
    (SELECT COUNT(*) FROM units u WHERE u.round_id = ?1
       AND (EXISTS (SELECT 1 FROM onsite_ballots b WHERE b.unit_id = u.id)
            OR EXISTS (SELECT 1 FROM onsite_scores s WHERE s.unit_id = u.id))),
    (SELECT locked_at IS NOT NULL FROM rounds WHERE id = ?1),
    EXISTS (SELECT 1 FROM audit_log WHERE action = 'round.purge_contacts' AND round_key = ?3)";

impl RoundOpsStore for SqliteStore {
    fn round_counts(&self, round: &RoundRecord) -> Result<RoundCounts> {
        let min = round.survey.scoring.min_completes;
        self.read(|c| {
            Ok(c.prepare_cached(COUNTS)?
                .query_row(params![round.id, min, round.key], |r| {
                    let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as usize);
                    Ok(RoundCounts {
                        units: n(0)?,
                        units_with_members: n(1)?,
                        members: n(2)?,
                        members_unassigned: n(3)?,
                        members_with_contacts: n(4)?,
                        operators: n(5)?,
                        exclusions: n(6)?,
                        plans: n(7)?,
                        attempts: n(8)?,
                        completes: n(9)?,
                        units_with_completes: n(10)?,
                        units_short: n(11)?,
                        min_completes: min,
                        units_with_onsite: n(12)?,
                        locked: r.get(13)?,
                        contacts_purged: r.get(14)?,
                    })
                })?)
        })
    }

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
