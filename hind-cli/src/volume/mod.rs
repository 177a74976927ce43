//! Named volumes: directories under `<root>/volumes/<name>/` that outlive
//! containers. Each holds `_data/` (what containers see, bind-mounted) and
//! `volume.json` (name, creation time, labels). Volumes are created and
//! removed under one flock, `volumes/lock`, which `run` also holds from the
//! moment it creates a volume until the container's record (which lists
//! the volumes it uses) exists: so `volume rm` and `prune`, which read the
//! records under that lock, never remove a volume a container is about to
//! use. The copy of the image's content into a new volume happens in
//! hind-init (`copyup.rs`), inside the container's mount namespace.

pub mod commands;

/// The label of an anonymous volume (`-v /path`, an image's VOLUME), as
/// Docker sets it: `volume prune` removes only these unless `--all`.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";
pub mod inspect;
pub mod mounts;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::Flock;
use protocol::paths::Layout;
use protocol::record::Record;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The dir inside a volume that containers mount.
pub const DATA: &str = "_data";
const RECORD: &str = "volume.json";
const LOCK: &str = "lock";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "invalid volume name {0:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]+ \
         (a host path must be absolute)"
    )]
    BadName(String),
    #[error("no such volume: {0}")]
    NoSuch(String),
    #[error("volume {0} is in use by container {1}")]
    InUse(String, String),
    #[error("create {0}")]
    Create(PathBuf, #[source] io::Error),
    #[error("read {0}")]
    Read(PathBuf, #[source] io::Error),
    #[error("parse {0}")]
    Parse(PathBuf, #[source] serde_json::Error),
    #[error("remove {0}")]
    Remove(PathBuf, #[source] io::Error),
    #[error("lock {0}")]
    Lock(#[from] protocol::lockfile::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// `volume.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VolumeRecord {
    pub name: String,
    pub created: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

pub struct Volume {
    pub dir: PathBuf,
    pub record: VolumeRecord,
}

impl Volume {
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// The `_data` dir: the mount source, Docker's `Mountpoint`.
    pub fn data(&self) -> PathBuf {
        self.dir.join(DATA)
    }

    /// The `volume inspect` document, in Docker's shape.
    pub fn document(&self) -> Value {
        json!({
            "CreatedAt": self.record.created,
            "Driver": "local",
            "Labels": self.record.labels,
            "Mountpoint": self.data(),
            "Name": self.record.name,
            "Options": {},
            "Scope": "local",
        })
    }
}

/// Docker's rule for volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    n.len() >= 2
        && n.len() <= 255
        && matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The exclusive flock on `volumes/lock`; see the module doc.
pub struct Lock {
    _lock: Flock<File>,
}

fn mkdir(p: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(|e| Error::Create(p.to_path_buf(), e))
}

pub fn lock(layout: &Layout) -> Result<Lock> {
    let dir = layout.volumes();
    mkdir(&dir)?;
    let lock = protocol::lockfile::exclusive(&dir.join(LOCK))?;
    Ok(Lock { _lock: lock })
}

/// The volume `name`, if it exists.
pub fn get(layout: &Layout, name: &str) -> Result<Volume> {
    if !valid_name(name) {
        return Err(Error::NoSuch(name.to_string()));
    }
    let dir = layout.volumes().join(name);
    let p = dir.join(RECORD);
    let data = match fs::read(&p) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::NoSuch(name.to_string()))
        }
        Err(e) => return Err(Error::Read(p, e)),
    };
    let record = serde_json::from_slice(&data).map_err(|e| Error::Parse(p, e))?;
    Ok(Volume { dir, record })
}

/// Every volume, by name. Unreadable ones are skipped.
pub fn list(layout: &Layout) -> Vec<Volume> {
    let Ok(rd) = fs::read_dir(layout.volumes()) else {
        return Vec::new();
    };
    let mut v: Vec<Volume> = rd
        .flatten()
        .filter_map(|e| get(layout, e.file_name().to_str()?).ok())
        .collect();
    v.sort_by(|a, b| a.record.name.cmp(&b.record.name));
    v
}

/// Creates the volume `name` unless it exists; returns it and whether it
/// was made now. The volume appears whole or not at all: it is built
/// under a scratch name (which no valid name can take) and renamed in.
pub fn create(
    layout: &Layout,
    _lock: &Lock,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<(Volume, bool)> {
    if !valid_name(name) {
        return Err(Error::BadName(name.to_string()));
    }
    if let Ok(v) = get(layout, name) {
        return Ok((v, false));
    }
    let dir = layout.volumes().join(name);
    let tmp = layout
        .volumes()
        .join(format!(".new-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let made = (|| -> Result<()> {
        mkdir(&tmp)?;
        // What a container sees at the mount when the image has nothing
        // there: 0755 root, whatever the umask. Copy-up gives it the
        // image's owner and mode instead.
        let data = tmp.join(DATA);
        mkdir(&data)?;
        fs::set_permissions(&data, fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::Create(data.clone(), e))?;
        let record = VolumeRecord {
            name: name.to_string(),
            created: protocol::time::now(),
            labels: labels.clone(),
        };
        let p = tmp.join(RECORD);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .map_err(|e| Error::Create(p.clone(), e))?;
        let body = serde_json::to_vec_pretty(&record).expect("volume record serializes");
        f.write_all(&body)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::Create(p.clone(), e))?;
        fs::rename(&tmp, &dir).map_err(|e| Error::Create(dir.clone(), e))
    })();
    if let Err(e) = made {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    Ok((get(layout, name)?, true))
}

/// Volume name -> names of the containers (running or not) whose records
/// list it. Read under [`Lock`] for an answer that stays true.
pub fn usage(layout: &Layout) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let Ok(rd) = fs::read_dir(layout.containers()) else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(r) = Record::load(&e.path()) else {
            continue;
        };
        for v in r.volumes() {
            out.entry(v.to_string()).or_default().insert(r.name.clone());
        }
    }
    out
}

/// Removes the volume `name` unless a container uses it. The dir is first
/// renamed to a scratch name, so a removal cut short leaves no half volume
/// behind under the real one.
pub fn remove(layout: &Layout, _lock: &Lock, name: &str) -> Result<()> {
    let v = get(layout, name)?;
    if let Some(users) = usage(layout).get(name) {
        let users: Vec<&str> = users.iter().map(String::as_str).collect();
        return Err(Error::InUse(name.to_string(), users.join(", ")));
    }
    let tmp = layout
        .volumes()
        .join(format!(".del-{name}-{}", std::process::id()));
    fs::rename(&v.dir, &tmp).map_err(|e| Error::Remove(v.dir.clone(), e))?;
    // remove_dir_all never follows a symlink the container left in it.
    fs::remove_dir_all(&tmp).map_err(|e| Error::Remove(v.dir.clone(), e))
}

/// Removes those of `names` that exist and no container uses; for undoing
/// a failed `run`. Best effort.
pub fn remove_unused(layout: &Layout, names: &[String]) {
    if names.is_empty() {
        return;
    }
    if let Ok(lock) = lock(layout) {
        for n in names {
            let _ = remove(layout, &lock, n);
        }
    }
}

/// Bytes under `dir` (not following symlinks), for prune's report.
pub fn disk_usage(dir: &Path) -> u64 {
    let Ok(md) = fs::symlink_metadata(dir) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| disk_usage(&e.path())).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["ab", "data", "my-vol_1.2", "0a"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["a", "", "-a", ".a", "a/b", "a b", "./x", "/x"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn create_list_remove() {
        let d = std::env::temp_dir().join(format!("hind-volume-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        let layout = Layout::new(&d);
        let l = lock(&layout).unwrap();
        let labels = BTreeMap::from([("k".to_string(), "v".to_string())]);
        let (v, made) = create(&layout, &l, "vol1", &labels).unwrap();
        assert!(made);
        assert!(v.data().is_dir());
        let (_, again) = create(&layout, &l, "vol1", &BTreeMap::new()).unwrap();
        assert!(!again);
        assert_eq!(get(&layout, "vol1").unwrap().record.labels, labels);
        assert_eq!(list(&layout).len(), 1);
        remove(&layout, &l, "vol1").unwrap();
        assert!(matches!(get(&layout, "vol1"), Err(Error::NoSuch(_))));
        assert!(list(&layout).is_empty());
        fs::remove_dir_all(&d).unwrap();
    }
}
