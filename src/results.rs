//! A round's results document: the stored attempts and on-site data turned into the scoring
//! inputs, scored by [`crate::domain::scoring::score_round`], and combined with each unit's
//! dispositions and response rates. Nothing here is stored: results are recomputed from the
//! attempts every time, so they cannot drift from what was recorded. Shared by the CLI
//! (`sheping results`), the HTTP API and the exports. The JSON is documented in `docs/results.md`.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::disposition::{AttemptFact, DispositionCounts, Outcome, ResponseRates};
use crate::domain::evidence::{self, EvidenceCheck, EvidenceRecord, UnitEvidence};
use crate::domain::progress::{self, MemberFacts, Progress};
use crate::domain::roster::MemberCategory;
use crate::domain::scoring::{
    self, Ballot, DimensionChi2, Flag, Interview, OnsiteData, OnsiteScore, OperatorCheck,
    PhoneScore, RankBasis, RoundResults, ScoringError, ScoringOptions, SocialScore, Suspicious,
    UnitInput,
};
use crate::domain::stats::Anova;
use crate::domain::survey::Survey;
use crate::engine::Store;
use crate::storage::results::{ResultsSettings, StoredOnsite};
use crate::storage::{AttemptRecord, FieldData, RoundRecord, StorageError, UnitRecord, ms_to_utc};

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("计分失败: {0}")]
    Scoring(#[from] ScoringError),
    #[error("{0}")]
    Data(String),
    /// Stored attempts that do not fit the round's survey: named, never a computation that
    /// breaks half way.
    #[error("{0}")]
    BadAttempts(String),
    #[error(transparent)]
    BottomK(#[from] scoring::BottomKError),
}

/// What may be chosen per computation; `None` takes the default (and the round's stored seed).
#[derive(Debug, Clone, Default)]
pub struct ResultsOptions {
    /// Overrides the round's stored bootstrap seed for this computation only.
    pub seed: Option<u64>,
    pub replicates: Option<u32>,
    pub bottom_k: Option<u32>,
    pub min_duration_secs: Option<f64>,
    pub min_median_gap_secs: Option<f64>,
}

impl ResultsOptions {
    fn scoring(&self, stored_seed: u64) -> ScoringOptions {
        let d = ScoringOptions::default();
        ScoringOptions {
            bootstrap_replicates: self.replicates.unwrap_or(d.bootstrap_replicates),
            bootstrap_seed: self.seed.unwrap_or(stored_seed),
            bottom_k: self.bottom_k.unwrap_or(d.bottom_k),
            min_duration_secs: self.min_duration_secs.unwrap_or(d.min_duration_secs),
            min_median_gap_secs: self.min_median_gap_secs.unwrap_or(d.min_median_gap_secs),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The document

#[derive(Debug, Clone, Serialize)]
pub struct ResultsDocument {
    pub round: String,
    pub title: String,
    /// When this document was computed (RFC 3339, UTC).
    pub computed_at: String,
    /// Whether the field period is over (before that, every figure is provisional).
    pub field_closed: bool,
    pub locked: bool,
    pub survey: SurveySummary,
    pub ranked_by: RankBasis,
    pub bootstrap_seed: u64,
    /// `stored` (the round's seed) or `override` (`--seed` for this computation only).
    pub bootstrap_seed_source: &'static str,
    pub bootstrap_replicates: u32,
    pub bottom_k: u32,
    pub units: Vec<UnitResult>,
    /// Per evidence kind given for at least 5 units with points: Spearman's rho and p between
    /// the kind's count (rate where every such unit has a volume) and the social points.
    pub evidence_check: Vec<EvidenceCheck>,
    pub overall: OverallResult,
    pub quality: QualityReport,
    /// Anything odd in the stored data that the figures had to work around.
    pub warnings: Vec<String>,
}

/// The scale the numbers are on, from the round's stored survey definition.
impl ResultsDocument {
    /// The document for a reader who may not know who the operators are
    /// (`Role::sees_operator_identity`): every operator login becomes its stable anonymous
    /// code (`user::operator_codes`, in login order over the operators in the document).
    pub fn hide_operators(&mut self) {
        let q = &mut self.quality;
        let codes = crate::domain::user::operator_codes(
            q.operator_effect
                .operators
                .iter()
                .map(|o| o.operator.as_str())
                .chain(
                    q.operator_effect
                        .flagged_operators
                        .iter()
                        .map(String::as_str),
                )
                .chain(q.suspicious.iter().map(|x| x.operator.as_str())),
        );
        let code = |login: &mut String| {
            if let Some(c) = codes.get(login.as_str()) {
                *login = c.clone();
            }
        };
        q.operator_effect
            .operators
            .iter_mut()
            .for_each(|o| code(&mut o.operator));
        q.operator_effect
            .flagged_operators
            .iter_mut()
            .for_each(code);
        q.suspicious.iter_mut().for_each(|x| code(&mut x.operator));
        // Codes sort like the logins did; keep the lists in code order.
        q.operator_effect
            .operators
            .sort_by(|a, b| code_order(&a.operator).cmp(&code_order(&b.operator)));
        q.operator_effect
            .flagged_operators
            .sort_by(|a, b| code_order(a).cmp(&code_order(b)));
    }
}

/// `话务员B` before `话务员AA`: shorter codes first, then alphabetical.
fn code_order(code: &str) -> (usize, &str) {
    (code.len(), code)
}

#[derive(Debug, Clone, Serialize)]
pub struct SurveySummary {
    pub title: String,
    /// The best level's score (`max`).
    pub max_score: f64,
    pub phone_points: f64,
    pub onsite_points: f64,
    pub max_points: f64,
    pub min_completes: u32,
    pub satisfied_levels: Vec<String>,
    pub levels: Vec<LevelSummary>,
    pub dimensions: Vec<DimensionSummary>,
}

impl SurveySummary {
    /// The parts of a survey definition a reader of the results needs.
    pub fn of(survey: &Survey) -> SurveySummary {
        SurveySummary {
            title: survey.title.clone(),
            max_score: survey.max_score(),
            phone_points: survey.scoring.phone_points,
            onsite_points: survey.scoring.onsite_points,
            max_points: survey.scoring.phone_points + survey.scoring.onsite_points,
            min_completes: survey.scoring.min_completes,
            satisfied_levels: survey.scoring.satisfied_levels.clone(),
            levels: survey
                .levels
                .iter()
                .enumerate()
                .map(|(i, l)| LevelSummary {
                    key: l.key.clone(),
                    label: l.label.clone(),
                    score: survey.level_score(i).unwrap_or(0.0),
                })
                .collect(),
            dimensions: survey
                .dimensions
                .iter()
                .enumerate()
                .map(|(i, d)| DimensionSummary {
                    key: d.key.clone(),
                    label: d.label.clone(),
                    weight: survey.weight(i),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LevelSummary {
    pub key: String,
    pub label: String,
    pub score: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DimensionSummary {
    pub key: String,
    pub label: String,
    pub weight: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnitResult {
    pub unit: String,
    pub code: Option<String>,
    /// 党政机关 or 事业单位.
    pub kind: &'static str,
    pub sector: String,
    /// Representatives on the unit's roster.
    pub panel: u32,
    /// Members per AAPOR category (`I`, `P`, `R`, `NC`, `O`, `UH`, `UO`, `NE`).
    pub dispositions: DispositionCounts,
    pub rates: ResponseRates,
    pub phone: PhoneScore,
    pub onsite: Option<OnsiteScore>,
    pub social: SocialScore,
    pub flags: Vec<Flag>,
    /// Corroborating records (佐证依据); every field `null` where not given.
    pub evidence: UnitEvidence,
}

#[derive(Debug, Clone, Serialize)]
pub struct OverallResult {
    pub panel: u32,
    pub completes: u32,
    pub dispositions: DispositionCounts,
    pub rates: ResponseRates,
}

#[derive(Debug, Clone, Serialize)]
pub struct QualityReport {
    pub completes: u32,
    pub cronbach_alpha: Option<f64>,
    pub operator_effect: OperatorEffect,
    /// Share of completes with the same level on every dimension.
    pub straight_line_share: Option<f64>,
    pub min_duration_secs: f64,
    pub min_median_gap_secs: f64,
    pub suspicious: Vec<Suspicious>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OperatorEffect {
    /// One-way ANOVA of unit-centred respondent scores by operator, with `rho_int` and `deff`.
    pub anova: Option<Anova>,
    /// Per dimension: χ² test of independence of operator × level.
    pub chi2: Vec<DimensionChi2>,
    pub operators: Vec<OperatorCheck>,
    /// Operators whose centred scores differ (Holm-adjusted Welch p < 0.05).
    pub flagged_operators: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Settings: bootstrap seed and pseudonym key, drawn once per round

/// The round's settings, drawing and storing them the first time.
pub fn settings(
    store: &dyn Store,
    round: &RoundRecord,
    actor: &str,
) -> Result<ResultsSettings, StorageError> {
    if let Some(s) = store.results_settings(round.id)? {
        return Ok(s);
    }
    let mut key = [0u8; 32];
    {
        use rand::Rng;
        rand::rng().fill_bytes(&mut key);
    }
    let fresh = ResultsSettings {
        bootstrap_seed: crate::engine::random_seed(),
        pseudonym_key: key,
    };
    store.init_results_settings(round, &fresh, actor)
}

/// HMAC-SHA-256 (RFC 2104) for keys up to the block size.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    assert!(key.len() <= 64, "HMAC key longer than the block size");
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// A member's pseudonymous respondent id: `R` and the first 48 bits (hex) of
/// HMAC-SHA-256(round's pseudonym key, "sheping-respondent:" + member id). Stable within a
/// round, unlinkable across rounds, and not computable without the key (never from a name or
/// phone number).
pub fn respondent_id(key: &[u8; 32], member_id: i64) -> String {
    let mac = hmac_sha256(key, format!("sheping-respondent:{member_id}").as_bytes());
    format!("R{}", hex::encode_upper(&mac[..6]))
}

// ---------------------------------------------------------------------------------------------
// API tokens

/// Prefix of every API token (lets secret scanners and people recognise one).
pub const API_TOKEN_PREFIX: &str = "shp_";

/// SHA-256 of a token, hex: what the database keeps. Tokens carry 256 random bits, so a fast
/// hash is enough (no password stretching needed).
pub fn api_token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh token (`shp_` + 64 hex digits of 256 random bits) and what to store about it.
pub fn new_api_token(
    login: &str,
    label: &str,
    expires_at: Option<DateTime<Utc>>,
) -> (String, crate::storage::NewApiToken) {
    let mut bytes = [0u8; 32];
    {
        use rand::Rng;
        rand::rng().fill_bytes(&mut bytes);
    }
    let token = format!("{API_TOKEN_PREFIX}{}", hex::encode(bytes));
    let new = crate::storage::NewApiToken {
        login: login.to_string(),
        token_hash: api_token_hash(&token),
        prefix: token[..API_TOKEN_PREFIX.len() + 8].to_string(),
        label: label.to_string(),
        expires_at,
    };
    (token, new)
}

/// Longest token description, in characters.
pub const MAX_TOKEN_LABEL_CHARS: usize = 100;
/// Longest validity of a token: a century (further dates overflow the calendar arithmetic).
pub const MAX_TOKEN_DAYS: u32 = 36_500;

/// Why a token was not created (CLI `token create` and the web console alike).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("用户 {0} 已停用,不能为其创建令牌")]
    InactiveUser(String),
    #[error("令牌说明的第 {position} 个字符是{what},不能使用:说明须写在一行内")]
    LabelChar { position: usize, what: String },
    #[error("令牌说明有 {0} 个字符,太长了:请缩短到 {MAX_TOKEN_LABEL_CHARS} 个字符以内")]
    LabelTooLong(usize),
    #[error("有效天数 {0} 太大:请填写 0(永不过期)到 {MAX_TOKEN_DAYS} 之间的整数")]
    TooManyDays(u32),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A token just created: the secret (shown once, never stored), what is stored, its user.
pub struct CreatedToken {
    pub secret: String,
    pub record: crate::storage::ApiTokenRecord,
    pub user: crate::storage::UserRecord,
    pub expires_at: Option<DateTime<Utc>>,
}

impl CreatedToken {
    /// What the person creating it should know besides the secret.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = vec![format!(
            "已为 {}({})创建 API 令牌 #{}{}。令牌只显示这一次,请妥善保存;用法:Authorization: Bearer <令牌>",
            self.user.login,
            self.user.role.label(),
            self.record.id,
            match self.expires_at {
                Some(t) => format!(",有效期至 {}", t.format("%Y-%m-%d")),
                None => ",永不过期".to_string(),
            }
        )];
        if self.user.role == crate::domain::user::Role::Operator {
            notes.push(format!(
                "注意:{} 是话务员,API 不向话务员提供评估结果(会得到 403)。",
                self.user.login
            ));
        }
        notes
    }
}

/// Creates a token for `login`, valid `days` days from `now` (0: never expires); the store
/// keeps only its hash and logs the creation.
pub fn create_api_token<S: Store + ?Sized>(
    store: &S,
    login: &str,
    label: &str,
    days: u32,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<CreatedToken, TokenError> {
    if let Some((i, c)) = label
        .chars()
        .enumerate()
        .find(|(_, c)| crate::domain::text::is_refused(*c, crate::domain::text::Lines::Single))
    {
        return Err(TokenError::LabelChar {
            position: i + 1,
            what: crate::domain::text::describe_char(c),
        });
    }
    let chars = label.chars().count();
    if chars > MAX_TOKEN_LABEL_CHARS {
        return Err(TokenError::LabelTooLong(chars));
    }
    if days > MAX_TOKEN_DAYS {
        return Err(TokenError::TooManyDays(days));
    }
    let user = store.user(login)?;
    if !user.active {
        return Err(TokenError::InactiveUser(login.to_string()));
    }
    let expires_at = (days > 0).then(|| now + chrono::Duration::days(i64::from(days)));
    let (secret, new) = new_api_token(login, label, expires_at);
    let record = store.add_api_token(&new, actor)?;
    Ok(CreatedToken {
        secret,
        record,
        user,
        expires_at,
    })
}

// ---------------------------------------------------------------------------------------------
// Loading

/// Everything the results and the exports are computed from, read once.
pub struct RoundData {
    pub round: RoundRecord,
    pub units: Vec<UnitRecord>,
    pub field: FieldData,
    /// Representative category per member id (nothing else about members is kept).
    pub categories: BTreeMap<i64, MemberCategory>,
    pub onsite: BTreeMap<i64, StoredOnsite>,
    /// Corroborating records per unit id.
    pub evidence: BTreeMap<i64, Vec<EvidenceRecord>>,
    pub settings: ResultsSettings,
    pub progress: Progress,
    pub now: DateTime<Utc>,
}

impl RoundData {
    pub fn load(
        store: &dyn Store,
        round: &RoundRecord,
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<RoundData, ResultsError> {
        let settings = settings(store, round, actor)?;
        let units = store.units(round.id)?;
        // One read of the attempts: dispositions and interviews come from the same snapshot.
        let field = store.field_data(round, now)?;
        if !field.bad_attempts.is_empty() {
            let shown: Vec<String> = field
                .bad_attempts
                .iter()
                .take(5)
                .map(|(id, problem)| format!("拨打记录 #{id}:{problem}"))
                .collect();
            return Err(ResultsError::BadAttempts(format!(
                "轮次 {} 有 {} 条拨打记录与本轮问卷不符,无法计算结果:{}{}。请运行 `sheping check` 查看全部问题,由管理员更正这些记录后再试。",
                round.key,
                field.bad_attempts.len(),
                shown.join(";"),
                if field.bad_attempts.len() > shown.len() {
                    ";……"
                } else {
                    ""
                },
            )));
        }
        let categories = store
            .members(round.id, None)?
            .into_iter()
            .map(|m| (m.id, m.category))
            .collect();
        let onsite = store.onsite(round.id)?;
        let evidence = store.evidence(round.id)?;
        let progress = tally(round, &units, &field, now);
        Ok(RoundData {
            round: round.clone(),
            units,
            field,
            categories,
            onsite,
            evidence,
            settings,
            progress,
            now,
        })
    }

    pub fn survey(&self) -> &Survey {
        &self.round.survey
    }

    pub fn respondent_id(&self, member_id: i64) -> String {
        respondent_id(&self.settings.pseudonym_key, member_id)
    }

    /// Local time in the survey's time zone, `YYYY-MM-DD HH:MM:SS`.
    pub fn local_time(&self, ms: i64) -> String {
        ms_to_utc(ms)
            .with_timezone(&self.survey().timezone())
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    }

    /// The complete interviews that enter the scoring: the first complete attempt of each
    /// member (a member can complete only once; a second one would be a data error and is
    /// reported in `warnings`), in time order.
    pub fn interviews(&self) -> (Vec<&AttemptRecord>, Vec<String>) {
        let mut seen = BTreeMap::new();
        let mut warnings = Vec::new();
        let mut out: Vec<&AttemptRecord> = Vec::new();
        for a in &self.field.attempts {
            if a.outcome != Outcome::Complete {
                continue;
            }
            if let Some(first) = seen.insert(a.member_id, a.id) {
                seen.insert(a.member_id, first);
                warnings.push(format!(
                    "拨打记录 #{} 是代表 {} 的第二次完成访问,未计入(首次完成为记录 #{first})",
                    a.id,
                    self.respondent_id(a.member_id)
                ));
                continue;
            }
            out.push(a);
        }
        out.sort_by_key(|a| (a.recorded_at_ms, a.id));
        (out, warnings)
    }
}

/// Dispositions per unit exactly as `engine::progress` computes them, from one `FieldData`.
fn tally(
    round: &RoundRecord,
    units: &[UnitRecord],
    field: &FieldData,
    now: DateTime<Utc>,
) -> Progress {
    let mut facts: BTreeMap<i64, Vec<AttemptFact>> = BTreeMap::new();
    for a in &field.attempts {
        facts.entry(a.member_id).or_default().push(a.fact());
    }
    let unit_ids: Vec<i64> = units.iter().map(|u| u.id).collect();
    let members = field.members.iter().map(|(id, unit_id, op)| MemberFacts {
        unit_id: *unit_id,
        operator: op.as_deref(),
        attempts: facts.get(id).map_or(&[], Vec::as_slice),
        reopened_at: field.reopened.get(id).copied().map(ms_to_utc),
        in_progress: field.claimed.contains_key(id),
    });
    progress::progress(
        &unit_ids,
        members,
        field
            .attempts
            .iter()
            .map(|a| (a.operator.as_str(), a.outcome)),
        round.survey.calling.max_attempts,
        round.field_closed(now),
    )
}

// ---------------------------------------------------------------------------------------------
// Computing

/// Loads the round and computes its results document.
pub fn compute(
    store: &dyn Store,
    round: &RoundRecord,
    opts: &ResultsOptions,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<ResultsDocument, ResultsError> {
    let data = RoundData::load(store, round, now, actor)?;
    compute_from(&data, opts)
}

/// What [`scoring_inputs`] gives: the units, the complete interviews, and warnings.
pub type ScoringInputs = (Vec<UnitInput>, Vec<Interview>, Vec<String>);

/// The scoring inputs: one [`UnitInput`] per unit (in the round's unit order) and the
/// complete interviews.
pub fn scoring_inputs(data: &RoundData) -> Result<ScoringInputs, ResultsError> {
    let survey = data.survey();
    let index: BTreeMap<i64, usize> = data
        .units
        .iter()
        .enumerate()
        .map(|(i, u)| (u.id, i))
        .collect();
    let units = data
        .units
        .iter()
        .map(|u| UnitInput {
            name: u.name.clone(),
            onsite: match data.onsite.get(&u.id) {
                None => OnsiteData::None,
                Some(StoredOnsite::Direct(x)) => OnsiteData::Direct(*x),
                Some(StoredOnsite::Ballots(b)) => OnsiteData::Ballots(
                    b.iter()
                        .map(|b| match (b.overall, b.levels.as_slice()) {
                            (true, [l]) => Ballot::Overall(*l),
                            _ => Ballot::Dimensions(b.levels.clone()),
                        })
                        .collect(),
                ),
            },
            rr1: data.progress.units.get(&u.id).and_then(|t| t.rates.rr1),
        })
        .collect();
    let (attempts, warnings) = data.interviews();
    let tz = survey.timezone();
    let mut interviews = Vec::with_capacity(attempts.len());
    for a in attempts {
        let unit = *index.get(&a.unit_id).ok_or_else(|| {
            ResultsError::Data(format!(
                "拨打记录 #{} 属于不在本轮的单位 {}",
                a.id, a.unit_id
            ))
        })?;
        let answers: Option<Vec<usize>> = a.answers.iter().copied().collect();
        let answers = answers
            .filter(|v| v.len() == survey.dimensions.len())
            .ok_or_else(|| {
                ResultsError::Data(format!(
                    "拨打记录 #{} 为完成访问,但答案不完整({} 个维度)",
                    a.id,
                    survey.dimensions.len()
                ))
            })?;
        let offsets: Vec<f64> = a
            .answer_ms
            .iter()
            .flatten()
            .map(|ms| *ms as f64 / 1000.0)
            .collect();
        interviews.push(Interview {
            unit,
            operator: a.operator.clone(),
            answers,
            duration_secs: duration_secs(a),
            answer_offsets_secs: (!offsets.is_empty()).then_some(offsets),
            id: data.respondent_id(a.member_id),
            at: ms_to_utc(a.recorded_at_ms)
                .with_timezone(&tz)
                .to_rfc3339_opts(SecondsFormat::Secs, false),
        });
    }
    Ok((units, interviews, warnings))
}

/// `(recorded_at − claimed_at) / 1000` when the attempt was claimed (not for imported ones).
pub fn duration_secs(a: &AttemptRecord) -> Option<f64> {
    a.claimed_at_ms
        .map(|c| (a.recorded_at_ms - c) as f64 / 1000.0)
}

/// Scores the loaded round and builds the document.
pub fn compute_from(
    data: &RoundData,
    opts: &ResultsOptions,
) -> Result<ResultsDocument, ResultsError> {
    let (units, interviews, warnings) = scoring_inputs(data)?;
    let scoring_opts = opts.scoring(data.settings.bootstrap_seed);
    let scored = scoring::score_round(data.survey(), &units, &interviews, &scoring_opts)?;
    let doc = document(data, scored, &scoring_opts, opts.seed.is_some(), warnings);
    // A k chosen by the caller must leave some unit outside the bottom k; the default (3)
    // stays allowed for rounds of few units.
    if let Some(k) = opts.bottom_k {
        let ranked = doc.units.iter().filter(|u| u.social.rank.is_some()).count();
        scoring::check_bottom_k(k, ranked)?;
    }
    Ok(doc)
}

fn document(
    data: &RoundData,
    scored: RoundResults,
    opts: &ScoringOptions,
    seed_overridden: bool,
    warnings: Vec<String>,
) -> ResultsDocument {
    let survey = data.survey();
    let unit_evidence: Vec<UnitEvidence> = data
        .units
        .iter()
        .map(|u| UnitEvidence::of(data.evidence.get(&u.id).map_or(&[][..], Vec::as_slice)))
        .collect();
    let points: Vec<Option<f64>> = scored.units.iter().map(|s| s.social.points).collect();
    let analysis = evidence::analyse(&points, &unit_evidence);
    let units = data
        .units
        .iter()
        .zip(scored.units)
        .zip(unit_evidence)
        .zip(analysis.mismatch)
        .map(|(((u, s), ev), mismatch)| {
            let tally = data.progress.units.get(&u.id).cloned().unwrap_or_default();
            UnitResult {
                unit: u.name.clone(),
                code: u.code.clone(),
                kind: u.kind.label(),
                sector: u.sector.clone(),
                panel: u32::try_from(u.panel).unwrap_or(u32::MAX),
                dispositions: tally.dispositions,
                rates: tally.rates,
                phone: s.phone,
                onsite: s.onsite,
                social: s.social,
                flags: {
                    let mut flags = s.flags;
                    // Information for the evaluation group; it never changes a score.
                    if mismatch {
                        flags.push(Flag::EvidenceMismatch);
                    }
                    flags
                },
                evidence: ev,
            }
        })
        .collect();
    let overall = &data.progress.overall;
    let q = scored.quality;
    ResultsDocument {
        round: data.round.key.clone(),
        title: data.round.title.clone(),
        // The round's clock, with its offset (2026-12-07T06:06:01+08:00), like every other
        // time the document and the pages show.
        computed_at: data
            .now
            .with_timezone(&survey.timezone())
            .to_rfc3339_opts(SecondsFormat::Secs, false),
        field_closed: data.round.field_closed(data.now),
        locked: data.round.is_locked(),
        survey: SurveySummary::of(survey),
        ranked_by: scored.ranked_by,
        bootstrap_seed: scored.bootstrap_seed,
        bootstrap_seed_source: if seed_overridden {
            "override"
        } else {
            "stored"
        },
        bootstrap_replicates: scored.bootstrap_replicates,
        bottom_k: scored.bottom_k,
        units,
        evidence_check: analysis.checks,
        overall: OverallResult {
            panel: overall.panel,
            completes: q.completes,
            dispositions: overall.dispositions,
            rates: overall.rates,
        },
        quality: QualityReport {
            completes: q.completes,
            cronbach_alpha: q.cronbach_alpha,
            operator_effect: OperatorEffect {
                anova: q.anova,
                chi2: q.chi2,
                operators: q.operators,
                flagged_operators: q.flagged_operators,
            },
            straight_line_share: q.straight_line_share,
            min_duration_secs: opts.min_duration_secs,
            min_median_gap_secs: opts.min_median_gap_secs,
            suspicious: q.suspicious,
        },
        warnings,
    }
}

// ---------------------------------------------------------------------------------------------
// The text table (`sheping results` without --json)

/// A count for display: the number, or "—" where not given.
pub fn evidence_count(c: Option<u64>) -> String {
    c.map_or_else(|| "—".to_string(), |c| c.to_string())
}

/// Where a unit's counts come from, one "类别:来源(备注)" per kind, joined by "；".
pub fn evidence_sources(e: &UnitEvidence) -> String {
    e.sources
        .iter()
        .map(|s| {
            let note = if s.note.is_empty() {
                String::new()
            } else {
                format!("({})", s.note)
            };
            format!("{}:{}{note}", s.kind.label(), s.source)
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// One line per check, e.g. "12345投诉(每千件业务量,30 个单位):Spearman ρ = 0.120,p = 0.527".
pub fn evidence_check_text(c: &EvidenceCheck) -> String {
    let basis = if c.basis == "rate" {
        "每千件业务量"
    } else {
        "件数"
    };
    match (c.spearman_rho, c.p) {
        (Some(rho), Some(p)) => format!(
            "{}({basis},{} 个单位)与社会评价得分:Spearman ρ = {rho:.3},p = {p:.3}",
            c.kind.label(),
            c.n
        ),
        _ => format!(
            "{}({basis},{} 个单位):数值全部相同,无法计算相关",
            c.kind.label(),
            c.n
        ),
    }
}

pub fn flag_label(f: Flag) -> &'static str {
    match f {
        Flag::FewCompletes => "完成数不足",
        Flag::OnsiteMissing => "缺现场评价",
        Flag::LowResponse => "应答率低于60%",
        Flag::EvidenceMismatch => "佐证不符",
    }
}

pub fn flag_key(f: Flag) -> &'static str {
    match f {
        Flag::FewCompletes => "few_completes",
        Flag::OnsiteMissing => "onsite_missing",
        Flag::LowResponse => "low_response",
        Flag::EvidenceMismatch => "evidence_mismatch",
    }
}

fn num(x: Option<f64>, decimals: usize) -> String {
    x.map_or_else(|| "—".into(), |v| format!("{v:.decimals$}"))
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "—".into(), |v| format!("{:.1}%", v * 100.0))
}

fn interval(x: Option<[f64; 2]>, decimals: usize) -> String {
    x.map_or_else(
        || "—".into(),
        |[a, b]| format!("[{a:.decimals$}, {b:.decimals$}]"),
    )
}

/// A tab-separated table for the terminal (figures rounded for reading; `--json` has them all).
pub fn render_table(doc: &ResultsDocument) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let basis = match doc.ranked_by {
        RankBasis::Social => "社会评价得分",
        RankBasis::Phone => "电话调查得分(尚无单位有现场评价)",
    };
    let _ = writeln!(
        s,
        "轮次 {}「{}」{}{}",
        doc.round,
        doc.title,
        if doc.field_closed {
            ""
        } else {
            "(调查期未结束,结果为临时结果)"
        },
        if doc.locked { " [已锁定]" } else { "" }
    );
    let _ = writeln!(
        s,
        "满分:电话调查 {} 分 + 现场评价 {} 分 = {} 分;排名依据:{basis}",
        doc.survey.phone_points, doc.survey.onsite_points, doc.survey.max_points
    );
    let _ = writeln!(
        s,
        "排名区间:{} 次 bootstrap 重抽样,种子 {}{},倒数 {} 名概率",
        doc.bootstrap_replicates,
        doc.bootstrap_seed,
        if doc.bootstrap_seed_source == "stored" {
            "(本轮保存的种子)"
        } else {
            "(--seed 指定,未保存)"
        },
        doc.bottom_k
    );
    s.push('\n');
    let _ = writeln!(
        s,
        "单位\t代表\t完成\tRR1\t电话均分\t电话得分\t现场得分\t社会评价得分\t95%区间\t排名\t排名95%区间\t倒数{}名概率\t提示",
        doc.bottom_k
    );
    for u in &doc.units {
        let flags: Vec<&str> = u.flags.iter().map(|f| flag_label(*f)).collect();
        let _ = writeln!(
            s,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            u.unit,
            u.panel,
            u.phone.completes,
            pct(u.rates.rr1),
            num(u.phone.mean, 2),
            num(u.phone.points, 2),
            num(u.onsite.as_ref().map(|o| o.points), 2),
            num(u.social.points, 2),
            interval(u.social.ci95, 2),
            u.social.rank.map_or_else(|| "—".into(), |r| r.to_string()),
            u.social
                .rank_ci95
                .map_or_else(|| "—".into(), |[a, b]| format!("[{a}, {b}]")),
            pct(u.social.p_bottom),
            flags.join("、")
        );
    }
    let _ = writeln!(
        s,
        "合计\t{}\t{}\t{}",
        doc.overall.panel,
        doc.overall.completes,
        pct(doc.overall.rates.rr1)
    );
    s.push('\n');
    let q = &doc.quality;
    let _ = writeln!(s, "质量检查({} 份完成访问)", q.completes);
    let _ = writeln!(
        s,
        "  Cronbach α:{}",
        q.cronbach_alpha.map_or_else(
            || "无法计算(样本不足或答案完全一致)".into(),
            |a| format!("{a:.3}")
        )
    );
    match &q.operator_effect.anova {
        Some(a) => {
            let _ = writeln!(
                s,
                "  话务员效应(单位中心化得分的单因素方差分析):F({}, {}) = {},p = {},ρ_int = {},设计效应 = {}",
                a.df1,
                a.df2,
                num(a.f, 3),
                num(a.p, 4),
                num(a.rho_int, 4),
                num(a.deff, 3)
            );
        }
        None => {
            let _ = writeln!(s, "  话务员效应:无法计算(需至少 2 名话务员且有组内变异)");
        }
    }
    for c in &q.operator_effect.chi2 {
        let _ = writeln!(
            s,
            "  χ² 话务员×等级 [{}]:{}{}",
            c.dimension,
            match (c.statistic, c.df, c.p) {
                (Some(x), Some(df), Some(p)) => format!("χ²({df}) = {x:.3},p = {p:.4}"),
                _ => "无法计算".into(),
            },
            match c.low_expected {
                Some(n) if n > 0 => format!("({n} 个单元格期望频数 < 5,p 值仅供参考)"),
                _ => String::new(),
            }
        );
    }
    if q.operator_effect.flagged_operators.is_empty() {
        let _ = writeln!(s, "  评分显著偏离的话务员:无");
    } else {
        let _ = writeln!(
            s,
            "  评分显著偏离的话务员(Holm 校正 p < 0.05):{}",
            q.operator_effect.flagged_operators.join("、")
        );
    }
    let _ = writeln!(
        s,
        "  可疑访问(时长 < {} 秒、答题间隔中位数 < {} 秒或异常一致作答):{} 份",
        q.min_duration_secs,
        q.min_median_gap_secs,
        q.suspicious.len()
    );
    for x in q.suspicious.iter().take(20) {
        let reasons: Vec<&str> = x
            .reasons
            .iter()
            .map(|r| match r {
                scoring::SuspicionReason::TooShort => "时长过短",
                scoring::SuspicionReason::TooFast => "答题过快",
                scoring::SuspicionReason::StraightLining => "一致作答",
            })
            .collect();
        let _ = writeln!(
            s,
            "    {}\t{}\t{}\t{}\t{}",
            x.id,
            x.unit,
            x.operator,
            x.at,
            reasons.join("、")
        );
    }
    if q.suspicious.len() > 20 {
        let _ = writeln!(s, "    ……其余 {} 份见 --json", q.suspicious.len() - 20);
    }
    for w in &doc.warnings {
        let _ = writeln!(s, "注意:{w}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn respondent_ids_are_stable_keyed_and_distinct() {
        let k1 = [7u8; 32];
        let k2 = [8u8; 32];
        assert_eq!(respondent_id(&k1, 42), respondent_id(&k1, 42));
        assert_ne!(respondent_id(&k1, 42), respondent_id(&k2, 42));
        assert_ne!(respondent_id(&k1, 42), respondent_id(&k1, 43));
        let id = respondent_id(&k1, 42);
        assert_eq!(id.len(), 13);
        assert!(id.starts_with('R'));
        let ids: std::collections::BTreeSet<_> = (0..5000).map(|m| respondent_id(&k1, m)).collect();
        assert_eq!(ids.len(), 5000);
    }
}
