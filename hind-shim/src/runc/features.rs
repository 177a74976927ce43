//! What `hind-runc features` prints: the OCI runtime features document
//! (runtime-spec features.md), listing what hind actually does with a
//! config, not everything the spec can express. Each list here mirrors the
//! code that implements it (`crate::spec` for mount options,
//! `crate::seccomp` for seccomp, `protocol::caps` for capabilities), and
//! the tests tie the lists back to that code.

use std::path::Path;

use serde_json::{json, Value};

use crate::seccomp::Host;

/// Mount options `crate::spec::parse_options` turns into mount(2) flags or
/// propagation.
const FLAG_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "relatime",
    "remount",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "unbindable",
];

/// Generic options that reach mount(2) as data, where the VFS itself
/// parses them for every filesystem (fs/fs_context.c, the common sb
/// flags). Filesystem-specific data (`mode=755`) is not listed, as
/// features.md says.
const DATA_OPTIONS: &[&str] = &["lazytime", "nolazytime"];

/// The seccomp actions `crate::seccomp` compiles (SCMP_ACT_NOTIFY is
/// refused: it needs a seccomp agent).
const SECCOMP_ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

const SECCOMP_OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

/// Flags a profile may carry. WAIT_KILLABLE_RECV is accepted and dropped
/// (it only concerns a notify listener), so it is known, not supported.
const SECCOMP_KNOWN_FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// Flags passed on to seccomp(2).
const SECCOMP_SUPPORTED_FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_TSYNC",
];

