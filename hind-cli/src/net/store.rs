//! Network records: `<root>/networks/<name>.json` each, holding the subnet,
//! the bridge's name and the leases (address -> container). Every change is
//! made under one exclusive flock (`networks/lock`), so two CLIs never hand
//! out one address; readers (`ls`, `inspect`) rely on atomic replacement.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nix::fcntl::Flock;
use protocol::paths::Layout;
use protocol::record;
use serde::{Deserialize, Serialize};

use super::ipam::Subnet;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("create {0}")]
    Create(PathBuf, #[source] std::io::Error),
    #[error(transparent)]
    Lock(#[from] protocol::lockfile::Error),
    #[error("read {0}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("parse {0}")]
    Parse(PathBuf, #[source] serde_json::Error),
    #[error("remove {0}")]
    Remove(PathBuf, #[source] std::io::Error),
    #[error(transparent)]
    Write(#[from] record::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The default network's name, as in Docker.
pub const DEFAULT: &str = "bridge";
/// The default network's Linux bridge.
pub const DEFAULT_BRIDGE: &str = "hind0";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Lease {
    pub container: String,
    pub name: String,
    /// `--network-alias` names, by which the other members find it too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub driver: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// The Linux bridge: `hind0` for the default network, `hbr-<id>` else.
    pub bridge: String,
    pub created: String,
    #[serde(default)]
    pub leases: BTreeMap<Ipv4Addr, Lease>,
}

impl Network {
    pub fn new(name: &str, id: String, subnet: Subnet) -> Network {
        let bridge = if name == DEFAULT {
            DEFAULT_BRIDGE.to_string()
        } else {
            format!("hbr-{}", &id[..11])
        };
        Network {
            name: name.to_string(),
            driver: "bridge".into(),
            gateway: subnet.gateway(),
            subnet,
            bridge,
            created: protocol::time::now(),
            leases: BTreeMap::new(),
            id,
        }
    }

    /// The address leased to `container`, if any.
    pub fn lease_of(&self, container: &str) -> Option<Ipv4Addr> {
        self.leases
            .iter()
            .find(|(_, l)| l.container == container)
            .map(|(ip, _)| *ip)
    }
}

fn file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

/// Reads one network without the lock.
fn read(path: &Path) -> Result<Network> {
    let data = fs::read(path).map_err(|e| Error::Read(path.to_path_buf(), e))?;
    serde_json::from_slice(&data).map_err(|e| Error::Parse(path.to_path_buf(), e))
}

/// Every network record, by name, without the lock.
pub fn list(layout: &Layout) -> Result<Vec<Network>> {
    let dir = layout.networks();
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut v = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json") {
            v.push(read(&p)?);
        }
    }
    v.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(v)
}

/// A network by name, full id or unique id prefix, without the lock.
pub fn find(layout: &Layout, query: &str) -> Result<Option<Network>> {
    if query.is_empty() || query.contains('/') || query.starts_with('.') {
        return Ok(None);
    }
    let p = file(&layout.networks(), query);
    if p.exists() {
        return read(&p).map(Some);
    }
    let by_id: Vec<Network> = list(layout)?
        .into_iter()
        .filter(|n| n.id.starts_with(query))
        .collect();
    Ok((by_id.len() == 1).then(|| by_id.into_iter().next().expect("one")))
}

/// The networks dir under its exclusive lock; changes go through here.
pub struct Locked {
    dir: PathBuf,
    _lock: Flock<File>,
}

impl Locked {
    pub fn acquire(layout: &Layout) -> Result<Locked> {
        let dir = layout.networks();
        fs::create_dir_all(&dir).map_err(|e| Error::Create(dir.clone(), e))?;
        let lock = protocol::lockfile::exclusive(&dir.join("lock"))?;
        Ok(Locked { dir, _lock: lock })
    }

    pub fn load(&self, name: &str) -> Result<Option<Network>> {
        let p = file(&self.dir, name);
        match read(&p) {
            Ok(n) => Ok(Some(n)),
            Err(Error::Read(_, e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn save(&self, n: &Network) -> Result<()> {
        let data = serde_json::to_vec_pretty(n).expect("network serializes");
        Ok(record::write_atomic(&file(&self.dir, &n.name), &data)?)
    }

    pub fn remove(&self, name: &str) -> Result<()> {
        let p = file(&self.dir, name);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Remove(p, e)),
            _ => Ok(()),
        }
    }
}
