//! Profile resolution: the default profile against capability sets and
//! architectures, Docker's include/exclude rules, and errors that name the
//! field at fault.

use super::*;
use oci_spec::runtime::LinuxSeccompAction as A;

const DOCKER_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

fn caps(extra: &[&str]) -> Vec<String> {
    DOCKER_CAPS
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
}

fn amd64(bounding: &[String]) -> Target<'_> {
    Target {
        bounding,
        go_arch: "amd64",
        native: Some(Arch::ScmpArchX86_64),
        kernel: Some((6, 1)),
    }
}

fn default_for(t: &Target) -> LinuxSeccomp {
    resolve(DEFAULT_PROFILE, DEFAULT_NAME, t).unwrap().unwrap()
}

/// The rules that name `syscall`, as (action, errnoRet, has args).
fn rules_for(s: &LinuxSeccomp, syscall: &str) -> Vec<(A, Option<u32>, bool)> {
    s.syscalls()
        .iter()
        .flatten()
        .filter(|r| r.names().iter().any(|n| n == syscall))
        .map(|r| (r.action(), r.errno_ret(), r.args().is_some()))
        .collect()
}

#[test]
fn default_profile_with_dockers_capabilities() {
    let c = caps(&[]);
    let s = default_for(&amd64(&c));
    assert_eq!(s.default_action(), A::ScmpActErrno);
    assert_eq!(s.default_errno_ret(), Some(1));
    assert_eq!(
        s.architectures().clone().unwrap(),
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    );
    for denied in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "keyctl",
        "add_key",
        "kexec_load",
        "open_by_handle_at",
        "bpf",
        "init_module",
        "reboot",
        "settimeofday",
        "sethostname",
    ] {
        assert!(rules_for(&s, denied).is_empty(), "{denied} allowed");
    }
    // chroot comes with CAP_SYS_CHROOT, which Docker's set has.
    assert_eq!(
        rules_for(&s, "chroot"),
        vec![(A::ScmpActAllow, None, false)]
    );
    assert_eq!(rules_for(&s, "clone"), vec![(A::ScmpActAllow, None, true)]);
    assert_eq!(
        rules_for(&s, "clone3"),
        vec![(A::ScmpActErrno, Some(38), false)]
    );
    assert_eq!(rules_for(&s, "socket"), vec![(A::ScmpActAllow, None, true)]);
    assert_eq!(rules_for(&s, "personality").len(), 5);
    // Linux >= 4.8: ptrace is safe for everyone.
    assert_eq!(
        rules_for(&s, "ptrace"),
        vec![(A::ScmpActAllow, None, false)]
    );
    assert_eq!(rules_for(&s, "arch_prctl").len(), 1);
    assert!(rules_for(&s, "cacheflush").is_empty());
}

#[test]
fn capabilities_open_their_syscalls() {
    let c = caps(&["CAP_SYS_ADMIN", "sys_time", "SYS_MODULE"]);
    let s = default_for(&amd64(&c));
    for allowed in ["mount", "unshare", "setns", "settimeofday", "init_module"] {
        assert_eq!(
            rules_for(&s, allowed),
            vec![(A::ScmpActAllow, None, false)],
            "{allowed}"
        );
    }
    // The namespace-flag rule and the clone3 refusal are excluded.
    assert_eq!(rules_for(&s, "clone"), vec![(A::ScmpActAllow, None, false)]);
    assert_eq!(
        rules_for(&s, "clone3"),
        vec![(A::ScmpActAllow, None, false)]
    );
}

#[test]
fn old_kernel_keeps_ptrace_behind_its_capability() {
    let c = caps(&[]);
    let mut t = amd64(&c);
    t.kernel = Some((4, 4));
    assert!(rules_for(&default_for(&t), "ptrace").is_empty());
    t.kernel = None;
    assert!(rules_for(&default_for(&t), "ptrace").is_empty());
}

#[test]
fn arm64_gets_its_arch_map_and_calls() {
    let c = caps(&[]);
    let t = Target {
        bounding: &c,
        go_arch: "arm64",
        native: Some(Arch::ScmpArchAarch64),
        kernel: Some((6, 1)),
    };
    let s = default_for(&t);
    assert_eq!(
        s.architectures().clone().unwrap(),
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    );
    assert_eq!(rules_for(&s, "cacheflush").len(), 1);
    assert!(rules_for(&s, "arch_prctl").is_empty());
}

fn err(text: &str) -> String {
    let c = caps(&[]);
    let e = resolve(text, "p.json", &amd64(&c)).unwrap_err();
    let mut s = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(x) = src {
        s.push_str(&format!(": {x}"));
        src = x.source();
    }
    s
}

