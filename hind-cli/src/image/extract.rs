//! Unpacking an untrusted OCI/Docker layer tar into a directory of the image
//! store, and the byte-stream helpers around it: detecting gzip or zstd
//! compression and hashing what passes through.
//!
//! A layer comes from a registry, so every name in it is hostile until
//! proven otherwise. The tar crate only parses; every filesystem change is
//! made here with `*at` calls relative to a directory fd of the layer root.
//! Parent directories are resolved with `openat2(RESOLVE_IN_ROOT)`, so a
//! symlink in the layer (`evil -> /etc`, `up -> ../../..`) is followed as if
//! the layer were `/` and cannot lead out of it, and the last component is
//! never followed (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `mkdirat`,
//! `symlinkat`, `mknodat`, `linkat` without `AT_SYMLINK_FOLLOW`).
//!
//! Whiteouts are turned into what overlayfs reads (image-spec `layer.md`):
//! `DIR/.wh.NAME` becomes a 0/0 character device `DIR/NAME`, and
//! `DIR/.wh..wh..opq` the xattr `trusted.overlay.opaque=y` on `DIR`.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{self, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{self, FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{self, Gid, Uid, UnlinkatFlags};
use sha2::{Digest, Sha256};
use tar::EntryType;

/// Size of the copy buffer for file data and of the reader in front of a
/// decompressor. `tar -x` is the benchmark: writes of 1 MiB keep the
/// syscall count per large file far below its.
const BUF_SIZE: usize = 1 << 20;

