//! Storage: the interface the service needs, and its SQLite implementation.
//!
//! Everything above this layer talks to the [`Storage`] trait, so a PostgreSQL implementation
//! (with its own migrations) can sit beside [`sqlite::SqliteStore`] later.

pub mod admin;
pub mod location;
pub mod postgres;
pub mod results;
pub mod round_ops;
pub mod sessions;
pub mod sqlite;

use chrono::NaiveDate;
use serde::Serialize;

use crate::domain::audit::{AuditEntry, ChainBreak};
use crate::domain::roster::{MemberCategory, NewMember};
use crate::domain::survey::Survey;
use crate::domain::unit::{NewUnit, UnitKind};

pub use location::DatabaseLocation;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("round `{0}` is locked; nothing about it can change")]
    Locked(String),
    #[error(
        "存储空间已满(磁盘或数据库大小上限),本次修改未保存;已保存的数据不受影响。请清理磁盘空间后重试"
    )]
    Full,
    #[error("database error: {0}")]
    Database(rusqlite::Error),
    /// A stored enumerated value no reader knows: written before migration 013's triggers,
    /// or by hand. Named, never read as some default.
    #[error(transparent)]
    BadStoredValue(#[from] BadStoredValue),
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("stored survey definition of round `{round}` is invalid: {error}")]
    CorruptSurvey { round: String, error: String },
    #[error("cannot open the database at {path}: {error}")]
    Open { path: String, error: String },
}

/// Which stored value could not be read: table, row id, column and the value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "数据库表 {table} 第 {row_id} 行的 {column} 列存有无法识别的值 `{value}`,该行无法读取。请运行 `sheping check` 查看,由管理员更正这一行后再试"
)]
pub struct BadStoredValue {
    pub table: &'static str,
    pub row_id: i64,
    pub column: &'static str,
    pub value: String,
}

/// Row mappers run inside rusqlite, so a strict decoder's error travels as a conversion
/// failure; here it becomes the named error again.
impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::FromSqlConversionFailure(i, t, inner) => {
                match inner.downcast::<BadStoredValue>() {
                    Ok(bad) => StorageError::BadStoredValue(*bad),
                    Err(inner) => StorageError::Database(
                        rusqlite::Error::FromSqlConversionFailure(i, t, inner),
                    ),
                }
            }
            e => StorageError::Database(e),
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
pub struct NewRound {
    pub key: String,
    pub title: String,
    pub survey: Survey,
    pub survey_source: String,
    pub field: Option<(NaiveDate, NaiveDate)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoundRecord {
    pub id: i64,
    pub key: String,
    pub title: String,
    /// Shared: every request reads its round, and the parsed definition never changes.
    #[serde(skip)]
    pub survey: std::sync::Arc<Survey>,
    pub survey_source: String,
    pub field_start: Option<NaiveDate>,
    pub field_end: Option<NaiveDate>,
    pub locked_at_ms: Option<i64>,
    pub created_at_ms: i64,
}

impl RoundRecord {
    pub fn is_locked(&self) -> bool {
        self.locked_at_ms.is_some()
    }

    /// The field period; a round without one may call any day (windows still apply).
    pub fn field_period(&self) -> crate::domain::schedule::FieldPeriod {
        let open_start = NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid date");
        let open_end = NaiveDate::from_ymd_opt(2999, 12, 31).expect("valid date");
        crate::domain::schedule::FieldPeriod {
            start: self.field_start.unwrap_or(open_start),
            end: self.field_end.unwrap_or(open_end),
        }
    }

