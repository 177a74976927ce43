//! A container's root filesystem as a directory fd, and container paths
//! resolved below it the way the container itself resolves them.
//!
//! Running container: `/proc/<init>/root`, the root (and every mount) that
//! init sees after its pivot_root. The `/proc/<pid>` dir is opened first
//! and checked to be a child of the container's shim: a pid is only a
//! number, and a recycled one could name a host process whose root is the
//! host's `/`.
//!
//! Stopped container: a forked helper mounts the container's overlay in a
//! private mount namespace of its own, binds the container's volumes and
//! bind mounts onto it (see `binds`), and passes back an open_tree(2)
//! clone of the whole tree over a socket (`SCM_RIGHTS`). The helper exits,
//! its namespace goes with it, and the tree lives on, detached and in no
//! mount table, until the fd is closed. Nothing is mounted on the host at
//! any moment. For writing, the overlay has the container's own upper and
//! work dirs, so the change lands in its upper dir, and the container's
//! life lock is held meanwhile so that no shim starts it on the same dirs.
//! For reading, the upper dir is just the top lower layer of a read-only
//! overlay (as for `export`), which needs no lock; only where that is
//! impossible (an image dir that contains the upper dir, as the host root
//! `/` does: overlayfs refuses nested lower layers) is it the container's
//! own overlay mounted read-only, under the lock.
//!
//! Paths are resolved with openat2(RESOLVE_IN_ROOT) under that fd: `/`,
//! `..` and absolute symlinks all stop at the container's root, so a link
//! `/escape -> /` in the container means the container's `/`, never the
//! host's (the CVE-2019-14271 class). Magic links (`/proc/N/root`) are
//! refused.

use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag};
use nix::sys::socket::{self, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType};
use nix::sys::stat::{self, FileStat, Mode, SFlag};
use oci_spec::runtime::Spec;
use protocol::init::{
    ANN_OVERLAY_LOWER, ANN_OVERLAY_UPPER, ANN_OVERLAY_VOLATILE, ANN_OVERLAY_WORK,
};
use protocol::paths::{self, Layout};
use protocol::record::{self, LifeLock, MountRecord};

use super::binds;
use crate::image::archive::mount_private_overlay;
use crate::image::extract::open_in_root;
use crate::store::Container;

/// Symlinks followed in one lookup at most, as path_resolution(7) allows.
const MAX_SYMLINKS: usize = 40;

