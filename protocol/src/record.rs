//! The container record (`<root>/containers/<id>/record.json`): what the CLI
//! created and what the shim observed. Written atomically (temp file, fsync,
//! rename, fsync of the dir) by whoever holds the container's lock file, so a
//! reader never sees a torn record and two writers never interleave.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;

use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::lockfile;
use crate::paths;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("read {0}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("parse {0}")]
    Parse(PathBuf, #[source] serde_json::Error),
    #[error("write {0}")]
    Write(PathBuf, #[source] std::io::Error),
    #[error(transparent)]
    Lock(#[from] lockfile::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    /// Exited, and the shim will start it again after a back-off.
    Restarting,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
        }
    }
}

/// `--restart`: what the shim does when the container exits by itself.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case", tag = "Name")]
pub enum RestartPolicy {
    #[default]
    No,
    /// Restart on a non-zero exit, at most `max_retries` times (0: no limit).
    OnFailure {
        #[serde(rename = "MaximumRetryCount")]
        max_retries: u32,
    },
    Always,
}

impl RestartPolicy {
    /// Whether a container that exited with `code` after `restarts`
    /// restarts starts again.
    pub fn should_restart(self, code: i32, restarts: u32) -> bool {
        match self {
            RestartPolicy::No => false,
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure { max_retries } => {
                code != 0 && (max_retries == 0 || restarts < max_retries)
            }
        }
    }
}

/// `--log-opt max-size=,max-file=`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct LogOptions {
    /// Rotate when the current file would exceed this many bytes.
    pub max_size: Option<u64>,
    /// Files kept, the current one included (at least 2 when rotating).
    pub max_file: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub id: String,
    pub name: String,
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    /// The stored image's id (its config digest), when the image came from
    /// the image store: `rmi` refuses to delete an image a container uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
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
    #[serde(default)]
    pub restart: RestartPolicy,
    #[serde(default)]
    pub restart_count: u32,
    #[serde(default)]
    pub log: LogOptions,
    /// Signal `hind stop` sends first (SIGTERM unless the image says).
    #[serde(default)]
    pub stop_signal: Option<i32>,
    /// How the container is networked; `None` for records made before
    /// networking existed (they have a private netns with only `lo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkRecord>,
    /// `--storage-opt size=`: the disk quota on the writable layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaRecord>,
    /// The mounts asked for with `-v`, `--mount` and `--tmpfs`. The volumes
    /// among them are how `volume rm` and `prune` tell a volume is in use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountRecord>,
    /// Privilege and device flags as typed, for `inspect`'s HostConfig
    /// (the spec holds their effect, not what was asked for).
    #[serde(default)]
    pub security: SecurityRecord,
}

/// `--privileged`, `--cap-add/--cap-drop`, `--security-opt`, `--device`,
/// `--device-cgroup-rule`, `--group-add` and `--volumes-from`, as typed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SecurityRecord {
    #[serde(default)]
    pub privileged: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_cgroup_rules: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<String>,
}

/// One user mount of a container, as `inspect` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct MountRecord {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: String,
    /// The volume's name, for volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Host path: the bind source or the volume's `_data` dir.
    pub source: String,
    pub destination: String,
    /// The mode as typed (`ro`, `z`, ...), Docker's `Mode`.
    #[serde(default)]
    pub mode: String,
    pub rw: bool,
    #[serde(default)]
    pub propagation: String,
    /// A volume made for this container alone (`-v /path`): removed with
    /// it by `rm -v` and `--rm`.
    #[serde(default)]
    pub anonymous: bool,
    /// The flag it came from: `volume` (`-v`), `mount` or `tmpfs`.
    pub flag: String,
    /// tmpfs options (`size=64m,mode=1777`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub options: String,
}

/// A container's disk quota: its upper and work dirs carry a project id of
/// their own, limited to `bytes` (hind-cli's `quota` module).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct QuotaRecord {
    /// The size as given, for inspect's `HostConfig.StorageOpt`.
    pub size: String,
    pub bytes: u64,
    pub project_id: u32,
}

/// A container's network settings and what `run` allocated for them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct NetworkRecord {
    /// As given to `--network`: `bridge`, `none`, `host`, `container:<id>`
    /// or a user network's name.
    pub mode: String,
    /// The network the container is attached to, for bridge networks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub prefix_len: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub dns_search: Vec<String>,
    #[serde(default)]
    pub dns_options: Vec<String>,
    /// `--add-host NAME:IP`, in order.
    #[serde(default)]
    pub extra_hosts: Vec<(String, String)>,
    pub hostname: String,
    /// `--network-alias` names on a user network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

impl NetworkRecord {
    /// Whether the container has resources of its own to release on
    /// removal: a network namespace, a lease, published ports.
    pub fn owns_resources(&self) -> bool {
        self.network.is_some()
    }
}

/// One published port: `-p [HOST_IP:]HOST_PORT:PORT/PROTO`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortMapping {
    /// `None`: every address of the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
}

impl Record {
    /// Names of the volumes the container uses.
    pub fn volumes(&self) -> impl Iterator<Item = &str> {
        self.mounts.iter().filter_map(|m| m.name.as_deref())
    }

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
        let lock = lockfile::exclusive(&dir.join(paths::LOCK))?;
        Ok(Lock { _lock: lock })
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

/// Held (flock) by a container's shim for its whole life: a second shim
/// for the same container cannot start, and anyone can tell whether a
/// shim is alive without talking to it. The kernel drops the lock when the
/// shim dies, however it dies.
pub struct LifeLock {
    _lock: Flock<File>,
}

pub const SHIM_LOCK: &str = "shim.lock";

impl LifeLock {
    /// Takes the lock without waiting; `Ok(None)` when a shim holds it.
    pub fn try_acquire(dir: &Path) -> Result<Option<LifeLock>> {
        let lock = lockfile::flock(&dir.join(SHIM_LOCK), FlockArg::LockExclusiveNonblock)?;
        Ok(lock.map(|l| LifeLock { _lock: l }))
    }
}

/// Whether a shim currently supervises the container in `dir`.
pub fn shim_alive(dir: &Path) -> bool {
    matches!(LifeLock::try_acquire(dir), Ok(None))
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
            image_id: None,
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
            restart: RestartPolicy::No,
            restart_count: 0,
            log: LogOptions::default(),
            stop_signal: None,
            network: None,
            quota: None,
            mounts: Vec::new(),
            security: SecurityRecord::default(),
        }
    }

    #[test]
    fn restart_policies() {
        assert!(!RestartPolicy::No.should_restart(1, 0));
        assert!(RestartPolicy::Always.should_restart(0, 9));
        let p = RestartPolicy::OnFailure { max_retries: 2 };
        assert!(!p.should_restart(0, 0));
        assert!(p.should_restart(3, 1));
        assert!(!p.should_restart(3, 2));
    }

    #[test]
    fn life_lock_is_exclusive() {
        let d = std::env::temp_dir().join(format!("hind-life-test-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        let held = LifeLock::try_acquire(&d).unwrap();
        assert!(held.is_some());
        assert!(shim_alive(&d));
        drop(held);
        assert!(!shim_alive(&d));
        fs::remove_dir_all(&d).unwrap();
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
