//! Packing a directory tree back into a layer tar: a container's overlayfs
//! upper dir into an OCI layer (`commit`), or any tree into a plain tar
//! (`export`). The inverse of `extract`.
//!
//! Output is deterministic: entries in byte order of their names within each
//! directory, depth first, a directory before its contents; no user or group
//! names, mtimes in whole seconds. The walk uses `*at` calls on directory
//! fds and never follows a symlink.

use std::collections::HashMap;
use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::{self, AtFlags, OFlag};
use nix::sys::stat::{self, FileStat, Mode, SFlag};
use tar::{EntryType, Header};

use super::extract::xattr;

/// Size of the copy buffer and of the output buffer.
const BUF_SIZE: usize = 1 << 20;

const BLOCK: u64 = 512;

/// overlayfs keeps its own bookkeeping in this namespace of the upper dir
/// (origin, impure, nlink, ...). It describes this one overlay mount and
/// would mislead an overlay built from the layer, so it is never packed.
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";
const OPAQUE_XATTR: &CStr = c"trusted.overlay.opaque";
const REDIRECT_XATTR: &[u8] = b"trusted.overlay.redirect";
const METACOPY_XATTR: &[u8] = b"trusted.overlay.metacopy";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("open {0}")]
    Open(PathBuf, #[source] io::Error),
    #[error("stat {0}")]
    Stat(PathBuf, #[source] io::Error),
    #[error("read directory {0}")]
    ReadDir(PathBuf, #[source] io::Error),
    #[error("read link {0}")]
    ReadLink(PathBuf, #[source] io::Error),
    #[error("read xattrs of {0}")]
    Xattr(PathBuf, #[source] io::Error),
    #[error("read {0}")]
    Read(PathBuf, #[source] io::Error),
    #[error("write tar entry for {0}")]
    Write(PathBuf, #[source] io::Error),
    #[error("finish tar")]
    Finish(#[source] io::Error),
    #[error("{0}: a renamed directory (trusted.overlay.redirect) cannot be packed; the overlay needs redirect_dir=off")]
    Redirect(PathBuf),
    #[error("{0}: a metadata-only copy-up (trusted.overlay.metacopy) cannot be packed; the overlay needs metacopy=off")]
    Metacopy(PathBuf),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Writes an OCI layer tar of an overlayfs upper dir: whiteout char devices
/// 0/0 become `.wh.NAME` entries, dirs with xattr
/// `trusted.overlay.opaque=y` get a `DIR/.wh..wh..opq` entry (after the dir
/// entry), everything else as is.
pub fn pack_upper(upper: &Path, w: &mut dyn Write) -> Result<()> {
    Packer::run(upper, w, true)
}

/// Writes a plain tar of the tree at `root` (used by export): never follows
/// symlinks, does not cross into other filesystems (the directory entry of
/// a mount point is written, its contents are not), no whiteout
/// translation.
pub fn pack_tree(root: &Path, w: &mut dyn Write) -> Result<()> {
    Packer::run(root, w, false)
}

/// Writes a tar of the node `name` in the directory open as `dir`, named
/// `as_name` in the tar: one entry for a file, symlink or fifo, a directory
/// with everything below it (`as_name/...`). Like [`pack_tree`] it never
/// follows a symlink and stays on the node's filesystem. `label` stands
/// for `dir` in errors. Used by `hind cp`.
pub fn pack_node(
    dir: RawFd,
    name: &[u8],
    as_name: &[u8],
    label: &Path,
    w: &mut dyn Write,
) -> Result<()> {
    let st = stat::fstatat(Some(dir), name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| Error::Stat(label.join(OsStr::from_bytes(name)), e.into()))?;
    let mut p = Packer::new(label, st.st_dev, w, false);
    p.entry(dir, name, as_name, &st)?;
    p.finish()
}

/// Writes a tar of what is below the directory open as `dir`, without the
/// directory itself, as [`pack_tree`] does for a path. `label` stands for
/// `dir` in errors. Used by `hind cp` (`SRC/.`).
pub fn pack_dir(dir: RawFd, label: &Path, w: &mut dyn Write) -> Result<()> {
    // A new open file description: a dup would share (and move) the
    // caller's directory position.
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut d = Dir::openat(Some(dir), ".", flags, Mode::empty())
        .map_err(|e| Error::Open(label.to_path_buf(), e.into()))?;
    let st = stat::fstat(d.as_raw_fd()).map_err(|e| Error::Stat(label.to_path_buf(), e.into()))?;
    let mut p = Packer::new(label, st.st_dev, w, false);
    p.walk(&mut d, b"")?;
    p.finish()
}

/// xattrs to pack, and what the overlay ones say.
#[derive(Default)]
struct Xattrs {
    packed: Vec<(Vec<u8>, Vec<u8>)>,
    opaque: bool,
}

struct Packer<'w> {
    root: PathBuf,
    upper: bool,
    root_dev: u64,
    out: tar::Builder<BufWriter<&'w mut dyn Write>>,
    /// First path seen for each (dev, ino) with more than one link: later
    /// paths become hard-link entries to it.
    links: HashMap<(u64, u64), Vec<u8>>,
    buf: Vec<u8>,
}

impl<'w> Packer<'w> {
    fn run(root: &Path, w: &'w mut dyn Write, upper: bool) -> Result<()> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let mut dir = Dir::open(root, flags, Mode::empty())
            .map_err(|e| Error::Open(root.to_path_buf(), e.into()))?;
        let st =
            stat::fstat(dir.as_raw_fd()).map_err(|e| Error::Stat(root.to_path_buf(), e.into()))?;
        let mut p = Packer::new(root, st.st_dev, w, upper);
        p.walk(&mut dir, b"")?;
        p.finish()
    }

    fn new(root: &Path, root_dev: u64, w: &'w mut dyn Write, upper: bool) -> Packer<'w> {
        Packer {
            root: root.to_path_buf(),
            upper,
            root_dev,
            out: tar::Builder::new(BufWriter::with_capacity(BUF_SIZE, w)),
            links: HashMap::new(),
            buf: vec![0; BUF_SIZE],
        }
    }

    /// Writes the end-of-archive marker and flushes.
    fn finish(self) -> Result<()> {
        let mut out = self.out.into_inner().map_err(Error::Finish)?;
        out.flush().map_err(Error::Finish)
    }

    /// The host path of `rel`, for error messages.
    fn host(&self, rel: &[u8]) -> PathBuf {
        self.root.join(OsStr::from_bytes(rel))
    }

    fn walk(&mut self, dir: &mut Dir, rel: &[u8]) -> Result<()> {
        let mut names = Vec::new();
        for e in dir.iter() {
            let e = e.map_err(|e| Error::ReadDir(self.host(rel), e.into()))?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(n.to_vec());
            }
        }
        names.sort_unstable();
        let fd = dir.as_raw_fd();
        for name in names {
            let mut child = rel.to_vec();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(&name);
            let st = stat::fstatat(Some(fd), name.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(|e| Error::Stat(self.host(&child), e.into()))?;
            self.entry(fd, &name, &child, &st)?;
        }
        Ok(())
    }

    fn entry(&mut self, dir: RawFd, name: &[u8], rel: &[u8], st: &FileStat) -> Result<()> {
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        if kind == SFlag::S_IFDIR {
            return self.dir(dir, name, rel, st);
        }
        if kind == SFlag::S_IFSOCK {
            // tar has no socket type (GNU tar skips them too); a socket is
            // only meaningful to the process that bound it.
            return Ok(());
        }
        // Checked before hard links: overlayfs makes whiteouts as links to
        // one shared whiteout inode, and each must stay a whiteout.
        if self.upper && kind == SFlag::S_IFCHR && st.st_rdev == 0 {
            let path = whiteout_path(rel, name);
            let mut h = header(st, EntryType::Regular);
            h.set_mode(0);
            return self.append(&path, h, rel);
        }
        if st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                let first = first.clone();
                let mut h = header(st, EntryType::Link);
                return self
                    .out
                    .append_link(&mut h, OsStr::from_bytes(rel), OsStr::from_bytes(&first))
                    .map_err(|e| Error::Write(self.host(rel), e));
            }
            self.links.insert(key, rel.to_vec());
        }
        match kind {
            SFlag::S_IFREG => self.file(dir, name, rel, st),
            SFlag::S_IFLNK => {
                let target = fcntl::readlinkat(Some(dir), name)
                    .map_err(|e| Error::ReadLink(self.host(rel), e.into()))?;
                self.pax_at(dir, name, rel)?;
                let mut h = header(st, EntryType::Symlink);
                let raw = target.as_bytes();
                // The target goes in as it is: the tar crate's
                // `set_link_name` rewrites it component by component
                // (`/` comes out as `//`). Only a target too long for the
                // header takes the GNU long-link path, which is verbatim.
                let r = if raw.len() <= h.as_old().linkname.len() {
                    h.set_link_name_literal(raw).and_then(|()| {
                        self.out
                            .append_data(&mut h, OsStr::from_bytes(rel), io::empty())
                    })
                } else {
                    self.out
                        .append_link(&mut h, OsStr::from_bytes(rel), &target)
                };
                r.map_err(|e| Error::Write(self.host(rel), e))
            }
            SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO => {
                let ty = match kind {
                    SFlag::S_IFCHR => EntryType::Char,
                    SFlag::S_IFBLK => EntryType::Block,
                    _ => EntryType::Fifo,
                };
                let mut h = header(st, ty);
                if ty != EntryType::Fifo {
                    let major = stat::major(st.st_rdev) as u32;
                    let minor = stat::minor(st.st_rdev) as u32;
                    let set = h
                        .set_device_major(major)
                        .and_then(|()| h.set_device_minor(minor));
                    set.map_err(|e| Error::Write(self.host(rel), e))?;
                }
                self.pax_at(dir, name, rel)?;
                self.append(rel, h, rel)
            }
            _ => Ok(()),
        }
    }

    fn dir(&mut self, dir: RawFd, name: &[u8], rel: &[u8], st: &FileStat) -> Result<()> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut sub = Dir::openat(Some(dir), name, flags, Mode::empty())
            .map_err(|e| Error::Open(self.host(rel), e.into()))?;
        let x = self.xattrs(xattr::On::Fd(sub.as_raw_fd()), rel)?;
        self.pax(rel, &x.packed)?;
        let mut path = rel.to_vec();
        path.push(b'/');
        self.append(&path, header(st, EntryType::Directory), rel)?;
        // The marker goes right after its directory and before the
        // contents, where Docker and containerd put it.
        if x.opaque {
            let mut h = header(st, EntryType::Regular);
            h.set_mode(0);
            path.extend_from_slice(b".wh..wh..opq");
            self.append(&path, h, rel)?;
        }
        if st.st_dev != self.root_dev {
            // A mount point: what is below belongs to another filesystem.
            return Ok(());
        }
        self.walk(&mut sub, rel)
    }

    fn file(&mut self, dir: RawFd, name: &[u8], rel: &[u8], st: &FileStat) -> Result<()> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = fcntl::openat(Some(dir), name, flags, Mode::empty())
            .map_err(|e| Error::Open(self.host(rel), e.into()))?;
        // SAFETY: openat just returned this fd; the File is its only owner.
        let mut f = unsafe { File::from_raw_fd(fd) };
        let x = self.xattrs(xattr::On::Fd(f.as_raw_fd()), rel)?;
        self.pax(rel, &x.packed)?;
        let size = st.st_size.max(0) as u64;
        let mut h = header(st, EntryType::Regular);
        h.set_size(size);
        // The header goes through the builder (it writes a GNU long-name
        // entry first when the path needs one); the data is copied here in
        // 1 MiB reads and writes rather than io::copy's 8 KiB.
        self.out
            .append_data(&mut h, OsStr::from_bytes(rel), io::empty())
            .map_err(|e| Error::Write(self.host(rel), e))?;
        let mut left = size;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let mut n = 0;
            while n < want {
                match f.read(&mut self.buf[n..want]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::Read(self.host(rel), e)),
                }
            }
            if n < want {
                // The file shrank while being packed. The header already
                // promised `size` bytes; pad with zeros so the archive
                // stays readable.
                self.buf[n..want].fill(0);
                left = want as u64;
            }
            self.out
                .get_mut()
                .write_all(&self.buf[..want])
                .map_err(|e| Error::Write(self.host(rel), e))?;
            left -= want as u64;
        }
        let pad = (BLOCK - size % BLOCK) % BLOCK;
        self.out
            .get_mut()
            .write_all(&[0; BLOCK as usize][..pad as usize])
            .map_err(|e| Error::Write(self.host(rel), e))
    }

    /// Writes a data-less entry `path` (`rel` names it in errors).
    fn append(&mut self, path: &[u8], mut h: Header, rel: &[u8]) -> Result<()> {
        self.out
            .append_data(&mut h, OsStr::from_bytes(path), io::empty())
            .map_err(|e| Error::Write(self.host(rel), e))
    }

    /// Reads the xattrs of `rel`. In an upper dir, refuses the overlay
    /// features whose data lives in a lower layer: packing them would lose
    /// it silently.
    fn xattrs(&self, on: xattr::On<'_>, rel: &[u8]) -> Result<Xattrs> {
        let err = |e| Error::Xattr(self.host(rel), e);
        let mut names = xattr::list(on).map_err(err)?;
        names.sort_unstable();
        let mut x = Xattrs::default();
        for name in names {
            if name.starts_with(OVERLAY_XATTR_PREFIX) {
                if self.upper {
                    if name == REDIRECT_XATTR {
                        return Err(Error::Redirect(self.host(rel)));
                    }
                    if name == METACOPY_XATTR {
                        return Err(Error::Metacopy(self.host(rel)));
                    }
                }
                continue;
            }
            let cname =
                std::ffi::CString::new(name.clone()).map_err(|e| err(io::Error::other(e)))?;
            // Gone since listed (a concurrent removal): skip it.
            if let Some(v) = xattr::get(on, &cname).map_err(err)? {
                x.packed.push((name, v));
            }
        }
        if self.upper {
            x.opaque = xattr::get(on, OPAQUE_XATTR).map_err(err)?.as_deref() == Some(b"y");
        }
        Ok(x)
    }

    /// The PAX xattr records of `name` in `dir`, for nodes that are not
    /// opened (symlinks, devices, fifos).
    fn pax_at(&mut self, dir: RawFd, name: &[u8], rel: &[u8]) -> Result<()> {
        let path = xattr::proc_path(dir, name).map_err(|e| Error::Xattr(self.host(rel), e))?;
        let x = self.xattrs(xattr::On::Path(&path), rel)?;
        self.pax(rel, &x.packed)
    }

    /// A PAX extended header carrying `SCHILY.xattr.NAME` records (the
    /// form GNU tar, Go's archive/tar and `extract` read) for the entry
    /// written next. tar 0.4 has no builder call for it.
    fn pax(&mut self, rel: &[u8], xattrs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        if xattrs.is_empty() {
            return Ok(());
        }
        let mut data = Vec::new();
        for (name, value) in xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(name);
            pax_record(&mut data, &key, value);
        }
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::XHeader);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        // Readers ignore the name of an extended header; this is GNU tar's.
        h.set_path("././@PaxHeader")
            .map_err(|e| Error::Write(self.host(rel), e))?;
        h.set_cksum();
        self.out
            .append(&h, data.as_slice())
            .map_err(|e| Error::Write(self.host(rel), e))
    }
}

