//! Which KMS failures are worth another attempt. The SDK's own retries are off, so that
//! [`crate::net::with_retries`] retries and counts them as every network driver does.

use crate::net::{Failure, FailureClass};
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use signatory_signer::vault::{error_chain, VaultError};

/// Whether the credential chain failed, and if so whether for good: no credentials
/// anywhere, or a provider misconfigured, is not cured by a retry; a provider that timed
/// out or failed (instance metadata busy, STS down) may be.
fn credentials_failure(error: &(dyn std::error::Error + 'static)) -> Option<bool> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(credentials) = e.downcast_ref::<CredentialsError>() {
            return Some(matches!(
                credentials,
                CredentialsError::CredentialsNotLoaded(_)
                    | CredentialsError::InvalidConfiguration(_)
            ));
        }
        cause = e.source();
    }
    None
}

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
            match credentials_failure(&error) {
                Some(true) => {
                    let message = format!("no usable AWS credentials: {}", error_chain(&error));
                    return Failure::refused(
                        VaultError::backend(vault, false, format!("{operation}: {message}"))
                            .caused_by(error),
                    );
                }
                Some(false) => {
                    let message = format!("AWS credentials: {}", error_chain(&error));
                    return transient(class, message, error);
                }
                None => {}
            }
            let message = format!("cannot reach KMS: {}", error_chain(&error));
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
            let message = format!("unreadable answer from KMS: {}", error_chain(&error));
            transient(FailureClass::Server, message, error)
        }
        // The request could not be built or signed (no credentials, no region): ours.
        _ => {
            let message = error_chain(&error);
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

    #[test]
    fn missing_credentials_are_not_retried_but_a_busy_provider_is() {
        use aws_sdk_kms::error::ConnectorError;
        let missing = ConnectorError::other(
            Box::new(CredentialsError::not_loaded(
                "no credentials found in chain",
            )),
            None,
        );
        let failure = classify(
            "kms",
            "listing keys",
            SdkError::<SignError>::dispatch_failure(missing),
        );
        assert_eq!(failure.class, FailureClass::Refused);
        assert!(!failure.error.is_transient());
        assert!(
            failure
                .error
                .to_string()
                .contains("no usable AWS credentials"),
            "{}",
            failure.error
        );
        let busy = ConnectorError::other(
            Box::new(CredentialsError::provider_timed_out(
                std::time::Duration::from_secs(1),
            )),
            None,
        );
        let failure = classify(
            "kms",
            "listing keys",
            SdkError::<SignError>::dispatch_failure(busy),
        );
        assert!(failure.error.is_transient(), "{}", failure.error);
    }
}
