//! `-D`: a local SOCKS proxy (SOCKS5 with no authentication, SOCKS4 and
//! SOCKS4a) whose connections leave from the instance. Names are sent to
//! the instance unresolved, so they resolve there (`socks5h` semantics).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use russh::ChannelOpenFailure;
use russh::client::Handle;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::ssh::forward::pump::{open_direct, pump};
use crate::ssh::forward::spec::check_host;
use crate::ssh::host_keys::Client;

/// The protocol version a client spoke, which decides the reply's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V4,
    V5,
}

/// A CONNECT request, read and ready to be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub version: Version,
    pub host: String,
    pub port: u16,
}

/// SOCKS5 reply codes (RFC 1928 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reply {
    Succeeded = 0,
    GeneralFailure = 1,
    NotAllowed = 2,
    HostUnreachable = 4,
    ConnectionRefused = 5,
    CommandNotSupported = 7,
    AddressTypeNotSupported = 8,
}

/// Accept on `listener` for as long as the session lives.
pub async fn serve(listener: TcpListener, handle: Arc<Handle<Client>>) {
    loop {
        let (socket, from) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("-D: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        tokio::spawn(connection(socket, from, handle.clone()));
    }
}

async fn connection(
    mut socket: tokio::net::TcpStream,
    from: SocketAddr,
    handle: Arc<Handle<Client>>,
) {
    let req = match handshake(&mut socket).await {
        Ok(Some(req)) => req,
        Ok(None) => return,
        Err(e) => {
            tracing::info!("-D from {from}: bad SOCKS request: {e}");
            return;
        }
    };
    let label = format!("-D {}:{} from {from}", req.host, req.port);
    match open_direct(&handle, &req.host, req.port, from).await {
        Ok(channel) => {
            if reply(&mut socket, req.version, Reply::Succeeded)
                .await
                .is_ok()
            {
                tracing::info!("{label}: open");
                pump(socket, channel, &label).await;
            } else {
                // The client left: close the channel, or the instance keeps
                // its connection to the target until the session ends.
                let _ = channel.close().await;
            }
        }
        Err(e) => {
            tracing::warn!(
                "-D: the instance could not connect to {}:{}: {e}",
                req.host,
                req.port
            );
            let code = match e {
                russh::Error::ChannelOpenFailure(ChannelOpenFailure::ConnectFailed) => {
                    Reply::ConnectionRefused
                }
                russh::Error::ChannelOpenFailure(
                    ChannelOpenFailure::AdministrativelyProhibited,
                ) => Reply::NotAllowed,
                _ => Reply::GeneralFailure,
            };
            let _ = reply(&mut socket, req.version, code).await;
        }
    }
}

/// Read the greeting and the request. Returns `None` after answering a
/// request this proxy does not serve (BIND, UDP ASSOCIATE, an address type
/// or authentication method it does not know) with the proper error.
pub async fn handshake<S>(s: &mut S) -> io::Result<Option<Connect>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match s.read_u8().await? {
        4 => socks4(s).await,
        5 => socks5(s).await,
        v => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("SOCKS version {v} is not supported"),
        )),
    }
}

async fn socks5<S>(s: &mut S) -> io::Result<Option<Connect>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let n = s.read_u8().await?;
    let mut methods = vec![0u8; usize::from(n)];
    s.read_exact(&mut methods).await?;
    // Only "no authentication": the listener is the access control, as
    // OpenSSH's is.
    if !methods.contains(&0) {
        s.write_all(&[5, 0xff]).await?;
        return Ok(None);
    }
    s.write_all(&[5, 0]).await?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await?;
    let [ver, cmd, _rsv, atyp] = head;
    if ver != 5 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("SOCKS5 request with version {ver}"),
        ));
    }
    let host = match atyp {
        1 => {
            let mut ip = [0u8; 4];
            s.read_exact(&mut ip).await?;
            Ipv4Addr::from(ip).to_string().into_bytes()
        }
        3 => {
            let len = s.read_u8().await?;
            let mut name = vec![0u8; usize::from(len)];
            s.read_exact(&mut name).await?;
            name
        }
        4 => {
            let mut ip = [0u8; 16];
            s.read_exact(&mut ip).await?;
            Ipv6Addr::from(ip).to_string().into_bytes()
        }
        _ => {
            reply(s, Version::V5, Reply::AddressTypeNotSupported).await?;
            return Ok(None);
        }
    };
    let port = s.read_u16().await?;
    if cmd != 1 {
        tracing::info!("-D: SOCKS5 command {cmd} is not supported (only CONNECT)");
        reply(s, Version::V5, Reply::CommandNotSupported).await?;
        return Ok(None);
    }
    let Some(host) = host_name(host) else {
        reply(s, Version::V5, Reply::HostUnreachable).await?;
        return Ok(None);
    };
    Ok(Some(Connect {
        version: Version::V5,
        host,
        port,
    }))
}

