//! The supervisor's view: a round's field progress per unit and per operator, refreshing on
//! its own (a small script fetches the tables every few seconds; without JavaScript the page
//! reloads itself), and the audit log with filters. Administrators and statisticians; no
//! personal data (no names, no phone numbers) appears here.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;

use super::auth::{Allow, SUPERVISORS};
use super::error::encode_component;
use super::views::{Frame, local_time, percent};
use super::{AppState, WebError};

use crate::domain::progress::Tally;
use crate::domain::user::Role;
use crate::engine::{self, EngineError};
use crate::storage::AuditFilter;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/progress", get(progress_index))
        .route("/rounds/{key}/progress", get(progress_page))
        .route("/rounds/{key}/progress/live", get(progress_live))
        .route("/audit", get(audit_page))
}

pub fn engine_error(e: EngineError) -> WebError {
    match e {
        EngineError::Storage(s) => WebError::Storage(s),
        EngineError::Invalid(m) => WebError::Conflict(m),
        EngineError::Plan(p) => WebError::Conflict(p.to_string()),
    }
}

pub struct TallyRow {
    pub name: String,
    pub kind: &'static str,
    pub sector: String,
    pub t: Tally,
    pub rr1: String,
    pub short: bool,
}

pub struct OperatorRow {
    pub operator: String,
    pub attempts: u32,
    pub completion_rate: String,
    /// The members assigned to the operator, tallied like a unit's panel.
    pub t: Tally,
    pub rr1: String,
    pub on_call: String,
}

pub struct ProgressView {
    pub round_key: String,
    pub locked: bool,
    pub field_closed: bool,
    pub updated: String,
    pub min_completes: u32,
    pub overall: TallyRow,
    pub units: Vec<TallyRow>,
    pub operators: Vec<OperatorRow>,
    pub on_call: Vec<(String, String)>,
    /// Late records: (attempt id, operator, unit, outcome, local time).
    pub late: Vec<(i64, String, String, &'static str, String)>,
}

pub struct RoundLink {
    pub key: String,
    pub title: String,
    pub current: bool,
    pub locked: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "progress.html")]
pub struct ProgressPage {
    pub f: Frame,
    pub admin: bool,
    pub title: String,
    pub rounds: Vec<RoundLink>,
    pub p: ProgressView,
}

#[derive(Template, WebTemplate)]
#[template(path = "progress_live.html")]
pub struct ProgressLive {
    pub p: ProgressView,
}

#[derive(Template, WebTemplate)]
#[template(path = "no_rounds.html")]
pub struct NoRounds {
    pub f: Frame,
    pub admin: bool,
}

async fn progress_view(state: &AppState, key: String) -> Result<(ProgressView, String), WebError> {
    state
        .blocking(move |s| {
            let round = s.round(&key)?;
            let now = Utc::now();
            let report = engine::progress(s, &round, now).map_err(engine_error)?;
            let by_operator =
                crate::exports::operator_panel_tallies(s, &round, now).map_err(engine_error)?;
            let min = round.survey.scoring.min_completes;
            let row = |name: String, kind: &'static str, sector: String, t: Tally| TallyRow {
                rr1: percent(t.rates.rr1),
                short: t.completes < min,
                name,
                kind,
                sector,
                t,
            };
            let tz = round.survey.timezone();
            let late = report
                .late
                .iter()
                .map(|l| {
                    (
                        l.attempt_id,
                        l.operator.clone(),
                        l.unit.clone(),
                        l.outcome,
                        local_time(l.recorded_at_ms, tz, "%m-%d %H:%M:%S"),
                    )
                })
                .collect();
            let units = report
                .units
                .into_iter()
                .map(|u| row(u.unit, u.kind, u.sector, u.tally))
                .collect();
            let on_call: Vec<(String, String)> = report
                .on_call
                .iter()
                .map(|c| (c.operator.clone(), c.unit.clone()))
                .collect();
            let operators = report
                .operators
                .into_iter()
                .map(|o| {
                    let t = by_operator.get(&o.operator).cloned().unwrap_or_default();
                    OperatorRow {
                        on_call: on_call
                            .iter()
                            .filter(|(op, _)| *op == o.operator)
                            .map(|(_, u)| u.as_str())
                            .collect::<Vec<_>>()
                            .join("、"),
                        completion_rate: percent(o.completion_rate),
                        rr1: percent(t.rates.rr1),
                        t,
                        operator: o.operator,
                        attempts: o.attempts,
                    }
                })
                .collect();
            Ok((
                ProgressView {
                    round_key: round.key.clone(),
                    locked: round.is_locked(),
                    field_closed: report.field_closed,
                    updated: local_time(
                        now.timestamp_millis(),
                        round.survey.timezone(),
                        "%H:%M:%S",
                    ),
                    min_completes: min,
                    overall: row("全部单位".into(), "", String::new(), report.overall),
                    units,
                    operators,
                    on_call,
                    late,
                },
                round.title,
            ))
        })
        .await
}

