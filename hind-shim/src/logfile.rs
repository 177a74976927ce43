//! The container's log, in Docker's json-file format: one JSON object per
//! line, `{"log":"...","stream":"stdout","time":"..."}`. Every line of output
//! becomes one entry whose `log` ends in `\n`; output that ends without a
//! newline becomes an entry without it, which is how readers tell a partial
//! line. Written before any client sees the bytes.
//!
//! With `--log-opt max-size=S,max-file=N` the file is rotated before an
//! append would take it past S: `container.log.{N-2}` ... `.1` shift up,
//! the current file becomes `.1`, and a new one starts. At least one old
//! file is always kept (N is raised to 2), so a rotation never leaves the
//! log empty of everything the container said just before it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use protocol::control::Stream;
use protocol::paths::rotated_log;
use protocol::record::LogOptions;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("open log {0}")]
    Open(PathBuf, #[source] io::Error),
    #[error("write log {0}")]
    Write(PathBuf, #[source] io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

pub struct LogFile {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    size: u64,
    opts: LogOptions,
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::Open(path.to_path_buf(), e))
}

impl LogFile {
    pub fn open(path: &Path, opts: LogOptions) -> Result<LogFile> {
        let file = open_append(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogFile {
            path: path.to_path_buf(),
            file,
            buf: Vec::with_capacity(64 * 1024),
            size,
            opts,
        })
    }

    /// Appends `data` as entries stamped `time`, and writes them out.
    pub fn write(&mut self, stream: Stream, data: &[u8], time: &str) -> Result<()> {
        self.buf.clear();
        encode_chunk(&mut self.buf, data, stream.name(), time);
        let Some(max) = self.opts.max_size else {
            let buf = std::mem::take(&mut self.buf);
            let result = self.append(&buf);
            self.buf = buf;
            return result;
        };
        // Rotation is decided per entry, so one big read cannot carry the
        // file past max-size (an entry larger than max-size gets a file of
        // its own).
        let buf = std::mem::take(&mut self.buf);
        let result = self.write_rotating(&buf, max);
        self.buf = buf;
        result
    }

    fn write_rotating(&mut self, buf: &[u8], max: u64) -> Result<()> {
        let (mut start, mut pos) = (0, 0);
        while pos < buf.len() {
            let next = buf[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(buf.len(), |i| pos + i + 1);
            let before = self.size + (pos - start) as u64;
            if before > 0 && before + (next - pos) as u64 > max {
                self.append(&buf[start..pos])?;
                start = pos;
                self.rotate()?;
            }
            pos = next;
        }
        self.append(&buf[start..pos])
    }

    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.file
            .write_all(data)
            .map_err(|e| Error::Write(self.path.clone(), e))?;
        self.size += data.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        let keep = self.opts.max_file.max(2);
        let err = |p: &Path, e| Error::Write(p.to_path_buf(), e);
        let _ = std::fs::remove_file(rotated_log(&self.path, keep - 1));
        for n in (1..keep - 1).rev() {
            let from = rotated_log(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, rotated_log(&self.path, n + 1))
                    .map_err(|e| err(&from, e))?;
            }
        }
        std::fs::rename(&self.path, rotated_log(&self.path, 1)).map_err(|e| err(&self.path, e))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }

    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| Error::Write(self.path.clone(), e))
    }
}

