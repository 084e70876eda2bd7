//! The OpenID provider's public endpoints. Today: the JSON Web Key Set that verifies every token
//! Portcullis signs (next, current and previous keys; shared by every replica).

use super::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub fn router() -> Router<AppState> {
    Router::new().route("/.well-known/jwks.json", get(jwks))
}

async fn jwks(State(state): State<AppState>) -> Response {
    let mut res = axum::Json(identity::keys::jwks(&state.identity)).into_response();
    // Verifiers may cache it briefly; a rotation publishes the next key well before it signs.
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}
