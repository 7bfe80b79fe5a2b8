//! Which KMS failures are worth another attempt. The SDK's own retries are off, so that
//! [`crate::net::with_retries`] retries and counts them as every network driver does.

use crate::net::{Failure, FailureClass};
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use signatory_signer::vault::VaultError;

/// The retry class of a KMS error code that says "try again", whatever its HTTP status
/// (KMS answers `ThrottlingException` with 400).
fn transient_code(code: &str) -> Option<FailureClass> {
    match code {
        "ThrottlingException" | "TooManyRequestsException" | "RequestLimitExceeded" => {
            Some(FailureClass::Throttled)
        }
        "DependencyTimeoutException" | "RequestTimeout" | "RequestTimeoutException" => {
            Some(FailureClass::Timeout)
        }
        // The key's backing store (or KMS itself) is momentarily unavailable.
        "KMSInternalException"
        | "KeyUnavailableException"
        | "ServiceUnavailableException"
        | "InternalFailure"
        | "ServiceUnavailable" => Some(FailureClass::Server),
        _ => None,
    }
}

/// Classify an SDK error of `operation`. Messages carry KMS's error code and message
/// (key ids and ARNs, never credentials) and the SDK's error chain.
pub(crate) fn classify<E>(vault: &str, operation: &str, error: SdkError<E>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let transient = |class: FailureClass, message: String, error: SdkError<E>| {
        Failure::transient(
            class,
            VaultError::backend(vault, true, format!("{operation}: {message}")).caused_by(error),
        )
    };
    match &error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("unknown error").to_owned();
            let detail = match service.err().message() {
                Some(message) if !message.is_empty() => format!("{code}: {message}"),
                _ => code.clone(),
            };
            match transient_code(&code) {
                Some(class) => transient(class, detail, error),
                None => {
                    let mut failure = Failure::from_status(vault, operation, status, &detail);
                    failure.error = failure.error.caused_by(error);
                    failure
                }
            }
        }
        SdkError::TimeoutError(_) => transient(
            FailureClass::Timeout,
            "no answer from KMS in time".to_owned(),
            error,
        ),
        SdkError::DispatchFailure(dispatch) => {
            let class = if dispatch.is_timeout() {
                FailureClass::Timeout
            } else {
                FailureClass::Connection
            };
            let message = format!("cannot reach KMS: {}", DisplayErrorContext(&error));
            if dispatch.is_user() {
                // Our side is at fault (a malformed endpoint, no credentials): retrying
                // does not help.
                return Failure::refused(
                    VaultError::backend(vault, false, format!("{operation}: {message}"))
                        .caused_by(error),
                );
            }
            transient(class, message, error)
        }
        // A response that could not be read (cut short, not KMS's format).
        SdkError::ResponseError(_) => {
            let message = format!(
                "unreadable answer from KMS: {}",
                DisplayErrorContext(&error)
            );
            transient(FailureClass::Server, message, error)
        }
        // The request could not be built or signed (no credentials, no region): ours.
        _ => {
            let message = DisplayErrorContext(&error).to_string();
            Failure::refused(
                VaultError::backend(vault, false, format!("{operation}: {message}"))
                    .caused_by(error),
            )
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use aws_sdk_kms::operation::sign::SignError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(status: u16, code: &str) -> SdkError<SignError> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("the service's message")
            .build();
        let raw = Response::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        SdkError::service_error(SignError::generic(meta), raw)
    }

    #[test]
    fn throttling_and_internal_errors_are_retried_whatever_their_status() {
        for (status, code, class) in [
            (400, "ThrottlingException", FailureClass::Throttled),
            (500, "KMSInternalException", FailureClass::Server),
            (503, "DependencyTimeoutException", FailureClass::Timeout),
            (500, "KeyUnavailableException", FailureClass::Server),
            (503, "SomethingNew", FailureClass::Server),
            (429, "SomethingNew", FailureClass::Throttled),
        ] {
            let failure = classify("kms", "signing", service_error(status, code));
            assert_eq!(failure.class, class, "{code}");
            assert!(failure.error.is_transient(), "{code}");
            assert!(
                failure.error.to_string().contains(code),
                "{}",
                failure.error
            );
        }
    }

    #[test]
    fn refusals_are_permanent_and_never_retried() {
        for code in [
            "AccessDeniedException",
            "NotFoundException",
            "DisabledException",
            "KMSInvalidStateException",
            "InvalidKeyUsageException",
            "ValidationException",
            "LimitExceededException",
        ] {
            let failure = classify("kms", "signing", service_error(400, code));
            assert_eq!(failure.class, FailureClass::Refused, "{code}");
            assert!(!failure.error.is_transient(), "{code}");
        }
    }

    #[test]
    fn timeouts_and_connection_failures_are_transient() {
        let timeout: SdkError<SignError> = SdkError::timeout_error("operation timed out");
        let failure = classify("kms", "signing", timeout);
        assert_eq!(failure.class, FailureClass::Timeout);
        assert!(failure.error.is_transient());
        let io = aws_sdk_kms::error::ConnectorError::io("connection refused".into());
        let failure = classify(
            "kms",
            "signing",
            SdkError::<SignError>::dispatch_failure(io),
        );
        assert_eq!(failure.class, FailureClass::Connection);
        assert!(failure.error.is_transient());
        let user = aws_sdk_kms::error::ConnectorError::user("bad endpoint".into());
        let failure = classify(
            "kms",
            "signing",
            SdkError::<SignError>::dispatch_failure(user),
        );
        assert_eq!(failure.class, FailureClass::Refused);
        let construction: SdkError<SignError> = SdkError::construction_failure("no credentials");
        let failure = classify("kms", "signing", construction);
        assert_eq!(failure.class, FailureClass::Refused);
        assert!(!failure.error.is_transient());
    }
}
