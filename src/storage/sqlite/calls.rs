//! [`CallStore`] on SQLite: the queue with its claims, call attempts, reopenings, answer
//! corrections, and an operator's day and list.
//! Every state change runs in one IMMEDIATE transaction on the single writer connection, so
//! concurrent operators are serialised and a contact can never be held twice.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    SqliteStore, append_audit, conflict_on_unique, ensure_unlocked, map_full, member_from_row,
    strict,
};
use crate::domain::disposition::{AttemptFact, MemberHistory, Outcome};
use crate::domain::queue::{QueueSlot, queue_slot};
use crate::domain::roster::MemberCategory;
use crate::domain::unit::UnitKind;
use crate::storage::*;

const ATTEMPT_COLUMNS: &str = "a.id, a.member_id, m.unit_id, u.login, a.attempt_no, a.claimed_at, a.recorded_at, a.outcome, \
     a.aapor_code, a.answers, a.answer_ms, a.comment, a.appointment_at, a.source, a.late";

/// An attempt in `ATTEMPT_COLUMNS`' order (the first 15 columns of the row).
pub(super) fn attempt_from_row(r: &rusqlite::Row) -> rusqlite::Result<AttemptRecord> {
    let answers: Option<String> = r.get(9)?;
    let answer_ms: Option<String> = r.get(10)?;
    Ok(AttemptRecord {
        id: r.get(0)?,
        member_id: r.get(1)?,
        unit_id: r.get(2)?,
        operator: r.get(3)?,
        attempt_no: r.get(4)?,
        claimed_at_ms: r.get(5)?,
        recorded_at_ms: r.get(6)?,
        outcome: strict(r, 7, "attempts", "outcome", r.get(0)?, Outcome::from_key)?,
        aapor_code: r.get(8)?,
        answers: answers
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default(),
        answer_ms: answer_ms
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default(),
        comment: r.get(11)?,
        appointment_at_ms: r.get(12)?,
        source: r.get(13)?,
        late: r.get(14)?,
    })
}

/// What is wrong with the attempt in `ATTEMPT_COLUMNS`' order, judged against the survey.
fn stored_problem(
    r: &rusqlite::Row,
    survey: &crate::domain::survey::Survey,
) -> rusqlite::Result<Option<String>> {
    let outcome: String = r.get(7)?;
    let aapor: String = r.get(8)?;
    let answers: Option<String> = r.get(9)?;
    let parsed: std::result::Result<Vec<Option<usize>>, String> = match answers {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(&text).map_err(|e| e.to_string()),
    };
    Ok(crate::domain::disposition::stored_attempt_problem(
        &outcome,
        &aapor,
        parsed.as_deref().map_err(String::as_str),
        survey.dimensions.len(),
        survey.levels.len(),
    ))
}

fn member_attempts(c: &Connection, member_id: i64) -> rusqlite::Result<Vec<AttemptRecord>> {
    // Built once: the call screen asks on every call.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts a JOIN members m ON m.id = a.member_id JOIN users u ON u.id = a.operator_id
             WHERE a.member_id = ?1 ORDER BY a.recorded_at, a.attempt_no"
        )
    });
    let mut stmt = c.prepare_cached(&SQL)?;
    stmt.query_map([member_id], attempt_from_row)?.collect()
}

fn reopened_at(c: &Connection, member_id: i64) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let ms: Option<i64> = c
        .prepare_cached("SELECT MAX(at) FROM reopenings WHERE member_id = ?1")?
        .query_row([member_id], |r| r.get(0))?;
    Ok(ms.map(ms_to_utc))
}

fn member_record(
    c: &Connection,
    member_id: i64,
) -> rusqlite::Result<(MemberRecord, UnitKind, i64)> {
    c.prepare_cached(
        "SELECT m.id, m.unit_id, u.name, m.name, m.phone, m.phone_alt, m.category, m.organization, m.note, u.kind, u.round_id
         FROM members m JOIN units u ON u.id = m.unit_id WHERE m.id = ?1",
    )?
    .query_row([member_id], |r| {
        Ok((
            member_from_row(r)?,
            strict(r, 9, "units", "kind", r.get(1)?, UnitKind::from_stored_label)?,
            r.get(10)?,
        ))
    })
}

/// Recomputes a member's queue row from its history. `clear_claim` ends any claim on it.
pub(super) fn refresh_queue(
    c: &Connection,
    round: &RoundRecord,
    member_id: i64,
    now: DateTime<Utc>,
    clear_claim: bool,
) -> Result<()> {
    let facts = member_facts(c, member_id)?;
    let history = MemberHistory {
        attempts: &facts,
        reopened_at: reopened_at(c, member_id)?,
    };
    place_in_queue(c, round, member_id, &history, now, clear_claim)
}

