//! [`CallStore`] on PostgreSQL: the queue with its claims, call attempts, reopenings, answer
//! corrections, and an operator's day and list. The SQL and the queue's logic are those of
//! `sqlite/calls.rs`; what differs is how concurrent writers are kept apart, since several
//! instances write at once here (SQLite has one writer):
//! - a claim picks its row with `FOR UPDATE SKIP LOCKED` inside the claiming transaction, so two
//!   transactions never take the same contact (one skips the row the other is taking);
//! - a write that checks what an operator holds before claiming (`claim_next_if_free`,
//!   `record_then_claim`) first locks the operator's `users` row (`FOR NO KEY UPDATE`: foreign
//!   keys to the user are not held up), so two tabs on two instances cannot each claim;
//! - a record locks its member's row first, so records and claims on one member are one
//!   after the other (the attempt's number, the late flag and the queue row agree);
//! - each write reads the round `FOR SHARE` (not locked), so `lock_round` waits for it.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::PgBackend;
use super::rounds::{append_audit, ensure_unlocked};
use crate::domain::disposition::{AttemptFact, MemberHistory, Outcome};
use crate::domain::queue::{QueueSlot, queue_slot};
use crate::domain::roster::MemberCategory;
use crate::domain::unit::UnitKind;
use crate::storage::*;

type Pg<T> = std::result::Result<T, StorageError>;

/// Reads an enumerated text with `decode`; anything else is a `BadStoredValue` naming table,
/// row, column and value (as SQLite's `strict`).
pub(super) fn strict<T>(
    value: String,
    table: &'static str,
    column: &'static str,
    row_id: i64,
    decode: impl FnOnce(&str) -> Option<T>,
) -> Pg<T> {
    decode(&value).ok_or(StorageError::BadStoredValue(BadStoredValue {
        table,
        row_id,
        column,
        value,
    }))
}

/// The columns of an attempt, in `attempt_from_row`'s order, then the round's id.
const ATTEMPT_SELECT: &str = "SELECT a.id, a.member_id, m.unit_id, us.login, a.attempt_no, a.claimed_at, a.recorded_at,
        a.outcome, a.aapor_code, a.answers, a.answer_ms, a.comment, a.appointment_at, a.source, a.late, un.round_id
     FROM attempts a JOIN members m ON m.id = a.member_id JOIN units un ON un.id = m.unit_id
     JOIN users us ON us.id = a.operator_id";

fn json_vec<T: serde::de::DeserializeOwned>(s: Option<String>) -> Vec<T> {
    s.and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

fn attempt_from_row(r: &Row) -> Pg<AttemptRecord> {
    let id: i64 = r.get(0);
    Ok(AttemptRecord {
        id,
        member_id: r.get(1),
        unit_id: r.get(2),
        operator: r.get(3),
        attempt_no: r.get::<_, i64>(4) as u32,
        claimed_at_ms: r.get(5),
        recorded_at_ms: r.get(6),
        outcome: strict(r.get(7), "attempts", "outcome", id, Outcome::from_key)?,
        aapor_code: r.get(8),
        answers: json_vec(r.get(9)),
        answer_ms: json_vec(r.get(10)),
        comment: r.get(11),
        appointment_at_ms: r.get(12),
        source: r.get(13),
        late: r.get::<_, i64>(14) != 0,
    })
}

fn stored_problem(r: &Row, survey: &crate::domain::survey::Survey) -> Option<String> {
    let outcome: String = r.get(7);
    let aapor: String = r.get(8);
    let answers: Option<String> = r.get(9);
    let parsed: std::result::Result<Vec<Option<usize>>, String> = match answers {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(&text).map_err(|e| e.to_string()),
    };
    crate::domain::disposition::stored_attempt_problem(
        &outcome,
        &aapor,
        parsed.as_deref().map_err(String::as_str),
        survey.dimensions.len(),
        survey.levels.len(),
    )
}

async fn member_attempts_in<C: GenericClient>(c: &C, member_id: i64) -> Pg<Vec<AttemptRecord>> {
    let rows = c
        .query(
            &format!(
                "{ATTEMPT_SELECT} WHERE a.member_id = $1 ORDER BY a.recorded_at, a.attempt_no"
            ),
            &[&member_id],
        )
        .await?;
    rows.iter().map(attempt_from_row).collect()
}

async fn reopened_at<C: GenericClient>(c: &C, member_id: i64) -> Pg<Option<DateTime<Utc>>> {
    let ms: Option<i64> = c
        .query_one(
            "SELECT MAX(at) FROM reopenings WHERE member_id = $1",
            &[&member_id],
        )
        .await?
        .get(0);
    Ok(ms.map(ms_to_utc))
}

pub(super) fn member_from_row(r: &Row) -> Pg<MemberRecord> {
    let id: i64 = r.get(0);
    Ok(MemberRecord {
        id,
        unit_id: r.get(1),
        unit: r.get(2),
        name: r.get(3),
        phone: r.get(4),
        phone_alt: r.get(5),
        category: strict(
            r.get(6),
            "members",
            "category",
            id,
            MemberCategory::from_stored_label,
        )?,
        organization: r.get(7),
        note: r.get(8),
    })
}

async fn member_record<C: GenericClient>(
    c: &C,
    member_id: i64,
) -> Pg<(MemberRecord, UnitKind, i64)> {
    let r = c
        .query_opt(
            "SELECT m.id, m.unit_id, u.name, m.name, m.phone, m.phone_alt, m.category, m.organization, m.note, u.kind, u.round_id
             FROM members m JOIN units u ON u.id = m.unit_id WHERE m.id = $1",
            &[&member_id],
        )
        .await?
        // SQLite answers rusqlite's "no rows" here; the callers name the member.
        .ok_or_else(|| StorageError::NotFound(format!("没有第 {member_id} 号代表")))?;
    let unit_id: i64 = r.get(1);
    Ok((
        member_from_row(&r)?,
        strict(
            r.get(9),
            "units",
            "kind",
            unit_id,
            UnitKind::from_stored_label,
        )?,
        r.get(10),
    ))
}

/// A member's attempt history as the schedule needs it.
async fn member_facts<C: GenericClient>(c: &C, member_id: i64) -> Pg<Vec<AttemptFact>> {
    let rows = c
        .query(
            "SELECT outcome, recorded_at, appointment_at, id FROM attempts WHERE member_id = $1 ORDER BY recorded_at, attempt_no",
            &[&member_id],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(AttemptFact {
                outcome: strict(r.get(0), "attempts", "outcome", r.get(3), Outcome::from_key)?,
                at: ms_to_utc(r.get(1)),
                appointment: r.get::<_, Option<i64>>(2).map(ms_to_utc),
            })
        })
        .collect()
}