async fn progress_index(
    State(state): State<AppState>,
    Allow(session): Allow<SUPERVISORS>,
) -> Result<Response, WebError> {
    let rounds = state.blocking(|s| Ok(s.rounds()?)).await?;
    match rounds.first() {
        Some(r) => Ok(Redirect::to(&format!(
            "/rounds/{}/progress",
            encode_component(&r.round.key)
        ))
        .into_response()),
        None => Ok(NoRounds {
            f: session.frame("progress"),
            admin: session.user.role == Role::Admin,
        }
        .into_response()),
    }
}

async fn progress_page(
    State(state): State<AppState>,
    Allow(session): Allow<SUPERVISORS>,
    Path(key): Path<String>,
) -> Result<ProgressPage, WebError> {
    let (p, title) = progress_view(&state, key.clone()).await?;
    let rounds = state
        .blocking(move |s| {
            Ok(s.rounds()?
                .into_iter()
                .map(|r| RoundLink {
                    current: r.round.key == key,
                    locked: r.round.is_locked(),
                    key: r.round.key,
                    title: r.round.title,
                })
                .collect())
        })
        .await?;
    Ok(ProgressPage {
        f: session.frame("progress"),
        admin: session.user.role == Role::Admin,
        title,
        rounds,
        p,
    })
}

async fn progress_live(
    State(state): State<AppState>,
    Allow(_session): Allow<SUPERVISORS>,
    Path(key): Path<String>,
) -> Result<ProgressLive, WebError> {
    let (p, _) = progress_view(&state, key).await?;
    Ok(ProgressLive { p })
}

// ---------------------------------------------------------------------------------------------
// The audit log

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    round: String,
    #[serde(default)]
    page: Option<usize>,
}

pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub round: String,
    pub detail: String,
}

pub struct Choice {
    pub value: String,
    pub selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
pub struct AuditPage {
    pub f: Frame,
    pub rows: Vec<AuditRow>,
    pub total: usize,
    pub page: usize,
    pub pages: usize,
    pub actions: Vec<Choice>,
    pub actors: Vec<Choice>,
    pub rounds: Vec<Choice>,
    pub chain: String,
    pub chain_ok: bool,
    pub prev_url: String,
    pub next_url: String,
}

const PAGE_SIZE: usize = 100;

fn choices(values: Vec<String>, selected: &str) -> Vec<Choice> {
    values
        .into_iter()
        .map(|v| Choice {
            selected: v == selected,
            value: v,
        })
        .collect()
}

async fn audit_page(
    State(state): State<AppState>,
    Allow(session): Allow<SUPERVISORS>,
    Query(q): Query<AuditQuery>,
) -> Result<AuditPage, WebError> {
    let page = q.page.unwrap_or(1).max(1);
    let filter = AuditFilter {
        action: Some(q.action.trim().to_string()).filter(|s| !s.is_empty()),
        actor: Some(q.actor.trim().to_string()).filter(|s| !s.is_empty()),
        round_key: Some(q.round.trim().to_string()).filter(|s| !s.is_empty()),
        limit: PAGE_SIZE,
        offset: (page - 1) * PAGE_SIZE,
    };
    let (found, (actions, actors), rounds, chain) = state
        .blocking(move |s| {
            let found = s.search_audit(&filter)?;
            let facets = s.audit_facets()?;
            let rounds: Vec<String> = s.rounds()?.into_iter().map(|r| r.round.key).collect();
            let chain = s.verify_audit()?;
            Ok((found, facets, rounds, chain))
        })
        .await?;
    // Prefix filters ("auth.") offered beside the exact actions.
    let mut prefixes: Vec<String> = actions
        .iter()
        .filter_map(|a| a.split_once('.').map(|(p, _)| format!("{p}.")))
        .collect();
    prefixes.dedup();
    let mut action_values = prefixes;
    action_values.extend(actions);
    let tz = chrono_tz::Asia::Shanghai;
    let rows = found
        .entries
        .into_iter()
        .map(|e| AuditRow {
            id: e.id,
            at: local_time(e.at_ms, tz, "%Y-%m-%d %H:%M:%S"),
            actor: e.actor,
            action: e.action,
            round: e.round_key.unwrap_or_default(),
            detail: e.detail,
        })
        .collect();
    let (chain, chain_ok) = match chain {
        Ok(n) => (format!("哈希链完整,共 {n} 条记录"), true),
        Err(b) => (format!("哈希链校验失败,日志可能被篡改:{b}"), false),
    };
    let pages = found.total.div_ceil(PAGE_SIZE).max(1);
    let url = |p: usize| {
        format!(
            "/audit?action={}&actor={}&round={}&page={p}",
            encode_component(&q.action),
            encode_component(&q.actor),
            encode_component(&q.round)
        )
    };
    Ok(AuditPage {
        f: session.frame("audit"),
        rows,
        total: found.total,
        page,
        pages,
        actions: choices(action_values, &q.action),
        actors: choices(actors, &q.actor),
        rounds: choices(rounds, &q.round),
        prev_url: if page > 1 {
            url(page - 1)
        } else {
            String::new()
        },
        next_url: if page < pages {
            url(page + 1)
        } else {
            String::new()
        },
        chain,
        chain_ok,
    })
}
