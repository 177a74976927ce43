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

/// The name of rotated file number `n` (1 is the newest).
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
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
        for line in data.split_inclusive(|b| *b == b'\n') {
            encode_entry(&mut self.buf, line, stream.name(), time);
        }
        if let Some(max) = self.opts.max_size {
            if self.size > 0 && self.size + self.buf.len() as u64 > max {
                self.rotate()?;
            }
        }
        self.size += self.buf.len() as u64;
        self.file
            .write_all(&self.buf)
            .map_err(|e| Error::Write(self.path.clone(), e))
    }

    fn rotate(&mut self) -> Result<()> {
        let keep = self.opts.max_file.max(2);
        let err = |p: &Path, e| Error::Write(p.to_path_buf(), e);
        let _ = std::fs::remove_file(rotated(&self.path, keep - 1));
        for n in (1..keep - 1).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, n + 1)).map_err(|e| err(&from, e))?;
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1)).map_err(|e| err(&self.path, e))?;
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

/// Appends one JSON entry. Invalid UTF-8 becomes U+FFFD, as Go's encoder
/// does for Docker.
pub fn encode_entry(out: &mut Vec<u8>, text: &[u8], stream: &str, time: &str) {
    out.extend_from_slice(b"{\"log\":\"");
    for chunk in text.utf8_chunks() {
        escape_into(out, chunk.valid());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
    out.extend_from_slice(b"\",\"stream\":\"");
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

fn escape_into(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let old = std::fs::read_to_string(rotated(&p, 1)).unwrap();
        assert!(cur.contains("line 19"));
        assert!(!old.is_empty());
        assert!(!rotated(&p, 2).exists());
        assert!(std::fs::metadata(&p).unwrap().len() <= 200);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn entries_are_json_lines() {
        let mut out = Vec::new();
        for line in b"a\"b\n\x01\xff tail".split_inclusive(|b| *b == b'\n') {
            encode_entry(&mut out, line, "stdout", "T");
        }
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
