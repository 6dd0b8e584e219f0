//! The HTTP routes and the layers around them.

mod customers;
mod health;
mod openapi;
mod simulate;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

use crate::middleware::{error_body, observe, tag_route};
use crate::state::AppState;

/// Largest request body: 1 MiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Builds the router with every route and layer.
pub fn router(state: Arc<AppState>) -> Router {
    let base = customers::BASE_PATH;
    Router::new()
        .route(base, get(customers::list).post(customers::create))
        .route(
            &format!("{base}/{{id}}"),
            get(customers::get)
                .put(customers::replace)
                .delete(customers::delete),
        )
        .route(&format!("{base}/simulate/locking"), get(simulate::locking))
        .route(&format!("{base}/simulate/timeout"), get(simulate::timeout))
        .route("/health", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::document))
        .route_layer(axum::middleware::from_fn(tag_route))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(error_body))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}
