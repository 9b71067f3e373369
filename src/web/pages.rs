//! The public first page (rounds and their units with panel sizes; no personal data) and the
//! results pages for administrators, statisticians and evaluators: each unit's phone, on-site
//! and social-evaluation scores and rank, computed by `crate::results` from the stored attempts
//! (the same document as `sheping results` and `/api/v1/rounds/{key}/results`), with links to
//! the exports the signed-in role may download (`ExportKind::roles`); and one unit's page with
//! its per-dimension subscores and charts (`/rounds/{key}/units/{unit}`).

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use tokio::sync::Semaphore;

use super::auth::{Allow, RESULTS, Session};
use super::views::{Frame, percent};
use super::{AppState, WebError};
use crate::domain::scoring::RankBasis;
use crate::exports::ExportKind;
use crate::results::{self, ResultsError, ResultsOptions};
use crate::storage::{RoundSummary, UnitRecord};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/results", get(results))
        .route("/rounds/{key}/results", get(round_results))
        .route("/rounds/{key}/units/{unit}", get(unit_results))
        .route("/rounds/{key}/compare/{with}", get(compare_page))
        .route("/rounds/{key}/compare/{with}/chart.svg", get(compare_chart))
}

pub struct CompareRow {
    pub unit: String,
    pub now: String,
    pub before: String,
    pub diff: String,
    pub rank: String,
    pub mean_diff: String,
    pub p_holm: String,
    pub significant: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "round_compare.html")]
struct ComparePage {
    f: Frame,
    key: String,
    with: String,
    differences: Vec<String>,
    rows: Vec<CompareRow>,
    unmatched_a: String,
    unmatched_b: String,
}

async fn compute_compare(
    state: &AppState,
    session: &Session,
    key: String,
    with: String,
) -> Result<(crate::compare::CompareDocument, f64), WebError> {
    let _permit = COMPUTE
        .acquire()
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let actor = session.user.login.clone();
    state
        .blocking(move |s| {
            let a = s.round(&key)?;
            let b = s.round(&with)?;
            let doc = crate::compare::compare_rounds(s, &a, &b, chrono::Utc::now(), &actor)
                .map_err(|e| match e {
                    ResultsError::Storage(e) => WebError::from(e),
                    e => WebError::Internal(e.to_string()),
                })?;
            Ok((
                doc,
                a.survey.scoring.phone_points + a.survey.scoring.onsite_points,
            ))
        })
        .await
}

/// Round `key` beside round `with`, per unit (statisticians, evaluators, admins).
async fn compare_page(
    State(state): State<AppState>,
    Allow(session): Allow<RESULTS>,
    Path((key, with)): Path<(String, String)>,
) -> Result<ComparePage, WebError> {
    let (doc, _) = compute_compare(&state, &session, key, with).await?;
    let signed = |x: Option<f64>| x.map_or_else(|| "—".to_string(), |v| format!("{v:+.2}"));
    let names = |v: &[crate::domain::compare::Unmatched]| {
        v.iter()
            .map(|u| u.unit.as_str())
            .collect::<Vec<_>>()
            .join("、")
    };
    Ok(ComparePage {
        f: session.frame("results"),
        rows: doc
            .units
            .iter()
            .map(|u| CompareRow {
                unit: u.unit.clone(),
                now: points(u.a.points),
                before: points(u.b.points),
                diff: signed(u.diff.points),
                rank: u.diff.rank.map_or_else(|| "—".into(), |r| format!("{r:+}")),
                mean_diff: signed(u.diff.mean),
                p_holm: u.p_holm.map_or_else(|| "—".into(), |p| format!("{p:.3}")),
                significant: u.significant,
            })
            .collect(),
        unmatched_a: names(&doc.unmatched_a),
        unmatched_b: names(&doc.unmatched_b),
        differences: doc.survey_differences,
        key: doc.round,
        with: doc.with,
    })
}

async fn compare_chart(
    State(state): State<AppState>,
    Allow(session): Allow<RESULTS>,
    Path((key, with)): Path<(String, String)>,
) -> Result<axum::response::Response, WebError> {
    let (doc, max) = compute_compare(&state, &session, key, with).await?;
    let svg = crate::charts::svg(&crate::compare::change_chart(&doc, max))
        .map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(super::charts::svg_response(svg))
}

