//! Redaction: every line a log event prints goes through [`redact`] on
//! its way to stderr (the writer is `term::logging`'s), whatever filter let
//! it through, so no verbosity and no `RUST_LOG` shows a credential, a
//! signature, a proxy password or a private key (aws-sigv4's canonical
//! request and tungstenite's request trace otherwise print them at trace
//! level); an error's message goes through [`redact_message`].

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// What replaces a secret.
pub const REDACTED: &str = "REDACTED";

struct Rule {
    pattern: Regex,
    replacement: &'static str,
    /// Whether it applies to error messages and notices too, not only to
    /// logs. The rule for named secrets (`password: …`) does not: an error
    /// names files, and `cannot copy passwd: No such file` must keep its
    /// reason.
    in_messages: bool,
}

fn rule(pattern: &str, replacement: &'static str) -> Option<Rule> {
    // The patterns are constants, tested below; a bad one would drop only
    // itself, never the log line.
    Regex::new(pattern).ok().map(|pattern| Rule {
        pattern,
        replacement,
        in_messages: true,
    })
}

fn log_only(r: Option<Rule>) -> Option<Rule> {
    r.map(|r| Rule {
        in_messages: false,
        ..r
    })
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    [
        // PEM and OpenSSH private keys, even cut off.
        rule(
            r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
            "REDACTED-PRIVATE-KEY",
        ),
        // SigV4 in query strings and headers, plain or percent-encoded.
        rule(
            r#"(?i)(x-amz-(?:signature|credential|security-token)["']?\s*(?:=|:|%3D)\s*["']?)[^&\s"',;<>]+"#,
            "${1}REDACTED",
        ),
        // Authorization and Proxy-Authorization header values.
        rule(
            r#"(?i)(authorization["']?\s*[:=]\s*["']?)[^\r\n"']+"#,
            "${1}REDACTED",
        ),
        rule(
            r#"(?i)\b((?:credential|signature)=)[^&\s,"']+"#,
            "${1}REDACTED",
        ),
        // Named secrets in debug output, config dumps, headers and request
        // bodies (which the SDK's trace prints with escaped quotes): the
        // secret key and session token, SSO bearer tokens, web-identity
        // tokens, OIDC client secrets and refresh tokens, the instance
        // metadata token, passwords. Whole names only: an error code such
        // as `ExpiredToken: The security token…` stays readable.
        log_only(rule(
            r#"(?i)\b((?:x-amz-sso_bearer_token|x-aws-ec2-metadata-token|web_?identity_?token|client_?secret|refresh_?token|access_?token|id_?token|session_?token|security_?token|(?:aws_)?secret_?access_?key|secret_?key|password|passwd)\\?["']?\s*[:=]\s*(?:Some\()?\\?["']?)[^\s"'\\,&)]+"#,
            "${1}REDACTED",
        )),
        // user:password@ in URLs (proxies).
        rule(
            r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):[^@\s/]*@",
            "${1}:REDACTED@",
        ),
        // Access key IDs wherever they appear.
        rule(
            r"\b(?:AKIA|ASIA|AKID|AIDA|AROA|AGPA|ANPA|ANVA|AIPA|APKA|ABIA|ACCA)[A-Z0-9]{8,}\b",
            "REDACTED",
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
});

/// `text` with every secret replaced.
pub fn redact(text: &str) -> Cow<'_, str> {
    apply(text, |_| true)
}

/// An error message or notice with every secret in it replaced: keys,
/// signatures, credentials in URLs and headers, private keys (the rule for
/// named secrets is left out, as it would take a file named `passwd` for
/// one).
pub fn redact_message(text: &str) -> Cow<'_, str> {
    apply(text, |r| r.in_messages)
}

fn apply(text: &str, keep: impl Fn(&Rule) -> bool) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for r in RULES.iter().filter(|r| keep(r)) {
        if let Cow::Owned(s) = r.pattern.replace_all(&out, r.replacement) {
            out = Cow::Owned(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_every_form() {
        let token = "IQoJsimSessionToken/abc+def==";
        let sig = "0f".repeat(32);
        for (line, secrets) in [
            (
                format!("GET wss://eice-1.x/openTunnel?X-Amz-Credential=AKIDSIMSESSION1%2F20260101%2Fus-east-1&X-Amz-Security-Token=IQoJsimSessionToken%2Fabc%2Bdef%3D%3D&X-Amz-Signature={sig}&remotePort=22"),
                vec!["AKIDSIMSESSION1", "IQoJsimSessionToken", sig.as_str()],
            ),
            (
                format!("canonical request:\nGET\n/openTunnel\nX-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F2026\nx-amz-security-token:{token}\nhost:eice"),
                vec!["AKIAIOSFODNN7EXAMPLE", token],
            ),
            (
                format!("authorization: AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE000000000/2026/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature={sig}"),
                vec!["ASIAEXAMPLE000000000", sig.as_str()],
            ),
            (
                "Proxy-Authorization: Basic dXNlcjpodW50ZXIy".to_owned(),
                vec!["dXNlcjpodW50ZXIy"],
            ),
            (
                "proxy http://alice:hunter2@proxy.corp:3128 in use".to_owned(),
                vec!["hunter2"],
            ),
            (
                "Credentials { secret_access_key: \"wJalrXUtnFEMI/K7MDENG\", session_token: Some(\"tok123\") }".to_owned(),
                vec!["wJalrXUtnFEMI", "tok123"],
            ),
            (
                "x-amz-sso_bearer_token: aoaAAAAAGsso123 x-aws-ec2-metadata-token: AQAEAimds456=="
                    .to_owned(),
                vec!["aoaAAAAAGsso123", "AQAEAimds456"],
            ),
            (
                "body: Action=AssumeRoleWithWebIdentity&WebIdentityToken=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.sig&Version=2011-06-15".to_owned(),
                vec!["eyJhbGciOiJSUzI1NiJ9", "eyJzdWIiOiJ4In0"],
            ),
            (
                r#"body: b"{\"clientId\":\"cid\",\"clientSecret\":\"cs-789\",\"refreshToken\":\"rt-012\",\"secretAccessKey\":\"wJalr345\"}""#.to_owned(),
                vec!["cs-789", "rt-012", "wJalr345"],
            ),
            (
                "key: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\n-----END OPENSSH PRIVATE KEY-----\nafter".to_owned(),
                vec!["b3BlbnNzaC1rZXktdjEAAAAABG5vbmU"],
            ),
        ] {
            let out = redact(&line);
            for s in secrets {
                assert!(!out.contains(s), "{s} in {out}");
            }
        }
    }

    #[test]
    fn messages_keep_file_names_and_their_reasons() {
        for line in [
            "cannot copy passwd: No such file or directory",
            "cannot copy /etc/passwd: Permission denied (os error 13)",
            "cannot copy access_token: No such file or directory",
        ] {
            assert_eq!(redact_message(line), line);
        }
        let proxy = "the proxy http://alice:hunter2@proxy.corp:3128 refused";
        assert!(!redact_message(proxy).contains("hunter2"));
    }

    #[test]
    fn ordinary_lines_pass_unchanged() {
        for line in [
            "route resolved endpoint=\"eice-0123456789abcdef0\" private_ip=10.0.1.10",
            "the endpoint refused the tunnel: HTTP 403 AccessDenied: User is not authorized",
            "signed headers: host",
            "ExpiredToken: The security token included in the request is expired",
            "InvalidClientTokenId: The security token included in the request is invalid",
        ] {
            assert!(matches!(redact(line), Cow::Borrowed(_)), "{line}");
        }
    }
}