/// Recomputes a member's queue row from its history. `clear_claim` ends any claim on it.
pub(super) async fn refresh_queue<C: GenericClient>(
    c: &C,
    round: &RoundRecord,
    member_id: i64,
    now: DateTime<Utc>,
    clear_claim: bool,
) -> Pg<()> {
    let facts = member_facts(c, member_id).await?;
    let history = MemberHistory {
        attempts: &facts,
        reopened_at: reopened_at(c, member_id).await?,
    };
    place_in_queue(c, round, member_id, &history, now, clear_claim).await
}

/// Puts a member in its place in the queue (or takes it out) given its history.
async fn place_in_queue<C: GenericClient>(
    c: &C,
    round: &RoundRecord,
    member_id: i64,
    history: &MemberHistory<'_>,
    now: DateTime<Utc>,
    clear_claim: bool,
) -> Pg<()> {
    let assignment = c
        .query_opt(
            "SELECT operator_id, seq FROM assignments WHERE member_id = $1",
            &[&member_id],
        )
        .await?
        .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1) as u32));
    let Some((operator_id, seq)) = assignment else {
        c.execute("DELETE FROM queue WHERE member_id = $1", &[&member_id])
            .await?;
        return Ok(());
    };
    match queue_slot(&round.survey, &round.field_period(), history, seq, now) {
        QueueSlot::Remove => {
            c.execute("DELETE FROM queue WHERE member_id = $1", &[&member_id])
                .await?;
        }
        QueueSlot::Place { priority, sort_key } => {
            c.execute(
                "INSERT INTO queue (member_id, round_id, operator_id, priority, sort_key) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (member_id) DO UPDATE SET operator_id = EXCLUDED.operator_id, priority = EXCLUDED.priority,
                     sort_key = EXCLUDED.sort_key",
                &[&member_id, &round.id, &operator_id, &(priority as i64), &sort_key],
            )
            .await?;
            if clear_claim {
                c.execute(
                    "UPDATE queue SET claim_token = NULL, claimed_at = NULL, claim_expires = NULL, claimed_by = NULL WHERE member_id = $1",
                    &[&member_id],
                )
                .await?;
            }
        }
    }
    Ok(())
}

async fn claim_view<C: GenericClient>(
    c: &C,
    token: &str,
    member_id: i64,
    claimed_at: i64,
    expires: i64,
) -> Pg<Claim> {
    let (member, unit_kind, _) = member_record(c, member_id).await?;
    let earlier = member_attempts_in(c, member_id).await?;
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

async fn held_claims_in<C: GenericClient>(
    c: &C,
    round: &RoundRecord,
    operator: &UserRecord,
    now: DateTime<Utc>,
) -> Pg<Vec<Claim>> {
    let rows = c
        .query(
            "SELECT claim_token, member_id, claimed_at, claim_expires FROM queue
             WHERE operator_id = $1 AND round_id = $2 AND claim_token IS NOT NULL AND claim_expires > $3
             ORDER BY claimed_at, member_id",
            &[&operator.id, &round.id, &now.timestamp_millis()],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let token: String = r.get(0);
        out.push(claim_view(c, &token, r.get(1), r.get(2), r.get(3)).await?);
    }
    Ok(out)
}

async fn attempt_brief_in<C: GenericClient>(c: &C, attempt_id: i64) -> Pg<Option<AttemptBrief>> {
    let Some(r) = c
        .query_opt(
            "SELECT a.operator_id, un.round_id, un.name, a.attempt_no, a.outcome, a.recorded_at,
                    a.appointment_at
             FROM attempts a JOIN members m ON m.id = a.member_id JOIN units un ON un.id = m.unit_id
             WHERE a.id = $1",
            &[&attempt_id],
        )
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(AttemptBrief {
        operator_id: r.get(0),
        round_id: r.get(1),
        unit_name: r.get(2),
        attempt_no: r.get::<_, i64>(3) as u32,
        outcome: strict(
            r.get(4),
            "attempts",
            "outcome",
            attempt_id,
            Outcome::from_key,
        )?,
        recorded_at_ms: r.get(5),
        appointment_at_ms: r.get(6),
    }))
}

