//! Length-prefixed bincode framing: a little-endian `u32` byte count, then
//! one bincode (serde, standard config) encoded message. Used on the init
//! socket and on the shim's control socket.

use std::io::{self, Read, Write};

use serde::{de::DeserializeOwned, Serialize};

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
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Returns the next complete message, if one is buffered.
    pub fn next_frame<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
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
        let msg = decode(&avail[4..4 + len])?;
        self.pos += 4 + len;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        Ok(Some(msg))
    }
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
    fn oversize_prefix_is_refused() {
        let mut d = Decoder::default();
        d.feed(&(u32::MAX).to_le_bytes());
        assert!(matches!(d.next_frame::<u32>(), Err(Error::TooLarge(_))));
    }
}
