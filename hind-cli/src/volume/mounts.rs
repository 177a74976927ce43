//! `run -v`, `--mount` and `--tmpfs`: parsed with Docker's rules into OCI
//! mounts for config.json and into the records `inspect` and `volume rm`
//! read. [`plan`] only reads (bind sources must exist); [`prepare`]
//! creates the volumes, under the volumes lock, which it keeps until the
//! container's record exists.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{Mount, MountBuilder};
use protocol::paths::Layout;
use protocol::record::MountRecord;

use crate::units;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid volume specification {0:?}")]
    Spec(String),
    #[error("invalid mount config for type \"{0}\": {1}")]
    Config(String, String),
    #[error("invalid mount path {0:?}: mount path must be absolute")]
    Relative(String),
    #[error("invalid mount path {0:?}: a container path cannot be /")]
    Root(String),
    #[error("invalid mode {1:?} in {0:?}")]
    Mode(String, String),
    #[error("invalid --mount {0:?}: {1}")]
    MountFlag(String, String),
    #[error("invalid --tmpfs {0:?}: {1}")]
    Tmpfs(String, String),
    #[error("duplicate mount point: {0}")]
    Duplicate(String),
    #[error("create volume {0}")]
    Volume(String, #[source] super::Error),
    #[error(transparent)]
    Store(#[from] super::Error),
    #[error("--volumes-from {0:?}: expected CONTAINER[:ro|:rw]")]
    VolumesFromSyntax(String),
    #[error("--volumes-from {0:?}")]
    VolumesFrom(String, #[source] crate::store::Error),
    #[error("--volumes-from {0:?}: the bind source {1} holds a ':', which -v cannot say")]
    VolumesFromColon(String, String),
    #[error("read random bytes for a volume name")]
    Random(#[source] crate::container::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, PartialEq)]
enum Source {
    Bind(PathBuf),
    Volume { name: String, anonymous: bool },
    Tmpfs,
}

/// One mount as asked for, before any path is looked at.
#[derive(Debug, Clone, PartialEq)]
struct Request {
    source: Source,
    dest: String,
    readonly: bool,
    /// The mode as typed (Docker's `Mode`).
    mode: String,
    /// For binds: `rprivate` unless asked otherwise.
    propagation: Option<String>,
    /// `nocopy` / `volume-nocopy`: no copy-up from the image.
    nocopy: bool,
    /// tmpfs options for the kernel (`size=64m`, `mode=1777`, `exec`...).
    tmpfs: Vec<String>,
    /// Labels for a volume made by this mount (`volume-label`).
    labels: BTreeMap<String, String>,
    flag: &'static str,
}

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// A container path: absolute, not `/`, normalised as Docker cleans it.
fn dest(raw: &str, kind: &str) -> Result<String> {
    if raw.is_empty() {
        return Err(Error::Config(
            kind.into(),
            "field Target must not be empty".into(),
        ));
    }
    if !raw.starts_with('/') {
        return Err(Error::Relative(raw.into()));
    }
    let mut out = PathBuf::from("/");
    for c in Path::new(raw).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    if out == Path::new("/") {
        return Err(Error::Root(raw.into()));
    }
    Ok(out.display().to_string())
}

/// `-v SRC:DEST[:MODE]`, `-v NAME:DEST[:MODE]` or `-v DEST`.
fn parse_volume(raw: &str) -> Result<Request> {
    let parts: Vec<&str> = raw.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => (None, *d, ""),
        [s, d] => (Some(*s), *d, ""),
        [s, d, m] => (Some(*s), *d, *m),
        _ => return Err(Error::Spec(raw.into())),
    };
    if src.is_some_and(str::is_empty) || dst.is_empty() {
        return Err(Error::Spec(raw.into()));
    }
    let source = match src {
        None => Source::Volume {
            name: String::new(),
            anonymous: true,
        },
        Some(s) if s.starts_with('/') => Source::Bind(PathBuf::from(s)),
        Some(s) => {
            if !super::valid_name(s) {
                return Err(Error::Volume(s.into(), super::Error::BadName(s.into())));
            }
            Source::Volume {
                name: s.into(),
                anonymous: false,
            }
        }
    };
    let kind = if matches!(source, Source::Bind(_)) {
        "bind"
    } else {
        "volume"
    };
    let mut r = Request {
        dest: dest(dst, kind)?,
        source,
        readonly: false,
        mode: mode.into(),
        propagation: None,
        nocopy: false,
        tmpfs: Vec::new(),
        labels: BTreeMap::new(),
        flag: "volume",
    };
    let mut rw_set = false;
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        let bad = || Error::Mode(raw.into(), m.into());
        match m {
            "ro" | "rw" if rw_set => return Err(bad()),
            "ro" | "rw" => {
                rw_set = true;
                r.readonly = m == "ro";
            }
            // SELinux relabelling: there is no SELinux here.
            "z" | "Z" => {}
            "nocopy" if kind == "volume" => r.nocopy = true,
            p if PROPAGATIONS.contains(&p) && kind == "bind" && r.propagation.is_none() => {
                r.propagation = Some(p.into())
            }
            _ => return Err(bad()),
        }
    }
    Ok(r)
}

/// `true`, `1` or nothing mean yes (Docker's `readonly`, `volume-nocopy`).
fn flag_bool(raw: &str, key: &str, v: Option<&str>) -> Result<bool> {
    match v {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(v) => Err(Error::MountFlag(
            raw.into(),
            format!("invalid value {v:?} for {key}"),
        )),
    }
}

/// `--mount type=bind|volume|tmpfs,source=..,target=..,readonly,...`.
fn parse_mount(raw: &str) -> Result<Request> {
    let mut kind = "volume".to_string();
    let (mut src, mut dst) = (String::new(), String::new());
    let (mut readonly, mut nocopy) = (false, false);
    let mut propagation = None;
    let mut tmpfs = Vec::new();
    let mut labels = BTreeMap::new();
    for field in raw.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (field, None),
        };
        let val = || {
            v.map(str::to_string)
                .ok_or_else(|| Error::MountFlag(raw.into(), format!("{k} needs a value")))
        };
        match k {
            "type" => kind = val()?,
            "source" | "src" => src = val()?,
            "target" | "destination" | "dst" => dst = val()?,
            "readonly" | "ro" => readonly = flag_bool(raw, k, v)?,
            "volume-nocopy" => nocopy = flag_bool(raw, k, v)?,
            "bind-propagation" => {
                let p = val()?;
                if !PROPAGATIONS.contains(&p.as_str()) {
                    return Err(Error::MountFlag(
                        raw.into(),
                        format!("invalid bind-propagation {p:?}"),
                    ));
                }
                propagation = Some(p);
            }
            "volume-label" => {
                let l = val()?;
                let (lk, lv) = l.split_once('=').unwrap_or((&l, ""));
                labels.insert(lk.to_string(), lv.to_string());
            }
            "tmpfs-size" => {
                let s = units::parse_size(&val()?)
                    .map_err(|e| Error::MountFlag(raw.into(), format!("tmpfs-size: {e}")))?;
                tmpfs.push(format!("size={s}"));
            }
            "tmpfs-mode" => {
                let m = val()?;
                u32::from_str_radix(&m, 8).map_err(|_| {
                    Error::MountFlag(raw.into(), format!("invalid tmpfs-mode {m:?}"))
                })?;
                tmpfs.push(format!("mode={m}"));
            }
            // Docker accepts and ignores it on Linux.
            "consistency" => {}
            _ => {
                return Err(Error::MountFlag(
                    raw.into(),
                    format!("unknown option {k:?}"),
                ))
            }
        }
    }
    let dest = dest(&dst, &kind)?;
    let only = |what: &str, set: bool, types: &str| -> Result<()> {
        if set && !types.contains(kind.as_str()) {
            return Err(Error::Config(
                kind.clone(),
                format!("{what} is not allowed"),
            ));
        }
        Ok(())
    };
    only("bind-propagation", propagation.is_some(), "bind")?;
    only("volume options", nocopy || !labels.is_empty(), "volume")?;
    only("tmpfs options", !tmpfs.is_empty(), "tmpfs")?;
    let source = match kind.as_str() {
        "bind" if src.is_empty() => {
            return Err(Error::Config(kind, "field Source must not be empty".into()))
        }
        "bind" if !src.starts_with('/') => {
            return Err(Error::Config(
                kind,
                format!("invalid mount path {src:?}: bind source must be absolute"),
            ))
        }
        "bind" => Source::Bind(PathBuf::from(&src)),
        "volume" if src.is_empty() => Source::Volume {
            name: String::new(),
            anonymous: true,
        },
        "volume" if !super::valid_name(&src) => {
            return Err(Error::Volume(src.clone(), super::Error::BadName(src)))
        }
        "volume" => Source::Volume {
            name: src,
            anonymous: false,
        },
        "tmpfs" if !src.is_empty() => {
            return Err(Error::Config(kind, "field Source must be empty".into()))
        }
        "tmpfs" => Source::Tmpfs,
        other => {
            return Err(Error::MountFlag(
                raw.into(),
                format!("unknown type {other:?} (use bind, volume or tmpfs)"),
            ))
        }
    };
    Ok(Request {
        source,
        dest,
        readonly,
        mode: String::new(),
        propagation,
        nocopy,
        tmpfs,
        labels,
        flag: "mount",
    })
}