pub struct RoundView {
    pub summary: RoundSummary,
    pub units: Vec<UnitRecord>,
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
struct Home {
    rounds: Vec<RoundView>,
    signed_in: bool,
}

async fn home(State(state): State<AppState>, session: Option<Session>) -> Result<Home, WebError> {
    let rounds = state
        .blocking(|store| {
            let mut out = Vec::new();
            for summary in store.rounds()? {
                let units = store.units(summary.round.id)?;
                out.push(RoundView { summary, units });
            }
            Ok(out)
        })
        .await?;
    Ok(Home {
        rounds,
        signed_in: session.is_some(),
    })
}

pub struct ResultsRound {
    pub key: String,
    pub title: String,
    pub locked: bool,
    pub units: usize,
}

#[derive(Template, WebTemplate)]
#[template(path = "results.html")]
struct ResultsPage {
    f: Frame,
    rounds: Vec<ResultsRound>,
}

async fn results(
    State(state): State<AppState>,
    Allow(session): Allow<RESULTS>,
) -> Result<ResultsPage, WebError> {
    let rounds = state
        .blocking(|s| {
            Ok(s.rounds()?
                .into_iter()
                .map(|r| ResultsRound {
                    locked: r.round.is_locked(),
                    key: r.round.key,
                    title: r.round.title,
                    units: r.units,
                })
                .collect())
        })
        .await?;
    Ok(ResultsPage {
        f: session.frame("results"),
        rounds,
    })
}

// ---------------------------------------------------------------------------------------------
// One round's results

/// Scoring runs a bootstrap on every core: one computation at a time from these pages.
static COMPUTE: Semaphore = Semaphore::const_new(1);

pub struct UnitRow {
    pub rank: String,
    pub unit: String,
    pub kind: &'static str,
    pub completes: u32,
    pub satisfaction: String,
    pub phone: String,
    pub onsite: String,
    pub social: String,
    pub rank_ci: String,
    pub p_bottom: String,
    pub rr1: String,
    pub flags: String,
}

/// A unit's corroborating records on the results page.
pub struct EvidenceRow {
    pub unit: String,
    pub complaint: String,
    pub complaint_rate: String,
    pub petition: String,
    pub discipline: String,
    pub sources: String,
}

pub struct ExportLink {
    pub key: &'static str,
    pub label: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "round_results.html")]
struct RoundResultsPage {
    f: Frame,
    key: String,
    title: String,
    locked: bool,
    field_closed: bool,
    computed_at: String,
    basis: &'static str,
    phone_points: String,
    onsite_points: String,
    max_points: String,
    bottom_k: u32,
    completes: u32,
    rr1: String,
    units: Vec<UnitRow>,
    evidence: Vec<EvidenceRow>,
    evidence_checks: Vec<String>,
    /// Other rounds to compare with, the linked previous round first.
    compare_with: Vec<String>,
    warnings: Vec<String>,
    exports: Vec<ExportLink>,
    /// The operators' chart and the report zip (whose quality section and exports name
    /// operators and hold respondent-level rows): admins and statisticians.
    sees_operators: bool,
    error: Option<String>,
}

fn points(p: Option<f64>) -> String {
    p.map_or_else(|| "—".to_string(), |p| format!("{p:.2}"))
}

