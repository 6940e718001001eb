//! Presigning the `openTunnel` websocket URL with SigV4 query auth: a pure
//! function of the parameters, credentials, region and time.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;

use crate::error::Error;

/// The service name the endpoint checks in the credential scope.
pub const SIGNING_NAME: &str = "ec2-instance-connect";
/// How long a presigned URL is good for, as the service's own client uses.
pub const EXPIRES: Duration = Duration::from_secs(60);

/// What one tunnel goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelRequest {
    pub endpoint_id: String,
    /// The endpoint's DNS name (host, optionally with :port).
    pub host: String,
    pub private_ip: IpAddr,
    pub remote_port: u16,
    pub max_tunnel_duration: Option<u32>,
}

/// Build the presigned `wss://<host>/openTunnel?...` URL.
pub fn presign(
    req: &TunnelRequest,
    credentials: &Credentials,
    region: &str,
    now: SystemTime,
) -> Result<String, Error> {
    let mut url = format!(
        "wss://{}/openTunnel?instanceConnectEndpointId={}&remotePort={}&privateIpAddress={}",
        req.host,
        encode(&req.endpoint_id),
        req.remote_port,
        encode(&req.private_ip.to_string())
    );
    if let Some(d) = req.max_tunnel_duration {
        url.push_str(&format!("&maxTunnelDuration={d}"));
    }

    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(EXPIRES);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SIGNING_NAME)
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| Error::Presign(e.into()))?
        .into();
    let signable = SignableRequest::new(
        "GET",
        url.as_str(),
        [("host", req.host.as_str())].into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| Error::Presign(e.into()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| Error::Presign(e.into()))?
        .into_parts();
    for (name, value) in instructions.params() {
        url.push('&');
        url.push_str(name);
        url.push('=');
        url.push_str(&encode(value));
    }
    Ok(url)
}

/// Percent-encode a query value with SigV4's unreserved set.
fn encode(v: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(v, SET).to_string()
}

