//! Charts as SVG for the results pages (the round's and each unit's), and the round report as
//! a zip download.
//!
//! The operators chart shows operator effects: statisticians and admins only, like the report
//! (whose quality section holds it).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::auth::{Allow, RESULTS, SUPERVISORS};
use super::{AppState, WebError};
use crate::report::{self, ReportOptions, RoundChart, UnitChart};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rounds/{key}/charts/{file}", get(round_chart))
        .route("/rounds/{key}/units/{unit}/charts/{file}", get(unit_chart))
        .route("/rounds/{key}/report.zip", get(report_zip))
}

async fn round_chart(
    State(state): State<AppState>,
    Allow(session): Allow<RESULTS>,
    Path((key, file)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let which = file
        .strip_suffix(".svg")
        .and_then(RoundChart::parse)
        .ok_or_else(|| WebError::NotFound(format!("没有图表“{file}”")))?;
    if which == RoundChart::Operators && !session.user.role.sees_operator_identity() {
        return Err(WebError::Forbidden);
    }
    let actor = session.user.login.clone();
    let svg = state
        .blocking(move |s| {
            let round = s.round(&key)?;
            let (data, _) = report::ReportData::load(
                s,
                &round,
                &ReportOptions::default(),
                chrono::Utc::now(),
                &actor,
            )
            .map_err(report_error)?;
            let drawn = report::round_chart(&data, which, false)
                .map_err(|e| WebError::Internal(e.to_string()))?;
            Ok(drawn.svg)
        })
        .await?;
    Ok(svg_response(svg))
}

/// A unit's charts (position, profile, distribution): made from the unit-level results only,
/// so every results reader may see them.
async fn unit_chart(
    State(state): State<AppState>,
    Allow(session): Allow<RESULTS>,
    Path((key, unit, file)): Path<(String, String, String)>,
) -> Result<Response, WebError> {
    let which = file
        .strip_suffix(".svg")
        .and_then(UnitChart::parse)
        .ok_or_else(|| {
            WebError::NotFound(format!(
                "没有图表“{file}”:可选 profile.svg、distribution.svg、position.svg"
            ))
        })?;
    let actor = session.user.login.clone();
    let svg = state
        .blocking(move |s| {
            let round = s.round(&key)?;
            let (data, _) = report::ReportData::load(
                s,
                &round,
                &ReportOptions::default(),
                chrono::Utc::now(),
                &actor,
            )
            .map_err(report_error)?;
            let index = data.unit_index(&unit).ok_or_else(|| {
                WebError::NotFound(format!("轮次 {key} 中没有名称或代码为“{unit}”的单位"))
            })?;
            let drawn = report::unit_chart(&data, index, which, false)
                .map_err(|e| WebError::Internal(e.to_string()))?;
            Ok(drawn.svg)
        })
        .await?;
    Ok(svg_response(svg))
}

/// The report zip stays with admins and statisticians: its quality section and the operators'
/// chart name operators, and it carries the responses and attempts exports (one row per
/// interview and per call). Evaluators download the unit-level exports instead.
async fn report_zip(
    State(state): State<AppState>,
    Allow(session): Allow<SUPERVISORS>,
    Path(key): Path<String>,
) -> Result<Response, WebError> {
    let actor = session.user.login.clone();
    let (round_key, bytes) = state
        .blocking(move |s| {
            let round = s.round(&key)?;
            let bytes = report::report_zip(
                s,
                &round,
                &ReportOptions::default(),
                &actor,
                chrono::Utc::now(),
            )
            .map_err(report_error)?;
            Ok((round.key, bytes))
        })
        .await?;
    // The same plain name as the zip's folder: whatever the key holds (dots, backslashes,
    // control characters), the header stays well-formed and the name one component.
    let disposition = format!(
        "attachment; filename=\"{}.zip\"",
        report::zip_folder(&round_key)
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// Bad stored attempts are named to the user (409), never a bare 500.
/// A chart drawn for this request (results change with every recorded call: never cached).
pub(super) fn svg_response(svg: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        svg,
    )
        .into_response()
}

fn report_error(e: report::ReportError) -> WebError {
    match e {
        report::ReportError::Results(crate::results::ResultsError::BadAttempts(m)) => {
            WebError::Conflict(m)
        }
        e => WebError::Internal(e.to_string()),
    }
}
