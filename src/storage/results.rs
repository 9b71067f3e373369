//! Results and on-site data: the scoring's inputs beyond the calls (on-site ballots and scores,
//! evidence records) and each round's results settings, drawn once and kept. Plain types only;
//! the SQLite implementation is `sqlite/results.rs`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Result, RoundRecord};
use crate::domain::evidence::EvidenceRecord;

/// One on-site ballot as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredBallot {
    /// The ballot's id as written on the form.
    pub ballot: String,
    /// Level index (0 = best) per dimension, or one overall level when `overall`.
    pub levels: Vec<usize>,
    pub overall: bool,
}

/// A unit's on-site evaluation data.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredOnsite {
    Ballots(Vec<StoredBallot>),
    /// One score on the level-score scale (0 ..= the best level's score).
    Direct(f64),
}

/// A validated on-site import, stored in one transaction.
#[derive(Debug, Clone, Default)]
pub struct OnsiteBatch {
    /// (unit id, ballot, source line)
    pub ballots: Vec<(i64, StoredBallot, usize)>,
    /// (unit id, score, source line)
    pub scores: Vec<(i64, f64, usize)>,
    /// Units whose stored on-site data is deleted first (`--replace`).
    pub replace_units: Vec<i64>,
}

/// A validated evidence import, stored in one transaction.
#[derive(Debug, Clone, Default)]
pub struct EvidenceBatch {
    /// (unit id, record, source line)
    pub records: Vec<(i64, EvidenceRecord, usize)>,
    /// Delete all of the round's stored evidence first (`--replace`).
    pub replace: bool,
}

/// Drawn once per round and kept (see migration 004).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultsSettings {
    pub bootstrap_seed: u64,
    /// HMAC key of the pseudonymous respondent ids.
    pub pseudonym_key: [u8; 32],
}

pub trait ResultsStore: Send + Sync {
    /// On-site data per unit id (units without any are absent).
    fn onsite(&self, round_id: i64) -> Result<BTreeMap<i64, StoredOnsite>>;
    /// Stores a validated on-site import all at once; returns the rows stored.
    fn store_onsite(&self, round: &RoundRecord, batch: &OnsiteBatch, actor: &str) -> Result<usize>;
    /// Evidence records per unit id (units without any are absent), kinds in order.
    fn evidence(&self, round_id: i64) -> Result<BTreeMap<i64, Vec<EvidenceRecord>>>;
    /// Stores a validated evidence import all at once (audited); returns the records stored.
    fn store_evidence(
        &self,
        round: &RoundRecord,
        batch: &EvidenceBatch,
        actor: &str,
    ) -> Result<usize>;
    /// The round's stored settings, if drawn yet.
    fn results_settings(&self, round_id: i64) -> Result<Option<ResultsSettings>>;
    /// Stores `fresh` unless settings exist already; returns the stored ones. Allowed on a
    /// locked round: it fixes how results are computed, it changes no data.
    fn init_results_settings(
        &self,
        round: &RoundRecord,
        fresh: &ResultsSettings,
        actor: &str,
    ) -> Result<ResultsSettings>;
}