/// The URL with its secrets replaced, for logs at every verbosity.
pub fn redact(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _))
                if matches!(
                    k,
                    "X-Amz-Signature" | "X-Amz-Credential" | "X-Amz-Security-Token"
                ) =>
            {
                format!("{k}=REDACTED")
            }
            _ => kv.to_owned(),
        })
        .collect();
    format!("{base}?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden vector computed once by botocore's `SigV4QueryAuth` (the signer
    /// the AWS CLI's `ec2-instance-connect` uses), with exactly these inputs:
    /// access key AKIDEXAMPLE, secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
    /// session token below, region us-west-2, time 2026-11-29T12:00:00Z,
    /// expires 60, URL
    /// wss://eice-0123456789abcdef0.123456789012.ec2-instance-connect-endpoint.us-west-2.amazonaws.com/openTunnel
    /// with instanceConnectEndpointId=eice-0123456789abcdef0, remotePort=22,
    /// privateIpAddress=10.0.1.10, maxTunnelDuration=3600.
    const GOLDEN_HOST: &str =
        "eice-0123456789abcdef0.123456789012.ec2-instance-connect-endpoint.us-west-2.amazonaws.com";
    const GOLDEN_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE/token+with=chars";
    const GOLDEN_SIGNATURE_WITH_TOKEN: &str =
        "5eca261f5456a338351a5044b281580cfc36607290ce2df39a7771d4bb1218b3";
    const GOLDEN_SIGNATURE_NO_TOKEN: &str =
        "c8c43bab397e11e17cd9fa78f0e7d6abc33055995869d8b38158453d5c9d2923";

    fn golden_request() -> TunnelRequest {
        TunnelRequest {
            endpoint_id: "eice-0123456789abcdef0".into(),
            host: GOLDEN_HOST.into(),
            private_ip: IpAddr::from([10, 0, 1, 10]),
            remote_port: 22,
            max_tunnel_duration: Some(3600),
        }
    }

    fn golden_time() -> SystemTime {
        // 2026-11-29T12:00:00Z
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_953_600)
    }

    fn query_param(url: &str, name: &str) -> Option<String> {
        let (_, q) = url.split_once('?')?;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| {
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
    }

    #[test]
    fn matches_botocore_with_session_token() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some(GOLDEN_TOKEN.into()),
            None,
            "test",
        );
        let url =
            presign(&golden_request(), &creds, "us-west-2", golden_time()).unwrap_or_default();
        assert!(
            url.starts_with(&format!("wss://{GOLDEN_HOST}/openTunnel?")),
            "{url}"
        );
        assert_eq!(
            query_param(&url, "X-Amz-Signature").as_deref(),
            Some(GOLDEN_SIGNATURE_WITH_TOKEN),
            "{url}"
        );
        assert_eq!(
            query_param(&url, "X-Amz-Security-Token").as_deref(),
            Some(GOLDEN_TOKEN)
        );
        assert_eq!(query_param(&url, "X-Amz-Expires").as_deref(), Some("60"));
        assert_eq!(
            query_param(&url, "X-Amz-SignedHeaders").as_deref(),
            Some("host")
        );
        assert_eq!(
            query_param(&url, "X-Amz-Date").as_deref(),
            Some("20261129T120000Z")
        );
        assert_eq!(
            query_param(&url, "X-Amz-Credential").as_deref(),
            Some("AKIDEXAMPLE/20261129/us-west-2/ec2-instance-connect/aws4_request")
        );
        assert_eq!(
            query_param(&url, "privateIpAddress").as_deref(),
            Some("10.0.1.10")
        );
        assert_eq!(
            query_param(&url, "maxTunnelDuration").as_deref(),
            Some("3600")
        );
    }

    #[test]
    fn matches_botocore_without_session_token() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        );
        let url =
            presign(&golden_request(), &creds, "us-west-2", golden_time()).unwrap_or_default();
        assert_eq!(
            query_param(&url, "X-Amz-Signature").as_deref(),
            Some(GOLDEN_SIGNATURE_NO_TOKEN),
            "{url}"
        );
        assert_eq!(query_param(&url, "X-Amz-Security-Token"), None);
    }

    #[test]
    fn redacts_every_secret() {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", Some("tok".into()), None, "test");
        let url =
            presign(&golden_request(), &creds, "us-west-2", golden_time()).unwrap_or_default();
        let r = redact(&url);
        assert!(
            !r.contains("AKIDEXAMPLE") && !r.contains("tok&") && !r.ends_with("tok"),
            "{r}"
        );
        assert!(r.contains("X-Amz-Signature=REDACTED") && r.contains("X-Amz-Credential=REDACTED"));
        assert!(r.contains("X-Amz-Security-Token=REDACTED"));
        assert!(r.contains("privateIpAddress=10.0.1.10"));
    }

    /// Any parameters, credentials (session tokens with `/`, `+`, `=`),
    /// region and time: the URL verifies with the simulator's independent
    /// SigV4 verifier, and its parameters decode to what was asked.
    mod against_an_independent_verifier {
        use super::*;
        use eic_sim::sigv4::{Expected, Identity, verify_presigned};
        use proptest::prelude::*;
        use std::net::Ipv4Addr;

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 256,
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            #[test]
            fn presigned_urls_verify_and_decode(
                endpoint in "eice-[0-9a-f]{17}",
                ip in any::<u32>(),
                port in prop_oneof![Just(22u16), Just(3389u16)],
                duration in proptest::option::of(1u32..=3600),
                token in proptest::option::of("[A-Za-z0-9+/=]{1,64}"),
                secret in "[A-Za-z0-9+/]{40}",
                time in 1_600_000_000u64..2_000_000_000,
                region in "[a-z]{2}-[a-z]{4,9}-[1-9]",
            ) {
                let host = "eice-0123.ec2-instance-connect-endpoint.example.com";
                let creds = Credentials::new("AKIDPROP", secret.clone(), token.clone(), None, "test");
                let req = TunnelRequest {
                    endpoint_id: endpoint.clone(),
                    host: host.into(),
                    private_ip: IpAddr::V4(Ipv4Addr::from(ip)),
                    remote_port: port,
                    max_tunnel_duration: duration,
                };
                let url = presign(&req, &creds, &region, SystemTime::UNIX_EPOCH + Duration::from_secs(time)).unwrap();
                let (_, query) = url.split_once('?').unwrap();
                let mut headers = http::HeaderMap::new();
                headers.insert(http::header::HOST, http::HeaderValue::from_static(host));
                let identities = [Identity {
                    access_key_id: "AKIDPROP".into(),
                    secret_access_key: secret,
                    session_token: token.clone(),
                }];
                let expected = Expected { region: &region, service: "ec2-instance-connect", now: time };
                let verdict = verify_presigned("GET", "/openTunnel", query, &headers, &identities, &expected, 3600);
                prop_assert!(verdict.is_ok(), "{:?} for {}", verdict, redact(&url));
                prop_assert_eq!(query_param(&url, "instanceConnectEndpointId"), Some(endpoint));
                prop_assert_eq!(query_param(&url, "privateIpAddress"), Some(Ipv4Addr::from(ip).to_string()));
                prop_assert_eq!(query_param(&url, "remotePort"), Some(port.to_string()));
                prop_assert_eq!(query_param(&url, "maxTunnelDuration"), duration.map(|d| d.to_string()));
                prop_assert_eq!(query_param(&url, "X-Amz-Security-Token"), token);
            }
        }
    }
}