/// How long a container that is starting or stopping may take to settle.
const SETTLE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container {0}: read its config {1}")]
    Spec(String, PathBuf, #[source] oci_spec::OciSpecError),
    #[error("container {0}: {1} names no root")]
    NoRoot(String, PathBuf),
    #[error("container {0}: open its root {1}")]
    OpenRoot(String, PathBuf, #[source] io::Error),
    #[error("container {0}: open /proc/{1}")]
    Proc(String, i32, #[source] io::Error),
    #[error("container {0}: its root filesystem is the host's / but its bundle says otherwise")]
    HostRoot(String),
    #[error("container {0} is starting or stopping; try again")]
    Busy(String),
    #[error("container {0}: fork the mount helper")]
    Fork(String, #[source] nix::Error),
    #[error("container {0}: cannot fork the mount helper from {1} threads")]
    Threads(String, usize),
    #[error("container {0}: mount helper: {1}")]
    Helper(String, String),
    #[error(transparent)]
    Record(#[from] record::Error),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// What a container's root filesystem is made of, from its bundle.
enum Layers {
    /// Lower dirs top first, and the container's own upper and work dirs.
    Overlay {
        lower: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
        volatile: bool,
    },
    /// A directory used as it is (`--no-overlay`).
    Dir(PathBuf),
}

impl Layers {
    /// Whether a read-only overlay with the upper dir as a lower layer is
    /// impossible: overlayfs refuses a lower layer inside another (ELOOP),
    /// and an image dir such as `/` holds the upper dir.
    fn nested(&self) -> bool {
        let Layers::Overlay { lower, upper, .. } = self else {
            return false;
        };
        let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let upper = real(upper);
        lower.iter().any(|l| upper.starts_with(real(l)))
    }
}

fn layers(c: &Container) -> Result<Layers> {
    let name = &c.record.name;
    let cfg = c.dir.join(paths::CONFIG_JSON);
    let spec = Spec::load(&cfg).map_err(|e| Error::Spec(name.clone(), cfg.clone(), e))?;
    let ann = spec.annotations().clone().unwrap_or_default();
    if let Some(lower) = ann.get(ANN_OVERLAY_LOWER) {
        let dir = |key: &str, default: &str| {
            ann.get(key)
                .map(PathBuf::from)
                .unwrap_or_else(|| c.dir.join(default))
        };
        return Ok(Layers::Overlay {
            lower: lower
                .split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect(),
            upper: dir(ANN_OVERLAY_UPPER, paths::UPPER),
            work: dir(ANN_OVERLAY_WORK, paths::WORK),
            volatile: ann.get(ANN_OVERLAY_VOLATILE).is_some_and(|v| v == "true"),
        });
    }
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .ok_or_else(|| Error::NoRoot(name.clone(), cfg.clone()))?;
    Ok(Layers::Dir(if root.is_absolute() {
        root
    } else {
        c.dir.join(root)
    }))
}

/// A container's root directory, open.
pub struct Root {
    fd: OwnedFd,
    /// Held while writing into a stopped container: no shim can start it
    /// (and mount the same upper dir) meanwhile.
    _life: Option<LifeLock>,
}

impl Root {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens the root of container `c`, running or not; `write` if the
    /// copy goes into it.
    pub fn open(layout: &Layout, mut c: Container, write: bool) -> Result<Root> {
        let deadline = std::time::Instant::now() + SETTLE;
        loop {
            if c.running() {
                if let Some(fd) = proc_root(&c)? {
                    check_not_host_root(&c, &fd)?;
                    return Ok(Root { fd, _life: None });
                }
            } else if !write && !layers(&c)?.nested() {
                // Reading needs no lock: a read-only overlay of the upper
                // dir does not disturb a shim that starts meanwhile.
                return Ok(Root {
                    fd: stopped_root(&c, Mount::ReadLowers)?,
                    _life: None,
                });
            } else if let Some(life) = LifeLock::try_acquire(&c.dir)? {
                // No shim now, and none can start until this is dropped;
                // the record read before may predate a start that ended.
                let now = Container::load(layout, &c.id)?;
                if !now.running() {
                    let how = if write { Mount::Write } else { Mount::ReadOwn };
                    return Ok(Root {
                        fd: stopped_root(&now, how)?,
                        _life: Some(life),
                    });
                }
            }
            if std::time::Instant::now() >= deadline {
                return Err(Error::Busy(c.record.name.clone()));
            }
            std::thread::sleep(Duration::from_millis(20));
            c = Container::load(layout, &c.id)?;
        }
    }
}

/// `/proc/<init>/root` of a running container, or None if the recorded
/// init is not (or no longer) the shim's child.
fn proc_root(c: &Container) -> Result<Option<OwnedFd>> {
    let (pid, shim) = (c.record.pid, c.record.shim_pid);
    if pid <= 0 || shim <= 0 {
        return Ok(None);
    }
    let proc_err = |e: Errno| Error::Proc(c.record.name.clone(), pid, e.into());
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    // The open dir stands for this one process from now on: if it dies and
    // the pid is reused, lookups under it fail instead of finding the new
    // process.
    let dir = match fcntl::open(format!("/proc/{pid}").as_str(), flags, Mode::empty()) {
        Ok(fd) => own(fd),
        Err(Errno::ENOENT | Errno::ESRCH) => return Ok(None),
        Err(e) => return Err(proc_err(e)),
    };
    match parent_pid(dir.as_raw_fd()) {
        Ok(ppid) if ppid == shim => {}
        Ok(_) | Err(Errno::ENOENT | Errno::ESRCH) => return Ok(None),
        Err(e) => return Err(proc_err(e)),
    }
    // The shim pid was current when the parent was read only if that shim
    // is still alive now.
    if !record::shim_alive(&c.dir) {
        return Ok(None);
    }
    match fcntl::openat(Some(dir.as_raw_fd()), "root", flags, Mode::empty()) {
        Ok(fd) => Ok(Some(own(fd))),
        // Exited meanwhile (a zombie has no root).
        Err(Errno::ENOENT | Errno::ESRCH) => Ok(None),
        Err(e) => Err(proc_err(e)),
    }
}

/// The parent pid from `stat` in the `/proc/<pid>` dir `dir`.
fn parent_pid(dir: RawFd) -> nix::Result<i32> {
    let fd = fcntl::openat(
        Some(dir),
        "stat",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut text = String::new();
    File::from(own(fd))
        .read_to_string(&mut text)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    // `pid (comm) state ppid ...`; comm may hold spaces and parentheses,
    // so the fields are counted from the last `)`.
    text.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .ok_or(Errno::EINVAL)
}

/// Refuses a root that is the host's `/` unless the bundle asks for
/// exactly that (a `--no-overlay` container on `/`): init's root before
/// its pivot_root is the host's, and a copy must never go there by
/// mistake.
fn check_not_host_root(c: &Container, fd: &OwnedFd) -> Result<()> {
    let ours = stat::stat("/");
    let theirs = stat::fstat(fd.as_raw_fd());
    let same =
        matches!((ours, theirs), (Ok(a), Ok(b)) if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino));
    if !same || matches!(layers(c)?, Layers::Dir(ref p) if p == Path::new("/")) {
        return Ok(());
    }
    Err(Error::HostRoot(c.record.name.clone()))
}

/// How a stopped container's overlay is mounted.
#[derive(Clone, Copy, PartialEq)]
enum Mount {
    /// Read-only, the upper dir as the top lower layer.
    ReadLowers,
    /// The container's own overlay (upper and work dir), read-only.
    ReadOwn,
    /// The container's own overlay, writable.
    Write,
}

/// The root of a stopped container: its image directory, or its overlay
/// mounted by a helper.
fn stopped_root(c: &Container, how: Mount) -> Result<OwnedFd> {
    let name = &c.record.name;
    let mounts = binds::shown(&c.record.mounts);
    // The bundle's own mount point: in the helper's namespace, a mount
    // there touches nothing else.
    let mnt = c.dir.join(paths::ROOTFS);
    let helper = |base: Base<'_>| {
        let job = Job {
            base,
            mounts: &mounts,
            create: how == Mount::Write,
            mnt: &mnt,
        };
        mount_helper(name, &job)
    };
    match layers(c)? {
        Layers::Dir(p) if !mounts.is_empty() => helper(Base::Dir(&p)),
        Layers::Dir(p) => {
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
            fcntl::open(&p, flags, Mode::empty())
                .map(own)
                .map_err(|e| Error::OpenRoot(name.clone(), p, e.into()))
        }
        Layers::Overlay {
            lower,
            upper,
            work,
            volatile,
        } => {
            if how == Mount::ReadLowers {
                // As `export` does; index=off lets a running overlay
                // share the upper dir.
                let mut all = vec![upper];
                all.extend(lower);
                return helper(Base::Overlay {
                    lower: &all,
                    upper: None,
                    read_only: true,
                    opts: "index=off",
                });
            }
            // As hind-init mounts it, so the upper dir stays what `commit`
            // can pack (no redirects, no metacopy).
            let mut opts = String::from("redirect_dir=off,metacopy=off");
            if volatile && how == Mount::Write {
                opts.push_str(",volatile");
            }
            helper(Base::Overlay {
                lower: &lower,
                upper: Some((&upper, &work)),
                read_only: how == Mount::ReadOwn,
                opts: &opts,
            })
        }
    }
}

/// What the helper mounts as the container's root.
enum Base<'a> {
    /// An overlay of `lower` (top first), writable with `upper`.
    Overlay {
        lower: &'a [PathBuf],
        upper: Option<(&'a Path, &'a Path)>,
        read_only: bool,
        opts: &'a str,
    },
    /// A directory used as it is (`--no-overlay`), bound so that the
    /// container's binds can go on top.
    Dir(&'a Path),
}

/// The helper's work: the root at `mnt`, then `mounts` onto it (mount
/// points made if missing with `create`).
struct Job<'a> {
    base: Base<'a>,
    mounts: &'a [MountRecord],
    create: bool,
    mnt: &'a Path,
}

/// Forks a helper that mounts the root and the container's binds in a
/// private mount namespace and sends back an fd of the tree; returns that
/// fd.
fn mount_helper(name: &str, job: &Job<'_>) -> Result<OwnedFd> {
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0);
    if threads != 1 {
        return Err(Error::Threads(name.to_string(), threads));
    }
    let fork_err = |e| Error::Fork(name.to_string(), e);
    // One message either way: "ok" with the fd attached, or the error.
    let (ours, theirs) = socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(fork_err)?;
    // SAFETY: the process is single-threaded (checked just above), so the
    // child gets consistent copies of every lock and of the allocator's
    // state; it only makes syscalls and allocates, and leaves with
    // `_exit`, never returning into the parent's code.
    let fork = unsafe { nix::unistd::fork() }.map_err(fork_err)?;
    match fork {
        nix::unistd::ForkResult::Child => {
            drop(ours);
            let _ = nix::sys::prctl::set_name(c"hind-cp-mount");
            let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
            let code = match helper(job) {
                Ok(fd) => {
                    let sent = socket::sendmsg::<()>(
                        theirs.as_raw_fd(),
                        &[IoSlice::new(b"ok")],
                        &[ControlMessage::ScmRights(&[fd.as_raw_fd()])],
                        MsgFlags::empty(),
                        None,
                    );
                    i32::from(sent.is_err())
                }
                Err(msg) => {
                    let _ = socket::send(theirs.as_raw_fd(), msg.as_bytes(), MsgFlags::empty());
                    1
                }
            };
            // SAFETY: _exit(2) ends the child at once, without running the
            // parent's atexit handlers or flushing its copied stdio buffers.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(theirs);
            let got = receive(&ours);
            let status = loop {
                match nix::sys::wait::waitpid(child, None) {
                    Err(Errno::EINTR) => continue,
                    other => break other,
                }
            };
            match got {
                Ok(Ok(fd)) => Ok(fd),
                Ok(Err(msg)) if !msg.is_empty() => Err(Error::Helper(name.to_string(), msg)),
                Ok(Err(_)) => Err(Error::Helper(
                    name.to_string(),
                    format!("exited without an answer: {status:?}"),
                )),
                Err(e) => Err(Error::Helper(
                    name.to_string(),
                    format!("read its answer: {e}"),
                )),
            }
        }
    }
}

/// In the helper: mounts the root, then the binds onto it (after the
/// root, so that they land on the container's tree, not under it), then
/// clones the whole tree.
fn helper(job: &Job<'_>) -> std::result::Result<OwnedFd, String> {
    match job.base {
        Base::Overlay {
            lower,
            upper,
            read_only,
            opts,
        } => mount_private_overlay(lower, upper, read_only, opts, job.mnt)?,
        Base::Dir(dir) => binds::mount_private_dir(dir, job.mnt)?,
    }
    binds::bind_all(job.mnt, job.mounts, job.create)?;
    binds::clone_tree(job.mnt)
}

/// The helper's answer: the fd, or its error text.
fn receive(sock: &OwnedFd) -> nix::Result<std::result::Result<OwnedFd, String>> {
    let mut buf = vec![0u8; 4096];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let (n, fd) = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match socket::recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(msg) => {
                let mut fd = None;
                for c in msg.cmsgs()? {
                    if let socket::ControlMessageOwned::ScmRights(fds) = c {
                        for f in fds {
                            // Each one is ours to close; keep the first.
                            let owned = own(f);
                            fd.get_or_insert(owned);
                        }
                    }
                }
                break (msg.bytes, fd);
            }
        }
    };
    Ok(match fd {
        Some(fd) if &buf[..n] == b"ok" => Ok(fd),
        _ => Err(String::from_utf8_lossy(&buf[..n]).into_owned()),
    })
}

