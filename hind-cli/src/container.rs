//! Creating a container on disk: its id, its name claim, its directory
//! (which is also its OCI bundle) and its first record. A failed creation
//! removes everything it made.

use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use protocol::paths::{self, Layout};
use protocol::record::{self, Record, Status};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container name {0:?} is already in use")]
    NameInUse(String),
    #[error("invalid container name {0:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*")]
    BadName(String),
    #[error("create {0}")]
    Create(PathBuf, #[source] io::Error),
    #[error("read random bytes for an id")]
    Random(#[source] io::Error),
    #[error("write {0}")]
    WriteSpec(PathBuf, #[source] oci_spec::OciSpecError),
    #[error(transparent)]
    Record(#[from] record::Error),
    #[error(transparent)]
    Claim(#[from] protocol::lockfile::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

pub fn mkdir(p: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(|e| Error::Create(p.to_path_buf(), e))
}

/// 64 hex digits from the kernel's random pool, like Docker's ids.
pub fn new_id() -> Result<String> {
    let mut b = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(Error::Random)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && n.len() <= 128
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nifty", "proud", "quiet", "sharp", "tender", "witty",
];
const NOUNS: &[&str] = &[
    "babbage", "curie", "dijkstra", "euler", "fermat", "gauss", "hopper", "knuth", "lamport",
    "lovelace", "noether", "pascal", "ritchie", "shannon", "turing", "wozniak",
];

/// Claims `name` (or a generated one) for `id`: `names/<name>` is created
/// with O_EXCL, so of two CLIs racing for a name exactly one wins.
fn claim_name(layout: &Layout, id: &str, name: Option<&str>) -> Result<String> {
    mkdir(&layout.names())?;
    let try_claim = |n: &str| -> Result<bool> {
        Ok(protocol::lockfile::claim(
            &layout.names().join(n),
            id.as_bytes(),
        )?)
    };
    if let Some(n) = name {
        if !valid_name(n) {
            return Err(Error::BadName(n.to_string()));
        }
        return if try_claim(n)? {
            Ok(n.to_string())
        } else {
            Err(Error::NameInUse(n.to_string()))
        };
    }
    let seed = u64::from_str_radix(&id[..16], 16).unwrap_or(0);
    for i in 0..64u64 {
        let x = seed.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut n = format!(
            "{}_{}",
            ADJECTIVES[(x % 16) as usize],
            NOUNS[((x >> 8) % 16) as usize]
        );
        if i >= 16 {
            n.push_str(&format!("_{}", &id[..6 + (i as usize % 6)]));
        }
        if try_claim(&n)? {
            return Ok(n);
        }
    }
    let n = id[..12].to_string();
    try_claim(&n)?;
    Ok(n)
}

/// What `create` needs besides the spec.
pub struct NewContainer<'a> {
    pub name: Option<&'a str>,
    /// The image's root dir, whose owner and mode `/` gets.
    pub image_root: &'a Path,
    pub image: &'a str,
    /// The store image's id, if the image came from the store.
    pub image_id: Option<String>,
    pub command: Vec<String>,
    /// From `--stop-signal` or the image's StopSignal.
    pub stop_signal: Option<i32>,
    pub auto_remove: bool,
    pub tty: bool,
    pub open_stdin: bool,
    pub restart: record::RestartPolicy,
    pub log: record::LogOptions,
    /// The network settings; resources are allocated after `create`.
    pub network: Option<record::NetworkRecord>,
    /// `--storage-opt size=`: a disk quota on the upper dir.
    pub quota: Option<crate::quota::SizeLimit>,
    /// `-v`, `--mount`, `--tmpfs`, for inspect and the volume commands.
    pub mounts: Vec<record::MountRecord>,
    /// Privilege and device flags as typed, for inspect.
    pub security: record::SecurityRecord,
}

pub struct Created {
    pub id: String,
    pub name: String,
    /// The upper dir's project id, with `--storage-opt size=`.
    pub project_id: Option<u32>,
}

/// Makes the container's dir, its bundle (`spec` as config.json) and its
/// record.
pub fn create(layout: &Layout, n: NewContainer, id: &str, spec: &Spec) -> anyhow::Result<Created> {
    mkdir(&layout.containers())?;
    let name = claim_name(layout, id, n.name)?;
    let dir = layout.container(id);
    let mut project_id = None;
    let result = (|| -> anyhow::Result<()> {
        mkdir(&dir)?;
        for sub in [paths::UPPER, paths::WORK, paths::ROOTFS] {
            mkdir(&dir.join(sub))?;
        }
        // The overlay's root takes its owner and mode from the upper dir:
        // give it the image root's, or a non-root user could not enter `/`.
        let upper = dir.join(paths::UPPER);
        let md = fs::metadata(n.image_root).map_err(|e| Error::Create(upper.clone(), e))?;
        fs::set_permissions(&upper, fs::Permissions::from_mode(md.mode() & 0o7777))
            .map_err(|e| Error::Create(upper.clone(), e))?;
        std::os::unix::fs::chown(&upper, Some(md.uid()), Some(md.gid()))
            .map_err(|e| Error::Create(upper.clone(), e))?;
        let quota = match &n.quota {
            Some(limit) => {
                let dirs = [upper.clone(), dir.join(paths::WORK)];
                let p = crate::quota::apply(layout, id, &dirs, limit)?;
                project_id = Some(p);
                Some(record::QuotaRecord {
                    size: limit.size.clone(),
                    bytes: limit.bytes,
                    project_id: p,
                })
            }
            None => None,
        };
        let cfg = dir.join(paths::CONFIG_JSON);
        // Made 0600 first: the spec's own save creates with 0666 less the
        // umask, and then keeps the mode of the file it truncates.
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&cfg)
            .map_err(|e| Error::Create(cfg.clone(), e))?;
        spec.save(&cfg)
            .map_err(|e| Error::WriteSpec(cfg.clone(), e))?;
        Record {
            id: id.to_string(),
            name: name.clone(),
            created: protocol::time::now(),
            image: n.image.to_string(),
            image_id: n.image_id,
            command: n.command,
            status: Status::Created,
            pid: 0,
            shim_pid: 0,
            exit_code: None,
            oom_killed: false,
            started_at: None,
            finished_at: None,
            auto_remove: n.auto_remove,
            tty: n.tty,
            open_stdin: n.open_stdin,
            error: None,
            restart: n.restart,
            restart_count: 0,
            log: n.log,
            stop_signal: n.stop_signal,
            network: n.network,
            quota,
            mounts: n.mounts,
            security: n.security,
        }
        .save(&dir)?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = record::remove_files(layout, id, &name);
        if let Some(p) = project_id {
            let _ = crate::quota::release(layout, id, p);
        }
        return Err(e);
    }
    Ok(Created {
        id: id.to_string(),
        name,
        project_id,
    })
}
