//! [`RoundStore`] on SQLite: rounds, their units, the purge, and the link to a previous round.

use chrono::NaiveDate;
use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, append_audit, conflict_on_unique, ensure_unlocked, now_ms, strict};
use crate::domain::unit::{NewUnit, UnitKind};
use crate::storage::*;

impl RoundStore for SqliteStore {
    fn create_round(&self, round: &NewRound, actor: &str) -> Result<RoundRecord> {
        self.write(|tx| {
            let exists: bool = tx.query_row("SELECT EXISTS(SELECT 1 FROM rounds WHERE key = ?1)", [&round.key], |r| r.get(0))?;
            if exists {
                return Err(StorageError::Conflict(format!("评估轮次 `{}` 已存在", round.key)));
            }
            let fmt = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
            tx.execute(
                "INSERT INTO rounds (key, title, survey_toml, survey_source, field_start, field_end, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    round.key,
                    round.title,
                    round.survey.to_toml_string(),
                    round.survey_source,
                    round.field.map(|f| fmt(f.0)),
                    round.field.map(|f| fmt(f.1)),
                    now_ms()
                ],
            )?;
            append_audit(
                tx,
                &AuditEvent {
                    actor,
                    action: "round.create",
                    round_key: Some(&round.key),
                    detail: serde_json::json!({ "title": round.title, "survey": round.survey_source }),
                },
            )?;
            Ok(())
        })?;
        self.round(&round.key)
    }

    fn rounds(&self) -> Result<Vec<RoundSummary>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT r.*, (SELECT COUNT(*) FROM units u WHERE u.round_id = r.id) AS n_units,
                        (SELECT COUNT(*) FROM members m JOIN units u ON m.unit_id = u.id WHERE u.round_id = r.id) AS n_members
                 FROM rounds r ORDER BY r.created_at DESC, r.id DESC",
            )?;
            let rows = stmt.query_map([], |row| {
                let pair = Self::round_from_row(row)?;
                Ok((pair, row.get::<_, i64>("n_units")? as usize, row.get::<_, i64>("n_members")? as usize))
            })?;
            let mut out = Vec::new();
            for r in rows {
                let (pair, units, members) = r?;
                out.push(RoundSummary { round: self.parse_round(pair)?, units, members });
            }
            Ok(out)
        })
    }

    fn round(&self, key: &str) -> Result<RoundRecord> {
        let pair = self.read(|c| {
            Ok(c.query_row(
                "SELECT * FROM rounds WHERE key = ?1",
                [key],
                Self::round_from_row,
            )
            .optional()?)
        })?;
        match pair {
            Some(p) => self.parse_round(p),
            None => Err(StorageError::NotFound(format!(
                "没有评估轮次 `{key}`(用 `sheping round list` 查看已有轮次)"
            ))),
        }
    }

    fn set_field_period(
        &self,
        round: &RoundRecord,
        start: NaiveDate,
        end: NaiveDate,
        actor: &str,
    ) -> Result<()> {
        self.write(|tx| {
            ensure_unlocked(tx, round.id)?;
            tx.execute(
                "UPDATE rounds SET field_start = ?1, field_end = ?2 WHERE id = ?3",
                params![
                    start.format("%Y-%m-%d").to_string(),
                    end.format("%Y-%m-%d").to_string(),
                    round.id
                ],
            )?;
            append_audit(
                tx,
                &AuditEvent {
                    actor,
                    action: "round.field",
                    round_key: Some(&round.key),
                    detail: serde_json::json!({
                        "before": [round.field_start, round.field_end],
                        "after": [start, end],
                    }),
                },
            )
        })
    }

    fn lock_round(&self, round: &RoundRecord, actor: &str) -> Result<()> {
        self.write(|tx| {
            ensure_unlocked(tx, round.id)?;
            tx.execute("UPDATE rounds SET locked_at = ?1, locked_by = ?2 WHERE id = ?3", params![now_ms(), actor, round.id])?;
            // Claims end with the lock: nothing more can be recorded.
            tx.execute("UPDATE queue SET claim_token = NULL, claimed_at = NULL, claim_expires = NULL WHERE round_id = ?1", [round.id])?;
            append_audit(tx, &AuditEvent { actor, action: "round.lock", round_key: Some(&round.key), detail: serde_json::json!({}) })
        })
    }

    /// Deletes for real (个人信息保护法): the freed cells are zeroed (`secure_delete`), then the
    /// file is rewritten without free pages and the WAL emptied ([`SqliteStore::scrub`]), so no
    /// purged name or number is left in the database file or its WAL.
    fn purge_contacts(&self, round: &RoundRecord, actor: &str) -> Result<usize> {
        // Only for the purge: zeroing every deletion would cost the operators' hot path.
        self.writer
            .outside_tx(|c| Ok(c.pragma_update(None, "secure_delete", "ON")?))?;
        let purged = self.purge_rows(round, actor);
        let off = self
            .writer
            .outside_tx(|c| Ok(c.pragma_update(None, "secure_delete", "OFF")?));
        let n = purged?;
        off?;
        if !self.scrub()? {
            return Err(StorageError::Conflict(format!(
                "已清除轮次 {} 中 {n} 名代表的姓名和联系方式,但另一个进程(如正在运行的 sheping serve)仍在读取数据库,\
                 预写日志(-wal)未能清空,其中可能仍有旧数据:停止服务后再运行一次 `sheping round purge-contacts {}`",
                round.key, round.key
            )));
        }
        Ok(n)
    }

    fn units(&self, round_id: i64) -> Result<Vec<UnitRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT u.id, u.name, u.kind, u.sector, u.code,
                        COUNT(m.id) AS panel,
                        COALESCE(SUM(m.category IN ('党代表', '人大代表', '政协委员')), 0) AS deputies
                 FROM units u LEFT JOIN members m ON m.unit_id = u.id
                 WHERE u.round_id = ?1 GROUP BY u.id ORDER BY u.id",
            )?;
            let rows = stmt.query_map([round_id], |r| {
                Ok(UnitRecord {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    kind: strict(r, 2, "units", "kind", r.get(0)?, UnitKind::from_stored_label)?,
                    sector: r.get(3)?,
                    code: r.get(4)?,
                    panel: r.get::<_, i64>(5)? as usize,
                    two_deputies_one_member: r.get::<_, i64>(6)? as usize,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn add_units(&self, round: &RoundRecord, units: &[NewUnit], actor: &str) -> Result<usize> {
        self.write(|tx| {
            ensure_unlocked(tx, round.id)?;
            let mut ins = tx.prepare_cached("INSERT INTO units (round_id, name, kind, sector, code) VALUES (?1, ?2, ?3, ?4, ?5)")?;
            for u in units {
                ins.execute(params![round.id, u.name, u.kind.label(), u.sector, u.code]).map_err(|e| conflict_on_unique(e, || format!("单位“{}”已在本轮评估中", u.name)))?;
            }
            append_audit(
                tx,
                &AuditEvent { actor, action: "units.import", round_key: Some(&round.key), detail: serde_json::json!({ "units": units.len() }) },
            )?;
            Ok(units.len())
        })
    }

    fn set_previous_round(
        &self,
        round: &RoundRecord,
        previous: &RoundRecord,
        actor: &str,
    ) -> Result<()> {
        if round.id == previous.id {
            return Err(StorageError::Conflict(format!(
                "轮次 {} 不能以自身为上一轮",
                round.key
            )));
        }
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO round_previous (round_id, previous_round_id) VALUES (?1, ?2)
                 ON CONFLICT (round_id) DO UPDATE SET previous_round_id = excluded.previous_round_id",
            )?
            .execute([round.id, previous.id])?;
            append_audit(
                tx,
                &AuditEvent {
                    actor,
                    action: "round.previous",
                    round_key: Some(&round.key),
                    detail: serde_json::json!({ "previous": previous.key }),
                },
            )?;
            Ok(())
        })
    }

    fn previous_round(&self, round_id: i64) -> Result<Option<String>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT r.key FROM round_previous p JOIN rounds r ON r.id = p.previous_round_id
                 WHERE p.round_id = ?1",
                [round_id],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn round_counts(&self, round: &RoundRecord) -> Result<crate::domain::round_path::RoundCounts> {
        let min = round.survey.scoring.min_completes;
        self.read(|c| {
            Ok(c.prepare_cached(COUNTS)?
                .query_row(params![round.id, min, round.key], |r| {
                    let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as usize);
                    Ok(crate::domain::round_path::RoundCounts {
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
}

impl SqliteStore {
    /// The purge's rows: names, numbers and free text of a locked round's members.
    fn purge_rows(&self, round: &RoundRecord, actor: &str) -> Result<usize> {
        self.write(|tx| {
            let locked: Option<i64> = tx.query_row("SELECT locked_at FROM rounds WHERE id = ?1", [round.id], |r| r.get(0))?;
            if locked.is_none() {
                return Err(StorageError::Conflict(format!(
                    "轮次 {} 尚未锁定:先锁定轮次(结果定稿)再清除联系方式",
                    round.key
                )));
            }
            // Comments the operators typed may name the respondent or a number: masked for
            // good, as exports and feedback pages already show them.
            let comments: Vec<(i64, String, Vec<String>)> = tx
                .prepare(
                    "SELECT a.id, a.comment, m.name, m.phone, m.phone_alt FROM attempts a
                     JOIN members m ON m.id = a.member_id JOIN units u ON u.id = m.unit_id
                     WHERE u.round_id = ?1 AND a.comment IS NOT NULL",
                )?
                .query_map([round.id], |r| {
                    let personal = [r.get::<_, Option<String>>(2)?, r.get(3)?, r.get(4)?];
                    Ok((r.get(0)?, r.get(1)?, personal.into_iter().flatten().collect()))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut mask = tx.prepare("UPDATE attempts SET comment = ?2 WHERE id = ?1")?;
            for (id, comment, personal) in &comments {
                let refs: Vec<&str> = personal.iter().map(String::as_str).collect();
                let masked = crate::domain::personal::scrub_comment(comment, &refs);
                if masked != *comment {
                    mask.execute(params![id, masked])?;
                }
            }
            let n = tx.execute(
                "UPDATE members SET name = NULL, phone = NULL, phone_alt = NULL, organization = NULL, note = NULL
                 WHERE unit_id IN (SELECT id FROM units WHERE round_id = ?1) AND (name IS NOT NULL OR phone IS NOT NULL OR phone_alt IS NOT NULL OR organization IS NOT NULL OR note IS NOT NULL)",
                [round.id],
            )?;
            append_audit(
                tx,
                &AuditEvent { actor, action: "round.purge_contacts", round_key: Some(&round.key), detail: serde_json::json!({ "members": n }) },
            )?;
            Ok(n)
        })
    }
}

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
