//! Query authentication: presigned URLs, as the EICE websocket is opened.

use http::HeaderMap;

use super::canonical::{
    canonical_headers, canonical_query, canonical_request, canonical_uri, decode_query,
};
use super::credential::{Scope, check_token, find_identity};
use super::date::parse_amz_date;
use super::signing::check_signature;
use super::{ALGORITHM, AuthError, EMPTY_SHA256, Expected, Identity};
#[cfg(test)]
use super::{
    canonical::uri_encode,
    signing::{sign, signing_key, string_to_sign},
};

/// How far in the future a presigned URL's `X-Amz-Date` may be.
const PRESIGN_SKEW_SECS: u64 = 5 * 60;

/// Verifies a presigned (query-authenticated) request and returns the
/// access key id it was signed with.
///
/// `max_expires` caps `X-Amz-Expires`.
pub fn verify_presigned(
    method: &str,
    raw_path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    identities: &[Identity],
    expected: &Expected<'_>,
    max_expires: u64,
) -> Result<String, AuthError> {
    let params = decode_query(raw_query);
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if get("X-Amz-Signature").is_none() && get("X-Amz-Credential").is_none() {
        return Err(AuthError::Missing);
    }
    let required = |name: &str| {
        get(name).ok_or_else(|| {
            AuthError::Malformed(format!(
                "Query-string authentication requires the {name} parameter"
            ))
        })
    };
    let algorithm = required("X-Amz-Algorithm")?;
    if algorithm != ALGORITHM {
        return Err(AuthError::Malformed(format!(
            "X-Amz-Algorithm only supports \"{ALGORITHM}\""
        )));
    }
    let credential = required("X-Amz-Credential")?;
    let amz_date = required("X-Amz-Date")?;
    let expires = required("X-Amz-Expires")?;
    let signed_headers = required("X-Amz-SignedHeaders")?;
    let signature = required("X-Amz-Signature")?;

    let scope = Scope::parse(credential)?;
    let identity = find_identity(identities, scope.access_key_id)?;
    check_token(identity, get("X-Amz-Security-Token"))?;
    scope.check(amz_date, expected)?;

    let signed_at = parse_amz_date(amz_date)
        .ok_or_else(|| AuthError::Malformed(format!("Invalid X-Amz-Date '{amz_date}'")))?;
    let expires: u64 = expires
        .parse()
        .map_err(|_| AuthError::Malformed(format!("X-Amz-Expires '{expires}' is not a number")))?;
    if expires > max_expires {
        return Err(AuthError::Malformed(format!(
            "X-Amz-Expires must be less than {max_expires} seconds"
        )));
    }
    if expected.now + PRESIGN_SKEW_SECS < signed_at {
        return Err(AuthError::Expired(
            "Request is not yet valid: X-Amz-Date is in the future".to_string(),
        ));
    }
    if expected.now > signed_at + expires {
        return Err(AuthError::Expired("Request has expired".to_string()));
    }

    let names: Vec<&str> = signed_headers.split(';').collect();
    if !names.contains(&"host") {
        return Err(AuthError::Malformed(
            "'Host' must be a signed header".to_string(),
        ));
    }
    let canonical = canonical_request(
        method,
        &canonical_uri(raw_path),
        &canonical_query(raw_query, true),
        &canonical_headers(headers, &names)?,
        signed_headers,
        EMPTY_SHA256,
    );
    check_signature(identity, &scope, amz_date, &canonical, signature)?;
    Ok(identity.access_key_id.clone())
}

/// Builds a presigned URL's query string the way the service's client does.
/// Only tests use it: the point of this module is to check someone else's
/// signatures, but the checks need correctly signed input to start from.
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn presign_query(
    identity: &Identity,
    region: &str,
    service: &str,
    host: &str,
    path: &str,
    params: &[(&str, &str)],
    amz_date: &str,
    expires: u64,
) -> String {
    let date = &amz_date[..8];
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let credential = format!("{}/{scope}", identity.access_key_id);
    let expires = expires.to_string();
    let mut all: Vec<(&str, &str)> = params.to_vec();
    all.push(("X-Amz-Algorithm", ALGORITHM));
    all.push(("X-Amz-Credential", &credential));
    all.push(("X-Amz-Date", amz_date));
    all.push(("X-Amz-Expires", &expires));
    all.push(("X-Amz-SignedHeaders", "host"));
    if let Some(t) = &identity.session_token {
        all.push(("X-Amz-Security-Token", t));
    }
    let query = all
        .iter()
        .map(|(k, v)| format!("{}={}", uri_encode(k), uri_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let canonical = canonical_request(
        "GET",
        &canonical_uri(path),
        &canonical_query(&query, true),
        &format!("host:{host}\n"),
        "host",
        EMPTY_SHA256,
    );
    let key = signing_key(&identity.secret_access_key, date, region, service);
    let sig = sign(&key, &string_to_sign(amz_date, &scope, &canonical));
    format!("{query}&X-Amz-Signature={sig}")
}
