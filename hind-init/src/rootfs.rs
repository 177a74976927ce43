//! Builds the container's filesystem view inside its own mount namespace:
//! the root (an overlay or a bind), the spec's mounts, device nodes in
//! `/dev`, then pivot_root into it and the masked and read-only paths.
//!
//! Mount targets are resolved inside the new root, symlinks included, so an
//! image cannot point a mount at the host, and mounted through an fd opened
//! with openat2(RESOLVE_IN_ROOT), so a symlink swapped in meanwhile cannot
//! either (the runc CVE-2021-30465 class). procfs and sysfs go only onto
//! real directories, and /proc must be procfs before init trusts it (the
//! CVE-2019-16884 class).

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{chdir, chown, pivot_root, sethostname, Gid, Uid};
use protocol::init::{Device, InitConfig, Mount, Overlay};

use crate::sys;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("join cgroup through {0}")]
    Cgroup(PathBuf, #[source] io::Error),
    #[error("unshare the cgroup namespace")]
    CgroupNs(#[source] nix::Error),
    #[error("set the propagation of the mounts under /")]
    MakePrivate(#[source] nix::Error),
    #[error("mount overlay on {0}")]
    Overlay(PathBuf, #[source] nix::Error),
    #[error("bind rootfs {0} onto itself")]
    BindRoot(PathBuf, #[source] nix::Error),
    #[error("resolve mount target {0} in the container")]
    Resolve(PathBuf, #[source] io::Error),
    #[error("create mount point {0}")]
    MountPoint(PathBuf, #[source] io::Error),
    #[error("open the root {0}")]
    OpenRoot(PathBuf, #[source] nix::Error),
    #[error("mount {kind} on {dest}: {why}")]
    Destination {
        kind: String,
        dest: PathBuf,
        why: String,
    },
    #[error("{0} is not procfs after mounting proc on it")]
    NotProc(PathBuf),
    #[error("mount {kind} on {target}")]
    Mount {
        kind: String,
        target: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("create device {0}")]
    Device(PathBuf, #[source] nix::Error),
    #[error("create {0}")]
    Create(PathBuf, #[source] io::Error),
    #[error("bring up loopback interface")]
    Loopback(#[source] io::Error),
    #[error("set hostname {0:?}")]
    Hostname(String, #[source] nix::Error),
    #[error("set domainname {0:?}")]
    Domainname(String, #[source] io::Error),
    #[error(transparent)]
    Hook(Box<crate::hooks::Error>),
    #[error("pivot_root into {0}")]
    PivotRoot(PathBuf, #[source] nix::Error),
    #[error("detach the old root")]
    DetachOldRoot(#[source] nix::Error),
    #[error("set propagation of /")]
    Propagation(#[source] nix::Error),
    #[error("mask {0}")]
    Mask(PathBuf, #[source] nix::Error),
    #[error("make {0} read-only")]
    ReadOnly(PathBuf, #[source] nix::Error),
    #[error("write sysctl {0}")]
    Sysctl(String, #[source] io::Error),
    #[error("fill the volume at {0} from the image")]
    CopyUp(PathBuf, #[source] crate::copyup::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

const NONE: Option<&str> = None;

/// Everything between "fresh namespaces" and "inside the new root".
pub fn setup(cfg: &InitConfig) -> Result<()> {
    // Writing "0" to a v1 `tasks` file moves only the writer, a process of
    // one thread here, and skips the kernel's global threadgroup lock that
    // a pid written to cgroup.procs takes (its first use after a quiet
    // spell waits for an RCU grace period, about 10 ms).
    for f in &cfg.cgroup_join {
        fs::write(f, "0").map_err(|e| Error::Cgroup(f.clone(), e))?;
    }
    if cfg.new_cgroup_ns {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP).map_err(Error::CgroupNs)?;
    }
    // A new mount namespace starts as a copy whose mounts may still be
    // shared with the host's peer groups (mount_namespaces(7)); make them
    // private first so nothing below propagates out, and the host's later
    // mounts don't propagate in.
    // `rootfsPropagation` when the spec sets one (runc's default, rslave,
    // comes from hind-runc): applied to the whole copy before the root is
    // bound, so the root and the mounts bound from the host inherit it.
    let first = match MsFlags::from_bits_truncate(cfg.rootfs_propagation) {
        f if f.is_empty() => MsFlags::MS_PRIVATE,
        f => f,
    };
    mount(NONE, "/", NONE, MsFlags::MS_REC | first, NONE).map_err(Error::MakePrivate)?;
    if first.contains(MsFlags::MS_SHARED) {
        // pivot_root(2) refuses a new root whose parent mount is shared
        // (EINVAL), and the root's bind would join that peer group: the
        // mount holding the root dir alone becomes private.
        let parent = mount_point_of(&cfg.rootfs).map_err(Error::Propagation)?;
        mount(NONE, &parent, NONE, MsFlags::MS_PRIVATE, NONE).map_err(Error::Propagation)?;
    }

    let root = &cfg.rootfs;
    match &cfg.overlay {
        Some(o) => mount_overlay(root, o)?,
        // pivot_root(2) needs new_root to be a mount point.
        None => mount(
            Some(root),
            root,
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            NONE,
        )
        .map_err(|e| Error::BindRoot(root.clone(), e))?,
    }

    // Opened after the overlay is mounted, so it is the overlay's root.
    let root_fd = open_path(None, root, ResolveFlag::empty())
        .map_err(|e| Error::OpenRoot(root.clone(), e))?;
    for m in &cfg.mounts {
        mount_one(root, &root_fd, m, cfg.new_cgroup_ns)?;
    }
    make_devices(root, &cfg.devices)?;
    if cfg.loopback_up {
        sys::loopback_up().map_err(Error::Loopback)?;
    }
    if let Some(h) = &cfg.hostname {
        sethostname(h).map_err(|e| Error::Hostname(h.clone(), e))?;
    }
    if let Some(d) = &cfg.domainname {
        sys::setdomainname(d).map_err(|e| Error::Domainname(d.clone(), e))?;
    }
    // OCI createContainer hooks: in the container's namespaces with its
    // mounts in place, but before pivot_root, so their paths are the
    // runtime's (config.md, "createContainer Hooks").
    crate::hooks::run_all(
        "createContainer",
        &cfg.hooks.create_container,
        &cfg.hooks.create_state,
    )
    .map_err(|e| Error::Hook(Box::new(e)))?;

    enter_root(root, first.contains(MsFlags::MS_SHARED))?;
    // Masks, read-only paths and sysctls below are paths in /proc: they
    // mean something only if /proc is procfs, not whatever an image's
    // symlinks managed to put there (a file, a tmpfs over it).
    let proc_dest = Path::new("/proc");
    if cfg
        .mounts
        .iter()
        .any(|m| m.kind == "proc" && m.destination == proc_dest)
    {
        match nix::sys::statfs::statfs(proc_dest) {
            Ok(st) if st.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC => {}
            _ => return Err(Error::NotProc(proc_dest.to_path_buf())),
        }
    }

    for (k, v) in &cfg.sysctl {
        let p = Path::new("/proc/sys").join(k.replace('.', "/"));
        fs::write(&p, v).map_err(|e| Error::Sysctl(k.clone(), e))?;
    }
    for p in &cfg.masked_paths {
        mask(p)?;
    }
    for p in &cfg.readonly_paths {
        readonly(p, true)?;
    }
    if cfg.rootfs_readonly {
        readonly(Path::new("/"), false)?;
    }
    Ok(())
}

/// The mount point of the mount `path` is on: the longest mount point in
/// /proc/self/mountinfo that is an ancestor of `path`.
fn mount_point_of(path: &Path) -> nix::Result<PathBuf> {
    let table = fs::read_to_string("/proc/self/mountinfo").map_err(io_errno)?;
    table
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(PathBuf::from))
        .filter(|p| path.starts_with(p))
        .max_by_key(|p| p.components().count())
        .ok_or(nix::Error::ENOENT)
}

/// The kernel copies mount(2) data into one page; longer option strings
/// (deep images, long store paths) must go through fsconfig instead.
const MOUNT_DATA_MAX: usize = 4095;

fn mount_overlay(root: &Path, o: &Overlay) -> Result<()> {
    let lower: Vec<String> = o.lower.iter().map(|p| escape_overlay(p)).collect();
    let mut data = format!(
        // Renamed dirs and metadata-only copy-ups would leave the upper dir
        // pointing into lower layers; `commit` needs it self-contained,
        // whatever the host's overlay defaults are.
        "lowerdir={},upperdir={},workdir={},redirect_dir=off,metacopy=off",
        lower.join(":"),
        escape_overlay(&o.upper),
        escape_overlay(&o.work)
    );
    if o.volatile {
        data.push_str(",volatile");
    }
    if data.len() > MOUNT_DATA_MAX {
        return mount_overlay_fsconfig(root, o);
    }
    mount(
        Some("overlay"),
        root,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| Error::Overlay(root.to_path_buf(), e))
}

/// Mounts the overlay with the new mount API, giving each lower dir as its
/// own `lowerdir+` option (Linux 6.8+), so the number of layers is limited
/// only by overlayfs' own stack depth (500), not by one page of options.
fn mount_overlay_fsconfig(root: &Path, o: &Overlay) -> Result<()> {
    use std::ffi::CString;
    use std::os::fd::{FromRawFd, OwnedFd};
    let err = |e: nix::Error| Error::Overlay(root.to_path_buf(), e);
    let cstr = |s: &str| CString::new(s).map_err(|_| err(nix::Error::EINVAL));
    let fstype = cstr("overlay")?;
    // SAFETY: fsopen takes a NUL-terminated fs type name and flags; it
    // returns a new fd or -1, which is checked before use.
    let fd = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), libc::FSOPEN_CLOEXEC) };
    if fd < 0 {
        return Err(err(nix::Error::last()));
    }
    // SAFETY: `fd` was just returned by fsopen and is owned by nobody else.
    let fs = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let set = |cmd: libc::c_uint, key: Option<&str>, value: Option<&Path>| -> Result<()> {
        let key = key.map(cstr).transpose()?;
        let value = value
            .map(|v| {
                CString::new(v.as_os_str().as_encoded_bytes()).map_err(|_| err(nix::Error::EINVAL))
            })
            .transpose()?;
        // SAFETY: `fs` is an open fs context; key and value are
        // NUL-terminated strings or null, as the command requires.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                std::os::fd::AsRawFd::as_raw_fd(&fs),
                cmd,
                key.as_ref().map_or(std::ptr::null(), |k| k.as_ptr()),
                value.as_ref().map_or(std::ptr::null(), |v| v.as_ptr()),
                0,
            )
        };
        if r < 0 {
            return Err(err(nix::Error::last()));
        }
        Ok(())
    };
    for l in &o.lower {
        set(libc::FSCONFIG_SET_STRING, Some("lowerdir+"), Some(l))?;
    }
    set(libc::FSCONFIG_SET_STRING, Some("upperdir"), Some(&o.upper))?;
    set(libc::FSCONFIG_SET_STRING, Some("workdir"), Some(&o.work))?;
    set(
        libc::FSCONFIG_SET_STRING,
        Some("redirect_dir"),
        Some(Path::new("off")),
    )?;
    set(
        libc::FSCONFIG_SET_STRING,
        Some("metacopy"),
        Some(Path::new("off")),
    )?;
    if o.volatile {
        set(libc::FSCONFIG_SET_FLAG, Some("volatile"), None)?;
    }
    set(libc::FSCONFIG_CMD_CREATE, None, None)?;
    // SAFETY: fsmount takes the configured context fd and flags and
    // returns a new mount fd or -1, which is checked.
    let m = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            std::os::fd::AsRawFd::as_raw_fd(&fs),
            libc::FSMOUNT_CLOEXEC,
            0,
        )
    };
    if m < 0 {
        return Err(err(nix::Error::last()));
    }
    // SAFETY: `m` was just returned by fsmount and is owned by nobody else.
    let mnt = unsafe { OwnedFd::from_raw_fd(m as i32) };
    let target =
        CString::new(root.as_os_str().as_encoded_bytes()).map_err(|_| err(nix::Error::EINVAL))?;
    // SAFETY: move_mount attaches the detached mount `mnt` (empty path:
    // the fd itself) at the NUL-terminated `target`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            std::os::fd::AsRawFd::as_raw_fd(&mnt),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(err(nix::Error::last()));
    }
    Ok(())
}

/// Overlay options are split on `,` and lower dirs on `:`; both may be
/// escaped with a backslash.
fn escape_overlay(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Resolves `dest` (a container path) to a host path under `root`,
/// following symlinks as if `root` were `/`, so that no symlink in the
/// image can lead outside it. Missing components are kept as they are.
pub fn resolve_in_root(root: &Path, dest: &Path) -> io::Result<PathBuf> {
    let mut resolved = PathBuf::new();
    let mut pending: Vec<PathBuf> = dest
        .components()
        .rev()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match Path::new(&part).components().next() {
            None | Some(Component::RootDir) | Some(Component::CurDir) => continue,
            Some(Component::ParentDir) => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = resolved.join(&part);
        match fs::symlink_metadata(root.join(&candidate)) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = fs::read_link(root.join(&candidate))?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                for c in target.components().rev() {
                    pending.push(PathBuf::from(c.as_os_str()));
                }
            }
            _ => resolved = candidate,
        }
    }
    Ok(root.join(resolved))
}

fn mount_one(root: &Path, root_fd: &OwnedFd, m: &Mount, cgroup_ns: bool) -> Result<()> {
    let target = resolve_in_root(root, &m.destination)
        .map_err(|e| Error::Resolve(m.destination.clone(), e))?;
    let bad = |why: String| Error::Destination {
        kind: m.kind.clone(),
        dest: m.destination.clone(),
        why,
    };
    // resolve_in_root returns `root` joined with a symlink-free path.
    let rel = target.strip_prefix(root).unwrap_or(Path::new(""));
    if rel.as_os_str().is_empty() {
        // `sys -> ../../..` in an image: a mount over the whole root.
        return Err(bad("it resolves to the container's root".into()));
    }
    if matches!(m.kind.as_str(), "proc" | "sysfs") {
        check_pseudo_fs_dest(root, &m.destination).map_err(bad)?;
    }
    if m.kind == "cgroup" {
        return mount_cgroup(root, root_fd, rel, m, cgroup_ns).map_err(|e| Error::Mount {
            kind: m.kind.clone(),
            target: m.destination.clone(),
            source: e,
        });
    }
    if m.copy_up {
        // Docker's copy-up: a new, empty volume first gets what the image
        // has at its destination, read inside the root (see copyup.rs),
        // before the mount hides it.
        crate::copyup::copy_up(root_fd, rel, &m.destination, &m.source)
            .map_err(|e| Error::CopyUp(m.destination.clone(), e))?;
    }
    let flags = MsFlags::from_bits_truncate(m.flags);
    let bind = flags.contains(MsFlags::MS_BIND);
    let src_is_file = bind
        && fs::metadata(&m.source)
            .map(|md| !md.is_dir())
            .unwrap_or(false);
    let fd =
        open_target(root_fd, rel, src_is_file).map_err(|e| Error::MountPoint(target.clone(), e))?;
    let err = |source| Error::Mount {
        kind: m.kind.clone(),
        target: m.destination.clone(),
        source,
    };
    let data = (!m.data.is_empty()).then_some(m.data.as_str());
    // A bind mount ignores most flags on creation; they take effect on a
    // remount of the new mount (mount(2), "Creating a bind mount").
    let first = if bind {
        flags & (MsFlags::MS_BIND | MsFlags::MS_REC)
    } else {
        flags
    };
    // Mounting on /proc/self/fd/N mounts on exactly what the fd refers to,
    // wherever a path to it would lead by now.
    let on = fd_path(&fd);
    mount(Some(&m.source), &on, Some(m.kind.as_str()), first, data).map_err(err)?;
    let extra = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let remount = bind && flags.intersects(extra);
    if !remount && m.propagation == 0 {
        return Ok(());
    }
    // `fd` still names the directory under the new mount; opened again, the
    // path crosses into the mount, which is what a remount must name.
    let fd = open_path(Some(root_fd), rel, ResolveFlag::RESOLVE_IN_ROOT).map_err(err)?;
    let on = fd_path(&fd);
    if remount {
        let re = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | (flags & extra);
        mount(NONE, &on, NONE, re, NONE).map_err(err)?;
    }
    if m.propagation != 0 {
        mount(
            NONE,
            &on,
            NONE,
            MsFlags::from_bits_truncate(m.propagation),
            NONE,
        )
        .map_err(err)?;
    }
    Ok(())
}

/// The cgroup filesystem at `m.destination`, as the host lays it out: a
/// cgroup2 mount on a unified host; on a v1 or hybrid host a tmpfs holding
/// one mount per v1 hierarchy (and `unified` for a hybrid host's cgroup2),
/// named as on the host. Mounted after init entered its cgroup namespace,
/// each shows the container's own cgroup as its root (cgroup_namespaces(7)).
/// Without a cgroup namespace a new mount would show the host's whole
/// tree, so the container's own cgroup dirs are bound instead.
fn mount_cgroup(
    root: &Path,
    root_fd: &OwnedFd,
    rel: &Path,
    m: &Mount,
    cgroup_ns: bool,
) -> nix::Result<()> {
    let flags = MsFlags::from_bits_truncate(m.flags)
        & (MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    let fd = open_target(root_fd, rel, false).map_err(io_errno)?;
    let on = fd_path(&fd);
    let host = Path::new("/sys/fs/cgroup");
    if host.join("cgroup.controllers").exists() {
        let made = if cgroup_ns {
            mount(Some("cgroup2"), &on, Some("cgroup2"), flags, NONE)
        } else {
            Err(nix::Error::EPERM)
        };
        if made != Err(nix::Error::EPERM) {
            return made;
        }
        // Bound through the fd, remounted (for its flags) through the
        // mount now there: the fd still names the dir under it.
        bind_own_cgroup(host, "", &on, MsFlags::empty())?;
        let fd = open_path(Some(root_fd), rel, ResolveFlag::RESOLVE_IN_ROOT)?;
        if !flags.is_empty() {
            let re = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags;
            mount(NONE, &fd_path(&fd), NONE, re, NONE)?;
        }
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        &on,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )?;
    let dir = resolve_in_root(root, &m.destination).map_err(io_errno)?;
    // The host's hierarchies, from its mount table (still visible here,
    // before pivot_root): fs type cgroup (v1, with its controllers as
    // options) or cgroup2 (a hybrid host's unified tree).
    let table = fs::read_to_string("/proc/self/mountinfo").map_err(io_errno)?;
    for line in table.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split_whitespace();
        let (Some(fstype), Some(_src), Some(opts)) = (post.next(), post.next(), post.next()) else {
            continue;
        };
        let Some(point) = pre.split_whitespace().nth(4).map(Path::new) else {
            continue;
        };
        let Some(name) = point
            .strip_prefix(host)
            .ok()
            .filter(|n| n.components().count() == 1)
        else {
            continue;
        };
        let target = dir.join(name);
        fs::create_dir_all(&target).map_err(io_errno)?;
        match fstype {
            "cgroup" => {
                let data: Vec<&str> = opts
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro"))
                    .collect();
                let made = if cgroup_ns {
                    mount(
                        Some("cgroup"),
                        &target,
                        Some("cgroup"),
                        flags,
                        Some(data.join(",").as_str()),
                    )
                } else {
                    Err(nix::Error::EPERM)
                };
                match made {
                    Err(nix::Error::EPERM) => {
                        bind_own_cgroup(point, &name.to_string_lossy(), &target, flags)?
                    }
                    r => r?,
                }
                // Co-mounted controllers are also reachable by each name
                // (`cpu -> cpu,cpuacct`), as on the host.
                let n = name.to_string_lossy();
                for part in n.split(',').filter(|_| n.contains(',')) {
                    let link = dir.join(part);
                    if fs::symlink_metadata(&link).is_err() {
                        symlink(name, &link).map_err(io_errno)?;
                    }
                }
            }
            "cgroup2" => {
                let made = if cgroup_ns {
                    mount(Some("cgroup2"), &target, Some("cgroup2"), flags, NONE)
                } else {
                    Err(nix::Error::EPERM)
                };
                match made {
                    Err(nix::Error::EPERM) => bind_own_cgroup(point, "", &target, flags)?,
                    r => r?,
                }
            }
            _ => {}
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let re = MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC;
        mount(NONE, &dir, NONE, re, NONE)?;
    }
    Ok(())
}

/// Where a new cgroup filesystem cannot be mounted (a user namespace
/// without its own cgroup namespace), binds the container's own cgroup
/// dir of the hierarchy mounted at `point` instead: `controllers` as
/// /proc/self/cgroup names them ("" for cgroup2).
fn bind_own_cgroup(
    point: &Path,
    controllers: &str,
    target: &Path,
    flags: MsFlags,
) -> nix::Result<()> {
    let own = fs::read_to_string("/proc/self/cgroup").map_err(io_errno)?;
    let path = own
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, c, p) = (f.next()?, f.next()?, f.next()?);
            let c = c.strip_prefix("name=").unwrap_or(c);
            let want = controllers.strip_prefix("name=").unwrap_or(controllers);
            (c == want || (!want.is_empty() && c.split(',').eq(want.split(',')))).then_some(p)
        })
        .next()
        .ok_or(nix::Error::ENOENT)?;
    let src = point.join(path.trim_start_matches('/'));
    mount(
        Some(&src),
        target,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )?;
    if !flags.is_empty() {
        let re = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags;
        mount(NONE, target, NONE, re, NONE)?;
    }
    Ok(())
}

fn io_errno(e: io::Error) -> nix::Error {
    nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// procfs and sysfs go only onto a directory that is one in the image, not
/// onto a symlink (even one resolving inside the container) nor a file, as
/// runc refuses too: in CVE-2019-16884 an image's `/proc` symlink sent the
/// runtime's writes to /proc files somewhere the image controlled.
fn check_pseudo_fs_dest(root: &Path, dest: &Path) -> std::result::Result<(), String> {
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Ok(());
    };
    let parent = resolve_in_root(root, parent).map_err(|e| e.to_string())?;
    let last = parent.join(name);
    match fs::symlink_metadata(&last) {
        Ok(md) if md.file_type().is_symlink() => {
            let to = fs::read_link(&last).unwrap_or_default();
            Err(format!(
                "it is a symlink (to {}) in the image",
                to.display()
            ))
        }
        Ok(md) if !md.is_dir() => Err("it is not a directory in the image".into()),
        _ => Ok(()),
    }
}

/// `path` opened as an O_PATH fd with openat2(2), relative to `dir` (the
/// cwd if `None`), never through a magic link, with `resolve` on top.
fn open_path(dir: Option<&OwnedFd>, path: &Path, resolve: ResolveFlag) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(resolve | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let fd = openat2(dirfd, path, how)?;
    // SAFETY: openat2 just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `/proc/self/fd/N` for `fd`: the host's /proc, which init still sees
/// before pivot_root.
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Opens the mount target `rel` (relative to the root, as resolve_in_root
/// left it) as an O_PATH fd, creating what is missing on the way: dirs, and
/// for `file` an empty file last. Every step resolves with
/// RESOLVE_IN_ROOT against the root's fd, so a symlink swapped in after
/// resolve_in_root still leads somewhere inside the container.
fn open_target(root_fd: &OwnedFd, rel: &Path, file: bool) -> io::Result<OwnedFd> {
    let in_root = ResolveFlag::RESOLVE_IN_ROOT;
    match open_path(Some(root_fd), rel, in_root) {
        Ok(fd) => return Ok(fd),
        Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    let names: Vec<&std::ffi::OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let mut prefix = PathBuf::new();
    for (i, name) in names.iter().enumerate() {
        let parent = if prefix.as_os_str().is_empty() {
            root_fd.try_clone()?
        } else {
            open_path(Some(root_fd), &prefix, in_root)?
        };
        prefix.push(name);
        let made = if file && i + 1 == names.len() {
            nix::fcntl::openat(
                Some(parent.as_raw_fd()),
                *name,
                OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )
            // SAFETY: openat just returned this fd; dropping it closes it.
            .map(|fd| drop(unsafe { OwnedFd::from_raw_fd(fd) }))
        } else {
            nix::sys::stat::mkdirat(
                Some(parent.as_raw_fd()),
                *name,
                Mode::from_bits_truncate(0o755),
            )
        };
        match made {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(open_path(Some(root_fd), rel, in_root)?)
}

fn make_devices(root: &Path, devices: &[Device]) -> Result<()> {
    // Where /dev is inside the root: an image's `dev -> /somewhere` must
    // not have these links made in the host's /somewhere.
    let dev = resolve_in_root(root, Path::new("/dev"))
        .map_err(|e| Error::Resolve(PathBuf::from("/dev"), e))?;
    // mknod(2) applies the umask: without this /dev/null would be 0644 and
    // useless to any user but root. Restored below.
    let old_umask = nix::sys::stat::umask(Mode::empty());
    let made = devices.iter().try_for_each(|d| make_device(root, d));
    nix::sys::stat::umask(old_umask);
    made?;
    // The links every program expects in /dev; the pts instance mounted by
    // the spec provides ptmx.
    for (name, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ] {
        let p = dev.join(name);
        if fs::symlink_metadata(&p).is_err() {
            symlink(target, &p).map_err(|e| Error::Create(p.clone(), e))?;
        }
    }
    Ok(())
}

/// One node, at its path resolved inside `root`; a missing parent
/// (`/dev/net` for `--device /dev/net/tun`) is created as runc does.
fn make_device(root: &Path, d: &Device) -> Result<()> {
    let path = resolve_in_root(root, &d.path).map_err(|e| Error::Resolve(d.path.clone(), e))?;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::Create(parent.to_path_buf(), e))?;
    }
    let kind = match d.kind {
        'b' => SFlag::S_IFBLK,
        'p' => SFlag::S_IFIFO,
        _ => SFlag::S_IFCHR,
    };
    let _ = fs::remove_file(&path);
    match mknod(
        &path,
        kind,
        Mode::from_bits_truncate(d.mode),
        makedev(d.major, d.minor),
    ) {
        Ok(()) => {}
        // In a user namespace mknod(2) is refused: bind the host's node of
        // the same path instead, if it is that very device (runc does the
        // same). Ownership then stays the host's.
        Err(nix::Error::EPERM) if host_has_device(d) => {
            fs::write(&path, b"").map_err(|e| Error::Create(path.clone(), e))?;
            return mount(Some(&d.path), &path, NONE, MsFlags::MS_BIND, NONE)
                .map_err(|e| Error::Device(path.clone(), e));
        }
        Err(e) => return Err(Error::Device(path.clone(), e)),
    }
    chown(
        &path,
        Some(Uid::from_raw(d.uid)),
        Some(Gid::from_raw(d.gid)),
    )
    .map_err(|e| Error::Device(path.clone(), e))
}

/// Whether the host has a node at `d.path` that is the device `d` names.
fn host_has_device(d: &Device) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    fs::metadata(&d.path).is_ok_and(|m| {
        let ft = m.file_type();
        let kind_ok = match d.kind {
            'b' => ft.is_block_device(),
            'p' => ft.is_fifo(),
            _ => ft.is_char_device(),
        };
        kind_ok && (d.kind == 'p' || m.rdev() == makedev(d.major, d.minor))
    })
}

/// Makes `root` the new `/` and drops every reference to the host's tree.
/// `shared`: the mounts were made shared (rootfsPropagation), so the old
/// root is still a peer of the host's mounts.
fn enter_root(root: &Path, shared: bool) -> Result<()> {
    let err = |e| Error::PivotRoot(root.to_path_buf(), e);
    // The old root, to come back to after the pivot: "." then names the
    // old root's mount, not the new root under it.
    let old = fs::File::open("/").map_err(|e| err(io_errno(e)))?;
    chdir(root).map_err(err)?;
    // pivot_root(".", ".") stacks the old root on top of the new one at the
    // same place; unmounting it then removes the old root without needing
    // a directory for it inside the image (pivot_root(2), NOTES). Unlike
    // chroot, nothing of the host stays reachable through "..".
    pivot_root(".", ".").map_err(err)?;
    nix::unistd::fchdir(old.as_raw_fd()).map_err(err)?;
    // A shared old root is a peer of the host's mounts: as a slave, its
    // unmount below does not propagate and take the host's mounts with
    // it. Private or slave (every other propagation) it is not a peer.
    if shared {
        mount(NONE, ".", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE).map_err(err)?;
    }
    umount2(".", MntFlags::MNT_DETACH).map_err(Error::DetachOldRoot)?;
    drop(old);
    chdir("/").map_err(err)?;
    Ok(())
}

/// Hides `p`: a read-only empty tmpfs over a dir, /dev/null over a file.
fn mask(p: &Path) -> Result<()> {
    let md = match fs::metadata(p) {
        Ok(md) => md,
        Err(_) => return Ok(()),
    };
    let r = if md.is_dir() {
        mount(Some("tmpfs"), p, Some("tmpfs"), MsFlags::MS_RDONLY, NONE)
    } else {
        mount(Some("/dev/null"), p, NONE, MsFlags::MS_BIND, NONE)
    };
    r.map_err(|e| Error::Mask(p.to_path_buf(), e))
}

/// Remounts `p` read-only; `bind` first makes it a mount of its own.
fn readonly(p: &Path, bind: bool) -> Result<()> {
    if fs::symlink_metadata(p).is_err() {
        return Ok(());
    }
    let err = |e| Error::ReadOnly(p.to_path_buf(), e);
    if bind {
        mount(Some(p), p, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE).map_err(err)?;
    }
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    mount(NONE, p, NONE, flags, NONE).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_stays_under_root() {
        let d = std::env::temp_dir().join(format!("hind-resolve-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("real")).unwrap();
        symlink("/real", d.join("abs")).unwrap();
        symlink("/loop", d.join("loop")).unwrap();
        symlink("../../../../real", d.join("up")).unwrap();
        assert_eq!(
            resolve_in_root(&d, Path::new("/abs/x")).unwrap(),
            d.join("real/x")
        );
        assert!(resolve_in_root(&d, Path::new("/loop/x")).is_err());
        assert_eq!(
            resolve_in_root(&d, Path::new("/up/y")).unwrap(),
            d.join("real/y")
        );
        assert_eq!(
            resolve_in_root(&d, Path::new("../../a")).unwrap(),
            d.join("a")
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn overlay_escapes() {
        assert_eq!(escape_overlay(Path::new("/a:b,c")), "/a\\:b\\,c");
    }
}
