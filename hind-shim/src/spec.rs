//! Reads an OCI bundle's `config.json` (oci-spec) and turns it into what the
//! create path needs: the flat [`InitConfig`] for hind-init, the clone flags
//! of the new namespaces, and the cgroup path and resources. This is the only
//! place that interprets the runtime spec, so `hind run` and a runc-style
//! caller get the same container from the same bundle.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxDeviceType, LinuxResources, PosixRlimitType, Spec};
use protocol::init::{
    Capabilities, Device, InitConfig, Mount, Overlay, Process, Rlimit, ANN_GROUP_ADD,
    ANN_OVERLAY_LOWER as ANN_LOWER, ANN_OVERLAY_UPPER as ANN_UPPER, ANN_OVERLAY_VOLATILE,
    ANN_OVERLAY_WORK as ANN_WORK, ANN_VOLUME_COPY_UP,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("load {0}")]
    Load(PathBuf, #[source] oci_spec::OciSpecError),
    #[error("config.json: {0} is missing")]
    Missing(&'static str),
    #[error("config.json: annotation {0} is required with {1}")]
    OverlayIncomplete(&'static str, &'static str),
    #[error("config.json: mount destination {0} is not absolute")]
    RelativeMount(PathBuf),
    #[error("config.json: annotation {0}")]
    Annotation(&'static str, #[source] serde_json::Error),
    #[error("config.json")]
    Seccomp(#[from] crate::seccomp::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A bundle, read and checked.
pub struct Bundle {
    pub init: InitConfig,
    pub clone_flags: CloneFlags,
    /// Existing namespaces to join instead of making new ones (a path in
    /// the spec: `--network container:ID`, or a netns the engine set up).
    pub join: Vec<(CloneFlags, PathBuf)>,
    /// A new user namespace's maps (inside, outside, length).
    pub uid_mappings: Vec<(u32, u32, u32)>,
    pub gid_mappings: Vec<(u32, u32, u32)>,
    pub cgroups_path: PathBuf,
    pub resources: LinuxResources,
    /// The container's `--group-add` gids (annotation `run.hind.group-add`),
    /// which `exec -u USER` adds to USER's own groups.
    pub group_add: Vec<u32>,
}

/// The devices every container gets (OCI config-linux.md, "Default Devices").
fn default_devices() -> Vec<Device> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(p, major, minor)| Device {
        path: p.into(),
        kind: 'c',
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// Reads `bundle/config.json`. `seccomp_cache` is where compiled seccomp
/// filters are kept between containers (none: compile every time).
pub fn load(bundle: &Path, id: &str, seccomp_cache: Option<&Path>) -> Result<Bundle> {
    let path = bundle.join("config.json");
    let spec = Spec::load(&path).map_err(|e| Error::Load(path.clone(), e))?;
    from_spec(&spec, bundle, id, seccomp_cache)
}

pub fn from_spec(
    spec: &Spec,
    bundle: &Path,
    id: &str,
    seccomp_cache: Option<&Path>,
) -> Result<Bundle> {
    let p = spec.process().as_ref().ok_or(Error::Missing("process"))?;
    let root = spec.root().as_ref().ok_or(Error::Missing("root"))?;
    let linux = spec.linux().as_ref().ok_or(Error::Missing("linux"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };

    let process = process(p, linux.seccomp().as_ref(), seccomp_cache)?;

    let mut clone_flags = CloneFlags::empty();
    let mut join = Vec::new();
    for ns in linux.namespaces().iter().flatten() {
        let flag = CloneFlags::from_bits_truncate(ns.typ() as i32);
        match ns.path() {
            // Joined right after clone (setns(2)), a pid namespace just
            // before it (see `launch::spawn`).
            Some(path) => join.push((flag, path.clone())),
            None => clone_flags |= flag,
        }
    }
    let id_map = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<(u32, u32, u32)> {
        m.iter()
            .flatten()
            .map(|m| (m.container_id(), m.host_id(), m.size()))
            .collect()
    };

    let ann = spec.annotations().clone().unwrap_or_default();
    // Volume mounts whose empty source init fills from the image first.
    let copy_up: Vec<PathBuf> = match ann.get(ANN_VOLUME_COPY_UP) {
        Some(v) => serde_json::from_str(v).map_err(|e| Error::Annotation(ANN_VOLUME_COPY_UP, e))?,
        None => Vec::new(),
    };
    let mut mounts = Vec::new();
    for m in spec.mounts().iter().flatten() {
        if !m.destination().is_absolute() {
            return Err(Error::RelativeMount(m.destination().clone()));
        }
        let kind = m.typ().clone().unwrap_or_else(|| "none".into());
        let (flags, propagation, data) = parse_options(m.options().iter().flatten());
        let flags = if kind == "bind" {
            flags | MsFlags::MS_BIND
        } else {
            flags
        };
        mounts.push(Mount {
            destination: m.destination().clone(),
            kind: if kind == "bind" { "none".into() } else { kind },
            source: m.source().clone().unwrap_or_default(),
            flags: flags.bits(),
            propagation: propagation.bits(),
            data,
            copy_up: copy_up.contains(m.destination()),
        });
    }

    let mut devices = default_devices();
    for d in linux.devices().iter().flatten() {
        devices.retain(|x| x.path != *d.path());
        devices.push(Device {
            path: d.path().clone(),
            kind: match d.typ() {
                LinuxDeviceType::B => 'b',
                LinuxDeviceType::P => 'p',
                _ => 'c',
            },
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }

    let overlay = match ann.get(ANN_LOWER) {
        None => None,
        Some(lower) => Some(Overlay {
            lower: lower.split(':').map(PathBuf::from).collect(),
            upper: ann
                .get(ANN_UPPER)
                .ok_or(Error::OverlayIncomplete(ANN_UPPER, ANN_LOWER))?
                .into(),
            work: ann
                .get(ANN_WORK)
                .ok_or(Error::OverlayIncomplete(ANN_WORK, ANN_LOWER))?
                .into(),
            volatile: ann.get(ANN_OVERLAY_VOLATILE).is_some_and(|v| v == "true"),
        }),
    };

    // Always applied recursively, so "rshared" and "shared" mean the same.
    let propagation = match linux
        .rootfs_propagation()
        .as_deref()
        .map(|p| p.trim_start_matches('r'))
    {
        Some("shared") => MsFlags::MS_SHARED,
        Some("slave") => MsFlags::MS_SLAVE,
        Some("private") => MsFlags::MS_PRIVATE,
        Some("unbindable") => MsFlags::MS_UNBINDABLE,
        _ => MsFlags::empty(),
    };

    let init = InitConfig {
        id: id.to_string(),
        process,
        rootfs,
        rootfs_readonly: root.readonly().unwrap_or(false),
        overlay,
        rootfs_propagation: propagation.bits(),
        hostname: spec.hostname().clone(),
        domainname: spec.domainname().clone(),
        mounts,
        devices,
        masked_paths: linux
            .masked_paths()
            .iter()
            .flatten()
            .map(PathBuf::from)
            .collect(),
        readonly_paths: linux
            .readonly_paths()
            .iter()
            .flatten()
            .map(PathBuf::from)
            .collect(),
        sysctl: linux
            .sysctl()
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        loopback_up: clone_flags.contains(CloneFlags::CLONE_NEWNET),
        new_cgroup_ns: clone_flags.contains(CloneFlags::CLONE_NEWCGROUP),
        cgroup_join: Vec::new(),
        hooks: protocol::init::InitHooks {
            create_container: hooks(spec, |h| h.create_container()),
            start_container: hooks(spec, |h| h.start_container()),
            ..Default::default()
        },
    };
    let clone_flags = clone_flags - CloneFlags::CLONE_NEWCGROUP;
    Ok(Bundle {
        init,
        clone_flags,
        join,
        uid_mappings: id_map(linux.uid_mappings()),
        gid_mappings: id_map(linux.gid_mappings()),
        cgroups_path: linux
            .cgroups_path()
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/hind/{id}"))),
        resources: linux.resources().clone().unwrap_or_default(),
        group_add: ann
            .get(ANN_GROUP_ADD)
            .map(|v| v.split(',').filter_map(|g| g.trim().parse().ok()).collect())
            .unwrap_or_default(),
    })
}

/// The container process of a spec's `process` (also what `hind-runc exec
/// --process FILE` reads), with its seccomp filter compiled.
pub fn process(
    p: &oci_spec::runtime::Process,
    seccomp: Option<&oci_spec::runtime::LinuxSeccomp>,
    seccomp_cache: Option<&Path>,
) -> Result<Process> {
    let user = p.user();
    Ok(Process {
        args: p.args().clone().unwrap_or_default(),
        env: p.env().clone().unwrap_or_default(),
        cwd: p.cwd().clone(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
        terminal: p.terminal().unwrap_or(false),
        console_size: p
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16)),
        no_new_privileges: p.no_new_privileges().unwrap_or(false),
        rlimits: p
            .rlimits()
            .iter()
            .flatten()
            .map(|r| Rlimit {
                resource: rlimit_number(r.typ()),
                soft: r.soft(),
                hard: r.hard(),
            })
            .collect(),
        oom_score_adj: p.oom_score_adj(),
        capabilities: p.capabilities().as_ref().map(|c| {
            let nums = |set: &Option<oci_spec::runtime::Capabilities>| -> Vec<u8> {
                let mut v: Vec<u8> = set
                    .iter()
                    .flatten()
                    .filter_map(|cap| protocol::caps::number(&cap.to_string()))
                    .collect();
                v.sort_unstable();
                v
            };
            Capabilities {
                bounding: nums(c.bounding()),
                effective: nums(c.effective()),
                permitted: nums(c.permitted()),
                inheritable: nums(c.inheritable()),
                ambient: nums(c.ambient()),
            }
        }),
        // Compiled here, not in init: init gets a ready program, and the
        // shim caches it for the next container with the same profile.
        seccomp: seccomp
            .map(|s| crate::seccomp::filter(s, seccomp_cache))
            .transpose()?,
        kill_with_parent: true,
        preserve_fds: 0,
        apparmor_profile: p
            .apparmor_profile()
            .clone()
            .filter(|_| lsm_present("AppArmor", "/sys/kernel/security/apparmor")),
        selinux_label: p
            .selinux_label()
            .clone()
            .filter(|_| lsm_present("SELinux", "/sys/fs/selinux/enforce")),
    })
}

/// Whether the host runs the LSM whose presence `marker` shows; a label
/// for one it lacks is ignored with a warning, as the spec allows.
fn lsm_present(name: &str, marker: &str) -> bool {
    let present = Path::new(marker).exists();
    if !present {
        log::warn!("config.json: this host has no {name}; its label is ignored");
    }
    present
}

/// Every namespace the spec gives the container, new or joined by path.
pub fn namespace_flags(spec: &Spec) -> CloneFlags {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .fold(CloneFlags::empty(), |acc, ns| {
            acc | CloneFlags::from_bits_truncate(ns.typ() as i32)
        })
}

/// The hooks of one kind, in the flat form hind-init runs.
pub fn hooks(
    spec: &Spec,
    kind: impl Fn(&oci_spec::runtime::Hooks) -> &Option<Vec<oci_spec::runtime::Hook>>,
) -> Vec<protocol::init::Hook> {
    spec.hooks()
        .as_ref()
        .and_then(|h| kind(h).clone())
        .unwrap_or_default()
        .iter()
        .map(|h| protocol::init::Hook {
            path: h.path().clone(),
            args: h.args().clone().unwrap_or_default(),
            env: h.env().clone().unwrap_or_default(),
            timeout: h.timeout().map(|t| t.max(0) as u32),
        })
        .collect()
}

/// Splits OCI mount options into mount(2) flags, propagation flags and the
/// data string the filesystem parses itself.
pub fn parse_options<'a>(opts: impl Iterator<Item = &'a String>) -> (MsFlags, MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut prop = MsFlags::empty();
    let mut data = Vec::new();
    for o in opts {
        let (set, clear) = match o.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            p @ ("private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
            | "unbindable" | "runbindable") => {
                prop |= match p.trim_start_matches('r') {
                    "private" => MsFlags::MS_PRIVATE,
                    "shared" => MsFlags::MS_SHARED,
                    "slave" => MsFlags::MS_SLAVE,
                    _ => MsFlags::MS_UNBINDABLE,
                };
                if p.starts_with('r') {
                    prop |= MsFlags::MS_REC;
                }
                continue;
            }
            other => {
                data.push(other.to_string());
                continue;
            }
        };
        flags = (flags | set) & !clear;
    }
    (flags, prop, data.join(","))
}

fn rlimit_number(t: PosixRlimitType) -> u32 {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split() {
        let o: Vec<String> = ["nosuid", "ro", "mode=755", "rprivate", "size=65536k"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (f, p, d) = parse_options(o.iter());
        assert_eq!(f, MsFlags::MS_NOSUID | MsFlags::MS_RDONLY);
        assert_eq!(p, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(d, "mode=755,size=65536k");
    }
}
