//! What the client and the simulator must agree on: the shape of endpoint
//! names, and the variable that maps them to the loopback listeners. The
//! client keeps its own copies (it does not depend on this crate); a test
//! on each side pins them with the same vectors.

/// The variable that maps endpoint names to other addresses, as curl's
/// `--connect-to` does (`HOST:PORT:CONNECT-HOST:CONNECT-PORT`, comma
/// separated): the client reads it, [`Simulator::env`](crate::Simulator::env) sets it. The client
/// has its own copy; a test on each side pins the name.
pub const CONNECT_TO_VAR: &str = "EIC_SSH_CONNECT_TO";

/// The second label of every simulated endpoint name (the service puts a
/// short random identifier there).
pub const SIM_DNS_TAG: &str = "51mu1a7e";

/// The simulated endpoint `id`'s `DnsName` (or, with `fips`, its
/// `FipsDnsName`) in `region`, shaped as the service's.
pub fn endpoint_dns_name(id: &str, region: &str, fips: bool) -> String {
    let fips = if fips { "fips." } else { "" };
    format!("{id}.{SIM_DNS_TAG}.{fips}ec2-instance-connect-endpoint.{region}.amazonaws.com")
}

/// The simulated endpoint `id`'s `PublicDnsNames.Dualstack.DnsName` in
/// `region`. The service does not document that name's shape; this one
/// follows the AWS dual-stack convention (a `dualstack` label, the `api.aws`
/// suffix) and passes the client's endpoint-name check.
pub fn endpoint_dualstack_dns_name(id: &str, region: &str) -> String {
    format!("{id}.{SIM_DNS_TAG}.dualstack.ec2-instance-connect-endpoint.{region}.api.aws")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the client relies on: the variable's name, and endpoint names
    /// of the service's shape. The client pins the same vectors and checks
    /// that they pass its endpoint-name check.
    #[test]
    fn endpoint_names_have_the_services_shape() {
        assert_eq!(CONNECT_TO_VAR, "EIC_SSH_CONNECT_TO");
        let id = "eice-0123456789abcdef0";
        for (region, dns, fips, dualstack) in [
            (
                "us-east-1",
                "eice-0123456789abcdef0.51mu1a7e.ec2-instance-connect-endpoint.us-east-1.amazonaws.com",
                "eice-0123456789abcdef0.51mu1a7e.fips.ec2-instance-connect-endpoint.us-east-1.amazonaws.com",
                "eice-0123456789abcdef0.51mu1a7e.dualstack.ec2-instance-connect-endpoint.us-east-1.api.aws",
            ),
            (
                "eu-west-3",
                "eice-0123456789abcdef0.51mu1a7e.ec2-instance-connect-endpoint.eu-west-3.amazonaws.com",
                "eice-0123456789abcdef0.51mu1a7e.fips.ec2-instance-connect-endpoint.eu-west-3.amazonaws.com",
                "eice-0123456789abcdef0.51mu1a7e.dualstack.ec2-instance-connect-endpoint.eu-west-3.api.aws",
            ),
        ] {
            assert_eq!(endpoint_dns_name(id, region, false), dns);
            assert_eq!(endpoint_dns_name(id, region, true), fips);
            assert_eq!(endpoint_dualstack_dns_name(id, region), dualstack);
        }
    }
}
