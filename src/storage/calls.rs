//! The calls: the queue with its claims, the attempts recorded for them, reopenings and phone
//! corrections, corrections of recorded answers, and an operator's own figures and list.
//!
//! A claim is exclusive (one holder per member at a time; an expired claim may be taken over),
//! and recording is idempotent per claim token: the same token recorded twice stores one
//! attempt and answers the second time with `duplicate`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    BadStoredValue, MemberRecord, Queued, Result, RoundRecord, StorageError, UserRecord, ms_to_utc,
};
use crate::domain::disposition::{AttemptFact, Outcome};
use crate::domain::roster::MemberCategory;

/// An attempt as stored.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    pub id: i64,
    pub member_id: i64,
    pub unit_id: i64,
    pub operator: String,
    pub attempt_no: u32,
    pub claimed_at_ms: Option<i64>,
    pub recorded_at_ms: i64,
    pub outcome: Outcome,
    pub aapor_code: String,
    pub answers: Vec<Option<usize>>,
    pub answer_ms: Vec<Option<i64>>,
    pub comment: Option<String>,
    pub appointment_at_ms: Option<i64>,
    pub source: String,
    /// Recorded after its claim lapsed and another claim or record came in between.
    pub late: bool,
}

impl AttemptRecord {
    pub fn fact(&self) -> AttemptFact {
        AttemptFact {
            outcome: self.outcome,
            at: ms_to_utc(self.recorded_at_ms),
            appointment: self.appointment_at_ms.map(ms_to_utc),
        }
    }
}

/// A contact an operator holds: the claim, the member, and the member's earlier attempts.
#[derive(Debug, Clone, Serialize)]
pub struct Claim {
    pub token: String,
    pub member: MemberRecord,
    pub unit_kind: crate::domain::unit::UnitKind,
    /// The number this attempt will get.
    pub attempt_no: u32,
    pub earlier: Vec<AttemptRecord>,
    pub appointment_at_ms: Option<i64>,
    pub claimed_at_ms: i64,
    pub expires_at_ms: i64,
}

/// A contact just claimed inside a write, without its record and history (read those with
/// [`CallStore::held_claims`], or take [`RecordedCall::held`] read in the same write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub token: String,
    pub member_id: i64,
    pub claimed_at_ms: i64,
    pub expires_at_ms: i64,
}

/// An attempt in brief: whose, in which round and unit, its number, outcome and times (one
/// narrow read, cheap enough to ask after every call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptBrief {
    pub operator_id: i64,
    pub round_id: i64,
    pub unit_name: String,
    pub attempt_no: u32,
    pub outcome: Outcome,
    pub recorded_at_ms: i64,
    /// The agreed call-back time of an appointment.
    pub appointment_at_ms: Option<i64>,
}

/// The answer of [`CallStore::record_then_claim_queued`]: the attempt, the contact claimed
/// next (if any), and what the operator has after it, read in the write's own transaction
/// (so it is the state this very commit leaves).
#[derive(Debug)]
pub struct RecordedCall {
    pub recorded: Recorded,
    pub claimed: Option<Claimed>,
    /// The contacts the operator holds after the write, oldest claim first.
    pub held: Vec<Claim>,
    /// The operator's figures after the write (the day counted from the given `since_ms`).
    pub day: OperatorDay,
    /// The attempt just recorded, in brief (`None` only if it cannot be read back).
    pub brief: Option<AttemptBrief>,
}

/// What an operator records for a claimed contact.
#[derive(Debug, Clone, Default)]
pub struct AttemptInput {
    pub outcome: Option<Outcome>,
    pub answers: Vec<Option<usize>>,
    pub answer_ms: Vec<Option<i64>>,
    pub comment: Option<String>,
    pub appointment: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub attempt_id: i64,
    pub member_id: i64,
    pub attempt_no: u32,
    pub outcome: Outcome,
    /// True when this token had been recorded before: nothing new was stored.
    pub duplicate: bool,
    /// Recorded after the claim lapsed and another claim or record on the member came in
    /// between: stored, flagged for the supervisor.
    pub late: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("该联系人不在您的名下或已被释放,请点击“下一个”重新领取")]
    UnknownClaim,
    #[error("该联系人已由其他话务员领取,您的记录未保存")]
    NotYours,
    /// The form names another round than the claim's: the claim token alone decides round,
    /// member and survey, so nothing is stored.
    #[error(
        "该联系人属于评估轮次 {claim_round},而表单提交的轮次是 {form_round};记录未保存,请刷新拨打页面后重新提交"
    )]
    RoundMismatch {
        claim_round: String,
        form_round: String,
    },
    #[error(transparent)]
    Invalid(#[from] crate::domain::disposition::AttemptError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<rusqlite::Error> for RecordError {
    fn from(e: rusqlite::Error) -> Self {
        RecordError::Storage(StorageError::from(e))
    }
}

