//! `hind cp`: files and directories between a container and the host,
//! either way, with the container running or stopped; `-` reads a tar from
//! stdin or writes one to stdout. What lands where follows Docker's rules
//! (`SRC/.` copies a directory's contents, an existing DEST directory
//! receives SRC under its own name, a missing one becomes the copy).
//!
//! A copy is a tar stream from a packer (`diff::pack_node`, `pack_dir`) on
//! one thread to the layer unpacker (`extract::unpack` in its `plain` mode)
//! on another. Both ends work through directory fds. The container's side
//! is resolved under its root as the container would resolve it (see
//! `root`), so a symlink there never leads to the host. The unpacker is
//! rooted at the destination directory, on the host as in the container:
//! a symlink in the copied tree stays a symlink, and nothing in the stream
//! can make a file outside the destination. Device nodes are never made.
//!
//! A stopped container's volumes and bind mounts are seen as a running
//! container sees them (see `binds`); a copy into a read-only one is
//! refused with Docker's message, before anything is mounted.
//!
//! Ownership, as Docker documents it: without `-a` the copies belong to
//! root in the container and to the calling user on the host, and files
//! lose their set-user-ID and set-group-ID bits and file capabilities (as
//! chown(2) drops them: they granted the original owner's rights); with
//! `-a` all of it is kept.

mod binds;
mod root;

use std::fs::{self, File};
use std::io::{self, BufReader, IsTerminal, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag};
use nix::sys::stat::{self, FileStat, Mode};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};
use protocol::paths::Layout;

