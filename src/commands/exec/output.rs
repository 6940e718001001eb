//! Where `exec` output goes: whole prefixed lines through one printer (so
//! lines from different instances never mix mid-line), files in `--output
//! DIR`, and the bytes kept for `--json`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::error::Error;
use crate::ssh::capture::{OutputSink, Stream};
use crate::target::syntax::validate_instance_id;

/// Colours for the prefixes, one per instance in turn.
const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

/// Where one instance's whole lines go.
pub type LineSender = mpsc::Sender<(Stream, Vec<u8>)>;

/// The stdout and stderr prefixes of one instance.
pub type Prefixes = (Vec<u8>, Vec<u8>);

/// The one task that writes prefixed lines to stdout and stderr.
pub struct Printer {
    tx: mpsc::Sender<(Stream, Vec<u8>)>,
    task: tokio::task::JoinHandle<()>,
}

impl Printer {
    pub fn start() -> Printer {
        let (tx, mut rx) = mpsc::channel::<(Stream, Vec<u8>)>(1024);
        let task = tokio::spawn(async move {
            let mut stdout = tokio::io::stdout();
            let mut stderr = tokio::io::stderr();
            while let Some((stream, line)) = rx.recv().await {
                // A write error (a closed pipe) drops the output, not the run.
                let _ = match stream {
                    Stream::Stdout => stdout.write_all(&line).await,
                    Stream::Stderr => stderr.write_all(&line).await,
                };
                if rx.is_empty() {
                    let _ = stdout.flush().await;
                    let _ = stderr.flush().await;
                }
            }
            let _ = stdout.flush().await;
            let _ = stderr.flush().await;
        });
        Printer { tx, task }
    }

    /// A sender for one instance's lines.
    pub fn sender(&self) -> LineSender {
        self.tx.clone()
    }

    /// Wait until every line sent so far is written.
    pub async fn finish(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

/// `NAME (i-…): ` (or `i-…: ` without a Name), coloured as `--color` and
/// `NO_COLOR` decide for each stream.
pub fn prefixes(id: &str, name: Option<&str>, index: usize) -> Prefixes {
    (
        prefix(id, name, index, crate::term::color::stdout()),
        prefix(id, name, index, crate::term::color::stderr()),
    )
}

/// One prefix: plain, or in the `index`th colour for a terminal.
fn prefix(id: &str, name: Option<&str>, index: usize, colour: bool) -> Vec<u8> {
    let plain = match name {
        Some(n) => format!("{n} ({id}): "),
        None => format!("{id}: "),
    };
    if colour {
        let c = COLOURS[index % COLOURS.len()];
        format!("\x1b[{c}m{plain}\x1b[0m").into_bytes()
    } else {
        plain.into_bytes()
    }
}

/// One instance's output: any of prefixed lines, files and kept bytes.
pub struct InstanceSink {
    lines: Option<Lines>,
    /// Plain blocking files: each write lands in the file at once, so no
    /// byte waits in a buffer that an abandoned task or the runtime's
    /// shutdown could drop (a few small writes per instance). Created empty
    /// up front, but opened only once there is something to write and
    /// closed when the instance is done: a fleet of hundreds never holds
    /// more files open than jobs run at once.
    files: Option<[OutputFile; 2]>,
    /// What was kept for `--json`: stdout, stderr.
    pub kept: Option<(Vec<u8>, Vec<u8>)>,
    /// A failure writing the files, reported with the instance.
    pub file_error: Option<String>,
}

/// One of an instance's output files: where it is, which file it is, and
/// the open file while the instance writes to it.
struct OutputFile {
    path: std::path::PathBuf,
    /// The device and inode created: a later open must find this file.
    identity: (u64, u64),
    open: Option<std::fs::File>,
}

impl OutputFile {
    /// A new empty file at `path`, readable by the user only. An earlier
    /// run's file there is removed first (its name only: a hard link
    /// someone made to another file leaves that file alone); a symbolic
    /// link is refused, never followed.
    fn create(path: std::path::PathBuf) -> std::io::Result<OutputFile> {
        use rustix::fs::{Mode, OFlags};
        use std::io::{Error, ErrorKind};
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    "a symbolic link is there, and it is not followed: remove it, or choose another --output directory",
                ));
            }
            Ok(m) if m.is_file() => std::fs::remove_file(&path)?,
            Ok(_) => {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    "something other than a file is there",
                ));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // O_EXCL: if anything appeared there since, this fails.
        let fd = rustix::fs::open(
            &path,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::RUSR | Mode::WUSR,
        )?;
        let meta = std::fs::File::from(fd).metadata()?;
        Ok(OutputFile {
            path,
            identity: (meta.dev(), meta.ino()),
            open: None,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let file = match &mut self.open {
            Some(f) => f,
            None => {
                use rustix::fs::{Mode, OFlags};
                let fd = rustix::fs::open(
                    &self.path,
                    OFlags::WRONLY | OFlags::APPEND | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let file = std::fs::File::from(fd);
                let meta = file.metadata()?;
                if (meta.dev(), meta.ino()) != self.identity {
                    return Err(std::io::Error::other(
                        "it was replaced by another file since eic-ssh created it",
                    ));
                }
                self.open.insert(file)
            }
        };
        std::io::Write::write_all(file, bytes)
    }
}

struct Lines {
    tx: LineSender,
    prefix: Prefixes,
    partial: (Vec<u8>, Vec<u8>),
}

impl InstanceSink {
    pub fn new(lines: Option<(LineSender, Prefixes)>, keep: bool) -> InstanceSink {
        InstanceSink {
            lines: lines.map(|(tx, prefix)| Lines {
                tx,
                prefix,
                partial: (Vec::new(), Vec::new()),
            }),
            files: None,
            kept: keep.then(|| (Vec::new(), Vec::new())),
            file_error: None,
        }
    }

    /// Also write `DIR/<id>.out` and `DIR/<id>.err` (created now, so every
    /// instance has both, even when empty). The ID came from the API: it
    /// must be an instance ID to become a file name.
    pub async fn with_files(mut self, dir: &Path, id: &str) -> Result<InstanceSink, Error> {
        validate_instance_id(id).map_err(|e| {
            Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the API answered with {e}; it is not used as a file name in --output"),
            ))
        })?;
        let create = |ext: &str| {
            let path = dir.join(format!("{id}.{ext}"));
            OutputFile::create(path.clone()).map_err(|e| {
                Error::Io(std::io::Error::new(
                    e.kind(),
                    format!("cannot create {}: {e}", path.display()),
                ))
            })
        };
        self.files = Some([create("out")?, create("err")?]);
        Ok(self)
    }

    /// Send the last line of each stream, if it had no newline, and let go
    /// of the printer (it ends when every instance has).
    pub async fn finish(&mut self) {
        if let Some(mut l) = self.lines.take() {
            for stream in [Stream::Stdout, Stream::Stderr] {
                let (partial, prefix) = match stream {
                    Stream::Stdout => (&mut l.partial.0, &l.prefix.0),
                    Stream::Stderr => (&mut l.partial.1, &l.prefix.1),
                };
                if !partial.is_empty() {
                    let mut line = prefix.clone();
                    line.append(partial);
                    line.push(b'\n');
                    let _ = l.tx.send((stream, line)).await;
                }
            }
        }
        // Every write already went to the file: closing is all that is left.
        if let Some(files) = &mut self.files {
            for f in files {
                f.open = None;
            }
        }
    }
}

