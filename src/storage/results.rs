//! Storage for the scoring work: on-site evaluation data, each round's results settings and
//! API tokens. Plain types only; the SQLite implementation is `sqlite/results.rs`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Result, RoundRecord, UserRecord};
use crate::domain::evidence::EvidenceRecord;
use crate::domain::user::Role;

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

#[derive(Debug, Clone, Serialize)]
pub struct ApiTokenRecord {
    pub id: i64,
    pub login: String,
    pub role: Role,
    pub user_active: bool,
    /// First characters of the token (never the whole token).
    pub prefix: String,
    pub label: String,
    pub created_at_ms: i64,
    pub created_by: String,
    pub expires_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    pub last_used_at_ms: Option<i64>,
}

impl ApiTokenRecord {
    /// Not revoked, not expired at `now`, and its user is active.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.user_active
            && self.revoked_at_ms.is_none()
            && self
                .expires_at_ms
                .is_none_or(|e| e > now.timestamp_millis())
    }

    /// Its state in words, as `token list` and the console show it.
    pub fn state_label(&self, now: DateTime<Utc>) -> &'static str {
        if self.revoked_at_ms.is_some() {
            "已吊销"
        } else if !self.user_active {
            "用户已停用"
        } else if self.is_usable(now) {
            "有效"
        } else {
            "已过期"
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub login: String,
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    pub prefix: String,
    pub label: String,
    pub expires_at: Option<DateTime<Utc>>,
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
    /// Links `round` to its predecessor (audited); replaces an earlier link.
    fn set_previous_round(
        &self,
        round: &RoundRecord,
        previous: &RoundRecord,
        actor: &str,
    ) -> Result<()>;
    /// The key of the round's predecessor, if linked.
    fn previous_round(&self, round_id: i64) -> Result<Option<String>>;
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
    fn add_api_token(&self, token: &NewApiToken, actor: &str) -> Result<ApiTokenRecord>;
    fn api_tokens(&self) -> Result<Vec<ApiTokenRecord>>;
    fn revoke_api_token(&self, id: i64, actor: &str) -> Result<()>;
    /// The token with this hash and its user, if any (usable or not: the caller decides).
    /// Records the use time (at most once a minute per token).
    fn api_token_user(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(ApiTokenRecord, UserRecord)>>;
}
