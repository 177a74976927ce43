//! Disk quotas on a container's writable layer (`--storage-opt size=10m`).
//!
//! Everything a container writes lands in its overlay upper dir, or first
//! in its work dir when overlayfs copies a file up, both on the state
//! root's filesystem. Linux has no quota per directory tree, but xfs and
//! ext4 have *project quotas*: every inode carries a project id
//! (FS_IOC_FSGETXATTR / FS_IOC_FSSETXATTR, ioctl_xfs_fsgetxattr(2)), a
//! directory with FS_XFLAG_PROJINHERIT hands its id to everything made
//! below it, and quotactl(2) sets block limits per project id. So a
//! container with a size gets a project id of its own on its (still empty)
//! upper and work dirs and a hard limit (soft = hard) for that id; a write
//! past it fails inside the container while the rest of the filesystem is
//! untouched. xfs reports ENOSPC for project quotas, as Docker users on
//! xfs know it; ext4 reports EDQUOT ("Disk quota exceeded").
//!
//! The work dir needs the id too: both filesystems refuse (EXDEV) a rename
//! into a PROJINHERIT dir from another project, and overlayfs copies up by
//! making the file in `work/` and renaming it into `upper/`.
//!
//! Project ids are allocated per state root under `<root>/quota/`: one
//! claim file per id, named by the id and holding the container's id, made
//! with O_EXCL under the flock `quota/lock`. Ids the filesystem already
//! charges (usage or limits: another tool's, another state root's) are
//! skipped. A claim is released only once the container's dir is gone: the
//! limit is cleared and the claim removed, so nothing of the id is left.
//! Claims whose container dir is gone (a crash in between) are swept by the
//! next allocation.
//!
//! The kernel calls go through quotactl_fd(2) (Linux 5.14) on an fd of the
//! containers dir rather than quotactl(2) on the block device: the device
//! node need not exist in this mount namespace (loop and device-mapper
//! nodes often do not), and an fd cannot name the wrong filesystem.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::Flock;
use nix::sys::statfs::fstatfs;
use protocol::paths::Layout;

