//! Storage: the interface the service needs, and its SQLite implementation.
//!
//! Everything above this layer talks to the [`Storage`] trait, so a PostgreSQL implementation
//! (with its own migrations) can sit beside [`sqlite::SqliteStore`] later.

pub mod sqlite;

use chrono::NaiveDate;
use serde::Serialize;

use crate::domain::audit::{AuditEntry, ChainBreak};
use crate::domain::roster::{MemberCategory, NewMember};
use crate::domain::survey::Survey;
use crate::domain::unit::{NewUnit, UnitKind};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("round `{0}` is locked; nothing about it can change")]
    Locked(String),
    #[error("the database is full (disk or size limit); the change was not saved")]
    Full,
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("stored survey definition of round `{round}` is invalid: {error}")]
    CorruptSurvey { round: String, error: String },
    #[error("cannot open the database at {path}: {error}")]
    Open { path: String, error: String },
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
    #[serde(skip)]
    pub survey: Survey,
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

/// The storage interface. Every write that the service acknowledges is durable when the
/// method returns.
pub trait Storage: Send + Sync {
    fn create_round(&self, round: &NewRound, actor: &str) -> Result<RoundRecord>;
    fn rounds(&self) -> Result<Vec<RoundSummary>>;
    fn round(&self, key: &str) -> Result<RoundRecord>;
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
    fn members(&self, round_id: i64, unit_id: Option<i64>) -> Result<Vec<MemberRecord>>;
    fn audit(&self, event: &AuditEvent) -> Result<()>;
    fn audit_entries(&self, round_key: Option<&str>) -> Result<Vec<AuditEntry>>;
    fn verify_audit(&self) -> Result<Result<usize, ChainBreak>>;
}