/// `DIR/.wh.NAME` for the whiteout at `rel` (`DIR/NAME`).
fn whiteout_path(rel: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = rel[..rel.len() - name.len()].to_vec();
    p.extend_from_slice(b".wh.");
    p.extend_from_slice(name);
    p
}

/// One PAX record: `LEN KEY=VALUE\n`, where LEN counts the whole record
/// including its own digits.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = 1 + key.len() + 1 + value.len() + 1;
    let mut len = rest + 1;
    while len != rest + digits(len) {
        len = rest + digits(len);
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn digits(n: usize) -> usize {
    n.to_string().len()
}

/// A ustar header with the metadata of `st`. The tar crate switches to
/// GNU base-256 numbers by itself where octal does not fit (uids over
/// 2097151, files over 8 GiB).
fn header(st: &FileStat, kind: EntryType) -> Header {
    let mut h = Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid.into());
    h.set_gid(st.st_gid.into());
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::extract::tests::{get_xattr, TempDir};
    use crate::image::extract::{self, Options};
    use nix::sys::stat::UtimensatFlags;
    use nix::sys::time::TimeSpec;
    use std::ffi::CString;
    use std::fs;
    use std::os::unix::fs::{symlink, DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};

    const T: i64 = 1_500_000_000;

    fn set_xattr(p: &Path, name: &CStr, value: &[u8]) {
        let c = CString::new(p.as_os_str().as_bytes()).unwrap();
        xattr::set(xattr::On::Path(&c), name, value).unwrap();
    }

    fn mknod(p: &Path, kind: SFlag, perm: u32, dev: u64) {
        stat::mknodat(None, p, kind, Mode::from_bits_truncate(perm), dev).unwrap();
    }

    /// Every path below `root` (sorted, not following symlinks), with
    /// everything a round trip must keep.
    fn describe(root: &Path) -> Vec<String> {
        fn walk(root: &Path, rel: &Path, out: &mut Vec<String>) {
            let mut names: Vec<_> = fs::read_dir(root.join(rel))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for n in names {
                let rel = rel.join(n);
                let p = root.join(&rel);
                let m = fs::symlink_metadata(&p).unwrap();
                let ft = m.file_type();
                let what = if ft.is_dir() {
                    "dir".to_owned()
                } else if ft.is_symlink() {
                    format!("link {}", fs::read_link(&p).unwrap().display())
                } else if ft.is_file() {
                    format!("file {:?}", fs::read(&p).unwrap())
                } else if ft.is_char_device() || ft.is_block_device() {
                    format!("dev {} {:x}", ft.is_char_device(), m.rdev())
                } else {
                    format!("other {ft:?}")
                };
                let c = CString::new(p.as_os_str().as_bytes()).unwrap();
                let mut xs = xattr::list(xattr::On::Path(&c)).unwrap();
                xs.sort();
                out.push(format!(
                    "{} {what} {:o} {}:{} {} {:?}",
                    rel.display(),
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid(),
                    m.mtime(),
                    xs
                ));
                if ft.is_dir() {
                    walk(root, &rel, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(root, Path::new(""), &mut out);
        out
    }

    /// Sets every mtime below `root` to `T`, symlinks included.
    fn touch_all(root: &Path) {
        let t = TimeSpec::new(T, 0);
        for line in describe(root) {
            let rel = line.split(' ').next().unwrap();
            stat::utimensat(
                None,
                &root.join(rel),
                &t,
                &t,
                UtimensatFlags::NoFollowSymlink,
            )
            .unwrap();
        }
    }

    fn names(tar: &[u8]) -> Vec<(String, EntryType)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
                (name, e.header().entry_type())
            })
            .collect()
    }

    #[test]
    fn pack_tree_round_trips_through_unpack() {
        let src = TempDir::new("diff-src");
        let s = |p: &str| src.join(p);
        fs::DirBuilder::new().mode(0o750).create(s("d")).unwrap();
        fs::set_permissions(s("d"), fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::chown(s("d"), Some(1000), Some(1000)).unwrap();
        fs::write(s("d/f"), b"hello").unwrap();
        std::os::unix::fs::chown(s("d/f"), Some(1000), Some(1000)).unwrap();
        fs::hard_link(s("d/f"), s("d/f2")).unwrap();
        fs::create_dir(s("bin")).unwrap();
        fs::write(s("bin/su"), b"#!").unwrap();
        fs::set_permissions(s("bin/su"), fs::Permissions::from_mode(0o4755)).unwrap();
        symlink("/bin/busybox", s("bin/sh")).unwrap();
        std::os::unix::fs::lchown(s("bin/sh"), Some(1000), Some(1000)).unwrap();
        mknod(&s("p"), SFlag::S_IFIFO, 0o600, 0);
        mknod(&s("null"), SFlag::S_IFCHR, 0o666, stat::makedev(1, 3));
        fs::write(s("x"), b"xattr").unwrap();
        set_xattr(&s("x"), c"trusted.hind", b"v\0\n=bin");
        set_xattr(&s("x"), c"user.note", b"");
        let long = format!("{}/{}", "a".repeat(120), "b".repeat(120));
        fs::create_dir_all(s(&long)).unwrap();
        fs::write(s(&long).join("f"), vec![7u8; 1_500_000]).unwrap();
        symlink("t".repeat(200), s("longlink")).unwrap();
        symlink("/", s("toroot")).unwrap();
        symlink("./a//b/", s("odd")).unwrap();
        fs::create_dir(s("tmp")).unwrap();
        fs::set_permissions(s("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::create_dir(s("ro")).unwrap();
        fs::write(s("ro/f"), b"ro").unwrap();
        fs::set_permissions(s("ro"), fs::Permissions::from_mode(0o555)).unwrap();
        touch_all(src.path());

        let mut tar = Vec::new();
        pack_tree(src.path(), &mut tar).unwrap();
        let mut again = Vec::new();
        pack_tree(src.path(), &mut again).unwrap();
        assert!(tar == again, "output is not deterministic");
        let listed = names(&tar);
        assert_eq!(listed[0], ("a".repeat(120) + "/", EntryType::Directory));
        assert!(listed.contains(&("d/f2".into(), EntryType::Link)));
        assert!(listed.iter().all(|(n, _)| !n.starts_with('/')));

        let dst = TempDir::new("diff-dst");
        let opts = Options {
            allow_devices: true,
            ..Default::default()
        };
        extract::unpack(&mut tar.as_slice(), dst.path(), &opts).unwrap();
        assert_eq!(describe(src.path()), describe(dst.path()));
        let f = fs::metadata(dst.join("d/f")).unwrap();
        let f2 = fs::metadata(dst.join("d/f2")).unwrap();
        assert_eq!((f.ino(), f.nlink()), (f2.ino(), 2));
    }

    #[test]
    fn pack_upper_writes_whiteouts_and_opaque_markers() {
        let upper = TempDir::new("diff-upper");
        let u = |p: &str| upper.join(p);
        mknod(&u("gone"), SFlag::S_IFCHR, 0, 0);
        fs::write(u("keep"), b"k").unwrap();
        set_xattr(&u("keep"), c"trusted.overlay.origin", b"\0\xfb");
        fs::create_dir(u("o")).unwrap();
        set_xattr(&u("o"), OPAQUE_XATTR, b"y");
        fs::write(u("o/new"), b"n").unwrap();
        // overlayfs links whiteouts to one shared inode.
        fs::hard_link(u("gone"), u("o/gone2")).unwrap();
        touch_all(upper.path());

        let mut tar = Vec::new();
        pack_upper(upper.path(), &mut tar).unwrap();
        let listed: Vec<_> = names(&tar).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            listed,
            [
                ".wh.gone",
                "keep",
                "o/",
                "o/.wh..wh..opq",
                "o/.wh.gone2",
                "o/new"
            ]
        );

        let dst = TempDir::new("diff-upper-dst");
        extract::unpack(&mut tar.as_slice(), dst.path(), &Options::default()).unwrap();
        for p in ["gone", "o/gone2"] {
            let m = fs::symlink_metadata(dst.join(p)).unwrap();
            assert!(m.file_type().is_char_device(), "{p}");
            assert_eq!(m.rdev(), 0);
        }
        assert_eq!(get_xattr(&dst.join("o"), OPAQUE_XATTR).unwrap(), b"y");
        assert_eq!(
            get_xattr(&dst.join("keep"), c"trusted.overlay.origin"),
            None
        );
        assert_eq!(fs::read(dst.join("o/new")).unwrap(), b"n");

        // pack_tree leaves whiteouts as they are.
        let mut tar = Vec::new();
        pack_tree(upper.path(), &mut tar).unwrap();
        let listed = names(&tar);
        assert_eq!(listed[0], ("gone".into(), EntryType::Char));
        assert!(!listed.iter().any(|(n, _)| n.contains(".wh.")));
    }

    #[test]
    fn pack_upper_refuses_redirected_dirs() {
        let upper = TempDir::new("diff-redirect");
        fs::create_dir(upper.join("moved")).unwrap();
        set_xattr(&upper.join("moved"), c"trusted.overlay.redirect", b"/old");
        let err = pack_upper(upper.path(), &mut Vec::new()).unwrap_err();
        assert!(
            matches!(err, Error::Redirect(ref p) if p.ends_with("moved")),
            "{err}"
        );
        // A plain export does not care.
        pack_tree(upper.path(), &mut Vec::new()).unwrap();
    }

    #[test]
    fn pax_record_length_counts_itself() {
        let mut out = Vec::new();
        pax_record(&mut out, b"k", &[b'v'; 5]);
        assert_eq!(out, b"11 k=vvvvv\n");
        let mut out = Vec::new();
        pax_record(&mut out, b"k", &[b'v'; 95]);
        assert_eq!(out.len(), 102);
        assert!(out.starts_with(b"102 k="));
    }
}
