//! Length-prefixed bincode framing: a little-endian `u32` byte count, then
//! one bincode (serde, standard config) encoded message. Used on the init
//! socket and on the shim's control socket.

use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use sendfd::RecvWithFd;

use serde::{de::DeserializeOwned, Serialize};

#[cfg(test)]
use crate::control::Event;
use crate::control::Stream;

/// Upper bound on one frame; output is sent in chunks far below this, so a
/// larger prefix means a confused or hostile peer.
pub const MAX_FRAME: usize = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("i/o on framed stream")]
    Io(#[from] io::Error),
    #[error("encode message")]
    Encode(#[from] bincode::error::EncodeError),
    #[error("decode message")]
    Decode(#[from] bincode::error::DecodeError),
    #[error("frame of {0} bytes exceeds the {MAX_FRAME} byte limit")]
    TooLarge(usize),
    #[error("peer closed the stream")]
    Closed,
}

pub type Result<T> = std::result::Result<T, Error>;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes `msg` as one frame (prefix included) appended to `out`.
pub fn encode_into<T: Serialize>(msg: &T, out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    bincode::serde::encode_into_std_write(msg, out, config())?;
    let len = out.len() - start - 4;
    if len > MAX_FRAME {
        out.truncate(start);
        return Err(Error::TooLarge(len));
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

/// Encodes `msg` as one frame.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>> {
    let mut v = Vec::with_capacity(64);
    encode_into(msg, &mut v)?;
    Ok(v)
}

/// Decodes one message body (without prefix).
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    let (v, _) = bincode::serde::decode_from_slice(body, config())?;
    Ok(v)
}

/// Writes one frame with a blocking writer.
pub fn write<T: Serialize, W: Write>(w: &mut W, msg: &T) -> Result<()> {
    w.write_all(&encode(msg)?)?;
    Ok(())
}

/// Reads one frame with a blocking reader; `Error::Closed` on a clean EOF
/// before the first byte of a frame.
pub fn read<T: DeserializeOwned, R: Read>(r: &mut R) -> Result<T> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Err(Error::Closed),
            Ok(0) => return Err(Error::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(Error::TooLarge(len));
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    decode(&body)
}

/// Incremental decoder for non-blocking streams: feed bytes, pop frames.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
    pos: usize,
}

impl Decoder {
    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Returns the body of the next complete frame, if one is buffered.
    pub fn next_body(&mut self) -> Result<Option<&[u8]>> {
        let avail = &self.buf[self.pos..];
        if avail.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        if len > MAX_FRAME {
            return Err(Error::TooLarge(len));
        }
        if avail.len() < 4 + len {
            return Ok(None);
        }
        let start = self.pos + 4;
        self.pos += 4 + len;
        Ok(Some(&self.buf[start..start + len]))
    }

    /// Returns the next complete message, if one is buffered.
    pub fn next_frame<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        match self.next_body()? {
            Some(body) => Ok(Some(decode(body)?)),
            None => Ok(None),
        }
    }
}

/// Reads frames from a blocking unix socket, keeping the fd a peer sends
/// along with one (SCM_RIGHTS): the pty master init opens, the start socket
/// `hind-runc create` hands init.
#[derive(Default)]
pub struct FdReader {
    dec: Decoder,
}

impl FdReader {
    /// The next message; an fd that arrived meanwhile goes into `fd`.
    /// [`Error::Closed`] at EOF, [`Error::Io`] if receiving failed.
    pub fn recv<T: DeserializeOwned>(
        &mut self,
        sock: &UnixStream,
        fd: &mut Option<OwnedFd>,
    ) -> Result<T> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(m) = self.dec.next_frame()? {
                return Ok(m);
            }
            let mut fds: [RawFd; 1] = [-1];
            let (n, nfds) = sock.recv_with_fd(&mut buf, &mut fds)?;
            if nfds > 0 {
                // SAFETY: the kernel just installed this fd in our table and
                // nothing else refers to it.
                *fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
            }
            if n == 0 {
                return Err(Error::Closed);
            }
            self.dec.feed(&buf[..n]);
        }
    }
}

