//! Rounds and their units: the aggregate every other one hangs from. A locked round refuses
//! every write of every aggregate (each write checks the lock inside its own transaction).

use chrono::NaiveDate;
use serde::Serialize;

use super::Result;
use crate::domain::survey::Survey;
use crate::domain::unit::{NewUnit, UnitKind};

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

pub trait RoundStore: Send + Sync {
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
    /// Locks a round: from then on every write path refuses it, and its claims end.
    fn lock_round(&self, round: &RoundRecord, actor: &str) -> Result<()>;
    /// Deletes names, phone numbers and free-text contact fields of a locked round's members
    /// (and masks them in comments), keeping everything results and exports need; the deleted
    /// values must not survive anywhere in the database's files. Returns the members purged.
    fn purge_contacts(&self, round: &RoundRecord, actor: &str) -> Result<usize>;
    fn units(&self, round_id: i64) -> Result<Vec<UnitRecord>>;
    /// Inserts units all together or none.
    fn add_units(&self, round: &RoundRecord, units: &[NewUnit], actor: &str) -> Result<usize>;
    /// Links `round` to its predecessor (audited); replaces an earlier link.
    fn set_previous_round(
        &self,
        round: &RoundRecord,
        previous: &RoundRecord,
        actor: &str,
    ) -> Result<()>;
    /// The key of the round's predecessor, if linked.
    fn previous_round(&self, round_id: i64) -> Result<Option<String>>;
    /// The counts a round's path (`domain::round_path`) is computed from, read at once.
    fn round_counts(&self, round: &RoundRecord) -> Result<crate::domain::round_path::RoundCounts>;
}