async fn round_results(
    State(state): State<AppState>,
    Allow(session): Allow<RESULTS>,
    Path(key): Path<String>,
) -> Result<RoundResultsPage, WebError> {
    let _permit = COMPUTE
        .acquire()
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let actor = session.user.login.clone();
    let k = key.clone();
    let (round, doc, compare_with) = state
        .blocking(move |s| {
            let round = s.round(&k)?;
            let doc = results::compute(
                s,
                &round,
                &ResultsOptions::default(),
                chrono::Utc::now(),
                &actor,
            );
            let previous = s.previous_round(round.id)?;
            let mut others: Vec<String> = s
                .rounds()?
                .into_iter()
                .map(|r| r.round.key)
                .filter(|k| *k != round.key && Some(k) != previous.as_ref())
                .collect();
            others.splice(0..0, previous);
            Ok((round, doc, others))
        })
        .await?;
    // Only the links this role may follow (`ExportKind::roles`, the rule the API applies).
    let role = session.user.role;
    let exports = ExportKind::for_role(role)
        .into_iter()
        .map(|k| ExportLink {
            key: k.key(),
            label: k.label(),
        })
        .collect();
    let mut page = RoundResultsPage {
        f: session.frame("results"),
        key: round.key.clone(),
        title: round.title.clone(),
        locked: round.is_locked(),
        field_closed: false,
        computed_at: String::new(),
        basis: "",
        phone_points: String::new(),
        onsite_points: String::new(),
        max_points: String::new(),
        bottom_k: 0,
        completes: 0,
        rr1: String::new(),
        units: Vec::new(),
        evidence: Vec::new(),
        evidence_checks: Vec::new(),
        compare_with: Vec::new(),
        warnings: Vec::new(),
        exports,
        sees_operators: role.sees_operator_identity(),
        error: None,
    };
    page.compare_with = compare_with;
    let doc = match doc {
        // Nothing on this page names an operator today; the one rule holds should it ever.
        Ok(mut d) if !session.user.role.sees_operator_identity() => {
            d.hide_operators();
            d
        }
        Ok(d) => d,
        Err(ResultsError::Storage(e)) => return Err(e.into()),
        Err(e) => {
            page.error = Some(e.to_string());
            return Ok(page);
        }
    };
    let mut units: Vec<_> = doc.units.iter().collect();
    units.sort_by_key(|u| (u.social.rank.is_none(), u.social.rank));
    page.field_closed = doc.field_closed;
    // The document carries the round's local time with its offset; the page shows it the way
    // every other page shows times (local, no offset).
    page.computed_at = chrono::DateTime::parse_from_rfc3339(&doc.computed_at).map_or_else(
        |_| doc.computed_at.clone(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    );
    page.basis = match doc.ranked_by {
        RankBasis::Social => "按社会评价得分(电话调查 + 现场评价)排名",
        RankBasis::Phone => "尚无现场评价数据,按电话调查得分排名",
    };
    page.phone_points = format!("{}", doc.survey.phone_points);
    page.onsite_points = format!("{}", doc.survey.onsite_points);
    page.max_points = format!("{}", doc.survey.max_points);
    page.bottom_k = doc.bottom_k;
    page.completes = doc.overall.completes;
    page.rr1 = percent(doc.overall.rates.rr1);
    page.warnings = doc.warnings.clone();
    page.evidence = units
        .iter()
        .filter(|u| !u.evidence.is_empty())
        .map(|u| EvidenceRow {
            unit: u.unit.clone(),
            complaint: results::evidence_count(u.evidence.complaint),
            complaint_rate: u
                .evidence
                .complaint_rate
                .map_or_else(|| "—".into(), |r| format!("{r:.2}")),
            petition: results::evidence_count(u.evidence.petition),
            discipline: results::evidence_count(u.evidence.discipline),
            sources: results::evidence_sources(&u.evidence),
        })
        .collect();
    page.evidence_checks = doc
        .evidence_check
        .iter()
        .map(results::evidence_check_text)
        .collect();
    page.units = units
        .into_iter()
        .map(|u| UnitRow {
            rank: u.social.rank.map_or_else(|| "—".into(), |r| r.to_string()),
            unit: u.unit.clone(),
            kind: u.kind,
            completes: u.phone.completes,
            satisfaction: percent(u.phone.satisfaction_rate),
            phone: points(u.phone.points),
            onsite: points(u.onsite.as_ref().map(|o| o.points)),
            social: points(u.social.points),
            rank_ci: u
                .social
                .rank_ci95
                .map(|[a, b]| format!("{a}–{b}"))
                .unwrap_or_default(),
            p_bottom: percent(u.social.p_bottom),
            rr1: percent(u.rates.rr1),
            flags: u
                .flags
                .iter()
                .map(|f| results::flag_label(*f))
                .collect::<Vec<_>>()
                .join("、"),
        })
        .collect();
    Ok(page)
}

// ---------------------------------------------------------------------------------------------
// One unit's results

pub struct DimensionRow {
    pub label: String,
    pub weight: String,
    pub mean: String,
    pub mean_ci: String,
    pub rate: String,
    pub rate_ci: String,
    /// Answers per level, in the survey's level order.
    pub counts: Vec<u32>,
}

pub struct UnitChartLink {
    pub file: &'static str,
    pub alt: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "unit_results.html")]
struct UnitResultsPage {
    f: Frame,
    key: String,
    title: String,
    locked: bool,
    unit: String,
    kind: &'static str,
    sector: String,
    panel: u32,
    completes: u32,
    rr1: String,
    phone: String,
    phone_mean: String,
    phone_mean_ci: String,
    satisfaction: String,
    satisfaction_ci: String,
    onsite: String,
    social: String,
    social_ci: String,
    phone_points: String,
    onsite_points: String,
    max_points: String,
    rank: String,
    rank_ci: String,
    ranked: usize,
    p_bottom: String,
    bottom_k: u32,
    flags: String,
    levels: Vec<String>,
    dimensions: Vec<DimensionRow>,
    charts: Vec<UnitChartLink>,
}

