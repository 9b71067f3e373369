//! The public first page: rounds and their units with panel sizes.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

use super::{AppState, WebError};
use crate::storage::{RoundSummary, UnitRecord};

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(home))
}

pub struct RoundView {
    pub summary: RoundSummary,
    pub units: Vec<UnitRecord>,
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
struct Home {
    rounds: Vec<RoundView>,
}

async fn home(State(state): State<AppState>) -> Result<Home, WebError> {
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
    Ok(Home { rounds })
}
