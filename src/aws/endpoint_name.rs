//! The shape of an EC2 Instance Connect Endpoint's DNS name.
//!
//! The presigned tunnel URL carries the access key ID, the session token and
//! a signature good for 60 seconds, and whatever answers it is then trusted
//! to carry SSH. So eic-ssh dials only names of the service's own shape, for
//! the endpoint it means, in the configured region, under an AWS DNS suffix:
//!
//! ```text
//! eice-0123456789abcdef0.b67b86ba.ec2-instance-connect-endpoint.us-east-1.amazonaws.com
//! eice-0123456789abcdef0.b67b86ba.fips.ec2-instance-connect-endpoint.us-east-1.amazonaws.com
//! ```
//!
//! The check applies to `--eice-dns`, to the route cache, and to the names
//! the API returns.

/// The DNS suffixes of the AWS partitions (commercial, China, GovCloud
/// shares the commercial one, the ISO partitions, the European Sovereign
/// Cloud), and the dual-stack ones.
pub const AWS_DNS_SUFFIXES: [&str; 9] = [
    "amazonaws.com",
    "amazonaws.com.cn",
    "c2s.ic.gov",
    "sc2s.sgov.gov",
    "cloud.adc-e.uk",
    "csp.hci.ic.gov",
    "amazonaws.eu",
    "api.aws",
    "api.amazonwebservices.com.cn",
];

/// The label every endpoint name carries.
const SERVICE_LABEL: &str = "ec2-instance-connect-endpoint";

/// Check `name` against the service's shape for `endpoint_id` in `region`.
/// The error says what is wrong.
pub fn check(name: &str, endpoint_id: &str, region: &str) -> Result<(), String> {
    let lower = name.to_ascii_lowercase();
    let host = lower.strip_suffix('.').unwrap_or(&lower);
    if host.len() > 253
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err("it is not a DNS name (letters, digits, dashes and dots only, no port)".into());
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.iter().any(|l| l.is_empty() || l.len() > 63) {
        return Err("it has an empty or overlong label".into());
    }
    if labels.first() != Some(&endpoint_id.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "it does not start with the endpoint ID ({endpoint_id}.)"
        ));
    }
    let suffix = AWS_DNS_SUFFIXES
        .iter()
        .filter(|s| host.ends_with(&format!(".{region}.{s}")))
        .max_by_key(|s| s.len())
        .ok_or_else(|| {
            format!(
                "it does not end in .{region}.<an AWS DNS suffix> (e.g. .{region}.amazonaws.com)"
            )
        })?;
    let tail = 1 + suffix.split('.').count();
    let middle = labels.get(1..labels.len() - tail).unwrap_or_default();
    if !middle.contains(&SERVICE_LABEL) || !(2..=4).contains(&middle.len()) {
        return Err(format!(
            "it is not shaped <endpoint-id>.<id>.{SERVICE_LABEL}.{region}.{suffix}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "eice-0123456789abcdef0";

    #[test]
    fn the_services_names_pass() {
        for name in [
            "eice-0123456789abcdef0.b67b86ba.ec2-instance-connect-endpoint.us-east-1.amazonaws.com",
            "eice-0123456789abcdef0.b67b86ba.fips.ec2-instance-connect-endpoint.us-east-1.amazonaws.com",
            "eice-0123456789abcdef0.b67b86ba.ec2-instance-connect-endpoint.fips.us-east-1.amazonaws.com",
            "EICE-0123456789ABCDEF0.B67B86BA.EC2-INSTANCE-CONNECT-ENDPOINT.US-EAST-1.AMAZONAWS.COM.",
            "eice-0123456789abcdef0.b67b86ba.dualstack.ec2-instance-connect-endpoint.us-east-1.api.aws",
        ] {
            assert_eq!(check(name, ID, "us-east-1"), Ok(()), "{name}");
        }
        assert_eq!(
            check(
                "eice-0123456789abcdef0.1a2b3c4d.ec2-instance-connect-endpoint.cn-north-1.amazonaws.com.cn",
                ID,
                "cn-north-1"
            ),
            Ok(())
        );
    }

    /// The simulator's endpoints have names of the service's shape: these
    /// vectors (pinned on the simulator's side too) are what it reports,
    /// and they pass the check.
    #[test]
    fn the_simulators_names_pass() {
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
            assert_eq!(eic_sim::endpoint_dns_name(ID, region, false), dns);
            assert_eq!(eic_sim::endpoint_dns_name(ID, region, true), fips);
            assert_eq!(eic_sim::endpoint_dualstack_dns_name(ID, region), dualstack);
            for name in [dns, fips, dualstack] {
                assert_eq!(check(name, ID, region), Ok(()), "{name}");
            }
        }
    }

    #[test]
    fn foreign_names_are_refused_saying_why() {
        let good =
            "eice-0123456789abcdef0.b67b86ba.ec2-instance-connect-endpoint.us-east-1.amazonaws.com";
        for (name, region, why) in [
            ("localhost:8443", "us-east-1", "not a DNS name"),
            ("localhost", "us-east-1", "endpoint ID"),
            ("evil.example", "us-east-1", "endpoint ID"),
            (good, "eu-west-1", ".eu-west-1."),
            (
                "eice-0123456789abcdef1.b67b86ba.ec2-instance-connect-endpoint.us-east-1.amazonaws.com",
                "us-east-1",
                "endpoint ID",
            ),
            (
                "eice-0123456789abcdef0.b67b86ba.ec2-instance-connect-endpoint.us-east-1.amazonaws.com.evil.example",
                "us-east-1",
                "AWS DNS suffix",
            ),
            (
                "eice-0123456789abcdef0.us-east-1.amazonaws.com",
                "us-east-1",
                "shaped",
            ),
            (
                "eice-0123456789abcdef0.x.s3.us-east-1.amazonaws.com",
                "us-east-1",
                "shaped",
            ),
            (&format!("{good}:443"), "us-east-1", "no port"),
            (
                "eice-0123456789abcdef0..ec2-instance-connect-endpoint.us-east-1.amazonaws.com",
                "us-east-1",
                "empty",
            ),
        ] {
            let err = check(name, ID, region).unwrap_err();
            assert!(err.contains(why), "{name}: {err}");
        }
    }
}
