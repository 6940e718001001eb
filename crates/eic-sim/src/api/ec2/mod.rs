//! The EC2 Query API: signature check, injected failures and the action
//! dispatch; the actions themselves live in [`instances`], [`network`],
//! [`interfaces`] and [`endpoints`], and the writes in [`security_writes`]
//! and [`endpoint_writes`].
//!
//! Element names follow the `aws-sdk-ec2` deserializers: lower-camel-case
//! names, and lists as `<…Set><item>…</item></…Set>`.

mod endpoint_writes;
mod endpoints;
mod instances;
mod interfaces;
mod network;
mod security_writes;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod write_tests;

use super::query::{decode_params, param};
use super::response::{Answer, ec2_error};
use super::{AuthError, verify};
use crate::Shared;
use endpoints::describe_endpoints;
use instances::{describe_instances, get_console_output};
use network::{describe_security_group_rules, describe_subnets, describe_vpcs};

/// The actions that change the world: answered under the state lock, so the
/// next request and the relay see the change.
fn write_action(
    action: &str,
    shared: &Shared,
    params: &[(String, String)],
    request_id: &str,
) -> Option<Answer> {
    let world = &mut shared.state().world;
    Some(match action {
        "AuthorizeSecurityGroupIngress" => {
            security_writes::authorize(world, params, request_id, false)
        }
        "AuthorizeSecurityGroupEgress" => {
            security_writes::authorize(world, params, request_id, true)
        }
        "RevokeSecurityGroupIngress" => security_writes::revoke(world, params, request_id, false),
        "RevokeSecurityGroupEgress" => security_writes::revoke(world, params, request_id, true),
        "ModifyInstanceConnectEndpoint" => {
            endpoint_writes::modify_endpoint(world, params, request_id)
        }
        _ => return None,
    })
}

/// The XML namespace of EC2 answers.
const EC2_NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";
/// The account id every resource belongs to.
const OWNER_ID: &str = "123456789012";

/// Answers one Query request: the operation name for the log, and the answer.
pub(super) fn handle(
    parts: &http::request::Parts,
    body: &[u8],
    shared: &Shared,
    request_id: &str,
) -> (String, Answer) {
    let params = decode_params(parts, body);
    let action = param(&params, "Action").unwrap_or("").to_string();
    let op = if action.is_empty() {
        "Unknown".to_string()
    } else {
        action.clone()
    };
    let region = shared.state().world.region.clone();

    if let Err(e) = verify(parts, body, shared, &region, "ec2") {
        let (status, code) = match &e {
            AuthError::Missing => (401, "MissingAuthenticationToken"),
            AuthError::Malformed(_) => (400, "IncompleteSignature"),
            AuthError::UnknownKey | AuthError::BadToken => (401, "AuthFailure"),
            AuthError::Expired(_) => (400, "RequestExpired"),
            AuthError::BadPayloadHash => (400, "XAmzContentSHA256Mismatch"),
            AuthError::WrongScope(_) | AuthError::Mismatch => (403, "SignatureDoesNotMatch"),
        };
        let message = match &e {
            AuthError::UnknownKey | AuthError::BadToken => {
                "AWS was not able to validate the provided access credentials".to_string()
            }
            // EC2's own words for a time outside the window, either way.
            AuthError::Expired(_) => "Request has expired.".to_string(),
            other => other.message(),
        };
        return (op, ec2_error(status, code, &message, request_id));
    }
    if let Some(f) = shared.take_failure(&op) {
        return (op, ec2_error(f.status, &f.code, &f.message, request_id));
    }
    if let Some(answer) = write_action(&action, shared, &params, request_id) {
        return (op, answer);
    }
    let world = shared.state().world.clone();
    let answer = match action.as_str() {
        "DescribeInstances" => describe_instances(&world, &params, request_id),
        "GetConsoleOutput" => get_console_output(&world, &params, request_id),
        "DescribeSecurityGroupRules" => describe_security_group_rules(&world, &params, request_id),
        "DescribeSubnets" => describe_subnets(&world, &params, request_id),
        "DescribeVpcs" => describe_vpcs(&world, &params, request_id),
        "DescribeNetworkInterfaces" => {
            interfaces::describe_network_interfaces(&world, &params, request_id)
        }
        "DescribeInstanceConnectEndpoints" => describe_endpoints(&world, &params, request_id),
        "" => ec2_error(
            400,
            "MissingAction",
            "The request must contain the parameter Action",
            request_id,
        ),
        other => ec2_error(
            400,
            "InvalidAction",
            &format!("The action {other} is not valid for this web service."),
            request_id,
        ),
    };
    if action == "DescribeInstanceConnectEndpoints" {
        endpoint_writes::settle_updates(&mut shared.state().world);
    }
    (op, answer)
}

/// 17 hex digits derived from a string, for stable made-up ids.
fn short_hash(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(s.as_bytes()))[..17].to_string()
}
