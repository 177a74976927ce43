//! The container's devices as the bundle states them: the device cgroup
//! rules every container gets, and `--device HOST_PATH[:CONTAINER_PATH][:PERMS]`
//! (a host device node recreated in the container's `/dev`, plus the rule
//! that lets the container open it), `--device-cgroup-rule "c 1:3 rwm"`,
//! and the host's whole `/dev` under `--privileged`.
//!
//! The rules go into `linux.resources.devices`; the shim applies them to the
//! container's cgroup (the v1 `devices` controller, or a BPF device program
//! on cgroup v2). The nodes go into `linux.devices`; hind-init creates them.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;

use nix::sys::stat::{major, minor};
use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--device {0:?}: expected HOST_PATH[:CONTAINER_PATH][:PERMS]")]
    Syntax(String),
    #[error("--device {0:?}: invalid permissions {1:?} (a combination of r, w and m)")]
    Perms(String, String),
    #[error("--device {0:?}: the path in the container {1:?} is not absolute")]
    Relative(String, String),
    #[error("--device {0:?}: stat {1}")]
    Stat(String, PathBuf, #[source] io::Error),
    #[error("--device {0:?}: {1} is not a character or block device")]
    NotDevice(String, PathBuf),
    #[error("--device-cgroup-rule {0:?}: expected \"TYPE MAJOR:MINOR PERMS\" (type a, b or c; numbers or *; perms some of rwm)")]
    RuleSyntax(String),
    #[error("build device rule")]
    Spec(#[from] oci_spec::OciSpecError),
}

pub type Result<T> = std::result::Result<T, Error>;

/// One parsed `--device` flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub host: PathBuf,
    pub container: PathBuf,
    /// Some of `rwm`.
    pub perms: String,
}

/// A cgroup device permission string: `r`, `w`, `m`, each at most once.
fn valid_perms(p: &str) -> bool {
    !p.is_empty()
        && p.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        && p.chars().enumerate().all(|(i, c)| !p[..i].contains(c))
}

/// Splits a `--device` value the way Docker does: `HOST`, `HOST:PERMS`,
/// `HOST:CONTAINER` or `HOST:CONTAINER:PERMS`; the container path defaults
/// to the host path and the permissions to `rwm`.
pub fn parse(flag: &str) -> Result<Mapping> {
    let parts: Vec<&str> = flag.split(':').collect();
    let (host, container, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        // Docker reads a second field that is a permission string as one.
        [h, p] if valid_perms(p) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => return Err(Error::Syntax(flag.to_string())),
    };
    if host.is_empty() || container.is_empty() {
        return Err(Error::Syntax(flag.to_string()));
    }
    if !valid_perms(perms) {
        return Err(Error::Perms(flag.to_string(), perms.to_string()));
    }
    if !container.starts_with('/') {
        return Err(Error::Relative(flag.to_string(), container.to_string()));
    }
    Ok(Mapping {
        host: PathBuf::from(host),
        container: PathBuf::from(container),
        perms: perms.to_string(),
    })
}

/// Stats the host node (following symlinks, so `/dev/disk/by-id/...`
/// works) and returns the node to create in the container, with the host
/// node's type, numbers, permission bits and owner, and the rule that
/// allows it.
pub fn from_host(flag: &str) -> Result<(LinuxDevice, LinuxDeviceCgroup)> {
    let m = parse(flag)?;
    let md = std::fs::metadata(&m.host).map_err(|e| Error::Stat(flag.into(), m.host.clone(), e))?;
    let ft = md.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return Err(Error::NotDevice(flag.into(), m.host));
    };
    let (maj, min) = (major(md.rdev()) as i64, minor(md.rdev()) as i64);
    let node = LinuxDeviceBuilder::default()
        .path(m.container.clone())
        .typ(typ)
        .major(maj)
        .minor(min)
        .file_mode(md.mode() & 0o7777)
        .uid(md.uid())
        .gid(md.gid())
        .build()?;
    Ok((node, rule(true, typ, Some(maj), Some(min), &m.perms)?))
}

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> Result<LinuxDeviceCgroup> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access(access);
    if let Some(n) = major {
        b = b.major(n);
    }
    if let Some(n) = minor {
        b = b.minor(n);
    }
    Ok(b.build()?)
}

