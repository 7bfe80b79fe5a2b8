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

impl ApiError {
    /// A short, stable name of the refusal class, for log lines.
    pub fn class_label(&self) -> &'static str {
        match self.status.as_u16() {
            400 => "bad_request",
            401 => "unauthenticated",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            408 => "timeout",
            409 => "conflict",
            413 => "too_large",
            415 => "unsupported_media_type",
            503 => "unavailable",
            _ => "internal",
        }
    }
}

/// An extractor rejection (body too large, unreadable path or query) in the Octez shape,
/// with axum's own status (413 for an oversized body).
impl<R: IntoResponse + std::fmt::Display> From<Rejected<R>> for ApiError {
    fn from(Rejected(r): Rejected<R>) -> Self {
        let message = r.to_string();
        let status = r.into_response().status();
        ApiError::new(status, message)
    }
}

/// Wraps an axum rejection for the conversion above.
#[derive(Debug)]
pub struct Rejected<R>(pub R);

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

/// The Octez error body for `message`, as bytes (for replies written below axum).
pub(crate) fn octez_error_body(message: &str) -> Vec<u8> {
    let body = [OctezError {
        kind: "temporary",
        id: "failure",
        msg: message,
    }];
    // Serialising a struct of strings cannot fail; an empty array is still JSON.
    serde_json::to_vec(&body).unwrap_or_else(|_| b"[]".to_vec())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
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