/// What each byte becomes inside a JSON string: 0 = itself, 1 = `\u00XX`,
/// anything else = that byte after a backslash.
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = 1;
        i += 1;
    }
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Appends the entries for one chunk of output: one per line, the last
/// one without a newline if the chunk ends mid-line. One pass over the
/// bytes with a table lookup each; valid UTF-8 (the usual case) is
/// checked once for the whole chunk.
pub fn encode_chunk(out: &mut Vec<u8>, data: &[u8], stream: &str, time: &str) {
    if std::str::from_utf8(data).is_err() {
        for line in data.split_inclusive(|b| *b == b'\n') {
            let mut clean = Vec::with_capacity(line.len());
            for chunk in line.utf8_chunks() {
                clean.extend_from_slice(chunk.valid().as_bytes());
                if !chunk.invalid().is_empty() {
                    clean.extend_from_slice("\u{fffd}".as_bytes());
                }
            }
            encode_chunk(out, &clean, stream, time);
        }
        return;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    const HEAD: &[u8] = b"{\"log\":\"";
    let mut tail = Vec::with_capacity(40 + time.len());
    tail.extend_from_slice(b"\",\"stream\":\"");
    tail.extend_from_slice(stream.as_bytes());
    tail.extend_from_slice(b"\",\"time\":\"");
    tail.extend_from_slice(time.as_bytes());
    tail.extend_from_slice(b"\"}\n");

    out.reserve(data.len() + data.len() / 8 + 64);
    let mut open = false;
    let mut run = 0;
    for (i, &b) in data.iter().enumerate() {
        if !open {
            out.extend_from_slice(HEAD);
            open = true;
            run = i;
        }
        let e = ESCAPE[b as usize];
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&data[run..i]);
        run = i + 1;
        if e == 1 {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        } else {
            out.push(b'\\');
            out.push(e);
        }
        if b == b'\n' {
            out.extend_from_slice(&tail);
            open = false;
        }
    }
    if open {
        out.extend_from_slice(&data[run..]);
        out.extend_from_slice(&tail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_utf8_chunks_split_per_line() {
        let mut out = Vec::new();
        encode_chunk(&mut out, "x\n\té\\\u{7}\nend".as_bytes(), "stderr", "T");
        let text = String::from_utf8(out).unwrap();
        let logs: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["log"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(logs, vec!["x\n", "\té\\\u{7}\n", "end"]);
        let mut empty = Vec::new();
        encode_chunk(&mut empty, b"", "stdout", "T");
        assert!(empty.is_empty());
    }

    #[test]
    fn rotation_splits_a_big_chunk() {
        let d = std::env::temp_dir().join(format!("hind-log-big-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("c.log");
        let opts = LogOptions {
            max_size: Some(1024),
            max_file: 3,
        };
        let mut l = LogFile::open(&p, opts).unwrap();
        let text: String = (0..5000).map(|i| format!("{i}\n")).collect();
        l.write(Stream::Stdout, text.as_bytes(), "T").unwrap();
        for f in [p.clone(), rotated_log(&p, 1), rotated_log(&p, 2)] {
            assert!(std::fs::metadata(&f).unwrap().len() <= 1024, "{f:?}");
        }
        assert!(!rotated_log(&p, 3).exists());
        assert!(std::fs::read_to_string(&p).unwrap().contains("\"4999\\n\""));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn rotation_keeps_an_old_file() {
        let d = std::env::temp_dir().join(format!("hind-log-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("c.log");
        let opts = LogOptions {
            max_size: Some(200),
            max_file: 1,
        };
        let mut l = LogFile::open(&p, opts).unwrap();
        for i in 0..20 {
            l.write(Stream::Stdout, format!("line {i}\n").as_bytes(), "T")
                .unwrap();
        }
        let cur = std::fs::read_to_string(&p).unwrap();
        let old = std::fs::read_to_string(rotated_log(&p, 1)).unwrap();
        assert!(cur.contains("line 19"));
        assert!(!old.is_empty());
        assert!(!rotated_log(&p, 2).exists());
        assert!(std::fs::metadata(&p).unwrap().len() <= 200);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn entries_are_json_lines() {
        let mut out = Vec::new();
        encode_chunk(&mut out, b"a\"b\n\x01\xff tail", "stdout", "T");
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let a: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(a["log"], "a\"b\n");
        let b: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(b["log"], "\u{1}\u{fffd} tail");
        assert_eq!(b["stream"], "stdout");
    }
}
