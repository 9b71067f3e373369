//! Static assets, compiled into the binary (no CDN, nothing to deploy beside it).

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/static/style.css",
            get(|| async { asset(CSS, include_str!("../../web/static/style.css")) }),
        )
        .route(
            "/static/call.js",
            get(|| async { asset(JS, include_str!("../../web/static/call.js")) }),
        )
        .route(
            "/static/live.js",
            get(|| async { asset(JS, include_str!("../../web/static/live.js")) }),
        )
}
