//! The consoles' extra storage on SQLite: answer corrections, an operator's
//! day and list, and the audit-log search.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::calls::attempt_from_row;
use super::{SqliteStore, append_audit, ensure_unlocked, map_full};
use crate::domain::audit::AuditEntry;
use crate::domain::disposition::Outcome;
use crate::domain::roster::MemberCategory;
use crate::storage::admin::*;
use crate::storage::{AttemptRecord, AuditEvent, Result, RoundRecord, StorageError};

/// The columns of `calls::ATTEMPT_COLUMNS`, in its order, then the round's id.
const ATTEMPT_SELECT: &str = "SELECT a.id, a.member_id, m.unit_id, us.login, a.attempt_no, a.claimed_at, a.recorded_at,
        a.outcome, a.aapor_code, a.answers, a.answer_ms, a.comment, a.appointment_at, a.source, a.late, un.round_id
     FROM attempts a JOIN members m ON m.id = a.member_id JOIN units un ON un.id = m.unit_id
     JOIN users us ON us.id = a.operator_id";

fn json_vec<T: serde::de::DeserializeOwned>(s: Option<String>) -> Vec<T> {
    s.and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

/// An attempt in `ATTEMPT_SELECT`'s columns (the engine's, then the round's id).
fn attempt_row(r: &rusqlite::Row) -> rusqlite::Result<(AttemptRecord, i64)> {
    Ok((attempt_from_row(r)?, r.get(15)?))
}

fn load_attempt(c: &Connection, attempt_id: i64) -> Result<(AttemptRecord, i64)> {
    c.prepare_cached(&format!("{ATTEMPT_SELECT} WHERE a.id = ?1"))?
        .query_row([attempt_id], attempt_row)
        .optional()?
        .ok_or_else(|| StorageError::NotFound(format!("没有第 {attempt_id} 号拨打记录")))
}

fn labels(round: &RoundRecord, answers: &[Option<usize>]) -> Vec<String> {
    answers
        .iter()
        .map(|a| {
            a.and_then(|l| round.survey.levels.get(l))
                .map_or_else(|| "未答".to_string(), |l| l.label.clone())
        })
        .collect()
}

fn edit_row(r: &rusqlite::Row) -> rusqlite::Result<AnswerEditRecord> {
    Ok(AnswerEditRecord {
        id: r.get(0)?,
        attempt_id: r.get(1)?,
        at_ms: r.get(2)?,
        actor: r.get(3)?,
        reason: r.get(4)?,
        before: json_vec(r.get(5)?),
        after: json_vec(r.get(6)?),
    })
}

impl AdminStore for SqliteStore {
    fn attempt(&self, attempt_id: i64) -> Result<(AttemptRecord, i64)> {
        self.read(|c| load_attempt(c, attempt_id))
    }

    fn member_attempts(&self, member_id: i64) -> Result<Vec<AttemptRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "{ATTEMPT_SELECT} WHERE a.member_id = ?1 ORDER BY a.recorded_at, a.attempt_no"
            ))?;
            let rows = stmt.query_map([member_id], attempt_row)?;
            Ok(rows
                .map(|r| r.map(|(a, _)| a))
                .collect::<rusqlite::Result<_>>()?)
        })
    }

    fn edit_answers(
        &self,
        round: &RoundRecord,
        attempt_id: i64,
        answers: &[Option<usize>],
        reason: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<AnswerEditRecord> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(StorageError::Conflict("修改答案必须填写原因".into()));
        }
        self.write(|tx| {
            ensure_unlocked(tx, round.id)?;
            let (attempt, round_id) = load_attempt(tx, attempt_id)?;
            if round_id != round.id {
                return Err(StorageError::NotFound(format!(
                    "第 {attempt_id} 号拨打记录不在轮次 {} 中",
                    round.key
                )));
            }
            check_edited_answers(
                attempt.outcome,
                answers,
                round.survey.dimensions.len(),
                round.survey.levels.len(),
            )
            .map_err(StorageError::Conflict)?;
            if attempt.answers == answers {
                return Err(StorageError::Conflict("答案没有变化,未保存".into()));
            }
            let before = serde_json::to_string(&attempt.answers).unwrap_or_default();
            let after = serde_json::to_string(answers).unwrap_or_default();
            tx.execute(
                "UPDATE attempts SET answers = ?1 WHERE id = ?2",
                params![after, attempt_id],
            )
            .map_err(map_full)?;
            let at = now.timestamp_millis();
            tx.execute(
                "INSERT INTO answer_edits (attempt_id, at, actor, reason, before, after) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![attempt_id, at, actor, reason, before, after],
            )
            .map_err(map_full)?;
            let id = tx.last_insert_rowid();
            append_audit(
                tx,
                &AuditEvent {
                    actor,
                    action: "attempt.edit_answers",
                    round_key: Some(&round.key),
                    detail: serde_json::json!({
                        "attempt_id": attempt_id,
                        "member_id": attempt.member_id,
                        "operator": attempt.operator,
                        "before": attempt.answers,
                        "after": answers,
                        "before_labels": labels(round, &attempt.answers),
                        "after_labels": labels(round, answers),
                        "reason": reason,
                    }),
                },
            )?;
            Ok(AnswerEditRecord {
                id,
                attempt_id,
                at_ms: at,
                actor: actor.to_string(),
                reason: reason.to_string(),
                before: attempt.answers.clone(),
                after: answers.to_vec(),
            })
        })
    }

    fn answer_edits(&self, attempt_ids: &[i64]) -> Result<Vec<AnswerEditRecord>> {
        self.read(|c| {
            let mut out = Vec::new();
            let mut stmt = c.prepare_cached(
                "SELECT id, attempt_id, at, actor, reason, before, after FROM answer_edits
                 WHERE attempt_id = ?1 ORDER BY at, id",
            )?;
            for id in attempt_ids {
                for r in stmt.query_map([id], edit_row)? {
                    out.push(r?);
                }
            }
            out.sort_by_key(|e| (e.at_ms, e.id));
            Ok(out)
        })
    }

    fn operator_day(
        &self,
        round: &RoundRecord,
        operator_id: i64,
        since_ms: i64,
        now: DateTime<Utc>,
    ) -> Result<OperatorDay> {
        self.read(|c| operator_day_in(c, round, operator_id, since_ms, now))
    }

    fn operator_queue(
        &self,
        round: &RoundRecord,
        operator_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<QueueRow>> {
        let now_ms = now.timestamp_millis();
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT q.member_id, COALESCE(s.seq, 0), un.name, m.category, q.priority, q.sort_key,
                        (SELECT COUNT(*) FROM attempts a WHERE a.member_id = q.member_id),
                        (SELECT a.outcome FROM attempts a WHERE a.member_id = q.member_id
                          ORDER BY a.recorded_at DESC, a.attempt_no DESC LIMIT 1),
                        q.claim_token IS NOT NULL AND q.claim_expires > ?3
                 FROM queue q JOIN members m ON m.id = q.member_id JOIN units un ON un.id = m.unit_id
                 LEFT JOIN assignments s ON s.member_id = q.member_id
                 WHERE q.operator_id = ?1 AND q.round_id = ?2
                 ORDER BY q.priority, q.sort_key",
            )?;
            let rows = stmt.query_map(params![operator_id, round.id, now_ms], |r| {
                let priority: i64 = r.get(4)?;
                let sort_key: i64 = r.get(5)?;
                let last: Option<String> = r.get(7)?;
                let last_outcome = match last {
                    None => None,
                    Some(key) => match Outcome::from_key(&key) {
                        Some(o) => Some(o),
                        // Only on bad data: which attempt it is (the list's query stays lean).
                        None => {
                            let attempt: i64 = c.query_row(
                                "SELECT id FROM attempts WHERE member_id = ?1 ORDER BY recorded_at DESC, attempt_no DESC LIMIT 1",
                                [r.get::<_, i64>(0)?],
                                |r| r.get(0),
                            )?;
                            return Err(super::bad_value(7, "attempts", "outcome", attempt, key));
                        }
                    },
                };
                Ok(QueueRow {
                    member_id: r.get(0)?,
                    seq: r.get(1)?,
                    unit: r.get(2)?,
                    category: super::strict(r, 3, "members", "category", r.get(0)?, MemberCategory::from_stored_label)?,
                    priority: priority as u8,
                    due_ms: (priority < 2).then_some(sort_key),
                    attempts: r.get(6)?,
                    last_outcome,
                    on_call: r.get(8)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn search_audit(&self, f: &AuditFilter) -> Result<AuditPage> {
        const WHERE: &str = "WHERE (?1 IS NULL OR action = ?1
                   OR (substr(?1, -1) = '.' AND substr(action, 1, length(?1)) = ?1))
              AND (?2 IS NULL OR actor = ?2)
              AND (?3 IS NULL OR round_key = ?3)";
        self.read(|c| {
            let total: i64 = c
                .prepare_cached(&format!("SELECT COUNT(*) FROM audit_log {WHERE}"))?
                .query_row(params![f.action, f.actor, f.round_key], |r| r.get(0))?;
            let mut stmt = c.prepare_cached(&format!(
                "SELECT id, at, actor, action, round_key, detail, prev_hash, hash FROM audit_log {WHERE}
                 ORDER BY id DESC LIMIT ?4 OFFSET ?5"
            ))?;
            let rows = stmt.query_map(
                params![
                    f.action,
                    f.actor,
                    f.round_key,
                    f.limit as i64,
                    f.offset as i64
                ],
                |r| {
                    Ok(AuditEntry {
                        id: r.get(0)?,
                        at_ms: r.get(1)?,
                        actor: r.get(2)?,
                        action: r.get(3)?,
                        round_key: r.get(4)?,
                        detail: r.get(5)?,
                        prev_hash: r.get(6)?,
                        hash: r.get(7)?,
                    })
                },
            )?;
            Ok(AuditPage {
                entries: rows.collect::<rusqlite::Result<_>>()?,
                total: total as usize,
            })
        })
    }

    fn audit_facets(&self) -> Result<(Vec<String>, Vec<String>)> {
        self.read(|c| {
            let mut actions =
                c.prepare_cached("SELECT DISTINCT action FROM audit_log ORDER BY action")?;
            let actions = actions
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            let mut actors =
                c.prepare_cached("SELECT DISTINCT actor FROM audit_log ORDER BY actor")?;
            let actors = actors
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok((actions, actors))
        })
    }
}

/// [`AdminStore::operator_day`] on the caller's connection: a reader's snapshot, or the
/// writer's transaction that just recorded the operator's call.
pub(super) fn operator_day_in(
    c: &Connection,
    round: &RoundRecord,
    operator_id: i64,
    since_ms: i64,
    now: DateTime<Utc>,
) -> Result<OperatorDay> {
    let now_ms = now.timestamp_millis();
    let first_calls_open =
        crate::domain::schedule::may_call_now(&round.survey, &round.field_period(), now);
    // Local midnight falls on a quarter hour in every time zone in use: the tally is exact.
    let (completes, attempts): (i64, i64) = c
        .prepare_cached(
            "SELECT COALESCE(SUM(completes), 0), COALESCE(SUM(attempts), 0) FROM operator_tally
             WHERE round_id = ?1 AND operator_id = ?2 AND quarter >= ?3",
        )?
        .query_row(
            params![round.id, operator_id, since_ms.div_euclid(900_000)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
    // First calls are many (thousands per operator in a large round) and all alike:
    // read their number from the tally. Retries and appointments are few: aggregate those.
    let first_calls: i64 = c
        .prepare_cached(
            "SELECT COALESCE(SUM(n), 0) FROM queue_tally WHERE round_id = ?1 AND operator_id = ?2 AND priority = 2",
        )?
        .query_row(params![round.id, operator_id], |r| r.get(0))?;
    let (callbacks, callbacks_due, next_due): (i64, i64, Option<i64>) = c
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(sort_key <= ?3), 0), MIN(CASE WHEN sort_key > ?3 THEN sort_key END)
             FROM queue WHERE operator_id = ?1 AND round_id = ?2 AND priority < 2",
        )?
        .query_row(params![operator_id, round.id, now_ms], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let remaining = first_calls + callbacks;
    let due_now = callbacks_due + if first_calls_open { first_calls } else { 0 };
    Ok(OperatorDay {
        completes_today: completes as u32,
        attempts_today: attempts as u32,
        remaining: remaining as u32,
        due_now: due_now as u32,
        next_due_ms: next_due,
    })
}
