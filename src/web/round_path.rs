//! A round's path at a glance (`domain::round_path`): at the top of the administrator's round
//! page with a link to each stage's page, and on `/rounds/{key}` for the readers —
//! statisticians see every stage read-only, evaluators only the stages about results. Links
//! lead only to pages the reader's role can open.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;

use super::auth::{Allow, RESULTS};
use super::error::encode_component;
use super::views::Frame;
use super::{AppState, WebError};
use crate::domain::round_path::{self, RoundCounts};
use crate::domain::user::Role;

pub fn router() -> Router<AppState> {
    Router::new().route("/rounds/{key}", get(round_page))
}

pub struct StageView {
    pub key: &'static str,
    pub title: &'static str,
    pub state: &'static str,
    pub state_label: &'static str,
    pub summary: String,
    pub missing: Vec<String>,
    pub href: Option<String>,
}

/// The stages a role sees, with the links it may follow.
pub struct PathView {
    pub stages: Vec<StageView>,
    /// Statisticians and evaluators: no stage is theirs to act on.
    pub read_only: bool,
}

impl PathView {
    pub fn new(round_key: &str, counts: &RoundCounts, role: Role) -> PathView {
        let key = encode_component(round_key);
        let stages = round_path::round_path(counts)
            .into_iter()
            .filter(|s| role != Role::Evaluator || s.kind.concerns_results())
            .map(|s| {
                let link: Option<&str> = match role {
                    Role::Admin => Some(s.kind.admin_link()),
                    Role::Statistician => s.kind.statistician_link(),
                    Role::Evaluator => s.kind.evaluator_link(),
                    Role::Operator => None,
                };
                StageView {
                    key: s.kind.key(),
                    title: s.kind.title(),
                    state: s.state.key(),
                    state_label: s.state.label(),
                    summary: s.summary,
                    missing: s.missing,
                    href: link.map(|l| l.replace("{key}", &key)),
                }
            })
            .collect();
        PathView {
            stages,
            read_only: role != Role::Admin,
        }
    }

    /// Reads the round's counts and builds the view for `role`.
    pub async fn load(state: &AppState, round_key: String, role: Role) -> Result<Self, WebError> {
        let (key, counts) = state
            .blocking(move |s| {
                let round = s.round(&round_key)?;
                Ok((round.key.clone(), s.round_counts(&round)?))
            })
            .await?;
        Ok(PathView::new(&key, &counts, role))
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "round_path_page.html")]
pub struct RoundPathPage {
    pub f: Frame,
    pub key: String,
    pub title: String,
    pub locked: bool,
    pub path: PathView,
    pub evaluator: bool,
}

async fn round_page(
    State(state): State<AppState>,
    Allow(session): Allow<RESULTS>,
    Path(key): Path<String>,
) -> Result<RoundPathPage, WebError> {
    let k = key.clone();
    let round = state.blocking(move |s| Ok(s.round(&k)?)).await?;
    let role = session.user.role;
    let path = PathView::load(&state, key, role).await?;
    Ok(RoundPathPage {
        f: session.frame(if role == Role::Admin {
            "admin"
        } else {
            "results"
        }),
        key: round.key.clone(),
        title: round.title.clone(),
        locked: round.is_locked(),
        path,
        evaluator: role == Role::Evaluator,
    })
}
