//! `hind logs`: prints a container's json-file log (rotated files first),
//! with `--tail`, `--since`, `-t`, and `-f` to follow new output until the
//! container's shim goes away. Entries are decoded by a small parser made
//! for the shim's own writer (serde_json is the fallback for anything
//! else), because this is the path where hundreds of MB get read.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context};
use protocol::paths::{self, Layout};

use crate::cli::LogsArgs;
use crate::{client, store};

/// One decoded entry.
struct Entry {
    text: Vec<u8>,
    stderr: bool,
    time: String,
}

fn hex(b: &[u8]) -> Option<u32> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| u32::from_str_radix(s, 16).ok())
}

/// Decodes a JSON string body starting right after its opening quote;
/// returns the text and the index just past the closing quote.
fn json_string(b: &[u8], mut i: usize, out: &mut Vec<u8>) -> Option<usize> {
    loop {
        let start = i;
        while i < b.len() && b[i] != b'"' && b[i] != b'\\' {
            i += 1;
        }
        out.extend_from_slice(&b[start..i]);
        match b.get(i)? {
            b'"' => return Some(i + 1),
            _ => {
                let c = *b.get(i + 1)?;
                i += 2;
                match c {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'u' => {
                        let mut cp = hex(b.get(i..i + 4)?)?;
                        i += 4;
                        if (0xd800..0xdc00).contains(&cp) && b.get(i..i + 2) == Some(b"\\u") {
                            let lo = hex(b.get(i + 2..i + 6)?)?;
                            cp =
                                0x10000 + ((cp - 0xd800) << 10) + (lo.wrapping_sub(0xdc00) & 0x3ff);
                            i += 6;
                        }
                        let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                        out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                    other => out.push(other),
                }
            }
        }
    }
}

fn parse_fast(line: &[u8]) -> Option<Entry> {
    let mut text = Vec::with_capacity(line.len());
    let i = json_string(
        line,
        line.strip_prefix(b"{\"log\":\"")?.as_ptr() as usize - line.as_ptr() as usize,
        &mut text,
    )?;
    let rest = &line[i..];
    let rest = rest.strip_prefix(b",\"stream\":\"")?;
    let stderr = rest.starts_with(b"stderr\"");
    let rest = &rest[rest.iter().position(|&c| c == b'"')? + 1..];
    let rest = rest.strip_prefix(b",\"time\":\"")?;
    let end = rest.iter().position(|&c| c == b'"')?;
    Some(Entry {
        text,
        stderr,
        time: String::from_utf8_lossy(&rest[..end]).into_owned(),
    })
}

fn parse(line: &[u8]) -> Option<Entry> {
    if let Some(e) = parse_fast(line) {
        return Some(e);
    }
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    Some(Entry {
        text: v["log"].as_str()?.as_bytes().to_vec(),
        stderr: v["stream"] == "stderr",
        time: v["time"].as_str().unwrap_or_default().to_string(),
    })
}

/// `--since`: RFC 3339, unix seconds, or a duration ago (`10m`, `1h30m`).
fn parse_since(s: &str) -> anyhow::Result<SystemTime> {
    if let Some(t) = protocol::time::parse_rfc3339(s) {
        return Ok(t);
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs.max(0.0)));
    }
    let mut total = 0f64;
    let mut num = String::new();
    for ch in s.chars() {
        if ch.is_ascii_digit() || ch == '.' {
            num.push(ch);
            continue;
        }
        let n: f64 = num.parse().map_err(|_| anyhow!("invalid --since {s:?}"))?;
        num.clear();
        total += n * match ch {
            's' => 1.0,
            'm' => 60.0,
            'h' => 3600.0,
            'd' => 86400.0,
            _ => return Err(anyhow!("invalid --since {s:?}")),
        };
    }
    if !num.is_empty() {
        return Err(anyhow!(
            "invalid --since {s:?}: a duration needs a unit (s, m, h)"
        ));
    }
    Ok(SystemTime::now() - Duration::from_secs_f64(total))
}

/// Writes entries to stdout and stderr, flushing one before the other
/// so their order is kept.
struct Printer {
    out: io::BufWriter<io::Stdout>,
    err: io::BufWriter<io::Stderr>,
    last_err: bool,
    timestamps: bool,
    since: Option<SystemTime>,
}

impl Printer {
    fn print(&mut self, e: &Entry) -> io::Result<()> {
        if let Some(since) = self.since {
            if protocol::time::parse_rfc3339(&e.time).is_some_and(|t| t < since) {
                return Ok(());
            }
        }
        if e.stderr != self.last_err {
            if e.stderr {
                self.out.flush()?;
            } else {
                self.err.flush()?;
            }
            self.last_err = e.stderr;
        }
        let w: &mut dyn Write = if e.stderr {
            &mut self.err
        } else {
            &mut self.out
        };
        if self.timestamps {
            w.write_all(e.time.as_bytes())?;
            w.write_all(b" ")?;
        }
        w.write_all(&e.text)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.err.flush()
    }
}