use crate::cli::CpArgs;
use crate::image::{diff, extract};
use root::{is_dir, locate, open_dir_at, Located, Root};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("copying between containers is not supported")]
    BetweenContainers,
    #[error("one of SRC_PATH and DEST_PATH must be CONTAINER:PATH")]
    NoContainer,
    #[error("{0}: no such file or directory")]
    Missing(String),
    #[error("{0}: its parent directory does not exist")]
    NoParent(String),
    #[error("{0}: not a directory")]
    NotDir(String),
    #[error("{0}: the destination directory must exist")]
    DestDirMissing(String),
    #[error("cannot copy directory {0} onto file {1}")]
    DirToFile(String, String),
    #[error("cannot overwrite non-directory {0} with a directory")]
    NotDirExists(String),
    #[error("{0} is a symlink to a directory: write {0}/ to copy into that directory")]
    DestLink(String),
    #[error("{0}: with SRC_PATH -, DEST_PATH must be an existing directory")]
    StdinDest(String),
    #[error("{0}: mounted volume is marked read-only")]
    ReadOnlyVolume(String),
    #[error("{0}: read-only file system")]
    ReadOnly(String),
    #[error("refusing to {0} a terminal (redirect it)")]
    Terminal(&'static str),
    #[error("look up {0}")]
    Lookup(String, #[source] io::Error),
    #[error("create directory {0}")]
    Mkdir(String, #[source] io::Error),
    #[error("set the owner, mode and times of {0}")]
    Meta(String, #[source] io::Error),
    #[error("read {0}")]
    Pack(String, #[source] diff::Error),
    #[error("write {0}")]
    Unpack(String, #[source] extract::Error),
    #[error("copy {0}: make a pipe")]
    Pipe(String, #[source] io::Error),
    #[error("read a tar from stdin")]
    Stdin(#[source] extract::Error),
    #[error("copy {0}: the packing thread panicked")]
    Panicked(String),
    #[error(transparent)]
    Root(#[from] root::Error),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

type Result<T> = std::result::Result<T, Error>;

/// One side of the copy, as typed.
#[derive(Debug, PartialEq)]
enum Side<'a> {
    /// `-`: a tar on stdin or stdout.
    Stream,
    Host(&'a str),
    /// `CONTAINER:PATH`.
    Container(&'a str, &'a str),
}

/// Docker's reading: an absolute path or one starting with `.` (which
/// lets `./a:b` name a host file) is a host path, `NAME:PATH` a container
/// path, anything else a host path.
fn side(arg: &str) -> Side<'_> {
    if arg == "-" {
        return Side::Stream;
    }
    if arg.starts_with('/') || arg.starts_with('.') {
        return Side::Host(arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() => Side::Container(c, p),
        _ => Side::Host(arg),
    }
}

/// What the spelling of a path says.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Spelling {
    /// Ends in `/.` (or is `.`): the contents of a directory.
    contents: bool,
    /// Ends in `/` or `/.`: must be a directory.
    dir: bool,
}

fn spelling(p: &str) -> Spelling {
    let contents = p == "." || p.ends_with("/.");
    Spelling {
        contents,
        dir: contents || p.ends_with('/'),
    }
}

/// A container path made absolute and lexically clean (`..` taken off
/// the path, never above `/`), as Docker treats it: paths in a container
/// are relative to its `/`.
fn clean_container_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The name a copy of `path` gets: its last component; None for `/`.
fn last_component(path: &Path) -> Option<Vec<u8>> {
    path.file_name().map(|n| n.as_bytes().to_vec())
}

/// What is copied.
struct Source {
    /// The node (a directory is also reachable as `loc.open_dir()`).
    loc: Located,
    st: FileStat,
    /// The copy's name; None copies the contents (`SRC/.`, `/`).
    base: Option<Vec<u8>>,
    label: String,
}

impl Source {
    fn is_dir(&self) -> bool {
        is_dir(&self.st)
    }

    /// Writes the tar of this source: the node named `as_name`, or (None)
    /// what is below the directory.
    fn pack(&self, as_name: Option<&[u8]>, w: &mut dyn Write) -> Result<()> {
        let label = Path::new(&self.label);
        let dir = self.loc.dir.as_raw_fd();
        let r = match as_name {
            Some(n) => {
                let name = self.loc.name.as_deref().unwrap_or(b".");
                diff::pack_node(dir, name, n, parent_label(label), w)
            }
            None => {
                let d = self
                    .loc
                    .open_dir()
                    .map_err(|e| Error::Lookup(self.label.clone(), e.into()))?;
                diff::pack_dir(d.as_raw_fd(), label, w)
            }
        };
        r.map_err(|e| Error::Pack(self.label.clone(), e))
    }
}

/// `label` less its last component, so that the packer's own names
/// (relative to the directory) read as full paths in errors.
fn parent_label(label: &Path) -> &Path {
    label.parent().unwrap_or(label)
}

/// Where the copy goes.
struct Plan {
    /// The directory the unpacker is rooted at.
    into: OwnedFd,
    /// The copied node's name in `into`; None: the source's contents go
    /// straight into `into`.
    as_name: Option<Vec<u8>>,
    /// `into` is the copy of the source directory itself: it gets the
    /// source's owner, mode and times once its contents are in.
    top: bool,
    label: String,
}

/// Docker's rules, for a destination on either side.
fn plan(dest: Located, sp: Spelling, label: &str, src: &Source) -> Result<Plan> {
    let lookup = |e: Errno| Error::Lookup(label.to_string(), e.into());
    let src_dir = src.is_dir();
    if dest.is_dir() {
        let d = dest.open_dir().map_err(lookup)?;
        return Ok(match (&src.base, src_dir) {
            (Some(b), false) => Plan {
                into: d,
                as_name: Some(b.clone()),
                top: false,
                label: label.to_string(),
            },
            (None, _) => Plan {
                into: d,
                as_name: None,
                top: false,
                label: label.to_string(),
            },
            (Some(b), true) => {
                let sub = format!("{}/{}", label.trim_end_matches('/'), lossy(b));
                Plan {
                    into: mkdir_or_open(&d, b, &sub)?,
                    as_name: None,
                    top: true,
                    label: sub,
                }
            }
        });
    }
    let name = dest.name.clone().unwrap_or_default();
    if dest.st.is_some() {
        // An existing non-directory.
        if sp.dir {
            return Err(Error::NotDir(label.to_string()));
        }
        if src_dir {
            return Err(Error::DirToFile(src.label.clone(), label.to_string()));
        }
        return Ok(Plan {
            into: dest.dir,
            as_name: Some(name),
            top: false,
            label: label.to_string(),
        });
    }
    if src_dir {
        return Ok(Plan {
            into: mkdir_or_open(&dest.dir, &name, label)?,
            as_name: None,
            top: true,
            label: label.to_string(),
        });
    }
    if sp.dir {
        return Err(Error::DestDirMissing(label.to_string()));
    }
    Ok(Plan {
        into: dest.dir,
        as_name: Some(name),
        top: false,
        label: label.to_string(),
    })
}

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// The directory `name` in `dir`, made (0700, until the copy's own mode
/// is applied) if missing; never a symlink followed.
fn mkdir_or_open(dir: &OwnedFd, name: &[u8], label: &str) -> Result<OwnedFd> {
    match stat::mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(Error::Mkdir(label.to_string(), e.into())),
    }
    match open_dir_at(dir.as_raw_fd(), name) {
        Ok(fd) => Ok(fd),
        Err(Errno::ENOTDIR | Errno::ELOOP) => Err(Error::NotDirExists(label.to_string())),
        Err(e) => Err(Error::Lookup(label.to_string(), e.into())),
    }
}

/// Gives the copied top directory the source's owner (or `owner`), mode
/// and times. Last, because filling it changed its mtime.
fn finish_top(into: &OwnedFd, st: &FileStat, owner: Option<(Uid, Gid)>, label: &str) -> Result<()> {
    let err = |e: Errno| Error::Meta(label.to_string(), e.into());
    let (uid, gid) = owner.unwrap_or((Uid::from_raw(st.st_uid), Gid::from_raw(st.st_gid)));
    let fd = into.as_raw_fd();
    nix::unistd::fchown(fd, Some(uid), Some(gid)).map_err(err)?;
    stat::fchmod(fd, Mode::from_bits_truncate(st.st_mode & 0o7777)).map_err(err)?;
    let t = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
    stat::futimens(fd, &t, &t).map_err(err)
}

/// The unpacker's options for a copy: never device nodes, never layer
/// semantics.
fn unpack_options(owner: Option<(Uid, Gid)>) -> extract::Options {
    extract::Options {
        allow_devices: false,
        owner,
        plain: true,
    }
}

/// `/proc/self/fd/N`: the unpacker takes a path, and this one reopens
/// exactly the directory open as `fd`, wherever it is.
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Copies `src` as `plan` says: packs it on a second thread into a pipe,
/// unpacks from the pipe here.
fn copy(src: &Source, plan: &Plan, owner: Option<(Uid, Gid)>) -> Result<()> {
    let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| Error::Pipe(src.label.clone(), e.into()))?;
    let opts = unpack_options(owner);
    let root = fd_path(&plan.into);
    let (packed, unpacked) = std::thread::scope(|s| {
        let packer = s.spawn(move || {
            let mut w = File::from(wr);
            src.pack(plan.as_name.as_deref(), &mut w)
        });
        let mut r = BufReader::with_capacity(1 << 20, File::from(rd));
        let unpacked = extract::unpack(&mut r, &root, &opts);
        // A packer still writing gets EPIPE now instead of blocking.
        drop(r);
        let packed = packer
            .join()
            .unwrap_or_else(|_| Err(Error::Panicked(src.label.clone())));
        (packed, unpacked)
    });
    match (packed, unpacked) {
        (Ok(()), Ok(_)) => {}
        // The reader failed first and the writer only saw the pipe close.
        (Err(e), Err(u)) if broken_pipe(&e) => return Err(Error::Unpack(plan.label.clone(), u)),
        // A packer failure cuts the stream short: it is the cause.
        (Err(e), _) => return Err(e),
        (Ok(()), Err(u)) => return Err(Error::Unpack(plan.label.clone(), u)),
    }
    if plan.top {
        finish_top(&plan.into, &src.st, owner, &plan.label)?;
    }
    Ok(())
}

fn broken_pipe(e: &Error) -> bool {
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(x) = cur {
        if x.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        cur = x.source();
    }
    false
}

/// Where `path` leads in the container, as an error if a directory on the
/// way is missing or cannot be searched.
fn locate_in(root: &Root, path: &str, follow: bool, label: &str) -> Result<Located> {
    match locate(root.fd(), path.as_bytes(), follow) {
        Ok(l) => Ok(l),
        Err(Errno::ENOENT) => Err(Error::NoParent(label.to_string())),
        Err(e) => Err(Error::Lookup(label.to_string(), e.into())),
    }
}

fn container_source(
    root: &Root,
    cpath: &str,
    sp: Spelling,
    follow: bool,
    label: &str,
) -> Result<Source> {
    let loc = match locate(root.fd(), cpath.as_bytes(), follow || sp.dir) {
        Ok(l) => l,
        Err(Errno::ENOENT) => return Err(Error::Missing(label.to_string())),
        Err(e) => return Err(Error::Lookup(label.to_string(), e.into())),
    };
    let Some(st) = loc.st else {
        return Err(Error::Missing(label.to_string()));
    };
    if sp.dir && !is_dir(&st) {
        return Err(Error::NotDir(label.to_string()));
    }
    let base = if sp.contents {
        None
    } else {
        last_component(Path::new(cpath))
    };
    Ok(Source {
        loc,
        st,
        base,
        label: label.to_string(),
    })
}

/// Opens a host directory (following symlinks: host paths are the user's).
fn open_host_dir(p: &Path) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    fcntl::open(p, flags, Mode::empty()).map(|fd| {
        // SAFETY: open just returned this fd; nothing else owns it.
        unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
    })
}

/// The parent directory of a host path (`.` for a bare name) and the
/// path's last component; None for a path without one (`/`, `..`).
fn host_split(p: &Path) -> Option<(PathBuf, Vec<u8>)> {
    let name = p.file_name()?;
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Some((parent, name.as_bytes().to_vec()))
}

fn host_source(raw: &str, sp: Spelling, follow: bool) -> Result<Source> {
    let p = Path::new(raw);
    let label = raw.to_string();
    let missing = |e: io::Error| {
        if e.kind() == io::ErrorKind::NotFound {
            Error::Missing(label.clone())
        } else {
            Error::Lookup(label.clone(), e)
        }
    };
    let follow = follow || sp.dir;
    let md = if follow {
        fs::metadata(p)
    } else {
        fs::symlink_metadata(p)
    }
    .map_err(missing)?;
    if sp.dir && !md.is_dir() {
        return Err(Error::NotDir(label));
    }
    // The name the copy gets: as typed, or for `..` and the like the
    // directory's real name.
    let base = if sp.contents {
        None
    } else {
        match last_component(p) {
            Some(b) => Some(b),
            None => last_component(&fs::canonicalize(p).map_err(missing)?),
        }
    };
    let lookup = |e: Errno| Error::Lookup(label.clone(), e.into());
    let loc = if md.is_dir() {
        let dir = open_host_dir(p).map_err(lookup)?;
        let st = stat::fstat(dir.as_raw_fd()).map_err(lookup)?;
        Located {
            dir,
            name: None,
            st: Some(st),
        }
    } else {
        // A followed link is replaced by its target's real path, whose
        // last component is then not a link.
        let real = if follow {
            fs::canonicalize(p).map_err(missing)?
        } else {
            p.to_path_buf()
        };
        let (parent, name) = host_split(&real).ok_or_else(|| Error::Missing(label.clone()))?;
        let dir = open_host_dir(&parent).map_err(lookup)?;
        let st = stat::fstatat(
            Some(dir.as_raw_fd()),
            name.as_slice(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(lookup)?;
        Located {
            dir,
            name: Some(name),
            st: Some(st),
        }
    };
    let st = loc.st.ok_or_else(|| Error::Missing(label.clone()))?;
    Ok(Source {
        loc,
        st,
        base,
        label,
    })
}

/// Where a host DEST_PATH leads. The directories on the way are the
/// user's and are followed; DEST itself is not when it is a symlink, unless
/// it is spelled `DEST/`. A link there may be what an earlier copy out of
/// a container left, and writing through it would let the container pick
/// the host file to overwrite. So a link to a file (or to nothing) is
/// replaced by the copy, and a link to a directory is refused with a hint.
fn host_dest(raw: &str, sp: Spelling) -> Result<Located> {
    let p = Path::new(raw);
    let label = raw.to_string();
    let lookup = |e: Errno| Error::Lookup(label.clone(), e.into());
    let md = match fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_symlink() && sp.dir => fs::metadata(p),
        Ok(m) if m.file_type().is_symlink() => {
            if fs::metadata(p).is_ok_and(|t| t.is_dir()) {
                return Err(Error::DestLink(label));
            }
            Ok(m)
        }
        other => other,
    };
    match md {
        Ok(md) if md.is_dir() => {
            let dir = open_host_dir(p).map_err(lookup)?;
            let st = stat::fstat(dir.as_raw_fd()).map_err(lookup)?;
            Ok(Located {
                dir,
                name: None,
                st: Some(st),
            })
        }
        Ok(_) => {
            let (parent, name) = host_split(p).ok_or_else(|| Error::NotDir(label.clone()))?;
            let dir = open_host_dir(&parent).map_err(lookup)?;
            let st = stat::fstatat(
                Some(dir.as_raw_fd()),
                name.as_slice(),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(lookup)?;
            Ok(Located {
                dir,
                name: Some(name),
                st: Some(st),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let (parent, name) = host_split(p).ok_or_else(|| Error::Missing(label.clone()))?;
            let dir = match open_host_dir(&parent) {
                Ok(d) => d,
                Err(Errno::ENOENT) => return Err(Error::NoParent(label)),
                Err(e) => return Err(lookup(e)),
            };
            Ok(Located {
                dir,
                name: Some(name),
                st: None,
            })
        }
        Err(e) => Err(Error::Lookup(label, e)),
    }
}

pub fn cp(layout: &Layout, a: CpArgs) -> anyhow::Result<i32> {
    match (side(&a.src), side(&a.dest)) {
        (Side::Container(..), Side::Container(..)) => Err(Error::BetweenContainers.into()),
        (Side::Container(c, p), dest) => {
            copy_out(layout, c, p, dest, &a)?;
            Ok(0)
        }
        (src, Side::Container(c, p)) => {
            copy_in(layout, src, c, p, &a)?;
            Ok(0)
        }
        _ => Err(Error::NoContainer.into()),
    }
}

/// Container to host (or stdout).
fn copy_out(layout: &Layout, name: &str, path: &str, dest: Side<'_>, a: &CpArgs) -> Result<()> {
    let c = crate::store::resolve(layout, name)?;
    let cpath = clean_container_path(path);
    let label = format!("{name}:{cpath}");
    let sp = spelling(path);
    if dest == Side::Stream && io::stdout().is_terminal() {
        return Err(Error::Terminal("write a tar to"));
    }
    let root = Root::open(layout, c, false)?;
    let src = container_source(&root, &cpath, sp, a.follow_link, &label)?;
    let Side::Host(raw) = dest else {
        let mut out = io::stdout().lock();
        // The tar keeps the owners as they are: whoever unpacks it
        // chooses.
        src.pack(src.base.as_deref(), &mut out)?;
        return out
            .flush()
            .map_err(|e| Error::Pack(label, diff::Error::Finish(e)));
    };
    let owner = (!a.archive).then(|| (Uid::current(), Gid::current()));
    let sp = spelling(raw);
    let plan = plan(host_dest(raw, sp)?, sp, raw, &src)?;
    copy(&src, &plan, owner)
}

/// Refuses a copy to `into` (for `label`) on a read-only mount: one the
/// path reached through a link in the container, or a read-only root.
/// Without this the kernel's EROFS would say the same, file by file.
fn check_writable(into: &OwnedFd, label: &str) -> Result<()> {
    match nix::sys::statvfs::fstatvfs(into) {
        Ok(st) if st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) => {
            Err(Error::ReadOnly(label.to_string()))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(Error::Lookup(label.to_string(), e.into())),
    }
}

/// Host (or stdin) to container.
fn copy_in(layout: &Layout, src: Side<'_>, name: &str, path: &str, a: &CpArgs) -> Result<()> {
    let c = crate::store::resolve(layout, name)?;
    let cpath = clean_container_path(path);
    let label = format!("{name}:{cpath}");
    // Docker's check, on the path as typed: into a read-only volume or
    // bind (the deepest mount holding the path decides), nothing goes.
    if binds::holding(&c.record.mounts, &cpath).is_some_and(|m| !m.rw) {
        return Err(Error::ReadOnlyVolume(label));
    }
    let owner = (!a.archive).then(|| (Uid::from_raw(0), Gid::from_raw(0)));
    let Side::Host(raw) = src else {
        if io::stdin().is_terminal() {
            return Err(Error::Terminal("read a tar from"));
        }
        let root = Root::open(layout, c, true)?;
        let dest = locate_in(&root, &cpath, true, &label)?;
        if !dest.is_dir() {
            return Err(Error::StdinDest(label));
        }
        let into = dest
            .open_dir()
            .map_err(|e| Error::Lookup(label.clone(), e.into()))?;
        check_writable(&into, &label)?;
        let mut input = extract::decompress(Box::new(io::stdin())).map_err(Error::Stdin)?;
        extract::unpack(&mut input, &fd_path(&into), &unpack_options(owner))
            .map_err(|e| Error::Unpack(label, e))?;
        return Ok(());
    };
    // The host side first: a missing source fails before any mount.
    let src = host_source(raw, spelling(raw), a.follow_link)?;
    let root = Root::open(layout, c, true)?;
    let dest = locate_in(&root, &cpath, true, &label)?;
    let plan = plan(dest, spelling(path), &label, &src)?;
    check_writable(&plan.into, &label)?;
    copy(&src, &plan, owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_are_read_as_docker_reads_them() {
        assert_eq!(side("-"), Side::Stream);
        assert_eq!(side("c1:/etc"), Side::Container("c1", "/etc"));
        assert_eq!(side("c1:"), Side::Container("c1", ""));
        assert_eq!(side("/a:b"), Side::Host("/a:b"));
        assert_eq!(side("./a:b"), Side::Host("./a:b"));
        assert_eq!(side("file"), Side::Host("file"));
        assert_eq!(side(":x"), Side::Host(":x"));
    }

    #[test]
    fn spellings() {
        let s = |contents, dir| Spelling { contents, dir };
        assert_eq!(spelling("/a/b"), s(false, false));
        assert_eq!(spelling("/a/b/"), s(false, true));
        assert_eq!(spelling("/a/b/."), s(true, true));
        assert_eq!(spelling("."), s(true, true));
        assert_eq!(spelling("/a/b/.."), s(false, false));
    }

    #[test]
    fn container_paths_are_cleaned_below_the_root() {
        assert_eq!(clean_container_path("etc/hosts"), "/etc/hosts");
        assert_eq!(clean_container_path("/a/../../b/./c/"), "/b/c");
        assert_eq!(clean_container_path("/.."), "/");
        assert_eq!(clean_container_path(""), "/");
        assert_eq!(last_component(Path::new("/")), None);
        assert_eq!(last_component(Path::new("/a/b")), Some(b"b".to_vec()));
    }
}
