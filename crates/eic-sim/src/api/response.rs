//! What the handlers answer with, and how it goes on the wire: [`Answer`],
//! the two error envelopes (EC2 XML, Instance Connect JSON), XML escaping,
//! and the HTTP response itself.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

/// An answer before it becomes an HTTP response.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// Error code, or a short description of a success, for the log.
    pub detail: String,
    /// `x-amzn-ErrorType` for JSON errors.
    pub error_type: Option<String>,
}

/// Content type of EC2 Query answers.
pub(super) const XML: &str = "text/xml;charset=UTF-8";
/// Content type of EC2 Instance Connect (awsJson1_1) answers.
pub(super) const JSON: &str = "application/x-amz-json-1.1";

/// An EC2 Query error:
/// `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`.
pub(crate) fn ec2_error(status: u16, code: &str, message: &str, request_id: &str) -> Answer {
    Answer {
        status,
        content_type: XML,
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
            esc(code),
            esc(message),
            esc(request_id)
        ),
        detail: code.to_string(),
        error_type: None,
    }
}

/// An awsJson1_1 error: `{"__type", "Message"}` and `x-amzn-ErrorType`.
pub(crate) fn json_error(status: u16, code: &str, message: &str) -> Answer {
    Answer {
        status,
        content_type: JSON,
        body: serde_json::json!({ "__type": code, "Message": message }).to_string(),
        detail: code.to_string(),
        error_type: Some(code.to_string()),
    }
}

/// Escapes text for XML element content (quotes need no escaping there,
/// and EC2 leaves them alone).
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTTP response for an answer.
pub(super) fn respond(
    status: u16,
    content_type: &'static str,
    body: String,
    request_id: &str,
    error_type: Option<&str>,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    if let Some(t) = error_type.and_then(|t| http::HeaderValue::from_str(t).ok()) {
        h.insert("x-amzn-errortype", t);
    }
    resp
}
