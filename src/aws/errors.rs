//! The service's errors, kept whole: its code and message, never "service error".

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};

use aws_credential_types::provider::error::CredentialsError;

use crate::aws::credentials::CredentialsFailure;

use crate::error::Error;
use crate::text::remote_text;

/// Keep the service's own code and message; never reduce them to "service error".
pub fn api_error<E, R>(op: &'static str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match err.as_service_error() {
        // The service's words are shown to the user: printable, and bounded.
        Some(se) => Error::Api {
            op,
            code: remote_text(se.code().unwrap_or("Unknown")),
            message: remote_text(
                &se.message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| se.to_string()),
            ),
        },
        None => {
            if let Some(proxy) = find_source::<crate::net::proxy::ProxyError>(&err) {
                return Error::Proxy(proxy.clone());
            }
            if let Some(failure) = find_source::<CredentialsFailure>(&err) {
                return failure.clone().into();
            }
            let detail = crate::error::chain(&err);
            Error::Api {
                op,
                code: if is_credentials_error(&err) {
                    "CredentialsError".into()
                } else {
                    "RequestFailed".into()
                },
                message: detail,
            }
        }
    }
}

/// The first error of type `T` in `err`'s chain of sources.
fn find_source<'a, T: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        source = e.source();
    }
    None
}

/// Whether the request failed because no credentials could be resolved:
/// some error in its chain of sources is a `CredentialsError`.
fn is_credentials_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if e.downcast_ref::<CredentialsError>().is_some() {
            return true;
        }
        source = e.source();
    }
    false
}
