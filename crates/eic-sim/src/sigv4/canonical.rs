//! The SigV4 canonical request and its parts: URI, query string and headers.

use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, percent_encode};

use super::AuthError;

/// SigV4 "unreserved" characters are the only ones left unencoded.
const SIGV4_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Path encoding keeps the segment separators.
const SIGV4_PATH_SET: &AsciiSet = &SIGV4_SET.remove(b'/');

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
pub(super) fn canonical_headers(headers: &HeaderMap, names: &[&str]) -> Result<String, AuthError> {
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