    /// Whether the field period is over at `now` (open members are then final).
    pub fn field_closed(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.field_period().is_over(self.survey.timezone(), now)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RoundSummary {
    #[serde(flatten)]
    pub round: RoundRecord,
    pub units: usize,
    pub members: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnitRecord {
    pub id: i64,
    pub name: String,
    pub kind: UnitKind,
    pub sector: String,
    pub code: Option<String>,
    pub panel: usize,
    pub two_deputies_one_member: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberRecord {
    pub id: i64,
    pub unit_id: i64,
    pub unit: String,
    /// `None` once the round's contacts were purged.
    pub name: Option<String>,
    pub phone: Option<String>,
    pub phone_alt: Option<String>,
    pub category: MemberCategory,
    pub organization: Option<String>,
    pub note: Option<String>,
}

/// What an audit entry records; the storage adds the time and the hash chain.
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub round_key: Option<&'a str>,
    pub detail: serde_json::Value,
}

/// Where [`Storage::add_members_streamed`] puts a roster, inside its open transaction.
pub trait MemberSink {
    /// Deletes the stored panel of a unit (refused once calls were made for it).
    fn replace_panel(&mut self, unit_id: i64) -> Result<()>;
    /// Stores members, in the order given.
    fn add(&mut self, members: &[NewMember]) -> Result<()>;
}

/// The storage interface. Every write that the service acknowledges is durable when the
/// method returns.
pub trait Storage: Send + Sync {
    /// Runs `f` with every read it makes on this thread taken from one snapshot: the reads
    /// agree with each other, and share one read transaction instead of starting (and, after
    /// any write, warming) one each. A write made inside `f` starts a new snapshot, so `f`
    /// always reads its own writes; other writers' commits stay unseen until then.
    fn snapshot(&self, f: &mut dyn FnMut());
    fn create_round(&self, round: &NewRound, actor: &str) -> Result<RoundRecord>;
    fn rounds(&self) -> Result<Vec<RoundSummary>>;
    fn round(&self, key: &str) -> Result<RoundRecord>;
    fn set_field_period(
        &self,
        round: &RoundRecord,
        start: NaiveDate,
        end: NaiveDate,
        actor: &str,
    ) -> Result<()>;
    /// Locks a round: from then on every write path refuses it.
    fn lock_round(&self, round: &RoundRecord, actor: &str) -> Result<()>;
    /// Deletes names, phone numbers and free-text contact fields of a locked round's members,
    /// keeping everything results and exports need. Returns the members purged.
    fn purge_contacts(&self, round: &RoundRecord, actor: &str) -> Result<usize>;
    fn units(&self, round_id: i64) -> Result<Vec<UnitRecord>>;
    /// Inserts units all together or none.
    fn add_units(&self, round: &RoundRecord, units: &[NewUnit], actor: &str) -> Result<usize>;
    /// Stored phones per unit and whether calls were made, for roster validation.
    fn roster_units(&self, round_id: i64) -> Result<Vec<crate::domain::roster::RosterUnit>>;
    /// Stores members in one transaction, first deleting the panels of `replace_units`.
    fn add_members(
        &self,
        round: &RoundRecord,
        members: &[NewMember],
        replace_units: &[i64],
        actor: &str,
    ) -> Result<usize>;
    /// Stores members as they come, in one transaction: `feed` runs on the writer, gives the
    /// sink the panels to replace and the members to store (a panel before its new members),
    /// and returns whether to keep them. Kept: durable when this returns, `Some(members
    /// stored)`. Not kept: nothing is stored, `None`; when `feed` or the sink fails, nothing is
    /// stored either and the error is returned.
    fn add_members_streamed(
        &self,
        round: &RoundRecord,
        actor: &str,
        feed: &mut dyn FnMut(&mut dyn MemberSink) -> Result<bool>,
    ) -> Result<Option<usize>>;
    fn members(&self, round_id: i64, unit_id: Option<i64>) -> Result<Vec<MemberRecord>>;
    fn audit(&self, event: &AuditEvent) -> Result<()>;
    fn audit_entries(&self, round_key: Option<&str>) -> Result<Vec<AuditEntry>>;
    fn verify_audit(&self) -> Result<Result<usize, ChainBreak>>;
}

// ---------------------------------------------------------------------------------------------
// Users and the call engine.

use chrono::{DateTime, Utc};

use crate::domain::disposition::{AttemptFact, Outcome};
use crate::domain::plan::Assignment;
use crate::domain::user::Role;

#[derive(Debug, Clone, Serialize)]
pub struct UserRecord {
    pub id: i64,
    pub login: String,
    pub name: String,
    pub role: Role,
    pub active: bool,
    #[serde(skip)]
    pub password_hash: String,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub login: String,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
}

/// What plan generation starts from.
#[derive(Debug, Clone, Default)]
pub struct PlanState {
    /// Members never called and not on a call now: these get (re)planned.
    pub never_called: Vec<crate::domain::plan::PlanMember>,
    /// Pending assignments that stay (members already called and still open, or on a call now).
    pub kept: Vec<Assignment>,
    /// Members with at least one attempt.
    pub called: usize,
    /// Members never called that no operator has (added by a roster upload after the plan).
    pub unassigned: Vec<crate::domain::plan::PlanMember>,
    /// (operator login, unit id)
    pub exclusions: std::collections::BTreeSet<(String, i64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanRecord {
    pub id: i64,
    pub kind: String,
    pub seed: u64,
    pub algorithm: String,
    pub operators: Vec<String>,
    pub members: usize,
    pub digest: String,
    pub created_at_ms: i64,
    pub created_by: String,
}

#[derive(Debug, Clone)]
pub struct NewPlan {
    pub kind: &'static str,
    pub seed: u64,
    pub algorithm: &'static str,
    pub operators: Vec<String>,
    pub digest: String,
    /// The canonical inputs as JSON (`domain::plan::PlanInputs`).
    pub inputs: String,
}

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

pub fn ms_to_utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A contact claimed by an operator: everything the call screen shows.
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

/// A contact just claimed inside a write, without its record and history: the call screen
/// reads those ([`CallStore::held_claims`], or [`RecordedCall::screen`] in the same write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub token: String,
    pub member_id: i64,
    pub claimed_at_ms: i64,
    pub expires_at_ms: i64,
}

/// What the call screen's "just recorded" line shows of an attempt, with what it takes to
/// check that the attempt is the operator's own in this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedLine {
    pub operator_id: i64,
    pub round_id: i64,
    pub unit_name: String,
    pub attempt_no: u32,
    pub outcome: Outcome,
    pub recorded_at_ms: i64,
    /// The agreed call-back time of an appointment, for the confirmation line.
    pub appointment_at_ms: Option<i64>,
}

/// What the operator's call screen shows, read in one snapshot.
#[derive(Debug, Clone)]
pub struct CallScreen {
    /// The contacts the operator holds, oldest claim first: the screen shows the first.
    pub held: Vec<Claim>,
    pub day: crate::storage::admin::OperatorDay,
    /// The attempt just recorded, for the screen's "just recorded" line.
    pub done: Option<RecordedLine>,
}

/// The answer of [`CallStore::record_then_screen_queued`]: the attempt, the contact claimed
/// next (if any), and the screen as the write's commit left it.
#[derive(Debug)]
pub struct RecordedCall {
    pub recorded: Recorded,
    pub claimed: Option<Claimed>,
    pub screen: CallScreen,
}

/// A write queued for the writer thread; resolves to its answer once it is durable.
pub type Queued<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

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

/// A call-list row (for `calls export`); `phone` is canonical, the caller masks it.
#[derive(Debug, Clone, Serialize)]
pub struct CallListRow {
    pub operator: String,
    pub seq: u32,
    pub member_id: i64,
    pub unit_id: i64,
    pub unit: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub category: MemberCategory,
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

/// Users, plans, the queue and attempts.
pub trait CallStore: Send + Sync {
    fn add_user(&self, user: &NewUser, actor: &str) -> Result<UserRecord>;
    fn users(&self) -> Result<Vec<UserRecord>>;
    fn user(&self, login: &str) -> Result<UserRecord>;
    fn set_user_active(&self, login: &str, active: bool, actor: &str) -> Result<()>;
    fn set_password(&self, login: &str, password_hash: &str, actor: &str) -> Result<()>;
    fn exclude_operator(
        &self,
        round: &RoundRecord,
        login: &str,
        unit_id: i64,
        actor: &str,
    ) -> Result<()>;
    /// Ends a conflict of interest; false when there was none (nothing logged then).
    fn remove_exclusion(
        &self,
        round: &RoundRecord,
        login: &str,
        unit_id: i64,
        actor: &str,
    ) -> Result<bool>;

    fn plan_state(&self, round: &RoundRecord) -> Result<PlanState>;
    /// Stores assignments (replacing those of the same members) and their queue rows.
    fn apply_plan(
        &self,
        round: &RoundRecord,
        plan: &NewPlan,
        assignments: &[Assignment],
        actor: &str,
    ) -> Result<PlanRecord>;
    fn plans(&self, round: &RoundRecord) -> Result<Vec<PlanRecord>>;
    /// A plan's stored inputs (JSON), `None` for plans made before inputs were stored.
    fn plan_inputs(&self, round: &RoundRecord, plan_id: i64) -> Result<Option<String>>;
    /// The current assignments that a plan made and no later plan replaced, by `(operator, seq)`.
    fn plan_assignments(&self, round: &RoundRecord, plan_id: i64) -> Result<Vec<Assignment>>;
    /// Pending (unclaimed, open) assignments of one operator, and the loads of everyone else.
    fn pending_assignments(&self, round: &RoundRecord) -> Result<Vec<Assignment>>;

    /// The rounds in which an operator has calls, newest first (cheap: no member counts).
    fn operator_rounds(&self, operator_id: i64) -> Result<Vec<RoundRecord>>;
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
    /// Claims an operator holds now (a reloaded page resumes them).
    fn held_claims(
        &self,
        round: &RoundRecord,
        operator: &UserRecord,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claim>>;
    /// An attempt as the call screen's "just recorded" line shows it (one narrow read: the
    /// screen asks after every call); `None` when there is no such attempt.
    fn recorded_line(&self, attempt_id: i64) -> Result<Option<RecordedLine>>;
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
    /// the call screen read in the same transaction (`since_ms`: the operator's local
    /// midnight, for the day's counts). The future resolves once the write is durable. An
    /// async request awaits it without holding a thread of the blocking pool for the wait.
    fn record_then_screen_queued(
        &self,
        round: &RoundRecord,
        token: &str,
        operator: &UserRecord,
        input: &AttemptInput,
        now: DateTime<Utc>,
        since_ms: i64,
    ) -> Queued<Result<RecordedCall, RecordError>>;
    /// The operator's rounds if they are in memory and current (no read, no blocking), else
    /// `None`: ask [`CallStore::operator_rounds`].
    fn operator_rounds_cached(&self, operator_id: i64) -> Option<Vec<RoundRecord>>;
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
    fn call_list(&self, round: &RoundRecord, operator: Option<&str>) -> Result<Vec<CallListRow>>;
    fn import_attempts(
        &self,
        round: &RoundRecord,
        attempts: &[ImportedAttempt],
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<usize>;
}

/// [`Storage::snapshot`] for a closure that returns a value.
pub fn in_snapshot<T>(store: &(impl Storage + ?Sized), f: impl FnOnce() -> T) -> T {
    let mut f = Some(f);
    let mut out = None;
    store.snapshot(&mut || {
        if let Some(f) = f.take() {
            out = Some(f());
        }
    });
    out.expect("snapshot runs its closure once")
}
