//! Loading and checking a bundle's `config.json` for `hind-runc`: the file
//! is parsed field by field so that a type error names the field it is in,
//! and the parsed spec is checked against the rules of the OCI runtime spec
//! (config.md, config-linux.md) and the few stricter ones runc adds, so an
//! invalid bundle is refused before anything is created, with the field
//! named. What the create path does with a valid spec is `crate::spec`'s
//! business, not this module's.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Hook, LinuxNamespaceType, Spec};
use serde_path_to_error::Segment;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("read {}", .0.display())]
    Read(PathBuf, #[source] io::Error),
    /// Malformed JSON or a value of the wrong type: the file, the field
    /// (absent when the error is not inside one), then serde's message.
    #[error("{}{}", file.display(), field.as_deref().map(|f| format!(": {f}")).unwrap_or_default())]
    Parse {
        file: PathBuf,
        field: Option<String>,
        #[source]
        source: serde_json::Error,
    },
    #[error("config.json: {0} is missing")]
    Missing(&'static str),
    #[error("config.json: ociVersion {0:?} is not a 1.x version")]
    OciVersion(String),
    #[error("config.json: process.args must not be empty")]
    NoArgs,
    #[error("config.json: process.cwd {0:?} is not an absolute path")]
    RelativeCwd(PathBuf),
    #[error("config.json: mounts[{index}].destination {path:?} is not an absolute path")]
    RelativeMount { index: usize, path: PathBuf },
    #[error("config.json: process.rlimits[{index}]: duplicate rlimit type {kind}")]
    DuplicateRlimit { index: usize, kind: String },
    #[error("config.json: hooks.{kind}[{index}].path {path:?} is not an absolute path")]
    RelativeHook {
        kind: &'static str,
        index: usize,
        path: PathBuf,
    },
    #[error("config.json: hooks.{kind}[{index}].timeout {timeout} is not greater than zero")]
    HookTimeout {
        kind: &'static str,
        index: usize,
        timeout: i64,
    },
    #[error("config.json: linux.namespaces[{index}]: duplicate namespace type {kind}")]
    DuplicateNamespace { index: usize, kind: &'static str },
    #[error("config.json: linux.namespaces[{index}]: namespace type {kind} is not supported")]
    UnsupportedNamespace { index: usize, kind: &'static str },
    #[error("config.json: linux.namespaces[{index}].path {path:?} is not an absolute path")]
    RelativeNamespacePath { index: usize, path: PathBuf },
    /// A setting that only makes sense (or is only safe) inside a namespace
    /// of the container, with no such namespace in `linux.namespaces`.
    #[error("config.json: {field} requires a {namespace} namespace in linux.namespaces")]
    NeedsNamespace {
        field: String,
        namespace: &'static str,
    },
    #[error("config.json: a new user namespace requires linux.{0}")]
    NoMappings(&'static str),
    #[error("config.json: linux.sysctl {0:?} is not in a namespace of the container (it would change the host)")]
    HostSysctl(String),
    #[error("config.json: linux.sysctl {0:?} conflicts with the hostname field")]
    HostnameSysctl(String),
    #[error("config.json: linux.seccomp.syscalls[{0}].names is empty")]
    SeccompNoNames(usize),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Reads and parses `path` (a bundle's config.json) and [`check`]s it.
/// Errors name `path` as given.
pub fn load(path: &Path) -> Result<Spec> {
    let data = fs::read(path).map_err(|e| Error::Read(path.to_path_buf(), e))?;
    let parse_error = |field: Option<String>, source| Error::Parse {
        file: path.to_path_buf(),
        field,
        source,
    };
    let mut de = serde_json::Deserializer::from_slice(&data);
    let spec: Spec = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        // An error outside any field (bad syntax at the top, say) has a
        // path of nothing or only unknown segments: no field to name.
        let known = !e.path().iter().all(|s| matches!(s, Segment::Unknown));
        let field = known.then(|| e.path().to_string());
        parse_error(field, e.into_inner())
    })?;
    // Anything after the object is an error too, as for serde_json::from_slice.
    de.end().map_err(|e| parse_error(None, e))?;
    check(&spec)?;
    Ok(spec)
}

/// The spec's name of a namespace type (`LinuxNamespaceType`'s `Display`
/// gives the kernel's short names, `mnt` and `net`).
fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// The namespace a sysctl lives in, or the error for one that lives in
/// none the container can have (runc's rule: such a sysctl would be
/// written on the host). The key may use `/` as its separator, as
/// sysctl(8) allows.
fn sysctl_namespace(key: &str) -> Result<LinuxNamespaceType> {
    let k = key.replace('/', ".");
    // System V IPC and POSIX message queues (ipc_namespaces(7)).
    let ipc = ["kernel.msg", "kernel.sem", "kernel.shm", "fs.mqueue."];
    if k.starts_with("net.") {
        Ok(LinuxNamespaceType::Network)
    } else if ipc.iter().any(|p| k.starts_with(p)) {
        Ok(LinuxNamespaceType::Ipc)
    } else if k == "kernel.domainname" {
        Ok(LinuxNamespaceType::Uts)
    } else if k == "kernel.hostname" {
        Err(Error::HostnameSysctl(key.to_string()))
    } else {
        Err(Error::HostSysctl(key.to_string()))
    }
}

fn check_hooks(kind: &'static str, hooks: &Option<Vec<Hook>>) -> Result<()> {
    for (index, h) in hooks.iter().flatten().enumerate() {
        // config.md, "POSIX-platform Hooks": path MUST be absolute; a
        // timeout, if set, MUST be greater than zero.
        if !h.path().is_absolute() {
            return Err(Error::RelativeHook {
                kind,
                index,
                path: h.path().clone(),
            });
        }
        if let Some(timeout) = h.timeout().filter(|t| *t <= 0) {
            return Err(Error::HookTimeout {
                kind,
                index,
                timeout,
            });
        }
    }
    Ok(())
}

/// Checks what the runtime spec (and runc) require of a config beyond its
/// types; the first violation is returned.
pub fn check(spec: &Spec) -> Result<()> {
    // config.md, "Specification version": SemVer, and a 1.x runtime takes
    // only 1.x configs.
    let version = spec.version();
    if version.is_empty() {
        return Err(Error::Missing("ociVersion"));
    }
    if version.split('.').next() != Some("1") {
        return Err(Error::OciVersion(version.clone()));
    }

    let root = spec.root().as_ref().ok_or(Error::Missing("root"))?;
    if root.path().as_os_str().is_empty() {
        return Err(Error::Missing("root.path"));
    }

    let process = spec.process().as_ref().ok_or(Error::Missing("process"))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::NoArgs);
    }
    if !process.cwd().is_absolute() {
        return Err(Error::RelativeCwd(process.cwd().clone()));
    }
    // config.md, "POSIX process": duplicate rlimit types are an error.
    let mut rlimits = Vec::new();
    for (index, r) in process.rlimits().iter().flatten().enumerate() {
        if rlimits.contains(&r.typ()) {
            return Err(Error::DuplicateRlimit {
                index,
                kind: r.typ().to_string(),
            });
        }
        rlimits.push(r.typ());
    }

    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(Error::RelativeMount {
                index,
                path: m.destination().clone(),
            });
        }
    }

    if let Some(h) = spec.hooks() {
        #[allow(deprecated)] // prestart is deprecated, still run, so still checked
        check_hooks("prestart", h.prestart())?;
        check_hooks("createRuntime", h.create_runtime())?;
        check_hooks("createContainer", h.create_container())?;
        check_hooks("startContainer", h.start_container())?;
        check_hooks("poststart", h.poststart())?;
        check_hooks("poststop", h.poststop())?;
    }

    // config-linux.md, "Namespaces": each type at most once; a path to
    // join must be absolute. The time namespace is not supported (clone(2)
    // cannot create it, and hind does not unshare it).
    let mut namespaces = HashSet::new();
    let linux = spec.linux().as_ref();
    for (index, ns) in linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let kind = ns_name(ns.typ());
        if ns.typ() == LinuxNamespaceType::Time {
            return Err(Error::UnsupportedNamespace { index, kind });
        }
        if !namespaces.insert(ns.typ()) {
            return Err(Error::DuplicateNamespace { index, kind });
        }
        if let Some(path) = ns.path().as_ref().filter(|p| !p.is_absolute()) {
            return Err(Error::RelativeNamespacePath {
                index,
                path: path.clone(),
            });
        }
    }
    let needs = |field: String, t: LinuxNamespaceType| -> Result<()> {
        if namespaces.contains(&t) {
            Ok(())
        } else {
            Err(Error::NeedsNamespace {
                field,
                namespace: ns_name(t),
            })
        }
    };

    // The hostname and domain name of the host are not the container's to
    // set (config.md, "Hostname"; a joined uts namespace will do, as runc
    // allows).
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) {
        needs("hostname".into(), LinuxNamespaceType::Uts)?;
    }
    if spec.domainname().as_ref().is_some_and(|d| !d.is_empty()) {
        needs("domainname".into(), LinuxNamespaceType::Uts)?;
    }

    let Some(linux) = linux else {
        return Ok(());
    };

    // config-linux.md, "User namespace mappings": mappings belong to a user
    // namespace; a new one without them would leave every id unmapped.
    let uid_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    let gid_maps = linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if uid_maps {
        needs("linux.uidMappings".into(), LinuxNamespaceType::User)?;
    }
    if gid_maps {
        needs("linux.gidMappings".into(), LinuxNamespaceType::User)?;
    }
    let new_userns = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|ns| ns.typ() == LinuxNamespaceType::User && ns.path().is_none());
    if new_userns && !uid_maps {
        return Err(Error::NoMappings("uidMappings"));
    }
    if new_userns && !gid_maps {
        return Err(Error::NoMappings("gidMappings"));
    }

    // Sysctls are written from inside the container: one outside its
    // namespaces would be the host's. Sorted, so the error is the same
    // whatever the map's order.
    let mut sysctls: Vec<&String> = linux.sysctl().iter().flatten().map(|(k, _)| k).collect();
    sysctls.sort();
    for key in sysctls {
        needs(format!("linux.sysctl {key:?}"), sysctl_namespace(key)?)?;
    }

    // Masking and read-only paths are mounts: outside a mount namespace
    // they would be the host's (runc's rule).
    if linux.masked_paths().as_ref().is_some_and(|p| !p.is_empty()) {
        needs("linux.maskedPaths".into(), LinuxNamespaceType::Mount)?;
    }
    if linux
        .readonly_paths()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        needs("linux.readonlyPaths".into(), LinuxNamespaceType::Mount)?;
    }

    // config-linux.md, "Seccomp": defaultAction is REQUIRED (the parser
    // already insists), and each rule's names MUST have an entry.
    if let Some(seccomp) = linux.seccomp() {
        for (i, rule) in seccomp.syscalls().iter().flatten().enumerate() {
            if rule.names().is_empty() {
                return Err(Error::SeccompNoNames(i));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The message with its whole source chain, as the CLI prints it.
    fn chain(e: &dyn std::error::Error) -> String {
        let mut s = e.to_string();
        let mut cur = e.source();
        while let Some(c) = cur {
            s.push_str(&format!(": {c}"));
            cur = c.source();
        }
        s
    }

    /// A valid config: what `runc spec` writes, trimmed.
    fn base() -> Value {
        json!({
            "ociVersion": "1.0.2-dev",
            "process": {
                "user": {"uid": 0, "gid": 0},
                "args": ["sh"],
                "cwd": "/",
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
            },
            "root": {"path": "rootfs"},
            "hostname": "hind",
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {
                "namespaces": [
                    {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                    {"type": "uts"}, {"type": "mount"}
                ],
                "maskedPaths": ["/proc/kcore"],
                "readonlyPaths": ["/proc/sys"]
            }
        })
    }

    /// The error `check` gives for `base()` changed by `edit`, as text.
    fn refused(edit: impl FnOnce(&mut Value)) -> String {
        let mut v = base();
        edit(&mut v);
        let spec: Spec = serde_json::from_value(v).expect("parses");
        check(&spec).expect_err("refused").to_string()
    }

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("config.json");
        fs::write(&path, text).unwrap();
        path
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hind-validate-{name}-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn base_is_valid() {
        let spec: Spec = serde_json::from_value(base()).unwrap();
        check(&spec).unwrap();
    }

    #[test]
    fn load_reads_and_checks() {
        let dir = tempdir("load");
        let path = write(&dir, &base().to_string());
        let spec = load(&path).unwrap();
        assert_eq!(spec.hostname().as_deref(), Some("hind"));

        let mut v = base();
        v["process"]["cwd"] = json!("tmp");
        let path = write(&dir, &v.to_string());
        assert_eq!(
            load(&path).unwrap_err().to_string(),
            r#"config.json: process.cwd "tmp" is not an absolute path"#
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn type_error_names_file_and_field() {
        let dir = tempdir("type");
        let text = r#"{
    "ociVersion": "1.0.2",
    "process": {
        "user": {
            "uid": "x", "gid": 0
        },
        "args": ["sh"],
        "cwd": "/"
    },
    "root": {"path": "rootfs"}
}"#;
        let path = write(&dir, text);
        let err = load(&path).unwrap_err();
        assert_eq!(
            chain(&err),
            format!(
                r#"{}: process.user.uid: invalid type: string "x", expected u32 at line 5 column 22"#,
                path.display()
            )
        );
        // As given, not canonicalised.
        fs::create_dir_all(dir.join("sub")).unwrap();
        let given = dir.join("sub/../config.json");
        assert!(chain(&load(&given).unwrap_err())
            .starts_with(&format!("{}: process.user.uid: ", given.display())));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn enum_and_nested_errors_name_the_field() {
        let dir = tempdir("enum");
        let mut v = base();
        v["linux"]["namespaces"][2] = json!({"type": "bogus"});
        let path = write(&dir, &v.to_string());
        let text = chain(&load(&path).unwrap_err());
        assert!(
            text.contains(": linux.namespaces[2].type: unknown variant `bogus`"),
            "{text}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn syntax_errors_and_missing_files() {
        let dir = tempdir("syntax");
        let path = write(&dir, "{\"ociVersion\": \"1.0.0\",}");
        let text = chain(&load(&path).unwrap_err());
        assert!(
            text.starts_with(&format!("{}: trailing comma at line 1", path.display())),
            "{text}"
        );
        let path = write(&dir, &format!("{} x", base()));
        let text = chain(&load(&path).unwrap_err());
        assert!(text.contains("config.json: trailing characters"), "{text}");
        let missing = dir.join("nope.json");
        assert!(chain(&load(&missing).unwrap_err())
            .starts_with(&format!("read {}: ", missing.display())));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn oci_version() {
        assert_eq!(
            refused(|v| v["ociVersion"] = json!("")),
            "config.json: ociVersion is missing"
        );
        assert_eq!(
            refused(|v| {
                v.as_object_mut().unwrap().remove("ociVersion");
            }),
            "config.json: ociVersion is missing"
        );
        assert_eq!(
            refused(|v| v["ociVersion"] = json!("2.0.0")),
            r#"config.json: ociVersion "2.0.0" is not a 1.x version"#
        );
        assert_eq!(
            refused(|v| v["ociVersion"] = json!("10.0.0")),
            r#"config.json: ociVersion "10.0.0" is not a 1.x version"#
        );
    }

    #[test]
    fn root() {
        assert_eq!(
            refused(|v| {
                v.as_object_mut().unwrap().remove("root");
            }),
            "config.json: root is missing"
        );
        assert_eq!(
            refused(|v| v["root"] = json!({"readonly": true})),
            "config.json: root.path is missing"
        );
    }

    #[test]
    fn process() {
        assert_eq!(
            refused(|v| {
                v.as_object_mut().unwrap().remove("process");
            }),
            "config.json: process is missing"
        );
        assert_eq!(
            refused(|v| v["process"]["args"] = json!([])),
            "config.json: process.args must not be empty"
        );
        assert_eq!(
            refused(|v| {
                v["process"].as_object_mut().unwrap().remove("args");
            }),
            "config.json: process.args must not be empty"
        );
        assert_eq!(
            refused(|v| v["process"]["cwd"] = json!("tmp")),
            r#"config.json: process.cwd "tmp" is not an absolute path"#
        );
    }

    #[test]
    fn rlimits_unique() {
        assert_eq!(
            refused(|v| {
                v["process"]["rlimits"].as_array_mut().unwrap().extend([
                    json!({"type": "RLIMIT_CORE", "hard": 0, "soft": 0}),
                    json!({"type": "RLIMIT_NOFILE", "hard": 1, "soft": 1}),
                ])
            }),
            "config.json: process.rlimits[2]: duplicate rlimit type RLIMIT_NOFILE"
        );
    }

    #[test]
    fn mounts_absolute() {
        assert_eq!(
            refused(|v| {
                v["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"destination": "data", "type": "tmpfs", "source": "tmpfs"}))
            }),
            r#"config.json: mounts[1].destination "data" is not an absolute path"#
        );
    }

    #[test]
    fn hooks() {
        assert_eq!(
            refused(|v| v["hooks"] = json!({"createRuntime": [
                {"path": "/bin/true"}, {"path": "hook.sh"}
            ]})),
            r#"config.json: hooks.createRuntime[1].path "hook.sh" is not an absolute path"#
        );
        assert_eq!(
            refused(|v| v["hooks"] = json!({"prestart": [{"path": "true"}]})),
            r#"config.json: hooks.prestart[0].path "true" is not an absolute path"#
        );
        assert_eq!(
            refused(|v| v["hooks"] = json!({"poststop": [{"path": "/bin/true", "timeout": 0}]})),
            "config.json: hooks.poststop[0].timeout 0 is not greater than zero"
        );
        let mut v = base();
        v["hooks"] = json!({"startContainer": [{"path": "/bin/true", "timeout": 5}]});
        check(&serde_json::from_value(v).unwrap()).unwrap();
    }

    #[test]
    fn namespaces() {
        assert_eq!(
            refused(|v| {
                v["linux"]["namespaces"][2] = json!({"type": "network"});
            }),
            "config.json: linux.namespaces[2]: duplicate namespace type network"
        );
        assert_eq!(
            refused(|v| {
                v["linux"]["namespaces"][1] = json!({"type": "network", "path": "run/netns/x"});
            }),
            r#"config.json: linux.namespaces[1].path "run/netns/x" is not an absolute path"#
        );
        assert_eq!(
            refused(|v| {
                v["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "time"}))
            }),
            "config.json: linux.namespaces[5]: namespace type time is not supported"
        );
        let mut v = base();
        v["linux"]["namespaces"][1] = json!({"type": "network", "path": "/run/netns/x"});
        check(&serde_json::from_value(v).unwrap()).unwrap();
    }

    #[test]
    fn id_mappings_need_a_user_namespace() {
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        assert_eq!(
            refused(|v| v["linux"]["uidMappings"] = map.clone()),
            "config.json: linux.uidMappings requires a user namespace in linux.namespaces"
        );
        assert_eq!(
            refused(|v| v["linux"]["gidMappings"] = map.clone()),
            "config.json: linux.gidMappings requires a user namespace in linux.namespaces"
        );
        let user = |v: &mut Value| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}))
        };
        assert_eq!(
            refused(|v| user(v)),
            "config.json: a new user namespace requires linux.uidMappings"
        );
        assert_eq!(
            refused(|v| {
                user(v);
                v["linux"]["uidMappings"] = map.clone();
            }),
            "config.json: a new user namespace requires linux.gidMappings"
        );
        let mut v = base();
        user(&mut v);
        v["linux"]["uidMappings"] = map.clone();
        v["linux"]["gidMappings"] = map.clone();
        check(&serde_json::from_value(v).unwrap()).unwrap();
        // Joined by path: the namespace has its mappings already.
        let mut v = base();
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user", "path": "/proc/1/ns/user"}));
        check(&serde_json::from_value(v).unwrap()).unwrap();
    }

    /// `base()` with namespace `ns` removed.
    fn without(v: &mut Value, ns: &str) {
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != ns);
    }

    #[test]
    fn hostname_needs_uts() {
        assert_eq!(
            refused(|v| without(v, "uts")),
            "config.json: hostname requires a uts namespace in linux.namespaces"
        );
        assert_eq!(
            refused(|v| {
                without(v, "uts");
                v.as_object_mut().unwrap().remove("hostname");
                v["domainname"] = json!("example.org");
            }),
            "config.json: domainname requires a uts namespace in linux.namespaces"
        );
        // No hostname, or an empty one: nothing to set.
        let mut v = base();
        without(&mut v, "uts");
        v["hostname"] = json!("");
        check(&serde_json::from_value(v).unwrap()).unwrap();
    }

    #[test]
    fn sysctls() {
        let with = |key: &str, drop: &str| {
            let key = key.to_string();
            let drop = drop.to_string();
            refused(move |v| {
                without(v, &drop);
                v["linux"]["sysctl"] = json!({ key: "1" });
            })
        };
        assert_eq!(
            with("net.ipv4.ip_forward", "network"),
            r#"config.json: linux.sysctl "net.ipv4.ip_forward" requires a network namespace in linux.namespaces"#
        );
        assert_eq!(
            with("net/core/somaxconn", "network"),
            r#"config.json: linux.sysctl "net/core/somaxconn" requires a network namespace in linux.namespaces"#
        );
        for key in [
            "kernel.msgmax",
            "kernel.sem",
            "kernel.shmmax",
            "fs.mqueue.msg_max",
        ] {
            assert_eq!(
                with(key, "ipc"),
                format!(
                    "config.json: linux.sysctl {key:?} requires a ipc namespace in linux.namespaces"
                )
            );
        }
        assert_eq!(
            with("vm.swappiness", "none"),
            r#"config.json: linux.sysctl "vm.swappiness" is not in a namespace of the container (it would change the host)"#
        );
        assert_eq!(
            with("kernel.hostname", "none"),
            r#"config.json: linux.sysctl "kernel.hostname" conflicts with the hostname field"#
        );
        let mut v = base();
        v["linux"]["sysctl"] = json!({
            "net.ipv4.ip_forward": "1", "kernel.shmmax": "1", "fs.mqueue.queues_max": "1",
            "kernel.domainname": "example.org"
        });
        check(&serde_json::from_value(v).unwrap()).unwrap();
    }

    #[test]
    fn domainname_sysctl_needs_uts() {
        assert_eq!(
            refused(|v| {
                without(v, "uts");
                v.as_object_mut().unwrap().remove("hostname");
                v["linux"]["sysctl"] = json!({"kernel.domainname": "x"});
            }),
            r#"config.json: linux.sysctl "kernel.domainname" requires a uts namespace in linux.namespaces"#
        );
    }

    #[test]
    fn masked_and_readonly_paths_need_mount() {
        assert_eq!(
            refused(|v| without(v, "mount")),
            "config.json: linux.maskedPaths requires a mount namespace in linux.namespaces"
        );
        assert_eq!(
            refused(|v| {
                without(v, "mount");
                v["linux"]["maskedPaths"] = json!([]);
            }),
            "config.json: linux.readonlyPaths requires a mount namespace in linux.namespaces"
        );
    }

    #[test]
    fn seccomp() {
        assert_eq!(
            refused(|v| v["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                    {"names": [], "action": "SCMP_ACT_ALLOW"}
                ]
            })),
            "config.json: linux.seccomp.syscalls[1].names is empty"
        );
        // defaultAction is the parser's to insist on.
        let dir = tempdir("seccomp");
        let mut v = base();
        v["linux"]["seccomp"] = json!({"syscalls": []});
        let path = write(&dir, &v.to_string());
        let text = chain(&load(&path).unwrap_err());
        assert!(
            text.contains(": linux.seccomp: missing field `defaultAction`"),
            "{text}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cgroups_path_is_free() {
        for p in ["/a/b", "a/b", "system.slice:hind:abc", ""] {
            let mut v = base();
            v["linux"]["cgroupsPath"] = json!(p);
            check(&serde_json::from_value(v).unwrap()).unwrap();
        }
    }
}
