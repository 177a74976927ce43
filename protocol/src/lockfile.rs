//! Lock and claim files, made one way for the whole state root: the flocks
//! that order changes (a container's record and life locks, the image
//! store, networks, volumes, quota ids) and the exclusive-create files that
//! claim a name or an id, of which two racing CLIs can only make one.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("open lock file {0}")]
    Open(PathBuf, #[source] io::Error),
    #[error("lock {0}")]
    Lock(PathBuf, #[source] nix::Error),
    #[error("claim {0}")]
    Claim(PathBuf, #[source] io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Opens `path` (made if missing: mode 0600, close-on-exec, so no exec'd
/// process inherits the lock) and takes `arg` on it, waiting through
/// EINTR. `Ok(None)`: a non-blocking lock is held by someone else.
pub fn flock(path: &Path, arg: FlockArg) -> Result<Option<Flock<File>>> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::fcntl::OFlag::O_CLOEXEC.bits())
        .open(path)
        .map_err(|e| Error::Open(path.to_path_buf(), e))?;
    loop {
        match Flock::lock(file, arg) {
            Ok(l) => return Ok(Some(l)),
            Err((f, Errno::EINTR)) => file = f,
            Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
            Err((_, e)) => return Err(Error::Lock(path.to_path_buf(), e)),
        }
    }
}

/// [`flock`] with an exclusive, blocking lock.
pub fn exclusive(path: &Path) -> Result<Flock<File>> {
    flock(path, FlockArg::LockExclusive)
        .map(|l| l.expect("a blocking flock is either taken or an error"))
}

/// Creates `path` with O_EXCL (mode 0600) holding `owner`. `Ok(false)`: it
/// exists, someone else holds the claim.
pub fn claim(path: &Path, owner: &[u8]) -> Result<bool> {
    let err = |e| Error::Claim(path.to_path_buf(), e);
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut f) => f.write_all(owner).map(|_| true).map_err(err),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_and_claims() {
        let dir = std::env::temp_dir().join(format!("hind-lockfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("lock");
        let held = exclusive(&p).unwrap();
        // Another open file description cannot take it while it is held.
        assert!(flock(&p, FlockArg::LockExclusiveNonblock)
            .unwrap()
            .is_none());
        drop(held);
        assert!(flock(&p, FlockArg::LockExclusiveNonblock)
            .unwrap()
            .is_some());
        let c = dir.join("claim");
        assert!(claim(&c, b"a").unwrap());
        assert!(!claim(&c, b"b").unwrap());
        assert_eq!(std::fs::read(&c).unwrap(), b"a");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
