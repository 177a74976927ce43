//! Finding containers: listing records, resolving what the user typed (a
//! name, a full id or a unique id prefix), and reconciling a record with
//! reality when its shim is gone (killed, or the machine rebooted): such a
//! container is reported as exited, its leftover cgroup and socket removed.

use std::fs;
use std::path::PathBuf;

use oci_spec::runtime::Spec;
use protocol::paths::{self, Layout};
use protocol::record::{self, Record, Status};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such container: {0}")]
    NoSuch(String),
    #[error("container id prefix {0:?} is ambiguous: it matches {1} containers")]
    Ambiguous(String, usize),
    #[error(transparent)]
    Record(#[from] record::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Exit code recorded for a container whose shim died: the shim's death
/// SIGKILLs the container's init (PR_SET_PDEATHSIG).
pub const SHIM_DIED_EXIT: i32 = 137;
pub const SHIM_DIED: &str = "hind-shim exited unexpectedly; the container was killed";

pub struct Container {
    pub id: String,
    pub dir: PathBuf,
    pub record: Record,
}

impl Container {
    pub fn running(&self) -> bool {
        matches!(self.record.status, Status::Running | Status::Restarting)
    }

    pub fn load(layout: &Layout, id: &str) -> Result<Container> {
        let dir = layout.container(id);
        let record = Record::load(&dir)?;
        let mut c = Container {
            id: id.to_string(),
            dir,
            record,
        };
        c.reconcile(layout)?;
        Ok(c)
    }

    /// A record that says running while no shim holds the container's life
    /// lock describes a container that is gone: record that, once, under
    /// the record lock, and remove what the dead shim left behind.
    pub fn reconcile(&mut self, layout: &Layout) -> Result<()> {
        if !self.running() || record::shim_alive(&self.dir) {
            return Ok(());
        }
        let _lock = record::Lock::acquire(&self.dir)?;
        let mut r = Record::load(&self.dir)?;
        if matches!(r.status, Status::Running | Status::Restarting)
            && !record::shim_alive(&self.dir)
        {
            if let Ok(spec) = Spec::load(self.dir.join(paths::CONFIG_JSON)) {
                if let Some(p) = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone()) {
                    protocol::cgroupfs::remove(&p);
                }
            }
            let _ = fs::remove_file(layout.socket(&self.id));
            r.status = Status::Exited;
            r.pid = 0;
            r.exit_code = Some(SHIM_DIED_EXIT);
            r.error = Some(SHIM_DIED.into());
            r.finished_at = Some(protocol::time::now());
            r.save(&self.dir)?;
        }
        self.record = r;
        Ok(())
    }
}

/// Every container with a readable record, newest first.
pub fn list(layout: &Layout) -> Vec<Container> {
    let Ok(dir) = fs::read_dir(layout.containers()) else {
        return Vec::new();
    };
    let mut v: Vec<Container> = dir
        .flatten()
        .filter_map(|e| {
            let id = e.file_name().to_str()?.to_string();
            Container::load(layout, &id).ok()
        })
        .collect();
    v.sort_by(|a, b| b.record.created.cmp(&a.record.created));
    v
}

/// Resolves a name, a full id or a unique id prefix.
pub fn resolve(layout: &Layout, query: &str) -> Result<Container> {
    let valid = !query.is_empty() && !query.contains('/') && !query.starts_with('.');
    if !valid {
        return Err(Error::NoSuch(query.to_string()));
    }
    if query.len() == 64 && layout.container(query).is_dir() {
        return Container::load(layout, query);
    }
    if let Ok(id) = fs::read_to_string(layout.names().join(query)) {
        let id = id.trim();
        if layout.container(id).is_dir() {
            return Container::load(layout, id);
        }
    }
    let q = query.to_ascii_lowercase();
    let matches: Vec<String> = fs::read_dir(layout.containers())
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|id| id.starts_with(&q))
                .collect()
        })
        .unwrap_or_default();
    match matches.len() {
        0 => Err(Error::NoSuch(query.to_string())),
        1 => Container::load(layout, &matches[0]),
        n => Err(Error::Ambiguous(query.to_string(), n)),
    }
}
