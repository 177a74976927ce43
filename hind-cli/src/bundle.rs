//! Turns an image and the `run` flags into an OCI runtime-spec
//! `config.json`. This is the whole interface between the engine and the
//! create path: nothing below it looks at images or flags.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    get_default_maskedpaths, get_default_readonly_paths, BoxBuilder, Capability, LinuxBuilder,
    LinuxCapabilities, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount,
    MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use protocol::init::{
    ANN_GROUP_ADD, ANN_OVERLAY_LOWER as ANN_LOWER, ANN_OVERLAY_UPPER as ANN_UPPER,
    ANN_OVERLAY_VOLATILE, ANN_OVERLAY_WORK as ANN_WORK, ANN_VOLUME_COPY_UP,
};
use protocol::paths;

use crate::image::Image;

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("build config.json")]
    Spec(#[from] oci_spec::OciSpecError),
    #[error("invalid --user {0:?}: {1}")]
    User(String, String),
    #[error("invalid --workdir {0:?}: must be an absolute path")]
    Workdir(String),
    #[error("invalid --env {0:?}: empty name")]
    Env(String),
    #[error("--cpuset-cpus {0}: cpu {1} does not exist here (online: {2})")]
    CpusetRange(String, u32, String),
    #[error("--cpuset-cpus {0}")]
    Cpuset(String),
    #[error("--cpus {0} is more than the {1} CPUs this machine has")]
    CpusRange(f64, usize),
    #[error("--no-overlay needs a directory image, not {0}")]
    NoOverlay(String),
    #[error("no command given and the image has none")]
    NoCommand,
    #[error("unknown capability {0:?}")]
    Capability(String),
    #[error(transparent)]
    Device(#[from] crate::device::Error),
    #[error("--group-add {0:?}: {1}")]
    GroupAdd(String, protocol::user::Error),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The subset of `run` flags that shape the spec.
#[derive(Debug, Default, Clone)]
pub struct NetworkOptions {
    pub namespace: crate::net::Namespace,
    /// (host file, container path) bind mounts: hosts, resolv.conf, hostname.
    pub files: Vec<(PathBuf, &'static str)>,
}

pub struct Options {
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub tty: bool,
    pub console_size: Option<(u16, u16)>,
    pub memory: Option<i64>,
    pub cpus: Option<f64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub no_overlay: bool,
    pub cgroup_parent: String,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    /// `--rm`: the upper dir is thrown away, so it need not be durable.
    pub auto_remove: bool,
    /// `--device HOST_PATH[:CONTAINER_PATH][:PERMS]`, as typed.
    pub devices: Vec<String>,
    /// `--device-cgroup-rule "TYPE MAJOR:MINOR PERMS"`, as typed.
    pub device_cgroup_rules: Vec<String>,
    /// `--group-add GROUP`: names (in the image's /etc/group) or gids.
    pub group_add: Vec<String>,
    /// `--security-opt`: the seccomp profile and no-new-privileges.
    pub security: crate::seccomp::SecurityOpts,
    /// The network namespace and the DNS files to mount; `None` for a new
    /// namespace and the image's own files.
    pub network: Option<NetworkOptions>,
    /// `-v`, `--mount`, `--tmpfs` (volume::mounts), mounted after the
    /// defaults; one with the destination of a default replaces it.
    pub mounts: Vec<Mount>,
    /// Destinations of the volumes init fills from the image (copy-up).
    pub copy_up: Vec<PathBuf>,
    /// `--read-only`: the root is remounted read-only, mounts stay as is.
    pub read_only: bool,
}

/// Resolves `-u USER[:GROUP]` in the image's own passwd and group files.
fn resolve_user(image: &Image, spec: &str) -> Result<protocol::user::User> {
    protocol::user::resolve_with(&|f| image.read_file(f), spec)
        .map_err(|e| Error::User(spec.to_string(), e.to_string()))
}

/// The supplementary groups: those the image's /etc/group lists the user
/// in, then `--group-add` (Docker's order), without repeats. Also returns
/// the `--group-add` gids alone, which `exec -u` adds to its own user's.
fn supplementary_groups(
    image: &Image,
    user: &protocol::user::User,
    group_add: &[String],
) -> Result<(Vec<u32>, Vec<u32>)> {
    let added = protocol::user::resolve_groups(
        &|f| image.read_file(f),
        group_add.iter().map(|g| g.as_str()),
    )
    .map_err(|(g, e)| Error::GroupAdd(g, e))?;
    let mut all = user.additional_gids.clone();
    for g in &added {
        if !all.contains(g) {
            all.push(*g);
        }
    }
    Ok((all, added))
}

fn online_cpus() -> (String, Vec<u32>) {
    let s = fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let s = s.trim().to_string();
    let set = crate::units::parse_cpu_list(&s).unwrap_or_default();
    (s, set.into_iter().collect())
}

/// Turns `-e` flags into `K=V` entries: a bare `K` copies the caller's
/// value if it has one, and is dropped otherwise (as Docker does).
pub fn expand_env(flags: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(flags.len());
    for e in flags {
        match e.split_once('=') {
            Some(("", _)) => return Err(Error::Env(e.clone())),
            Some(_) => out.push(e.clone()),
            None if e.is_empty() => return Err(Error::Env(e.clone())),
            None => {
                if let Ok(v) = std::env::var(e) {
                    out.push(format!("{e}={v}"));
                }
            }
        }
    }
    Ok(out)
}

/// The capability set: Docker's default, `--cap-add`/`--cap-drop` applied
/// (adds win over drops, as in Docker), or everything with --privileged.
fn capabilities(o: &Options) -> Result<LinuxCapabilities> {
    use std::collections::BTreeSet;
    use std::str::FromStr;
    let all: BTreeSet<u8> = (0..=protocol::caps::last_cap()).collect();
    let parse = |names: &[String]| -> Result<(bool, BTreeSet<u8>)> {
        let mut set = BTreeSet::new();
        let mut any_all = false;
        for n in names {
            if n.eq_ignore_ascii_case("ALL") {
                any_all = true;
            } else {
                set.insert(protocol::caps::number(n).ok_or_else(|| Error::Capability(n.clone()))?);
            }
        }
        Ok((any_all, set))
    };
    let (add_all, add) = parse(&o.cap_add)?;
    let (drop_all, drop) = parse(&o.cap_drop)?;
    let mut set: BTreeSet<u8> = if o.privileged || add_all {
        all.clone()
    } else {
        protocol::caps::DOCKER_DEFAULT
            .iter()
            .filter_map(|n| protocol::caps::number(n))
            .collect()
    };
    if !o.privileged {
        if drop_all {
            set.clear();
        }
        set.retain(|c| !drop.contains(c));
        set.extend(add);
    }
    let caps: oci_spec::runtime::Capabilities = set
        .iter()
        .filter_map(|c| Capability::from_str(protocol::caps::NAMES[*c as usize]).ok())
        .collect();
    Ok(LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(oci_spec::runtime::Capabilities::new())
        .ambient(oci_spec::runtime::Capabilities::new())
        .build()?)
}

/// The DNS files bind-mounted after the default mounts.
fn network_mounts(mut mounts: Vec<Mount>, net: Option<&NetworkOptions>) -> Result<Vec<Mount>> {
    for (src, dest) in net.map(|n| n.files.as_slice()).unwrap_or_default() {
        mounts.push(
            MountBuilder::default()
                .destination(PathBuf::from(dest))
                .typ("bind")
                .source(src.clone())
                .options(vec!["rbind".to_string(), "rprivate".to_string()])
                .build()?,
        );
    }
    Ok(mounts)
}

/// Docker's default mounts: the kernel filesystems every container gets.
fn default_mounts() -> Result<Vec<Mount>> {
    let m = |dest: &str, kind: &str, source: &str, opts: &[&str]| {
        MountBuilder::default()
            .destination(PathBuf::from(dest))
            .typ(kind)
            .source(PathBuf::from(source))
            .options(opts.iter().map(|o| o.to_string()).collect::<Vec<_>>())
            .build()
    };
    Ok(vec![
        m("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        m(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        m(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        m(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        m(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        m(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
    ])
}

pub fn build(id: &str, dir: &Path, image: &Image, o: &Options) -> Result<Spec> {
    if o.command.is_empty() {
        return Err(Error::NoCommand);
    }
    let cfg = image.config();
    // Flags override the image's config, as in Docker.
    let user = o.user.clone().or_else(|| cfg.and_then(|c| c.user.clone()));
    let resolved = match user.as_deref().filter(|u| !u.is_empty()) {
        Some(u) => resolve_user(image, u)?,
        // No user: root, with the groups the image lists root in, as in
        // Docker (whose runc resolves the empty user as uid 0).
        None => protocol::user::User {
            uid: 0,
            gid: 0,
            home: "/root".to_string(),
            additional_gids: resolve_user(image, "0")
                .map(|u| u.additional_gids)
                .unwrap_or_default(),
        },
    };
    let (uid, gid) = (resolved.uid, resolved.gid);
    let home = resolved.home.clone();
    let (additional_gids, group_add) = supplementary_groups(image, &resolved, &o.group_add)?;
    let cwd = o
        .workdir
        .clone()
        .or_else(|| cfg.and_then(|c| c.working_dir.clone()))
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(Error::Workdir(cwd));
    }
    let hostname = o.hostname.clone().unwrap_or_else(|| id[..12].to_string());
    let image_env = cfg.map(|c| c.env.as_slice()).unwrap_or_default();
    let mut env = Vec::with_capacity(image_env.len() + o.env.len() + 4);
    if !image_env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    protocol::env::merge(&mut env, image_env);
    protocol::env::merge(&mut env, &[format!("HOSTNAME={hostname}")]);
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    if o.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    protocol::env::merge(&mut env, &expand_env(&o.env)?);

    let caps = capabilities(o)?;
    // Seccomp rules that need a capability follow the final bounding set
    // (Docker's rule), so the profile is resolved after --cap-add/drop.
    let bounding: Vec<String> = caps
        .bounding()
        .iter()
        .flatten()
        .map(|c| c.to_string())
        .collect();
    let seccomp = crate::seccomp::for_container(&o.security.seccomp, &bounding, o.privileged)?;
    let mut process = ProcessBuilder::default()
        .terminal(o.tty)
        .user(
            UserBuilder::default()
                .uid(uid)
                .gid(gid)
                .additional_gids(additional_gids)
                .build()?,
        )
        .args(o.command.clone())
        .env(env)
        .cwd(PathBuf::from(&cwd))
        .no_new_privileges(o.security.no_new_privileges)
        .capabilities(caps)
        .build()?;
    if let (true, Some((rows, cols))) = (o.tty, o.console_size) {
        process.set_console_size(Some(
            BoxBuilder::default()
                .height(rows as u64)
                .width(cols as u64)
                .build()?,
        ));
    }

    // Host devices given with --device: a node in the container's /dev
    // and a cgroup rule that lets it be opened (after the defaults, so a
    // later allow wins over the first deny-all).
    let mut device_rules = crate::device::default_rules(o.privileged)?;
    // --privileged: the host's device nodes too (its rules allow them all).
    let mut device_nodes = if o.privileged {
        crate::device::host_devices()
    } else {
        Vec::with_capacity(o.devices.len())
    };
    for flag in &o.devices {
        let (node, rule) = crate::device::from_host(flag)?;
        device_nodes.retain(|d| d.path() != node.path());
        device_nodes.push(node);
        device_rules.push(rule);
    }
    for flag in &o.device_cgroup_rules {
        device_rules.push(crate::device::parse_rule(flag)?);
    }
    let mut resources = LinuxResourcesBuilder::default().devices(device_rules);
    if let Some(m) = o.memory {
        resources = resources.memory(LinuxMemoryBuilder::default().limit(m).build()?);
    }
    let (online_str, online) = online_cpus();
    let mut cpu = LinuxCpuBuilder::default();
    let mut any_cpu = false;
    if let Some(c) = o.cpus {
        if !online.is_empty() && c > online.len() as f64 {
            return Err(Error::CpusRange(c, online.len()));
        }
        let period = o.cpu_period.unwrap_or(100_000);
        cpu = cpu.period(period).quota((c * period as f64).round() as i64);
        any_cpu = true;
    } else {
        if let Some(q) = o.cpu_quota {
            cpu = cpu.quota(q);
            any_cpu = true;
        }
        if let Some(p) = o.cpu_period {
            cpu = cpu.period(p);
            any_cpu = true;
        }
    }
    if let Some(set) = &o.cpuset_cpus {
        let cpus = crate::units::parse_cpu_list(set).map_err(Error::Cpuset)?;
        if let Some(bad) = cpus.iter().find(|c| !online.contains(c)) {
            return Err(Error::CpusetRange(set.clone(), *bad, online_str));
        }
        cpu = cpu.cpus(set.clone());
        any_cpu = true;
    }
    if any_cpu {
        resources = resources.cpu(cpu.build()?);
    }
    if let Some(p) = o.pids_limit {
        // Docker: 0 or -1 means unlimited.
        let limit = if p <= 0 { -1 } else { p };
        resources = resources.pids(LinuxPidsBuilder::default().limit(limit).build()?);
    }

    let mut namespaces = [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Cgroup,
    ]
    .into_iter()
    .map(|t| LinuxNamespaceBuilder::default().typ(t).build())
    .collect::<std::result::Result<Vec<_>, _>>()?;
    // The network namespace: new and empty, the host's (none listed), or
    // one the engine prepared (a bridged container's) or shares.
    let net_ns = LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network);
    match o.network.as_ref().map(|n| &n.namespace) {
        None | Some(crate::net::Namespace::New) => namespaces.push(net_ns.build()?),
        Some(crate::net::Namespace::Host) => {}
        Some(crate::net::Namespace::Path(p)) => namespaces.push(net_ns.path(p.clone()).build()?),
    }

    let parent = o.cgroup_parent.trim_end_matches('/');
    let cgroups_path = if parent.is_empty() {
        format!("/{id}")
    } else if parent.starts_with('/') {
        format!("{parent}/{id}")
    } else {
        format!("/{parent}/{id}")
    };
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(cgroups_path))
        .resources(resources.build()?)
        .devices(device_nodes)
        .masked_paths(if o.privileged {
            Vec::new()
        } else {
            get_default_maskedpaths()
        })
        .readonly_paths(if o.privileged {
            Vec::new()
        } else {
            get_default_readonly_paths()
        })
        .build()?;
    linux.set_seccomp(seccomp);

    let mut annotations = HashMap::new();
    if !group_add.is_empty() {
        let gids: Vec<String> = group_add.iter().map(u32::to_string).collect();
        annotations.insert(ANN_GROUP_ADD.to_string(), gids.join(","));
    }
    if !o.copy_up.is_empty() {
        annotations.insert(
            ANN_VOLUME_COPY_UP.to_string(),
            serde_json::to_string(&o.copy_up).expect("paths serialize"),
        );
    }
    let root = if o.no_overlay {
        match image {
            Image::Dir(p) => RootBuilder::default()
                .path(p.clone())
                .readonly(o.read_only)
                .build()?,
            Image::Host => return Err(Error::NoOverlay("the host root /".into())),
            Image::Tar { file, .. } => {
                return Err(Error::NoOverlay(format!("the tar {}", file.display())))
            }
            Image::Stored(s) => {
                return Err(Error::NoOverlay(format!(
                    "the stored image {}",
                    s.record.id
                )))
            }
        }
    } else {
        let lowers: Vec<String> = image
            .lowers()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        annotations.insert(ANN_LOWER.to_string(), lowers.join(":"));
        annotations.insert(
            ANN_UPPER.to_string(),
            dir.join(paths::UPPER).display().to_string(),
        );
        annotations.insert(
            ANN_WORK.to_string(),
            dir.join(paths::WORK).display().to_string(),
        );
        if o.auto_remove {
            annotations.insert(ANN_OVERLAY_VOLATILE.to_string(), "true".into());
        }
        RootBuilder::default()
            .path(PathBuf::from(paths::ROOTFS))
            .readonly(o.read_only)
            .build()?
    };
    let mut mounts = network_mounts(default_mounts()?, o.network.as_ref())?;
    mounts.retain(|m| !o.mounts.iter().any(|u| u.destination() == m.destination()));
    mounts.extend(o.mounts.iter().cloned());
    // Parents before children, as Docker orders them: a volume on /etc
    // must not hide the /etc/hosts bind made before it.
    mounts.sort_by_key(|m| m.destination().components().count());

    Ok(SpecBuilder::default()
        .version("1.2.0")
        .root(root)
        .process(process)
        .hostname(hostname)
        .mounts(mounts)
        .linux(linux)
        .annotations(annotations)
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_flags_expand() {
        std::env::set_var("HIND_TEST_ENV_COPY", "v");
        let e = expand_env(&[
            "A=2".into(),
            "HIND_TEST_ENV_COPY".into(),
            "HIND_TEST_UNSET_X".into(),
        ])
        .unwrap();
        assert_eq!(e, vec!["A=2", "HIND_TEST_ENV_COPY=v"]);
        assert!(expand_env(&["=v".into()]).is_err());
    }
}