fn files(log: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut n = 1;
    while let Ok(true) = std::fs::exists(rotated(log, n)) {
        v.push(rotated(log, n));
        n += 1;
    }
    v.reverse();
    v.push(log.to_path_buf());
    v
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

pub fn logs(layout: &Layout, a: LogsArgs) -> anyhow::Result<i32> {
    let c = store::resolve(layout, &a.container)?;
    let log = c.dir.join(paths::LOG);
    let tail = match a.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| anyhow!("invalid --tail {n:?}: a number or all"))?,
        ),
    };
    let mut p = Printer {
        out: io::BufWriter::with_capacity(256 * 1024, io::stdout()),
        err: io::BufWriter::with_capacity(64 * 1024, io::stderr()),
        last_err: false,
        timestamps: a.timestamps,
        since: a.since.as_deref().map(parse_since).transpose()?,
    };
    // Connect before reading, so "the shim is gone" below means every byte
    // it wrote is already in the file.
    let follow = if a.follow && c.running() {
        client::connect(layout, &c.id).ok()
    } else {
        None
    };

    let mut current = None;
    let mut ring = std::collections::VecDeque::new();
    for f in files(&log) {
        let Ok(file) = File::open(&f) else { continue };
        let mut r = BufReader::with_capacity(1 << 20, file);
        let mut line = Vec::with_capacity(4096);
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            if let Some(e) = parse(&line) {
                match tail {
                    Some(0) => {}
                    Some(n) => {
                        if ring.len() == n {
                            ring.pop_front();
                        }
                        ring.push_back(e);
                    }
                    None => p.print(&e)?,
                }
            }
        }
        if f == log {
            current = Some(r.into_inner());
        }
    }
    for e in ring.drain(..) {
        p.print(&e)?;
    }
    p.flush()?;

    if let Some(sock) = follow {
        follow_file(&log, current, sock, &mut p).context("follow the log")?;
    }
    Ok(0)
}

/// Reads what `file` has beyond what was read, printing whole entries.
fn drain(
    file: &mut File,
    pending: &mut Vec<u8>,
    buf: &mut [u8],
    p: &mut Printer,
) -> io::Result<()> {
    loop {
        let n = file.read(buf)?;
        if n == 0 {
            return Ok(());
        }
        pending.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(nl) = pending[start..].iter().position(|&b| b == b'\n') {
            if let Some(e) = parse(&pending[start..start + nl + 1]) {
                p.print(&e)?;
            }
            start += nl + 1;
        }
        pending.drain(..start);
    }
}

/// Prints what is appended to `log` until the shim closes `sock`, then
/// drains the rest. After rotations it reads, in order, every rotated file
/// newer than the one it was reading (several may have rotated between two
/// looks), then the new current file.
fn follow_file(
    log: &Path,
    current: Option<File>,
    sock: std::os::unix::net::UnixStream,
    p: &mut Printer,
) -> io::Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;

    let mut file = match current {
        Some(f) => f,
        None => File::open(log)?,
    };
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = false;
    loop {
        drain(&mut file, &mut pending, &mut buf, p)?;
        let ino = file.metadata()?.ino();
        if std::fs::metadata(log).map(|m| m.ino()).ok() != Some(ino) {
            // Rotated files, oldest first; ours is among them unless it
            // has already been deleted, in which case all are newer.
            let chain = files(log);
            let rotated = &chain[..chain.len() - 1];
            let ours = rotated
                .iter()
                .position(|f| std::fs::metadata(f).map(|m| m.ino()).ok() == Some(ino));
            let newer = ours.map_or(0, |i| i + 1);
            for f in &rotated[newer..] {
                if let Ok(mut g) = File::open(f) {
                    pending.clear();
                    drain(&mut g, &mut pending, &mut buf, p)?;
                }
            }
            if let Ok(f) = File::open(log) {
                file = f;
                pending.clear();
                continue;
            }
        }
        p.flush()?;
        if done {
            return Ok(());
        }
        let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0);
        if ready > 0 {
            let mut b = [0u8; 4096];
            match (&sock).read(&mut b) {
                Ok(0) | Err(_) => done = true,
                Ok(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_parser_matches_writer() {
        let line = br#"{"log":"a\"b\\c\n\u0001\u00e9 \ud83d\ude00","stream":"stderr","time":"2026-01-01T00:00:00.000000000Z"}"#;
        let e = parse(line).unwrap();
        assert_eq!(String::from_utf8(e.text).unwrap(), "a\"b\\c\n\u{1}é 😀");
        assert!(e.stderr);
        assert_eq!(e.time, "2026-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn since_forms() {
        assert!(parse_since("10m").is_ok());
        assert!(parse_since("1h30m").is_ok());
        assert!(parse_since("2026-01-01T00:00:00Z").is_ok());
        assert!(parse_since("1700000000").is_ok());
        assert!(parse_since("10").is_ok());
        assert!(parse_since("10x").is_err());
    }
}
