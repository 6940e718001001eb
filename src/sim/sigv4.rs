//! An independent AWS Signature Version 4 verifier.
//!
//! The client signs with the AWS SDK (`aws-sigv4`); this module checks those
//! signatures with a second, separate implementation built directly on
//! HMAC-SHA256, so that a bug in either side shows up as a mismatch instead
//! of being silently agreed on. It covers the two forms the project uses:
//! header authentication (`Authorization: AWS4-HMAC-SHA256 …`) for the EC2 and
//! EC2 Instance Connect APIs, and query authentication (presigned URLs) for
//! the EICE websocket.

use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, percent_encode};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Hex SHA-256 of the empty string: the payload hash of a presigned GET.
pub(crate) const EMPTY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// How far a header-signed request's `x-amz-date` may be from the server clock.
const MAX_CLOCK_SKEW_SECS: u64 = 15 * 60;

/// How far in the future a presigned URL's `X-Amz-Date` may be.
const PRESIGN_SKEW_SECS: u64 = 5 * 60;

/// SigV4 "unreserved" characters are the only ones left unencoded.
const SIGV4_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Path encoding keeps the segment separators.
const SIGV4_PATH_SET: &AsciiSet = &SIGV4_SET.remove(b'/');

/// A principal the verifier knows the secret of.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// When set, every request must carry exactly this token.
    pub session_token: Option<String>,
}

/// Why a signature was refused. The API layers map these onto each
/// service's own error codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AuthError {
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
    pub(crate) fn message(&self) -> String {
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
pub(crate) struct Expected<'a> {
    pub region: &'a str,
    pub service: &'a str,
    /// Seconds since the Unix epoch.
    pub now: u64,
}

/// The parsed `Credential=` value.
#[derive(Debug)]
struct Scope<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

impl<'a> Scope<'a> {
    fn parse(credential: &'a str) -> Result<Self, AuthError> {
        let parts: Vec<&str> = credential.split('/').collect();
        match parts.as_slice() {
            [akid, date, region, service, terminator] => {
                if *terminator != "aws4_request" {
                    return Err(AuthError::WrongScope(format!(
                        "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
                    )));
                }
                Ok(Scope {
                    access_key_id: akid,
                    date,
                    region,
                    service,
                })
            }
            _ => Err(AuthError::Malformed(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
            ))),
        }
    }

    fn text(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }

    /// Checks everything about the scope except the key itself.
    fn check(&self, amz_date: &str, expected: &Expected<'_>) -> Result<(), AuthError> {
        if !amz_date.starts_with(self.date) || self.date.len() != 8 {
            return Err(AuthError::WrongScope(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'",
                self.date,
                amz_date.get(..8).unwrap_or(amz_date)
            )));
        }
        if self.region != expected.region {
            return Err(AuthError::WrongScope(format!(
                "Credential should be scoped to a valid region, not '{}'. ",
                self.region
            )));
        }
        if self.service != expected.service {
            return Err(AuthError::WrongScope(format!(
                "Credential should be scoped to correct service: '{}'. ",
                expected.service
            )));
        }
        Ok(())
    }
}

fn find_identity<'i>(identities: &'i [Identity], akid: &str) -> Result<&'i Identity, AuthError> {
    identities
        .iter()
        .find(|i| i.access_key_id == akid)
        .ok_or(AuthError::UnknownKey)
}

