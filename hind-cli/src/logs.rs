//! `hind logs`: prints a container's json-file log (rotated files first),
//! with `--tail`, `--since`, `-t`, and `-f` to follow new output until the
//! container's shim goes away. Entries are decoded by a small parser made
//! for the shim's own writer (serde_json is the fallback for anything
//! else), because this is the path where hundreds of MB get read.

use std::fs::File;
use std::io::{self, Read, Write};
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
        i += memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
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

/// Decodes one log line: the text goes into `text` (cleared first); the
/// stream and the time are returned, the time borrowed from the line.
fn parse_fast<'a>(line: &'a [u8], text: &mut Vec<u8>) -> Option<(bool, &'a [u8])> {
    const HEAD: &[u8] = b"{\"log\":\"";
    text.clear();
    if !line.starts_with(HEAD) {
        return None;
    }
    let i = json_string(line, HEAD.len(), text)?;
    let rest = line[i..].strip_prefix(b",\"stream\":\"")?;
    let stderr = rest.starts_with(b"stderr\"");
    let rest = &rest[memchr::memchr(b'"', rest)? + 1..];
    let rest = rest.strip_prefix(b",\"time\":\"")?;
    let end = memchr::memchr(b'"', rest)?;
    Some((stderr, &rest[..end]))
}

/// Like [`parse_fast`], with serde_json for lines another writer made.
fn parse<'a>(line: &'a [u8], text: &mut Vec<u8>) -> Option<(bool, std::borrow::Cow<'a, [u8]>)> {
    if let Some((stderr, time)) = parse_fast(line, text) {
        return Some((stderr, time.into()));
    }
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    text.clear();
    text.extend_from_slice(v["log"].as_str()?.as_bytes());
    let time = v["time"].as_str().unwrap_or_default().as_bytes().to_vec();
    Some((v["stream"] == "stderr", time.into()))
}

fn entry(line: &[u8]) -> Option<Entry> {
    let mut text = Vec::new();
    let (stderr, time) = parse(line, &mut text)?;
    Some(Entry {
        text,
        stderr,
        time: String::from_utf8_lossy(&time).into_owned(),
    })
}

/// Like [`for_each_line`] for what `file` holds now, through a read-only
/// mapping: a big log is then parsed where the page cache has it, without
/// copying it first (that copy was the largest cost of `hind logs`). Leaves
/// the file offset at the end of what was mapped, for a follower.
fn for_each_mapped_line(
    file: &mut File,
    pending: &mut Vec<u8>,
    mut f: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let len = file.metadata()?.len() as usize;
    if len == 0 {
        return Ok(());
    }
    // SAFETY: a private read-only mapping of a log file that its shim only
    // ever appends to (rotation renames, never truncates), so the mapped
    // range stays backed for the mapping's life, which ends in this call.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            std::os::fd::AsRawFd::as_raw_fd(file),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return for_each_line(file, pending, f);
    }
    // SAFETY: `ptr` maps `len` readable bytes (see above) until munmap.
    let data = unsafe { std::slice::from_raw_parts(ptr as *const u8, len) };
    // SAFETY: advice on our own mapping; no memory is changed.
    unsafe { libc::madvise(ptr, len, libc::MADV_SEQUENTIAL) };
    let mut start = 0;
    let mut r = Ok(());
    for nl in memchr::memchr_iter(b'\n', data) {
        if let Err(e) = f(&data[start..=nl]) {
            r = Err(e);
            break;
        }
        start = nl + 1;
    }
    if r.is_ok() {
        pending.extend_from_slice(&data[start..]);
    }
    // SAFETY: unmaps exactly the mapping made above; `data` is not used
    // after this point.
    unsafe { libc::munmap(ptr, len) };
    r?;
    file.seek(SeekFrom::Start(len as u64))?;
    Ok(())
}

/// Calls `f` with every complete line read from `r`, reading in big
/// chunks; a trailing partial line stays in `pending` for the next call.
fn for_each_line(
    r: &mut impl Read,
    pending: &mut Vec<u8>,
    mut f: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let mut chunk = &buf[..n];
        if !pending.is_empty() {
            match memchr::memchr(b'\n', chunk) {
                Some(nl) => {
                    pending.extend_from_slice(&chunk[..=nl]);
                    f(pending)?;
                    pending.clear();
                    chunk = &chunk[nl + 1..];
                }
                None => {
                    pending.extend_from_slice(chunk);
                    continue;
                }
            }
        }
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', chunk) {
            f(&chunk[start..=nl])?;
            start = nl + 1;
        }
        pending.extend_from_slice(&chunk[start..]);
    }
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
        self.print_parts(e.stderr, e.time.as_bytes(), &e.text)
    }

    fn print_parts(&mut self, stderr: bool, time: &[u8], text: &[u8]) -> io::Result<()> {
        if let Some(since) = self.since {
            let t = std::str::from_utf8(time)
                .ok()
                .and_then(protocol::time::parse_rfc3339);
            if t.is_some_and(|t| t < since) {
                return Ok(());
            }
        }
        if stderr != self.last_err {
            if stderr {
                self.out.flush()?;
            } else {
                self.err.flush()?;
            }
            self.last_err = stderr;
        }
        let w: &mut dyn Write = if stderr { &mut self.err } else { &mut self.out };
        if self.timestamps {
            w.write_all(time)?;
            w.write_all(b" ")?;
        }
        w.write_all(text)
    }

    /// Decodes and prints one log line.
    fn line(&mut self, line: &[u8], text: &mut Vec<u8>) -> io::Result<()> {
        if let Some((stderr, time)) = parse(line, text) {
            self.print_parts(stderr, &time, text)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.err.flush()
    }
}

fn files(log: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut n = 1;
    while let Ok(true) = std::fs::exists(paths::rotated_log(log, n)) {
        v.push(paths::rotated_log(log, n));
        n += 1;
    }
    v.reverse();
    v.push(log.to_path_buf());
    v
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
    let mut text = Vec::with_capacity(64 * 1024);
    for f in files(&log) {
        let Ok(mut file) = File::open(&f) else {
            continue;
        };
        let mut pending = Vec::new();
        for_each_mapped_line(&mut file, &mut pending, |line| match tail {
            Some(0) => Ok(()),
            Some(n) => {
                if let Some(e) = entry(line) {
                    if ring.len() == n {
                        ring.pop_front();
                    }
                    ring.push_back(e);
                }
                Ok(())
            }
            None => p.line(line, &mut text),
        })?;
        if f == log {
            current = Some(file);
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
fn drain(file: &mut File, pending: &mut Vec<u8>, p: &mut Printer) -> io::Result<()> {
    let mut text = Vec::new();
    for_each_line(file, pending, |line| p.line(line, &mut text))
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
    let mut done = false;
    loop {
        drain(&mut file, &mut pending, p)?;
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
                    drain(&mut g, &mut pending, p)?;
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
        let e = entry(line).unwrap();
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