/// tmpfs options the kernel takes with a value, and the flags mount(2)
/// knows (parsed by the shim).
const TMPFS_KEYS: &[&str] = &[
    "size",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "mpol",
];
const TMPFS_FLAGS: &[&str] = &[
    "ro",
    "rw",
    "exec",
    "noexec",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "sync",
    "async",
    "dirsync",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
];

/// `--tmpfs PATH[:OPTIONS]`.
fn parse_tmpfs(raw: &str) -> Result<Request> {
    let (d, opts) = raw.split_once(':').unwrap_or((raw, ""));
    let dest = dest(d, "tmpfs")?;
    let mut tmpfs = Vec::new();
    let mut readonly = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o.split_once('=') {
            Some((k, _)) if TMPFS_KEYS.contains(&k) => tmpfs.push(o.to_string()),
            None if o == "ro" || o == "rw" => readonly = o == "ro",
            None if TMPFS_FLAGS.contains(&o) => tmpfs.push(o.to_string()),
            _ => return Err(Error::Tmpfs(raw.into(), format!("unknown option {o:?}"))),
        }
    }
    Ok(Request {
        source: Source::Tmpfs,
        dest,
        readonly,
        mode: String::new(),
        propagation: None,
        nocopy: false,
        tmpfs,
        labels: BTreeMap::new(),
        flag: "tmpfs",
    })
}