fn check_token(identity: &Identity, presented: Option<&str>) -> Result<(), AuthError> {
    match (&identity.session_token, presented) {
        (None, None) => Ok(()),
        (Some(want), Some(got)) if want == got => Ok(()),
        _ => Err(AuthError::BadToken),
    }
}

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
    if signed_at.abs_diff(expected.now) > MAX_CLOCK_SKEW_SECS {
        return Err(AuthError::Expired(format!(
            "Signature expired: {amz_date} is now earlier or later than {} (15 minutes of clock skew allowed)",
            format_amz_date(expected.now)
        )));
    }

    let names: Vec<&str> = signed_headers.split(';').collect();
    if !names.contains(&"host") {
        return Err(AuthError::Malformed(
            "'Host' must be a signed header".to_string(),
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

/// Verifies a presigned (query-authenticated) request and returns the
/// access key id it was signed with.
///
/// `max_expires` caps `X-Amz-Expires`.
pub(crate) fn verify_presigned(
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

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn check_signature(
    identity: &Identity,
    scope: &Scope<'_>,
    amz_date: &str,
    canonical: &str,
    provided_hex: &str,
) -> Result<(), AuthError> {
    let provided = hex::decode(provided_hex).map_err(|_| AuthError::Mismatch)?;
    let key = signing_key(
        &identity.secret_access_key,
        scope.date,
        scope.region,
        scope.service,
    );
    let sts = string_to_sign(amz_date, &scope.text(), canonical);
    let mut mac = hmac(&key);
    mac.update(sts.as_bytes());
    // `verify_slice` compares in constant time.
    mac.verify_slice(&provided).map_err(|_| AuthError::Mismatch)
}

fn hmac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an
    // empty key rather than panicking to satisfy the lints.
    match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => <HmacSha256 as KeyInit>::new(&Default::default()),
    }
}

fn hmac_bytes(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = hmac(key);
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The SigV4 signing key for one day, region and service.
pub(crate) fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac_bytes(format!("AWS4{secret}").as_bytes(), date);
    let k_region = hmac_bytes(&k_date, region);
    let k_service = hmac_bytes(&k_region, service);
    hmac_bytes(&k_service, "aws4_request")
}

/// Hex signature of a string to sign.
#[cfg(test)]
pub(crate) fn sign(key: &[u8], string_to_sign: &str) -> String {
    hex::encode(hmac_bytes(key, string_to_sign))
}

/// The SigV4 string to sign.
pub(crate) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// The SigV4 canonical request.
pub(crate) fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    format!(
        "{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}"
    )
}

/// The canonical URI of a raw (still percent-encoded) request path.
///
/// Services other than S3 encode the path a second time, so `%` in the raw
/// path becomes `%25`. The path is not normalised: the clients in this
/// project only ever use `/` and `/openTunnel`.
pub(crate) fn canonical_uri(raw_path: &str) -> String {
    if raw_path.is_empty() {
        return "/".to_string();
    }
    percent_encode(raw_path.as_bytes(), SIGV4_PATH_SET).to_string()
}

/// Splits a raw query string into decoded `(name, value)` pairs.
pub(crate) fn decode_query(raw_query: &str) -> Vec<(String, String)> {
    raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode_str(k).decode_utf8_lossy().into_owned(),
                percent_decode_str(v).decode_utf8_lossy().into_owned(),
            )
        })
        .collect()
}

/// SigV4 URI encoding of one query component.
pub(crate) fn uri_encode(s: &str) -> String {
    percent_encode(s.as_bytes(), SIGV4_SET).to_string()
}