impl OutputSink for InstanceSink {
    async fn data(&mut self, stream: Stream, bytes: &[u8]) {
        if let Some((out, err)) = &mut self.kept {
            match stream {
                Stream::Stdout => out.extend_from_slice(bytes),
                Stream::Stderr => err.extend_from_slice(bytes),
            }
        }
        if let Some([out, err]) = &mut self.files {
            let f = match stream {
                Stream::Stdout => out,
                Stream::Stderr => err,
            };
            if let Err(e) = f.write(bytes) {
                self.file_error
                    .get_or_insert(format!("{}: {e}", f.path.display()));
            }
        }
        if let Some(l) = &mut self.lines {
            let (partial, prefix) = match stream {
                Stream::Stdout => (&mut l.partial.0, &l.prefix.0),
                Stream::Stderr => (&mut l.partial.1, &l.prefix.1),
            };
            partial.extend_from_slice(bytes);
            while let Some(end) = partial.iter().position(|&b| b == b'\n') {
                let rest = partial.split_off(end + 1);
                let mut line = prefix.clone();
                line.extend_from_slice(partial);
                *partial = rest;
                let _ = l.tx.send((stream, line)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files for hundreds of instances cost no open file until written,
    /// and none once the instance is done; every instance has both files.
    #[tokio::test]
    async fn output_files_are_open_only_while_written() {
        let dir = tempfile::tempdir().unwrap();
        let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
        let before = fds();
        let mut sinks = Vec::new();
        for i in 0..300 {
            let sink = InstanceSink::new(None, false)
                .with_files(dir.path(), &format!("i-{i:08x}"))
                .await
                .unwrap();
            sinks.push(sink);
        }
        assert!(
            fds() < before + 100,
            "{} fds held for 300 instances",
            fds() - before
        );
        sinks[7].data(Stream::Stdout, b"out\n").await;
        sinks[7].data(Stream::Stderr, b"err\n").await;
        sinks[7].data(Stream::Stdout, b"more\n").await;
        sinks[7].finish().await;
        assert!(fds() < before + 100);
        let read = |n: &str| std::fs::read_to_string(dir.path().join(n)).unwrap();
        assert_eq!(read("i-00000007.out"), "out\nmore\n");
        assert_eq!(read("i-00000007.err"), "err\n");
        assert_eq!(read("i-00000008.out"), "");
        assert!(sinks[7].file_error.is_none());
    }

    #[tokio::test]
    async fn sends_whole_prefixed_lines_only() {
        let (tx, mut rx) = mpsc::channel(16);
        let prefix = (b"web (i-1): ".to_vec(), b"web (i-1)! ".to_vec());
        let mut sink = InstanceSink::new(Some((tx, prefix)), true);
        sink.data(Stream::Stdout, b"one\ntw").await;
        sink.data(Stream::Stderr, b"oops\n").await;
        sink.data(Stream::Stdout, b"o\nthree").await;
        sink.finish().await;
        let mut got = Vec::new();
        while let Some((s, l)) = rx.recv().await {
            got.push((s, String::from_utf8(l).unwrap()));
        }
        assert_eq!(
            got,
            vec![
                (Stream::Stdout, "web (i-1): one\n".into()),
                (Stream::Stderr, "web (i-1)! oops\n".into()),
                (Stream::Stdout, "web (i-1): two\n".into()),
                (Stream::Stdout, "web (i-1): three\n".into()),
            ]
        );
        assert_eq!(sink.kept.unwrap().0, b"one\ntwo\nthree");
    }

    #[test]
    fn prefixes_name_the_instance_and_colour_only_a_terminal() {
        assert_eq!(prefix("i-1", Some("web"), 0, false), b"web (i-1): ");
        assert_eq!(prefix("i-1", None, 0, false), b"i-1: ");
        assert_eq!(
            prefix("i-1", Some("web"), 1, true),
            b"\x1b[33mweb (i-1): \x1b[0m"
        );
        assert_ne!(prefix("i-1", None, 0, true), prefix("i-1", None, 1, true));
    }
}
