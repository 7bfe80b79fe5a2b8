//! What every API request must pass before it is routed: it does not come from a web page
//! of another site, a request that can sign declares a JSON body, and the body it declares
//! fits the limit.
//!
//! Browsers let any page send a "simple" cross-site request (a POST with
//! `Content-Type: text/plain`, no preflight) to a signer on `localhost` or the local network;
//! the page cannot read the answer, but the signature, and its watermark, would be taken.
//! Such a request always carries `Origin`, which Octez clients and Taquito under Node.js
//! never send, and its content type is never `application/json` (that one needs a
//! preflight, answered only for `server.allowed_origins`).

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The guard's settings, shared by every request.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    /// Origins whose pages may call the API (`server.allowed_origins`), lowercased, without
    /// a trailing slash. Empty by default: no page may.
    allowed_origins: Arc<[String]>,
    /// The largest body accepted (`server.limits.max_body_bytes`).
    body_limit: usize,
}

/// Why the guard refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GuardRefusal {
    #[error(
        "requests from web pages are refused: this one carries `Origin: {0}`; list that origin \
         under `server.allowed_origins` to let its pages call the signer"
    )]
    Origin(String),
    #[error(
        "the body of a signing request must be sent with `Content-Type: application/json`, \
         not `{0}`"
    )]
    ContentType(String),
    #[error("the body of a signing request must be sent with `Content-Type: application/json`")]
    NoContentType,
    #[error("request body too large: {declared} bytes declared, at most {limit} accepted")]
    TooLarge { declared: u64, limit: usize },
}

impl GuardRefusal {
    fn status(&self) -> StatusCode {
        match self {
            GuardRefusal::Origin(_) => StatusCode::FORBIDDEN,
            GuardRefusal::ContentType(_) | GuardRefusal::NoContentType => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            GuardRefusal::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
}

impl From<GuardRefusal> for ApiError {
    fn from(refusal: GuardRefusal) -> Self {
        ApiError::new(refusal.status(), refusal.to_string())
    }
}

/// How long a browser may reuse a preflight answer.
const PREFLIGHT_MAX_AGE_SECONDS: &str = "600";

impl Guard {
    pub(crate) fn new(allowed_origins: &[String], body_limit: usize) -> Self {
        let allowed_origins: Arc<[String]> = allowed_origins
            .iter()
            .map(|origin| normalise_origin(origin))
            .collect();
        for origin in allowed_origins.iter() {
            // No wildcard: each allowed site is named; `null` is any sandboxed page.
            if origin == "*" || origin == "null" || !origin.contains("://") {
                tracing::warn!(
                    origin = %origin,
                    "`server.allowed_origins` lists something no browser sends as its origin \
                     (expected scheme://host[:port]); it allows nothing"
                );
            }
        }
        Guard {
            allowed_origins,
            body_limit,
        }
    }

    /// The request's `Origin`, if it has one: `Ok(None)` without, `Ok(Some(origin))` for
    /// an allowed one, an error for any other (several `Origin` headers included).
    fn origin<'h>(&self, headers: &'h HeaderMap) -> Result<Option<&'h HeaderValue>, GuardRefusal> {
        let mut values = headers.get_all(header::ORIGIN).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(value.as_bytes());
        if values.next().is_some() {
            return Err(GuardRefusal::Origin(format!("{text} (and more)")));
        }
        // `null` (sandboxed frames, local files) names no site: never allowed.
        let normalised = normalise_origin(&text);
        if normalised != "null" && self.allowed_origins.contains(&normalised) {
            Ok(Some(value))
        } else {
            Err(GuardRefusal::Origin(text.into_owned()))
        }
    }

    /// A request that can change state (every method but GET, HEAD and OPTIONS) must declare
    /// a JSON body, in UTF-8 if it names a charset.
    fn content_type(method: &Method, headers: &HeaderMap) -> Result<(), GuardRefusal> {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        let Some(value) = headers.get(header::CONTENT_TYPE) else {
            // Octez clients and Taquito always send one with a body; a request without it
            // is no client of ours, and accepting it would let some browser request through.
            return Err(GuardRefusal::NoContentType);
        };
        let text = String::from_utf8_lossy(value.as_bytes());
        if is_json(&text) {
            Ok(())
        } else {
            Err(GuardRefusal::ContentType(text.into_owned()))
        }
    }