async fn load_attempt<C: GenericClient>(c: &C, attempt_id: i64) -> Pg<(AttemptRecord, i64)> {
    let r = c
        .query_opt(&format!("{ATTEMPT_SELECT} WHERE a.id = $1"), &[&attempt_id])
        .await?
        .ok_or_else(|| StorageError::NotFound(format!("没有第 {attempt_id} 号拨打记录")))?;
    Ok((attempt_from_row(&r)?, r.get(15)))
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

fn edit_row(r: &Row) -> AnswerEditRecord {
    AnswerEditRecord {
        id: r.get(0),
        attempt_id: r.get(1),
        at_ms: r.get(2),
        actor: r.get(3),
        reason: r.get(4),
        before: json_vec(r.get(5)),
        after: json_vec(r.get(6)),
    }
}

/// Locks the operator's row for the rest of the transaction: writes that check what the
/// operator holds before claiming run one after the other, whichever instance runs them.
async fn lock_operator<C: GenericClient>(tx: &C, operator_id: i64) -> Pg<()> {
    tx.query_opt(
        "SELECT id FROM users WHERE id = $1 FOR NO KEY UPDATE",
        &[&operator_id],
    )
    .await?;
    Ok(())
}

/// Whether the operator holds an unexpired claim in the round.
async fn holds_claim<C: GenericClient>(
    tx: &C,
    round: &RoundRecord,
    operator: &UserRecord,
    now: DateTime<Utc>,
) -> Pg<bool> {
    Ok(tx
        .query_opt(
            "SELECT 1 FROM queue WHERE operator_id = $1 AND round_id = $2 AND claim_token IS NOT NULL AND claim_expires > $3 LIMIT 1",
            &[&operator.id, &round.id, &now.timestamp_millis()],
        )
        .await?
        .is_some())
}

async fn claim_next_in<C: GenericClient>(
    tx: &C,
    round: &RoundRecord,
    operator: &UserRecord,
    now: DateTime<Utc>,
) -> Pg<Option<Claimed>> {
    ensure_unlocked(tx, round.id).await?;
    claim_next_checked_in(tx, round, operator, now).await
}

/// Claims the operator's next contact: appointments, then due retries, in due order; then
/// first calls in plan order (`domain/queue.rs`). The row is taken `FOR UPDATE SKIP LOCKED`:
/// a row another transaction is claiming or recording is passed over, never handed out twice.
/// (Ties in `sort_key` go by member id, the order SQLite's index gives.)
async fn claim_next_checked_in<C: GenericClient>(
    tx: &C,
    round: &RoundRecord,
    operator: &UserRecord,
    now: DateTime<Utc>,
) -> Pg<Option<Claimed>> {
    let now_ms = now.timestamp_millis();
    let lease_ms = lease_ms(round);
    let first_calls_open =
        crate::domain::schedule::may_call_now(&round.survey, &round.field_period(), now);
    let mut found: Option<i64> = None;
    for (priority, due_only) in [(0_i64, 1_i64), (1, 1), (2, 0)] {
        if priority == 2 && !first_calls_open {
            break;
        }
        found = tx
            .query_opt(
                "SELECT member_id FROM queue
                 WHERE operator_id = $1 AND round_id = $2 AND priority = $3 AND ($4::BIGINT = 0 OR sort_key <= $5)
                   AND (claim_token IS NULL OR claim_expires <= $5)
                 ORDER BY sort_key, member_id LIMIT 1
                 FOR UPDATE SKIP LOCKED",
                &[&operator.id, &round.id, &priority, &due_only, &now_ms],
            )
            .await?
            .map(|r| r.get(0));
        if found.is_some() {
            break;
        }
    }
    let Some(member_id) = found else {
        return Ok(None);
    };
    let token = new_token(now_ms);
    tx.execute(
        "UPDATE queue SET claim_token = $1, claimed_at = $2, claim_expires = $3, claimed_by = $5 WHERE member_id = $4",
        &[&token, &now_ms, &(now_ms + lease_ms), &member_id, &operator.id],
    )
    .await?;
    // Showing the full number on the call screen is a view of personal data: logged.
    append_audit(
        tx,
        &AuditEvent {
            actor: &operator.login,
            action: "contact.claim",
            round_key: Some(&round.key),
            detail: serde_json::json!({ "member_id": member_id }),
        },
    )
    .await?;
    Ok(Some(Claimed {
        token,
        member_id,
        claimed_at_ms: now_ms,
        expires_at_ms: now_ms + lease_ms,
    }))
}

async fn claim_if_free_in<C: GenericClient>(
    tx: &C,
    round: &RoundRecord,
    operator: &UserRecord,
    now: DateTime<Utc>,
) -> Pg<Option<Claimed>> {
    lock_operator(tx, operator.id).await?;
    if holds_claim(tx, round, operator, now).await? {
        return Ok(None);
    }
    claim_next_in(tx, round, operator, now).await
}

/// The claim a token names: the live one in the queue, else one that ended unrecorded.
struct ClaimFound {
    member_id: i64,
    operator_id: i64,
    round_id: i64,
    claimed_at: i64,
    live: bool,
}

async fn find_claim<C: GenericClient>(tx: &C, token: &str) -> Pg<Option<ClaimFound>> {
    if let Some(r) = tx
        .query_opt(
            "SELECT member_id, COALESCE(claimed_by, operator_id), round_id, claimed_at FROM queue WHERE claim_token = $1",
            &[&token],
        )
        .await?
    {
        return Ok(Some(ClaimFound {
            member_id: r.get(0),
            operator_id: r.get(1),
            round_id: r.get(2),
            claimed_at: r.get::<_, Option<i64>>(3).unwrap_or(0),
            live: true,
        }));
    }
    Ok(tx
        .query_opt(
            "SELECT e.member_id, e.operator_id, u.round_id, e.claimed_at FROM ended_claims e
             JOIN members m ON m.id = e.member_id JOIN units u ON u.id = m.unit_id WHERE e.token = $1",
            &[&token],
        )
        .await?
        .map(|r| ClaimFound {
            member_id: r.get(0),
            operator_id: r.get(1),
            round_id: r.get(2),
            claimed_at: r.get(3),
            live: false,
        }))
}

/// The member a token concerns, from any table that knows it (to lock the member first).
async fn token_member<C: GenericClient>(tx: &C, token: &str) -> Pg<Option<i64>> {
    Ok(tx
        .query_opt(
            "SELECT COALESCE(
                 (SELECT member_id FROM attempts WHERE claim_token = $1),
                 (SELECT member_id FROM queue WHERE claim_token = $1),
                 (SELECT member_id FROM ended_claims WHERE token = $1))",
            &[&token],
        )
        .await?
        .and_then(|r| r.get(0)))
}