/// Buffer after a decompressor: the tar parser reads 512-byte headers, and
/// each read straight from the decoder would be one decompress call.
const OUT_BUF_SIZE: usize = 256 << 10;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const OPAQUE_XATTR: &CStr = c"trusted.overlay.opaque";
/// File capabilities: the set-user-ID bit of the capability world.
const CAPABILITY_XATTR: &CStr = c"security.capability";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("open layer root {0}")]
    Root(PathBuf, #[source] io::Error),
    #[error("read layer tar (after {0} entries)")]
    Read(u64, #[source] io::Error),
    #[error("read layer header")]
    Sniff(#[source] io::Error),
    #[error("start zstd decoder")]
    Zstd(#[source] io::Error),
    #[error("layer entry {0:?}: bad header")]
    Header(String, #[source] io::Error),
    #[error("layer entry {0:?}: path leaves the layer")]
    Escape(String),
    #[error("layer entry {0:?}: link target {1:?} leaves the layer")]
    LinkEscape(String, String),
    #[error("layer entry {0:?}: sparse files in PAX format are not supported")]
    Sparse(String),
    #[error("layer entry {0:?}: open parent directory")]
    Parent(String, #[source] io::Error),
    #[error("layer entry {entry:?}: create parent directory {dir:?}")]
    MakeParent {
        entry: String,
        dir: String,
        #[source]
        source: io::Error,
    },
    #[error("layer entry {entry:?}: parent {dir:?} is a symlink to nothing in the layer")]
    DanglingParent { entry: String, dir: String },
    #[error("layer entry {0:?}: remove existing")]
    Remove(String, #[source] io::Error),
    #[error("layer entry {0:?}: create")]
    Create(String, #[source] io::Error),
    #[error("layer entry {0:?}: read data")]
    ReadData(String, #[source] io::Error),
    #[error("layer entry {0:?}: write")]
    Write(String, #[source] io::Error),
    #[error("layer entry {0:?}: mkdir")]
    Mkdir(String, #[source] io::Error),
    #[error("layer entry {0:?}: symlink")]
    Symlink(String, #[source] io::Error),
    #[error("layer entry {0:?}: link to {1:?}")]
    Link(String, String, #[source] io::Error),
    #[error("layer entry {0:?}: mknod")]
    Mknod(String, #[source] io::Error),
    #[error("layer entry {0:?}: chown")]
    Chown(String, #[source] io::Error),
    #[error("layer entry {0:?}: chmod")]
    Chmod(String, #[source] io::Error),
    #[error("layer entry {0:?}: set times")]
    Times(String, #[source] io::Error),
    #[error("layer entry {0:?}: set xattr {1}")]
    Xattr(String, String, #[source] io::Error),
    #[error("{0:?}: cannot replace the existing {1} with a {2}")]
    Replace(String, &'static str, &'static str),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The tar crate quotes raw header bytes in its errors; a non-tar input
/// (a script, a binary) would otherwise print pages of it. Keeps errors to
/// one readable line.
fn one_line(e: io::Error) -> io::Error {
    let text = e.to_string();
    let mut line: String = text
        .chars()
        .take_while(|c| *c != '\n')
        .map(|c| if c.is_control() { '?' } else { c })
        .take(120)
        .collect();
    if line.len() < text.len() {
        line.push_str("...");
    }
    io::Error::new(e.kind(), line)
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Create character and block devices. Off for pulled images: a device
    /// node in an image is a way to reach host hardware from a container.
    pub allow_devices: bool,
    /// Give every entry this owner instead of its header's (`hind cp`
    /// without `-a`). Files then lose their set-user-ID and set-group-ID
    /// bits and `security.capability`, as chown(2) drops them: they
    /// granted the original owner's rights, not the new one's.
    pub owner: Option<(Uid, Gid)>,
    /// The tar is not a layer but a copy of user files (`hind cp`): `.wh.`
    /// names are ordinary names, and an existing directory is never
    /// replaced by a non-directory or the other way round (the entry is
    /// refused instead, as Docker's cp does), so a copy cannot delete a
    /// tree at the destination.
    pub plain: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Tar entries read, including skipped ones.
    pub entries: u64,
    /// Bytes of regular-file data written.
    pub bytes: u64,
}

/// Unpacks the uncompressed tar stream `r` into `root`, an existing empty
/// directory. `r` should be buffered (see [`decompress`]); it is read to its
/// end, past the tar's end marker, so that a [`DigestReader`] below it sees
/// every byte of the blob.
pub fn unpack(r: &mut dyn Read, root: &Path, opts: &Options) -> Result<Stats> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let root_fd = fcntl::open(root, flags, Mode::empty())
        .map(own)
        .map_err(|e| Error::Root(root.to_path_buf(), e.into()))?;
    let mut u = Unpacker {
        root: root_fd,
        opts,
        buf: vec![0; BUF_SIZE],
        cache: None,
        changed: false,
        dirs: Vec::new(),
        dir_index: HashMap::new(),
        skipped: HashSet::new(),
        stats: Stats::default(),
    };
    {
        let tap = RefCell::new(Tap::default());
        let mut archive = tar::Archive::new(Tapped {
            inner: &mut *r,
            tap: &tap,
        });
        let mut entries = archive.entries().map_err(|e| Error::Read(0, one_line(e)))?;
        loop {
            let start = tap.borrow_mut().arm();
            let next = entries.next();
            let seen = tap.borrow_mut().disarm();
            let Some(entry) = next else { break };
            let mut entry = entry.map_err(|e| Error::Read(u.stats.entries, one_line(e)))?;
            u.stats.entries += 1;
            let pax = pax_data(&seen, start, entry.raw_header_position())
                .map_err(|e| Error::Read(u.stats.entries, one_line(e)))?;
            u.entry(&mut entry, pax)?;
            // Read what the entry left (data of a skipped entry), so that
            // the next recording starts where this entry's data ends.
            io::copy(&mut entry, &mut io::sink())
                .map_err(|e| Error::Read(u.stats.entries, one_line(e)))?;
        }
    }
    io::copy(r, &mut io::sink()).map_err(|e| Error::Read(u.stats.entries, one_line(e)))?;
    u.finish_dirs()?;
    Ok(u.stats)
}

/// Sniffs the first bytes: gzip (1f 8b), zstd (28 b5 2f fd), else plain tar;
/// returns a buffered reader of the tar.
pub fn decompress<'a>(r: Box<dyn Read + Send + 'a>) -> Result<Box<dyn Read + Send + 'a>> {
    decompress_kind(r).map(|(_, r)| r)
}

/// How a layer stream was found to be compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// [`decompress`], also telling which compression it found: for a plain
/// tar the caller's blob digest is already the diff id.
pub fn decompress_kind<'a>(
    mut r: Box<dyn Read + Send + 'a>,
) -> Result<(Compression, Box<dyn Read + Send + 'a>)> {
    // Read the magic ourselves rather than peek into a BufReader: a reader
    // may return fewer bytes than asked (a pipe, a socket), and a BufReader
    // cannot top up a short first fill without consuming it.
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Sniff(e)),
        }
    }
    let whole = io::Cursor::new(head).take(n as u64).chain(r);
    let input = BufReader::with_capacity(BUF_SIZE, whole);
    let magic = &head[..n];
    if magic.starts_with(GZIP_MAGIC) {
        // Multi-member: a layer may be several gzip members back to back
        // (pigz, appended layers), and a single-member decoder would stop
        // after the first.
        let gz = flate2::bufread::MultiGzDecoder::new(input);
        Ok((
            Compression::Gzip,
            Box::new(BufReader::with_capacity(OUT_BUF_SIZE, gz)),
        ))
    } else if magic.starts_with(ZSTD_MAGIC) {
        let zst = zstd::stream::read::Decoder::with_buffer(input).map_err(Error::Zstd)?;
        Ok((
            Compression::Zstd,
            Box::new(BufReader::with_capacity(OUT_BUF_SIZE, zst)),
        ))
    } else {
        Ok((Compression::None, Box::new(input)))
    }
}

/// Passes bytes through while hashing them with sha256 and counting them.
pub struct DigestReader<R> {
    inner: R,
    hash: Sha256,
    count: u64,
}

impl<R: Read> DigestReader<R> {
    pub fn new(r: R) -> Self {
        DigestReader {
            inner: r,
            hash: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// `sha256:<hex>` of what was read so far.
    pub fn digest(&self) -> String {
        format_digest(&self.hash.clone().finalize())
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Passes bytes through to an inner writer while hashing them with sha256
/// and counting them.
pub struct DigestWriter<W> {
    inner: W,
    hash: Sha256,
    count: u64,
}

impl<W: Write> DigestWriter<W> {
    pub fn new(w: W) -> Self {
        DigestWriter {
            inner: w,
            hash: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// `sha256:<hex>` of what was written so far.
    pub fn digest(&self) -> String {
        format_digest(&self.hash.clone().finalize())
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Hash only what the inner writer took: the caller retries the rest.
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `sha256:<hex>` of a byte slice.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format_digest(&Sha256::digest(bytes))
}

fn format_digest(sum: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(7 + 2 * sum.len());
    s.push_str("sha256:");
    for b in sum {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Takes ownership of an fd a nix call just returned.
fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: every caller passes the fd a successful open/openat/openat2
    // returned a moment ago; nothing else holds or closes it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Opens the directory `path` (relative, no leading `/`) below `root`, with
/// every symlink on the way resolved as if `root` were `/`. `extra` adds
/// open flags (`O_NOFOLLOW` for the last component).
pub(crate) fn open_in_root(root: RawFd, path: &[u8], extra: OFlag) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | extra)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    // openat2(2): with RESOLVE_IN_ROOT the kernel answers EAGAIN when a
    // concurrent rename or mount might have let `..` slip out; retry.
    let mut tries = 0;
    loop {
        match fcntl::openat2(root, path, how) {
            Err(Errno::EAGAIN) if tries < 16 => tries += 1,
            r => return r.map(own),
        }
    }
}

/// Opens the directory `name` in `dir` without following a symlink.
fn open_dir_at(dir: RawFd, name: &[u8]) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    fcntl::openat(Some(dir), name, flags, Mode::empty()).map(own)
}

/// Removes `name` in `dir` and everything below it, never following a
/// symlink: a symlink is unlinked, not entered.
fn remove_tree(dir: RawFd, name: &[u8]) -> io::Result<()> {
    let mut d = Dir::from(open_dir_at(dir, name)?)?;
    let mut names = Vec::new();
    for e in d.iter() {
        let n = e?.file_name().to_bytes().to_vec();
        if n != b"." && n != b".." {
            names.push(n);
        }
    }
    let fd = d.as_raw_fd();
    for n in names {
        match unistd::unlinkat(Some(fd), n.as_slice(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(Errno::EISDIR) => remove_tree(fd, &n)?,
            Err(e) => return Err(e.into()),
        }
    }
    drop(d);
    unistd::unlinkat(Some(dir), name, UnlinkatFlags::RemoveDir)?;
    Ok(())
}

/// Why a path was refused.
struct Escapes;

/// The components of a tar path joined by `/`, without empty and `.`
/// components; the empty result is the layer root. Absolute paths and `..`
/// anywhere are refused outright: a legitimate layer has neither, and
/// refusing is simpler to trust than clamping.
fn clean(raw: &[u8]) -> std::result::Result<Vec<u8>, Escapes> {
    if raw.starts_with(b"/") {
        return Err(Escapes);
    }
    let mut out = Vec::with_capacity(raw.len());
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(Escapes),
            _ => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(out)
}

/// Splits a cleaned, non-empty path into its parent and last component.
fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

/// Reads until `buf` is full or the entry ends, so that each write is as
/// large as the buffer allows.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A PAX time, `SECONDS[.FRACTION]`, possibly negative.
fn parse_pax_time(v: &[u8]) -> Option<TimeSpec> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut secs: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos: i64 = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    if neg {
        secs = -secs;
        if nanos > 0 {
            secs -= 1;
            nanos = 1_000_000_000 - nanos;
        }
    }
    Some(TimeSpec::new(secs, nanos))
}

/// Counts the bytes the tar parser reads and, while armed, keeps them.
///
/// tar 0.4 splits PAX records at newlines instead of walking them by their
/// length prefix (composefs/tar-rs#428, #452), so a binary xattr value
/// holding 0x0a (a `security.capability` does, now and then) comes out
/// malformed. Its raw records are private, so they are taken from the
/// stream here: armed before the parser looks for the next entry, the tap
/// holds the extension headers it consumes on the way.
#[derive(Default)]
struct Tap {
    pos: u64,
    seen: Option<Vec<u8>>,
}

impl Tap {
    /// Starts keeping bytes; returns the stream position they start at.
    fn arm(&mut self) -> u64 {
        self.seen = Some(Vec::new());
        self.pos
    }

    fn disarm(&mut self) -> Vec<u8> {
        self.seen.take().unwrap_or_default()
    }
}

struct Tapped<'a> {
    inner: &'a mut dyn Read,
    tap: &'a RefCell<Tap>,
}

impl Read for Tapped<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut tap = self.tap.borrow_mut();
        tap.pos += n as u64;
        if let Some(seen) = &mut tap.seen {
            seen.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}

const BLOCK: u64 = 512;

fn round_up(n: u64) -> u64 {
    n.div_ceil(BLOCK) * BLOCK
}

/// The data of the PAX header (`x`) among the extension headers that
/// precede the entry header at `header_pos`. `seen` holds the stream from
/// `start`, the end of the previous entry's data; the extension headers
/// begin at the next block boundary.
fn pax_data(seen: &[u8], start: u64, header_pos: u64) -> io::Result<Option<&[u8]>> {
    let bad = || io::Error::other("extension headers do not line up");
    let end = usize::try_from(header_pos.checked_sub(start).ok_or_else(bad)?).map_err(|_| bad())?;
    let mut off = (round_up(start) - start) as usize;
    let mut pax = None;
    while off < end {
        let block = seen.get(off..off + BLOCK as usize).ok_or_else(bad)?;
        let h = tar::Header::from_byte_slice(block);
        let size = usize::try_from(h.entry_size()?).map_err(|_| bad())?;
        let data = off + BLOCK as usize;
        if h.entry_type() == EntryType::XHeader {
            pax = Some(seen.get(data..data + size).ok_or_else(bad)?);
        }
        off = data + round_up(size as u64) as usize;
    }
    if off != end {
        return Err(bad());
    }
    Ok(pax)
}

/// Splits PAX data into its `LEN KEY=VALUE\n` records, by length: a value
/// may hold newlines.
fn pax_records(mut data: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let mut out = Vec::new();
    // Some writers pad the data with NULs.
    while !data.iter().all(|b| *b == 0) {
        let sp = data.iter().position(|b| *b == b' ')?;
        let len: usize = std::str::from_utf8(&data[..sp]).ok()?.parse().ok()?;
        if len <= sp + 1 || len > data.len() || data[len - 1] != b'\n' {
            return None;
        }
        let kv = &data[sp + 1..len - 1];
        let eq = kv.iter().position(|b| *b == b'=')?;
        out.push((&kv[..eq], &kv[eq + 1..]));
        data = &data[len..];
    }
    Some(out)
}

/// What the PAX records of an entry add to its header.
#[derive(Default)]
struct Pax {
    xattrs: Vec<(CString, Vec<u8>)>,
    mtime: Option<TimeSpec>,
}

impl Pax {
    /// These records less the xattr `name`.
    fn without_xattr(&self, name: &CStr) -> Pax {
        Pax {
            xattrs: self
                .xattrs
                .iter()
                .filter(|(n, _)| n.as_c_str() != name)
                .cloned()
                .collect(),
            mtime: self.mtime,
        }
    }

    fn parse(data: Option<&[u8]>, label: &str) -> Result<Pax> {
        let mut pax = Pax::default();
        let Some(data) = data else {
            return Ok(pax);
        };
        let bad = |what: &str| Error::Header(label.to_owned(), io::Error::other(what.to_owned()));
        let records = pax_records(data).ok_or_else(|| bad("malformed PAX record"))?;
        // The tar crate took path, link target, size and owner from its own
        // reading of these records. Where a value holds a newline that
        // reading differs, and a crafted value ("\n20 size=...") could make
        // this layer unpack differently here than under any other tar
        // reader: refuse unless both readings agree.
        for key in [&b"path"[..], b"linkpath", b"size", b"uid", b"gid"] {
            let mut ours = records.iter().filter(|(k, _)| *k == key).map(|(_, v)| *v);
            let first = ours.next();
            let theirs = tar::PaxExtensions::new(data)
                .filter_map(|r| r.ok())
                .find(|e| e.key_bytes() == key)
                .map(|e| e.value_bytes());
            if ours.next().is_some() || first != theirs {
                return Err(bad("ambiguous PAX records"));
            }
        }
        for (key, value) in records {
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                // overlayfs reads trusted.overlay.* of its layers as
                // instructions (redirect, metacopy, origin). Only the
                // whiteout entries may produce them.
                if name.starts_with(b"trusted.overlay.") {
                    eprintln!(
                        "hind: layer entry {label}: xattr {} skipped",
                        String::from_utf8_lossy(name)
                    );
                    continue;
                }
                let name = CString::new(name).map_err(|_| bad("NUL in xattr name"))?;
                pax.xattrs.push((name, value.to_vec()));
            } else if key == b"mtime" {
                pax.mtime = parse_pax_time(value);
            } else if key.starts_with(b"GNU.sparse.") {
                // The tar crate expands GNU's old sparse headers but not the
                // PAX ones; unpacking the raw map as file data would be
                // silent corruption.
                return Err(Error::Sparse(label.to_owned()));
            }
        }
        Ok(pax)
    }
}

/// Owner, mode and time of an entry.
struct Meta {
    mode: Mode,
    uid: Uid,
    gid: Gid,
    mtime: TimeSpec,
}

impl Meta {
    fn read(h: &tar::Header, pax: &Pax, label: &str) -> Result<Meta> {
        let bad = |err: io::Error| Error::Header(label.to_owned(), one_line(err));
        let id = |v: u64| {
            u32::try_from(v).map_err(|_| bad(io::Error::other(format!("id {v} out of range"))))
        };
        let mtime = match pax.mtime {
            Some(t) => t,
            None => TimeSpec::new(h.mtime().map_err(bad)?.try_into().unwrap_or(i64::MAX), 0),
        };
        Ok(Meta {
            // Some writers put the file type bits into the mode field too.
            mode: Mode::from_bits_truncate(h.mode().map_err(bad)? & 0o7777),
            uid: Uid::from_raw(id(h.uid().map_err(bad)?)?),
            gid: Gid::from_raw(id(h.gid().map_err(bad)?)?),
            mtime,
        })
    }
}

/// A directory whose mode or mtime is applied at the end: creating its
/// children changes its mtime, and a mode without owner write and search
/// would stop a non-root unpacker from filling it.
struct DirMeta {
    label: String,
    path: Vec<u8>,
    mode: Mode,
    mtime: TimeSpec,
    defer_mode: bool,
}

struct Unpacker<'o> {
    root: OwnedFd,
    opts: &'o Options,
    buf: Vec<u8>,
    /// The parent directory of the previous entry, by cleaned path. Layers
    /// list a directory's files together, so this saves an openat2 for
    /// most entries.
    cache: Option<(Vec<u8>, OwnedFd)>,
    /// Set when an entry removed something: a removed directory or symlink
    /// may be a component of the cached path, so the cache is dropped.
    changed: bool,
    dirs: Vec<DirMeta>,
    dir_index: HashMap<Vec<u8>, usize>,
    /// Device nodes not made, so that hard links to them are skipped too
    /// rather than failing.
    skipped: HashSet<Vec<u8>>,
    stats: Stats,
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>, pax: Option<&[u8]>) -> Result<()> {
        let raw = e.path_bytes().into_owned();
        let label = String::from_utf8_lossy(&raw).into_owned();
        let mut kind = e.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            // Archive-wide PAX records (git archive puts its commit id there);
            // nothing in them describes a file.
            return Ok(());
        }
        let pax = Pax::parse(pax, &label)?;
        let path = clean(&raw).map_err(|_| Error::Escape(label.clone()))?;
        if path.is_empty() {
            return Ok(());
        }
        // Pre-POSIX tars mark directories only by the trailing slash.
        if kind == EntryType::Regular && raw.ends_with(b"/") {
            kind = EntryType::Directory;
        }
        let (parent, name) = split(&path);
        self.changed = false;
        let (key, dir) = match self.cache.take() {
            Some((key, fd)) if key == parent => (key, fd),
            _ => (parent.to_vec(), self.open_parent(&label, parent)?),
        };
        let r = self.place(e, kind, &label, &path, dir.as_raw_fd(), name, &pax);
        if !self.changed {
            self.cache = Some((key, dir));
        }
        r
    }

    /// Opens the parent directory `path` of an entry, creating missing
    /// directories (0755, root-owned) one at a time.
    fn open_parent(&self, label: &str, path: &[u8]) -> Result<OwnedFd> {
        let root = self.root.as_raw_fd();
        let failed = |e: Errno| Error::Parent(label.to_owned(), e.into());
        if path.is_empty() {
            return self
                .root
                .try_clone()
                .map_err(|e| Error::Parent(label.to_owned(), e));
        }
        match open_in_root(root, path, OFlag::empty()) {
            Err(Errno::ENOENT) => {}
            r => return r.map_err(failed),
        }
        let mut cur = self
            .root
            .try_clone()
            .map_err(|e| Error::Parent(label.to_owned(), e))?;
        let mut end = 0;
        for comp in path.split(|b| *b == b'/') {
            end += comp.len();
            let prefix = &path[..end];
            end += 1;
            // Each prefix is resolved from the root again, not from `cur`:
            // a symlink met on the way must mean what it would mean in the
            // container (`/` is the layer root), not relative to `cur`.
            match open_in_root(root, prefix, OFlag::empty()) {
                Ok(fd) => {
                    cur = fd;
                    continue;
                }
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(failed(e)),
            }
            let made =
                match stat::mkdirat(Some(cur.as_raw_fd()), comp, Mode::from_bits_truncate(0o755)) {
                    Ok(()) => true,
                    Err(Errno::EEXIST) => false,
                    Err(e) => {
                        return Err(Error::MakeParent {
                            entry: label.to_owned(),
                            dir: String::from_utf8_lossy(prefix).into_owned(),
                            source: e.into(),
                        })
                    }
                };
            cur = match open_dir_at(cur.as_raw_fd(), comp) {
                Ok(fd) => fd,
                // It exists, yet resolving it found nothing: a symlink to a
                // path the layer does not have. Following it by hand would
                // mean reimplementing RESOLVE_IN_ROOT; layers never need it.
                Err(Errno::ELOOP | Errno::ENOTDIR) if !made => {
                    return Err(Error::DanglingParent {
                        entry: label.to_owned(),
                        dir: String::from_utf8_lossy(prefix).into_owned(),
                    })
                }
                Err(e) => return Err(failed(e)),
            };
            if made {
                // mkdirat's mode went through the umask.
                stat::fchmod(cur.as_raw_fd(), Mode::from_bits_truncate(0o755)).map_err(failed)?;
            }
        }
        Ok(cur)
    }

    #[allow(clippy::too_many_arguments)]
    fn place<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        kind: EntryType,
        label: &str,
        path: &[u8],
        dir: RawFd,
        name: &[u8],
        pax: &Pax,
    ) -> Result<()> {
        if !self.opts.plain {
            if name == OPAQUE_MARKER {
                return xattr::set(xattr::On::Fd(dir), OPAQUE_XATTR, b"y").map_err(|e| {
                    Error::Xattr(label.to_owned(), "trusted.overlay.opaque".into(), e)
                });
            }
            if name.starts_with(b".wh..wh.") {
                // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs) that old
                // Docker layers carry; it means nothing to overlayfs.
                return Ok(());
            }
            if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
                return self.whiteout(label, dir, hidden);
            }
        }
        let mut meta = Meta::read(e.header(), pax, label)?;
        let reowned;
        let pax = match self.opts.owner {
            Some((uid, gid)) => {
                meta.uid = uid;
                meta.gid = gid;
                if kind == EntryType::Directory {
                    pax
                } else {
                    meta.mode.remove(Mode::S_ISUID | Mode::S_ISGID);
                    reowned = pax.without_xattr(CAPABILITY_XATTR);
                    &reowned
                }
            }
            None => pax,
        };
        match kind {
            // The tar crate expands GNU sparse entries into their full data.
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.file(e, label, dir, name, &meta, pax)
            }
            EntryType::Directory => self.dir(label, path, dir, name, &meta, pax),
            EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                self.symlink(label, dir, name, &target, &meta, pax)
            }
            EntryType::Link => {
                let target = e
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                self.hardlink(label, path, dir, name, &target)
            }
            EntryType::Char | EntryType::Block => {
                if !self.opts.allow_devices {
                    eprintln!("hind: layer entry {label}: device node skipped");
                    self.skipped.insert(path.to_vec());
                    return Ok(());
                }
                let bad = |err: io::Error| Error::Header(label.to_owned(), one_line(err));
                let major = e.header().device_major().map_err(bad)?.unwrap_or(0);
                let minor = e.header().device_minor().map_err(bad)?.unwrap_or(0);
                let sflag = if kind == EntryType::Char {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                let dev = stat::makedev(major.into(), minor.into());
                self.node(label, dir, name, sflag, dev, &meta, pax)
            }
            EntryType::Fifo => self.node(label, dir, name, SFlag::S_IFIFO, 0, &meta, pax),
            other => {
                eprintln!(
                    "hind: layer entry {label}: entry type {:?} skipped",
                    char::from(other.as_byte())
                );
                Ok(())
            }
        }
    }

    /// Runs `make`, which creates `name` in `dir`; if something is already
    /// there, the later entry wins: remove it and run `make` again.
    fn create<T>(
        &mut self,
        label: &str,
        dir: RawFd,
        name: &[u8],
        mut make: impl FnMut() -> nix::Result<T>,
        err: fn(String, io::Error) -> Error,
    ) -> Result<T> {
        match make() {
            Err(Errno::EEXIST) => {
                self.remove(label, dir, name)?;
                make().map_err(|e| err(label.to_owned(), e.into()))
            }
            r => r.map_err(|e| err(label.to_owned(), e.into())),
        }
    }

    fn remove(&mut self, label: &str, dir: RawFd, name: &[u8]) -> Result<()> {
        self.changed = true;
        // unlink(2) on Linux answers EISDIR for a directory.
        match unistd::unlinkat(Some(dir), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(Errno::EISDIR) if self.opts.plain => Err(Error::Replace(
                label.to_owned(),
                "directory",
                "non-directory",
            )),
            Err(Errno::EISDIR) => {
                remove_tree(dir, name).map_err(|e| Error::Remove(label.to_owned(), e))
            }
            Err(e) => Err(Error::Remove(label.to_owned(), e.into())),
        }
    }

    fn file<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        label: &str,
        dir: RawFd,
        name: &[u8],
        meta: &Meta,
        pax: &Pax,
    ) -> Result<()> {
        // O_EXCL|O_NOFOLLOW: never write through whatever is at the name
        // already (a symlink planted by an earlier entry, or a hard link to
        // a file elsewhere in the layer); replace it instead.
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(0o600);
        let make = || fcntl::openat(Some(dir), name, flags, mode);
        let mut f = File::from(own(self.create(label, dir, name, make, Error::Create)?));
        loop {
            let n = read_full(e, &mut self.buf)
                .map_err(|err| Error::ReadData(label.to_owned(), err))?;
            if n == 0 {
                break;
            }
            f.write_all(&self.buf[..n])
                .map_err(|err| Error::Write(label.to_owned(), err))?;
            self.stats.bytes += n as u64;
            if n < self.buf.len() {
                break;
            }
        }
        apply_fd(label, f.as_raw_fd(), meta, pax, true, true)
    }

    fn dir(
        &mut self,
        label: &str,
        path: &[u8],
        dir: RawFd,
        name: &[u8],
        meta: &Meta,
        pax: &Pax,
    ) -> Result<()> {
        let mkdir_err = |e: Errno| Error::Mkdir(label.to_owned(), e.into());
        let mode = Mode::from_bits_truncate(0o700);
        let fd = match stat::mkdirat(Some(dir), name, mode) {
            // An existing directory is kept with its contents (a layer may
            // list a directory after its files, or twice).
            Ok(()) | Err(Errno::EEXIST) => match open_dir_at(dir, name) {
                Ok(fd) => fd,
                Err(Errno::ENOTDIR | Errno::ELOOP) if self.opts.plain => {
                    return Err(Error::Replace(
                        label.to_owned(),
                        "non-directory",
                        "directory",
                    ))
                }
                Err(Errno::ENOTDIR | Errno::ELOOP) => {
                    self.remove(label, dir, name)?;
                    stat::mkdirat(Some(dir), name, mode).map_err(mkdir_err)?;
                    open_dir_at(dir, name).map_err(mkdir_err)?
                }
                Err(e) => return Err(mkdir_err(e)),
            },
            Err(e) => return Err(mkdir_err(e)),
        };
        let defer_mode = meta.mode.bits() & 0o300 != 0o300;
        apply_fd(label, fd.as_raw_fd(), meta, pax, !defer_mode, false)?;
        let record = DirMeta {
            label: label.to_owned(),
            path: path.to_vec(),
            mode: meta.mode,
            mtime: meta.mtime,
            defer_mode,
        };
        match self.dir_index.get(path) {
            Some(&i) => self.dirs[i] = record,
            None => {
                self.dir_index.insert(path.to_vec(), self.dirs.len());
                self.dirs.push(record);
            }
        }
        Ok(())
    }

    fn symlink(
        &mut self,
        label: &str,
        dir: RawFd,
        name: &[u8],
        target: &[u8],
        meta: &Meta,
        pax: &Pax,
    ) -> Result<()> {
        // The target is stored verbatim, absolute or not: it is resolved
        // later inside the container, and nothing here ever follows it.
        let make = || unistd::symlinkat(target, Some(dir), name);
        self.create(label, dir, name, make, Error::Symlink)?;
        apply_at(label, dir, name, meta, pax, false)
    }

    fn hardlink(
        &mut self,
        label: &str,
        path: &[u8],
        dir: RawFd,
        name: &[u8],
        target: &[u8],
    ) -> Result<()> {
        let target_label = String::from_utf8_lossy(target).into_owned();
        let escape = || Error::LinkEscape(label.to_owned(), target_label.clone());
        let cleaned = clean(target).map_err(|_| escape())?;
        if cleaned.is_empty() {
            return Err(escape());
        }
        if cleaned == path {
            return Ok(());
        }
        if self.skipped.contains(&cleaned) {
            eprintln!("hind: layer entry {label}: link to a skipped device node skipped");
            return Ok(());
        }
        let link_err = |e: io::Error| Error::Link(label.to_owned(), target_label.clone(), e);
        let (tparent, tname) = split(&cleaned);
        // The target's directory is resolved in the root like any parent,
        // so it is always inside the layer; its last component is not
        // followed (linkat without AT_SYMLINK_FOLLOW): a hard link to a
        // symlink links the symlink itself.
        let tdir = if tparent.is_empty() {
            None
        } else {
            Some(
                open_in_root(self.root.as_raw_fd(), tparent, OFlag::empty())
                    .map_err(|e| link_err(e.into()))?,
            )
        };
        let tfd = tdir
            .as_ref()
            .map_or(self.root.as_raw_fd(), |fd| fd.as_raw_fd());
        let make = || {
            unistd::linkat(
                Some(tfd),
                tname,
                Some(dir),
                name,
                nix::fcntl::AtFlags::empty(),
            )
        };
        match make() {
            Err(Errno::EEXIST) => {
                self.remove(label, dir, name)?;
                make().map_err(|e| link_err(e.into()))
            }
            r => r.map_err(|e| link_err(e.into())),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn node(
        &mut self,
        label: &str,
        dir: RawFd,
        name: &[u8],
        kind: SFlag,
        dev: libc::dev_t,
        meta: &Meta,
        pax: &Pax,
    ) -> Result<()> {
        let perm = Mode::from_bits_truncate(meta.mode.bits() & 0o777);
        let make = || stat::mknodat(Some(dir), name, kind, perm, dev);
        self.create(label, dir, name, make, Error::Mknod)?;
        apply_at(label, dir, name, meta, pax, true)
    }

    /// `DIR/.wh.NAME`: a 0/0 character device NAME, root-owned, which
    /// overlayfs reads as "NAME of the layers below is deleted".
    fn whiteout(&mut self, label: &str, dir: RawFd, hidden: &[u8]) -> Result<()> {
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(Error::Escape(label.to_owned()));
        }
        let make = || stat::mknodat(Some(dir), hidden, SFlag::S_IFCHR, Mode::empty(), 0);
        self.create(label, dir, hidden, make, Error::Mknod)?;
        let root = (Some(Uid::from_raw(0)), Some(Gid::from_raw(0)));
        unistd::fchownat(
            Some(dir),
            hidden,
            root.0,
            root.1,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| Error::Chown(label.to_owned(), e.into()))
    }

    /// Applies the directory modes and mtimes held back until every entry
    /// was in place.
    fn finish_dirs(&mut self) -> Result<()> {
        self.cache = None;
        let root = self.root.as_raw_fd();
        for d in self.dirs.iter().rev() {
            let fd = match open_in_root(root, &d.path, OFlag::O_NOFOLLOW) {
                Ok(fd) => fd,
                // A later entry replaced the directory, and its metadata
                // went with it.
                Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => continue,
                Err(e) => return Err(Error::Times(d.label.clone(), e.into())),
            };
            if d.defer_mode {
                stat::fchmod(fd.as_raw_fd(), d.mode)
                    .map_err(|e| Error::Chmod(d.label.clone(), e.into()))?;
            }
            stat::futimens(fd.as_raw_fd(), &d.mtime, &d.mtime)
                .map_err(|e| Error::Times(d.label.clone(), e.into()))?;
        }
        Ok(())
    }
}

/// Owner, mode, xattrs and (if `times`) mtime through an open fd. chown
/// comes first because it clears setuid/setgid and file capabilities, then
/// the mode with those bits as the tar has them, then the xattrs
/// (`security.capability`), then the times, which nothing after changes.
fn apply_fd(label: &str, fd: RawFd, m: &Meta, pax: &Pax, mode: bool, times: bool) -> Result<()> {
    unistd::fchown(fd, Some(m.uid), Some(m.gid))
        .map_err(|e| Error::Chown(label.to_owned(), e.into()))?;
    if mode {
        stat::fchmod(fd, m.mode).map_err(|e| Error::Chmod(label.to_owned(), e.into()))?;
    }
    set_xattrs(label, xattr::On::Fd(fd), pax)?;
    if times {
        // atime = mtime: a tar has no atime worth keeping, and a fixed one
        // keeps unpacking deterministic.
        stat::futimens(fd, &m.mtime, &m.mtime)
            .map_err(|e| Error::Times(label.to_owned(), e.into()))?;
    }
    Ok(())
}

/// The same for `name` in `dir` (symlinks, fifos and devices, which are not
/// opened), never following a final symlink. `mode` is false for symlinks,
/// whose mode Linux ignores.
fn apply_at(label: &str, dir: RawFd, name: &[u8], m: &Meta, pax: &Pax, mode: bool) -> Result<()> {
    use nix::fcntl::AtFlags;
    unistd::fchownat(
        Some(dir),
        name,
        Some(m.uid),
        Some(m.gid),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::Chown(label.to_owned(), e.into()))?;
    if mode {
        // fchmodat cannot refuse to follow before Linux 6.6 (fchmodat2) and
        // nix 0.29 has no wrapper for that. The name is a fifo or device
        // node made a moment ago in a tree only this process writes, so
        // there is no symlink to follow.
        stat::fchmodat(Some(dir), name, m.mode, FchmodatFlags::FollowSymlink)
            .map_err(|e| Error::Chmod(label.to_owned(), e.into()))?;
    }
    if !pax.xattrs.is_empty() {
        let path = xattr::proc_path(dir, name)
            .map_err(|e| Error::Xattr(label.to_owned(), String::new(), e))?;
        set_xattrs(label, xattr::On::Path(&path), pax)?;
    }
    stat::utimensat(
        Some(dir),
        name,
        &m.mtime,
        &m.mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| Error::Times(label.to_owned(), e.into()))
}

fn set_xattrs(label: &str, on: xattr::On<'_>, pax: &Pax) -> Result<()> {
    for (name, value) in &pax.xattrs {
        match xattr::set(on, name, value) {
            Ok(()) => {}
            // A filesystem without xattrs (or without this namespace) loses
            // the attribute, as with `tar -x`; anything else is an error.
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => eprintln!(
                "hind: layer entry {label}: xattr {} not supported here, skipped",
                name.to_string_lossy()
            ),
            Err(e) => {
                return Err(Error::Xattr(
                    label.to_owned(),
                    name.to_string_lossy().into_owned(),
                    e,
                ))
            }
        }
    }
    Ok(())
}

/// Extended attributes through libc: nix 0.29 has no xattr calls. Shared
/// with `diff`, which reads what this module writes.
pub(crate) mod xattr {
    use std::ffi::{CStr, CString};
    use std::io;
    use std::os::fd::RawFd;

    /// What an xattr call acts on. `Path` uses the `l*` calls, which never
    /// follow a final symlink.
    #[derive(Clone, Copy)]
    pub(crate) enum On<'a> {
        Fd(RawFd),
        Path(&'a CStr),
    }

    /// `/proc/self/fd/DIR/NAME`: a path to `name` in the directory open as
    /// `dir`, for nodes that cannot be opened to get an fd (symlinks,
    /// devices, fifos). The l* calls do not follow its last component.
    pub(crate) fn proc_path(dir: RawFd, name: &[u8]) -> io::Result<CString> {
        let mut p = format!("/proc/self/fd/{dir}/").into_bytes();
        p.extend_from_slice(name);
        CString::new(p).map_err(io::Error::other)
    }

    fn check(rc: libc::c_int) -> io::Result<()> {
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    pub(crate) fn set(on: On<'_>, name: &CStr, value: &[u8]) -> io::Result<()> {
        let (v, len) = (value.as_ptr().cast(), value.len());
        let rc = match on {
            // SAFETY: `name` is NUL-terminated and `v` points to `len`
            // readable bytes, which the kernel only reads.
            On::Fd(fd) => unsafe { libc::fsetxattr(fd, name.as_ptr(), v, len, 0) },
            // SAFETY: as above, and `p` is NUL-terminated.
            On::Path(p) => unsafe { libc::lsetxattr(p.as_ptr(), name.as_ptr(), v, len, 0) },
        };
        check(rc)
    }

    /// Calls `call(buf, len)` first with no buffer to learn the size, then
    /// with one; again if the value grew in between (ERANGE).
    fn sized(mut call: impl FnMut(*mut u8, usize) -> isize) -> io::Result<Vec<u8>> {
        loop {
            let n = call(std::ptr::null_mut(), 0);
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut buf = vec![0u8; n as usize];
            if n == 0 {
                return Ok(buf);
            }
            let m = call(buf.as_mut_ptr(), buf.len());
            if m < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::ERANGE) {
                    continue;
                }
                return Err(e);
            }
            buf.truncate(m as usize);
            return Ok(buf);
        }
    }

    /// Names of the xattrs; none where the filesystem has no xattrs.
    pub(crate) fn list(on: On<'_>) -> io::Result<Vec<Vec<u8>>> {
        let r = sized(|buf, len| match on {
            // SAFETY: `buf` is null with `len` 0 (a size query) or points to
            // `len` writable bytes owned by `sized`.
            On::Fd(fd) => unsafe { libc::flistxattr(fd, buf.cast(), len) },
            // SAFETY: as above, and `p` is NUL-terminated.
            On::Path(p) => unsafe { libc::llistxattr(p.as_ptr(), buf.cast(), len) },
        });
        match r {
            Ok(buf) => Ok(buf
                .split(|b| *b == 0)
                .filter(|n| !n.is_empty())
                .map(<[u8]>::to_vec)
                .collect()),
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The value of `name`, `None` if it is not set.
    pub(crate) fn get(on: On<'_>, name: &CStr) -> io::Result<Option<Vec<u8>>> {
        let r = sized(|buf, len| match on {
            // SAFETY: `name` is NUL-terminated; `buf` is null with `len` 0
            // or points to `len` writable bytes owned by `sized`.
            On::Fd(fd) => unsafe { libc::fgetxattr(fd, name.as_ptr(), buf.cast(), len) },
            // SAFETY: as above, and `p` is NUL-terminated.
            On::Path(p) => unsafe { libc::lgetxattr(p.as_ptr(), name.as_ptr(), buf.cast(), len) },
        });
        match r {
            Ok(v) => Ok(Some(v)),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENODATA | libc::EOPNOTSUPP)) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fresh directory under /tmp, removed (without following symlinks)
    /// when dropped.
    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p = PathBuf::from(format!("/tmp/hind-test-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }

        pub(crate) fn join(&self, p: &str) -> PathBuf {
            self.0.join(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const MTIME: u64 = 1_234_567_890;

    /// Builds a layer tar in memory. `raw` writes the name bytes straight
    /// into the header, for paths the tar crate refuses to write.
    pub(crate) struct Tar(tar::Builder<Vec<u8>>);

    impl Tar {
        pub(crate) fn new() -> Tar {
            Tar(tar::Builder::new(Vec::new()))
        }

        pub(crate) fn header(kind: EntryType, mode: u32) -> tar::Header {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(MTIME);
            h.set_size(0);
            h
        }

        pub(crate) fn add(&mut self, mut h: tar::Header, path: &str, data: &[u8]) -> &mut Tar {
            h.set_size(data.len() as u64);
            self.0.append_data(&mut h, path, data).unwrap();
            self
        }

        pub(crate) fn file(&mut self, path: &str, data: &[u8]) -> &mut Tar {
            self.add(Tar::header(EntryType::Regular, 0o644), path, data)
        }

        pub(crate) fn dir(&mut self, path: &str) -> &mut Tar {
            self.add(Tar::header(EntryType::Directory, 0o755), path, b"")
        }

        pub(crate) fn link(&mut self, kind: EntryType, path: &str, target: &str) -> &mut Tar {
            let mut h = Tar::header(kind, 0o777);
            self.0.append_link(&mut h, path, target).unwrap();
            self
        }

        pub(crate) fn raw(&mut self, kind: EntryType, path: &[u8], link: &[u8]) -> &mut Tar {
            let mut h = Tar::header(kind, 0o644);
            h.as_old_mut().name[..path.len()].copy_from_slice(path);
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
            h.set_cksum();
            self.0.append(&h, io::empty()).unwrap();
            self
        }

        /// A PAX header with `records` for the entry that follows.
        pub(crate) fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Tar {
            let mut data = Vec::new();
            for (k, v) in records {
                let rest = k.len() + v.len() + 3;
                let mut len = rest + 1;
                while len != rest + len.to_string().len() {
                    len = rest + len.to_string().len();
                }
                data.extend_from_slice(format!("{len} {k}=").as_bytes());
                data.extend_from_slice(v);
                data.push(b'\n');
            }
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(EntryType::XHeader);
            h.set_path("PaxHeader").unwrap();
            h.set_size(data.len() as u64);
            h.set_cksum();
            self.0.append(&h, data.as_slice()).unwrap();
            self
        }

        pub(crate) fn bytes(&mut self) -> Vec<u8> {
            self.0.get_mut().extend_from_slice(&[0; 1024]);
            std::mem::take(self.0.get_mut())
        }
    }

    fn unpack_tar(tar: &[u8], root: &Path, opts: &Options) -> Result<Stats> {
        unpack(&mut &tar[..], root, opts)
    }

    pub(crate) fn get_xattr(path: &Path, name: &CStr) -> Option<Vec<u8>> {
        let p = CString::new(path.as_os_str().as_bytes()).unwrap();
        xattr::get(xattr::On::Path(&p), name).unwrap()
    }

    fn lmeta(p: &Path) -> fs::Metadata {
        fs::symlink_metadata(p).unwrap()
    }

    #[test]
    fn unpacks_files_dirs_links_and_metadata() {
        let root = TempDir::new("extract-basic");
        let long = format!("deep/{}/file", "x".repeat(150));
        let mut owned = Tar::header(EntryType::Regular, 0o640);
        owned.set_uid(1000);
        owned.set_gid(1000);
        let mut suid = Tar::header(EntryType::Regular, 0o4755);
        suid.set_uid(1000);
        let mut ro = Tar::header(EntryType::Directory, 0o555);
        ro.set_mtime(1_000_000_000);
        let tar = Tar::new()
            .dir("./")
            .dir("./etc/")
            .add(owned, "etc/hostname", b"box\n")
            .add(suid, "bin/su", b"#!")
            .link(EntryType::Symlink, "bin/sh", "/bin/busybox")
            .link(EntryType::Link, "bin/su2", "./bin/su")
            .add(Tar::header(EntryType::Fifo, 0o600), "run/fifo", b"")
            .add(ro, "ro/", b"")
            .file("ro/inside", b"1")
            .file(&long, b"long")
            .pax(&[
                ("SCHILY.xattr.trusted.hind", b"v\0\nbin"),
                ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
                ("mtime", b"1500000000.25"),
            ])
            .file("x", b"pax")
            .bytes();
        let stats = unpack_tar(&tar, root.path(), &Options::default()).unwrap();
        assert_eq!(stats.entries, 11);
        assert_eq!(stats.bytes, 4 + 2 + 1 + 4 + 3);

        let m = lmeta(&root.join("etc/hostname"));
        assert_eq!(fs::read(root.join("etc/hostname")).unwrap(), b"box\n");
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1000, 1000, 0o640));
        assert_eq!(m.mtime(), MTIME as i64);
        let m = lmeta(&root.join("bin/su"));
        assert_eq!((m.uid(), m.mode() & 0o7777), (1000, 0o4755));
        let m2 = lmeta(&root.join("bin/su2"));
        assert_eq!((m2.ino(), m2.nlink()), (m.ino(), 2));
        assert_eq!(
            fs::read_link(root.join("bin/sh")).unwrap(),
            Path::new("/bin/busybox")
        );
        assert!(lmeta(&root.join("run/fifo")).file_type().is_fifo());
        // Implicit parents: 0755, root-owned.
        let m = lmeta(&root.join("run"));
        assert_eq!((m.uid(), m.mode() & 0o7777), (0, 0o755));
        // Directory mode and mtime applied after its children.
        let m = lmeta(&root.join("ro"));
        assert_eq!((m.mode() & 0o7777, m.mtime()), (0o555, 1_000_000_000));
        assert_eq!(lmeta(&root.join("etc")).mtime(), MTIME as i64);
        assert_eq!(fs::read(root.join(&long)).unwrap(), b"long");
        let x = root.join("x");
        assert_eq!(get_xattr(&x, c"trusted.hind").unwrap(), b"v\0\nbin");
        assert_eq!(get_xattr(&x, c"trusted.overlay.redirect"), None);
        let m = lmeta(&x);
        assert_eq!((m.mtime(), m.mtime_nsec()), (1_500_000_000, 250_000_000));
    }

    #[test]
    fn pax_records_that_read_two_ways_are_refused() {
        // tar 0.4 alone would read a `path` record out of this xattr value.
        let root = TempDir::new("extract-pax-smuggle");
        let tar = Tar::new()
            .pax(&[("SCHILY.xattr.trusted.x", b"a\n13 path=evil")])
            .file("x", b"")
            .bytes();
        let err = unpack_tar(&tar, root.path(), &Options::default()).unwrap_err();
        assert!(matches!(err, Error::Header(..)), "{err}");
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        let root = TempDir::new("extract-wh");
        let tar = Tar::new()
            .dir("a/")
            .file("a/gone", b"old")
            .file("a/.wh.gone", b"")
            .file("a/.wh..wh..opq", b"")
            .file("b/c/.wh..wh..opq", b"")
            .file(".wh.top", b"")
            .dir(".wh..wh.plnk/")
            .bytes();
        unpack_tar(&tar, root.path(), &Options::default()).unwrap();
        for p in ["a/gone", "top"] {
            let m = lmeta(&root.join(p));
            assert!(m.file_type().is_char_device(), "{p}");
            assert_eq!((m.rdev(), m.uid(), m.gid()), (0, 0, 0), "{p}");
        }
        for p in ["a", "b/c"] {
            assert_eq!(get_xattr(&root.join(p), OPAQUE_XATTR).unwrap(), b"y", "{p}");
        }
        assert_eq!(get_xattr(&root.join("b"), OPAQUE_XATTR), None);
        for p in ["a/.wh.gone", "a/.wh..wh..opq", ".wh.top", ".wh..wh.plnk"] {
            assert!(fs::symlink_metadata(root.join(p)).is_err(), "{p}");
        }
    }

    #[test]
    fn plain_copies_keep_names_and_existing_kinds() {
        let root = TempDir::new("extract-plain");
        let opts = Options {
            plain: true,
            ..Default::default()
        };
        let tar = Tar::new()
            .file(".wh.x", b"literal")
            .file("d/.wh..wh..opq", b"too")
            .bytes();
        unpack_tar(&tar, root.path(), &opts).unwrap();
        assert_eq!(fs::read(root.join(".wh.x")).unwrap(), b"literal");
        assert_eq!(fs::read(root.join("d/.wh..wh..opq")).unwrap(), b"too");
        assert_eq!(get_xattr(&root.join("d"), OPAQUE_XATTR), None);
        // A directory is never replaced by a file, nor a file by a
        // directory; a file by a file is.
        fs::create_dir_all(root.join("keep/inner")).unwrap();
        let err = unpack_tar(&Tar::new().file("keep", b"x").bytes(), root.path(), &opts);
        assert!(matches!(err, Err(Error::Replace(..))), "{err:?}");
        assert!(root.join("keep/inner").is_dir());
        let err = unpack_tar(&Tar::new().dir(".wh.x/").bytes(), root.path(), &opts);
        assert!(matches!(err, Err(Error::Replace(..))), "{err:?}");
        unpack_tar(
            &Tar::new().file(".wh.x", b"new").bytes(),
            root.path(),
            &opts,
        )
        .unwrap();
        assert_eq!(fs::read(root.join(".wh.x")).unwrap(), b"new");
    }

    #[test]
    fn a_new_owner_drops_set_id_bits_and_capabilities() {
        let root = TempDir::new("extract-owner");
        let mut t = Tar::new();
        t.pax(&[("SCHILY.xattr.security.capability", b"\x01\0\0\x02")]);
        t.add(Tar::header(EntryType::Regular, 0o6755), "suid", b"x");
        let mut h = Tar::header(EntryType::Directory, 0o2775);
        h.set_uid(1000);
        t.add(h, "sgid/", b"");
        let tar = t.bytes();
        let opts = Options {
            owner: Some((Uid::from_raw(7), Gid::from_raw(8))),
            plain: true,
            ..Default::default()
        };
        unpack_tar(&tar, root.path(), &opts).unwrap();
        let m = lmeta(&root.join("suid"));
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (7, 8, 0o755));
        assert_eq!(get_xattr(&root.join("suid"), CAPABILITY_XATTR), None);
        // A directory's set-group-ID bit only says how new files are owned.
        let m = lmeta(&root.join("sgid"));
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (7, 8, 0o2775));
    }

    #[test]
    fn dotdot_and_absolute_paths_are_refused() {
        let base = TempDir::new("extract-dotdot");
        let root = base.join("root");
        fs::create_dir(&root).unwrap();
        for bad in ["../escape", "a/../../escape", "/escape"] {
            let tar = Tar::new()
                .raw(EntryType::Regular, bad.as_bytes(), b"")
                .bytes();
            let err = unpack_tar(&tar, &root, &Options::default()).unwrap_err();
            assert!(matches!(err, Error::Escape(ref e) if e == bad), "{err}");
            assert_eq!(
                err.to_string(),
                format!("layer entry {bad:?}: path leaves the layer")
            );
        }
        assert!(fs::symlink_metadata(base.join("escape")).is_err());
        assert!(fs::symlink_metadata("/escape").is_err());
        assert_eq!(fs::read_dir(&root).unwrap().count(), 0);
    }

    #[test]
    fn absolute_symlink_parent_stays_in_root() {
        let outside = TempDir::new("extract-outside");
        let target = outside.path().to_str().unwrap().to_owned();
        let inner = target.trim_start_matches('/').to_owned();

        // The target is not in the layer: refused, nothing written outside.
        let root = TempDir::new("extract-evil");
        let tar = Tar::new()
            .link(EntryType::Symlink, "evil", &target)
            .file("evil/pwned", b"x")
            .bytes();
        let err = unpack_tar(&tar, root.path(), &Options::default()).unwrap_err();
        assert!(matches!(err, Error::DanglingParent { .. }), "{err}");
        assert!(err.to_string().contains("\"evil/pwned\""), "{err}");
        assert!(fs::symlink_metadata(outside.join("pwned")).is_err());

        // The target is in the layer: the file lands there, inside root.
        let root = TempDir::new("extract-evil2");
        let tar = Tar::new()
            .dir(&format!("{inner}/"))
            .link(EntryType::Symlink, "evil", &target)
            .file("evil/pwned", b"x")
            .bytes();
        unpack_tar(&tar, root.path(), &Options::default()).unwrap();
        assert_eq!(fs::read(root.join(&inner).join("pwned")).unwrap(), b"x");
        assert!(fs::symlink_metadata(outside.join("pwned")).is_err());
    }

    #[test]
    fn dotdot_symlink_parent_is_clamped_at_root() {
        let base = TempDir::new("extract-up");
        let root = base.join("a/b/root");
        fs::create_dir_all(&root).unwrap();
        let tar = Tar::new()
            .link(EntryType::Symlink, "up", "../../../../..")
            .file("up/pwned2", b"x")
            .file("up/up/new/pwned3", b"y")
            .bytes();
        unpack_tar(&tar, &root, &Options::default()).unwrap();
        assert_eq!(fs::read(root.join("pwned2")).unwrap(), b"x");
        assert_eq!(fs::read(root.join("new/pwned3")).unwrap(), b"y");
        for p in [
            base.join("a/b/pwned2"),
            base.join("pwned2"),
            "/pwned2".into(),
            "/new".into(),
        ] {
            assert!(fs::symlink_metadata(&p).is_err(), "{}", p.display());
        }
    }

    #[test]
    fn hardlink_out_of_the_layer_is_refused() {
        let root = TempDir::new("extract-hl");
        for target in ["../../etc/passwd", "/etc/passwd"] {
            let tar = Tar::new()
                .raw(EntryType::Link, b"h", target.as_bytes())
                .bytes();
            let err = unpack_tar(&tar, root.path(), &Options::default()).unwrap_err();
            assert!(
                matches!(err, Error::LinkEscape(ref e, _) if e == "h"),
                "{err}"
            );
            assert!(err.to_string().starts_with("layer entry \"h\""), "{err}");
        }
        assert!(fs::symlink_metadata(root.join("h")).is_err());
    }

    #[test]
    fn hardlink_to_symlink_links_the_symlink() {
        let outside = TempDir::new("extract-hl-out");
        let victim = outside.join("victim");
        fs::write(&victim, b"orig").unwrap();
        let root = TempDir::new("extract-hl-sym");
        let tar = Tar::new()
            .link(EntryType::Symlink, "s", victim.to_str().unwrap())
            .link(EntryType::Link, "h", "s")
            .bytes();
        unpack_tar(&tar, root.path(), &Options::default()).unwrap();
        let (s, h) = (lmeta(&root.join("s")), lmeta(&root.join("h")));
        assert!(h.file_type().is_symlink());
        assert_eq!(s.ino(), h.ino());

        // Writing to those names replaces them; the victim is untouched.
        let root = TempDir::new("extract-hl-sym2");
        let tar = Tar::new()
            .link(EntryType::Symlink, "s", victim.to_str().unwrap())
            .link(EntryType::Link, "h", "s")
            .file("h", b"new")
            .file("s", b"new2")
            .bytes();
        unpack_tar(&tar, root.path(), &Options::default()).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"orig");
        assert_eq!(fs::read(root.join("h")).unwrap(), b"new");
        assert_eq!(fs::read(root.join("s")).unwrap(), b"new2");
        assert_eq!(
            fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    fn device_tar() -> Vec<u8> {
        let mut blk = Tar::header(EntryType::Block, 0o660);
        blk.set_device_major(8).unwrap();
        blk.set_device_minor(1).unwrap();
        let mut chr = Tar::header(EntryType::Char, 0o666);
        chr.set_device_major(1).unwrap();
        chr.set_device_minor(3).unwrap();
        Tar::new()
            .add(blk, "dev/sda1", b"")
            .add(chr, "dev/null", b"")
            .link(EntryType::Link, "dev/null2", "dev/null")
            .bytes()
    }

    #[test]
    fn devices_only_when_allowed() {
        let root = TempDir::new("extract-dev");
        let stats = unpack_tar(&device_tar(), root.path(), &Options::default()).unwrap();
        assert_eq!(stats.entries, 3);
        assert_eq!(fs::read_dir(root.join("dev")).unwrap().count(), 0);

        let root = TempDir::new("extract-dev2");
        let opts = Options {
            allow_devices: true,
            ..Default::default()
        };
        unpack_tar(&device_tar(), root.path(), &opts).unwrap();
        let m = lmeta(&root.join("dev/sda1"));
        assert!(m.file_type().is_block_device());
        assert_eq!((m.rdev(), m.mode() & 0o7777), (stat::makedev(8, 1), 0o660));
        let m = lmeta(&root.join("dev/null"));
        assert!(m.file_type().is_char_device());
        assert_eq!((m.rdev(), m.mode() & 0o7777), (stat::makedev(1, 3), 0o666));
        assert_eq!(lmeta(&root.join("dev/null2")).ino(), m.ino());
    }

    #[test]
    fn later_duplicate_entry_wins() {
        let root = TempDir::new("extract-dup");
        let tar = Tar::new()
            .file("a", b"1")
            .file("a", b"2")
            .dir("d/")
            .file("d/sub/x", b"x")
            .link(EntryType::Symlink, "d/sub/l", "/")
            .file("d", b"file now")
            .file("f", b"file")
            .dir("f/")
            .file("f/y", b"y")
            .link(EntryType::Symlink, "l", "a")
            .file("l", b"not a link")
            .dir("ld/")
            .link(EntryType::Symlink, "ld", "f")
            .bytes();
        unpack_tar(&tar, root.path(), &Options::default()).unwrap();
        assert_eq!(fs::read(root.join("a")).unwrap(), b"2");
        assert_eq!(fs::read(root.join("d")).unwrap(), b"file now");
        assert_eq!(fs::read(root.join("f/y")).unwrap(), b"y");
        assert!(lmeta(&root.join("l")).file_type().is_file());
        assert_eq!(fs::read(root.join("l")).unwrap(), b"not a link");
        assert_eq!(fs::read_link(root.join("ld")).unwrap(), Path::new("f"));
    }

    fn sample() -> Vec<u8> {
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        Tar::new()
            .dir("d/")
            .file("d/big", &big)
            .file("d/small", b"small")
            .bytes()
    }

    fn check_sample(root: &Path) {
        let big = fs::read(root.join("d/big")).unwrap();
        assert_eq!(big.len(), 3_000_000);
        assert!(big.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
        assert_eq!(fs::read(root.join("d/small")).unwrap(), b"small");
    }

    fn through_decompress(blob: Vec<u8>, plain: &[u8]) {
        let mut r = decompress(Box::new(io::Cursor::new(blob))).unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, plain);
    }

    #[test]
    fn gzip_round_trip() {
        let plain = sample();
        // Two gzip members: the second half must not be lost.
        let (a, b) = plain.split_at(plain.len() / 2);
        let mut blob = Vec::new();
        for part in [a, b] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(part).unwrap();
            blob.extend(gz.finish().unwrap());
        }
        through_decompress(blob.clone(), &plain);
        let root = TempDir::new("extract-gz");
        let mut digest = DigestReader::new(io::Cursor::new(blob.clone()));
        let mut r = decompress(Box::new(&mut digest)).unwrap();
        unpack(&mut r, root.path(), &Options::default()).unwrap();
        drop(r);
        check_sample(root.path());
        // unpack read the blob to its end, so the digest covers all of it.
        assert_eq!(digest.count(), blob.len() as u64);
        assert_eq!(digest.digest(), sha256_digest(&blob));
    }

    #[test]
    fn zstd_and_plain_round_trip() {
        let plain = sample();
        let blob = zstd::stream::encode_all(plain.as_slice(), 1).unwrap();
        through_decompress(blob.clone(), &plain);
        let root = TempDir::new("extract-zst");
        let mut r = decompress(Box::new(io::Cursor::new(blob))).unwrap();
        unpack(&mut r, root.path(), &Options::default()).unwrap();
        check_sample(root.path());

        through_decompress(plain.clone(), &plain);
        through_decompress(vec![0x1f], &[0x1f]);
        through_decompress(Vec::new(), &[]);
    }

    #[test]
    fn digests() {
        const ABC: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_digest(b"abc"), ABC);
        let mut r = DigestReader::new(&b"abc"[..]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!((r.digest(), r.count()), (ABC.to_owned(), 3));
        let mut w = DigestWriter::new(Vec::new());
        w.write_all(b"ab").unwrap();
        w.write_all(b"c").unwrap();
        assert_eq!((w.digest(), w.count()), (ABC.to_owned(), 3));
        assert_eq!(w.into_inner(), b"abc");
    }

    #[test]
    fn pax_times() {
        let t = parse_pax_time(b"12.5").unwrap();
        assert_eq!((t.tv_sec(), t.tv_nsec()), (12, 500_000_000));
        let t = parse_pax_time(b"-1.25").unwrap();
        assert_eq!((t.tv_sec(), t.tv_nsec()), (-2, 750_000_000));
        assert!(parse_pax_time(b"x").is_none());
    }
}