/// The canonical query string: every parameter re-encoded the SigV4 way and
/// sorted; for a presigned URL the signature itself is left out.
pub(crate) fn canonical_query(raw_query: &str, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = decode_query(raw_query)
        .into_iter()
        .filter(|(k, _)| !(presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| (uri_encode(&k), uri_encode(&v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Canonical headers for the signed header names (already lowercase):
/// values trimmed, inner runs of spaces collapsed, repeats joined by commas.
fn canonical_headers(headers: &HeaderMap, names: &[&str]) -> Result<String, AuthError> {
    let mut out = String::new();
    for name in names {
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|v| collapse_spaces(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        if values.is_empty() {
            return Err(AuthError::Malformed(format!(
                "Signed header '{name}' is not present in the request"
            )));
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    Ok(out)
}

fn collapse_spaces(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses `YYYYMMDDTHHMMSSZ` into seconds since the Unix epoch.
pub(crate) fn parse_amz_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + se).ok()
}

/// Formats seconds since the epoch as `YYYYMMDDTHHMMSSZ`.
pub(crate) fn format_amz_date(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// Formats seconds since the epoch as ISO 8601 with milliseconds, as EC2 does.
pub(crate) fn format_iso8601(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.000Z")
}

fn civil(secs: u64) -> (i64, i64, i64, u64, u64, u64) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

// Howard Hinnant's proleptic Gregorian calendar algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn example_identity() -> Identity {
        Identity {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    const VANILLA_SIG: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

    fn vanilla_headers(sig: &str) -> HeaderMap {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={sig}"
        );
        headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            ("authorization", &auth),
        ])
    }

    fn vanilla_expected() -> Expected<'static> {
        Expected {
            region: "us-east-1",
            service: "service",
            now: parse_amz_date("20150830T123600Z").unwrap(),
        }
    }

    #[test]
    fn get_vanilla_vector_computes_and_verifies() {
        // AWS SigV4 test suite, "get-vanilla".
        let canonical = canonical_request(
            "GET",
            &canonical_uri("/"),
            &canonical_query("", false),
            "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n",
            "host;x-amz-date",
            EMPTY_SHA256,
        );
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "service",
        );
        let sts = string_to_sign(
            "20150830T123600Z",
            "20150830/us-east-1/service/aws4_request",
            &canonical,
        );
        assert_eq!(sign(&key, &sts), VANILLA_SIG);

        let ids = [example_identity()];
        let got = verify_header_auth(
            "GET",
            "/",
            "",
            &vanilla_headers(VANILLA_SIG),
            b"",
            &ids,
            &vanilla_expected(),
        );
        assert_eq!(got, Ok("AKIDEXAMPLE".to_string()));
    }

    #[test]
    fn header_auth_rejections() {
        let ids = [example_identity()];
        let mut bad = VANILLA_SIG.to_string();
        bad.replace_range(0..1, "6");
        let r = verify_header_auth(
            "GET",
            "/",
            "",
            &vanilla_headers(&bad),
            b"",
            &ids,
            &vanilla_expected(),
        );
        assert_eq!(r, Err(AuthError::Mismatch));

        // Tampered request (a query string that was not signed).
        let r = verify_header_auth(
            "GET",
            "/",
            "a=b",
            &vanilla_headers(VANILLA_SIG),
            b"",
            &ids,
            &vanilla_expected(),
        );
        assert_eq!(r, Err(AuthError::Mismatch));

        // Wrong region in scope.
        let mut exp = vanilla_expected();
        exp.region = "eu-west-1";
        let r = verify_header_auth(
            "GET",
            "/",
            "",
            &vanilla_headers(VANILLA_SIG),
            b"",
            &ids,
            &exp,
        );
        assert!(matches!(r, Err(AuthError::WrongScope(_))));

        // Clock skew beyond 15 minutes.
        let mut exp = vanilla_expected();
        exp.now += 16 * 60;
        let r = verify_header_auth(
            "GET",
            "/",
            "",
            &vanilla_headers(VANILLA_SIG),
            b"",
            &ids,
            &exp,
        );
        assert!(matches!(r, Err(AuthError::Expired(_))));

        // Unknown key.
        let r = verify_header_auth(
            "GET",
            "/",
            "",
            &vanilla_headers(VANILLA_SIG),
            b"",
            &[],
            &vanilla_expected(),
        );
        assert_eq!(r, Err(AuthError::UnknownKey));

        // A token where none is expected.
        let mut h = vanilla_headers(VANILLA_SIG);
        h.insert("x-amz-security-token", http::HeaderValue::from_static("t"));
        let r = verify_header_auth("GET", "/", "", &h, b"", &ids, &vanilla_expected());
        assert_eq!(r, Err(AuthError::BadToken));

        // Declared payload hash that does not match the body.
        let mut h = vanilla_headers(VANILLA_SIG);
        h.insert(
            "x-amz-content-sha256",
            http::HeaderValue::from_static(EMPTY_SHA256),
        );
        let r = verify_header_auth("GET", "/", "", &h, b"x", &ids, &vanilla_expected());
        assert_eq!(r, Err(AuthError::BadPayloadHash));

        // No authorization at all.
        let r = verify_header_auth(
            "GET",
            "/",
            "",
            &headers(&[("host", "example.amazonaws.com")]),
            b"",
            &ids,
            &vanilla_expected(),
        );
        assert_eq!(r, Err(AuthError::Missing));
    }

    #[test]
    fn presigned_round_trip_and_rejections() {
        let id = Identity {
            access_key_id: "AKIDSESSION".into(),
            secret_access_key: "secret".into(),
            session_token: Some("tok+en/=".into()),
        };
        let ids = [id.clone()];
        let date = "20240102T030405Z";
        let now = parse_amz_date(date).unwrap();
        let exp = Expected {
            region: "us-east-1",
            service: "ec2-instance-connect",
            now,
        };
        let q = presign_query(
            &id,
            "us-east-1",
            "ec2-instance-connect",
            "localhost:4443",
            "/openTunnel",
            &[
                ("instanceConnectEndpointId", "eice-1"),
                ("remotePort", "22"),
            ],
            date,
            60,
        );
        let h = headers(&[("host", "localhost:4443")]);
        let ok = verify_presigned("GET", "/openTunnel", &q, &h, &ids, &exp, 3600);
        assert_eq!(ok, Ok("AKIDSESSION".to_string()));

        // Wrong host.
        let h2 = headers(&[("host", "localhost:4444")]);
        let r = verify_presigned("GET", "/openTunnel", &q, &h2, &ids, &exp, 3600);
        assert_eq!(r, Err(AuthError::Mismatch));

        // Tampered parameter.
        let t = q.replace("remotePort=22", "remotePort=23");
        let r = verify_presigned("GET", "/openTunnel", &t, &h, &ids, &exp, 3600);
        assert_eq!(r, Err(AuthError::Mismatch));

        // Expired.
        let mut late = exp;
        late.now += 61;
        let r = verify_presigned("GET", "/openTunnel", &q, &h, &ids, &late, 3600);
        assert_eq!(r, Err(AuthError::Expired("Request has expired".into())));

        // Token removed.
        let no_tok: String = q
            .split('&')
            .filter(|p| !p.starts_with("X-Amz-Security-Token="))
            .collect::<Vec<_>>()
            .join("&");
        let r = verify_presigned("GET", "/openTunnel", &no_tok, &h, &ids, &exp, 3600);
        assert_eq!(r, Err(AuthError::BadToken));

        // Too long an expiry.
        let long = presign_query(
            &id,
            "us-east-1",
            "ec2-instance-connect",
            "localhost:4443",
            "/openTunnel",
            &[],
            date,
            7200,
        );
        let r = verify_presigned("GET", "/openTunnel", &long, &h, &ids, &exp, 3600);
        assert!(matches!(r, Err(AuthError::Malformed(_))));
    }

    #[test]
    fn dates_round_trip() {
        let s = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(s, 1_440_938_160);
        assert_eq!(format_amz_date(s), "20150830T123600Z");
        assert_eq!(format_iso8601(s), "2015-08-30T12:36:00.000Z");
        assert_eq!(
            parse_amz_date("20240229T000000Z")
                .map(format_amz_date)
                .unwrap(),
            "20240229T000000Z"
        );
        assert!(parse_amz_date("2015-08-30T12:36").is_none());
    }

    #[test]
    fn canonical_query_sorts_and_encodes() {
        assert_eq!(
            canonical_query("b=2&a=x%20y&X-Amz-Signature=zz&c=%2F", true),
            "a=x%20y&b=2&c=%2F"
        );
        assert_eq!(
            canonical_query("Param2=value2&Param1=value1", false),
            "Param1=value1&Param2=value2"
        );
    }
}