async fn claimed_since<C: GenericClient>(
    tx: &C,
    member_id: i64,
    token: &str,
    claimed_at: i64,
) -> Pg<bool> {
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM queue WHERE member_id = $1 AND claim_token IS NOT NULL AND claim_token != $2 AND claimed_at > $3)
                 OR EXISTS (SELECT 1 FROM ended_claims WHERE member_id = $1 AND claimed_at > $3 AND token != $2)",
            &[&member_id, &token, &claimed_at],
        )
        .await?;
    Ok(row.get(0))
}

async fn other_claim<C: GenericClient>(
    tx: &C,
    member_id: i64,
    token: &str,
) -> Pg<Option<(String, String)>> {
    Ok(tx
        .query_opt(
            "SELECT q.claim_token, u.login FROM queue q JOIN users u ON u.id = COALESCE(q.claimed_by, q.operator_id)
             WHERE q.member_id = $1 AND q.claim_token IS NOT NULL AND q.claim_token != $2",
            &[&member_id, &token],
        )
        .await?
        .map(|r| (r.get(0), r.get(1))))
}

/// Records an attempt inside the caller's transaction: `sqlite/calls.rs::record_in`, after
/// locking the member's row (records and claims on one member follow one another across
/// instances; a duplicate submit waits for the first and then answers `duplicate`).
async fn record_in<C: GenericClient>(
    tx: &C,
    round: &RoundRecord,
    token: &str,
    operator: &UserRecord,
    input: &AttemptInput,
    now: DateTime<Utc>,
) -> std::result::Result<Recorded, RecordError> {
    let now_ms = now.timestamp_millis();
    ensure_unlocked(tx, round.id).await?;
    if let Some(member_id) = token_member(tx, token).await? {
        tx.query_opt(
            "SELECT id FROM members WHERE id = $1 FOR NO KEY UPDATE",
            &[&member_id],
        )
        .await
        .map_err(StorageError::from)?;
    }
    let done = tx
        .query_opt(
            "SELECT a.id, a.member_id, a.attempt_no, a.outcome, a.operator_id, a.late FROM attempts a WHERE a.claim_token = $1",
            &[&token],
        )
        .await
        .map_err(StorageError::from)?;
    if let Some(r) = done {
        let (attempt_id, op): (i64, i64) = (r.get(0), r.get(4));
        if op != operator.id {
            return Err(RecordError::NotYours);
        }
        return Ok(Recorded {
            attempt_id,
            member_id: r.get(1),
            attempt_no: r.get::<_, i64>(2) as u32,
            outcome: strict(
                r.get(3),
                "attempts",
                "outcome",
                attempt_id,
                Outcome::from_key,
            )?,
            duplicate: true,
            late: r.get::<_, i64>(5) != 0,
        });
    }
    let Some(claim) = find_claim(tx, token).await? else {
        return Err(RecordError::UnknownClaim);
    };
    if claim.operator_id != operator.id {
        return Err(RecordError::NotYours);
    }
    if claim.round_id != round.id {
        let claim_round: String = tx
            .query_one("SELECT key FROM rounds WHERE id = $1", &[&claim.round_id])
            .await
            .map_err(StorageError::from)?
            .get(0);
        return Err(RecordError::RoundMismatch {
            claim_round,
            form_round: round.key.clone(),
        });
    }
    let member_id = claim.member_id;
    let outcome = input.outcome.ok_or(RecordError::Invalid(
        crate::domain::disposition::AttemptError::AppointmentMissing,
    ))?;
    let mut facts = member_facts(tx, member_id).await?;
    let reopened = reopened_at(tx, member_id).await?;
    let late = facts
        .iter()
        .any(|f| f.at.timestamp_millis() >= claim.claimed_at)
        || (!claim.live && claimed_since(tx, member_id, token, claim.claimed_at).await?);
    crate::storage::check_record(round, &facts, reopened, late, outcome, input, now)?;
    let other = if claim.live {
        None
    } else {
        other_claim(tx, member_id, token).await?
    };
    let attempt_no = facts.len() as u32 + 1;
    let answers = (!input.answers.is_empty())
        .then(|| serde_json::to_string(&input.answers).unwrap_or_default());
    let answer_ms = (!input.answer_ms.is_empty())
        .then(|| serde_json::to_string(&input.answer_ms).unwrap_or_default());
    let comment = input.comment.as_deref().filter(|c| !c.trim().is_empty());
    let appointment = input.appointment.map(|t| t.timestamp_millis());
    let attempt_id: i64 = tx
        .query_one(
            "INSERT INTO attempts (member_id, operator_id, attempt_no, claim_token, claimed_at, recorded_at, outcome, aapor_code,
                                   answers, answer_ms, comment, appointment_at, source, late)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'web', $13) RETURNING id",
            &[
                &member_id,
                &operator.id,
                &i64::from(attempt_no),
                &token,
                &claim.claimed_at,
                &now_ms,
                &outcome.key(),
                &outcome.aapor_code(),
                &answers,
                &answer_ms,
                &comment,
                &appointment,
                &i64::from(late),
            ],
        )
        .await
        .map_err(StorageError::from)?
        .get(0);
    facts.push(AttemptFact {
        outcome,
        at: ms_to_utc(now_ms),
        appointment: appointment.map(ms_to_utc),
    });
    facts.sort_by_key(|f| f.at);
    let history = MemberHistory {
        attempts: &facts,
        reopened_at: reopened,
    };
    place_in_queue(tx, round, member_id, &history, now, claim.live).await?;
    if late {
        let ended = match &other {
            Some((t, _)) => tx
                .query_opt("SELECT 1 FROM queue WHERE claim_token = $1", &[t])
                .await
                .map_err(StorageError::from)?
                .is_none(),
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
        )
        .await?;
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

/// The operator's whole cycle in one transaction (see SQLite's `record_then_claim_in`). The
/// operator's row is locked before the record, so "holds nothing, claim" is one step across
/// instances too.
async fn record_then_claim_in<C: GenericClient>(
    tx: &C,
    round: &RoundRecord,
    token: &str,
    operator: &UserRecord,
    input: &AttemptInput,
    now: DateTime<Utc>,
) -> Pg<std::result::Result<(Recorded, Option<Claimed>), RecordError>> {
    lock_operator(tx, operator.id).await?;
    let rec = match record_in(tx, round, token, operator, input, now).await {
        Err(RecordError::Storage(e)) => return Err(e),
        Err(refusal) => return Ok(Err(refusal)),
        Ok(rec) => rec,
    };
    if rec.duplicate || holds_claim(tx, round, operator, now).await? {
        return Ok(Ok((rec, None)));
    }
    Ok(Ok((
        rec,
        claim_next_checked_in(tx, round, operator, now).await?,
    )))
}

async fn operator_day_in<C: GenericClient>(
    c: &C,
    round: &RoundRecord,
    operator_id: i64,
    since_ms: i64,
    now: DateTime<Utc>,
) -> Pg<OperatorDay> {
    let now_ms = now.timestamp_millis();
    let first_calls_open =
        crate::domain::schedule::may_call_now(&round.survey, &round.field_period(), now);
    let r = c
        .query_one(
            "SELECT COALESCE(SUM(completes), 0)::BIGINT, COALESCE(SUM(attempts), 0)::BIGINT FROM operator_tally
             WHERE round_id = $1 AND operator_id = $2 AND quarter >= $3",
            &[&round.id, &operator_id, &since_ms.div_euclid(900_000)],
        )
        .await?;
    let (completes, attempts): (i64, i64) = (r.get(0), r.get(1));
    let first_calls: i64 = c
        .query_one(
            "SELECT COALESCE(SUM(n), 0)::BIGINT FROM queue_tally WHERE round_id = $1 AND operator_id = $2 AND priority = 2",
            &[&round.id, &operator_id],
        )
        .await?
        .get(0);
    let r = c
        .query_one(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE sort_key <= $3), MIN(CASE WHEN sort_key > $3 THEN sort_key END)
             FROM queue WHERE operator_id = $1 AND round_id = $2 AND priority < 2",
            &[&operator_id, &round.id, &now_ms],
        )
        .await?;
    let (callbacks, callbacks_due, next_due): (i64, i64, Option<i64>) =
        (r.get(0), r.get(1), r.get(2));
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

async fn read_back_in<C: GenericClient>(
    tx: &C,
    round: &RoundRecord,
    operator: &UserRecord,
    recorded: Recorded,
    claimed: Option<Claimed>,
    since_ms: i64,
    now: DateTime<Utc>,
) -> Pg<RecordedCall> {
    let held = match &claimed {
        Some(c) => {
            vec![claim_view(tx, &c.token, c.member_id, c.claimed_at_ms, c.expires_at_ms).await?]
        }
        None => held_claims_in(tx, round, operator, now).await?,
    };
    Ok(RecordedCall {
        held,
        day: operator_day_in(tx, round, operator.id, since_ms, now).await?,
        brief: attempt_brief_in(tx, recorded.attempt_id).await?,
        recorded,
        claimed,
    })
}

/// A round row (`SELECT r.*`) with its survey parsed.
pub(super) fn round_from_row(row: &Row) -> Pg<RoundRecord> {
    let date =
        |s: Option<String>| s.and_then(|s| chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok());
    let key: String = row.get("key");
    let survey = super::rounds::parsed_survey(&key, row.get("survey_toml"))?;
    Ok(RoundRecord {
        id: row.get("id"),
        key,
        title: row.get("title"),
        survey,
        survey_source: row.get("survey_source"),
        field_start: date(row.get("field_start")),
        field_end: date(row.get("field_end")),
        locked_at_ms: row.get("locked_at"),
        created_at_ms: row.get("created_at"),
    })
}

impl PgBackend {
    async fn claim_view_of(&self, claimed: Option<Claimed>) -> Pg<Option<Claim>> {
        let Some(c) = claimed else {
            return Ok(None);
        };
        let client = self.conn().await?;
        Ok(Some(
            claim_view(
                client.client(),
                &c.token,
                c.member_id,
                c.claimed_at_ms,
                c.expires_at_ms,
            )
            .await?,
        ))
    }
}

impl CallStore for PgBackend {
    fn operator_rounds(&self, operator_id: i64) -> Result<Vec<RoundRecord>> {
        let generation = self.caches.generations.rounds.now();
        if let Some(rounds) = self.caches.operator_rounds.get(&operator_id, generation) {
            return Ok(rounds);
        }
        let rounds: Vec<RoundRecord> = self.read(async |c| {
            let rows = c
                .query(
                    "SELECT r.* FROM rounds r WHERE EXISTS (
                         SELECT 1 FROM assignments s JOIN members m ON m.id = s.member_id JOIN units u ON u.id = m.unit_id
                         WHERE s.operator_id = $1 AND u.round_id = r.id)
                     ORDER BY r.created_at DESC, r.id DESC",
                    &[&operator_id],
                )
                .await?;
            rows.iter().map(round_from_row).collect()
        })?;
        self.caches
            .operator_rounds
            .put(operator_id, generation, rounds.clone());
        Ok(rounds)
    }

    /// In memory as on SQLite, bounded to a second across instances (see `sync.rs`'s
    /// `Caches`): a round change made through this instance drops the entries at once.
    fn operator_rounds_cached(&self, operator_id: i64) -> Option<Vec<RoundRecord>> {
        self.caches
            .operator_rounds
            .get(&operator_id, self.caches.generations.rounds.now())
    }

    fn claim_next(
        &self,
        round: &RoundRecord,
        operator: &UserRecord,
        now: DateTime<Utc>,
    ) -> Result<Option<Claim>> {
        self.block_on(async {
            let mut client = self.conn().await?;
            let tx = client.transaction().await?;
            let claimed = claim_next_in(&tx, round, operator, now).await?;
            tx.commit().await?;
            drop(client);
            self.claim_view_of(claimed).await
        })
    }

    fn claim_next_if_free(
        &self,
        round: &RoundRecord,
        operator: &UserRecord,
        now: DateTime<Utc>,
    ) -> Result<Option<Claim>> {
        self.block_on(async {
            let mut client = self.conn().await?;
            let tx = client.transaction().await?;
            let claimed = claim_if_free_in(&tx, round, operator, now).await?;
            tx.commit().await?;
            drop(client);
            self.claim_view_of(claimed).await
        })
    }

    fn held_claims(
        &self,
        round: &RoundRecord,
        operator: &UserRecord,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claim>> {
        self.read(async |c| held_claims_in(c, round, operator, now).await)
    }

    fn attempt_brief(&self, attempt_id: i64) -> Result<Option<AttemptBrief>> {
        self.read(async |c| attempt_brief_in(c, attempt_id).await)
    }

    fn release(&self, token: &str, operator: &UserRecord) -> Result<bool> {
        self.block_on(async {
            let c = self.conn().await?;
            let n = c
                .execute(
                    "UPDATE queue SET claim_token = NULL, claimed_at = NULL, claim_expires = NULL, claimed_by = NULL
                     WHERE claim_token = $1 AND COALESCE(claimed_by, operator_id) = $2",
                    &[&token, &operator.id],
                )
                .await?;
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
        self.block_on(async {
            let mut client = self.conn().await?;
            let tx = client.transaction().await?;
            ensure_unlocked(&tx, round.id).await?;
            let n = tx
                .execute(
                    "UPDATE queue SET claim_expires = $1
                     WHERE claim_token = $2 AND COALESCE(claimed_by, operator_id) = $3 AND operator_id = $3 AND round_id = $4",
                    &[&expires, &token, &operator.id, &round.id],
                )
                .await?;
            tx.commit().await?;
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
        let out: Pg<std::result::Result<Recorded, RecordError>> = self.block_on(async {
            let mut client = self.conn().await?;
            let tx = client.transaction().await?;
            let answer = match record_in(&tx, round, token, operator, input, now).await {
                // A storage failure rolls the write back (the transaction is dropped).
                Err(RecordError::Storage(e)) => return Err(e),
                other => other,
            };
            tx.commit().await?;
            Ok(answer)
        });
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
        let out: Pg<std::result::Result<_, RecordError>> = self.block_on(async {
            let mut client = self.conn().await?;
            let tx = client.transaction().await?;
            let answer = record_then_claim_in(&tx, round, token, operator, input, now).await?;
            tx.commit().await?;
            Ok(answer)
        });
        out.unwrap_or_else(|e| Err(RecordError::Storage(e)))
    }

    /// The write runs as a task on the backend's own runtime, so the caller (an async request)
    /// awaits it without blocking its thread; the future resolves once the transaction has
    /// committed, i.e. once the write is durable.
    fn record_then_claim_queued(
        &self,
        round: &RoundRecord,
        token: &str,
        operator: &UserRecord,
        input: &AttemptInput,
        now: DateTime<Utc>,
        since_ms: i64,
    ) -> Queued<Result<RecordedCall, RecordError>> {
        let store = self.store().clone();
        let (round, operator) = (round.clone(), operator.clone());
        let (token, input) = (token.to_string(), input.clone());
        let task = self.spawn(async move {
            let out: Pg<std::result::Result<RecordedCall, RecordError>> = async {
                let mut client = store.client().await?;
                let tx = client.transaction().await?;
                let (recorded, claimed) = match record_then_claim_in(
                    &tx, &round, &token, &operator, &input, now,
                )
                .await?
                {
                    Ok(done) => done,
                    Err(refusal) => return Ok(Err(refusal)),
                };
                let call =
                    read_back_in(&tx, &round, &operator, recorded, claimed, since_ms, now).await?;
                tx.commit().await?;
                Ok(Ok(call))
            }
            .await;
            out.unwrap_or_else(|e| Err(RecordError::Storage(e)))
        });
        Box::pin(async move {
            task.await.unwrap_or_else(|e| {
                Err(RecordError::Storage(StorageError::Backend(format!(
                    "记录任务意外中止:{e}"
                ))))
            })
        })
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
        self.block_on(async {
            let mut client = self.conn().await?;
            let tx = client.transaction().await?;
            ensure_unlocked(&tx, round.id).await?;
            let (member, _, member_round) = member_record(&tx, member_id).await?;
            if member_round != round.id {
                return Err(StorageError::NotFound(format!(
                    "代表 {member_id} 不在轮次 {} 中",
                    round.key
                )));
            }
            tx.execute(
                "UPDATE members SET phone = $1 WHERE id = $2",
                &[&phone, &member_id],
            )
            .await
            .map_err(|e| match StorageError::from(e) {
                StorageError::Conflict(_) => {
                    StorageError::Conflict("该号码已在该单位的代表名单中".to_string())
                }
                other => other,
            })?;
            tx.execute(
                "INSERT INTO reopenings (member_id, at, reason, actor) VALUES ($1, $2, $3, $4)",
                &[
                    &member_id,
                    &now.timestamp_millis(),
                    &format!("更正号码: {reason}"),
                    &actor,
                ],
            )
            .await?;
            refresh_queue(&tx, round, member_id, now, false).await?;
            append_audit(
                &tx,
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
            .await?;
            tx.commit().await?;
            self.caches.generations.rounds.bump();
            Ok(())
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
        self.block_on(async {
            let mut client = self.conn().await?;
            let tx = client.transaction().await?;
            ensure_unlocked(&tx, round.id).await?;
            let (_, _, member_round) = member_record(&tx, member_id).await?;
            if member_round != round.id {
                return Err(StorageError::NotFound(format!(
                    "代表 {member_id} 不在轮次 {} 中",
                    round.key
                )));
            }
            tx.execute(
                "INSERT INTO reopenings (member_id, at, reason, actor) VALUES ($1, $2, $3, $4)",
                &[&member_id, &now.timestamp_millis(), &reason, &actor],
            )
            .await?;
            refresh_queue(&tx, round, member_id, now, false).await?;
            append_audit(
                &tx,
                &AuditEvent {
                    actor,
                    action: "member.reopen",
                    round_key: Some(&round.key),
                    detail: serde_json::json!({ "member_id": member_id, "reason": reason }),
                },
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn field_data(&self, round: &RoundRecord, now: DateTime<Utc>) -> Result<FieldData> {
        self.read_consistent(async |tx| {
            // One snapshot for the four reads, as SQLite's read transaction.
            let members = tx
                .query(
                    "SELECT m.id, m.unit_id, us.login FROM members m JOIN units u ON u.id = m.unit_id
                     LEFT JOIN assignments s ON s.member_id = m.id LEFT JOIN users us ON us.id = s.operator_id
                     WHERE u.round_id = $1 ORDER BY m.id",
                    &[&round.id],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            let mut data = FieldData {
                members,
                ..FieldData::default()
            };
            let rows = tx
                .query(
                    &format!(
                        "{ATTEMPT_SELECT} WHERE un.round_id = $1 ORDER BY a.member_id, a.recorded_at, a.attempt_no"
                    ),
                    &[&round.id],
                )
                .await?;
            for r in &rows {
                let id: i64 = r.get(0);
                if let Some(p) = stored_problem(r, &round.survey) {
                    data.bad_attempts.push((id, p));
                }
                match attempt_from_row(r) {
                    Ok(a) => data.attempts.push(a),
                    Err(StorageError::BadStoredValue(bad)) => data.unreadable.push(bad),
                    Err(e) => return Err(e),
                }
            }
            data.reopened = tx
                .query(
                    "SELECT r.member_id, MAX(r.at) FROM reopenings r JOIN members m ON m.id = r.member_id JOIN units u ON u.id = m.unit_id
                     WHERE u.round_id = $1 GROUP BY r.member_id",
                    &[&round.id],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            data.claimed = tx
                .query(
                    "SELECT q.member_id, u.login FROM queue q JOIN users u ON u.id = q.operator_id
                     WHERE q.round_id = $1 AND q.claim_token IS NOT NULL AND q.claim_expires > $2",
                    &[&round.id, &now.timestamp_millis()],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
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
        self.block_on(async {
            let mut client = self.conn().await?;
            let tx = client.transaction().await?;
            ensure_unlocked(&tx, round.id).await?;
            let ins = tx
                .prepare(
                    "INSERT INTO attempts (member_id, operator_id, attempt_no, recorded_at, outcome, aapor_code, answers, comment, appointment_at, source)
                     VALUES ($1, $2, (SELECT COALESCE(MAX(attempt_no), 0) + 1 FROM attempts WHERE member_id = $1), $3, $4, $5, $6, $7, $8, 'import')",
                )
                .await?;
            let mut touched = BTreeSet::new();
            for a in attempts {
                if touched.insert(a.member_id) {
                    // As a record does: attempt numbers of one member are given one at a time.
                    tx.query_opt(
                        "SELECT id FROM members WHERE id = $1 FOR NO KEY UPDATE",
                        &[&a.member_id],
                    )
                    .await?;
                }
                let answers = (!a.answers.is_empty())
                    .then(|| serde_json::to_string(&a.answers).unwrap_or_default());
                tx.execute(
                    &ins,
                    &[
                        &a.member_id,
                        &a.operator_id,
                        &a.recorded_at.timestamp_millis(),
                        &a.outcome.key(),
                        &a.outcome.aapor_code(),
                        &answers,
                        &a.comment,
                        &a.appointment.map(|t| t.timestamp_millis()),
                    ],
                )
                .await?;
            }
            for m in touched {
                refresh_queue(&tx, round, m, now, false).await?;
            }
            append_audit(
                &tx,
                &AuditEvent {
                    actor,
                    action: "attempts.import",
                    round_key: Some(&round.key),
                    detail: serde_json::json!({ "attempts": attempts.len() }),
                },
            )
            .await?;
            tx.commit().await?;
            Ok(attempts.len())
        })
    }

    fn attempt(&self, attempt_id: i64) -> Result<(AttemptRecord, i64)> {
        self.read(async |c| load_attempt(c, attempt_id).await)
    }

    fn member_attempts(&self, member_id: i64) -> Result<Vec<AttemptRecord>> {
        self.read(async |c| member_attempts_in(c, member_id).await)
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
        self.block_on(async {
            let mut client = self.conn().await?;
            let tx = client.transaction().await?;
            ensure_unlocked(&tx, round.id).await?;
            let (attempt, round_id) = load_attempt(&tx, attempt_id).await?;
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
                "UPDATE attempts SET answers = $1 WHERE id = $2",
                &[&after, &attempt_id],
            )
            .await?;
            let at = now.timestamp_millis();
            let id: i64 = tx
                .query_one(
                    "INSERT INTO answer_edits (attempt_id, at, actor, reason, before, after) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    &[&attempt_id, &at, &actor, &reason, &before, &after],
                )
                .await?
                .get(0);
            append_audit(
                &tx,
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
            )
            .await?;
            tx.commit().await?;
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
        self.read(async |c| {
            let ids: Vec<i64> = attempt_ids.to_vec();
            let rows = c
                .query(
                    "SELECT id, attempt_id, at, actor, reason, before, after FROM answer_edits
                     WHERE attempt_id = ANY($1) ORDER BY at, id",
                    &[&ids],
                )
                .await?;
            Ok(rows.iter().map(edit_row).collect())
        })
    }

    fn operator_day(
        &self,
        round: &RoundRecord,
        operator_id: i64,
        since_ms: i64,
        now: DateTime<Utc>,
    ) -> Result<OperatorDay> {
        self.read(async |c| operator_day_in(c, round, operator_id, since_ms, now).await)
    }

    fn operator_queue(
        &self,
        round: &RoundRecord,
        operator_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<QueueRow>> {
        let now_ms = now.timestamp_millis();
        self.read(async |c| {
            let rows = c
                .query(
                    "SELECT q.member_id, COALESCE(s.seq, 0), un.name, m.category, q.priority, q.sort_key,
                            (SELECT COUNT(*) FROM attempts a WHERE a.member_id = q.member_id),
                            (SELECT a.outcome FROM attempts a WHERE a.member_id = q.member_id
                              ORDER BY a.recorded_at DESC, a.attempt_no DESC LIMIT 1),
                            (SELECT a.id FROM attempts a WHERE a.member_id = q.member_id
                              ORDER BY a.recorded_at DESC, a.attempt_no DESC LIMIT 1),
                            q.claim_token IS NOT NULL AND q.claim_expires > $3
                     FROM queue q JOIN members m ON m.id = q.member_id JOIN units un ON un.id = m.unit_id
                     LEFT JOIN assignments s ON s.member_id = q.member_id
                     WHERE q.operator_id = $1 AND q.round_id = $2
                     ORDER BY q.priority, q.sort_key, q.member_id",
                    &[&operator_id, &round.id, &now_ms],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    let member_id: i64 = r.get(0);
                    let priority: i64 = r.get(4);
                    let sort_key: i64 = r.get(5);
                    let last_outcome = match r.get::<_, Option<String>>(7) {
                        None => None,
                        Some(key) => Some(strict(
                            key,
                            "attempts",
                            "outcome",
                            r.get::<_, Option<i64>>(8).unwrap_or_default(),
                            Outcome::from_key,
                        )?),
                    };
                    Ok(QueueRow {
                        member_id,
                        seq: r.get::<_, i64>(1) as u32,
                        unit: r.get(2),
                        category: strict(
                            r.get(3),
                            "members",
                            "category",
                            member_id,
                            MemberCategory::from_stored_label,
                        )?,
                        priority: priority as u8,
                        due_ms: (priority < 2).then_some(sort_key),
                        attempts: r.get::<_, i64>(6) as u32,
                        last_outcome,
                        on_call: r.get::<_, Option<bool>>(9).unwrap_or(false),
                    })
                })
                .collect()
        })
    }
}
