//! API errors: one status per class, and the Octez error body
//! `[{"kind":"temporary","id":"failure","msg":"…"}]` that octez-client and Taquito read.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use signatory_signer::service::{ErrorClass, SignError};

/// An error answered to an API client. The message is safe to show: it never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

#[derive(Serialize)]
struct OctezError<'a> {
    kind: &'static str,
    id: &'static str,
    msg: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

/// The status an error class is answered with.
pub fn status_of(class: ErrorClass) -> StatusCode {
    match class {
        ErrorClass::BadRequest => StatusCode::BAD_REQUEST,
        ErrorClass::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorClass::Forbidden => StatusCode::FORBIDDEN,
        ErrorClass::NotFound => StatusCode::NOT_FOUND,
        ErrorClass::Conflict => StatusCode::CONFLICT,
        ErrorClass::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorClass::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<&SignError> for ApiError {
    fn from(e: &SignError) -> Self {
        ApiError::new(status_of(e.class()), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = [OctezError {
            kind: "temporary",
            id: "failure",
            msg: &self.message,
        }];
        (self.status, axum::Json(body)).into_response()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_its_status() {
        let cases = [
            (ErrorClass::BadRequest, 400),
            (ErrorClass::Unauthenticated, 401),
            (ErrorClass::Forbidden, 403),
            (ErrorClass::NotFound, 404),
            (ErrorClass::Conflict, 409),
            (ErrorClass::Internal, 500),
            (ErrorClass::Unavailable, 503),
        ];
        for (class, code) in cases {
            assert_eq!(status_of(class).as_u16(), code);
        }
    }
}