/// Takes ownership of an fd a syscall just returned.
fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: every caller passes an fd that open/openat/recvmsg returned a
    // moment ago; nothing else holds or closes it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Where a container path leads.
pub struct Located {
    /// The directory holding the node; with `name` None, the node itself
    /// (a directory: the root, or a path ending in `.` or `..`).
    pub dir: OwnedFd,
    pub name: Option<Vec<u8>>,
    /// The node, not followed; None if nothing is at `name`.
    pub st: Option<FileStat>,
}

impl Located {
    pub fn is_dir(&self) -> bool {
        self.st.is_some_and(|st| is_dir(&st))
    }

    /// The node as an open directory (`O_NOFOLLOW`: `st` said what it is).
    pub fn open_dir(&self) -> nix::Result<OwnedFd> {
        match &self.name {
            None => fcntl::openat(
                Some(self.dir.as_raw_fd()),
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map(own),
            Some(n) => open_dir_at(self.dir.as_raw_fd(), n),
        }
    }
}

pub fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR
}

/// Opens the directory `name` in `dir`, never following a symlink.
pub fn open_dir_at(dir: RawFd, name: &[u8]) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    fcntl::openat(Some(dir), name, flags, Mode::empty()).map(own)
}

/// Resolves `path` (relative to the container's `/`; `..` allowed) under
/// `root`. Every directory on the way is resolved inside the root; the last
/// component is followed only with `follow`, by reading the link and
/// resolving its target again from the root (an absolute target from the
/// root itself, a relative one from the link's directory), as the kernel
/// would inside the container. ENOENT means a directory on the way is
/// missing; a missing last component is `st: None`.
pub fn locate(root: BorrowedFd<'_>, path: &[u8], follow: bool) -> nix::Result<Located> {
    let root = root.as_raw_fd();
    let mut path = path.to_vec();
    for _ in 0..=MAX_SYMLINKS {
        let trimmed = trim_slashes(&path);
        let (parent, name) = match trimmed.iter().rposition(|b| *b == b'/') {
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => (&[][..], trimmed),
        };
        if name.is_empty() || name == b"." || name == b".." {
            // The root, or a directory named by `.`/`..`: open it whole.
            let dir = if trimmed.is_empty() {
                fcntl::openat(
                    Some(root),
                    ".",
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map(own)?
            } else {
                open_in_root(root, trimmed, OFlag::empty())?
            };
            let st = stat::fstat(dir.as_raw_fd())?;
            return Ok(Located {
                dir,
                name: None,
                st: Some(st),
            });
        }
        let dir = if parent.is_empty() {
            fcntl::openat(
                Some(root),
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map(own)?
        } else {
            open_in_root(root, parent, OFlag::empty())?
        };
        let st = match stat::fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Some(st),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(e),
        };
        let link = st.is_some_and(|st| {
            SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFLNK
        });
        if follow && link {
            let target = fcntl::readlinkat(Some(dir.as_raw_fd()), name)?;
            let target = std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()).to_vec();
            path = if target.starts_with(b"/") {
                target
            } else {
                let mut p = parent.to_vec();
                p.push(b'/');
                p.extend_from_slice(&target);
                p
            };
            continue;
        }
        return Ok(Located {
            dir,
            name: Some(name.to_vec()),
            st,
        });
    }
    Err(Errno::ELOOP)
}

