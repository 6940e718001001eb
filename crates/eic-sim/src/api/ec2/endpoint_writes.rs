//! `ModifyInstanceConnectEndpoint`: Preserve Client IP, security groups and
//! the IP address type, applied to the world at once. The endpoint reports
//! `update-in-progress` until it has been described once, then
//! `update-complete`, so a client that waits for the update sees both; it
//! stays usable for tunnels throughout, as AWS's does.

use super::super::query::{is_hex_id, list, param};
use super::super::response::{Answer, XML, ec2_error};
use super::EC2_NS;
use crate::World;

/// `ModifyInstanceConnectEndpoint`.
pub(crate) fn modify_endpoint(
    world: &mut World,
    params: &[(String, String)],
    request_id: &str,
) -> Answer {
    let bad = |code: &str, msg: &str| ec2_error(400, code, msg, request_id);
    let Some(id) = param(params, "InstanceConnectEndpointId") else {
        return bad(
            "MissingParameter",
            "The request must contain the parameter InstanceConnectEndpointId",
        );
    };
    if !is_hex_id(id, "eice-") {
        return bad(
            "InvalidInstanceConnectEndpointId.Malformed",
            &format!("Invalid id: \"{id}\""),
        );
    }
    let flag = |name: &str| -> Result<Option<bool>, Answer> {
        match param(params, name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(v) => Err(bad(
                "InvalidParameterValue",
                &format!("Invalid value '{v}' for {name}"),
            )),
        }
    };
    let pci = match flag("PreserveClientIp") {
        Ok(v) => v,
        Err(a) => return a,
    };
    let kind = param(params, "IpAddressType").map(str::to_string);
    if let Some(k) = &kind
        && !["ipv4", "dualstack", "ipv6"].contains(&k.as_str())
    {
        return bad(
            "InvalidParameterValue",
            &format!("Invalid value '{k}' for IpAddressType"),
        );
    }
    let groups = list(params, "SecurityGroupId");
    if let Some(missing) = groups
        .iter()
        .find(|g| !world.security_groups.iter().any(|sg| &sg.id == *g))
    {
        return bad(
            "InvalidGroup.NotFound",
            &format!("The security group '{missing}' does not exist"),
        );
    }
    let Some(endpoint) = world.endpoints.iter_mut().find(|e| e.id == id) else {
        return bad(
            "InvalidInstanceConnectEndpointId.NotFound",
            &format!("The instanceConnectEndpoint ID '{id}' does not exist"),
        );
    };
    if !matches!(
        endpoint.state.as_str(),
        "create-complete" | "update-complete" | "update-failed"
    ) {
        return bad(
            "IncorrectState",
            &format!(
                "The instance connect endpoint '{id}' is in state {} and cannot be modified",
                endpoint.state
            ),
        );
    }
    if pci.is_none() && kind.is_none() && groups.is_empty() {
        return bad(
            "MissingParameter",
            "Give at least one of PreserveClientIp, IpAddressType and SecurityGroupId",
        );
    }
    let new_pci = pci.unwrap_or(endpoint.preserve_client_ip);
    let new_kind = kind.unwrap_or_else(|| endpoint.ip_address_type.clone());
    if new_pci && new_kind != "ipv4" {
        return bad(
            "InvalidParameterCombination",
            "Client IP preservation isn't supported for Dualstack and IPv6 instance connect endpoints. Use an IPv4 endpoint, or turn PreserveClientIp off.",
        );
    }
    endpoint.preserve_client_ip = new_pci;
    endpoint.ip_address_type = new_kind;
    if !groups.is_empty() {
        endpoint.security_group_ids = groups;
    }
    endpoint.state = "update-in-progress".to_string();
    Answer {
        status: 200,
        content_type: XML,
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ModifyInstanceConnectEndpointResponse xmlns=\"{EC2_NS}\">\n<requestId>{request_id}</requestId>\n<return>true</return>\n</ModifyInstanceConnectEndpointResponse>\n"
        ),
        detail: format!(
            "{id} preserveClientIp={new_pci} ipAddressType={}",
            endpoint.ip_address_type
        ),
        error_type: None,
    }
}

/// After a `DescribeInstanceConnectEndpoints` answer: updates in progress
/// are complete.
pub(crate) fn settle_updates(world: &mut World) {
    for e in &mut world.endpoints {
        if e.state == "update-in-progress" {
            e.state = "update-complete".to_string();
        }
    }
}