/// What `run` needs of the mount flags.
#[derive(Debug, Default)]
pub struct Plan {
    /// OCI mounts, parents before children.
    pub mounts: Vec<Mount>,
    /// Destinations of volumes to fill from the image (copy-up).
    pub copy_up: Vec<PathBuf>,
    /// For the container's record.
    pub records: Vec<MountRecord>,
    /// Volumes to create if missing: name and labels.
    volumes: Vec<(String, BTreeMap<String, String>)>,
}

impl Plan {
    /// Whether a mount of the plan is at `path` (normalised as mount
    /// destinations are).
    pub fn has_destination(&self, path: &str) -> bool {
        dest(path, "volume").is_ok_and(|d| self.records.iter().any(|r| r.destination == d))
    }
}

/// `--volumes-from CONTAINER[:ro|:rw]`: the other container's volumes and
/// binds (not its tmpfs mounts) at the same paths, as `-v` specs, except
/// where `plan` mounts something already (an explicit flag wins). The
/// mode is the flag's, else each mount's own; a volume is named, so it is
/// never removed with this container.
pub fn volumes_from(layout: &Layout, plan: &Plan, flags: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut taken: Vec<String> = Vec::new();
    for flag in flags {
        let (query, mode) = match flag.rsplit_once(':') {
            Some((q, m @ ("ro" | "rw"))) => (q, Some(m)),
            Some(_) => return Err(Error::VolumesFromSyntax(flag.clone())),
            None => (flag.as_str(), None),
        };
        let other = crate::store::resolve(layout, query)
            .map_err(|e| Error::VolumesFrom(flag.clone(), e))?;
        for m in &other.record.mounts {
            let source = match m.kind.as_str() {
                "volume" => m.name.clone().unwrap_or_default(),
                "bind" => m.source.clone(),
                _ => continue,
            };
            if source.is_empty() || plan.has_destination(&m.destination) {
                continue;
            }
            if source.contains(':') {
                return Err(Error::VolumesFromColon(flag.clone(), source));
            }
            // Two sources for one path: the first --volumes-from wins.
            if taken.contains(&m.destination) {
                continue;
            }
            taken.push(m.destination.clone());
            let mode = mode.unwrap_or(if m.rw { "rw" } else { "ro" });
            out.push(format!("{source}:{}:{mode}", m.destination));
        }
    }
    Ok(out)
}