/// Everything about a round's calls needed to compute progress and dispositions.
#[derive(Debug, Clone, Default)]
pub struct FieldData {
    /// member id -> (unit id, assigned operator)
    pub members: Vec<(i64, i64, Option<String>)>,
    pub attempts: Vec<AttemptRecord>,
    /// member id -> latest reopening (ms)
    pub reopened: std::collections::BTreeMap<i64, i64>,
    /// members on a call now, with the operator holding them
    pub claimed: std::collections::BTreeMap<i64, String>,
    /// Attempts that do not fit the round's survey (answer count, level range, outcome or
    /// AAPOR code), as (attempt id, what is wrong); results refuse to compute over them.
    pub bad_attempts: Vec<(i64, String)>,
    /// Attempts that cannot be read at all (an unknown outcome): named in `bad_attempts` too,
    /// and left out of `attempts`.
    pub unreadable: Vec<BadStoredValue>,
}

impl FieldData {
    /// Refuses data with an unreadable attempt: dispositions and progress computed without
    /// it would be silently wrong (results and `check` name it through `bad_attempts`).
    pub fn ensure_readable(&self) -> Result<()> {
        match self.unreadable.first() {
            Some(bad) => Err(StorageError::BadStoredValue(bad.clone())),
            None => Ok(()),
        }
    }
}

/// An imported attempt, validated.
#[derive(Debug, Clone)]
pub struct ImportedAttempt {
    pub member_id: i64,
    pub operator_id: i64,
    pub recorded_at: DateTime<Utc>,
    pub outcome: Outcome,
    pub answers: Vec<Option<usize>>,
    pub comment: Option<String>,
    pub appointment: Option<DateTime<Utc>>,
}

/// An administrator's correction of an attempt's answers.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerEditRecord {
    pub id: i64,
    pub attempt_id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub reason: String,
    pub before: Vec<Option<usize>>,
    pub after: Vec<Option<usize>>,
}

/// An operator's figures on a round: the day's counts and what is left in the queue.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct OperatorDay {
    /// Complete interviews recorded since `since_ms` (local midnight).
    pub completes_today: u32,
    /// Attempts of any outcome recorded since `since_ms`.
    pub attempts_today: u32,
    /// Contacts still in the operator's queue (not final), on a call or not.
    pub remaining: u32,
    /// Of those, callable now (first calls, and retries and appointments that are due).
    pub due_now: u32,
    /// The earliest later due time of a retry or appointment.
    pub next_due_ms: Option<i64>,
}

/// One row of an operator's own list (no phone number).
#[derive(Debug, Clone, Serialize)]
pub struct QueueRow {
    pub member_id: i64,
    pub seq: u32,
    pub unit: String,
    pub category: MemberCategory,
    /// 0 appointment, 1 retry, 2 first call.
    pub priority: u8,
    /// Due time (ms) of retries and appointments.
    pub due_ms: Option<i64>,
    pub attempts: u32,
    pub last_outcome: Option<Outcome>,
    pub on_call: bool,
}

