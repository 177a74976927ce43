//! The container record (`<root>/containers/<id>/record.json`): what the CLI
//! created and what the shim observed. Written atomically (temp file, fsync,
//! rename, fsync of the dir) by whoever holds the container's lock file, so a
//! reader never sees a torn record and two writers never interleave.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::paths;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("read {0}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("parse {0}")]
    Parse(PathBuf, #[source] serde_json::Error),
    #[error("write {0}")]
    Write(PathBuf, #[source] std::io::Error),
    #[error("lock {0}")]
    Lock(PathBuf, #[source] std::io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub id: String,
    pub name: String,
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    pub command: Vec<String>,
    pub status: Status,
    /// Container init's pid in the host's pid namespace, while running.
    pub pid: i32,
    pub shim_pid: i32,
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Remove everything of the container once it exits (`--rm`).
    pub auto_remove: bool,
    pub tty: bool,
    pub open_stdin: bool,
    /// Why the last start failed, if it did.
    pub error: Option<String>,
}

impl Record {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(paths::RECORD)
    }

    pub fn load(dir: &Path) -> Result<Record> {
        let p = Self::path(dir);
        let data = fs::read(&p).map_err(|e| Error::Read(p.clone(), e))?;
        serde_json::from_slice(&data).map_err(|e| Error::Parse(p, e))
    }

    /// Replaces the record atomically; the caller holds [`Lock`].
    pub fn save(&self, dir: &Path) -> Result<()> {
        let data = serde_json::to_vec_pretty(self).expect("record serializes");
        write_atomic(&Self::path(dir), &data)
    }
}

/// Writes `data` to `path` via a temp file in the same dir, fsyncs it,
/// renames it over `path` and fsyncs the dir, so a crash leaves either the
/// old or the new content.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let err = |e| Error::Write(path.to_path_buf(), e);
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(data).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(err(e));
    }
    File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
    Ok(())
}

/// An exclusive flock on a container's `lock` file, released on drop.
pub struct Lock {
    _lock: Flock<File>,
}

impl Lock {
    pub fn acquire(dir: &Path) -> Result<Lock> {
        let p = dir.join(paths::LOCK);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&p)
            .map_err(|e| Error::Lock(p.clone(), e))?;
        let mut file = file;
        loop {
            match Flock::lock(file, FlockArg::LockExclusive) {
                Ok(lock) => return Ok(Lock { _lock: lock }),
                Err((f, nix::errno::Errno::EINTR)) => file = f,
                Err((_, e)) => return Err(Error::Lock(p, e.into())),
            }
        }
    }
}

/// Loads, changes and saves the record of the container in `dir` under its
/// lock.
pub fn update(dir: &Path, change: impl FnOnce(&mut Record)) -> Result<Record> {
    let _lock = Lock::acquire(dir)?;
    let mut r = Record::load(dir)?;
    change(&mut r);
    r.save(dir)?;
    Ok(r)
}

/// Deletes everything a container has on disk: its name claim and its
/// directory (bundle, record, upper and work dirs, log). Idempotent.
pub fn remove_files(layout: &paths::Layout, id: &str, name: &str) -> Result<()> {
    let name_file = layout.names().join(name);
    // Only release the name if it still points at this container.
    if fs::read_to_string(&name_file).is_ok_and(|owner| owner.trim() == id) {
        let _ = fs::remove_file(&name_file);
    }
    let dir = layout.container(id);
    match fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Write(dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            id: "abc".into(),
            name: "n".into(),
            created: crate::time::now(),
            image: "/".into(),
            command: vec!["true".into()],
            status: Status::Created,
            pid: 0,
            shim_pid: 0,
            exit_code: None,
            oom_killed: false,
            started_at: None,
            finished_at: None,
            auto_remove: false,
            tty: false,
            open_stdin: false,
            error: None,
        }
    }

    #[test]
    fn save_load_update() {
        let d = std::env::temp_dir().join(format!("hind-record-test-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        sample().save(&d).unwrap();
        let r = update(&d, |r| {
            r.status = Status::Exited;
            r.exit_code = Some(3);
        })
        .unwrap();
        assert_eq!(Record::load(&d).unwrap(), r);
        fs::remove_dir_all(&d).unwrap();
    }
}
