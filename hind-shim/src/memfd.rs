//! A sealed in-memory copy of `hind-init`, made for each process the shim
//! starts in a container (its init, and every `hind exec` helper).
//!
//! Until they exec the user's command these processes run hind's own code
//! inside the container's pid namespace, where any process of the container
//! can reach them through `/proc/PID/exe`. If that link led to the host's
//! `hind-init` file, the container could reopen it for writing once the
//! process is gone and replace the binary that every later container runs
//! as root on the host (runc CVE-2019-5736). Executing a memfd instead makes
//! `/proc/PID/exe` an anonymous file that is not the host's and that cannot
//! change: the copy is sealed against writes, growth and shrinking, and the
//! seals themselves are sealed (memfd_create(2), fcntl(2) "File Sealing").
//!
//! The copy lives only as long as someone holds it: the shim closes its fd
//! right after the clone, and the kernel frees the pages when the process
//! stops executing it (its exec of the user's command). A copy kept for the
//! shim's lifetime would instead cost each idle shim the binary's size in
//! shared memory.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("open {0} to copy it")]
    Open(PathBuf, #[source] io::Error),
    #[error("create a memfd for {0}")]
    Create(PathBuf, #[source] nix::Error),
    #[error("copy {0} into its memfd")]
    Copy(PathBuf, #[source] nix::Error),
    #[error("copy {path} into its memfd: got {copied} of {len} bytes")]
    Short {
        path: PathBuf,
        copied: u64,
        len: u64,
    },
    #[error("seal the memfd copy of {0}")]
    Seal(PathBuf, #[source] nix::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The name the copy shows under, as `/memfd:hind-init (deleted)` in
/// `/proc/PID/exe` and `/proc/PID/maps`.
const NAME: &std::ffi::CStr = c"hind-init";

/// An executable, read-only, anonymous copy of a binary.
pub struct SealedExe {
    fd: OwnedFd,
}

impl SealedExe {
    /// Copies `path` into a new close-on-exec memfd and seals it.
    pub fn copy_of(path: &Path) -> Result<SealedExe> {
        let src = File::open(path).map_err(|e| Error::Open(path.to_path_buf(), e))?;
        let len = src
            .metadata()
            .map_err(|e| Error::Open(path.to_path_buf(), e))?
            .len();
        let fd = memfd_create(
            NAME,
            MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
        )
        .map_err(|e| Error::Create(path.to_path_buf(), e))?;
        // sendfile(2) copies in the kernel from the page cache. It is used
        // rather than copy_file_range(2), which refuses (EXDEV) to copy
        // between two filesystems of different types, here the binary's and
        // tmpfs.
        let mut copied = 0u64;
        while copied < len {
            let chunk = usize::try_from(len - copied).unwrap_or(usize::MAX);
            match nix::sys::sendfile::sendfile(&fd, &src, None, chunk) {
                Ok(0) => break,
                Ok(n) => copied += n as u64,
                Err(nix::Error::EINTR) => {}
                Err(e) => return Err(Error::Copy(path.to_path_buf(), e)),
            }
        }
        if copied != len {
            return Err(Error::Short {
                path: path.to_path_buf(),
                copied,
                len,
            });
        }
        let seals = SealFlag::F_SEAL_SEAL
            | SealFlag::F_SEAL_SHRINK
            | SealFlag::F_SEAL_GROW
            | SealFlag::F_SEAL_WRITE;
        fcntl(fd.as_raw_fd(), FcntlArg::F_ADD_SEALS(seals))
            .map_err(|e| Error::Seal(path.to_path_buf(), e))?;
        Ok(SealedExe { fd })
    }
}

impl AsRawFd for SealedExe {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn copy_is_identical_and_sealed() {
        let src = std::env::current_exe().unwrap();
        let exe = SealedExe::copy_of(&src).unwrap();
        // A reopened file, with an offset of its own (sendfile moved the
        // memfd's to the end).
        let mut copy = File::open(format!("/proc/self/fd/{}", exe.as_raw_fd())).unwrap();
        let mut got = Vec::new();
        copy.read_to_end(&mut got).unwrap();
        let want = std::fs::read(&src).unwrap();
        assert!(
            got == want,
            "copy differs: {} vs {} bytes",
            got.len(),
            want.len()
        );
        let seals = fcntl(exe.as_raw_fd(), FcntlArg::F_GET_SEALS).unwrap();
        let want = SealFlag::F_SEAL_SEAL
            | SealFlag::F_SEAL_SHRINK
            | SealFlag::F_SEAL_GROW
            | SealFlag::F_SEAL_WRITE;
        assert_eq!(SealFlag::from_bits_truncate(seals) & want, want);
        // Reopening through /proc, as a container would through
        // /proc/PID/exe, gives a file that cannot be written either.
        let reopened = format!("/proc/self/fd/{}", exe.as_raw_fd());
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(&reopened)
            .unwrap();
        assert!(w.write_all(b"x").is_err());
        assert!(std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&reopened)
            .is_err());
    }

    #[test]
    fn missing_binary_is_named() {
        let err = SealedExe::copy_of(Path::new("/nonexistent/hind-init"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("/nonexistent/hind-init"));
    }
}
