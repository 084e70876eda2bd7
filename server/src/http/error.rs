//! How the REST API reports errors: a status code and `{"error": {"code", "message", "field"}}`.
//! Internal errors are logged with their cause chain and answered with an opaque 500.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub struct ApiError(pub identity::Error);

impl From<identity::Error> for ApiError {
    fn from(e: identity::Error) -> Self {
        Self(e)
    }
}

pub fn status_of(err: &identity::Error) -> StatusCode {
    use identity::Error as E;
    match err {
        E::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        E::NotFound => StatusCode::NOT_FOUND,
        E::Unauthenticated | E::InvalidCredentials => StatusCode::UNAUTHORIZED,
        E::Forbidden => StatusCode::FORBIDDEN,
        E::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        E::Conflict { .. } => StatusCode::CONFLICT,
        E::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A client error with a code of the edge's own (malformed JSON, bad query…).
pub fn client_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message, "field": null } })),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %app::ssr::error_chain(&self.0), "request failed");
        }
        let body = json!({ "error": {
            "code": self.0.code(),
            "message": self.0.public_message(),
            "field": self.0.field(),
        }});
        let mut res = (status, Json(body)).into_response();
        if let identity::Error::Throttled { retry_after_secs } = self.0
            && let Ok(v) = retry_after_secs.to_string().parse()
        {
            res.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        res
    }
}
