//! `--security-opt` and seccomp profiles in Docker's JSON format: the
//! built-in default (`default.json`, equivalent in effect to Docker's),
//! `seccomp=PROFILE.json` and `seccomp=unconfined`. A profile is resolved
//! here, against the container's bounding set, this machine's architecture
//! and its kernel, into the OCI `linux.seccomp` section of `config.json`;
//! the shim compiles that section, so a bundle from elsewhere (podman,
//! containerd) is confined the same way.
//!
//! Resolution follows Docker's (moby `profiles/seccomp`): `archMap` keeps
//! the entry of the native architecture (plus its sub-architectures); a
//! rule is dropped when `excludes` names this architecture, a capability
//! the container has, or a kernel at most this one, or when `includes`
//! names other architectures, a capability the container lacks, or a newer
//! kernel. Field names match case-insensitively and unknown fields are
//! ignored, as Go's JSON decoder does for Docker.

use std::path::PathBuf;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Our default profile; see its `comment`.
const DEFAULT_PROFILE: &str = include_str!("default.json");
const DEFAULT_NAME: &str = "the built-in default profile";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("read seccomp profile {0}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("seccomp profile {0}: invalid JSON")]
    Json(String, #[source] serde_json::Error),
    #[error("seccomp profile {file}: {field}: {problem}")]
    Field {
        file: String,
        field: String,
        problem: String,
    },
    #[error("seccomp profile {0}")]
    Build(String, #[source] oci_spec::OciSpecError),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Which seccomp profile a container runs with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Profile {
    #[default]
    Default,
    Unconfined,
    File(PathBuf),
}

/// One `--security-opt` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityOpt {
    Seccomp(Profile),
    NoNewPrivileges(bool),
    /// `apparmor=unconfined`, `label=disable` (as typed): hind applies no
    /// AppArmor profile or SELinux label, so these already hold.
    AlreadyTrue(String),
}

impl std::fmt::Display for SecurityOpt {
    /// The option in Docker's `key=value` form, as `inspect` shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            SecurityOpt::Seccomp(Profile::Unconfined) => write!(f, "seccomp=unconfined"),
            SecurityOpt::Seccomp(Profile::File(p)) => write!(f, "seccomp={}", p.display()),
            SecurityOpt::Seccomp(Profile::Default) => write!(f, "seccomp=default"),
            SecurityOpt::NoNewPrivileges(b) => write!(f, "no-new-privileges={b}"),
            SecurityOpt::AlreadyTrue(opt) => f.write_str(opt),
        }
    }
}

/// Go's `strconv.ParseBool`, which Docker uses for `no-new-privileges=`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Parses one `--security-opt` as Docker does: `KEY=VALUE`, the older
/// `KEY:VALUE`, or a bare `no-new-privileges`. For clap (`value_parser`).
pub fn parse_security_opt(opt: &str) -> std::result::Result<SecurityOpt, String> {
    let (key, value) = match opt.split_once('=').or_else(|| opt.split_once(':')) {
        Some((k, v)) => (k, Some(v)),
        None => (opt, None),
    };
    match (key, value) {
        ("seccomp", Some("unconfined")) => Ok(SecurityOpt::Seccomp(Profile::Unconfined)),
        ("seccomp", Some("")) | ("seccomp", None) => {
            Err("seccomp needs a value: unconfined or a profile's path".into())
        }
        ("seccomp", Some(path)) => Ok(SecurityOpt::Seccomp(Profile::File(path.into()))),
        ("no-new-privileges", None) => Ok(SecurityOpt::NoNewPrivileges(true)),
        ("no-new-privileges", Some(v)) => parse_bool(v)
            .map(SecurityOpt::NoNewPrivileges)
            .ok_or_else(|| format!("no-new-privileges takes true or false, not {v:?}")),
        ("apparmor", Some("unconfined")) | ("label", Some("disable")) => Ok(
            SecurityOpt::AlreadyTrue(format!("{key}={}", value.unwrap_or_default())),
        ),
        ("apparmor" | "label" | "systempaths" | "writable-cgroups", _) => {
            Err(format!("{opt:?} is not supported"))
        }
        _ => Err(format!(
            "unknown security option {opt:?} (supported: seccomp=unconfined|PROFILE.json, \
             no-new-privileges[=true|false])"
        )),
    }
}

/// The effect of all `--security-opt` flags, the last of each kind winning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityOpts {
    pub seccomp: Profile,
    pub no_new_privileges: bool,
}