/// The requested host, if it can name one (an IP address or a DNS name).
/// Anything else is answered here and never reaches the instance: OpenSSH's
/// sshd ends the whole session (every forward with it) on a name holding
/// NUL, and any local process can send one. The answer is "host
/// unreachable" (SOCKS5 0x04, SOCKS4 0x5b "rejected"): the request is well
/// formed and the proxy works, but no host can be reached by that name;
/// RFC 1928 has no code for a bad name, and "general failure" would blame
/// the proxy.
fn host_name(raw: Vec<u8>) -> Option<String> {
    let refused = |why: &str, raw: &[u8]| {
        tracing::warn!(
            "-D: refused a request for {:?}: {why}",
            String::from_utf8_lossy(raw)
        );
    };
    match String::from_utf8(raw) {
        Ok(host) => match check_host(&host) {
            Ok(()) => Some(host),
            Err(why) => {
                refused(why, host.as_bytes());
                None
            }
        },
        Err(e) => {
            refused("it is not UTF-8", e.as_bytes());
            None
        }
    }
}

async fn socks4<S>(s: &mut S) -> io::Result<Option<Connect>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let cmd = s.read_u8().await?;
    let port = s.read_u16().await?;
    let mut ip = [0u8; 4];
    s.read_exact(&mut ip).await?;
    let _user = read_cstr(s).await?;
    // SOCKS4a: 0.0.0.x (x ≠ 0) means a host name follows.
    let host = if ip[..3] == [0, 0, 0] && ip[3] != 0 {
        read_cstr(s).await?
    } else {
        Ipv4Addr::from(ip).to_string().into_bytes()
    };
    if cmd != 1 {
        tracing::info!("-D: SOCKS4 command {cmd} is not supported (only CONNECT)");
        reply(s, Version::V4, Reply::CommandNotSupported).await?;
        return Ok(None);
    }
    let Some(host) = host_name(host) else {
        reply(s, Version::V4, Reply::HostUnreachable).await?;
        return Ok(None);
    };
    Ok(Some(Connect {
        version: Version::V4,
        host,
        port,
    }))
}

async fn read_cstr<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        match s.read_u8().await? {
            0 => break,
            b if out.len() < 255 => out.push(b),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a SOCKS4 field longer than 255 bytes",
                ));
            }
        }
    }
    Ok(out)
}

