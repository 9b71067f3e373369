//! Scoring a round: per-unit phone, on-site and social-evaluation scores with their
//! uncertainty, the ranking with bootstrap rank intervals, and the statistician's quality
//! checks. The contract, with formulas, is `docs/scoring.md`; this file implements it.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::stats::{self, Anova, SeededRng, Z95};
use super::survey::Survey;

/// RR1 below this raises the `low_response` flag.
pub const LOW_RESPONSE_RR1: f64 = 0.6;
/// Holm-adjusted p below this flags an operator whose centred scores differ.
pub const OPERATOR_ALPHA: f64 = 0.05;
/// One-sided binomial p below this flags an operator's straight-lining.
pub const STRAIGHT_LINE_ALPHA: f64 = 0.01;

/// One complete interview: every dimension answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interview {
    /// Index into the `units` passed to [`score_round`].
    pub unit: usize,
    pub operator: String,
    /// Level index (0 = best) per dimension, in the survey's dimension order.
    pub answers: Vec<usize>,
    #[serde(default)]
    pub duration_secs: Option<f64>,
    /// When each answer was keyed, in seconds from the start of the call.
    #[serde(default)]
    pub answer_offsets_secs: Option<Vec<f64>>,
    /// Pseudonymous id, for listing without personal data.
    pub id: String,
    /// When the interview took place (as stored, e.g. RFC 3339).
    pub at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnsiteData {
    #[default]
    None,
    Ballots(Vec<Ballot>),
    /// A score given directly on the level-score scale (0 ..= the best level's score).
    Direct(f64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ballot {
    /// Level index per dimension.
    Dimensions(Vec<usize>),
    /// One overall level.
    Overall(usize),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitInput {
    pub name: String,
    #[serde(default)]
    pub onsite: OnsiteData,
    /// AAPOR RR1, computed elsewhere.
    #[serde(default)]
    pub rr1: Option<f64>,
}

/// Missing fields take the defaults when deserialised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScoringOptions {
    pub bootstrap_replicates: u32,
    pub bootstrap_seed: u64,
    pub bottom_k: u32,
    pub min_duration_secs: f64,
    pub min_median_gap_secs: f64,
}

impl Default for ScoringOptions {
    fn default() -> Self {
        ScoringOptions {
            bootstrap_replicates: 2000,
            bootstrap_seed: 0,
            bottom_k: 3,
            min_duration_secs: 60.0,
            min_median_gap_secs: 2.0,
        }
    }
}

impl ScoringOptions {
    /// The defaults with a given seed; a round should draw its seed once and store it.
    pub fn with_seed(seed: u64) -> ScoringOptions {
        ScoringOptions {
            bootstrap_seed: seed,
            ..ScoringOptions::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoringError {
    #[error("interview {interview}: unit index {unit} is out of range")]
    UnitOutOfRange { interview: String, unit: usize },
    #[error("interview {interview}: {found} answers, the survey has {expected} dimensions")]
    AnswerCount {
        interview: String,
        expected: usize,
        found: usize,
    },
    #[error("interview {interview}: dimension {dimension} has level index {level}, out of range")]
    LevelOutOfRange {
        interview: String,
        dimension: usize,
        level: usize,
    },
    #[error("interview {interview}: duration or answer times are not finite numbers")]
    BadTiming { interview: String },
    #[error("unit {unit}: on-site ballot {ballot} is not valid for this survey")]
    BadBallot { unit: String, ballot: usize },
    #[error("unit {unit}: direct on-site score {score} is outside 0..={max}")]
    BadDirectScore { unit: String, score: f64, max: f64 },
    #[error("scoring options: {0}")]
    BadOptions(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RankBasis {
    /// Social points (phone + on-site): at least one unit has on-site data.
    Social,
    /// Phone points: no unit has on-site data.
    Phone,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundResults {
    pub ranked_by: RankBasis,
    pub bootstrap_replicates: u32,
    pub bootstrap_seed: u64,
    pub bottom_k: u32,
    pub units: Vec<UnitScore>,
    pub quality: Quality,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitScore {
    pub name: String,
    pub phone: PhoneScore,
    pub onsite: Option<OnsiteScore>,
    pub social: SocialScore,
    pub flags: Vec<Flag>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    FewCompletes,
    OnsiteMissing,
    LowResponse,
    /// Social points and complaints both in the top third, or both in the bottom third
    /// (set by the results from `domain::evidence`; never changes a score).
    EvidenceMismatch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhoneScore {
    pub completes: u32,
    pub mean: Option<f64>,
    pub sd: Option<f64>,
    pub ci95: Option<[f64; 2]>,
    pub satisfaction_rate: Option<f64>,
    pub satisfaction_rate_ci95: Option<[f64; 2]>,
    pub cronbach_alpha: Option<f64>,
    pub points: Option<f64>,
    pub dimensions: Vec<DimensionScore>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DimensionScore {
    pub key: String,
    pub label: String,
    pub mean: Option<f64>,
    /// t interval of the mean of the dimension's level scores (like the phone mean's).
    pub ci95: Option<[f64; 2]>,
    pub satisfaction_rate: Option<f64>,
    pub satisfaction_rate_ci95: Option<[f64; 2]>,
    /// Answers per level key (every level present, zeros included).
    pub counts: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnsiteKind {
    Ballots,
    Direct,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnsiteScore {
    pub kind: OnsiteKind,
    /// Number of ballots (0 for a direct score).
    pub ballots: u32,
    pub mean: f64,
    pub sd: Option<f64>,
    pub ci95: Option<[f64; 2]>,
    pub points: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocialScore {
    pub points: Option<f64>,
    pub max_points: f64,
    pub ci95: Option<[f64; 2]>,
    pub rank: Option<u32>,
    pub rank_ci95: Option<[u32; 2]>,
    pub p_bottom: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    pub completes: u32,
    pub cronbach_alpha: Option<f64>,
    /// Unit-centred respondent scores by operator.
    pub anova: Option<Anova>,
    pub chi2: Vec<DimensionChi2>,
    pub operators: Vec<OperatorCheck>,
    /// Operators whose centred scores differ (Holm-adjusted Welch p < 0.05).
    pub flagged_operators: Vec<String>,
    /// Share of completes with the same level on every dimension.
    pub straight_line_share: Option<f64>,
    pub suspicious: Vec<Suspicious>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DimensionChi2 {
    pub dimension: String,
    pub statistic: Option<f64>,
    pub df: Option<u32>,
    pub p: Option<f64>,
    pub low_expected: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorCheck {
    pub operator: String,
    pub completes: u32,
    /// Mean of this operator's unit-centred scores.
    pub mean_centred: Option<f64>,
    /// Welch t test of this operator's centred scores against all other operators'.
    pub welch_t: Option<f64>,
    pub welch_df: Option<f64>,
    pub p: Option<f64>,
    pub p_holm: Option<f64>,
    pub flagged: bool,
    pub straight_lines: u32,
    /// `P(X ≥ straight_lines)`, X ~ Binomial(completes, round's straight-line share).
    pub straight_line_p: Option<f64>,
    pub straight_line_flagged: bool,
}

/// An explicitly chosen `bottom_k` that cannot give a meaningful `p_bottom`: with k ≥ the
/// number of ranked units every unit is in the bottom k (p_bottom = 1 for all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BottomKError {
    #[error("bottom_k={k} 超出范围:本轮有 {ranked} 个单位参与排名,bottom_k 应为 1 到 {max} 之间的整数", max = ranked - 1)]
    OutOfRange { k: u32, ranked: usize },
    #[error("本轮只有 {ranked} 个单位参与排名,不能指定 bottom_k(至少需要 2 个单位)")]
    TooFewRanked { ranked: usize },
}

/// `bottom_k` must lie in 1 … (ranked units − 1).
pub fn check_bottom_k(k: u32, ranked: usize) -> Result<(), BottomKError> {
    if ranked < 2 {
        return Err(BottomKError::TooFewRanked { ranked });
    }
    if k == 0 || k as usize >= ranked {
        return Err(BottomKError::OutOfRange { k, ranked });
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuspicionReason {
    TooShort,
    TooFast,
    StraightLining,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suspicious {
    pub id: String,
    pub unit: String,
    pub operator: String,
    pub at: String,
    pub reasons: Vec<SuspicionReason>,
    pub duration_secs: Option<f64>,
    pub median_gap_secs: Option<f64>,
}

/// Scores a round. `interviews` are the complete interviews; see `docs/scoring.md`.
pub fn score_round(
    survey: &Survey,
    units: &[UnitInput],
    interviews: &[Interview],
    opts: &ScoringOptions,
) -> Result<RoundResults, ScoringError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    score_round_threads(survey, units, interviews, opts, threads)
}

/// The survey's numbers, looked up once.
struct Scale {
    k: usize,
    level_scores: Vec<f64>,
    satisfied: Vec<bool>,
    weights: Vec<f64>,
    max: f64,
    phone_points: f64,
    onsite_points: f64,
}

impl Scale {
    fn new(survey: &Survey) -> Scale {
        let n_levels = survey.levels.len();
        Scale {
            k: survey.dimensions.len(),
            level_scores: (0..n_levels)
                .map(|i| survey.level_score(i).unwrap_or(0.0))
                .collect(),
            satisfied: (0..n_levels).map(|i| survey.is_satisfied(i)).collect(),
            weights: (0..survey.dimensions.len())
                .map(|d| survey.weight(d))
                .collect(),
            max: survey.max_score(),
            phone_points: survey.scoring.phone_points,
            onsite_points: survey.scoring.onsite_points,
        }
    }

    /// `Σ_d w_d · score(level_d)`, summed in dimension order.
    fn weighted(&self, answers: &[usize]) -> f64 {
        answers
            .iter()
            .zip(&self.weights)
            .map(|(&a, w)| w * self.level_scores[a])
            .sum()
    }
}

fn validate(
    scale: &Scale,
    units: &[UnitInput],
    interviews: &[Interview],
    opts: &ScoringOptions,
) -> Result<(), ScoringError> {
    let n_levels = scale.level_scores.len();
    for iv in interviews {
        if iv.unit >= units.len() {
            return Err(ScoringError::UnitOutOfRange {
                interview: iv.id.clone(),
                unit: iv.unit,
            });
        }
        if iv.answers.len() != scale.k {
            return Err(ScoringError::AnswerCount {
                interview: iv.id.clone(),
                expected: scale.k,
                found: iv.answers.len(),
            });
        }
        if let Some((d, &l)) = iv.answers.iter().enumerate().find(|(_, l)| **l >= n_levels) {
            return Err(ScoringError::LevelOutOfRange {
                interview: iv.id.clone(),
                dimension: d,
                level: l,
            });
        }
        let finite_offsets = iv
            .answer_offsets_secs
            .as_ref()
            .is_none_or(|o| o.iter().all(|x| x.is_finite()));
        if !finite_offsets || iv.duration_secs.is_some_and(|d| !d.is_finite()) {
            return Err(ScoringError::BadTiming {
                interview: iv.id.clone(),
            });
        }
    }
    for u in units {
        match &u.onsite {
            OnsiteData::None => {}
            OnsiteData::Direct(x) => {
                if !(x.is_finite() && *x >= 0.0 && *x <= scale.max) {
                    return Err(ScoringError::BadDirectScore {
                        unit: u.name.clone(),
                        score: *x,
                        max: scale.max,
                    });
                }
            }
            OnsiteData::Ballots(ballots) => {
                for (i, b) in ballots.iter().enumerate() {
                    let ok = match b {
                        Ballot::Dimensions(a) => {
                            a.len() == scale.k && a.iter().all(|&l| l < n_levels)
                        }
                        Ballot::Overall(l) => *l < n_levels,
                    };
                    if !ok {
                        return Err(ScoringError::BadBallot {
                            unit: u.name.clone(),
                            ballot: i,
                        });
                    }
                }
            }
        }
    }
    if opts.bottom_k == 0 {
        return Err(ScoringError::BadOptions(
            "bottom_k must be at least 1".into(),
        ));
    }
    if !(opts.min_duration_secs.is_finite() && opts.min_median_gap_secs.is_finite()) {
        return Err(ScoringError::BadOptions(
            "duration and pace thresholds must be finite".into(),
        ));
    }
    Ok(())
}

/// What the bootstrap resamples for one rankable unit.
struct BootUnit<'a> {
    phone: &'a [f64],
    onsite: BootOnsite<'a>,
}

enum BootOnsite<'a> {
    Ignored,
    Ballots(&'a [f64]),
    Direct(f64),
}

/// [`score_round`] with an explicit number of bootstrap threads (results do not depend on it).
fn score_round_threads(
    survey: &Survey,
    units: &[UnitInput],
    interviews: &[Interview],
    opts: &ScoringOptions,
    threads: usize,
) -> Result<RoundResults, ScoringError> {
    let scale = Scale::new(survey);
    validate(&scale, units, interviews, opts)?;

    let r: Vec<f64> = interviews
        .iter()
        .map(|iv| scale.weighted(&iv.answers))
        .collect();
    let mut by_unit: Vec<Vec<usize>> = vec![Vec::new(); units.len()];
    for (i, iv) in interviews.iter().enumerate() {
        by_unit[iv.unit].push(i);
    }
    let unit_r: Vec<Vec<f64>> = by_unit
        .iter()
        .map(|ix| ix.iter().map(|&i| r[i]).collect())
        .collect();
    let ballot_scores: Vec<Vec<f64>> = units
        .iter()
        .map(|u| match &u.onsite {
            OnsiteData::Ballots(b) => b
                .iter()
                .map(|b| match b {
                    Ballot::Dimensions(a) => scale.weighted(a),
                    Ballot::Overall(l) => scale.level_scores[*l],
                })
                .collect(),
            _ => Vec::new(),
        })
        .collect();

    let mut scores: Vec<UnitScore> = units
        .iter()
        .enumerate()
        .map(|(u, input)| {
            let ivs: Vec<&Interview> = by_unit[u].iter().map(|&i| &interviews[i]).collect();
            let phone = phone_score(survey, &scale, &ivs, &unit_r[u]);
            let onsite = onsite_score(&scale, &input.onsite, &ballot_scores[u]);
            let social = social_score(&scale, &phone, onsite.as_ref());
            let mut flags = Vec::new();
            if phone.completes < survey.scoring.min_completes {
                flags.push(Flag::FewCompletes);
            }
            if onsite.is_none() {
                flags.push(Flag::OnsiteMissing);
            }
            if input.rr1.is_some_and(|x| x < LOW_RESPONSE_RR1) {
                flags.push(Flag::LowResponse);
            }
            UnitScore {
                name: input.name.clone(),
                phone,
                onsite,
                social,
                flags,
            }
        })
        .collect();

    // Rank on the values people see: two decimals.
    let ranked_by = if scores.iter().any(|s| s.onsite.is_some()) {
        RankBasis::Social
    } else {
        RankBasis::Phone
    };
    let rank_values: Vec<Option<f64>> = scores
        .iter()
        .map(|s| match ranked_by {
            RankBasis::Social => s.social.points,
            RankBasis::Phone => s.phone.points,
        })
        .map(|v| v.map(stats::round2))
        .collect();
    let ranks = stats::competition_rank(&rank_values);
    for (s, rank) in scores.iter_mut().zip(&ranks) {
        s.social.rank = *rank;
    }

    let rankable: Vec<usize> = (0..units.len()).filter(|&u| ranks[u].is_some()).collect();
    let boot_units: Vec<BootUnit> = rankable
        .iter()
        .map(|&u| BootUnit {
            phone: &unit_r[u],
            onsite: match (ranked_by, &units[u].onsite) {
                (RankBasis::Phone, _) | (_, OnsiteData::None) => BootOnsite::Ignored,
                (RankBasis::Social, OnsiteData::Direct(x)) => BootOnsite::Direct(*x),
                (RankBasis::Social, OnsiteData::Ballots(_)) => {
                    BootOnsite::Ballots(&ballot_scores[u])
                }
            },
        })
        .collect();
    if opts.bootstrap_replicates > 0 && !boot_units.is_empty() {
        let boot = bootstrap_ranks(&boot_units, &scale, opts, threads);
        for (j, &u) in rankable.iter().enumerate() {
            scores[u].social.rank_ci95 = Some(boot.rank_ci95[j]);
            scores[u].social.p_bottom = Some(boot.p_bottom[j]);
        }
    }

    let quality = quality(survey, &scale, units, interviews, &r, &unit_r, opts);
    Ok(RoundResults {
        ranked_by,
        bootstrap_replicates: opts.bootstrap_replicates,
        bootstrap_seed: opts.bootstrap_seed,
        bottom_k: opts.bottom_k,
        units: scores,
        quality,
    })
}

fn phone_score(survey: &Survey, scale: &Scale, ivs: &[&Interview], r: &[f64]) -> PhoneScore {
    let n = ivs.len();
    let mean = stats::mean(r);
    let sd = stats::sample_sd(r);
    let ci95 = mean
        .zip(sd)
        .and_then(|(m, s)| stats::t_interval_from(m, s, n, 0.95));
    let shares: Vec<f64> = ivs
        .iter()
        .map(|iv| {
            let sat = iv.answers.iter().filter(|&&a| scale.satisfied[a]).count();
            sat as f64 / scale.k as f64
        })
        .collect();
    let items: Vec<Vec<f64>> = ivs
        .iter()
        .map(|iv| iv.answers.iter().map(|&a| scale.level_scores[a]).collect())
        .collect();
    let dimensions = survey
        .dimensions
        .iter()
        .enumerate()
        .map(|(d, dim)| {
            let mut counts: BTreeMap<String, u32> =
                survey.levels.iter().map(|l| (l.key.clone(), 0)).collect();
            let mut sat = 0u64;
            for iv in ivs {
                let a = iv.answers[d];
                *counts
                    .get_mut(&survey.levels[a].key)
                    .expect("validated level") += 1;
                sat += u64::from(scale.satisfied[a]);
            }
            let col: Vec<f64> = items.iter().map(|row| row[d]).collect();
            DimensionScore {
                key: dim.key.clone(),
                label: dim.label.clone(),
                mean: stats::mean(&col),
                ci95: stats::t_interval(&col, 0.95),
                satisfaction_rate: (n > 0).then(|| sat as f64 / n as f64),
                satisfaction_rate_ci95: stats::wilson(sat, n as u64, Z95),
                counts,
            }
        })
        .collect();
    PhoneScore {
        completes: n as u32,
        mean,
        sd,
        ci95,
        satisfaction_rate: stats::mean(&shares),
        satisfaction_rate_ci95: stats::clustered_proportion_interval(&shares, scale.k, 0.95),
        cronbach_alpha: stats::cronbach_alpha(&items),
        points: mean.map(|m| m / scale.max * scale.phone_points),
        dimensions,
    }
}

fn onsite_score(scale: &Scale, data: &OnsiteData, ballots: &[f64]) -> Option<OnsiteScore> {
    match data {
        OnsiteData::None => None,
        OnsiteData::Direct(x) => Some(OnsiteScore {
            kind: OnsiteKind::Direct,
            ballots: 0,
            mean: *x,
            sd: None,
            ci95: None,
            points: x / scale.max * scale.onsite_points,
        }),
        OnsiteData::Ballots(_) => {
            // No ballots at all is no on-site data, not a score of 0.
            let mean = stats::mean(ballots)?;
            let sd = stats::sample_sd(ballots);
            Some(OnsiteScore {
                kind: OnsiteKind::Ballots,
                ballots: ballots.len() as u32,
                mean,
                sd,
                ci95: sd.and_then(|s| stats::t_interval_from(mean, s, ballots.len(), 0.95)),
                points: mean / scale.max * scale.onsite_points,
            })
        }
    }
}

fn social_score(scale: &Scale, phone: &PhoneScore, onsite: Option<&OnsiteScore>) -> SocialScore {
    let points = phone.points.zip(onsite).map(|(p, o)| p + o.points);
    let se_phone = phone.sd.map(|s| s / (phone.completes as f64).sqrt());
    let se_onsite = onsite.and_then(|o| match o.kind {
        // A direct score is taken as exact.
        OnsiteKind::Direct => Some(0.0),
        OnsiteKind::Ballots => o.sd.map(|s| s / (o.ballots as f64).sqrt()),
    });
    let a = scale.phone_points / scale.max;
    let b = scale.onsite_points / scale.max;
    let ci95 = match (points, se_phone, se_onsite) {
        (Some(p), Some(sp), Some(so)) => {
            let half = Z95 * (a * a * sp * sp + b * b * so * so).sqrt();
            Some([p - half, p + half])
        }
        _ => None,
    };
    SocialScore {
        points,
        max_points: scale.phone_points + scale.onsite_points,
        ci95,
        rank: None,
        rank_ci95: None,
        p_bottom: None,
    }
}

struct Bootstrap {
    rank_ci95: Vec<[u32; 2]>,
    p_bottom: Vec<f64>,
}

/// Replicate `b` draws from `SeededRng::new(seed, b)`; within it, units in input order, each
/// drawing its n respondent indices, then its m ballot indices.
fn bootstrap_ranks(
    units: &[BootUnit],
    scale: &Scale,
    opts: &ScoringOptions,
    threads: usize,
) -> Bootstrap {
    let n_units = units.len();
    let b_total = opts.bootstrap_replicates as usize;
    let threads = threads.clamp(1, b_total);
    let chunk = b_total.div_ceil(threads);
    // ranks[b · n_units + j] is unit j's rank in replicate b.
    let mut ranks = vec![0u32; b_total * n_units];
    let mut bottom = vec![0u32; n_units];
    std::thread::scope(|s| {
        let handles: Vec<_> = ranks
            .chunks_mut(chunk * n_units)
            .enumerate()
            .map(|(t, out)| {
                s.spawn(move || {
                    let first = t * chunk;
                    replicate_range(units, scale, opts, first, out)
                })
            })
            .collect();
        for h in handles {
            let counts = h.join().expect("bootstrap thread panicked");
            for (b, c) in bottom.iter_mut().zip(counts) {
                *b += c;
            }
        }
    });
    let mut column = vec![0u32; b_total];
    let rank_ci95 = (0..n_units)
        .map(|j| {
            for (b, slot) in column.iter_mut().enumerate() {
                *slot = ranks[b * n_units + j];
            }
            column.sort_unstable();
            let lo = stats::quantile_type1(&column, 25, 1000).expect("B > 0");
            let hi = stats::quantile_type1(&column, 975, 1000).expect("B > 0");
            [lo, hi]
        })
        .collect();
    let p_bottom = bottom
        .iter()
        .map(|&c| f64::from(c) / b_total as f64)
        .collect();
    Bootstrap {
        rank_ci95,
        p_bottom,
    }
}

/// Runs replicates `first ..` filling `out` (replicate-major); returns bottom-k counts.
fn replicate_range(
    units: &[BootUnit],
    scale: &Scale,
    opts: &ScoringOptions,
    first: usize,
    out: &mut [u32],
) -> Vec<u32> {
    let n_units = units.len();
    let mut bottom = vec![0u32; n_units];
    let mut keys = vec![0i64; n_units];
    let mut order: Vec<usize> = (0..n_units).collect();
    let resample = |rng: &mut SeededRng, xs: &[f64]| {
        let n = xs.len() as u64;
        let mut sum = 0.0;
        for _ in 0..n {
            sum += xs[rng.below(n) as usize];
        }
        sum / n as f64
    };
    for (i, ranks) in out.chunks_mut(n_units).enumerate() {
        let mut rng = SeededRng::new(opts.bootstrap_seed, (first + i) as u64);
        for (unit, key) in units.iter().zip(keys.iter_mut()) {
            let phone = resample(&mut rng, unit.phone) / scale.max * scale.phone_points;
            let value = match unit.onsite {
                BootOnsite::Ignored => phone,
                BootOnsite::Direct(x) => phone + x / scale.max * scale.onsite_points,
                BootOnsite::Ballots(b) => {
                    phone + resample(&mut rng, b) / scale.max * scale.onsite_points
                }
            };
            // Hundredths as an integer: the same order as `round2`, without float ties.
            *key = (value * 100.0).round() as i64;
        }
        order.sort_unstable_by_key(|&j| Reverse(keys[j]));
        // Walk tie groups in descending order: rank = 1 + units before the group;
        // units strictly below = units after the group.
        let mut start = 0;
        while start < n_units {
            let v = keys[order[start]];
            let end = start + order[start..].iter().take_while(|&&j| keys[j] == v).count();
            let below = n_units - end;
            for &j in &order[start..end] {
                ranks[j] = start as u32 + 1;
                if below < opts.bottom_k as usize {
                    bottom[j] += 1;
                }
            }
            start = end;
        }
    }
    bottom
}

fn quality(
    survey: &Survey,
    scale: &Scale,
    units: &[UnitInput],
    interviews: &[Interview],
    r: &[f64],
    unit_r: &[Vec<f64>],
    opts: &ScoringOptions,
) -> Quality {
    let n = interviews.len();
    let items: Vec<Vec<f64>> = interviews
        .iter()
        .map(|iv| iv.answers.iter().map(|&a| scale.level_scores[a]).collect())
        .collect();
    let unit_mean: Vec<Option<f64>> = unit_r.iter().map(|x| stats::mean(x)).collect();
    let centred: Vec<f64> = interviews
        .iter()
        .zip(r)
        .map(|(iv, ri)| ri - unit_mean[iv.unit].expect("a unit with an interview has a mean"))
        .collect();

    // Operators in name order, for stable output.
    let mut by_op: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, iv) in interviews.iter().enumerate() {
        by_op.entry(iv.operator.as_str()).or_default().push(i);
    }
    let groups: Vec<Vec<f64>> = by_op
        .values()
        .map(|ix| ix.iter().map(|&i| centred[i]).collect())
        .collect();
    let anova = stats::one_way_anova(&groups);

    let chi2 = survey
        .dimensions
        .iter()
        .enumerate()
        .map(|(d, dim)| {
            let table: Vec<Vec<u64>> = by_op
                .values()
                .map(|ix| {
                    let mut row = vec![0u64; scale.level_scores.len()];
                    for &i in ix {
                        row[interviews[i].answers[d]] += 1;
                    }
                    row
                })
                .collect();
            let c = stats::chi2_independence(&table);
            DimensionChi2 {
                dimension: dim.key.clone(),
                statistic: c.as_ref().map(|c| c.statistic),
                df: c.as_ref().map(|c| c.df),
                p: c.as_ref().map(|c| c.p),
                low_expected: c.as_ref().map(|c| c.low_expected),
            }
        })
        .collect();

    let straight: Vec<bool> = interviews
        .iter()
        .map(|iv| scale.k >= 2 && iv.answers.iter().all(|&a| a == iv.answers[0]))
        .collect();
    let straight_total = straight.iter().filter(|&&s| s).count();
    let straight_line_share = (n > 0).then(|| straight_total as f64 / n as f64);

    // Operator number of each interview, so "the rest" needs no string comparisons.
    let mut op_of = vec![0usize; n];
    for (j, ix) in by_op.values().enumerate() {
        for &i in ix {
            op_of[i] = j;
        }
    }
    let mut operators: Vec<OperatorCheck> = by_op
        .iter()
        .zip(&groups)
        .enumerate()
        .map(|(j, ((op, ix), mine))| {
            let rest: Vec<f64> = (0..n)
                .filter(|&i| op_of[i] != j)
                .map(|i| centred[i])
                .collect();
            let welch = stats::welch_t_test(mine, &rest);
            let lines = ix.iter().filter(|&&i| straight[i]).count() as u64;
            let line_p = straight_line_share
                .filter(|&s| s > 0.0)
                .and_then(|s| stats::binomial_upper_tail(lines, ix.len() as u64, s));
            OperatorCheck {
                operator: op.to_string(),
                completes: ix.len() as u32,
                mean_centred: stats::mean(mine),
                welch_t: welch.map(|w| w.t),
                welch_df: welch.map(|w| w.df),
                p: welch.map(|w| w.p),
                p_holm: None,
                flagged: false,
                straight_lines: lines as u32,
                straight_line_p: line_p,
                straight_line_flagged: line_p.is_some_and(|p| p < STRAIGHT_LINE_ALPHA),
            }
        })
        .collect();
    // Holm over the operators that could be tested.
    let tested: Vec<usize> = (0..operators.len())
        .filter(|&i| operators[i].p.is_some())
        .collect();
    let ps: Vec<f64> = tested.iter().filter_map(|&i| operators[i].p).collect();
    for (&i, adj) in tested.iter().zip(stats::holm(&ps)) {
        operators[i].p_holm = Some(adj);
        operators[i].flagged = adj < OPERATOR_ALPHA;
    }
    let flagged_operators = operators
        .iter()
        .filter(|o| o.flagged)
        .map(|o| o.operator.clone())
        .collect();

    let line_flagged: Vec<&str> = operators
        .iter()
        .filter(|o| o.straight_line_flagged)
        .map(|o| o.operator.as_str())
        .collect();
    let suspicious = interviews
        .iter()
        .enumerate()
        .filter_map(|(i, iv)| {
            let median_gap = iv.answer_offsets_secs.as_ref().and_then(|o| median_gap(o));
            let mut reasons = Vec::new();
            if iv.duration_secs.is_some_and(|d| d < opts.min_duration_secs) {
                reasons.push(SuspicionReason::TooShort);
            }
            if median_gap.is_some_and(|g| g < opts.min_median_gap_secs) {
                reasons.push(SuspicionReason::TooFast);
            }
            if straight[i] && line_flagged.contains(&iv.operator.as_str()) {
                reasons.push(SuspicionReason::StraightLining);
            }
            (!reasons.is_empty()).then(|| Suspicious {
                id: iv.id.clone(),
                unit: units[iv.unit].name.clone(),
                operator: iv.operator.clone(),
                at: iv.at.clone(),
                reasons,
                duration_secs: iv.duration_secs,
                median_gap_secs: median_gap,
            })
        })
        .collect();

    Quality {
        completes: n as u32,
        cronbach_alpha: stats::cronbach_alpha(&items),
        anova,
        chi2,
        operators,
        flagged_operators,
        straight_line_share,
        suspicious,
    }
}

/// Median of the gaps between consecutive answer times (sorted); needs two answer times.
fn median_gap(offsets: &[f64]) -> Option<f64> {
    let mut t = offsets.to_vec();
    t.sort_by(f64::total_cmp);
    let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    stats::median(&gaps)
}

#[cfg(test)]
mod tests {

    #[test]
    fn bottom_k_lies_between_one_and_ranked_minus_one() {
        assert_eq!(check_bottom_k(1, 30), Ok(()));
        assert_eq!(check_bottom_k(29, 30), Ok(()));
        assert_eq!(
            check_bottom_k(30, 30),
            Err(BottomKError::OutOfRange { k: 30, ranked: 30 })
        );
        assert!(check_bottom_k(0, 30).is_err());
        assert!(check_bottom_k(1_000_000, 30).is_err());
        assert_eq!(
            check_bottom_k(1, 1),
            Err(BottomKError::TooFewRanked { ranked: 1 })
        );
        assert!(
            check_bottom_k(31, 30)
                .unwrap_err()
                .to_string()
                .contains("1 到 29")
        );
    }
    use super::*;
    use serde_json::Value;

    const SURVEY: &str = include_str!("../../surveys/default.toml");
    const FIXTURE: &str = include_str!("../../tests/reference/fixture.json");
    const REFERENCE: &str = include_str!("../../tests/reference/scoring_reference.json");

    #[derive(Deserialize)]
    struct Fixture {
        survey: String,
        options: ScoringOptions,
        units: Vec<UnitInput>,
        interviews: Vec<Interview>,
    }

    fn survey() -> Survey {
        Survey::from_toml_str(SURVEY).unwrap()
    }

    fn fixture() -> Fixture {
        let f: Fixture = serde_json::from_str(FIXTURE).unwrap();
        assert_eq!(f.survey, "surveys/default.toml");
        f
    }

    fn fixture_results() -> RoundResults {
        let f = fixture();
        score_round(&survey(), &f.units, &f.interviews, &f.options).unwrap()
    }

    /// Walks the reference JSON and the results JSON together: same keys, same array
    /// lengths, same strings/bools/nulls, numbers within 1e-9 (absolute or relative).
    fn compare(path: &str, want: &Value, got: &Value, errors: &mut Vec<String>) {
        match (want, got) {
            (Value::Number(w), Value::Number(g)) => {
                let (w, g) = (w.as_f64().unwrap(), g.as_f64().unwrap());
                let d = (w - g).abs();
                if !(d <= 1e-9 || d <= 1e-9 * w.abs()) {
                    errors.push(format!("{path}: reference {w:e}, got {g:e}"));
                }
            }
            (Value::Object(w), Value::Object(g)) => {
                for key in w.keys().chain(g.keys().filter(|k| !w.contains_key(*k))) {
                    match (w.get(key), g.get(key)) {
                        (Some(wv), Some(gv)) => compare(&format!("{path}.{key}"), wv, gv, errors),
                        (Some(_), None) => errors.push(format!("{path}.{key}: missing in results")),
                        _ => errors.push(format!("{path}.{key}: not in the reference")),
                    }
                }
            }
            (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
                for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                    compare(&format!("{path}[{i}]"), wv, gv, errors);
                }
            }
            _ if want == got => {}
            _ => errors.push(format!("{path}: reference {want}, got {got}")),
        }
    }

    #[test]
    fn matches_the_scipy_reference() {
        let want: Value = serde_json::from_str(REFERENCE).unwrap();
        let got = serde_json::to_value(fixture_results()).unwrap();
        let mut errors = Vec::new();
        compare("$", &want, &got, &mut errors);
        assert!(
            errors.is_empty(),
            "{} differences:\n{}",
            errors.len(),
            errors.join("\n")
        );
    }

    #[test]
    fn fixture_covers_the_edge_cases() {
        let r = fixture_results();
        let u = &r.units;
        assert_eq!(r.ranked_by, RankBasis::Social);
        // 0 completes: nothing to report, no rank.
        assert_eq!(u[4].phone.completes, 0);
        assert_eq!(
            (u[4].phone.mean, u[4].phone.points, u[4].social.rank),
            (None, None, None)
        );
        assert!(
            u[4].phone
                .dimensions
                .iter()
                .all(|d| d.satisfaction_rate_ci95.is_none())
        );
        // 1 complete: a mean but no SD, interval or alpha; still ranked.
        assert_eq!(u[3].phone.completes, 1);
        assert!(u[3].phone.mean.is_some() && u[3].phone.sd.is_none());
        assert!(u[3].social.ci95.is_none() && u[3].social.rank.is_some());
        // 2 completes with a direct on-site score: interval from the phone part alone.
        assert_eq!(u[2].phone.completes, 2);
        let on = u[2].onsite.as_ref().unwrap();
        assert_eq!((on.kind, on.sd, on.ci95), (OnsiteKind::Direct, None, None));
        assert!(u[2].social.ci95.is_some());
        // Identical answers: SD exactly 0, degenerate interval, alpha undefined.
        let p = &u[5].phone;
        assert_eq!(p.sd, Some(0.0));
        assert_eq!(p.ci95, Some([p.mean.unwrap(); 2]));
        assert_eq!(p.cronbach_alpha, None);
        // No on-site data: no social score, no rank, flagged.
        assert_eq!((u[6].social.points, u[6].social.rank), (None, None));
        assert!(u[6].flags.contains(&Flag::OnsiteMissing));
        // Units 1 and 7 differ but tie after rounding: "1224" ranking.
        let (a, b) = (u[1].social.points.unwrap(), u[7].social.points.unwrap());
        assert!(a != b && stats::round2(a) == stats::round2(b));
        let ranks: Vec<_> = u.iter().map(|s| s.social.rank).collect();
        assert_eq!(
            ranks,
            [
                Some(2),
                Some(4),
                Some(6),
                Some(1),
                None,
                Some(3),
                None,
                Some(4)
            ]
        );
        assert!(u[1].flags.contains(&Flag::LowResponse));
        assert!(!u[0].flags.contains(&Flag::FewCompletes));
        assert_eq!(r.quality.flagged_operators, ["A03"]);
    }

    #[test]
    fn thresholds_are_strict() {
        let r = fixture_results();
        // R422-014 lasts exactly 60 s with gaps of exactly 2 s: not suspicious.
        assert!(r.quality.suspicious.iter().all(|s| s.id != "R422-014"));
        // R422-022 has one answer time: no pace check, no listing.
        assert!(r.quality.suspicious.iter().all(|s| s.id != "R422-022"));
    }

    fn iv(unit: usize, op: &str, answers: [usize; 5]) -> Interview {
        Interview {
            unit,
            operator: op.into(),
            answers: answers.to_vec(),
            duration_secs: None,
            answer_offsets_secs: None,
            id: format!("{unit}-{op}"),
            at: String::new(),
        }
    }

    fn unit(name: &str, onsite: OnsiteData) -> UnitInput {
        UnitInput {
            name: name.into(),
            onsite,
            rr1: None,
        }
    }

    /// Units whose respondents spread over all levels around a chosen centre.
    fn spread_round(centres: &[usize]) -> (Vec<UnitInput>, Vec<Interview>) {
        let mut units = Vec::new();
        let mut ivs = Vec::new();
        for (u, &c) in centres.iter().enumerate() {
            let ballots = (0..8)
                .map(|i| Ballot::Overall((c + i % 2).min(3)))
                .collect();
            units.push(unit(&format!("u{u}"), OnsiteData::Ballots(ballots)));
            for i in 0..20 {
                let a = (c + i % 2).min(3);
                let b = (c + (i / 2) % 2).min(3);
                ivs.push(iv(u, ["A", "B"][i % 2], [a, b, a, b, a]));
            }
        }
        (units, ivs)
    }

    #[test]
    fn bootstrap_is_deterministic_and_independent_of_threads() {
        let (units, ivs) = spread_round(&[0, 1, 1, 1, 2]);
        let s = survey();
        let opts = ScoringOptions {
            bootstrap_replicates: 301,
            ..ScoringOptions::with_seed(7)
        };
        let one = score_round_threads(&s, &units, &ivs, &opts, 1).unwrap();
        let three = score_round_threads(&s, &units, &ivs, &opts, 3).unwrap();
        assert_eq!(one, three);
        assert_eq!(one, score_round(&s, &units, &ivs, &opts).unwrap());
        assert_eq!(one.bootstrap_seed, 7);
        let other = score_round(
            &s,
            &units,
            &ivs,
            &ScoringOptions {
                bootstrap_seed: 8,
                ..opts
            },
        )
        .unwrap();
        let p = |r: &RoundResults| {
            r.units
                .iter()
                .map(|u| u.social.p_bottom)
                .collect::<Vec<_>>()
        };
        assert_ne!(p(&one), p(&other), "the seed must matter for close units");
    }

    #[test]
    fn bootstrap_separates_clear_cases() {
        // Centres: best (0), middle (1), worst (3, all "dissatisfied").
        let (units, ivs) = spread_round(&[0, 1, 1, 1, 3]);
        let r = score_round(&survey(), &units, &ivs, &ScoringOptions::with_seed(1)).unwrap();
        let top = &r.units[0].social;
        let bottom = &r.units[4].social;
        assert_eq!((top.rank, top.rank_ci95), (Some(1), Some([1, 1])));
        assert_eq!((bottom.rank, bottom.rank_ci95), (Some(5), Some([5, 5])));
        assert_eq!(top.p_bottom, Some(0.0));
        assert_eq!(bottom.p_bottom, Some(1.0));
        for u in &r.units {
            let [lo, hi] = u.social.rank_ci95.unwrap();
            assert!(lo <= u.social.rank.unwrap() && u.social.rank.unwrap() <= hi);
        }
    }

    #[test]
    fn replicate_count_is_respected() {
        let (units, ivs) = spread_round(&[0, 1, 1, 2]);
        for b in [1u32, 7, 40] {
            let opts = ScoringOptions {
                bootstrap_replicates: b,
                ..ScoringOptions::with_seed(3)
            };
            let r = score_round(&survey(), &units, &ivs, &opts).unwrap();
            assert_eq!(r.bootstrap_replicates, b);
            for u in &r.units {
                let count = u.social.p_bottom.unwrap() * f64::from(b);
                assert_eq!(
                    count,
                    count.round(),
                    "p_bottom is a share of {b} replicates"
                );
            }
            // Every replicate puts at least bottom_k units in the bottom k (more on ties).
            let expected: f64 = r.units.iter().map(|u| u.social.p_bottom.unwrap()).sum();
            assert!(expected >= 3.0 - 1e-12);
        }
        let opts = ScoringOptions {
            bootstrap_replicates: 0,
            ..ScoringOptions::with_seed(3)
        };
        let r = score_round(&survey(), &units, &ivs, &opts).unwrap();
        assert!(
            r.units
                .iter()
                .all(|u| u.social.rank_ci95.is_none() && u.social.p_bottom.is_none())
        );
        assert!(r.units.iter().all(|u| u.social.rank.is_some()));
    }

    #[test]
    fn bottom_k_counts_ties_at_the_boundary() {
        // One respondent and a direct score per unit: every replicate equals the estimate.
        let phone = [
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 1],
            [0, 0, 0, 1, 1],
            [0, 0, 0, 1, 1],
            [0, 0, 1, 1, 1],
        ];
        let units: Vec<_> = (0..5)
            .map(|u| unit(&format!("u{u}"), OnsiteData::Direct(50.0)))
            .collect();
        let ivs: Vec<_> = phone
            .iter()
            .enumerate()
            .map(|(u, a)| iv(u, "A", *a))
            .collect();
        let opts = ScoringOptions {
            bottom_k: 2,
            bootstrap_replicates: 50,
            ..ScoringOptions::with_seed(9)
        };
        let r = score_round(&survey(), &units, &ivs, &opts).unwrap();
        let ranks: Vec<_> = r.units.iter().map(|u| u.social.rank.unwrap()).collect();
        assert_eq!(ranks, [1, 2, 3, 3, 5]);
        let p: Vec<_> = r.units.iter().map(|u| u.social.p_bottom.unwrap()).collect();
        // Fewer than 2 units strictly below: the tied pair and the last.
        assert_eq!(p, [0.0, 0.0, 1.0, 1.0, 1.0]);
        assert_eq!(r.units[2].social.rank_ci95, Some([3, 3]));
    }

    #[test]
    fn phone_only_round_ranks_by_phone_points() {
        let (mut units, ivs) = spread_round(&[1, 0, 2]);
        for u in &mut units {
            u.onsite = OnsiteData::Ballots(Vec::new());
        }
        let r = score_round(&survey(), &units, &ivs, &ScoringOptions::with_seed(2)).unwrap();
        assert_eq!(r.ranked_by, RankBasis::Phone);
        let ranks: Vec<_> = r.units.iter().map(|u| u.social.rank).collect();
        assert_eq!(ranks, [Some(2), Some(1), Some(3)]);
        for u in &r.units {
            assert!(u.onsite.is_none() && u.social.points.is_none() && u.social.ci95.is_none());
            assert!(u.flags.contains(&Flag::OnsiteMissing));
            assert!(u.social.rank_ci95.is_some());
        }
    }

    #[test]
    fn empty_round_has_no_statistics() {
        let r = score_round(&survey(), &[], &[], &ScoringOptions::default()).unwrap();
        assert!(r.units.is_empty());
        let q = &r.quality;
        assert_eq!(
            (q.completes, q.cronbach_alpha, q.straight_line_share),
            (0, None, None)
        );
        assert!(q.anova.is_none() && q.operators.is_empty() && q.suspicious.is_empty());
        assert!(q.chi2.iter().all(|c| c.statistic.is_none()));
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"cronbach_alpha\":null"));
    }

    #[test]
    fn invalid_inputs_are_refused() {
        let s = survey();
        let units = [unit("u", OnsiteData::None)];
        let opts = ScoringOptions::default();
        let run = |units: &[UnitInput], ivs: &[Interview], o: &ScoringOptions| {
            score_round(&s, units, ivs, o).unwrap_err()
        };
        assert!(matches!(
            run(&units, &[iv(1, "A", [0; 5])], &opts),
            ScoringError::UnitOutOfRange { unit: 1, .. }
        ));
        let mut short = iv(0, "A", [0; 5]);
        short.answers.pop();
        assert!(matches!(
            run(&units, &[short], &opts),
            ScoringError::AnswerCount { .. }
        ));
        assert!(matches!(
            run(&units, &[iv(0, "A", [0, 0, 4, 0, 0])], &opts),
            ScoringError::LevelOutOfRange {
                dimension: 2,
                level: 4,
                ..
            }
        ));
        let mut nan = iv(0, "A", [0; 5]);
        nan.duration_secs = Some(f64::NAN);
        assert!(matches!(
            run(&units, &[nan], &opts),
            ScoringError::BadTiming { .. }
        ));
        let bad_ballot = [unit(
            "u",
            OnsiteData::Ballots(vec![Ballot::Dimensions(vec![0])]),
        )];
        assert!(matches!(
            run(&bad_ballot, &[], &opts),
            ScoringError::BadBallot { .. }
        ));
        let bad_direct = [unit("u", OnsiteData::Direct(120.0))];
        assert!(matches!(
            run(&bad_direct, &[], &opts),
            ScoringError::BadDirectScore { .. }
        ));
        let k0 = ScoringOptions {
            bottom_k: 0,
            ..opts.clone()
        };
        assert!(matches!(run(&units, &[], &k0), ScoringError::BadOptions(_)));
    }

    #[test]
    fn overall_ballots_use_the_level_score() {
        let s = survey();
        let units = [unit(
            "u",
            OnsiteData::Ballots(vec![
                Ballot::Overall(1),
                Ballot::Dimensions(vec![0, 0, 0, 0, 3]),
            ]),
        )];
        let r = score_round(&s, &units, &[], &ScoringOptions::default()).unwrap();
        let on = r.units[0].onsite.as_ref().unwrap();
        // (80 + 80) / 2 = 80 → 8 points of 10.
        assert!((on.mean - 80.0).abs() < 1e-12 && (on.points - 8.0).abs() < 1e-12);
        assert_eq!(on.ballots, 2);
        assert_eq!(on.sd, Some(0.0));
    }
}