#[test]
fn errors_name_the_file_and_field() {
    assert_eq!(
        err(r#"{"defaultAction": "SCMP_ACT_NOPE"}"#),
        r#"seccomp profile p.json: defaultAction: unknown action "SCMP_ACT_NOPE""#
    );
    assert_eq!(
        err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#
        ),
        "seccomp profile p.json: syscalls[0].args[0].index: 6 is out of range (at most 5)"
    );
    assert_eq!(
        err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]}"#),
        "seccomp profile p.json: syscalls[0].args[0].value: expected a non-negative integer, got a negative number"
    );
    assert_eq!(
        err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"]}]}"#),
        "seccomp profile p.json: syscalls[0].action: missing"
    );
    assert_eq!(
        err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "mkdir", "action": "SCMP_ACT_LOG"}]}"#
        ),
        "seccomp profile p.json: syscalls[0].names: expected a list, got a string"
    );
    assert_eq!(
        err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#
        ),
        "seccomp profile p.json: archMap: both architectures and archMap are given; use one"
    );
    assert_eq!(
        err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_LOG"}]}"#
        ),
        "seccomp profile p.json: syscalls[0]: both name and names are given; use one"
    );
    assert_eq!(
        err(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#),
        "seccomp profile p.json: defaultAction: SCMP_ACT_NOTIFY is not supported"
    );
    assert_eq!(
        err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_LOG", "includes": {"minKernel": "new"}}]}"#
        ),
        r#"seccomp profile p.json: syscalls[0].includes.minKernel: "new" is not a kernel version like 5.4"#
    );
    let e = err("{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",,\n}");
    assert!(
        e.starts_with("seccomp profile p.json: invalid JSON: ") && e.contains("line 2"),
        "{e}"
    );
}

#[test]
fn docker_quirks() {
    let c = caps(&[]);
    let t = amd64(&c);
    // No default action and no rules: no filter at all.
    assert!(resolve("{}", "p.json", &t).unwrap().is_none());
    // Keys match case-insensitively; unknown keys are ignored; "name"
    // is the old single-syscall form.
    let s = resolve(
        r#"{"DEFAULTACTION": "SCMP_ACT_ALLOW", "whatever": 1,
            "syscalls": [{"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 20, "comment": "x"}]}"#,
        "p.json",
        &t,
    )
    .unwrap()
    .unwrap();
    assert_eq!(s.default_action(), A::ScmpActAllow);
    assert_eq!(
        rules_for(&s, "mkdir"),
        vec![(A::ScmpActErrno, Some(20), false)]
    );
    assert!(s.architectures().is_none());
    // An archMap without this machine's entry lists nothing.
    let s = resolve(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"architecture": "SCMP_ARCH_S390X", "subArchitectures": ["SCMP_ARCH_S390"]}]}"#,
        "p.json",
        &t,
    )
    .unwrap()
    .unwrap();
    assert!(s.architectures().is_none());
}

#[test]
fn privileged_and_unconfined_have_no_filter() {
    let c = caps(&[]);
    assert!(for_container(&Profile::Default, &c, true)
        .unwrap()
        .is_none());
    assert!(for_container(&Profile::Unconfined, &c, false)
        .unwrap()
        .is_none());
    assert!(for_container(&Profile::Default, &c, false)
        .unwrap()
        .is_some());
    let e = for_container(&Profile::File("/nonexistent/p.json".into()), &c, false).unwrap_err();
    assert_eq!(e.to_string(), "read seccomp profile /nonexistent/p.json");
}

#[test]
fn security_opt_parsing() {
    use SecurityOpt::*;
    let p = |s: &str| parse_security_opt(s);
    assert_eq!(p("seccomp=unconfined"), Ok(Seccomp(Profile::Unconfined)));
    assert_eq!(p("seccomp:unconfined"), Ok(Seccomp(Profile::Unconfined)));
    assert_eq!(
        p("seccomp=/x/p.json"),
        Ok(Seccomp(Profile::File("/x/p.json".into())))
    );
    assert_eq!(p("no-new-privileges"), Ok(NoNewPrivileges(true)));
    assert_eq!(p("no-new-privileges=false"), Ok(NoNewPrivileges(false)));
    assert_eq!(p("no-new-privileges:true"), Ok(NoNewPrivileges(true)));
    assert!(p("no-new-privileges=maybe").is_err());
    assert_eq!(p("label=disable"), Ok(AlreadyTrue("label=disable".into())));
    assert_eq!(
        p("label:disable").map(|o| o.to_string()),
        Ok("label=disable".into())
    );
    assert_eq!(
        p("no-new-privileges").map(|o| o.to_string()),
        Ok("no-new-privileges=true".into())
    );
    assert!(p("apparmor=docker-default")
        .unwrap_err()
        .contains("not supported"));
    assert!(p("bogus").unwrap_err().contains("\"bogus\""));
    assert!(p("seccomp").is_err());
    let o = SecurityOpts::from_flags(&[
        NoNewPrivileges(true),
        Seccomp(Profile::Unconfined),
        NoNewPrivileges(false),
    ]);
    assert_eq!(
        o,
        SecurityOpts {
            seccomp: Profile::Unconfined,
            no_new_privileges: false
        }
    );
}

#[test]
fn kernel_versions() {
    assert_eq!(kernel_version("6.18.44-fc-v657"), Some((6, 18)));
    assert_eq!(kernel_version("3.12-1-amd64"), Some((3, 12)));
    assert_eq!(kernel_version("4.8"), Some((4, 8)));
    assert_eq!(kernel_version("x"), None);
}

/// Prints what resolving the default profile and writing it into
/// config.json cost the CLI, and reading it back the shim (run with
/// `--ignored --nocapture`, in release mode).
#[test]
#[ignore]
fn bench_resolve_default() {
    let c = caps(&[]);
    let t = amd64(&c);
    let n = 200;
    let start = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(default_for(&t));
    }
    let resolve = start.elapsed() / n;
    let s = default_for(&t);
    let json = serde_json::to_string(&s).unwrap();
    let start = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(serde_json::from_str::<LinuxSeccomp>(&json).unwrap());
    }
    let parse = start.elapsed() / n;
    println!(
        "resolve the default profile {resolve:?}; its section is {} bytes of JSON, parsed in {parse:?}",
        json.len()
    );
}