/// The architectures a filter compiled on `host` covers: the native ABI
/// and the compat ABIs of its kernel. Others listed in a profile have no
/// effect, so they are not claimed.
fn seccomp_archs(host: Host) -> &'static [&'static str] {
    match host {
        Host::X86_64 => &["SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
        Host::Aarch64 => &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
    }
}

/// The features document, with AppArmor and SELinux reported as the host
/// has them (hind writes a profile or label only through the kernel's
/// interface, so without the LSM there is nothing to apply).
pub fn features() -> Value {
    features_for(
        Path::new("/sys/kernel/security/apparmor").exists(),
        Path::new("/sys/fs/selinux/enforce").exists(),
    )
}

fn features_for(apparmor: bool, selinux: bool) -> Value {
    let mut mount_options: Vec<&str> = FLAG_OPTIONS.iter().chain(DATA_OPTIONS).copied().collect();
    mount_options.sort_unstable();
    let capabilities: Vec<String> = protocol::caps::NAMES
        .iter()
        .map(|n| format!("CAP_{n}"))
        .collect();
    let host = Host::native().ok();
    let seccomp = match host {
        Some(host) => json!({
            "enabled": true,
            "actions": SECCOMP_ACTIONS,
            "operators": SECCOMP_OPERATORS,
            "archs": seccomp_archs(host),
            "knownFlags": SECCOMP_KNOWN_FLAGS,
            "supportedFlags": SECCOMP_SUPPORTED_FLAGS,
        }),
        // No syscall tables for this machine: no filter can be compiled.
        None => json!({"enabled": false}),
    };
    json!({
        "ociVersionMin": "1.0.0",
        // The newest spec version the parser (oci-spec) knows.
        "ociVersionMax": oci_spec::runtime::VERSION,
        "hooks": [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ],
        "mountOptions": mount_options,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": capabilities,
            "cgroup": {
                "v1": true,
                "v2": true,
                // A "slice:prefix:name" cgroupsPath is mapped to a cgroupfs
                // path; systemd itself is never asked for a scope.
                "systemd": false,
                "systemdUser": false,
                "rdma": false
            },
            "seccomp": seccomp,
            "apparmor": {"enabled": apparmor},
            "selinux": {"enabled": selinux},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "run.hind.version": env!("CARGO_PKG_VERSION")
        },
        // hind's own annotations (overlay layers, copy-up volumes, extra
        // groups) change what the runtime mounts and grants.
        "potentiallyUnsafeConfigAnnotations": ["run.hind."]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        Features, LinuxNamespaceType, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag,
        LinuxSeccompOperator,
    };

    fn strings(v: &Value) -> Vec<String> {
        serde_json::from_value(v.clone()).unwrap()
    }

    #[test]
    fn parses_as_the_oci_features_type() {
        let f: Features = serde_json::from_value(features_for(true, false)).unwrap();
        assert_eq!(f.oci_version_min(), "1.0.0");
        assert_eq!(f.hooks().as_ref().unwrap().len(), 6);
        let linux = f.linux().as_ref().unwrap();
        let ns = linux.namespaces().as_ref().unwrap();
        assert_eq!(ns.len(), 7);
        assert!(!ns.contains(&LinuxNamespaceType::Time));
        let cg = linux.cgroup().as_ref().unwrap();
        assert_eq!(
            (cg.v1(), cg.v2(), cg.systemd()),
            (&Some(true), &Some(true), &Some(false))
        );
        assert_eq!(linux.apparmor().as_ref().unwrap().enabled(), &Some(true));
        assert_eq!(linux.selinux().as_ref().unwrap().enabled(), &Some(false));
        let sc = linux.seccomp().as_ref().unwrap();
        assert_eq!(sc.enabled(), &Some(true));
        assert!(!sc
            .actions()
            .as_ref()
            .unwrap()
            .contains(&LinuxSeccompAction::ScmpActNotify));
    }

    #[test]
    fn capabilities_are_protocols() {
        let f = features();
        let caps = strings(&f["linux"]["capabilities"]);
        assert_eq!(caps.len(), protocol::caps::NAMES.len());
        assert_eq!(caps[0], "CAP_CHOWN");
        assert!(caps
            .iter()
            .all(|c| protocol::caps::number(c).is_some() && c.starts_with("CAP_")));
    }

    #[test]
    fn mount_options_are_what_parse_options_knows() {
        for o in FLAG_OPTIONS {
            let one = [o.to_string()];
            let (flags, prop, data) = crate::spec::parse_options(one.iter());
            assert!(data.is_empty(), "{o} is passed as data");
            // Each does something (clearing options may leave no bit set
            // from an empty start, so only the setting ones are checked).
            if !matches!(
                *o,
                "async"
                    | "atime"
                    | "dev"
                    | "diratime"
                    | "exec"
                    | "nomand"
                    | "norelatime"
                    | "nostrictatime"
                    | "rw"
                    | "suid"
            ) {
                assert!(!(flags | prop).is_empty(), "{o} sets nothing");
            }
        }
        for o in DATA_OPTIONS {
            let one = [o.to_string()];
            assert_eq!(crate::spec::parse_options(one.iter()).2, *o);
        }
        let listed = strings(&features()["mountOptions"]);
        let mut sorted = listed.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(listed, sorted);
    }

    #[test]
    fn seccomp_lists_compile() {
        let f = features();
        let sc = &f["linux"]["seccomp"];
        let profile = |v: Value| -> LinuxSeccomp { serde_json::from_value(v).unwrap() };
        let archs = strings(&sc["archs"]);
        for a in strings(&sc["actions"]) {
            let s = profile(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": archs,
                "syscalls": [{"names": ["getpid"], "action": a}]
            }));
            crate::seccomp::filter(&s, None).unwrap_or_else(|e| panic!("{a}: {e}"));
        }
        let notify = profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_NOTIFY"}]
        }));
        assert!(crate::seccomp::filter(&notify, None).is_err());
        for op in strings(&sc["operators"]) {
            serde_json::from_value::<LinuxSeccompOperator>(json!(op)).unwrap();
            let s = profile(json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                              "args": [{"index": 0, "value": 8, "valueTwo": 8, "op": op}]}]
            }));
            crate::seccomp::filter(&s, None).unwrap_or_else(|e| panic!("{op}: {e}"));
        }
        let known = strings(&sc["knownFlags"]);
        for flag in &known {
            serde_json::from_value::<LinuxSeccompFilterFlag>(json!(flag)).unwrap();
        }
        let supported = strings(&sc["supportedFlags"]);
        assert!(supported.iter().all(|s| known.contains(s)));
        for flag in supported {
            let s = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [flag]}));
            assert_ne!(crate::seccomp::flags(&s), 0, "{flag} is dropped");
        }
    }
}
