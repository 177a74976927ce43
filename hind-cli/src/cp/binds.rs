//! A stopped container's bind mounts and volumes, mounted over its root in
//! the cp helper's private mount namespace, so that a copy reads and
//! writes them where the running container would: `cp f stopped:/data/`
//! lands in the volume at /data, not in the overlay under it.
//!
//! Each destination is resolved inside the root with openat2(2)
//! RESOLVE_IN_ROOT, never through a magic link, and mounted on as
//! `/proc/self/fd/N`: an image whose /data is a symlink to `/etc` gets the
//! volume on its own /etc, never the host's (the CVE-2021-30465 class, as
//! hind-init's `rootfs` guards it at start). The finished tree is handed
//! back as an open_tree(2) clone, which keeps the binds attached after the
//! helper and its namespace are gone.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{self, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{self, Mode};
use protocol::record::MountRecord;

use crate::image::extract::open_in_root;

const NONE: Option<&str> = None;

/// The mounts a copy into or out of a stopped container sees: binds and
/// volumes, parents before children (as the bundle orders them, so a
/// volume on /etc does not hide a bind on /etc/hosts made before it).
/// tmpfs mounts have no content while the container is stopped.
pub fn shown(mounts: &[MountRecord]) -> Vec<MountRecord> {
    let mut v: Vec<MountRecord> = mounts
        .iter()
        .filter(|m| m.kind == "bind" || m.kind == "volume")
        .cloned()
        .collect();
    v.sort_by_key(|m| Path::new(&m.destination).components().count());
    v
}

/// The deepest of `mounts` whose destination holds the container path
/// `path` (absolute and clean), as Docker's `HasResource` matches them.
pub fn holding<'a>(mounts: &'a [MountRecord], path: &str) -> Option<&'a MountRecord> {
    mounts
        .iter()
        .filter(|m| Path::new(path).starts_with(&m.destination))
        .max_by_key(|m| Path::new(&m.destination).components().count())
}

/// In the helper, with a root mounted at `mnt`: binds each of `mounts`
/// (from `shown`) onto its destination below it. A missing source is
/// skipped: the container could not start with it either. A missing
/// destination is made with `create` (directories, or an empty file for a
/// file source), as Docker's `mountVolumes` and hind-init at start make
/// it; without, there is nothing the mount would hide, and it is skipped.
pub fn bind_all(mnt: &Path, mounts: &[MountRecord], create: bool) -> Result<(), String> {
    let root = open_path(None, mnt.as_os_str().as_bytes(), ResolveFlag::empty())
        .map_err(|e| format!("open {}: {e}", mnt.display()))?;
    let root_id = id(&root).map_err(|e| format!("stat {}: {e}", mnt.display()))?;
    for m in mounts {
        bind_one(&root, root_id, m, create)?;
    }
    Ok(())
}

fn bind_one(
    root: &OwnedFd,
    root_id: (u64, u64),
    m: &MountRecord,
    create: bool,
) -> Result<(), String> {
    let dest = &m.destination;
    let is_dir = match fs::metadata(&m.source) {
        Ok(md) => md.is_dir(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            log::debug!("cp: {} source {} is gone; not mounted", m.kind, m.source);
            return Ok(());
        }
        Err(e) => return Err(format!("{} source {}: {e}", m.kind, m.source)),
    };
    // Relative to the root's fd; `/` alone is the root itself.
    let rel = match dest.trim_start_matches('/') {
        "" => ".",
        r => r,
    };
    let fd = match open_path(Some(root), rel.as_bytes(), ResolveFlag::RESOLVE_IN_ROOT) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) if create => make_mount_point(root, rel, is_dir)
            .map_err(|e| format!("make mount point {dest} in the container: {e}"))?,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(format!("open mount point {dest} in the container: {e}")),
    };
    // A destination that is the root (`/`, or a link to it): a start
    // refuses it, and here nothing is mounted over the whole copy.
    if id(&fd).map_err(|e| format!("stat mount point {dest}: {e}"))? == root_id {
        return Ok(());
    }
    // mount(2) on /proc/self/fd/N mounts on exactly what the fd resolved
    // to inside the root, wherever the path would lead by now.
    let err = |e: Errno| format!("bind {} on {dest}: {e}", m.source);
    mount(
        Some(m.source.as_str()),
        &fd_path(&fd),
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .map_err(err)?;
    if m.rw {
        return Ok(());
    }
    // A bind ignores MS_RDONLY on creation; a remount of the new mount
    // applies it (mount(2), "Creating a bind mount"). Opened again, the
    // path crosses into that mount, which is what the remount must name.
    let top = open_path(Some(root), rel.as_bytes(), ResolveFlag::RESOLVE_IN_ROOT).map_err(err)?;
    mount(
        NONE,
        &fd_path(&top),
        NONE,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
        NONE,
    )
    .map_err(err)
}

