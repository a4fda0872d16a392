//! The chat page (`/`, `/app.js`, `/app.css`), compiled into the binary
//! from `static/` so nothing is fetched at run time. On by default with the
//! memory engine (a laptop demo), a switch (`serve_page`) in production.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;

/// `GET /`.
pub async fn index() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("../../static/index.html"),
    )
}

/// `GET /app.js`: the page, bundled with the TypeScript client.
pub async fn script() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/app.js"),
    )
}

/// `GET /app.css`.
pub async fn style() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../static/app.css"),
    )
}