impl SecurityOpts {
    pub fn from_flags(flags: &[SecurityOpt]) -> SecurityOpts {
        let mut o = SecurityOpts::default();
        for f in flags {
            match f {
                SecurityOpt::Seccomp(p) => o.seccomp = p.clone(),
                SecurityOpt::NoNewPrivileges(b) => o.no_new_privileges = *b,
                SecurityOpt::AlreadyTrue(_) => {}
            }
        }
        o
    }
}

/// This machine as Docker's profiles name it: the Go architecture name
/// (for `includes.arches`) and the libseccomp one (for `archMap`).
fn native_arch() -> (&'static str, Option<Arch>) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", Some(Arch::ScmpArchX86_64)),
        "aarch64" => ("arm64", Some(Arch::ScmpArchAarch64)),
        "x86" => ("386", Some(Arch::ScmpArchX86)),
        "arm" => ("arm", Some(Arch::ScmpArchArm)),
        other => (other, None),
    }
}

/// `major.minor` of a kernel release such as `6.1.0-18-amd64`.
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

fn running_kernel() -> Option<(u32, u32)> {
    kernel_version(
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()?
            .trim(),
    )
}

/// A capability name as "SYS_ADMIN", whichever way it was written.
fn cap_key(name: &str) -> String {
    let up = name.to_ascii_uppercase();
    up.strip_prefix("CAP_").map(str::to_string).unwrap_or(up)
}

/// What the resolution depends on besides the profile.
pub struct Target<'a> {
    /// Capability names of the container's bounding set (`CAP_` optional).
    pub bounding: &'a [String],
    /// `amd64`, `arm64`, ...
    pub go_arch: &'a str,
    pub native: Option<Arch>,
    pub kernel: Option<(u32, u32)>,
}

/// The `linux.seccomp` section for a container: `None` runs unconfined
/// (`--privileged`, `seccomp=unconfined`, or a profile with neither a
/// default action nor rules, as in Docker).
pub fn for_container(
    profile: &Profile,
    bounding: &[String],
    privileged: bool,
) -> Result<Option<LinuxSeccomp>> {
    let (text, name) = match profile {
        // Docker: a privileged container runs without seccomp, whatever
        // profile was asked for.
        _ if privileged => return Ok(None),
        Profile::Unconfined => return Ok(None),
        Profile::Default => (DEFAULT_PROFILE.to_string(), DEFAULT_NAME.to_string()),
        Profile::File(p) => (
            std::fs::read_to_string(p).map_err(|e| Error::Read(p.clone(), e))?,
            p.display().to_string(),
        ),
    };
    let (go_arch, native) = native_arch();
    let target = Target {
        bounding,
        go_arch,
        native,
        kernel: running_kernel(),
    };
    resolve(&text, &name, &target)
}

/// Walks a profile's JSON, naming the field at fault in every error.
struct Reader<'a> {
    file: &'a str,
}

impl Reader<'_> {
    fn err(&self, field: &str, problem: impl Into<String>) -> Error {
        Error::Field {
            file: self.file.to_string(),
            field: field.to_string(),
            problem: problem.into(),
        }
    }

    /// The value of `key` in `obj`, matched as Go does: exactly, else
    /// case-insensitively. `null` counts as absent.
    fn get<'v>(&self, obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
        obj.get(key)
            .or_else(|| {
                obj.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            })
            .filter(|v| !v.is_null())
    }

    fn object<'v>(&self, v: &'v Value, field: &str) -> Result<&'v Map<String, Value>> {
        v.as_object()
            .ok_or_else(|| self.err(field, format!("expected an object, got {}", kind(v))))
    }

    fn array<'v>(&self, v: &'v Value, field: &str) -> Result<&'v Vec<Value>> {
        v.as_array()
            .ok_or_else(|| self.err(field, format!("expected a list, got {}", kind(v))))
    }

    fn string<'v>(&self, v: &'v Value, field: &str) -> Result<&'v str> {
        v.as_str()
            .ok_or_else(|| self.err(field, format!("expected a string, got {}", kind(v))))
    }

    fn strings(&self, v: Option<&Value>, field: &str) -> Result<Vec<String>> {
        let Some(v) = v else { return Ok(Vec::new()) };
        let list = self.array(v, field)?;
        let mut out = Vec::with_capacity(list.len());
        for (i, x) in list.iter().enumerate() {
            // The path is spelled out only for an error: a profile names
            // hundreds of syscalls.
            match x.as_str() {
                Some(s) => out.push(s.to_string()),
                None => {
                    return Err(self.err(
                        &format!("{field}[{i}]"),
                        format!("expected a string, got {}", kind(x)),
                    ))
                }
            }
        }
        Ok(out)
    }

    fn uint(&self, v: &Value, field: &str, max: u64) -> Result<u64> {
        match v.as_u64() {
            Some(n) if n <= max => Ok(n),
            Some(n) => Err(self.err(field, format!("{n} is out of range (at most {max})"))),
            None => Err(self.err(
                field,
                format!("expected a non-negative integer, got {}", kind(v)),
            )),
        }
    }

    /// A string that names a variant of an oci-spec enum (`SCMP_ACT_*`,
    /// `SCMP_ARCH_*`, ...), checked through its serde names.
    fn named<T: DeserializeOwned>(&self, v: &Value, field: &str, what: &str) -> Result<T> {
        let s = self.string(v, field)?;
        serde_json::from_value(Value::String(s.to_string()))
            .map_err(|_| self.err(field, format!("unknown {what} {s:?}")))
    }

    fn action(&self, v: &Value, field: &str) -> Result<LinuxSeccompAction> {
        let a: LinuxSeccompAction = self.named(v, field, "action")?;
        if a == LinuxSeccompAction::ScmpActNotify {
            return Err(self.err(field, "SCMP_ACT_NOTIFY is not supported"));
        }
        Ok(a)
    }

    fn kernel(&self, v: Option<&Value>, field: &str) -> Result<Option<(u32, u32)>> {
        let Some(v) = v else { return Ok(None) };
        let s = self.string(v, field)?;
        if s.is_empty() {
            return Ok(None);
        }
        kernel_version(s)
            .map(Some)
            .ok_or_else(|| self.err(field, format!("{s:?} is not a kernel version like 5.4")))
    }
}

