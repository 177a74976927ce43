//! The container's log, in Docker's json-file format: one JSON object per
//! line, `{"log":"...","stream":"stdout","time":"..."}`. Every line of output
//! becomes one entry whose `log` ends in `\n`; output that ends without a
//! newline becomes an entry without it, which is how readers tell a partial
//! line. Written before any client sees the bytes.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use protocol::control::Stream;

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
}

impl LogFile {
    pub fn open(path: &Path) -> Result<LogFile> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| Error::Open(path.to_path_buf(), e))?;
        Ok(LogFile {
            path: path.to_path_buf(),
            file,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Appends `data` as entries stamped `time`, and writes them out.
    pub fn write(&mut self, stream: Stream, data: &[u8], time: &str) -> Result<()> {
        self.buf.clear();
        for line in data.split_inclusive(|b| *b == b'\n') {
            encode_entry(&mut self.buf, line, stream.name(), time);
        }
        self.file
            .write_all(&self.buf)
            .map_err(|e| Error::Write(self.path.clone(), e))
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