fn num(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "—".to_string(), |x| format!("{x:.digits$}"))
}

fn interval(ci: Option<[f64; 2]>, digits: usize) -> String {
    ci.map_or_else(String::new, |[a, b]| format!("{a:.digits$}–{b:.digits$}"))
}

fn percent_interval(ci: Option<[f64; 2]>) -> String {
    ci.map_or_else(String::new, |[a, b]| {
        format!("{}–{}", percent(Some(a)), percent(Some(b)))
    })
}

/// One unit's scores for every results reader: the points, the per-dimension subscores with
/// their intervals and the unit's charts. Nothing here is respondent-level or names an
/// operator, so evaluators see the same page as statisticians.
async fn unit_results(
    State(state): State<AppState>,
    Allow(session): Allow<RESULTS>,
    Path((key, unit)): Path<(String, String)>,
) -> Result<UnitResultsPage, WebError> {
    let _permit = COMPUTE
        .acquire()
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let actor = session.user.login.clone();
    let k = key.clone();
    let (round, doc) = state
        .blocking(move |s| {
            let round = s.round(&k)?;
            let doc = results::compute(
                s,
                &round,
                &ResultsOptions::default(),
                chrono::Utc::now(),
                &actor,
            );
            Ok((round, doc))
        })
        .await?;
    let mut doc = match doc {
        Ok(d) => d,
        Err(ResultsError::Storage(e)) => return Err(e.into()),
        Err(e) => return Err(WebError::Conflict(e.to_string())),
    };
    if !session.user.role.sees_operator_identity() {
        doc.hide_operators();
    }
    let u = doc
        .units
        .iter()
        .find(|u| u.unit == unit)
        .or_else(|| doc.units.iter().find(|u| u.code.as_deref() == Some(&unit)))
        .ok_or_else(|| {
            WebError::NotFound(format!(
                "轮次 {key} 中没有名称或代码为“{unit}”的单位。请从评估结果页的单位列表进入。"
            ))
        })?;
    let p = &u.phone;
    let dimensions = p
        .dimensions
        .iter()
        .zip(&doc.survey.dimensions)
        .map(|(d, s)| DimensionRow {
            label: d.label.clone(),
            weight: format!("{}", s.weight),
            mean: num(d.mean, 2),
            mean_ci: interval(d.ci95, 2),
            rate: percent(d.satisfaction_rate),
            rate_ci: percent_interval(d.satisfaction_rate_ci95),
            counts: doc
                .survey
                .levels
                .iter()
                .map(|l| d.counts.get(&l.key).copied().unwrap_or(0))
                .collect(),
        })
        .collect();
    Ok(UnitResultsPage {
        f: session.frame("results"),
        key: round.key.clone(),
        title: round.title.clone(),
        locked: round.is_locked(),
        unit: u.unit.clone(),
        kind: u.kind,
        sector: u.sector.clone(),
        panel: u.panel,
        completes: p.completes,
        rr1: percent(u.rates.rr1),
        phone: points(p.points),
        phone_mean: num(p.mean, 2),
        phone_mean_ci: interval(p.ci95, 2),
        satisfaction: percent(p.satisfaction_rate),
        satisfaction_ci: percent_interval(p.satisfaction_rate_ci95),
        onsite: points(u.onsite.as_ref().map(|o| o.points)),
        social: points(u.social.points),
        social_ci: interval(u.social.ci95, 2),
        phone_points: format!("{}", doc.survey.phone_points),
        onsite_points: format!("{}", doc.survey.onsite_points),
        max_points: format!("{}", doc.survey.max_points),
        rank: u.social.rank.map_or_else(|| "—".into(), |r| r.to_string()),
        rank_ci: u
            .social
            .rank_ci95
            .map(|[a, b]| format!("{a}–{b}"))
            .unwrap_or_default(),
        ranked: doc.units.iter().filter(|u| u.social.rank.is_some()).count(),
        p_bottom: percent(u.social.p_bottom),
        bottom_k: doc.bottom_k,
        flags: u
            .flags
            .iter()
            .map(|f| results::flag_label(*f))
            .collect::<Vec<_>>()
            .join("、"),
        levels: doc.survey.levels.iter().map(|l| l.label.clone()).collect(),
        dimensions,
        charts: vec![
            UnitChartLink {
                file: "profile",
                alt: "本单位各维度平均分与全区比较",
            },
            UnitChartLink {
                file: "distribution",
                alt: "本单位各维度四级评价分布",
            },
            UnitChartLink {
                file: "position",
                alt: "本单位在全部参评单位中的位置",
            },
        ],
    })
}
