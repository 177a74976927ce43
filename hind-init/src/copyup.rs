//! Docker's copy-up of a new volume: before a volume is bind-mounted over a
//! path of the image, init copies what the image has at that path into the
//! volume's dir, if that dir is still empty. Owners, modes, timestamps,
//! extended attributes (of files and dirs), symlinks (as symlinks), FIFOs,
//! device nodes and hard links (files linked in the image are linked in
//! the volume) are kept.
//!
//! Everything goes through fds. The source is opened inside the container's
//! root with openat2(RESOLVE_IN_ROOT), after the overlay is mounted, so it
//! is the merged view of the image and cannot be a host path; below it
//! every entry is opened relative to its parent with O_NOFOLLOW, so a
//! symlink in the image (`/data/x -> /etc/shadow`) is copied as a link and
//! never read through. Entries in the volume are created with O_EXCL (or
//! mkdirat, symlinkat, mknodat, which never follow) relative to their
//! parent's fd.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::{openat, openat2, AtFlags, Flock, FlockArg, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstat, fstatat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags,
    FileStat, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("open volume dir {0}")]
    OpenVolume(PathBuf, #[source] nix::Error),
    #[error("lock volume dir {0}")]
    Lock(PathBuf, #[source] nix::Error),
    #[error("read volume dir {0}")]
    ReadVolume(PathBuf, #[source] nix::Error),
    #[error("open {0} in the image")]
    OpenSource(PathBuf, #[source] nix::Error),
    #[error("read {0} in the image")]
    Read(PathBuf, #[source] nix::Error),
    #[error("copy {0} into the volume")]
    Create(PathBuf, #[source] nix::Error),
    #[error("copy the data of {0} into the volume")]
    Data(PathBuf, #[source] io::Error),
    #[error("copy the extended attributes of {0} into the volume")]
    Xattrs(PathBuf, #[source] io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Fills the volume dir `volume` (a host path hind made) with the content
/// of `rel` inside the root `root_fd`, if the volume is empty. `dest` is
/// the container path, for messages. The volume dir takes the owner and
/// mode of the image's dir, as in Docker.
pub fn copy_up(root_fd: &OwnedFd, rel: &Path, dest: &Path, volume: &Path) -> Result<()> {
    let vol = open_dir(None, volume).map_err(|e| Error::OpenVolume(volume.into(), e))?;
    // Two containers starting at once on one new volume: one copies, the
    // other then finds the volume no longer empty.
    let vol = Flock::lock(vol, FlockArg::LockExclusive)
        .map_err(|(_, e)| Error::Lock(volume.into(), e))?;
    if !is_empty(vol.as_raw_fd()).map_err(|e| Error::ReadVolume(volume.into(), e))? {
        return Ok(());
    }
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let src = match openat2(root_fd.as_raw_fd(), rel, how) {
        // SAFETY: openat2 just returned this fd; nothing else owns it.
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
        // Nothing in the image there (the mount point is made later), or
        // not a directory: nothing to copy.
        Err(nix::Error::ENOENT | nix::Error::ENOTDIR) => return Ok(()),
        Err(e) => return Err(Error::OpenSource(dest.into(), e)),
    };
    let st = fstat(src.as_raw_fd()).map_err(|e| Error::Read(dest.into(), e))?;
    let mut copier = Copier {
        volume: vol.as_raw_fd(),
        dest,
        links: HashMap::new(),
    };
    copier.copy_dir(src.as_raw_fd(), vol.as_raw_fd(), dest)?;
    set_meta(vol.as_raw_fd(), &st).map_err(|e| Error::Create(dest.into(), e))?;
    crate::sys::copy_xattrs(src.as_raw_fd(), vol.as_raw_fd())
        .map_err(|e| Error::Xattrs(dest.into(), e))
}

/// One copy-up: where it copies to, and the files with more than one link
/// copied so far, by (device, inode), with their path in the volume.
struct Copier<'a> {
    volume: RawFd,
    /// The container path the volume goes on; entries' paths are below it.
    dest: &'a Path,
    links: HashMap<(u64, u64), PathBuf>,
}

/// `path` (relative to `dir`, or absolute) opened as a directory, never
/// through a symlink in its last component.
fn open_dir(dir: Option<RawFd>, path: &Path) -> nix::Result<OwnedFd> {
    let fd = openat(
        dir,
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: openat just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn is_empty(fd: RawFd) -> nix::Result<bool> {
    let mut d = Dir::openat(
        Some(fd),
        ".",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    for e in d.iter() {
        let name = e?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Owner, then mode (chown clears set-id bits), then times.
fn set_meta(fd: RawFd, st: &FileStat) -> nix::Result<()> {
    fchown(
        fd,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )?;
    fchmod(fd, Mode::from_bits_truncate(st.st_mode & 0o7777))?;
    futimens(fd, &atime(st), &mtime(st))
}

fn atime(st: &FileStat) -> TimeSpec {
    TimeSpec::new(st.st_atime, st.st_atime_nsec)
}

fn mtime(st: &FileStat) -> TimeSpec {
    TimeSpec::new(st.st_mtime, st.st_mtime_nsec)
}

/// Copies one entry `name` of `src` into `dst`; `path` names it in errors.
/// Gives the entry `name` in `dst` the owner `owner`, never following it
/// if it is a symlink.
fn chown_entry(dst: RawFd, name: &Path, owner: (Option<Uid>, Option<Gid>)) -> nix::Result<()> {
    fchownat(
        Some(dst),
        name,
        owner.0,
        owner.1,
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

impl Copier<'_> {
    /// Copies the entries of the directory `src` into the directory `dst`.
    fn copy_dir(&mut self, src: RawFd, dst: RawFd, at: &Path) -> Result<()> {
        let mut dir = Dir::openat(
            Some(src),
            ".",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::Read(at.into(), e))?;
        for entry in dir.iter() {
            let entry = entry.map_err(|e| Error::Read(at.into(), e))?;
            let name = entry.file_name();
            if matches!(name.to_bytes(), b"." | b"..") {
                continue;
            }
            let name = Path::new(std::ffi::OsStr::from_bytes(name.to_bytes()));
            let path = at.join(name);
            self.copy_entry(src, dst, name, &path)?;
        }
        Ok(())
    }

    /// Copies one entry `name` of `src` into `dst`; `path` names it in errors.
    fn copy_entry(&mut self, src: RawFd, dst: RawFd, name: &Path, path: &Path) -> Result<()> {
        let read = |e| Error::Read(path.into(), e);
        let create = |e| Error::Create(path.into(), e);
        let st = fstatat(Some(src), name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(read)?;
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        let owner = (
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
        );
        match kind {
            SFlag::S_IFDIR => {
                mkdirat(Some(dst), name, Mode::from_bits_truncate(0o700)).map_err(create)?;
                let from = open_dir(Some(src), name).map_err(read)?;
                let to = open_dir(Some(dst), name).map_err(create)?;
                self.copy_dir(from.as_raw_fd(), to.as_raw_fd(), path)?;
                set_meta(to.as_raw_fd(), &st).map_err(create)?;
                // After the chown, which drops security.capability.
                crate::sys::copy_xattrs(from.as_raw_fd(), to.as_raw_fd())
                    .map_err(|e| Error::Xattrs(path.into(), e))?;
            }
            SFlag::S_IFREG => {
                let key = (st.st_dev, st.st_ino);
                let rel = path.strip_prefix(self.dest).unwrap_or(path).to_path_buf();
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key) {
                        // Another name of a file already copied: a link to that
                        // copy, through the volume's fd and dirs hind made.
                        nix::unistd::linkat(
                            Some(self.volume),
                            first.as_path(),
                            Some(dst),
                            name,
                            AtFlags::empty(),
                        )
                        .map_err(create)?;
                        return Ok(());
                    }
                    self.links.insert(key, rel);
                }
                let from = openat(
                    Some(src),
                    name,
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(read)?;
                // SAFETY: openat just returned this fd; nothing else owns it.
                let mut from = unsafe { File::from_raw_fd(from) };
                let to = openat(
                    Some(dst),
                    name,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(create)?;
                // SAFETY: openat just returned this fd; nothing else owns it.
                let mut to = unsafe { File::from_raw_fd(to) };
                io::copy(&mut from, &mut to).map_err(|e| Error::Data(path.into(), e))?;
                set_meta(to.as_raw_fd(), &st).map_err(create)?;
                // After the chown, which drops security.capability.
                crate::sys::copy_xattrs(from.as_raw_fd(), to.as_raw_fd())
                    .map_err(|e| Error::Xattrs(path.into(), e))?;
            }
            SFlag::S_IFLNK => {
                let target = nix::fcntl::readlinkat(Some(src), name).map_err(read)?;
                symlinkat(target.as_os_str(), Some(dst), name).map_err(create)?;
                chown_entry(dst, name, owner).map_err(create)?;
                utimensat(
                    Some(dst),
                    name,
                    &atime(&st),
                    &mtime(&st),
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(create)?;
            }
            SFlag::S_IFIFO | SFlag::S_IFCHR | SFlag::S_IFBLK => {
                let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
                mknodat(Some(dst), name, kind, perm, st.st_rdev).map_err(create)?;
                chown_entry(dst, name, owner).map_err(create)?;
                // mknodat applied the umask; the node was just made, so this
                // names it and no symlink.
                fchmodat(Some(dst), name, perm, FchmodatFlags::FollowSymlink).map_err(create)?;
            }
            // Sockets belong to a process that is not here.
            _ => {}
        }
        Ok(())
    }
}