pub trait CallStore: Send + Sync {
    /// The rounds in which an operator has calls, newest first (cheap: no member counts).
    fn operator_rounds(&self, operator_id: i64) -> Result<Vec<RoundRecord>>;
    /// The operator's rounds if they are in memory and current (no read, no blocking), else
    /// `None`: ask [`CallStore::operator_rounds`].
    fn operator_rounds_cached(&self, operator_id: i64) -> Option<Vec<RoundRecord>>;
    fn claim_next(
        &self,
        round: &RoundRecord,
        operator: &UserRecord,
        now: DateTime<Utc>,
    ) -> Result<Option<Claim>>;
    /// Claims the next contact unless the operator holds one already (a second tab, a double
    /// click): the check and the claim in one write.
    fn claim_next_if_free(
        &self,
        round: &RoundRecord,
        operator: &UserRecord,
        now: DateTime<Utc>,
    ) -> Result<Option<Claim>>;
    /// Claims an operator holds now, oldest first (a reloaded page resumes them).
    fn held_claims(
        &self,
        round: &RoundRecord,
        operator: &UserRecord,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claim>>;
    /// An attempt in brief; `None` when there is no such attempt.
    fn attempt_brief(&self, attempt_id: i64) -> Result<Option<AttemptBrief>>;
    fn release(&self, token: &str, operator: &UserRecord) -> Result<bool>;
    /// Extends the holder's claim by a lease from `now` (also a lapsed claim nobody has taken
    /// since); the new expiry, or `None` when the operator does not hold the token in `round`.
    fn renew_claim(
        &self,
        round: &RoundRecord,
        token: &str,
        operator: &UserRecord,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>>;
    fn record(
        &self,
        round: &RoundRecord,
        token: &str,
        operator: &UserRecord,
        input: &AttemptInput,
        now: DateTime<Utc>,
    ) -> Result<Recorded, RecordError>;
    /// Records the attempt and, unless it was a repeat or the operator still holds another
    /// contact, claims the next one: the operator's whole cycle in one write. The next
    /// contact's record is not read here; [`CallStore::held_claims`] shows it.
    fn record_then_claim(
        &self,
        round: &RoundRecord,
        token: &str,
        operator: &UserRecord,
        input: &AttemptInput,
        now: DateTime<Utc>,
    ) -> Result<(Recorded, Option<Claimed>), RecordError>;
    /// [`CallStore::record_then_claim`] handed to the writer without blocking the caller, with
    /// the operator's held claims, figures (`since_ms`: the operator's local midnight, for the
    /// day's counts) and the attempt's brief read in the same transaction. The future resolves
    /// once the write is durable. An async request awaits it without holding a thread of the
    /// blocking pool for the wait.
    fn record_then_claim_queued(
        &self,
        round: &RoundRecord,
        token: &str,
        operator: &UserRecord,
        input: &AttemptInput,
        now: DateTime<Utc>,
        since_ms: i64,
    ) -> Queued<Result<RecordedCall, RecordError>>;
    /// Corrects a member's phone number and reopens the member (audited, masked).
    fn fix_phone(
        &self,
        round: &RoundRecord,
        member_id: i64,
        phone: &str,
        reason: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;
    fn reopen(
        &self,
        round: &RoundRecord,
        member_id: i64,
        reason: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;
    fn field_data(&self, round: &RoundRecord, now: DateTime<Utc>) -> Result<FieldData>;
    /// Stores validated imported attempts all together or none.
    fn import_attempts(
        &self,
        round: &RoundRecord,
        attempts: &[ImportedAttempt],
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<usize>;

    /// One attempt and the id of its round.
    fn attempt(&self, attempt_id: i64) -> Result<(AttemptRecord, i64)>;

    /// A member's attempts, oldest first.
    fn member_attempts(&self, member_id: i64) -> Result<Vec<AttemptRecord>>;

    /// Replaces the answers of a complete or partial attempt, keeping before, after, who, when
    /// and why (`answer_edits` and the audit log's `attempt.edit_answers`).
    fn edit_answers(
        &self,
        round: &RoundRecord,
        attempt_id: i64,
        answers: &[Option<usize>],
        reason: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<AnswerEditRecord>;

    /// The answer edits of the given attempts, oldest first.
    fn answer_edits(&self, attempt_ids: &[i64]) -> Result<Vec<AnswerEditRecord>>;

    /// The operator's day on the round, counted from `since_ms`.
    fn operator_day(
        &self,
        round: &RoundRecord,
        operator_id: i64,
        since_ms: i64,
        now: DateTime<Utc>,
    ) -> Result<OperatorDay>;

    /// The operator's remaining contacts in call order.
    fn operator_queue(
        &self,
        round: &RoundRecord,
        operator_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<QueueRow>>;
}

/// The checks of a record once its claim is found, the same on every backend (no SQL): unless
/// the record is late (someone recorded or claimed the member after this claim began — the
/// interview happened all the same, so it is stored even when the member became final
/// meanwhile), the member must still be open; the attempt itself must fit the round's survey
/// and field period; the comment must be clean text.
pub fn check_record(
    round: &RoundRecord,
    facts: &[AttemptFact],
    reopened_at: Option<DateTime<Utc>>,
    late: bool,
    outcome: Outcome,
    input: &AttemptInput,
    now: DateTime<Utc>,
) -> Result<(), RecordError> {
    use crate::domain::disposition::{
        MemberHistory, check_still_open, disposition, validate_comment, validate_record,
    };
    if !late {
        let history = MemberHistory {
            attempts: facts,
            reopened_at,
        };
        check_still_open(&disposition(
            &history,
            round.survey.calling.max_attempts,
            round.field_closed(now),
        ))?;
    }
    validate_record(
        outcome,
        &input.answers,
        round.survey.dimensions.len(),
        round.survey.levels.len(),
        input.appointment,
        now,
        Some(round.field_period().ends_at(round.survey.timezone())),
    )?;
    validate_comment(input.comment.as_deref())?;
    Ok(())
}

/// A claim token: the claim time, then 128 random bits. The time prefix makes each new token
/// sort after the last, so the two unique indexes on claim tokens (queue, attempts) grow at
/// their right edge instead of dirtying a random page per call; the random part keeps it
/// unguessable.
pub fn new_token(now_ms: i64) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    format!(
        "{:011x}{:016x}{:016x}",
        now_ms.max(0),
        rng.next_u64(),
        rng.next_u64()
    )
}

/// A claim's lease: the round's `lease_minutes`, or `SHEPING_LEASE_SECS` when set (tests and
/// trials let a claim lapse in seconds instead of a quarter of an hour).
pub fn lease_ms(round: &RoundRecord) -> i64 {
    static OVERRIDE: std::sync::LazyLock<Option<i64>> = std::sync::LazyLock::new(|| {
        std::env::var("SHEPING_LEASE_SECS")
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|s| (1..=4 * 3600).contains(s))
    });
    OVERRIDE.map_or_else(
        || i64::from(round.survey.calling.lease_minutes) * 60_000,
        |s| s * 1000,
    )
}