use crate::units;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--storage-opt size: the state root {root} is on {fs}, {missing}")]
    Unsupported {
        root: PathBuf,
        fs: String,
        missing: String,
    },
    #[error("open {0}")]
    Open(PathBuf, #[source] io::Error),
    #[error("read the quota state of the filesystem of {0}")]
    QuotaState(PathBuf, #[source] io::Error),
    #[error(transparent)]
    Lock(#[from] protocol::lockfile::Error),
    #[error("read {0}")]
    Read(PathBuf, #[source] io::Error),
    #[error("no free project id left in {0}")]
    Exhausted(PathBuf),
    #[error("read the project id of {0}")]
    GetProject(PathBuf, #[source] nix::Error),
    #[error("set project id {1} on {0}")]
    SetProject(PathBuf, u32, #[source] nix::Error),
    #[error("read the quota of project {1} on the filesystem of {0}")]
    GetQuota(PathBuf, u32, #[source] io::Error),
    #[error("set a limit of {bytes} bytes for project {project} on the filesystem of {path}")]
    SetLimit {
        path: PathBuf,
        project: u32,
        bytes: u64,
        #[source]
        source: io::Error,
    },
    #[error("clear the limit of project {1} on the filesystem of {0}")]
    ClearLimit(PathBuf, u32, #[source] io::Error),
    #[error("remove {0}")]
    Remove(PathBuf, #[source] io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// `--storage-opt size=SIZE`: the size as given (for inspect) and in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeLimit {
    pub size: String,
    pub bytes: u64,
}

/// Parses one `--storage-opt` (Docker's syntax; `size` is the only key).
pub fn parse_storage_opt(s: &str) -> std::result::Result<SizeLimit, String> {
    match s.split_once('=') {
        Some((k, v)) if k.trim().eq_ignore_ascii_case("size") => {
            let n = units::parse_size(v)?;
            if n <= 0 {
                return Err(format!("invalid size {v:?}: must be above 0"));
            }
            Ok(SizeLimit {
                size: v.trim().to_string(),
                bytes: n as u64,
            })
        }
        Some((k, _)) => Err(format!(
            "unknown storage option {k:?} (supported: size=SIZE)"
        )),
        None => Err(format!("invalid storage option {s:?}: use size=SIZE")),
    }
}

/// Project ids hind hands out start here, above the small ids admins
/// assign by hand in /etc/projid.
const FIRST_ID: u32 = 100_000;

/// The kernel interface, from linux/quota.h, linux/dqblk_xfs.h and
/// linux/fs.h; libc has the generic quota commands but not these.
mod sys {
    use super::*;

    pub const PRJQUOTA: u32 = 2;
    /// `XQM_CMD(8)`: the quota state as `struct fs_quota_statv`.
    pub const Q_XGETQSTATV: u32 = ((b'X' as u32) << 8) | 8;
    pub const FS_QSTATV_VERSION1: i8 = 1;
    pub const FS_QUOTA_PDQ_ACCT: u16 = 1 << 4;
    pub const FS_QUOTA_PDQ_ENFD: u16 = 1 << 5;
    /// `QIF_BLIMITS | QIF_ILIMITS`.
    pub const QIF_LIMITS: u32 = 1 | 4;
    /// `struct if_dqblk` counts block limits in units of this.
    pub const QIF_DQBLKSIZE: u64 = 1024;
    pub const FS_XFLAG_PROJINHERIT: u32 = 0x0000_0200;

    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    pub struct FsQfilestatv {
        pub ino: u64,
        pub nblks: u64,
        pub nextents: u32,
        pub pad: u32,
    }

    /// `struct fs_quota_statv`.
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    pub struct FsQuotaStatv {
        pub version: i8,
        pub pad1: u8,
        pub flags: u16,
        pub incoredqs: u32,
        pub uquota: FsQfilestatv,
        pub gquota: FsQfilestatv,
        pub pquota: FsQfilestatv,
        pub btimelimit: i32,
        pub itimelimit: i32,
        pub rtbtimelimit: i32,
        pub bwarnlimit: u16,
        pub iwarnlimit: u16,
        pub rtbwarnlimit: u16,
        pub pad3: u16,
        pub pad4: u32,
        pub pad2: [u64; 7],
    }
    const _: () = assert!(std::mem::size_of::<FsQuotaStatv>() == 160);

    /// `struct fsxattr`.
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    pub struct FsXattr {
        pub xflags: u32,
        pub extsize: u32,
        pub nextents: u32,
        pub projid: u32,
        pub cowextsize: u32,
        pub pad: [u8; 8],
    }
    const _: () = assert!(std::mem::size_of::<FsXattr>() == 28);

    nix::ioctl_read!(fs_ioc_fsgetxattr, b'X', 31, FsXattr);
    nix::ioctl_write_ptr!(fs_ioc_fssetxattr, b'X', 32, FsXattr);

    /// `QCMD(cmd, PRJQUOTA)`.
    fn qcmd(cmd: u32) -> u32 {
        (cmd << 8) | (PRJQUOTA & 0xff)
    }

    /// quotactl_fd(2) for project quotas: nix has no wrapper for it, and
    /// its quotactl knows only user and group quotas.
    ///
    /// # Safety
    /// `addr` must point to memory of the type `cmd` reads or writes.
    pub unsafe fn quotactl_fd(
        fd: BorrowedFd,
        cmd: u32,
        id: u32,
        addr: *mut c_void,
    ) -> io::Result<()> {
        // SAFETY: the fd is open (borrowed); the caller vouches for `addr`.
        let r = unsafe {
            libc::syscall(
                libc::SYS_quotactl_fd,
                fd.as_raw_fd() as libc::c_uint,
                qcmd(cmd) as libc::c_uint,
                id as libc::c_uint,
                addr,
            )
        };
        if r == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// The filesystem's project quota flags (FS_QUOTA_PDQ_*).
    pub fn project_flags(fd: BorrowedFd) -> io::Result<u16> {
        let mut st = FsQuotaStatv {
            version: FS_QSTATV_VERSION1,
            ..Default::default()
        };
        // SAFETY: Q_XGETQSTATV fills a struct fs_quota_statv, which `st`
        // is (size checked above), with the version field set as it asks.
        unsafe { quotactl_fd(fd, Q_XGETQSTATV, 0, (&mut st as *mut FsQuotaStatv).cast()) }?;
        Ok(st.flags)
    }

    /// Q_GETQUOTA for project `id`; `None` when the filesystem has no
    /// quota record for it (xfs answers ENOENT).
    pub fn get_quota(fd: BorrowedFd, id: u32) -> io::Result<Option<libc::dqblk>> {
        // SAFETY: dqblk is plain integers; all zeroes is a valid value.
        let mut d: libc::dqblk = unsafe { std::mem::zeroed() };
        // SAFETY: Q_GETQUOTA writes a struct if_dqblk, which libc's dqblk is.
        match unsafe {
            quotactl_fd(
                fd,
                libc::Q_GETQUOTA as u32,
                id,
                (&mut d as *mut libc::dqblk).cast(),
            )
        } {
            Ok(()) => Ok(Some(d)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Q_SETQUOTA for project `id`: block hard and soft limits of `blocks`
    /// KiB and no inode limits (0 everywhere clears the limits).
    ///
    /// The generic Q_SETQUOTA rather than xfs's Q_XSETQLIM: both end in the
    /// filesystem's ->set_dqblk (xfs_fs_set_dqblk, dquot_set_dqblk for
    /// ext4), so one call with one struct serves both filesystems, with
    /// limits in KiB rather than xfs's 512-byte blocks. Tested on xfs and
    /// ext4 under Linux 6.1, in the scripts/test-cgroup2 guest: this
    /// project's 6.18 build host has no xfs quotas at all.
    pub fn set_limit(fd: BorrowedFd, id: u32, blocks: u64) -> io::Result<()> {
        // SAFETY: dqblk is plain integers; all zeroes is a valid value.
        let mut d: libc::dqblk = unsafe { std::mem::zeroed() };
        d.dqb_bhardlimit = blocks;
        d.dqb_bsoftlimit = blocks;
        d.dqb_valid = QIF_LIMITS;
        // SAFETY: Q_SETQUOTA reads a struct if_dqblk, which libc's dqblk is.
        unsafe {
            quotactl_fd(
                fd,
                libc::Q_SETQUOTA as u32,
                id,
                (&mut d as *mut libc::dqblk).cast(),
            )
        }
    }
}

fn open_dir(p: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(p)
        .map_err(|e| Error::Open(p.to_path_buf(), e))
}

/// `p` or its nearest ancestor that exists: what `check` can ask about
/// before the state root is made.
fn existing(p: &Path) -> &Path {
    p.ancestors().find(|a| a.exists()).unwrap_or(Path::new("/"))
}

/// Undoes the kernel's octal escapes (`\040`) in a mountinfo field.
fn unescape(field: &str) -> String {
    let mut out = Vec::with_capacity(field.len());
    let b = field.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount holding `path` in `mountinfo` (proc_pid_mountinfo(5)): its
/// filesystem type, source and mount point; the last of the longest
/// matching mount points, as the kernel stacks mounts.
fn mount_of(mountinfo: &str, path: &Path) -> Option<(String, String, PathBuf)> {
    let mut best: Option<(String, String, PathBuf)> = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(point) = left.split(' ').nth(4).map(|m| PathBuf::from(unescape(m))) else {
            continue;
        };
        let mut r = right.split(' ');
        let (Some(fstype), Some(source)) = (r.next(), r.next()) else {
            continue;
        };
        let better = best
            .as_ref()
            .is_none_or(|b| point.as_os_str().len() >= b.2.as_os_str().len());
        if path.starts_with(&point) && better {
            best = Some((fstype.to_string(), unescape(source), point));
        }
    }
    best
}

/// What to tell the user about the filesystem of `dir`: its type, and
/// where it comes from.
fn describe_fs(dir: &Path, fd: BorrowedFd) -> (String, String) {
    let canon = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    match mount_of(&info, &canon) {
        Some((fstype, source, point)) => (
            fstype.clone(),
            format!("{fstype} ({source} mounted at {})", point.display()),
        ),
        None => {
            let magic = fstatfs(fd).map(|s| s.filesystem_type().0).unwrap_or(0);
            let name = match magic {
                libc::XFS_SUPER_MAGIC => "xfs".to_string(),
                libc::EXT4_SUPER_MAGIC => "ext4".to_string(),
                libc::TMPFS_MAGIC => "tmpfs".to_string(),
                m => format!("a filesystem of type {m:#x}"),
            };
            (name.clone(), name)
        }
    }
}

const HOW: &str = "put the state root on xfs mounted with prjquota, or on ext4 made with \
                   -O quota,project and mounted with prjquota";

/// The one line saying what the filesystem lacks, from its project quota
/// flags or the error asking for them.
fn missing(fstype: &str, state: io::Result<u16>) -> String {
    let enosys = matches!(&state, Err(e) if e.raw_os_error() == Some(libc::ENOSYS));
    match (fstype, state) {
        (_, Ok(f)) if f & sys::FS_QUOTA_PDQ_ACCT != 0 => {
            "which counts project quotas but does not enforce them: mount it with prjquota"
                .to_string()
        }
        // Without CONFIG_XFS_QUOTA xfs has no quota operations at all
        // (ENOSYS); ext4 answers ENOSYS to Q_XGETQSTATV without its quota
        // feature, which says nothing about the kernel.
        ("xfs", _) if enosys => "which has no project quotas: this kernel's xfs is built \
                                 without quota support (CONFIG_XFS_QUOTA)"
            .to_string(),
        ("xfs", _) => {
            "which is mounted without project quotas: mount it with -o prjquota".to_string()
        }
        ("ext4", _) => "which has no project quotas: it needs the quota and project features \
                        (mkfs.ext4 -O quota,project, or tune2fs) and the prjquota mount option"
            .to_string(),
        (_, _) => format!("which has no project quotas: {HOW}"),
    }
}

/// Checks, before anything of the container is made, that the filesystem
/// its upper dir will be on enforces project quotas; if not, the error
/// names the filesystem and what it lacks.
pub fn check(layout: &Layout) -> Result<()> {
    let containers = layout.containers();
    let dir = existing(&containers);
    let f = open_dir(dir)?;
    let state = sys::project_flags(f.as_fd());
    let enforced = sys::FS_QUOTA_PDQ_ACCT | sys::FS_QUOTA_PDQ_ENFD;
    match state {
        Ok(flags) if flags & enforced == enforced => return Ok(()),
        // No quota operations (ENOSYS), quotas off (ESRCH), or a command
        // the filesystem does not know: all mean no project quotas here.
        Err(e)
            if !matches!(
                e.raw_os_error(),
                Some(libc::ENOSYS | libc::ESRCH | libc::EINVAL | libc::EOPNOTSUPP)
            ) =>
        {
            return Err(Error::QuotaState(dir.to_path_buf(), e));
        }
        _ => {}
    }
    let (fstype, fs) = describe_fs(dir, f.as_fd());
    Err(Error::Unsupported {
        root: layout.root.clone(),
        fs,
        missing: missing(&fstype, state),
    })
}

/// The claims under `<root>/quota`, locked while this lives.
struct Claims {
    dir: PathBuf,
    _lock: Flock<File>,
}

impl Claims {
    fn lock(layout: &Layout) -> Result<Claims> {
        let dir = layout.root.join("quota");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::Open(dir.clone(), e))?;
        let lock = protocol::lockfile::exclusive(&dir.join("lock"))?;
        Ok(Claims { dir, _lock: lock })
    }

    /// Project id -> the container id claiming it.
    fn read(&self) -> Result<BTreeMap<u32, String>> {
        let mut out = BTreeMap::new();
        let rd = fs::read_dir(&self.dir).map_err(|e| Error::Read(self.dir.clone(), e))?;
        for e in rd.flatten() {
            let Some(project) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let owner = fs::read_to_string(e.path()).unwrap_or_default();
            out.insert(project, owner.trim().to_string());
        }
        Ok(out)
    }

    fn path(&self, project: u32) -> PathBuf {
        self.dir.join(project.to_string())
    }

    fn claim(&self, project: u32, id: &str) -> Result<bool> {
        Ok(protocol::lockfile::claim(
            &self.path(project),
            id.as_bytes(),
        )?)
    }

    fn unclaim(&self, project: u32) -> Result<()> {
        let p = self.path(project);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Remove(p, e)),
        }
    }
}

/// Whether the filesystem already charges something to `project`.
fn in_use(fd: BorrowedFd, dir: &Path, project: u32) -> Result<bool> {
    let d =
        sys::get_quota(fd, project).map_err(|e| Error::GetQuota(dir.to_path_buf(), project, e))?;
    Ok(d.is_some_and(|d| {
        d.dqb_curspace > 0
            || d.dqb_curinodes > 0
            || d.dqb_bhardlimit > 0
            || d.dqb_bsoftlimit > 0
            || d.dqb_ihardlimit > 0
            || d.dqb_isoftlimit > 0
    }))
}

/// Gives `dir` (empty) project id `project`, inherited by what is made in it.
fn set_project(dir: &Path, project: u32) -> Result<()> {
    let f = open_dir(dir)?;
    let mut x = sys::FsXattr::default();
    // SAFETY: `f` is an open directory; FS_IOC_FSGETXATTR fills a struct
    // fsxattr, which `x` is (size checked).
    unsafe { sys::fs_ioc_fsgetxattr(f.as_raw_fd(), &mut x) }
        .map_err(|e| Error::GetProject(dir.to_path_buf(), e))?;
    x.projid = project;
    x.xflags |= sys::FS_XFLAG_PROJINHERIT;
    // SAFETY: as above; FS_IOC_FSSETXATTR only reads `x`.
    unsafe { sys::fs_ioc_fssetxattr(f.as_raw_fd(), &x) }
        .map_err(|e| Error::SetProject(dir.to_path_buf(), project, e))?;
    Ok(())
}

/// Clears `project`'s limits; with its files gone the filesystem keeps
/// nothing of it (xfs then answers ENOENT for it).
fn clear_limit(fd: BorrowedFd, dir: &Path, project: u32) -> Result<()> {
    sys::set_limit(fd, project, 0).map_err(|e| Error::ClearLimit(dir.to_path_buf(), project, e))
}

/// Gives container `id` a project id of its own on `dirs` (its upper and
/// work dirs, still empty) and a limit of `limit` for it, and returns the
/// id. On failure nothing of the id is left (the caller removes the dirs).
pub fn apply(layout: &Layout, id: &str, dirs: &[PathBuf], limit: &SizeLimit) -> Result<u32> {
    let claims = Claims::lock(layout)?;
    let containers = layout.containers();
    let fsdir = open_dir(&containers)?;
    let fd = fsdir.as_fd();
    let mut claimed = claims.read()?;
    // Claims of containers whose dir is gone: a crash between the removal
    // and the release.
    let stale: Vec<u32> = claimed
        .iter()
        .filter(|(_, owner)| owner.is_empty() || !layout.container(owner).exists())
        .map(|(p, _)| *p)
        .collect();
    for p in stale {
        if clear_limit(fd, &containers, p).is_ok() && claims.unclaim(p).is_ok() {
            log::info!("released project id {p} of a removed container");
            claimed.remove(&p);
        }
    }
    let mut project = FIRST_ID;
    loop {
        if !claimed.contains_key(&project)
            && !in_use(fd, &containers, project)?
            && claims.claim(project, id)?
        {
            break;
        }
        project = project
            .checked_add(1)
            .ok_or_else(|| Error::Exhausted(claims.dir.clone()))?;
    }
    let blocks = limit.bytes.div_ceil(sys::QIF_DQBLKSIZE);
    let set = dirs
        .iter()
        .try_for_each(|d| set_project(d, project))
        .and_then(|()| {
            sys::set_limit(fd, project, blocks).map_err(|e| Error::SetLimit {
                path: containers.clone(),
                project,
                bytes: limit.bytes,
                source: e,
            })
        });
    if let Err(e) = set {
        let _ = clear_limit(fd, &containers, project);
        let _ = claims.unclaim(project);
        return Err(e);
    }
    log::debug!(
        "container {id}: project id {project}, limit {} bytes",
        limit.bytes
    );
    Ok(project)
}

/// Gives back container `id`'s project id once its dir is gone: clears the
/// limit and removes the claim. While the dir exists (its removal failed)
/// the claim stays, and the next allocation after the dir goes sweeps it.
pub fn release(layout: &Layout, id: &str, project: u32) -> Result<()> {
    if layout.container(id).exists() || !layout.root.join("quota").exists() {
        return Ok(());
    }
    let claims = Claims::lock(layout)?;
    if claims.read()?.get(&project).map(String::as_str) != Some(id) {
        return Ok(());
    }
    let containers = layout.containers();
    let dir = existing(&containers);
    let f = open_dir(dir)?;
    clear_limit(f.as_fd(), dir, project)?;
    claims.unclaim(project)
}

/// `hind quota-release ID PROJECT`: what the shim of an `--rm` container
/// runs after removing its files.
pub fn release_cmd(layout: &Layout, a: crate::cli::QuotaReleaseArgs) -> anyhow::Result<i32> {
    release(layout, &a.id, a.project)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_opts() {
        let l = parse_storage_opt("size=10m").unwrap();
        assert_eq!(l.bytes, 10 << 20);
        assert_eq!(l.size, "10m");
        assert_eq!(parse_storage_opt("size=1G").unwrap().bytes, 1 << 30);
        let e = parse_storage_opt("size=abc").unwrap_err();
        assert!(e.contains("\"abc\""), "{e}");
        let e = parse_storage_opt("size=0").unwrap_err();
        assert!(e.contains("\"0\""), "{e}");
        let e = parse_storage_opt("foo=1").unwrap_err();
        assert!(e.contains("\"foo\""), "{e}");
        let e = parse_storage_opt("size").unwrap_err();
        assert!(e.contains("\"size\""), "{e}");
    }

    const INFO: &str = "\
22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
90 22 7:3 / /tmp/q\\040x/mnt rw,relatime - xfs /dev/loop3 rw,prjquota
91 22 0:50 / /tmp/q rw - tmpfs tmpfs rw
";

    #[test]
    fn mount_of_picks_longest_mount_point() {
        let (t, s, p) = mount_of(INFO, Path::new("/tmp/q x/mnt/root/containers")).unwrap();
        assert_eq!((t.as_str(), s.as_str()), ("xfs", "/dev/loop3"));
        assert_eq!(p, PathBuf::from("/tmp/q x/mnt"));
        let (t, ..) = mount_of(INFO, Path::new("/tmp/q/r")).unwrap();
        assert_eq!(t, "tmpfs");
        let (t, ..) = mount_of(INFO, Path::new("/tmp/qr")).unwrap();
        assert_eq!(t, "ext4");
    }

    #[test]
    fn missing_names_the_fix() {
        let nosys = || Err(io::Error::from_raw_os_error(libc::ENOSYS));
        assert!(missing("xfs", Ok(0)).contains("prjquota"));
        assert!(missing("xfs", nosys()).contains("CONFIG_XFS_QUOTA"));
        assert!(missing("ext4", Ok(0)).contains("quota,project"));
        assert!(missing("ext4", Ok(sys::FS_QUOTA_PDQ_ACCT)).contains("does not enforce"));
        assert!(missing("tmpfs", nosys()).contains("xfs"));
    }

    /// The kernel path on whatever /tmp is: without project quotas (most
    /// hosts) the check fails naming the filesystem; it never panics.
    #[test]
    fn check_names_the_filesystem() {
        let root = std::env::temp_dir().join(format!("hind-quota-check-{}", std::process::id()));
        let layout = Layout::new(&root);
        if let Err(e) = check(&layout) {
            let msg = e.to_string();
            assert!(msg.contains(&root.display().to_string()), "{msg}");
        }
        assert!(!root.exists(), "check made {}", root.display());
    }
}