/// One `--device-cgroup-rule`, Docker's syntax: `c 1:3 rwm`, `b 7:* r`,
/// `a *:* m`; an allow rule added after the defaults.
pub fn parse_rule(flag: &str) -> Result<LinuxDeviceCgroup> {
    let bad = || Error::RuleSyntax(flag.to_string());
    let parts: Vec<&str> = flag.split_whitespace().collect();
    let [typ, numbers, perms] = parts[..] else {
        return Err(bad());
    };
    let typ = match typ {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return Err(bad()),
    };
    let (maj, min) = numbers.split_once(':').ok_or_else(bad)?;
    let number = |n: &str| -> Result<Option<i64>> {
        match n {
            "*" => Ok(None),
            n => n
                .parse::<u32>()
                .map(|v| Some(i64::from(v)))
                .map_err(|_| bad()),
        }
    };
    if !valid_perms(perms) {
        return Err(bad());
    }
    rule(true, typ, number(maj)?, number(min)?, perms)
}

/// Every device node under the host's `/dev`, for `--privileged`
/// (Docker gives a privileged container the host's devices). Skipped as
/// runc's `HostDevices` does: the pts, shm, mqueue and fd trees, which the
/// container mounts its own of, and `/dev/console`, which is its terminal.
pub fn host_devices() -> Vec<LinuxDevice> {
    let mut out = Vec::new();
    walk_dev(std::path::Path::new("/dev"), &mut out);
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
}

fn walk_dev(dir: &std::path::Path, out: &mut Vec<LinuxDevice>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = md.file_type();
        if ft.is_dir() {
            let name = e.file_name();
            if !matches!(
                name.to_str(),
                Some("pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev")
            ) {
                walk_dev(&path, out);
            }
            continue;
        }
        let typ = if ft.is_char_device() {
            LinuxDeviceType::C
        } else if ft.is_block_device() {
            LinuxDeviceType::B
        } else {
            continue;
        };
        if path == std::path::Path::new("/dev/console") {
            continue;
        }
        let node = LinuxDeviceBuilder::default()
            .path(path)
            .typ(typ)
            .major(major(md.rdev()) as i64)
            .minor(minor(md.rdev()) as i64)
            .file_mode(md.mode() & 0o7777)
            .uid(md.uid())
            .gid(md.gid())
            .build();
        if let Ok(n) = node {
            out.push(n);
        }
    }
}