/// Human name of a JSON value's type, for errors.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() && n.as_i64().unwrap_or(0) < 0 => "a negative number",
        Value::Number(n) if !n.is_u64() => "a fraction",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `includes`/`excludes` of one rule.
#[derive(Default)]
struct Condition {
    caps: Vec<String>,
    arches: Vec<String>,
    min_kernel: Option<(u32, u32)>,
}

fn condition(r: &Reader, v: Option<&Value>, field: &str) -> Result<Condition> {
    let Some(v) = v else {
        return Ok(Condition::default());
    };
    let o = r.object(v, field)?;
    Ok(Condition {
        caps: r.strings(r.get(o, "caps"), &format!("{field}.caps"))?,
        arches: r.strings(r.get(o, "arches"), &format!("{field}.arches"))?,
        min_kernel: r.kernel(r.get(o, "minKernel"), &format!("{field}.minKernel"))?,
    })
}

/// Resolves the profile `text` (named `file` in errors) for `t`.
pub fn resolve(text: &str, file: &str, t: &Target) -> Result<Option<LinuxSeccomp>> {
    let r = Reader { file };
    let root: Value = serde_json::from_str(text).map_err(|e| Error::Json(file.to_string(), e))?;
    let top = r.object(&root, "(top level)")?;

    let default_action = r.get(top, "defaultAction");
    let rules = match r.get(top, "syscalls") {
        Some(v) => r.array(v, "syscalls")?.as_slice(),
        None => &[],
    };
    let default_action = match default_action {
        // Docker: no default action and no rules means no filter at all.
        None if rules.is_empty() => return Ok(None),
        None => return Err(r.err("defaultAction", "missing")),
        Some(v) => r.action(v, "defaultAction")?,
    };
    let default_errno = r
        .get(top, "defaultErrnoRet")
        .map(|v| r.uint(v, "defaultErrnoRet", u32::MAX as u64))
        .transpose()?
        .map(|n| n as u32);

    let mut arches: Vec<Arch> = Vec::new();
    if let Some(v) = r.get(top, "architectures") {
        for (i, a) in r.array(v, "architectures")?.iter().enumerate() {
            arches.push(r.named(a, &format!("architectures[{i}]"), "architecture")?);
        }
    }
    if let Some(v) = r.get(top, "archMap") {
        let map = r.array(v, "archMap")?;
        if !arches.is_empty() && !map.is_empty() {
            return Err(r.err(
                "archMap",
                "both architectures and archMap are given; use one",
            ));
        }
        for (i, entry) in map.iter().enumerate() {
            let field = format!("archMap[{i}]");
            let o = r.object(entry, &field)?;
            let arch_v = r
                .get(o, "architecture")
                .ok_or_else(|| r.err(&format!("{field}.architecture"), "missing"))?;
            let arch: Arch = r.named(arch_v, &format!("{field}.architecture"), "architecture")?;
            let mut subs = Vec::new();
            if let Some(s) = r.get(o, "subArchitectures") {
                for (j, a) in r
                    .array(s, &format!("{field}.subArchitectures"))?
                    .iter()
                    .enumerate()
                {
                    let f = format!("{field}.subArchitectures[{j}]");
                    subs.push(r.named::<Arch>(a, &f, "architecture")?);
                }
            }
            if Some(arch) == t.native && arches.is_empty() {
                arches.push(arch);
                arches.extend(subs);
            }
        }
    }

    let mut flags: Vec<LinuxSeccompFilterFlag> = Vec::new();
    if let Some(v) = r.get(top, "flags") {
        for (i, f) in r.array(v, "flags")?.iter().enumerate() {
            flags.push(r.named(f, &format!("flags[{i}]"), "flag")?);
        }
    }
    if r.get(top, "listenerPath").is_some() {
        return Err(r.err(
            "listenerPath",
            "seccomp agents (SCMP_ACT_NOTIFY) are not supported",
        ));
    }

    let have: Vec<String> = t.bounding.iter().map(|c| cap_key(c)).collect();
    let has_cap = |c: &String| have.contains(&cap_key(c));
    let kernel_at_least = |v: (u32, u32)| t.kernel.is_some_and(|k| k >= v);

    let mut syscalls: Vec<LinuxSyscall> = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let field = format!("syscalls[{i}]");
        let o = r.object(rule, &field)?;
        // Everything is checked, kept or not, so a mistake in a rule that
        // does not apply here is still reported.
        let mut names = r.strings(r.get(o, "names"), &format!("{field}.names"))?;
        if let Some(n) = r.get(o, "name") {
            if !names.is_empty() {
                return Err(r.err(&field, "both name and names are given; use one"));
            }
            names.push(r.string(n, &format!("{field}.name"))?.to_string());
        }
        if names.is_empty() {
            return Err(r.err(&format!("{field}.names"), "no syscall named"));
        }
        let action = r.action(
            r.get(o, "action")
                .ok_or_else(|| r.err(&format!("{field}.action"), "missing"))?,
            &format!("{field}.action"),
        )?;
        let errno = r
            .get(o, "errnoRet")
            .map(|v| r.uint(v, &format!("{field}.errnoRet"), u32::MAX as u64))
            .transpose()?
            .map(|n| n as u32);
        let mut args = Vec::new();
        if let Some(v) = r.get(o, "args") {
            for (j, a) in r.array(v, &format!("{field}.args"))?.iter().enumerate() {
                let af = format!("{field}.args[{j}]");
                let ao = r.object(a, &af)?;
                let need = |k: &str| -> Result<&Value> {
                    r.get(ao, k)
                        .ok_or_else(|| r.err(&format!("{af}.{k}"), "missing"))
                };
                let index = r.uint(need("index")?, &format!("{af}.index"), 5)? as usize;
                let value = r.uint(need("value")?, &format!("{af}.value"), u64::MAX)?;
                let value_two = r
                    .get(ao, "valueTwo")
                    .map(|v| r.uint(v, &format!("{af}.valueTwo"), u64::MAX))
                    .transpose()?;
                let op: LinuxSeccompOperator =
                    r.named(need("op")?, &format!("{af}.op"), "operator")?;
                let mut b = LinuxSeccompArgBuilder::default()
                    .index(index)
                    .value(value)
                    .op(op);
                if let Some(v2) = value_two {
                    b = b.value_two(v2);
                }
                args.push(b.build().map_err(|e| Error::Build(file.to_string(), e))?);
            }
        }
        let inc = condition(&r, r.get(o, "includes"), &format!("{field}.includes"))?;
        let exc = condition(&r, r.get(o, "excludes"), &format!("{field}.excludes"))?;

        let applies = !exc.arches.iter().any(|a| a == t.go_arch)
            && !exc.caps.iter().any(has_cap)
            && !exc.min_kernel.is_some_and(kernel_at_least)
            && (inc.arches.is_empty() || inc.arches.iter().any(|a| a == t.go_arch))
            && inc.caps.iter().all(has_cap)
            && inc.min_kernel.is_none_or(kernel_at_least);
        if !applies {
            continue;
        }
        let mut b = LinuxSyscallBuilder::default().names(names).action(action);
        if let Some(e) = errno {
            b = b.errno_ret(e);
        }
        if !args.is_empty() {
            b = b.args(args);
        }
        syscalls.push(b.build().map_err(|e| Error::Build(file.to_string(), e))?);
    }

    let mut b = LinuxSeccompBuilder::default()
        .default_action(default_action)
        .syscalls(syscalls);
    if let Some(e) = default_errno {
        b = b.default_errno_ret(e);
    }
    if !arches.is_empty() {
        b = b.architectures(arches);
    }
    if !flags.is_empty() {
        b = b.flags(flags);
    }
    b.build()
        .map(Some)
        .map_err(|e| Error::Build(file.to_string(), e))
}

#[cfg(test)]
mod tests;
