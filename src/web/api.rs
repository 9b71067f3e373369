//! The evaluators' HTTP API (`/api/v1/...`).

use axum::Router;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}
