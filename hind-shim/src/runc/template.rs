//! The starter config.json `hind-runc spec` writes: the same shape as
//! `runc spec` (a read-only `rootfs`, `sh` on a terminal as root with a
//! minimal capability set, the standard /proc, /dev and /sys mounts, every
//! device denied in the cgroup, and new namespaces for everything but the
//! user namespace), with hind's own hostname. It is a valid spec as it
//! stands, given a rootfs.

use serde_json::{json, Value};

/// The capabilities the starter process keeps: the ones `runc spec` keeps.
const CAPABILITIES: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// Kernel interfaces hidden from the container (bind-mounted over with
/// /dev/null or an empty tmpfs): they leak host information or expose
/// host-wide controls.
const MASKED_PATHS: [&str; 10] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

/// Kernel interfaces the container may read but not write.
const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn mount(destination: &str, kind: &str, source: &str, options: &[&str]) -> Value {
    let mut m = json!({"destination": destination, "type": kind, "source": source});
    if !options.is_empty() {
        m["options"] = json!(options);
    }
    m
}

/// The config.json `hind-runc spec` writes.
pub fn default_spec() -> Value {
    json!({
        "ociVersion": oci_spec::runtime::VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": CAPABILITIES,
                "effective": CAPABILITIES,
                "permitted": CAPABILITIES,
                "ambient": CAPABILITIES
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "hind",
        "mounts": [
            mount("/proc", "proc", "proc", &[]),
            mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
            mount(
                "/dev/pts",
                "devpts",
                "devpts",
                &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
            ),
            mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            ),
            mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
            mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
            mount(
                "/sys/fs/cgroup",
                "cgroup",
                "cgroup",
                &["nosuid", "noexec", "nodev", "relatime", "ro"],
            ),
        ],
        "linux": {
            "resources": {
                "devices": [{"allow": false, "access": "rwm"}]
            },
            "namespaces": [
                {"type": "pid"},
                {"type": "network"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
                {"type": "cgroup"}
            ],
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{Capability, Spec};

    #[test]
    fn round_trips_and_is_valid() {
        let v = default_spec();
        let spec: Spec = serde_json::from_value(v.clone()).unwrap();
        super::super::validate::check(&spec).unwrap();
        // Nothing is lost or added on the way through the typed spec.
        let back = serde_json::to_value(&spec).unwrap();
        let again: Spec = serde_json::from_value(back).unwrap();
        assert_eq!(spec, again);

        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.args().as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(p.terminal(), Some(true));
        assert_eq!(p.no_new_privileges(), Some(true));
        let caps = p.capabilities().as_ref().unwrap();
        assert!(caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::Kill));
        assert!(caps.inheritable().is_none());
        assert_eq!(spec.hostname().as_deref(), Some("hind"));
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
        assert_eq!(spec.mounts().as_ref().unwrap().len(), 7);
        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(linux.namespaces().as_ref().unwrap().len(), 6);
        assert_eq!(linux.masked_paths().as_ref().unwrap().len(), 10);
    }
}
