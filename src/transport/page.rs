//! The chat page (`/`, `/app.js`, `/app.css`), compiled into the binary
//! from `static/` so nothing is fetched at run time. On by default with the
//! memory engine (a laptop demo), a switch (`serve_page`) in production.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;

/// Headers of a page asset: its type, and `no-cache` so a browser picks up
/// a new build at once.
fn headers(content_type: &'static str) -> [(axum::http::HeaderName, &'static str); 2] {
    [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")]
}

/// `GET /`.
pub async fn index() -> impl IntoResponse {
    (
        headers("text/html; charset=utf-8"),
        include_str!("../../static/index.html"),
    )
}

/// `GET /app.js`: the page, bundled with the TypeScript client.
pub async fn script() -> impl IntoResponse {
    (
        headers("text/javascript; charset=utf-8"),
        include_str!("../../static/app.js"),
    )
}

/// `GET /app.css`.
pub async fn style() -> impl IntoResponse {
    (
        headers("text/css; charset=utf-8"),
        include_str!("../../static/app.css"),
    )
}
