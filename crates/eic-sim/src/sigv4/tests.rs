use http::HeaderMap;

use super::canonical::{canonical_query, canonical_request, canonical_uri};
use super::date::{format_amz_date, format_iso8601, parse_amz_date};
use super::signing::{sign, signing_key, string_to_sign};
use super::{
    AuthError, EMPTY_SHA256, Expected, Identity, presign_query, verify_header_auth,
    verify_presigned,
};

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

/// What a verifier should say about a case.
enum Want {
    /// Accepted, signed with this access key id.
    Ok(&'static str),
    /// Refused with exactly this error.
    Err(AuthError),
    /// Refused with an error of this kind (the message is not pinned).
    Refused(fn(&AuthError) -> bool),
}

impl Want {
    fn check(&self, case: &str, got: &Result<String, AuthError>) {
        let ok = match (self, got) {
            (Want::Ok(akid), Ok(got)) => got == akid,
            (Want::Err(want), Err(got)) => got == want,
            (Want::Refused(kind), Err(got)) => kind(got),
            _ => false,
        };
        assert!(ok, "{case}: got {got:?}");
    }
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
fn get_vanilla_vector_computes() {
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
}

/// One header-authenticated request: the "get-vanilla" vector unless a
/// case says otherwise.
struct HeaderCase {
    name: &'static str,
    query: &'static str,
    headers: HeaderMap,
    body: &'static [u8],
    identities: Vec<Identity>,
    expected: Expected<'static>,
    want: Want,
}

fn vanilla(name: &'static str, want: Want) -> HeaderCase {
    HeaderCase {
        name,
        query: "",
        headers: vanilla_headers(VANILLA_SIG),
        body: b"",
        identities: vec![example_identity()],
        expected: vanilla_expected(),
        want,
    }
}

fn with_header(name: &'static str, value: &'static str) -> HeaderMap {
    let mut h = vanilla_headers(VANILLA_SIG);
    h.insert(name, http::HeaderValue::from_static(value));
    h
}

#[test]
fn header_auth_cases() {
    let mut bad_sig = VANILLA_SIG.to_string();
    bad_sig.replace_range(0..1, "6");
    let cases = [
        vanilla("get-vanilla verifies", Want::Ok("AKIDEXAMPLE")),
        HeaderCase {
            headers: vanilla_headers(&bad_sig),
            ..vanilla("wrong signature", Want::Err(AuthError::Mismatch))
        },
        HeaderCase {
            query: "a=b",
            ..vanilla("unsigned query string", Want::Err(AuthError::Mismatch))
        },
        HeaderCase {
            expected: Expected {
                region: "eu-west-1",
                ..vanilla_expected()
            },
            ..vanilla(
                "wrong region in scope",
                Want::Refused(|e| matches!(e, AuthError::WrongScope(_))),
            )
        },
        HeaderCase {
            expected: Expected {
                now: vanilla_expected().now + 5 * 60 + 1,
                ..vanilla_expected()
            },
            ..vanilla(
                "signed more than 5 minutes ago",
                Want::Refused(
                    |e| matches!(e, AuthError::Expired(m) if m.starts_with("Signature expired: ") && m.ends_with(" - 5 min.)")),
                ),
            )
        },
        HeaderCase {
            expected: Expected {
                now: vanilla_expected().now - 5 * 60 - 1,
                ..vanilla_expected()
            },
            ..vanilla(
                "signed more than 5 minutes ahead",
                Want::Refused(
                    |e| matches!(e, AuthError::Expired(m) if m.starts_with("Signature not yet current: ") && m.ends_with(" + 5 min.)")),
                ),
            )
        },
        HeaderCase {
            expected: Expected {
                now: vanilla_expected().now + 5 * 60,
                ..vanilla_expected()
            },
            ..vanilla("signed 5 minutes ago, at the edge", Want::Ok("AKIDEXAMPLE"))
        },
        HeaderCase {
            identities: vec![],
            ..vanilla("unknown key", Want::Err(AuthError::UnknownKey))
        },
        HeaderCase {
            headers: with_header("x-amz-security-token", "t"),
            ..vanilla(
                "token where none is expected",
                Want::Err(AuthError::BadToken),
            )
        },
        HeaderCase {
            headers: with_header("x-amz-content-sha256", EMPTY_SHA256),
            body: b"x",
            ..vanilla(
                "declared payload hash does not match the body",
                Want::Err(AuthError::BadPayloadHash),
            )
        },
        HeaderCase {
            headers: headers(&[("host", "example.amazonaws.com")]),
            ..vanilla("no authorization at all", Want::Err(AuthError::Missing))
        },
    ];
    for c in &cases {
        let got = verify_header_auth(
            "GET",
            "/",
            c.query,
            &c.headers,
            c.body,
            &c.identities,
            &c.expected,
        );
        c.want.check(c.name, &got);
    }
}

#[test]
fn presigned_cases() {
    let id = Identity {
        access_key_id: "AKIDSESSION".into(),
        secret_access_key: "secret".into(),
        session_token: Some("tok+en/=".into()),
    };
    let ids = [id.clone()];
    let date = "20240102T030405Z";
    let now = parse_amz_date(date).unwrap();
    let presign = |params: &[(&str, &str)], expires| {
        presign_query(
            &id,
            "us-east-1",
            "ec2-instance-connect",
            "localhost:4443",
            "/openTunnel",
            params,
            date,
            expires,
        )
    };
    let q = presign(
        &[
            ("instanceConnectEndpointId", "eice-1"),
            ("remotePort", "22"),
        ],
        60,
    );
    let no_token: String = q
        .split('&')
        .filter(|p| !p.starts_with("X-Amz-Security-Token="))
        .collect::<Vec<_>>()
        .join("&");
    // (case, query, host, seconds after signing, want)
    let cases = [
        (
            "round trip",
            q.clone(),
            "localhost:4443",
            0,
            Want::Ok("AKIDSESSION"),
        ),
        (
            "wrong host",
            q.clone(),
            "localhost:4444",
            0,
            Want::Err(AuthError::Mismatch),
        ),
        (
            "tampered parameter",
            q.replace("remotePort=22", "remotePort=23"),
            "localhost:4443",
            0,
            Want::Err(AuthError::Mismatch),
        ),
        (
            "expired",
            q.clone(),
            "localhost:4443",
            61,
            Want::Err(AuthError::Expired("Request has expired".into())),
        ),
        (
            "token removed",
            no_token,
            "localhost:4443",
            0,
            Want::Err(AuthError::BadToken),
        ),
        (
            "expiry beyond the cap",
            presign(&[], 7200),
            "localhost:4443",
            0,
            Want::Refused(|e| matches!(e, AuthError::Malformed(_))),
        ),
    ];
    for (case, query, host, later, want) in &cases {
        let exp = Expected {
            region: "us-east-1",
            service: "ec2-instance-connect",
            now: now + later,
        };
        let h = headers(&[("host", *host)]);
        let got = verify_presigned("GET", "/openTunnel", query, &h, &ids, &exp, 3600);
        want.check(case, &got);
    }
}

#[test]
fn dates_round_trip() {
    // (X-Amz-Date, seconds since the epoch, ISO 8601)
    let cases = [
        (
            "20150830T123600Z",
            1_440_938_160,
            "2015-08-30T12:36:00.000Z",
        ),
        (
            "20240229T000000Z",
            1_709_164_800,
            "2024-02-29T00:00:00.000Z",
        ),
    ];
    for (amz, secs, iso) in cases {
        assert_eq!(parse_amz_date(amz), Some(secs), "{amz}");
        assert_eq!(format_amz_date(secs), amz);
        assert_eq!(format_iso8601(secs), iso);
    }
    assert!(parse_amz_date("2015-08-30T12:36").is_none());
}

#[test]
fn canonical_query_sorts_and_encodes() {
    // (raw query, presigned, canonical query)
    let cases = [
        (
            "b=2&a=x%20y&X-Amz-Signature=zz&c=%2F",
            true,
            "a=x%20y&b=2&c=%2F",
        ),
        (
            "Param2=value2&Param1=value1",
            false,
            "Param1=value1&Param2=value2",
        ),
    ];
    for (raw, presigned, want) in cases {
        assert_eq!(canonical_query(raw, presigned), want, "{raw}");
    }
}
