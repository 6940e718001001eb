//! The EC2 Instance Connect JSON API (awsJson1_1): `SendSSHPublicKey`, with
//! the service's own checks on the OS user and the public key.

use super::response::{Answer, JSON, json_error};
use super::{AuthError, verify};
use crate::Shared;

/// Answers one Instance Connect operation (`op` is the `X-Amz-Target`
/// without its service prefix).
pub(super) fn handle(
    parts: &http::request::Parts,
    body: &[u8],
    op: &str,
    shared: &Shared,
    request_id: &str,
) -> Answer {
    let region = shared.state().world.region.clone();
    if let Err(e) = verify(parts, body, shared, &region, "ec2-instance-connect") {
        let code = match &e {
            AuthError::Missing => "MissingAuthenticationTokenException",
            AuthError::Malformed(_) => "IncompleteSignatureException",
            AuthError::UnknownKey | AuthError::BadToken => "UnrecognizedClientException",
            AuthError::Expired(_)
            | AuthError::BadPayloadHash
            | AuthError::WrongScope(_)
            | AuthError::Mismatch => "InvalidSignatureException",
        };
        return json_error(400, code, &e.message());
    }
    if let Some(f) = shared.take_failure(op) {
        return json_error(f.status, &f.code, &f.message);
    }
    match op {
        "SendSSHPublicKey" => send_ssh_public_key(body, shared, request_id),
        other => json_error(
            400,
            "UnknownOperationException",
            &format!("Operation {other} is not supported by the simulator"),
        ),
    }
}

fn send_ssh_public_key(body: &[u8], shared: &Shared, request_id: &str) -> Answer {
    let invalid = |m: &str| json_error(400, "InvalidArgsException", m);
    let Ok(serde_json::Value::Object(req)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return json_error(
            400,
            "SerializationException",
            "Request body is not a JSON object",
        );
    };
    let field = |name: &str| req.get(name).and_then(serde_json::Value::as_str);
    let (Some(instance_id), Some(user), Some(key)) = (
        field("InstanceId"),
        field("InstanceOSUser"),
        field("SSHPublicKey"),
    ) else {
        return invalid("InstanceId, InstanceOSUser and SSHPublicKey are required");
    };
    if !valid_os_user(user) {
        return invalid(&format!("Invalid InstanceOSUser: {user}"));
    }
    if let Err(m) = validate_public_key(key) {
        return invalid(&m);
    }
    let (instance, lifetime) = {
        let st = shared.state();
        (st.world.instance(instance_id).cloned(), st.key_lifetime)
    };
    let Some(instance) = instance else {
        return json_error(
            400,
            "EC2InstanceNotFoundException",
            &format!("Instance {instance_id} not found"),
        );
    };
    if let Some(az) = field("AvailabilityZone")
        && az != instance.availability_zone
    {
        return invalid(&format!(
            "Instance {instance_id} is not in availability zone {az}"
        ));
    }
    if instance.state != "running" {
        return json_error(
            400,
            "EC2InstanceStateInvalidException",
            &format!(
                "Instance {instance_id} is not in a valid state for this operation (state: {})",
                instance.state
            ),
        );
    }
    // An expiring key is accepted and forgotten: by the time SSH asks, its
    // 60 s have passed.
    let pushed = match shared.take_expiring_key() {
        true => Ok(()),
        false => shared.keys.push(instance_id, user, key.trim(), lifetime),
    };
    if let Err(e) = pushed {
        return json_error(500, "ServiceException", &format!("storing the key: {e}"));
    }
    Answer {
        status: 200,
        content_type: JSON,
        body: serde_json::json!({ "RequestId": request_id, "Success": true }).to_string(),
        // The key's type shows which one a client pushed.
        detail: format!(
            "{user}@{instance_id} {}",
            key.split_whitespace().next().unwrap_or_default()
        ),
        error_type: None,
    }
}

/// The service's pattern for `InstanceOSUser`:
/// `^[A-Za-z_][A-Za-z0-9\@\._-]{0,30}[A-Za-z0-9\$_-]?$`.
pub(super) fn valid_os_user(user: &str) -> bool {
    let b = user.as_bytes();
    let Some((first, rest)) = b.split_first() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || *first == b'_') || b.len() > 32 {
        return false;
    }
    let middle = |c: &u8| c.is_ascii_alphanumeric() || b"@._-".contains(c);
    let last = |c: &u8| c.is_ascii_alphanumeric() || b"$_-".contains(c);
    match rest.split_last() {
        None => true,
        // `{0,30}` middle characters: a 32nd one must be a last one.
        Some((l, mid)) => mid.iter().all(middle) && (last(l) || (middle(l) && b.len() < 32)),
    }
}

/// Accepts what the service accepts: one OpenSSH public key line of type
/// ed25519, ecdsa, or RSA with at least 2048 bits.
pub(crate) fn validate_public_key(key: &str) -> Result<(), String> {
    let key = key.trim();
    if key.len() < 80 || key.len() > 4096 {
        return Err("SSHPublicKey length must be between 80 and 4096".to_string());
    }
    if key.contains('\n') {
        return Err("SSHPublicKey must be a single line".to_string());
    }
    let parsed = russh::keys::PublicKey::from_openssh(key)
        .map_err(|e| format!("SSHPublicKey is not a valid OpenSSH public key: {e}"))?;
    let data = parsed.key_data();
    if data.is_ed25519() || data.is_ecdsa() {
        return Ok(());
    }
    if let Some(rsa) = data.rsa() {
        return if rsa.key_size() >= 2048 {
            Ok(())
        } else {
            Err(format!(
                "RSA keys must be at least 2048 bits, this one has {}",
                rsa.key_size()
            ))
        };
    }
    Err(format!(
        "Unsupported key type {}: use ed25519, ecdsa or RSA (2048 bits or more)",
        parsed.algorithm()
    ))
}