/// Answer a request. The bound address is not known (the connection is made
/// by the instance), so it is all zeros, as OpenSSH sends.
pub async fn reply<S>(s: &mut S, version: Version, code: Reply) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    match version {
        Version::V5 => s.write_all(&[5, code as u8, 0, 1, 0, 0, 0, 0, 0, 0]).await,
        Version::V4 => {
            let status = if code == Reply::Succeeded { 0x5a } else { 0x5b };
            s.write_all(&[0, status, 0, 0, 0, 0, 0, 0]).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run `client_bytes` through the handshake; return its result and what
    /// the proxy answered.
    async fn talk(client_bytes: &[u8]) -> (io::Result<Option<Connect>>, Vec<u8>) {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(client_bytes).await.unwrap();
        let result = handshake(&mut server).await;
        drop(server);
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        (result, answer)
    }

    #[tokio::test]
    async fn socks5_connect_by_name_keeps_the_name() {
        let mut req = vec![5, 1, 0, 5, 1, 0, 3, 11];
        req.extend_from_slice(b"db.internal");
        req.extend_from_slice(&5432u16.to_be_bytes());
        let (r, answer) = talk(&req).await;
        assert_eq!(
            r.unwrap(),
            Some(Connect {
                version: Version::V5,
                host: "db.internal".into(),
                port: 5432
            })
        );
        assert_eq!(answer, [5, 0]);
    }

    #[tokio::test]
    async fn socks5_ipv4_and_ipv6() {
        let (r, _) = talk(&[5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 7, 0, 80]).await;
        assert_eq!(r.unwrap().unwrap().host, "10.0.0.7");
        let mut req = vec![5, 1, 0, 5, 1, 0, 4];
        req.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        req.extend_from_slice(&[1, 187]);
        let (r, _) = talk(&req).await;
        let c = r.unwrap().unwrap();
        assert_eq!((c.host.as_str(), c.port), ("::1", 443));
    }

    #[tokio::test]
    async fn socks5_bind_and_udp_get_command_not_supported() {
        for cmd in [2u8, 3] {
            let (r, answer) = talk(&[5, 1, 0, 5, cmd, 0, 1, 127, 0, 0, 1, 0, 80]).await;
            assert_eq!(r.unwrap(), None);
            assert_eq!(answer, [5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0], "cmd {cmd}");
        }
    }

    #[tokio::test]
    async fn socks5_unknown_address_type_and_auth_only_clients_are_refused() {
        let (r, answer) = talk(&[5, 1, 0, 5, 1, 0, 9]).await;
        assert_eq!(r.unwrap(), None);
        assert_eq!(answer, [5, 0, 5, 8, 0, 1, 0, 0, 0, 0, 0, 0]);
        // Username/password only: no acceptable method.
        let (r, answer) = talk(&[5, 1, 2]).await;
        assert_eq!(r.unwrap(), None);
        assert_eq!(answer, [5, 0xff]);
    }

    #[tokio::test]
    async fn socks4_and_socks4a() {
        let (r, _) = talk(&[4, 1, 0, 80, 10, 1, 2, 3, b'u', 0]).await;
        assert_eq!(
            r.unwrap(),
            Some(Connect {
                version: Version::V4,
                host: "10.1.2.3".into(),
                port: 80
            })
        );
        let mut req = vec![4, 1, 0x1f, 0x90, 0, 0, 0, 1, 0];
        req.extend_from_slice(b"web.internal\0");
        let (r, _) = talk(&req).await;
        let c = r.unwrap().unwrap();
        assert_eq!((c.host.as_str(), c.port), ("web.internal", 8080));
        // BIND is rejected with SOCKS4's "request rejected".
        let (r, answer) = talk(&[4, 2, 0, 80, 10, 1, 2, 3, 0]).await;
        assert_eq!(r.unwrap(), None);
        assert_eq!(answer, [0, 0x5b, 0, 0, 0, 0, 0, 0]);
    }

    /// A name that cannot name a host never reaches the instance: "host
    /// unreachable", in SOCKS5 and SOCKS4a, after the whole request is read.
    #[tokio::test]
    async fn a_name_that_is_no_host_name_is_answered_host_unreachable() {
        for name in [&b"a\0b"[..], b"db\r\nx", b"", b"a b", b"\xff\xfe"] {
            let mut req = vec![5, 1, 0, 5, 1, 0, 3, u8::try_from(name.len()).unwrap()];
            req.extend_from_slice(name);
            req.extend_from_slice(&80u16.to_be_bytes());
            let (r, answer) = talk(&req).await;
            assert_eq!(r.unwrap(), None, "{name:?}");
            assert_eq!(answer, [5, 0, 5, 4, 0, 1, 0, 0, 0, 0, 0, 0], "{name:?}");
        }
        let mut req = vec![4, 1, 0, 80, 0, 0, 0, 1, 0];
        req.extend_from_slice(b"a\x1b]0;x\x07\0");
        let (r, answer) = talk(&req).await;
        assert_eq!(r.unwrap(), None);
        assert_eq!(answer, [0, 0x5b, 0, 0, 0, 0, 0, 0]);
    }

    #[tokio::test]
    async fn other_versions_are_errors() {
        let (r, _) = talk(&[6, 1, 0]).await;
        assert!(r.unwrap_err().to_string().contains("version 6"));
    }
}