/// `path` without leading and trailing slashes.
fn trim_slashes(path: &[u8]) -> &[u8] {
    let start = path.iter().position(|b| *b != b'/').unwrap_or(path.len());
    let end = path
        .iter()
        .rposition(|b| *b != b'/')
        .map_or(start, |i| i + 1);
    &path[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn tmp(name: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("hind-cp-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }

    fn open(p: &Path) -> OwnedFd {
        OwnedFd::from(File::open(p).unwrap())
    }

    #[test]
    fn trims_slashes() {
        assert_eq!(trim_slashes(b"//a/b//"), b"a/b");
        assert_eq!(trim_slashes(b"///"), b"");
        assert_eq!(trim_slashes(b""), b"");
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let t = tmp("locate");
        let r = t.0.join("root");
        fs::create_dir_all(r.join("etc")).unwrap();
        fs::write(r.join("etc/f"), b"in").unwrap();
        symlink("/", r.join("escape")).unwrap();
        symlink("/etc", r.join("abs")).unwrap();
        symlink("../../../etc/f", r.join("etc/up")).unwrap();
        symlink("f", r.join("etc/rel")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        let root = open(&r);
        let name = |l: &Located| l.name.clone().map(|n| String::from_utf8(n).unwrap());

        let l = locate(root.as_fd(), b"/escape/etc/f", false).unwrap();
        assert_eq!(name(&l).as_deref(), Some("f"));
        assert!(l.st.is_some());
        // Not followed: the link itself.
        let l = locate(root.as_fd(), b"/escape", false).unwrap();
        assert_eq!(name(&l).as_deref(), Some("escape"));
        // Followed: the container's `/`.
        let l = locate(root.as_fd(), b"/escape", true).unwrap();
        assert!(l.name.is_none() && l.is_dir());
        let l = locate(root.as_fd(), b"abs/up", true).unwrap();
        assert_eq!(name(&l).as_deref(), Some("f"));
        let l = locate(root.as_fd(), b"etc/rel", true).unwrap();
        assert_eq!(name(&l).as_deref(), Some("f"));
        let l = locate(root.as_fd(), b"/etc/missing", true).unwrap();
        assert!(l.st.is_none());
        assert_eq!(
            locate(root.as_fd(), b"/nodir/x", true).err(),
            Some(Errno::ENOENT)
        );
        assert_eq!(
            locate(root.as_fd(), b"/loop", true).err(),
            Some(Errno::ELOOP)
        );
        let l = locate(root.as_fd(), b"/../../..", true).unwrap();
        let st = fs::metadata(&r).unwrap();
        let got = l.st.unwrap();
        assert_eq!(
            (got.st_ino, got.st_dev),
            (
                std::os::unix::fs::MetadataExt::ino(&st),
                std::os::unix::fs::MetadataExt::dev(&st)
            )
        );
    }

    #[test]
    fn parent_pid_parses_odd_names() {
        let me = open(Path::new("/proc/self"));
        assert_eq!(
            parent_pid(me.as_raw_fd()).unwrap(),
            nix::unistd::getppid().as_raw()
        );
    }
}
