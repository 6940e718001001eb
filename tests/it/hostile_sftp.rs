//! A hostile instance: a real SSH server (russh) whose SFTP subsystem
//! (russh-sftp's server side) serves a made-up tree and says whatever the
//! test scripts: names with `/` or `..` in them, types that differ between
//! a listing and `stat`, setuid modes, symbolic-link loops, a tree without
//! end. It answers uploads into memory and records the requests it gets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use russh::keys::{Algorithm, PrivateKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId};
use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode, Version,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub const DIR: u32 = 0o040000;
pub const REG: u32 = 0o100000;
pub const LNK: u32 = 0o120000;

/// What a directory (or link) holds when the server is asked to read it.
pub const READ_AS_A_FILE: &[u8] = b"a directory, read as a file";

/// What the server says about one path.
#[derive(Clone)]
pub enum Node {
    /// A directory: its mode, and its listing as sent (name, `st_mode`):
    /// the names and types are whatever the test wants the server to claim.
    Dir { mode: u32, list: Vec<(String, u32)> },
    /// A file: its `st_mode` and its bytes.
    File { mode: u32, data: Vec<u8> },
    /// A symbolic link: `lstat` says link, `stat` and everything else see
    /// the node it leads to, or nothing (a dangling link).
    Link(Option<Box<Node>>),
}

/// The tree the server serves, by absolute path.
#[derive(Clone, Default)]
pub struct Tree {
    pub nodes: HashMap<String, Node>,
    /// Paths made of this prefix and `/d` repeated are directories, each
    /// listing one directory `d`: a tree without end.
    pub endless: Option<String>,
    /// This path component is a link to the directory it is in: any path
    /// through it is the path without it (a loop, as `loop -> .`).
    pub loop_name: Option<String>,
    /// Reads of this file past its first bytes wait until the gate opens.
    pub gated: Option<String>,
}

impl Tree {
    pub fn dir(&mut self, path: &str, mode: u32, list: &[(&str, u32)]) {
        let list = list.iter().map(|(n, m)| ((*n).to_owned(), *m)).collect();
        self.nodes.insert(path.into(), Node::Dir { mode, list });
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        self.nodes.insert(
            path.into(),
            Node::File {
                mode: REG | mode,
                data: data.to_vec(),
            },
        );
    }

    /// What `path` is, following a link if `follow`.
    fn node(&self, path: &str, follow: bool) -> Option<Node> {
        let mut path = path.to_owned();
        if let Some(l) = &self.loop_name {
            let through = format!("/{l}/");
            while let Some(i) = path.find(&through) {
                path.replace_range(i..i + through.len() - 1, "");
            }
            if follow && let Some(p) = path.strip_suffix(&format!("/{l}")) {
                path = p.to_owned();
            } else if !follow && path.ends_with(&format!("/{l}")) {
                return Some(Node::Link(None));
            }
        }
        if let Some(prefix) = &self.endless
            && let Some(rest) = path.strip_prefix(prefix.as_str())
            && rest.split('/').skip(1).all(|c| c == "d")
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return Some(Node::Dir {
                mode: DIR | 0o755,
                list: vec![("d".into(), DIR | 0o755)],
            });
        }
        match self.nodes.get(&path)? {
            Node::Link(target) if follow => target.as_deref().cloned(),
            n => Some(n.clone()),
        }
    }
}

fn attrs(node: &Node) -> FileAttributes {
    let (mode, size) = match node {
        Node::Dir { mode, .. } => (*mode, 0),
        Node::File { mode, data } => (*mode, data.len() as u64),
        Node::Link(_) => (LNK | 0o777, 0),
    };
    FileAttributes {
        size: Some(size),
        uid: Some(0),
        gid: Some(0),
        permissions: Some(mode),
        atime: Some(1_000_000_000),
        mtime: Some(1_000_000_000),
        ..Default::default()
    }
}

