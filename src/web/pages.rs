//! The public first page (rounds and their units with panel sizes; no personal data) and the
//! results pages for administrators, statisticians and evaluators: each unit's phone, on-site
//! and social-evaluation scores and rank, computed by `crate::results` from the stored attempts
//! (the same document as `sheping results` and `/api/v1/rounds/{key}/results`), with links to
//! the statisticians' exports.

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
use crate::domain::user::Role;
use crate::exports::ExportKind;
use crate::results::{self, ResultsError, ResultsOptions};
use crate::storage::{RoundSummary, UnitRecord};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/results", get(results))
        .route("/rounds/{key}/results", get(round_results))
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
    warnings: Vec<String>,
    exports: Vec<ExportLink>,
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
    let exports = if matches!(session.user.role, Role::Admin | Role::Statistician) {
        ExportKind::all()
            .iter()
            .map(|k| ExportLink {
                key: k.key(),
                label: k.label(),
            })
            .collect()
    } else {
        Vec::new()
    };
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
        warnings: Vec::new(),
        exports,
        error: None,
    };
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
