//! Header authentication: `Authorization: AWS4-HMAC-SHA256 …`, as the EC2
//! and EC2 Instance Connect APIs are called.

use http::HeaderMap;
use sha2::{Digest, Sha256};

use super::canonical::{canonical_headers, canonical_query, canonical_request, canonical_uri};
use super::credential::{Scope, check_token, find_identity};
use super::date::{format_amz_date, parse_amz_date};
use super::signing::check_signature;
use super::{ALGORITHM, AuthError, Expected, Identity};

/// How far a header-signed request's `x-amz-date` may be from the server
/// clock: SigV4 allows 5 minutes either way.
pub(crate) const MAX_CLOCK_SKEW_SECS: u64 = 5 * 60;

/// Verifies a request signed in its `Authorization` header.
///
/// `raw_path` and `raw_query` are the request target exactly as received.
pub(crate) fn verify_header_auth(
    method: &str,
    raw_path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    body: &[u8],
    identities: &[Identity],
    expected: &Expected<'_>,
) -> Result<String, AuthError> {
    let auth = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?
        .to_str()
        .map_err(|_| AuthError::Malformed("Authorization header is not ASCII".into()))?;
    let rest = auth
        .strip_prefix(ALGORITHM)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| {
            AuthError::Malformed(format!(
                "Authorization header requires the {ALGORITHM} algorithm"
            ))
        })?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        match part.split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {
                return Err(AuthError::Malformed(format!(
                    "Authorization header has an unexpected element '{part}'"
                )));
            }
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(AuthError::Malformed(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'".into(),
        ));
    };
    let scope = Scope::parse(credential)?;
    let identity = find_identity(identities, scope.access_key_id)?;
    let token = header_str(headers, "x-amz-security-token");
    check_token(identity, token)?;

    let amz_date = header_str(headers, "x-amz-date").ok_or_else(|| {
        AuthError::Malformed("Authorization header requires existence of 'X-Amz-Date'".into())
    })?;
    scope.check(amz_date, expected)?;
    let signed_at = parse_amz_date(amz_date)
        .ok_or_else(|| AuthError::Malformed(format!("Invalid X-Amz-Date '{amz_date}'")))?;
    check_window(amz_date, signed_at, expected.now)?;

    let names: Vec<&str> = signed_headers.split(';').collect();
    if !names.contains(&"host") {
        return Err(AuthError::Malformed(
            "'Host' must be a signed header".to_string(),
        ));
    }
    if header_str(headers, "x-amz-date").is_some() && !names.contains(&"x-amz-date") {
        return Err(AuthError::Malformed(
            "'X-Amz-Date' must be a signed header".to_string(),
        ));
    }
    let body_hash = hex::encode(Sha256::digest(body));
    let payload_hash = match header_str(headers, "x-amz-content-sha256") {
        Some(declared) if declared != body_hash => return Err(AuthError::BadPayloadHash),
        _ => body_hash,
    };
    let canonical = canonical_request(
        method,
        &canonical_uri(raw_path),
        &canonical_query(raw_query, false),
        &canonical_headers(headers, &names)?,
        signed_headers,
        &payload_hash,
    );
    check_signature(identity, &scope, amz_date, &canonical, signature)?;
    Ok(identity.access_key_id.clone())
}

/// Refuses a signing time more than [`MAX_CLOCK_SKEW_SECS`] from `now`, in
/// the words the JSON services use (EC2 answers its own `RequestExpired`).
fn check_window(amz_date: &str, signed_at: u64, now: u64) -> Result<(), AuthError> {
    let minutes = MAX_CLOCK_SKEW_SECS / 60;
    if signed_at + MAX_CLOCK_SKEW_SECS < now {
        return Err(AuthError::Expired(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - {minutes} min.)",
            format_amz_date(now - MAX_CLOCK_SKEW_SECS),
            format_amz_date(now)
        )));
    }
    if signed_at > now + MAX_CLOCK_SKEW_SECS {
        return Err(AuthError::Expired(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + {minutes} min.)",
            format_amz_date(now + MAX_CLOCK_SKEW_SECS),
            format_amz_date(now)
        )));
    }
    Ok(())
}

/// A header's value, if present and ASCII.
fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