/// The running server. Stops (with its sessions) on drop.
pub struct HostileSftp {
    pub addr: SocketAddr,
    /// Its host key as an OpenSSH public key line.
    pub host_key_pub: String,
    /// Every request it got, one line each (`fsetstat /x mode=755`, …).
    pub log: Arc<Mutex<Vec<String>>>,
    /// Files written to it, by path.
    pub written: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    gate: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Drop for HostileSftp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HostileSftp {
    /// Serve `tree` on 127.0.0.1, port 0.
    pub async fn start(tree: Tree) -> HostileSftp {
        let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap();
        let host_key_pub = key.public_key().to_openssh().unwrap();
        let config = Arc::new(russh::server::Config {
            keys: vec![key],
            auth_rejection_time: std::time::Duration::from_millis(10),
            auth_rejection_time_initial: Some(std::time::Duration::ZERO),
            inactivity_timeout: None,
            ..Default::default()
        });
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let written = Arc::new(Mutex::new(HashMap::new()));
        let (gate, gate_rx) = watch::channel(false);
        let shared = Shared {
            tree: Arc::new(tree),
            log: log.clone(),
            written: written.clone(),
            gate: gate_rx,
        };
        let task = tokio::spawn(async move {
            let mut sessions = JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let handler = SshHandler {
                    shared: shared.clone(),
                    channels: HashMap::new(),
                };
                let config = config.clone();
                sessions.spawn(async move {
                    if let Ok(session) = russh::server::run_stream(config, tcp, handler).await {
                        let _ = session.await;
                    }
                });
            }
        });
        HostileSftp {
            addr,
            host_key_pub,
            log,
            written,
            gate,
            task,
        }
    }

    /// Let gated reads go on.
    pub fn open_gate(&self) {
        let _ = self.gate.send(true);
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

#[derive(Clone)]
struct Shared {
    tree: Arc<Tree>,
    log: Arc<Mutex<Vec<String>>>,
    written: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    gate: watch::Receiver<bool>,
}

struct SshHandler {
    shared: Shared,
    channels: HashMap<ChannelId, Channel<Msg>>,
}

impl russh::server::Handler for SshHandler {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        _user: &str,
        _key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        // Hostile, not picky: whoever comes is let in.
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.channels.remove(&id) {
            Some(channel) if name == "sftp" => {
                session.channel_success(id)?;
                let sftp = SftpHandler {
                    shared: self.shared.clone(),
                    handles: HashMap::new(),
                    next: 0,
                };
                russh_sftp::server::run(channel.into_stream(), sftp).await;
            }
            _ => session.channel_failure(id)?,
        }
        Ok(())
    }
}

enum Open {
    Dir { path: String, listed: bool },
    Read { path: String },
    Write { path: String },
}

struct SftpHandler {
    shared: Shared,
    handles: HashMap<String, Open>,
    next: u64,
}

impl SftpHandler {
    fn record(&self, line: String) {
        self.shared.log.lock().unwrap().push(line);
    }

    fn handle(&mut self, open: Open) -> String {
        self.next += 1;
        let h = format!("h{}", self.next);
        self.handles.insert(h.clone(), open);
        h
    }

    fn ok(id: u32) -> Status {
        Status {
            id,
            status_code: StatusCode::Ok,
            error_message: "Ok".into(),
            language_tag: "en-US".into(),
        }
    }
}

fn mode_of(attrs: &FileAttributes) -> String {
    attrs
        .permissions
        .map_or_else(|| "-".into(), |m| format!("{m:o}"))
}

impl russh_sftp::server::Handler for SftpHandler {
    type Error = StatusCode;

