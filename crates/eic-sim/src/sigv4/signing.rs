//! HMAC-SHA256 signing: the derived signing key, the string to sign, and the
//! constant-time comparison with the signature a request carries.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::credential::Scope;
use super::{ALGORITHM, AuthError, Identity};

type HmacSha256 = Hmac<Sha256>;

/// Checks `provided_hex` against the signature of `canonical` under the
/// identity's key for `scope`.
pub(super) fn check_signature(
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