/// The device cgroup of every container, Docker's: deny everything, then
/// allow creating any node (`mknod` alone opens nothing) and using the
/// devices a userland expects. It is moby's `oci.DefaultLinuxSpec`
/// (`oci/defaults.go`: null, zero, full via runc, random, urandom, tty,
/// console) plus what runc appends to every container
/// (`libcontainer/specconv/spec_linux.go`, `AllowedDevices`: mknod of any
/// char and block node, `/dev/pts/*`, `/dev/ptmx`, and `/dev/net/tun`,
/// kept there for compatibility). `--privileged` allows every device.
pub fn default_rules(privileged: bool) -> Result<Vec<LinuxDeviceCgroup>> {
    use LinuxDeviceType::{A, B, C};
    if privileged {
        return Ok(vec![rule(true, A, None, None, "rwm")?]);
    }
    let mut rules = vec![
        rule(false, A, None, None, "rwm")?,
        rule(true, C, None, None, "m")?,
        rule(true, B, None, None, "m")?,
    ];
    for (maj, min) in [
        (1, Some(3)),    // null
        (1, Some(5)),    // zero
        (1, Some(7)),    // full
        (1, Some(8)),    // random
        (1, Some(9)),    // urandom
        (5, Some(0)),    // tty
        (5, Some(1)),    // console
        (5, Some(2)),    // ptmx
        (136, None),     // pts/*
        (10, Some(200)), // net/tun
    ] {
        rules.push(rule(true, C, Some(maj), min, "rwm")?);
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn m(host: &str, container: &str, perms: &str) -> Mapping {
        Mapping {
            host: host.into(),
            container: container.into(),
            perms: perms.into(),
        }
    }

    #[test]
    fn docker_syntax() {
        assert_eq!(
            parse("/dev/fuse").unwrap(),
            m("/dev/fuse", "/dev/fuse", "rwm")
        );
        assert_eq!(
            parse("/dev/fuse:r").unwrap(),
            m("/dev/fuse", "/dev/fuse", "r")
        );
        assert_eq!(
            parse("/dev/zero:/dev/myzero").unwrap(),
            m("/dev/zero", "/dev/myzero", "rwm")
        );
        assert_eq!(
            parse("/dev/zero:/dev/myzero:mr").unwrap(),
            m("/dev/zero", "/dev/myzero", "mr")
        );
        assert!(matches!(parse("/dev/zero:/x:rwx"), Err(Error::Perms(..))));
        assert!(matches!(parse("/dev/zero:/x:rr"), Err(Error::Perms(..))));
        assert!(matches!(parse("/dev/zero:/x:"), Err(Error::Perms(..))));
        assert!(matches!(parse("/dev/zero:dev/x"), Err(Error::Relative(..))));
        assert!(matches!(parse("a:b:c:d"), Err(Error::Syntax(_))));
        assert!(matches!(parse(":/x"), Err(Error::Syntax(_))));
    }

    #[test]
    fn host_node_is_copied() {
        let (node, rule) = from_host("/dev/null:/dev/mynull:rw").unwrap();
        assert_eq!(node.path(), Path::new("/dev/mynull"));
        assert_eq!(
            (node.typ(), node.major(), node.minor()),
            (LinuxDeviceType::C, 1, 3)
        );
        assert_eq!(rule.to_string(), "c 1:3 rw");
        assert!(rule.allow());
        assert!(matches!(
            from_host("/etc/hostname"),
            Err(Error::NotDevice(..))
        ));
        assert!(matches!(
            from_host("/nonexistent-hind-device"),
            Err(Error::Stat(..))
        ));
    }

    #[test]
    fn cgroup_rules() {
        let r = |s: &str| parse_rule(s).map(|r| r.to_string());
        assert_eq!(r("c 1:3 rwm").unwrap(), "c 1:3 rwm");
        assert_eq!(r("b 7:* r").unwrap(), "b 7:* r");
        assert_eq!(r("a *:* m").unwrap(), "a *:* m");
        assert!(parse_rule("c 1:3 rwm").unwrap().allow());
        for bad in [
            "",
            "c 1:3",
            "x 1:3 r",
            "c 1 r",
            "c 1:3 rx",
            "c -1:3 r",
            "c 1:3 r extra",
        ] {
            assert!(
                matches!(parse_rule(bad), Err(Error::RuleSyntax(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn host_dev_walk() {
        let devs = host_devices();
        let null = devs
            .iter()
            .find(|d| d.path() == Path::new("/dev/null"))
            .expect("/dev/null among the host's devices");
        assert_eq!((null.major(), null.minor()), (1, 3));
        assert!(devs
            .iter()
            .all(|d| !d.path().starts_with("/dev/pts") && d.path() != Path::new("/dev/console")));
    }

    #[test]
    fn defaults_deny_first() {
        let r: Vec<String> = default_rules(false)
            .unwrap()
            .iter()
            .map(|r| format!("{} {r}", if r.allow() { "allow" } else { "deny" }))
            .collect();
        assert_eq!(r[0], "deny a *:* rwm");
        assert!(r.contains(&"allow c *:* m".to_string()));
        assert!(r.contains(&"allow c 136:* rwm".to_string()));
        assert_eq!(r.len(), 13);
        let p = default_rules(true).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].to_string(), "a *:* rwm");
    }
}
