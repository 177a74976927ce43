//! What `hind-runc` keeps of one container between its invocations:
//! `<root>/<id>/state.json` (pid, its start time, bundle, cgroup), a copy
//! of the bundle's `config.json` (for `exec` and the poststop hooks, which
//! must not see later edits of the bundle), and `start.sock` while the
//! container is created but not started. The status is never stored: it
//! is read off the live system each time, as the OCI runtime spec's state
//! has it (runtime.md, "State").

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.'")]
    BadId(String),
    #[error("create state dir {0}")]
    CreateDir(PathBuf, #[source] io::Error),
    #[error("read {0}")]
    Read(PathBuf, #[source] io::Error),
    #[error("parse {0}")]
    Parse(PathBuf, #[source] serde_json::Error),
    #[error("write {0}")]
    Write(PathBuf, #[source] io::Error),
    #[error("remove state dir {0}")]
    Remove(PathBuf, #[source] io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The runtime-spec version the state and `features` speak.
pub const OCI_VERSION: &str = "1.0.2";
pub const STATE: &str = "state.json";
pub const CONFIG: &str = "config.json";
/// Where init waits for `start` (see `ToInit::Detach`).
pub const START_SOCKET: &str = "start.sock";

/// The OCI status of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// init's pid in the caller's pid namespace.
    pub pid: i32,
    /// init's start time (field 22 of /proc/PID/stat): a recycled pid is
    /// not the container.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub cgroups_path: PathBuf,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// A container id as runc accepts it: it becomes a directory name.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::BadId(id.to_string()))
    }
}

pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

/// Makes the container's state dir; the id must be new.
pub fn create_dir(root: &Path, id: &str) -> Result<PathBuf> {
    check_id(id)?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(root)
        .map_err(|e| Error::CreateDir(root.to_path_buf(), e))?;
    let d = dir(root, id);
    match fs::DirBuilder::new().mode(0o711).create(&d) {
        Ok(()) => Ok(d),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(Error::Exists(id.to_string())),
        Err(e) => Err(Error::CreateDir(d, e)),
    }
}

pub fn remove_dir(root: &Path, id: &str) -> Result<()> {
    let d = dir(root, id);
    match fs::remove_dir_all(&d) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Remove(d, e)),
    }
}

/// Writes `data` to `path` through a temporary file and rename, so a
/// reader never sees half of it.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, data)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::Write(path.to_path_buf(), e)
        })
}

impl State {
    pub fn load(root: &Path, id: &str) -> Result<State> {
        check_id(id).map_err(|_| Error::NotFound(id.to_string()))?;
        let path = dir(root, id).join(STATE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()))
            }
            Err(e) => return Err(Error::Read(path, e)),
        };
        serde_json::from_slice(&data).map_err(|e| Error::Parse(path, e))
    }

    pub fn save(&self, root: &Path) -> Result<()> {
        let path = dir(root, &self.id).join(STATE);
        let data = serde_json::to_vec(self).map_err(|e| Error::Parse(path.clone(), e))?;
        write_atomic(&path, &data)
    }

    /// Whether init is still this container's init (alive, not a zombie,
    /// and not a recycled pid).
    pub fn alive(&self) -> bool {
        matches!(proc_stat(self.pid), Some((state, start)) if state != 'Z' && state != 'X' && start == self.pid_start)
    }

    /// The container's cgroup (never pruning its parent, the caller's).
    pub fn cgroup(&self) -> Option<Cgroup> {
        Cgroup::new(&self.cgroups_path, &self.id)
            .ok()
            .map(Cgroup::keep_parent)
    }

    /// The status as the system shows it now.
    pub fn status(&self, root: &Path) -> Status {
        let frozen = || self.cgroup().is_some_and(|c| c.frozen());
        if !self.alive() {
            Status::Stopped
        } else if dir(root, &self.id).join(START_SOCKET).exists() {
            Status::Created
        } else if frozen() {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// The OCI state JSON (runtime.md), plus the `rootfs`, `created` and
    /// `owner` fields runc prints.
    pub fn to_oci(&self, status: Status) -> serde_json::Value {
        let pid = if status == Status::Stopped {
            0
        } else {
            self.pid
        };
        serde_json::json!({
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "pid": pid,
            "status": status.as_str(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "annotations": self.annotations,
            "owner": "",
        })
    }
}

/// Writes a pid file as runc does: whole or not at all, at the path made
/// absolute against the cwd.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    write_atomic(&path, pid.to_string().as_bytes())
}

/// The state letter and start time (clock ticks after boot) of `pid`.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: the
    // fields after it start after its last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    // Field 22 overall is the 20th after the command name.
    let start = f.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Every container id under `root`, sorted.
pub fn ids(root: &Path) -> Vec<String> {
    let mut ids: Vec<String> = fs::read_dir(root)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join(STATE).is_file())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_checked() {
        assert!(check_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn own_stat() {
        let me = std::process::id() as i32;
        let (state, start) = proc_stat(me).expect("own stat");
        assert!(state == 'R' || state == 'S');
        assert!(start > 0);
    }
}
