//! This machine's public address, as a "what is my IP" service sees it.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where this machine's public address is discovered unless `--offline`
/// or `--client-ip`; `EIC_SSH_CHECKIP_URL` overrides it.
pub const CHECKIP_URL: &str = "https://checkip.amazonaws.com/";

/// How long address discovery may take before it is given up (a warning).
pub(super) const CHECKIP_TIMEOUT: Duration = Duration::from_secs(5);

/// This machine's public IPv4 address, as a "what is my IP" service sees it
/// (a plain HTTPS GET answered with the address as text).
pub(super) async fn discover_ip(
    url: &str,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Ipv4Addr, String> {
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    let host = parsed.host_str().ok_or("no host")?.to_owned();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: eic-ssh/{}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
        parsed.path(),
        env!("CARGO_PKG_VERSION")
    );
    let mut response = Vec::new();
    if parsed.scheme() == "https" {
        let name =
            rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let mut stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        read_limited(&mut stream, &mut response).await?;
    } else {
        let mut stream = tcp;
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        read_limited(&mut stream, &mut response).await?;
    }
    parse_checkip_response(&response)
}

pub(super) async fn read_limited<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let mut buf = [0u8; 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) => return Ok(()),
            Ok(n) => {
                out.extend_from_slice(buf.get(..n).unwrap_or_default());
                if out.len() > 16 * 1024 {
                    return Err("the answer is too long".into());
                }
            }
            // Servers that close TLS without close_notify: keep what came.
            Err(e) if !out.is_empty() && e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok(());
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The address in an HTTP answer: status 200, body the address (any line,
/// so chunked framing does not matter).
pub fn parse_checkip_response(response: &[u8]) -> Result<Ipv4Addr, String> {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("not an HTTP answer")?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("answered {status}"));
    }
    body.lines()
        .find_map(|l| l.trim().parse::<Ipv4Addr>().ok())
        .ok_or_else(|| "the answer holds no IPv4 address".to_owned())
}