/// Makes the mount point `rel` below `root`, each step resolved inside the
/// root (a link on the way leads where it leads in the container), and
/// opens it.
fn make_mount_point(root: &OwnedFd, rel: &str, dir: bool) -> nix::Result<OwnedFd> {
    let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        let parent = match i {
            0 => None,
            _ => Some(open_in_root(
                root.as_raw_fd(),
                parts[..i].join("/").as_bytes(),
                OFlag::empty(),
            )?),
        };
        let at = parent.as_ref().unwrap_or(root).as_raw_fd();
        let made = if i + 1 == parts.len() && !dir {
            // O_EXCL with O_CREAT never follows a link at the name.
            let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
            fcntl::openat(Some(at), *part, flags, Mode::from_bits_truncate(0o644)).map(|fd| {
                drop(own(fd));
            })
        } else {
            stat::mkdirat(Some(at), *part, Mode::from_bits_truncate(0o755))
        };
        match made {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    open_path(Some(root), rel.as_bytes(), ResolveFlag::RESOLVE_IN_ROOT)
}

/// In the helper, for a root that is a plain directory (`--no-overlay`):
/// a private mount namespace, and `dir` bound (with what is mounted below
/// it) onto `mnt`, so that the binds go on a mount of the helper's own.
pub fn mount_private_dir(dir: &Path, mnt: &Path) -> Result<(), String> {
    // unshare(2) CLONE_NEWNS: a copy of the mount table that dies with the
    // helper; private propagation (mount_namespaces(7)) keeps every mount
    // made in it from being copied back to the host's.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("unshare the mount namespace: {e}"))?;
    mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE)
        .map_err(|e| format!("make / private: {e}"))?;
    mount(
        Some(dir),
        mnt,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .map_err(|e| format!("bind {} on {}: {e}", dir.display(), mnt.display()))
}

/// A detached copy of the mount at `dir` with every mount below it
/// (open_tree(2) OPEN_TREE_CLONE | AT_RECURSIVE), as an `O_PATH` fd. It
/// belongs to no namespace and lives as long as the fd. An fd of `dir`
/// alone would not do: when the helper's namespace dies, the mounts in it
/// are disconnected from each other, and the binds would vanish from
/// under the root.
pub fn clone_tree(dir: &Path) -> Result<OwnedFd, String> {
    let path = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| format!("{}: a NUL in the path", dir.display()))?;
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as u32;
    // SAFETY: open_tree takes a NUL-terminated path that outlives the
    // call and plain integer flags; it returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(format!(
            "clone the mounts at {}: {}",
            dir.display(),
            Errno::last()
        ));
    }
    Ok(own(fd as i32))
}

/// `path` as an `O_PATH` fd, relative to `dir` (the cwd if None), never
/// through a magic link, with `resolve` on top.
fn open_path(dir: Option<&OwnedFd>, path: &[u8], resolve: ResolveFlag) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(resolve | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let at = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // openat2(2): with RESOLVE_IN_ROOT the kernel answers EAGAIN when a
    // concurrent rename or mount might have let `..` slip out; retry.
    let mut tries = 0;
    loop {
        match fcntl::openat2(at, path, how) {
            Err(Errno::EAGAIN) if tries < 16 => tries += 1,
            r => return r.map(own),
        }
    }
}

/// `(st_dev, st_ino)` of what `fd` refers to.
fn id(fd: &OwnedFd) -> nix::Result<(u64, u64)> {
    let st = stat::fstat(fd.as_raw_fd())?;
    Ok((st.st_dev, st.st_ino))
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Takes ownership of an fd a syscall just returned.
fn own(fd: i32) -> OwnedFd {
    // SAFETY: every caller passes an fd that open/openat2/open_tree
    // returned a moment ago; nothing else holds or closes it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: &str, dest: &str, rw: bool) -> MountRecord {
        MountRecord {
            kind: kind.into(),
            source: format!("/src{dest}"),
            destination: dest.into(),
            rw,
            ..Default::default()
        }
    }

    #[test]
    fn binds_and_volumes_parents_first() {
        let all = [
            rec("bind", "/etc/hosts", true),
            rec("tmpfs", "/run", true),
            rec("volume", "/etc", false),
            rec("bind", "/a/b/c", true),
            rec("volume", "/data", true),
        ];
        let dests: Vec<String> = shown(&all).into_iter().map(|m| m.destination).collect();
        assert_eq!(dests, ["/etc", "/data", "/etc/hosts", "/a/b/c"]);
    }

    #[test]
    fn the_deepest_mount_holds_a_path() {
        let all = [rec("volume", "/data", false), rec("bind", "/data/rw", true)];
        let dest = |p: &str| holding(&all, p).map(|m| m.destination.as_str());
        assert_eq!(dest("/data"), Some("/data"));
        assert_eq!(dest("/data/x/y"), Some("/data"));
        assert_eq!(dest("/data/rw/x"), Some("/data/rw"));
        assert_eq!(dest("/database"), None);
        assert_eq!(dest("/"), None);
    }
}