/// The image's `Volumes` that no flag mounts something at: each gets an
/// anonymous volume (`-v PATH`), filled from the image, as Docker does.
/// Paths that are not valid mount points (relative, `/`) are skipped.
pub fn image_volumes(plan: &Plan, volumes: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in volumes {
        let Ok(d) = dest(v, "volume") else { continue };
        if !plan.has_destination(&d) && !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// Parses the flags and checks what can be checked without changing
/// anything: paths, names, bind sources (which must exist).
pub fn plan(
    layout: &Layout,
    volumes: &[String],
    mounts: &[String],
    tmpfs: &[String],
) -> Result<Plan> {
    let mut reqs = Vec::new();
    for v in volumes {
        reqs.push(parse_volume(v)?);
    }
    for m in mounts {
        reqs.push(parse_mount(m)?);
    }
    for t in tmpfs {
        reqs.push(parse_tmpfs(t)?);
    }
    let mut seen = std::collections::BTreeSet::new();
    for r in &reqs {
        if !seen.insert(r.dest.clone()) {
            return Err(Error::Duplicate(r.dest.clone()));
        }
    }
    // Parents first (Docker sorts by depth), so `/a/b` lands in `/a`'s mount.
    reqs.sort_by_key(|r| Path::new(&r.dest).components().count());

    let mut plan = Plan::default();
    for mut r in reqs {
        let mut opts: Vec<String> = Vec::new();
        let (kind, source, name) = match &mut r.source {
            Source::Bind(p) => {
                // Docker's -v would create a missing dir; --mount refuses.
                // hind refuses both: a typo should not make host dirs.
                if fs::symlink_metadata(&*p).is_err() {
                    return Err(Error::Config(
                        "bind".into(),
                        format!("bind source path does not exist: {}", p.display()),
                    ));
                }
                opts.push("rbind".into());
                ("bind", p.clone(), None)
            }
            Source::Volume { name, anonymous } => {
                let mut labels = r.labels.clone();
                if *anonymous {
                    *name = crate::container::new_id().map_err(Error::Random)?;
                    // Docker's marker, which `volume prune` goes by.
                    labels.insert(super::ANONYMOUS_LABEL.into(), String::new());
                }
                plan.volumes.push((name.clone(), labels));
                opts.push("rbind".into());
                if !r.nocopy {
                    plan.copy_up.push(PathBuf::from(&r.dest));
                }
                let data = layout.volumes().join(&*name).join(super::DATA);
                ("volume", data, Some(name.clone()))
            }
            Source::Tmpfs => {
                // Docker's defaults for --tmpfs and --mount type=tmpfs; the
                // user's options come after and win (`exec`).
                opts.extend(["noexec", "nosuid", "nodev"].map(String::from));
                opts.extend(r.tmpfs.iter().cloned());
                ("tmpfs", PathBuf::from("tmpfs"), None)
            }
        };
        if r.readonly {
            opts.push("ro".into());
        }
        let propagation = match kind {
            "tmpfs" => String::new(),
            "bind" => r.propagation.clone().unwrap_or_else(|| "rprivate".into()),
            _ => "rprivate".into(),
        };
        if !propagation.is_empty() {
            opts.push(propagation.clone());
        }
        plan.mounts.push(
            MountBuilder::default()
                .destination(PathBuf::from(&r.dest))
                .typ(if kind == "tmpfs" { "tmpfs" } else { "bind" })
                .source(source.clone())
                .options(opts)
                .build()
                .map_err(|e| Error::Spec(e.to_string()))?,
        );
        let anonymous = matches!(
            r.source,
            Source::Volume {
                anonymous: true,
                ..
            }
        );
        plan.records.push(MountRecord {
            kind: kind.into(),
            name,
            source: if kind == "tmpfs" {
                String::new()
            } else {
                source.display().to_string()
            },
            destination: r.dest.clone(),
            mode: r.mode.clone(),
            rw: !r.readonly,
            propagation: if kind == "bind" {
                propagation
            } else {
                String::new()
            },
            anonymous,
            flag: r.flag.into(),
            options: r.tmpfs.join(","),
        });
    }
    Ok(plan)
}

/// The volumes of a plan, created; holds the volumes lock until dropped
/// (after the container's record is written).
pub struct Prepared {
    _lock: Option<super::Lock>,
    /// Volumes this run made: removed again if the run fails.
    pub created: Vec<String>,
}

/// Creates the plan's missing volumes under the volumes lock.
pub fn prepare(layout: &Layout, plan: &Plan) -> Result<Prepared> {
    if plan.volumes.is_empty() {
        return Ok(Prepared {
            _lock: None,
            created: Vec::new(),
        });
    }
    let lock = super::lock(layout)?;
    let mut created = Vec::new();
    for (name, labels) in &plan.volumes {
        match super::create(layout, &lock, name, labels) {
            Ok((_, true)) => created.push(name.clone()),
            Ok((_, false)) => {}
            Err(e) => {
                for n in &created {
                    let _ = super::remove(layout, &lock, n);
                }
                return Err(Error::Volume(name.clone(), e));
            }
        }
    }
    Ok(Prepared {
        _lock: Some(lock),
        created,
    })
}

impl Prepared {
    /// Lets `volume rm` and `prune` in again: the record exists (or the
    /// run failed and [`Prepared::undo`] ran).
    pub fn release(&mut self) {
        self._lock = None;
    }

    /// Removes the volumes this run made (the container was not created).
    pub fn undo(&mut self, layout: &Layout) {
        // A second flock of the same file by this process would wait for
        // the first: let go of it before remove_unused takes it again.
        self._lock = None;
        super::remove_unused(layout, &self.created);
        self.created.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flags() {
        let r = parse_volume("/h:/c:ro,z").unwrap();
        assert_eq!(r.source, Source::Bind("/h".into()));
        assert_eq!(r.dest, "/c");
        assert!(r.readonly);
        let r = parse_volume("data:/c/../d/").unwrap();
        assert_eq!(
            r.source,
            Source::Volume {
                name: "data".into(),
                anonymous: false
            }
        );
        assert_eq!(r.dest, "/d");
        assert!(matches!(
            parse_volume("/c").unwrap().source,
            Source::Volume {
                anonymous: true,
                ..
            }
        ));
        assert!(matches!(parse_volume("/h:rel"), Err(Error::Relative(_))));
        assert!(matches!(parse_volume("/h:/"), Err(Error::Root(_))));
        assert!(matches!(parse_volume("/h:/c:xx"), Err(Error::Mode(..))));
        assert!(matches!(parse_volume("/h:/c:ro,rw"), Err(Error::Mode(..))));
        assert!(matches!(parse_volume("./x:/c"), Err(Error::Volume(..))));
        assert!(matches!(parse_volume("a:b:c:d"), Err(Error::Spec(_))));
    }

    #[test]
    fn mount_flags() {
        let r = parse_mount("type=bind,source=/h,target=/c,readonly").unwrap();
        assert_eq!(r.source, Source::Bind("/h".into()));
        assert!(r.readonly);
        let r = parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap();
        assert_eq!(r.tmpfs, vec!["size=1048576", "mode=1770"]);
        let r = parse_mount("target=/v").unwrap();
        assert!(matches!(
            r.source,
            Source::Volume {
                anonymous: true,
                ..
            }
        ));
        assert!(matches!(
            parse_mount("type=bind,target=/c"),
            Err(Error::Config(..))
        ));
        assert!(matches!(
            parse_mount("type=tmpfs,target=/c,volume-nocopy"),
            Err(Error::Config(..))
        ));
        assert!(matches!(
            parse_mount("type=x,target=/c"),
            Err(Error::MountFlag(..))
        ));
    }

    #[test]
    fn tmpfs_flags() {
        let r = parse_tmpfs("/t:size=64m,mode=1777,exec").unwrap();
        assert_eq!(r.tmpfs, vec!["size=64m", "mode=1777", "exec"]);
        assert!(parse_tmpfs("/t:bogus=1").is_err());
        assert!(parse_tmpfs("t").is_err());
    }

    #[test]
    fn plan_orders_and_rejects_duplicates() {
        let layout = Layout::new(Path::new("/nonexistent-root"));
        let p = plan(&layout, &["/:/a/b".into()], &[], &["/a".into()]).unwrap();
        let dests: Vec<_> = p.mounts.iter().map(|m| m.destination().clone()).collect();
        assert_eq!(dests, vec![PathBuf::from("/a"), PathBuf::from("/a/b")]);
        assert!(matches!(
            plan(&layout, &["/:/a".into()], &[], &["/a".into()]),
            Err(Error::Duplicate(_))
        ));
        assert!(matches!(
            plan(&layout, &["/nonexistent-hind-src:/a".into()], &[], &[]),
            Err(Error::Config(..))
        ));
    }
}