    fn unimplemented(&self) -> Self::Error {
        StatusCode::OpUnsupported
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Result<Version, Self::Error> {
        Ok(Version::new())
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let path = if path == "." { "/".into() } else { path };
        Ok(Name {
            id,
            files: vec![File::dummy(path)],
        })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        self.record(format!("stat {path}"));
        let written = self.shared.written.lock().unwrap().get(&path).cloned();
        if let Some(data) = written {
            let node = Node::File {
                mode: REG | 0o644,
                data,
            };
            return Ok(Attrs {
                id,
                attrs: attrs(&node),
            });
        }
        let node = self
            .shared
            .tree
            .node(&path, true)
            .ok_or(StatusCode::NoSuchFile)?;
        Ok(Attrs {
            id,
            attrs: attrs(&node),
        })
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        self.record(format!("lstat {path}"));
        if self.shared.written.lock().unwrap().contains_key(&path) {
            return self.stat(id, path).await;
        }
        let node = self
            .shared
            .tree
            .node(&path, false)
            .ok_or(StatusCode::NoSuchFile)?;
        Ok(Attrs {
            id,
            attrs: attrs(&node),
        })
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, Self::Error> {
        self.record(format!("opendir {path}"));
        match self.shared.tree.node(&path, true) {
            Some(Node::Dir { .. }) => Ok(Handle {
                id,
                handle: self.handle(Open::Dir {
                    path,
                    listed: false,
                }),
            }),
            Some(_) => Err(StatusCode::Failure),
            None => Err(StatusCode::NoSuchFile),
        }
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        let Some(Open::Dir { path, listed }) = self.handles.get_mut(&handle) else {
            return Err(StatusCode::Failure);
        };
        if *listed {
            return Err(StatusCode::Eof);
        }
        *listed = true;
        let path = path.clone();
        let Some(Node::Dir { list, .. }) = self.shared.tree.node(&path, true) else {
            return Err(StatusCode::Failure);
        };
        let files = list
            .into_iter()
            .map(|(name, mode)| {
                let mut a = attrs(&Node::File {
                    mode,
                    data: Vec::new(),
                });
                a.size = Some(3);
                File::new(name, a)
            })
            .collect();
        Ok(Name { id, files })
    }

    async fn open(
        &mut self,
        id: u32,
        path: String,
        pflags: OpenFlags,
        attrs: FileAttributes,
    ) -> Result<Handle, Self::Error> {
        self.record(format!("open {path} mode={}", mode_of(&attrs)));
        if pflags.contains(OpenFlags::WRITE) {
            self.shared
                .written
                .lock()
                .unwrap()
                .insert(path.clone(), Vec::new());
            return Ok(Handle {
                id,
                handle: self.handle(Open::Write { path }),
            });
        }
        // A directory opens as a file too: its "bytes" are made up.
        match self.shared.tree.node(&path, true) {
            Some(_) => Ok(Handle {
                id,
                handle: self.handle(Open::Read { path }),
            }),
            None => Err(StatusCode::NoSuchFile),
        }
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, Self::Error> {
        let Some(Open::Read { path }) = self.handles.get(&handle) else {
            return Err(StatusCode::Failure);
        };
        let path = path.clone();
        if offset > 0 && self.shared.tree.gated.as_deref() == Some(path.as_str()) {
            let mut gate = self.shared.gate.clone();
            let _ = gate.wait_for(|open| *open).await;
        }
        let data = match self.shared.tree.node(&path, true) {
            Some(Node::File { data, .. }) => data,
            Some(_) => READ_AS_A_FILE.to_vec(),
            None => return Err(StatusCode::NoSuchFile),
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        if start >= data.len() {
            return Err(StatusCode::Eof);
        }
        let end = data.len().min(start + len as usize);
        Ok(Data {
            id,
            data: data[start..end].to_vec(),
        })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, Self::Error> {
        let Some(Open::Write { path }) = self.handles.get(&handle) else {
            return Err(StatusCode::Failure);
        };
        let mut written = self.shared.written.lock().unwrap();
        let file = written.entry(path.clone()).or_default();
        let start = offset as usize;
        if file.len() < start + data.len() {
            file.resize(start + data.len(), 0);
        }
        file[start..start + data.len()].copy_from_slice(&data);
        Ok(Self::ok(id))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let path = match self.handles.get(&handle) {
            Some(Open::Write { path } | Open::Read { path } | Open::Dir { path, .. }) => {
                path.clone()
            }
            None => return Err(StatusCode::Failure),
        };
        self.record(format!("fsetstat {path} mode={}", mode_of(&attrs)));
        Ok(Self::ok(id))
    }

    async fn setstat(
        &mut self,
        id: u32,
        path: String,
        attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        self.record(format!("setstat {path} mode={}", mode_of(&attrs)));
        Ok(Self::ok(id))
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, Self::Error> {
        self.record(format!("rename {oldpath} {newpath}"));
        let mut written = self.shared.written.lock().unwrap();
        let data = written.remove(&oldpath).ok_or(StatusCode::NoSuchFile)?;
        written.insert(newpath, data);
        Ok(Self::ok(id))
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, Self::Error> {
        self.record(format!("remove {filename}"));
        self.shared.written.lock().unwrap().remove(&filename);
        Ok(Self::ok(id))
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        self.handles.remove(&handle);
        Ok(Self::ok(id))
    }
}
