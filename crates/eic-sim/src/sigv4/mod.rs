//! An independent AWS Signature Version 4 verifier.
//!
//! The client signs with the AWS SDK (`aws-sigv4`); this module checks those
//! signatures with a second, separate implementation built directly on
//! HMAC-SHA256, so that a bug in either side shows up as a mismatch instead
//! of being silently agreed on. It covers the two forms the project uses:
//! header authentication (`Authorization: AWS4-HMAC-SHA256 …`) for the EC2 and
//! EC2 Instance Connect APIs, and query authentication (presigned URLs) for
//! the EICE websocket.
//!
//! `header_auth` and `presigned` are the two verifiers; both build a
//! `canonical` request, check the `credential` scope and principal, and
//! compare signatures computed in `signing`. `date` handles the
//! `X-Amz-Date` format.

mod canonical;
mod credential;
mod date;
mod header_auth;
mod presigned;
mod signing;
#[cfg(test)]
mod tests;

pub(crate) use canonical::decode_query;
pub(crate) use date::format_iso8601;
pub(crate) use header_auth::verify_header_auth;
pub use presigned::verify_presigned;
#[cfg(test)]
pub(crate) use {date::format_amz_date, presigned::presign_query};

/// Hex SHA-256 of the empty string: the payload hash of a presigned GET.
pub(crate) const EMPTY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// A principal the verifier knows the secret of.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The access key ID.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// When set, every request must carry exactly this token.
    pub session_token: Option<String>,
}

/// Why a signature was refused. The API layers map these onto each
/// service's own error codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// No authentication information at all.
    Missing,
    /// Authentication information that cannot be parsed.
    Malformed(String),
    /// The access key id is not known.
    UnknownKey,
    /// The session token is missing, unexpected or wrong.
    BadToken,
    /// The credential scope names the wrong region, service, date or terminator.
    WrongScope(String),
    /// The request is outside its validity window.
    Expired(String),
    /// The declared payload hash does not match the body.
    BadPayloadHash,
    /// The signature does not match.
    Mismatch,
}

impl AuthError {
    /// A human-readable description.
    pub fn message(&self) -> String {
        match self {
            AuthError::Missing => "Request is missing Authentication Token".to_string(),
            AuthError::Malformed(m) => m.clone(),
            AuthError::UnknownKey => {
                "The security token included in the request is invalid.".to_string()
            }
            AuthError::BadToken => {
                "The security token included in the request is invalid.".to_string()
            }
            AuthError::WrongScope(m) => m.clone(),
            AuthError::Expired(m) => m.clone(),
            AuthError::BadPayloadHash => {
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .to_string()
            }
            AuthError::Mismatch => "The request signature we calculated does not match the \
                                    signature you provided. Check your AWS Secret Access Key \
                                    and signing method."
                .to_string(),
        }
    }
}

/// What a request must be scoped to, and the server's clock.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    /// The region of the credential scope.
    pub region: &'a str,
    /// The signing name of the credential scope.
    pub service: &'a str,
    /// Seconds since the Unix epoch.
    pub now: u64,
}