/// A member's attempt history as the schedule needs it (no joins: the write path's read).
fn member_facts(c: &Connection, member_id: i64) -> rusqlite::Result<Vec<AttemptFact>> {
    let mut stmt = c.prepare_cached(
        "SELECT outcome, recorded_at, appointment_at, id FROM attempts WHERE member_id = ?1 ORDER BY recorded_at, attempt_no",
    )?;
    stmt.query_map([member_id], |r| {
        Ok(AttemptFact {
            outcome: strict(r, 0, "attempts", "outcome", r.get(3)?, Outcome::from_key)?,
            at: ms_to_utc(r.get(1)?),
            appointment: r.get::<_, Option<i64>>(2)?.map(ms_to_utc),
        })
    })?
    .collect()
}

/// Puts a member in its place in the queue (or takes it out) given its history.
fn place_in_queue(
    c: &Connection,
    round: &RoundRecord,
    member_id: i64,
    history: &MemberHistory,
    now: DateTime<Utc>,
    clear_claim: bool,
) -> Result<()> {
    let assignment: Option<(i64, u32)> = c
        .prepare_cached("SELECT operator_id, seq FROM assignments WHERE member_id = ?1")?
        .query_row([member_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((operator_id, seq)) = assignment else {
        c.prepare_cached("DELETE FROM queue WHERE member_id = ?1")?
            .execute([member_id])?;
        return Ok(());
    };
    match queue_slot(&round.survey, &round.field_period(), history, seq, now) {
        QueueSlot::Remove => {
            c.prepare_cached("DELETE FROM queue WHERE member_id = ?1")?
                .execute([member_id])?;
        }
        QueueSlot::Place { priority, sort_key } => {
            c.prepare_cached(
                "INSERT INTO queue (member_id, round_id, operator_id, priority, sort_key) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(member_id) DO UPDATE SET operator_id = excluded.operator_id, priority = excluded.priority,
                     sort_key = excluded.sort_key",
            )?
            .execute(params![member_id, round.id, operator_id, priority as i64, sort_key])?;
            if clear_claim {
                c.prepare_cached("UPDATE queue SET claim_token = NULL, claimed_at = NULL, claim_expires = NULL, claimed_by = NULL WHERE member_id = ?1")?
                    .execute([member_id])?;
            }
        }
    }
    Ok(())
}

impl SqliteStore {
    /// A claim's record and history are read after the commit, outside the one writer's turn
    /// (every other operator's write waits for it).
    fn claim_view_of(&self, claimed: Option<Claimed>) -> Result<Option<Claim>> {
        let Some(c) = claimed else {
            return Ok(None);
        };
        self.read(|conn| {
            claim_view(
                conn,
                &c.token,
                c.member_id,
                c.claimed_at_ms,
                c.expires_at_ms,
            )
        })
        .map(Some)
    }
}

fn claim_view(
    c: &Connection,
    token: &str,
    member_id: i64,
    claimed_at: i64,
    expires: i64,
) -> Result<Claim> {
    let (member, unit_kind, _) = member_record(c, member_id)?;
    let earlier = member_attempts(c, member_id)?;
    let appointment_at_ms = earlier
        .last()
        .filter(|a| a.outcome == Outcome::Appointment)
        .and_then(|a| a.appointment_at_ms);
    Ok(Claim {
        token: token.to_string(),
        member,
        unit_kind,
        attempt_no: earlier.len() as u32 + 1,
        earlier,
        appointment_at_ms,
        claimed_at_ms: claimed_at,
        expires_at_ms: expires,
    })
}

/// The contacts an operator holds now, on the caller's connection.
fn held_claims_in(
    c: &Connection,
    round: &RoundRecord,
    operator: &UserRecord,
    now: DateTime<Utc>,
) -> Result<Vec<Claim>> {
    let mut stmt = c.prepare_cached(
        "SELECT claim_token, member_id, claimed_at, claim_expires FROM queue
         WHERE operator_id = ?1 AND round_id = ?2 AND claim_token IS NOT NULL AND claim_expires > ?3 ORDER BY claimed_at",
    )?;
    let rows: Vec<(String, i64, i64, i64)> = stmt
        .query_map(
            params![operator.id, round.id, now.timestamp_millis()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?
        .collect::<rusqlite::Result<_>>()?;
    rows.into_iter()
        .map(|(t, m, a, e)| claim_view(c, &t, m, a, e))
        .collect()
}

fn attempt_brief_in(c: &Connection, attempt_id: i64) -> Result<Option<AttemptBrief>> {
    Ok(c.prepare_cached(
        "SELECT a.operator_id, un.round_id, un.name, a.attempt_no, a.outcome, a.recorded_at,
                a.appointment_at
         FROM attempts a JOIN members m ON m.id = a.member_id JOIN units un ON un.id = m.unit_id
         WHERE a.id = ?1",
    )?
    .query_row([attempt_id], |r| {
        Ok(AttemptBrief {
            operator_id: r.get(0)?,
            round_id: r.get(1)?,
            unit_name: r.get(2)?,
            attempt_no: r.get(3)?,
            outcome: strict(r, 4, "attempts", "outcome", attempt_id, Outcome::from_key)?,
            recorded_at_ms: r.get(5)?,
            appointment_at_ms: r.get(6)?,
        })
    })
    .optional()?)
}

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

impl CallStore for SqliteStore {
    fn operator_rounds(&self, operator_id: i64) -> Result<Vec<RoundRecord>> {
        let generation = self.generations.rounds.now();
        if let Some(rounds) = self.operator_rounds.get(&operator_id, generation) {
            return Ok(rounds);
        }
        let rows: Vec<(RoundRecord, String)> = self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT r.* FROM rounds r WHERE EXISTS (
                     SELECT 1 FROM plans p JOIN assignments s ON s.plan_id = p.id
                     WHERE p.round_id = r.id AND s.operator_id = ?1)
                 ORDER BY r.created_at DESC, r.id DESC",
            )?;
            Ok(stmt
                .query_map([operator_id], Self::round_from_row)?
                .collect::<rusqlite::Result<_>>()?)
        })?;
        let rounds: Vec<RoundRecord> = rows
            .into_iter()
            .map(|p| self.parse_round(p))
            .collect::<Result<_>>()?;
        self.operator_rounds
            .put(operator_id, generation, rounds.clone());
        Ok(rounds)
    }

    fn claim_next(
        &self,
        round: &RoundRecord,
        operator: &UserRecord,
        now: DateTime<Utc>,
    ) -> Result<Option<Claim>> {
        let claimed = self.write(|tx| claim_next_in(tx, round, operator, now))?;
        self.claim_view_of(claimed)
    }

    fn claim_next_if_free(
        &self,
        round: &RoundRecord,
        operator: &UserRecord,
        now: DateTime<Utc>,
    ) -> Result<Option<Claim>> {
        let (round_owned, operator_owned) = (round.clone(), operator.clone());
        let claimed =
            self.write_queued(move |tx| claim_if_free_in(tx, &round_owned, &operator_owned, now))?;
        self.claim_view_of(claimed)
    }

    fn held_claims(
        &self,
        round: &RoundRecord,
        operator: &UserRecord,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claim>> {
        self.read(|c| held_claims_in(c, round, operator, now))
    }

    fn attempt_brief(&self, attempt_id: i64) -> Result<Option<AttemptBrief>> {
        self.read(|c| attempt_brief_in(c, attempt_id))
    }

    fn release(&self, token: &str, operator: &UserRecord) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE queue SET claim_token = NULL, claimed_at = NULL, claim_expires = NULL, claimed_by = NULL WHERE claim_token = ?1 AND COALESCE(claimed_by, operator_id) = ?2",
                params![token, operator.id],
            )?;
            Ok(n > 0)
        })
    }

    fn renew_claim(
        &self,
        round: &RoundRecord,
        token: &str,
        operator: &UserRecord,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>> {
        let expires = now.timestamp_millis() + lease_ms(round);
        self.write(|tx| {
            ensure_unlocked(tx, round.id)?;
            // Only the holder, and only while the token is still the member's claim: a lapsed
            // claim nobody took since is taken again, one another operator holds is not, nor
            // one whose member was reassigned meanwhile (it would show on the new assignee's
            // screen).
            let n = tx
                .prepare_cached(
                    "UPDATE queue SET claim_expires = ?1
                     WHERE claim_token = ?2 AND COALESCE(claimed_by, operator_id) = ?3 AND operator_id = ?3 AND round_id = ?4",
                )?
                .execute(params![expires, token, operator.id, round.id])?;
            Ok((n > 0).then_some(expires))
        })
    }

    fn record(
        &self,
        round: &RoundRecord,
        token: &str,
        operator: &UserRecord,
        input: &AttemptInput,
        now: DateTime<Utc>,
    ) -> Result<Recorded, RecordError> {
        let out = self.write(
            |tx| match record_in(tx, round, token, operator, input, now) {
                // A storage failure rolls the write back; refusals (which may have ended an
                // expired claim) are kept.
                Err(RecordError::Storage(e)) => Err(e),
                other => Ok(other),
            },
        );
        out.unwrap_or_else(|e| Err(RecordError::Storage(e)))
    }

    fn record_then_claim(
        &self,
        round: &RoundRecord,
        token: &str,
        operator: &UserRecord,
        input: &AttemptInput,
        now: DateTime<Utc>,
    ) -> Result<(Recorded, Option<Claimed>), RecordError> {
        let (round, operator) = (round.clone(), operator.clone());
        let (token, input) = (token.to_string(), input.clone());
        let out = self.write_queued(move |tx| {
            record_then_claim_in(tx, &round, &token, &operator, &input, now)
        });
        out.unwrap_or_else(|e| Err(RecordError::Storage(e)))
    }

    fn record_then_claim_queued(
        &self,
        round: &RoundRecord,
        token: &str,
        operator: &UserRecord,
        input: &AttemptInput,
        now: DateTime<Utc>,
        since_ms: i64,
    ) -> Queued<Result<RecordedCall, RecordError>> {
        let (round, operator) = (round.clone(), operator.clone());
        let (token, input) = (token.to_string(), input.clone());
        let answer = self.writer.submit_queued(move |tx: &Connection| {
            let (recorded, claimed) =
                match record_then_claim_in(tx, &round, &token, &operator, &input, now)? {
                    Ok(done) => done,
                    Err(refusal) => return Ok(Err(refusal)),
                };
            Ok(Ok(read_back_in(
                tx, &round, &operator, recorded, claimed, since_ms, now,
            )?))
        });
        Box::pin(async move {
            match answer.await {
                Ok(out) => out.unwrap_or_else(|e| Err(RecordError::Storage(e))),
                Err(_) => Err(RecordError::Storage(super::writer::answer_lost())),
            }
        })
    }

    fn operator_rounds_cached(&self, operator_id: i64) -> Option<Vec<RoundRecord>> {
        self.operator_rounds
            .get(&operator_id, self.generations.rounds.now())
    }

    fn fix_phone(
        &self,
        round: &RoundRecord,
        member_id: i64,
        phone: &str,
        reason: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(|tx| {
            ensure_unlocked(tx, round.id)?;
            let (member, _, member_round) = member_record(tx, member_id)?;
            if member_round != round.id {
                return Err(StorageError::NotFound(format!(
                    "代表 {member_id} 不在轮次 {} 中",
                    round.key
                )));
            }
            tx.execute(
                "UPDATE members SET phone = ?1 WHERE id = ?2",
                params![phone, member_id],
            )
            .map_err(|e| conflict_on_unique(e, || "该号码已在该单位的代表名单中".to_string()))?;
            tx.execute(
                "INSERT INTO reopenings (member_id, at, reason, actor) VALUES (?1, ?2, ?3, ?4)",
                params![
                    member_id,
                    now.timestamp_millis(),
                    format!("更正号码: {reason}"),
                    actor
                ],
            )?;
            refresh_queue(tx, round, member_id, now, false)?;
            append_audit(
                tx,
                &AuditEvent {
                    actor,
                    action: "member.fix_phone",
                    round_key: Some(&round.key),
                    detail: serde_json::json!({
                        "member_id": member_id,
                        "before": member.phone.as_deref().map(crate::domain::phone::mask_canonical),
                        "after": crate::domain::phone::mask_canonical(phone),
                        "reason": reason,
                    }),
                },
            )
        })
    }

    fn reopen(
        &self,
        round: &RoundRecord,
        member_id: i64,
        reason: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(|tx| {
            ensure_unlocked(tx, round.id)?;
            let (_, _, member_round) = member_record(tx, member_id)?;
            if member_round != round.id {
                return Err(StorageError::NotFound(format!(
                    "代表 {member_id} 不在轮次 {} 中",
                    round.key
                )));
            }
            tx.execute(
                "INSERT INTO reopenings (member_id, at, reason, actor) VALUES (?1, ?2, ?3, ?4)",
                params![member_id, now.timestamp_millis(), reason, actor],
            )?;
            refresh_queue(tx, round, member_id, now, false)?;
            append_audit(
                tx,
                &AuditEvent {
                    actor,
                    action: "member.reopen",
                    round_key: Some(&round.key),
                    detail: serde_json::json!({ "member_id": member_id, "reason": reason }),
                },
            )
        })
    }

    fn field_data(&self, round: &RoundRecord, now: DateTime<Utc>) -> Result<FieldData> {
        self.read(|c| {
            let mut data = FieldData::default();
            let mut stmt = c.prepare_cached(
                "SELECT m.id, m.unit_id, us.login FROM members m JOIN units u ON u.id = m.unit_id
                 LEFT JOIN assignments s ON s.member_id = m.id LEFT JOIN users us ON us.id = s.operator_id
                 WHERE u.round_id = ?1 ORDER BY m.id",
            )?;
            data.members = stmt
                .query_map([round.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let sql = format!(
                "SELECT {ATTEMPT_COLUMNS} FROM attempts a JOIN members m ON m.id = a.member_id JOIN units un ON un.id = m.unit_id
                 JOIN users u ON u.id = a.operator_id WHERE un.round_id = ?1 ORDER BY a.member_id, a.recorded_at, a.attempt_no"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            // A row with a problem is named in `bad_attempts` (results refuse, `check` lists
            // it); it is kept among the attempts only when it can be read at all (an unknown
            // outcome cannot), so bad data never fails the whole read.
            let rows = stmt.query_map([round.id], |r| {
                let problem = stored_problem(r, &round.survey)?;
                let attempt = match &problem {
                    None => Ok(attempt_from_row(r)?),
                    Some(_) => attempt_from_row(r).map_err(StorageError::from),
                };
                Ok((r.get::<_, i64>(0)?, attempt, problem))
            })?;
            for row in rows {
                let (id, attempt, problem) = row?;
                if let Some(p) = problem {
                    data.bad_attempts.push((id, p));
                }
                match attempt {
                    Ok(a) => data.attempts.push(a),
                    Err(StorageError::BadStoredValue(bad)) => data.unreadable.push(bad),
                    Err(e) => return Err(e),
                }
            }
            let mut stmt = c.prepare_cached(
                "SELECT r.member_id, MAX(r.at) FROM reopenings r JOIN members m ON m.id = r.member_id JOIN units u ON u.id = m.unit_id
                 WHERE u.round_id = ?1 GROUP BY r.member_id",
            )?;
            data.reopened = stmt
                .query_map([round.id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut stmt = c.prepare_cached(
                "SELECT q.member_id, u.login FROM queue q JOIN users u ON u.id = q.operator_id
                 WHERE q.round_id = ?1 AND q.claim_token IS NOT NULL AND q.claim_expires > ?2",
            )?;
            data.claimed = stmt
                .query_map(params![round.id, now.timestamp_millis()], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(data)
        })
    }

    fn import_attempts(
        &self,
        round: &RoundRecord,
        attempts: &[ImportedAttempt],
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        self.write(|tx| {
            ensure_unlocked(tx, round.id)?;
            let mut touched = BTreeSet::new();
            let mut ins = tx.prepare_cached(
                "INSERT INTO attempts (member_id, operator_id, attempt_no, recorded_at, outcome, aapor_code, answers, comment, appointment_at, source)
                 VALUES (?1, ?2, (SELECT COALESCE(MAX(attempt_no), 0) + 1 FROM attempts WHERE member_id = ?1), ?3, ?4, ?5, ?6, ?7, ?8, 'import')",
            )?;
            for a in attempts {
                let answers = (!a.answers.is_empty()).then(|| serde_json::to_string(&a.answers).unwrap_or_default());
                ins.execute(params![
                    a.member_id,
                    a.operator_id,
                    a.recorded_at.timestamp_millis(),
                    a.outcome.key(),
                    a.outcome.aapor_code(),
                    answers,
                    a.comment,
                    a.appointment.map(|t| t.timestamp_millis()),
                ])
                .map_err(map_full)?;
                touched.insert(a.member_id);
            }
            for m in touched {
                refresh_queue(tx, round, m, now, false)?;
            }
            append_audit(
                tx,
                &AuditEvent { actor, action: "attempts.import", round_key: Some(&round.key), detail: serde_json::json!({ "attempts": attempts.len() }) },
            )?;
            Ok(attempts.len())
        })
    }

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
            crate::domain::disposition::check_edited_answers(
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
}

/// The operator's whole cycle inside the caller's transaction: the answer and the next contact
/// share a transaction (and a place in the group commit) instead of queueing twice. A refusal
/// (unknown claim, expired, invalid) is the answer, not a failed write.
fn record_then_claim_in(
    tx: &Connection,
    round: &RoundRecord,
    token: &str,
    operator: &UserRecord,
    input: &AttemptInput,
    now: DateTime<Utc>,
) -> Result<std::result::Result<(Recorded, Option<Claimed>), RecordError>> {
    let rec = match record_in(tx, round, token, operator, input, now) {
        Err(RecordError::Storage(e)) => return Err(e),
        Err(refusal) => return Ok(Err(refusal)),
        Ok(rec) => rec,
    };
    if rec.duplicate || holds_claim(tx, round, operator, now)? {
        return Ok(Ok((rec, None)));
    }
    // `record_in` found the round unlocked in this transaction.
    Ok(Ok((rec, claim_next_checked_in(tx, round, operator, now)?)))
}

/// What the operator has after a record, read in the record's own transaction: its pages are
/// in the writer's cache, and it is the state this very commit leaves (a reader's snapshot
/// would start with an emptied cache after every commit, and read the WAL's pages again).
fn read_back_in(
    tx: &Connection,
    round: &RoundRecord,
    operator: &UserRecord,
    recorded: Recorded,
    claimed: Option<Claimed>,
    since_ms: i64,
    now: DateTime<Utc>,
) -> Result<RecordedCall> {
    let held = match &claimed {
        // Claimed only when the operator held nothing: the new claim is all they hold.
        Some(c) => vec![claim_view(
            tx,
            &c.token,
            c.member_id,
            c.claimed_at_ms,
            c.expires_at_ms,
        )?],
        None => held_claims_in(tx, round, operator, now)?,
    };
    Ok(RecordedCall {
        held,
        day: operator_day_in(tx, round, operator.id, since_ms, now)?,
        brief: attempt_brief_in(tx, recorded.attempt_id)?,
        recorded,
        claimed,
    })
}

/// Claims the operator's next contact inside the caller's transaction.
fn claim_next_in(
    tx: &Connection,
    round: &RoundRecord,
    operator: &UserRecord,
    now: DateTime<Utc>,
) -> Result<Option<Claimed>> {
    ensure_unlocked(tx, round.id)?;
    claim_next_checked_in(tx, round, operator, now)
}

/// [`claim_next_in`] once the caller has checked, in the same transaction, that the round is
/// not locked.
fn claim_next_checked_in(
    tx: &Connection,
    round: &RoundRecord,
    operator: &UserRecord,
    now: DateTime<Utc>,
) -> Result<Option<Claimed>> {
    let now_ms = now.timestamp_millis();
    let lease_ms = lease_ms(round);
    let first_calls_open =
        crate::domain::schedule::may_call_now(&round.survey, &round.field_period(), now);
    let mut found: Option<i64> = None;
    // Appointments, then retries that are due, in due order; then first calls in plan order.
    for (priority, due_only) in [(0, true), (1, true), (2, false)] {
        if priority == 2 && !first_calls_open {
            break;
        }
        let mut stmt = tx.prepare_cached(
            "SELECT member_id FROM queue
             WHERE operator_id = ?1 AND round_id = ?2 AND priority = ?3 AND (?4 = 0 OR sort_key <= ?5)
               AND (claim_token IS NULL OR claim_expires <= ?5)
             ORDER BY sort_key LIMIT 1",
        )?;
        found = stmt
            .query_row(
                params![operator.id, round.id, priority, due_only, now_ms],
                |r| r.get(0),
            )
            .optional()?;
        if found.is_some() {
            break;
        }
    }
    let Some(member_id) = found else {
        return Ok(None);
    };
    let token = new_token(now_ms);
    tx.prepare_cached("UPDATE queue SET claim_token = ?1, claimed_at = ?2, claim_expires = ?3, claimed_by = ?5 WHERE member_id = ?4")?
        .execute(params![token, now_ms, now_ms + lease_ms, member_id, operator.id])?;
    // Showing the full number on the call screen is a view of personal data: logged.
    append_audit(
        tx,
        &AuditEvent {
            actor: &operator.login,
            action: "contact.claim",
            round_key: Some(&round.key),
            detail: serde_json::json!({ "member_id": member_id }),
        },
    )?;
    Ok(Some(Claimed {
        token,
        member_id,
        claimed_at_ms: now_ms,
        expires_at_ms: now_ms + lease_ms,
    }))
}

/// Claims the next contact inside the caller's transaction unless the operator holds an
/// unexpired claim in the round already (a second tab, a double click).
fn claim_if_free_in(
    tx: &Connection,
    round: &RoundRecord,
    operator: &UserRecord,
    now: DateTime<Utc>,
) -> Result<Option<Claimed>> {
    if holds_claim(tx, round, operator, now)? {
        return Ok(None);
    }
    claim_next_in(tx, round, operator, now)
}

/// Whether the operator holds an unexpired claim in the round.
fn holds_claim(
    tx: &Connection,
    round: &RoundRecord,
    operator: &UserRecord,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(tx
        .prepare_cached(
            "SELECT 1 FROM queue WHERE operator_id = ?1 AND round_id = ?2 AND claim_token IS NOT NULL AND claim_expires > ?3 LIMIT 1",
        )?
        .exists(params![operator.id, round.id, now.timestamp_millis()])?)
}

/// The claim a token names: the live one in the queue, else one that ended unrecorded.
struct ClaimFound {
    member_id: i64,
    operator_id: i64,
    round_id: i64,
    claimed_at: i64,
    /// Still the member's claim in the queue (possibly lapsed, but nobody claimed since).
    live: bool,
}

fn find_claim(tx: &Connection, token: &str) -> Result<Option<ClaimFound>> {
    let live = tx
        .prepare_cached(
            "SELECT member_id, COALESCE(claimed_by, operator_id), round_id, claimed_at FROM queue WHERE claim_token = ?1",
        )?
        .query_row([token], |r| {
            Ok(ClaimFound {
                member_id: r.get(0)?,
                operator_id: r.get(1)?,
                round_id: r.get(2)?,
                claimed_at: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                live: true,
            })
        })
        .optional()?;
    if live.is_some() {
        return Ok(live);
    }
    Ok(tx
        .prepare_cached(
            "SELECT e.member_id, e.operator_id, u.round_id, e.claimed_at FROM ended_claims e
             JOIN members m ON m.id = e.member_id JOIN units u ON u.id = m.unit_id WHERE e.token = ?1",
        )?
        .query_row([token], |r| {
            Ok(ClaimFound {
                member_id: r.get(0)?,
                operator_id: r.get(1)?,
                round_id: r.get(2)?,
                claimed_at: r.get(3)?,
                live: false,
            })
        })
        .optional()?)
}

/// Whether another claim on the member began after `claimed_at` (held now, or ended since).
fn claimed_since(tx: &Connection, member_id: i64, token: &str, claimed_at: i64) -> Result<bool> {
    let held = tx
        .prepare_cached(
            "SELECT 1 FROM queue WHERE member_id = ?1 AND claim_token IS NOT NULL AND claim_token != ?2 AND claimed_at > ?3",
        )?
        .exists(params![member_id, token, claimed_at])?;
    Ok(held || tx
        .prepare_cached(
            "SELECT 1 FROM ended_claims WHERE member_id = ?1 AND claimed_at > ?3 AND token != ?2",
        )?
        .exists(params![member_id, token, claimed_at])?)
}

/// The other operator's live claim on a member, if any: (token, login).
fn other_claim(tx: &Connection, member_id: i64, token: &str) -> Result<Option<(String, String)>> {
    Ok(tx
        .prepare_cached(
            "SELECT q.claim_token, u.login FROM queue q JOIN users u ON u.id = COALESCE(q.claimed_by, q.operator_id)
             WHERE q.member_id = ?1 AND q.claim_token IS NOT NULL AND q.claim_token != ?2",
        )?
        .query_row(params![member_id, token], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Records an attempt inside the caller's write.
///
/// The claim token alone decides member and round: a form naming another round is refused.
/// An interview that happened is never thrown away: a record whose lease lapsed is stored
/// (re-taking the claim when nobody claimed the contact since), and one that arrives after
/// another claim or record on the member is stored too, flagged `late`, counted by the
/// best-of rule and logged for the supervisor. When such a late record makes the member final
/// (a complete), the other operator's claim ends with it (they see so on the next renewal or
/// record), so it cannot lead to a second interview; should a second complete still come in,
/// it is kept as a late record and results count only the first.
fn record_in(
    tx: &Connection,
    round: &RoundRecord,
    token: &str,
    operator: &UserRecord,
    input: &AttemptInput,
    now: DateTime<Utc>,
) -> Result<Recorded, RecordError> {
    let now_ms = now.timestamp_millis();
    ensure_unlocked(tx, round.id)?;
    // The same token recorded before: answer as then, store nothing (double submit, retry).
    let done: Option<(i64, i64, u32, String, i64, bool)> = tx
        .prepare_cached(
            "SELECT a.id, a.member_id, a.attempt_no, a.outcome, a.operator_id, a.late FROM attempts a WHERE a.claim_token = ?1",
        )?
        .query_row([token], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .optional()?;
    if let Some((attempt_id, member_id, attempt_no, outcome, op, late)) = done {
        if op != operator.id {
            return Err(RecordError::NotYours);
        }
        return Ok(Recorded {
            attempt_id,
            member_id,
            attempt_no,
            outcome: Outcome::from_key(&outcome).ok_or_else(|| {
                StorageError::BadStoredValue(BadStoredValue {
                    table: "attempts",
                    row_id: attempt_id,
                    column: "outcome",
                    value: outcome.clone(),
                })
            })?,
            duplicate: true,
            late,
        });
    }
    let Some(claim) = find_claim(tx, token)? else {
        return Err(RecordError::UnknownClaim);
    };
    if claim.operator_id != operator.id {
        return Err(RecordError::NotYours);
    }
    if claim.round_id != round.id {
        let claim_round: String = tx
            .prepare_cached("SELECT key FROM rounds WHERE id = ?1")?
            .query_row([claim.round_id], |r| r.get(0))?;
        return Err(RecordError::RoundMismatch {
            claim_round,
            form_round: round.key.clone(),
        });
    }
    let member_id = claim.member_id;
    let outcome = input.outcome.ok_or(RecordError::Invalid(
        crate::domain::disposition::AttemptError::AppointmentMissing,
    ))?;
    let mut facts = member_facts(tx, member_id)?;
    let reopened = reopened_at(tx, member_id)?;
    // Late: someone recorded or claimed the member after this claim began.
    let late = facts
        .iter()
        .any(|f| f.at.timestamp_millis() >= claim.claimed_at)
        || (!claim.live && claimed_since(tx, member_id, token, claim.claimed_at)?);
    crate::storage::check_record(round, &facts, reopened, late, outcome, input, now)?;
    let other = if claim.live {
        None
    } else {
        other_claim(tx, member_id, token)?
    };
    let attempt_no = facts.len() as u32 + 1;
    let answers = (!input.answers.is_empty())
        .then(|| serde_json::to_string(&input.answers).unwrap_or_default());
    let answer_ms = (!input.answer_ms.is_empty())
        .then(|| serde_json::to_string(&input.answer_ms).unwrap_or_default());
    tx.prepare_cached(
        "INSERT INTO attempts (member_id, operator_id, attempt_no, claim_token, claimed_at, recorded_at, outcome, aapor_code,
                               answers, answer_ms, comment, appointment_at, source, late)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'web', ?13)",
    )?
    .execute(params![
        member_id,
        operator.id,
        attempt_no,
        token,
        claim.claimed_at,
        now_ms,
        outcome.key(),
        outcome.aapor_code(),
        answers,
        answer_ms,
        input.comment.as_deref().filter(|c| !c.trim().is_empty()),
        input.appointment.map(|t| t.timestamp_millis()),
        late,
    ])
    .map_err(map_full)?;
    let attempt_id = tx.last_insert_rowid();
    // The history with this attempt, in the order `member_facts` reads it (a stable sort by
    // time; the new attempt has the highest number), without reading it again.
    facts.push(AttemptFact {
        outcome,
        at: ms_to_utc(now_ms),
        appointment: input.appointment.map(|t| ms_to_utc(t.timestamp_millis())),
    });
    facts.sort_by_key(|f| f.at);
    let history = MemberHistory {
        attempts: &facts,
        reopened_at: reopened,
    };
    // Our own claim ends with the record; another operator's stays unless the member is final.
    place_in_queue(tx, round, member_id, &history, now, claim.live)?;
    if late {
        let ended = match &other {
            Some((t, _)) => !tx
                .prepare_cached("SELECT 1 FROM queue WHERE claim_token = ?1")?
                .exists([t])?,
            None => false,
        };
        append_audit(
            tx,
            &AuditEvent {
                actor: &operator.login,
                action: "attempt.late",
                round_key: Some(&round.key),
                detail: serde_json::json!({
                    "attempt_id": attempt_id,
                    "member_id": member_id,
                    "outcome": outcome.key(),
                    "claimed_at": claim.claimed_at,
                    "other_operator": other.as_ref().map(|(_, login)| login),
                    "other_claim_ended": ended,
                }),
            },
        )?;
    }
    Ok(Recorded {
        attempt_id,
        member_id,
        attempt_no,
        outcome,
        duplicate: false,
        late,
    })
}

/// [`CallStore::operator_day`] on the caller's connection: a reader's snapshot, or the
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