/// The output path carries hundreds of MB: its frames are written and read
/// by hand here, byte for byte what bincode makes of
/// `Event::Output { stream, data }` (checked by a test), because bincode's
/// serde path goes through the data a byte at a time.
const OUTPUT_VARIANT: u8 = 3;

fn put_varint(out: &mut Vec<u8>, n: u64) {
    if n < 251 {
        out.push(n as u8);
    } else if n <= u16::MAX as u64 {
        out.push(251);
        out.extend_from_slice(&(n as u16).to_le_bytes());
    } else if n <= u32::MAX as u64 {
        out.push(252);
        out.extend_from_slice(&(n as u32).to_le_bytes());
    } else {
        out.push(253);
        out.extend_from_slice(&n.to_le_bytes());
    }
}

fn get_varint(b: &[u8]) -> Option<(u64, usize)> {
    match *b.first()? {
        n @ 0..=250 => Some((n as u64, 1)),
        251 => Some((u16::from_le_bytes(b.get(1..3)?.try_into().ok()?) as u64, 3)),
        252 => Some((u32::from_le_bytes(b.get(1..5)?.try_into().ok()?) as u64, 5)),
        253 => Some((u64::from_le_bytes(b.get(1..9)?.try_into().ok()?), 9)),
        _ => None,
    }
}

/// Appends an `Event::Output` frame.
pub fn encode_output(out: &mut Vec<u8>, stream: Stream, data: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(OUTPUT_VARIANT);
    out.push(match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    });
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// Reads an `Event::Output` body without copying its data; `None` for any
/// other event.
pub fn decode_output(body: &[u8]) -> Option<(Stream, &[u8])> {
    if body.first() != Some(&OUTPUT_VARIANT) {
        return None;
    }
    let stream = match body.get(1)? {
        0 => Stream::Stdout,
        1 => Stream::Stderr,
        _ => return None,
    };
    let (len, n) = get_varint(&body[2..])?;
    let data = body.get(2 + n..2 + n + len as usize)?;
    (2 + n + data.len() == body.len()).then_some((stream, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_split_feed() {
        let a = encode(&("hello".to_string(), 7u32)).unwrap();
        let b = encode(&vec![1u8, 2, 3]).unwrap();
        let mut all = a.clone();
        all.extend_from_slice(&b);
        let mut d = Decoder::default();
        for chunk in all.chunks(3) {
            d.feed(chunk);
        }
        let x: (String, u32) = d.next_frame().unwrap().unwrap();
        assert_eq!(x, ("hello".to_string(), 7));
        let y: Vec<u8> = d.next_frame().unwrap().unwrap();
        assert_eq!(y, vec![1, 2, 3]);
        assert!(d.next_frame::<Vec<u8>>().unwrap().is_none());
    }

    #[test]
    fn blocking_read_reports_clean_eof() {
        let mut empty: &[u8] = &[];
        assert!(matches!(read::<u32, _>(&mut empty), Err(Error::Closed)));
    }

    #[test]
    fn output_fast_path_is_bincode() {
        for n in [0usize, 10, 250, 251, 65535, 65536, 70000] {
            let data: Vec<u8> = (0..n).map(|i| i as u8).collect();
            for stream in [Stream::Stdout, Stream::Stderr] {
                let mut fast = Vec::new();
                encode_output(&mut fast, stream, &data);
                let slow = encode(&Event::Output {
                    stream,
                    data: data.clone(),
                })
                .unwrap();
                assert_eq!(fast, slow, "n={n}");
                assert_eq!(decode_output(&fast[4..]), Some((stream, &data[..])));
            }
        }
        let other = encode(&Event::Exited {
            exit_code: 3,
            oom_killed: false,
        })
        .unwrap();
        assert_eq!(decode_output(&other[4..]), None);
    }

    #[test]
    fn oversize_prefix_is_refused() {
        let mut d = Decoder::default();
        d.feed(&(u32::MAX).to_le_bytes());
        assert!(matches!(d.next_frame::<u32>(), Err(Error::TooLarge(_))));
    }
}