    /// A declared length over the limit is refused before any of the body is read, so the
    /// request does not hold its connection until the request timeout.
    fn content_length(&self, headers: &HeaderMap) -> Result<(), GuardRefusal> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        // hyper has already refused a malformed length (400); a chunked body is counted
        // as it arrives, by the body limit.
        match declared {
            Some(declared) if declared > u64::try_from(self.body_limit).unwrap_or(u64::MAX) => {
                Err(GuardRefusal::TooLarge {
                    declared,
                    limit: self.body_limit,
                })
            }
            _ => Ok(()),
        }
    }
}

/// `https://Wallet.example/` → `https://wallet.example`: browsers send origins lowercased
/// and without a path; the configured list may not be.
fn normalise_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// `application/json`, with any parameters, a charset only if UTF-8.
fn is_json(content_type: &str) -> bool {
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return false;
    }
    parts.all(|param| match param.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            let value = value.trim().trim_matches('"');
            value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
        }
        _ => true,
    })
}

/// The middleware: refuse what [`Guard`] refuses; answer the CORS preflight of an allowed
/// origin; let an allowed origin's pages read the answers.
pub(crate) async fn guard(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    let origin = match guard.origin(req.headers()) {
        Ok(origin) => origin.cloned(),
        Err(refusal) => return ApiError::from(refusal).into_response(),
    };
    if let Some(origin) = &origin {
        if req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return preflight(origin);
        }
    }
    let checked = Guard::content_type(req.method(), req.headers())
        .and_then(|()| guard.content_length(req.headers()));
    let mut response = match checked {
        Ok(()) => next.run(req).await,
        Err(refusal) => {
            let too_large = matches!(refusal, GuardRefusal::TooLarge { .. });
            let mut response = ApiError::from(refusal).into_response();
            if too_large {
                // The body is never read: the connection cannot carry another request.
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
    };
    // An allowed page may read every answer, refusals included.
    if let Some(origin) = origin {
        allow_origin(response.headers_mut(), origin);
    }
    response
}

/// The answer to an allowed origin's preflight: the API's methods and the one header a
/// client needs to set.
fn preflight(origin: &HeaderValue) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    allow_origin(headers, origin.clone());
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE_SECONDS),
    );
    response
}

fn allow_origin(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    // Caches must not hand one origin's answer to another.
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
            "application/json; foo=bar",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "application/json; charset=utf-16",
            "",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }

    #[test]
    fn origins_are_allowed_only_when_listed() {
        let guard = Guard::new(&["https://Wallet.example/".to_string(), "null".into()], 10);
        let with = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(header::ORIGIN, HeaderValue::from_str(v).unwrap());
            }
            guard.origin(&headers).map(|o| o.is_some())
        };
        assert_eq!(with(&[]), Ok(false));
        assert_eq!(with(&["https://wallet.example"]), Ok(true));
        assert!(with(&["https://evil.example"]).is_err());
        assert!(with(&["null"]).is_err(), "null is never allowed");
        assert!(with(&["https://wallet.example", "https://evil.example"]).is_err());
        let closed = Guard::new(&[], 10);
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://localhost"));
        assert!(closed.origin(&headers).is_err());
    }

    #[test]
    fn declared_lengths_over_the_limit_are_refused() {
        let guard = Guard::new(&[], 10);
        let with = |len: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from_str(len).unwrap());
            guard.content_length(&headers)
        };
        assert_eq!(with("10"), Ok(()));
        assert_eq!(
            with("11"),
            Err(GuardRefusal::TooLarge {
                declared: 11,
                limit: 10
            })
        );
        assert_eq!(guard.content_length(&HeaderMap::new()), Ok(()));
    }
}
