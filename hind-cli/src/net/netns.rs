//! Persistent network namespaces bound to a file, as `ip netns add` makes
//! them under /run/netns but at a path hind chooses
//! (`<state>/containers/<id>/netns`), so a container's network exists
//! before its first process and can be entered by later commands.
//!
//! A namespace is kept alive by bind-mounting its nsfs file onto a plain
//! file (namespaces(7)). Network namespace membership is per thread
//! (unshare(2), setns(2)), so every switch here happens on a short-lived
//! thread: the caller's thread never moves, and nothing needs restoring
//! when that thread exits.
//!
//! Mount propagation: the state directory may sit on a shared mount. Binding
//! nsfs there is fine (iproute2 does the same under /run/netns). A container's
//! mount namespace copies these bind mounts when it is created, but drops
//! them with the old root at pivot_root, so containers do not pin each
//! other's network namespaces.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::{fstatfs, statfs, NSFS_MAGIC};

use super::netlink::{self, Netlink};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("create {0}")]
    CreateFile(PathBuf, #[source] io::Error),
    #[error("start a thread to switch network namespace")]
    Spawn(#[source] io::Error),
    #[error("unshare a new network namespace")]
    Unshare(#[source] io::Error),
    #[error("bind-mount the new network namespace on {0}")]
    Bind(PathBuf, #[source] io::Error),
    #[error("bring up lo in network namespace {0}")]
    Loopback(PathBuf, #[source] Box<netlink::Error>),
    #[error("open network namespace {0}")]
    Open(PathBuf, #[source] io::Error),
    #[error("statfs {0}")]
    Statfs(PathBuf, #[source] io::Error),
    #[error("{0} is not a bound network namespace (stale after a reboot?)")]
    NotNetns(PathBuf),
    #[error("unmount network namespace {0}")]
    Unmount(PathBuf, #[source] io::Error),
    #[error("remove {0}")]
    Remove(PathBuf, #[source] io::Error),
    #[error("enter network namespace")]
    Setns(#[source] io::Error),
    #[error("invalid sysctl key {0:?}")]
    BadSysctl(String),
    #[error("write {0}")]
    Sysctl(PathBuf, #[source] io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Creates a new network namespace with `lo` up and binds it to `path`,
/// which must not exist. On failure nothing is left behind.
pub fn create(path: &Path) -> Result<()> {
    // O_EXCL: two creates for one path must not end up sharing, and later
    // both removing, one namespace.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)
        .map_err(|e| Error::CreateFile(path.into(), e))?;
    let made = on_thread(|| {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| Error::Unshare(e.into()))?;
        // thread-self, not self: only this thread is in the new namespace.
        let ns = "/proc/thread-self/ns/net";
        mount(Some(ns), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(|e| Error::Bind(path.into(), e.into()))?;
        // A new namespace's only link is lo, and it starts down; programs
        // expect 127.0.0.1 to work. The socket is in this thread's (new)
        // namespace.
        Netlink::open()
            .and_then(|mut nl| nl.set_up("lo"))
            .map_err(|e| Error::Loopback(path.into(), Box::new(e)))
    });
    if made.is_err() {
        // Best effort: the step that failed is the error to report.
        let _ = umount2(path, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW);
        let _ = fs::remove_file(path);
    }
    made
}

/// Opens a namespace bound by [`create`], for setns(2), `run_in` or
/// IFLA_NET_NS_FD. The fd is close-on-exec.
pub fn open(path: &Path) -> Result<OwnedFd> {
    let file = File::open(path).map_err(|e| Error::Open(path.into(), e))?;
    let fs = fstatfs(&file).map_err(|e| Error::Statfs(path.into(), e.into()))?;
    // After a reboot the mount is gone and `path` is an empty regular file;
    // setns on that would fail later with a bare EINVAL.
    if fs.filesystem_type() != NSFS_MAGIC {
        return Err(Error::NotNetns(path.into()));
    }
    Ok(file.into())
}

/// Whether `path` currently has a namespace bound on it.
pub fn is_bound(path: &Path) -> bool {
    statfs(path).is_ok_and(|fs| fs.filesystem_type() == NSFS_MAGIC)
}

/// Unbinds and deletes `path`; fine if either is already done. The
/// namespace itself lives on while a process or an open fd still uses it.
pub fn remove(path: &Path) -> Result<()> {
    // NOFOLLOW: never unmount whatever a symlink at `path` points to. The
    // loop takes off binds stacked by a racing create.
    loop {
        match umount2(path, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
            Ok(()) => continue,
            Err(Errno::EINVAL | Errno::ENOENT) => break,
            Err(e) => return Err(Error::Unmount(path.into(), e.into())),
        }
    }
    // Since Linux 3.18 unlink also detaches copies of the mount in other
    // mount namespaces, so a container's stray copy does not make this fail.
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::Remove(path.into(), e)),
        _ => Ok(()),
    }
}

/// Runs `f` on a short-lived thread inside `netns`. Sockets `f` creates
/// stay in `netns` when returned; the caller's thread does not move.
pub fn run_in<T: Send>(netns: BorrowedFd<'_>, f: impl FnOnce() -> T + Send) -> Result<T> {
    on_thread(|| {
        setns(netns, CloneFlags::CLONE_NEWNET).map_err(|e| Error::Setns(e.into()))?;
        Ok(f())
    })
}

/// Writes `value` to sysctl `key` ("net.ipv4.ip_forward", or with '/'
/// separators when a part has a dot, like sysctl(8)). /proc/sys/net shows
/// the namespace of the *calling thread*: call this inside `run_in` to set a
/// container's.
pub fn sysctl(key: &str, value: &str) -> Result<()> {
    let rel = if key.contains('/') {
        key.to_owned()
    } else {
        key.replace('.', "/")
    };
    if rel.starts_with('/') || rel.split('/').any(|part| part.is_empty() || part == "..") {
        return Err(Error::BadSysctl(key.into()));
    }
    let path = Path::new("/proc/sys").join(rel);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| Error::Sysctl(path, e))
}

/// Runs `f` on a fresh thread, named for `ps -L`, and waits for it; a panic
/// in `f` is re-raised here.
fn on_thread<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("hind-netns".into())
            .spawn_scoped(scope, f)
            .map_err(Error::Spawn)?
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;

    use super::*;

    /// Moves the calling test thread into a fresh network namespace. libtest
    /// runs each test on its own thread, so tests never touch the host's
    /// namespace or each other's.
    pub(crate) fn private_netns() {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET): tests run as root");
    }

    /// A directory under /tmp, removed with any namespace bound in it.
    pub(crate) struct Scratch(PathBuf);

    impl Scratch {
        pub(crate) fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("hind-{name}-{}", std::process::id()));
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        pub(crate) fn netns(&self) -> PathBuf {
            self.0.join("netns")
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = remove(&self.netns());
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn thread_netns() -> u64 {
        fs::metadata("/proc/thread-self/ns/net").unwrap().ino()
    }

    #[test]
    fn create_open_remove() {
        private_netns();
        let scratch = Scratch::new("netns-life");
        let path = scratch.netns();
        let mine = thread_netns();
        create(&path).unwrap();
        assert_eq!(thread_netns(), mine, "create must not move the caller");
        assert!(is_bound(&path));

        let ns = open(&path).unwrap();
        let (theirs, lo_works) = run_in(ns.as_fd(), || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            (
                thread_netns(),
                TcpStream::connect(l.local_addr().unwrap()).is_ok(),
            )
        })
        .unwrap();
        assert_ne!(theirs, mine);
        assert!(lo_works, "lo is up inside");
        assert_eq!(thread_netns(), mine, "run_in must not move the caller");

        // The second create fails and leaves the first binding alone.
        assert!(matches!(create(&path), Err(Error::CreateFile(..))));
        assert!(is_bound(&path));

        drop(ns);
        remove(&path).unwrap();
        assert!(!path.exists());
        assert!(!is_bound(&path));
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(scratch.0.to_str().unwrap()), "{mounts}");
        remove(&path).unwrap();
    }

    #[test]
    fn plain_file_is_not_a_netns() {
        let scratch = Scratch::new("netns-plain");
        let path = scratch.netns();
        assert!(matches!(open(&path), Err(Error::Open(..))));
        fs::write(&path, "").unwrap();
        assert!(!is_bound(&path));
        let err = open(&path).unwrap_err();
        assert!(matches!(&err, Error::NotNetns(p) if *p == path));
        assert!(err
            .to_string()
            .ends_with("is not a bound network namespace (stale after a reboot?)"));
        remove(&path).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn create_in_missing_dir_leaves_nothing() {
        let path = Path::new("/tmp/hind-no-such-dir-for-netns/netns");
        assert!(matches!(create(path), Err(Error::CreateFile(..))));
        assert!(!path.exists());
    }

    #[test]
    fn sysctl_writes_the_calling_threads_netns() {
        private_netns();
        let key = "net.ipv4.ip_unprivileged_port_start";
        let file = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
        sysctl(key, "2000").unwrap();
        assert_eq!(fs::read_to_string(file).unwrap().trim(), "2000");

        let scratch = Scratch::new("netns-sysctl");
        create(&scratch.netns()).unwrap();
        let ns = open(&scratch.netns()).unwrap();
        let inside = run_in(ns.as_fd(), || fs::read_to_string(file))
            .unwrap()
            .unwrap();
        assert_ne!(inside.trim(), "2000");

        for bad in ["net/../../etc/passwd", "/etc/passwd", "net..ipv4", ""] {
            assert!(
                matches!(sysctl(bad, "1"), Err(Error::BadSysctl(_))),
                "{bad:?}"
            );
        }
        let err = sysctl("net.ipv4.no_such_knob", "1").unwrap_err();
        assert_eq!(err.to_string(), "write /proc/sys/net/ipv4/no_such_knob");
    }
}
