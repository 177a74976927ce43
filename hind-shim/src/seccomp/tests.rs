//! The compiler, checked by running its programs through the reference
//! interpreter in [`super::bpf`] on hand-made `seccomp_data`, and the cache.

use super::*;
use serde_json::json;

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
const KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;

fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | e as u32
}

fn section(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("a valid linux.seccomp section")
}

/// `struct seccomp_data` as the kernel lays it out on this machine.
fn data(arch: u32, nr: u32, args: [u64; 6]) -> Vec<u8> {
    let mut d = Vec::with_capacity(64);
    d.extend_from_slice(&nr.to_ne_bytes());
    d.extend_from_slice(&arch.to_ne_bytes());
    d.extend_from_slice(&0u64.to_ne_bytes());
    for a in args {
        d.extend_from_slice(&a.to_ne_bytes());
    }
    d
}

/// Compiles for `host` and returns a function that runs the program.
fn filter_fn(s: &LinuxSeccomp, host: Host) -> impl Fn(u32, u32, [u64; 6]) -> u32 {
    let prog = compile(s, host).expect("compiles");
    assert!(bpf::well_formed(&prog), "malformed program");
    move |arch, nr, args| bpf::run(&prog, &data(arch, nr, args))
}

fn nr(abi: Abi, name: &str) -> u32 {
    abi.number(name)
        .unwrap_or_else(|| panic!("{name} on {abi:?}"))
}

#[test]
fn allowlist_default_and_architectures() {
    let s = section(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read", "write", "mkdir", "no_such_call"], "action": "SCMP_ACT_ALLOW"}]
    }));
    let f = filter_fn(&s, Host::X86_64);
    let x = AUDIT_ARCH_X86_64;
    assert_eq!(f(x, nr(Abi::X86_64, "read"), [0; 6]), ALLOW);
    assert_eq!(f(x, nr(Abi::X86_64, "mkdir"), [0; 6]), ALLOW);
    assert_eq!(f(x, nr(Abi::X86_64, "mount"), [0; 6]), EPERM);
    assert_eq!(f(x, 100_000, [0; 6]), EPERM);
    assert_eq!(f(x, u32::MAX, [0; 6]), EPERM, "nr -1 (a skipped call)");
    // Compat ABIs the profile does not list are killed.
    assert_eq!(f(x, nr(Abi::X32, "read"), [0; 6]), KILL);
    assert_eq!(f(AUDIT_ARCH_I386, 3, [0; 6]), KILL);
    assert_eq!(f(0x1234, 0, [0; 6]), KILL);

    let s = section(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 13,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["read", "mkdir"], "action": "SCMP_ACT_ALLOW"}]
    }));
    let f = filter_fn(&s, Host::X86_64);
    assert_eq!(f(AUDIT_ARCH_I386, nr(Abi::X86, "read"), [0; 6]), ALLOW);
    assert_eq!(f(AUDIT_ARCH_I386, nr(Abi::X86, "mount"), [0; 6]), errno(13));
    assert_eq!(f(x, nr(Abi::X32, "read"), [0; 6]), ALLOW);
    assert_eq!(f(x, nr(Abi::X32, "mkdir"), [0; 6]), ALLOW);
    assert_eq!(f(x, nr(Abi::X32, "ioctl"), [0; 6]), errno(13));

    let f = filter_fn(&s, Host::Aarch64);
    assert_eq!(f(AUDIT_ARCH_AARCH64, 63, [0; 6]), ALLOW, "read is 63");
    assert_eq!(f(AUDIT_ARCH_AARCH64, 40, [0; 6]), errno(13), "mount");
    // Not listed: arm. The x86 ABIs cannot occur on this host.
    assert_eq!(f(AUDIT_ARCH_ARM, 3, [0; 6]), KILL);
    assert_eq!(f(AUDIT_ARCH_X86_64, 0, [0; 6]), KILL);
}

#[test]
fn x32_calls_follow_their_names() {
    // x32 shares x86_64's tree for the numbers both have; every x32 call
    // must still get the rules of its own name.
    let allowed = [
        "read", "ioctl", "readv", "execve", "openat", "mmap", "clone3",
    ];
    let s = section(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": allowed, "action": "SCMP_ACT_ALLOW"},
            {"names": ["recvmsg"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 2, "value": 64, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    let f = filter_fn(&s, Host::X86_64);
    let x = AUDIT_ARCH_X86_64;
    for (name, n) in Abi::X32.table() {
        let want = if allowed.contains(name) { ALLOW } else { EPERM };
        if *name == "recvmsg" {
            assert_eq!(f(x, *n, [0, 0, 64, 0, 0, 0]), ALLOW, "x32 recvmsg");
            assert_eq!(f(x, *n, [0, 0, 65, 0, 0, 0]), EPERM, "x32 recvmsg");
        } else {
            assert_eq!(f(x, *n, [0; 6]), want, "x32 {name} ({n:#x})");
        }
    }
    assert_eq!(f(x, X32_SYSCALL_BIT + 600, [0; 6]), EPERM);
    assert_eq!(f(x, (1 << 31) + 5, [0; 6]), EPERM);
    assert_eq!(f(x, u32::MAX, [0; 6]), EPERM);
}

#[test]
fn rule_order_and_fallback() {
    // An unconditional rule is the fallback; argument rules come first.
    let s = section(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 20},
            {"names": ["mkdir"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 1, "value": 0o700, "op": "SCMP_CMP_EQ"}]},
            {"names": ["mkdir"], "action": "SCMP_ACT_LOG",
             "args": [{"index": 1, "value": 0o755, "op": "SCMP_CMP_EQ"}]},
            {"names": ["mkdir"], "action": "SCMP_ACT_KILL_THREAD"}
        ]
    }));
    let f = filter_fn(&s, Host::X86_64);
    let mkdir = nr(Abi::X86_64, "mkdir");
    let x = AUDIT_ARCH_X86_64;
    assert_eq!(f(x, mkdir, [0, 0o700, 0, 0, 0, 0]), ALLOW);
    assert_eq!(f(x, mkdir, [0, 0o755, 0, 0, 0, 0]), libc::SECCOMP_RET_LOG);
    assert_eq!(f(x, mkdir, [0, 0o777, 0, 0, 0, 0]), errno(libc::ENOTDIR));
    assert_eq!(f(x, nr(Abi::X86_64, "rmdir"), [0; 6]), ALLOW);
}

/// What an operator means, on the full 64-bit values.
fn holds(op: Op, arg: u64, value: u64, value_two: u64) -> bool {
    match op {
        Op::ScmpCmpEq => arg == value,
        Op::ScmpCmpNe => arg != value,
        Op::ScmpCmpLt => arg < value,
        Op::ScmpCmpLe => arg <= value,
        Op::ScmpCmpGt => arg > value,
        Op::ScmpCmpGe => arg >= value,
        Op::ScmpCmpMaskedEq => arg & value == value_two,
    }
}

#[test]
fn argument_operators_on_64_and_32_bit_abis() {
    let ops = [
        Op::ScmpCmpEq,
        Op::ScmpCmpNe,
        Op::ScmpCmpLt,
        Op::ScmpCmpLe,
        Op::ScmpCmpGt,
        Op::ScmpCmpGe,
        Op::ScmpCmpMaskedEq,
    ];
    let values: [u64; 9] = [
        0,
        1,
        40,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0028,
        0x7e02_0000,
        0xdead_beef_0000_0028,
        u64::MAX,
    ];
    for op in ops {
        for (vi, &value) in values.iter().enumerate() {
            let value_two = values[(vi + 3) % values.len()] & value;
            let s = section(json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "architectures": ["SCMP_ARCH_X86"],
                "syscalls": [{"names": ["write"], "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 2, "value": value, "valueTwo": value_two, "op": op}]}]
            }));
            let f = filter_fn(&s, Host::X86_64);
            for &arg in &values {
                let args = [7, 7, arg, 7, 7, 7];
                let want = if holds(op, arg, value, value_two) {
                    ALLOW
                } else {
                    EPERM
                };
                assert_eq!(
                    f(AUDIT_ARCH_X86_64, 1, args),
                    want,
                    "{op:?} {arg:#x} vs {value:#x}/{value_two:#x}"
                );
                // i386 passes 32-bit arguments: the low words decide.
                let (a32, v32, t32) = (
                    arg as u32 as u64,
                    value as u32 as u64,
                    value_two as u32 as u64,
                );
                let want = if holds(op, a32, v32, t32) {
                    ALLOW
                } else {
                    EPERM
                };
                assert_eq!(
                    f(AUDIT_ARCH_I386, 4, [7, 7, a32, 7, 7, 7]),
                    want,
                    "i386 {op:?} {a32:#x} vs {v32:#x}/{t32:#x}"
                );
            }
        }
    }
}

#[test]
fn several_conditions_must_all_hold() {
    let s = section(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 0, "value": 1, "op": "SCMP_CMP_GT"},
            {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}
        ]}]
    }));
    let f = filter_fn(&s, Host::Aarch64);
    let kill = nr(Abi::Aarch64, "kill");
    let a = AUDIT_ARCH_AARCH64;
    assert_eq!(f(a, kill, [5, 9, 0, 0, 0, 0]), ALLOW);
    assert_eq!(f(a, kill, [1, 9, 0, 0, 0, 0]), EPERM);
    assert_eq!(f(a, kill, [5, 15, 0, 0, 0, 0]), EPERM);
}

#[test]
fn docker_clone_rules() {
    // clone without namespace flags; clone3 -> ENOSYS; no AF_VSOCK.
    let s = section(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "syscalls": [
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]}
        ]
    }));
    let f = filter_fn(&s, Host::X86_64);
    let x = AUDIT_ARCH_X86_64;
    let clone = nr(Abi::X86_64, "clone");
    let thread = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD) as u64;
    assert_eq!(f(x, clone, [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(f(x, clone, [thread, 0, 0, 0, 0, 0]), ALLOW);
    for ns in [
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWNS,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWCGROUP,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
    ] {
        assert_eq!(
            f(x, clone, [ns as u64 | libc::SIGCHLD as u64, 0, 0, 0, 0, 0]),
            EPERM,
            "{ns:#x}"
        );
    }
    assert_eq!(f(x, nr(Abi::X86_64, "clone3"), [0; 6]), errno(libc::ENOSYS));
    let socket = nr(Abi::X86_64, "socket");
    assert_eq!(f(x, socket, [libc::AF_INET as u64, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(f(x, socket, [libc::AF_VSOCK as u64, 0, 0, 0, 0, 0]), EPERM);
}

#[test]
fn long_programs_stay_in_jump_range() {
    // Every syscall with a two-word condition: far more than 255
    // instructions between the tree's jumps and their targets.
    let names: Vec<&str> = Abi::X86_64.table().iter().map(|(n, _)| *n).collect();
    let s = section(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 42, "op": "SCMP_CMP_EQ"}]}]
    }));
    let prog = compile(&s, Host::X86_64).unwrap();
    assert!(prog.len() > 2000, "{}", prog.len());
    assert!(bpf::well_formed(&prog));
    assert!(
        prog.iter().any(|i| i.code == bpf::JMP_JA),
        "no trampolines?"
    );
    for (name, n) in Abi::X86_64.table() {
        let d = |a0| data(AUDIT_ARCH_X86_64, *n, [a0, 0, 0, 0, 0, 0]);
        assert_eq!(bpf::run(&prog, &d(42)), ALLOW, "{name}");
        assert_eq!(bpf::run(&prog, &d(43)), EPERM, "{name}");
    }
    // Beyond what a program may hold.
    let many: Vec<serde_json::Value> = (0..40)
        .map(|i| {
            json!({"names": names, "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": i, "op": "SCMP_CMP_EQ"}]})
        })
        .collect();
    let s = section(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": many}));
    assert!(matches!(compile(&s, Host::X86_64), Err(Error::TooLong(_))));
}

#[test]
fn refused_sections() {
    let e = |v| compile(&section(v), Host::X86_64).unwrap_err().to_string();
    assert_eq!(
        e(json!({"defaultAction": "SCMP_ACT_NOTIFY"})),
        "linux.seccomp: SCMP_ACT_NOTIFY is not supported"
    );
    assert_eq!(
        e(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"})),
        "linux.seccomp: listenerPath (SCMP_ACT_NOTIFY) is not supported"
    );
    assert_eq!(
        e(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
            "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]})
        ),
        "linux.seccomp.syscalls[0].args: index 6 is out of range (0 to 5)"
    );
    assert_eq!(
        e(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000})),
        "linux.seccomp.defaultErrnoRet: errno 5000 is out of range (0 to 4095)"
    );
}

#[test]
fn flags_map_to_seccomp2() {
    let s = section(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                  "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    }));
    assert_eq!(
        flags(&s),
        (libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW) as u32
    );
}

/// A directory of this test's own under the system temp dir.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hind-seccomp-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

#[test]
fn cache_is_used_and_survives_damage() {
    let dir = temp_dir("cache");
    let s = section(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]
    }));
    let first = filter(&s, Some(&dir)).unwrap();
    let entries: Vec<_> = fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(entries.len(), 1, "one entry, no temp files");
    let path = entries[0].path();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );

    // A planted program under the right name is what the next call gets:
    // proof the cache is read rather than the section compiled again.
    let planted = bpf::to_bytes(&[bpf::Insn {
        code: bpf::RET_K,
        jt: 0,
        jf: 0,
        k: ALLOW,
    }]);
    store(&dir, path.file_stem().unwrap().to_str().unwrap(), &planted).unwrap();
    assert_eq!(filter(&s, Some(&dir)).unwrap().program, planted);

    // A damaged entry is compiled again and replaced.
    let mut bytes = fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 3);
    fs::write(&path, &bytes).unwrap();
    assert_eq!(filter(&s, Some(&dir)).unwrap(), first);
    assert!(read_cached(&path).is_some());

    // The same section written another way is the same entry.
    let same = section(json!({
        "syscalls": [{"action": "SCMP_ACT_ALLOW", "names": ["read"]}],
        "defaultAction": "SCMP_ACT_ERRNO"
    }));
    assert_eq!(cache_key(&s, Host::X86_64), cache_key(&same, Host::X86_64));
    assert_ne!(cache_key(&s, Host::X86_64), cache_key(&s, Host::Aarch64));
    // No cache dir at all: still a filter.
    assert_eq!(filter(&s, None).unwrap(), first);
    // A cache dir that cannot be made costs nothing but the cache.
    let file = dir.join("not-a-dir");
    fs::write(&file, b"").unwrap();
    assert_eq!(filter(&s, Some(&file.join("x"))).unwrap(), first);
    fs::remove_dir_all(&dir).unwrap();
}

/// Docker-style default profile as the CLI would resolve it for Docker's
/// default capabilities on x86_64 (the CLI owns the real resolution; this
/// keeps just enough of it to feed the compiler a realistic section).
fn default_profile_section() -> LinuxSeccomp {
    let p: serde_json::Value =
        serde_json::from_str(include_str!("../../../hind-cli/src/seccomp/default.json")).unwrap();
    let caps = ["CAP_SYS_CHROOT", "CAP_CHOWN", "CAP_KILL"];
    let mut rules = Vec::new();
    for r in p["syscalls"].as_array().unwrap() {
        let list = |c: &str, k: &str| -> Vec<String> {
            r[c][k]
                .as_array()
                .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        };
        let inc_caps = list("includes", "caps");
        let inc_arches = list("includes", "arches");
        let exc_caps = list("excludes", "caps");
        if inc_caps.iter().any(|c| !caps.contains(&c.as_str()))
            || (!inc_arches.is_empty() && !inc_arches.iter().any(|a| a == "amd64"))
            || exc_caps.iter().any(|c| caps.contains(&c.as_str()))
        {
            continue;
        }
        let mut rule = json!({"names": r["names"], "action": r["action"]});
        for k in ["args", "errnoRet"] {
            if !r[k].is_null() {
                rule[k] = r[k].clone();
            }
        }
        rules.push(rule);
    }
    section(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules
    }))
}

#[test]
fn default_profile_behaves_like_dockers() {
    let s = default_profile_section();
    let f = filter_fn(&s, Host::X86_64);
    let x = AUDIT_ARCH_X86_64;
    let call = |name: &str, a0: u64| f(x, nr(Abi::X86_64, name), [a0, 0, 0, 0, 0, 0]);
    for allowed in [
        "read",
        "write",
        "openat",
        "execve",
        "exit_group",
        "mkdir",
        "setresuid",
        "capset",
        "prctl",
        "close_range",
        "chroot",
        "ptrace",
        "futex_wait",
        "fchmodat2",
    ] {
        assert_eq!(call(allowed, 0), ALLOW, "{allowed}");
    }
    for denied in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "keyctl",
        "add_key",
        "request_key",
        "kexec_load",
        "kexec_file_load",
        "open_by_handle_at",
        "bpf",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "settimeofday",
        "clock_settime",
        "sethostname",
        "setdomainname",
        "swapon",
        "acct",
        "iopl",
        "ioperm",
        "userfaultfd",
        "perf_event_open",
        "fsopen",
        "open_tree",
        "pivot_root",
        "syslog",
        "vhangup",
        "lookup_dcookie",
        "quotactl",
        "nfsservctl",
        "uselib",
        "mbind",
        "kcmp",
    ] {
        assert_eq!(call(denied, 0), EPERM, "{denied}");
    }
    assert_eq!(call("clone3", 0), errno(libc::ENOSYS));
    assert_eq!(call("clone", libc::SIGCHLD as u64), ALLOW);
    assert_eq!(call("clone", libc::CLONE_NEWUSER as u64), EPERM);
    assert_eq!(call("personality", 0), ALLOW);
    assert_eq!(call("personality", 0xffff_ffff), ALLOW);
    assert_eq!(call("personality", 0x0040_0000), EPERM, "READ_IMPLIES_EXEC");
    assert_eq!(call("socket", libc::AF_UNIX as u64), ALLOW);
    assert_eq!(call("socket", libc::AF_VSOCK as u64), EPERM);
    // The 32-bit ABI is held to the same rules.
    let i = |name: &str| f(AUDIT_ARCH_I386, nr(Abi::X86, name), [0; 6]);
    assert_eq!(i("read"), ALLOW);
    assert_eq!(i("socketcall"), ALLOW);
    assert_eq!(i("clock_gettime64"), ALLOW);
    assert_eq!(i("mount"), EPERM);
    assert_eq!(i("keyctl"), EPERM);
    // Size, and the longest path any syscall takes through it: a binary
    // search, not a list.
    let prog = compile(&s, Host::X86_64).unwrap();
    assert!(prog.len() < 1000, "{} instructions", prog.len());
    let longest = (0..600)
        .chain(X32_SYSCALL_BIT..X32_SYSCALL_BIT + 600)
        .map(|n| bpf::trace(&prog, &data(x, n, [0; 6])).1)
        .max()
        .unwrap();
    assert!(longest <= 20, "{longest} instructions for one syscall");
}

#[test]
fn native_table_matches_libc() {
    // libc's SYS_* constants are this target's numbers: a macro over the
    // names of the calls a container policy most depends on.
    macro_rules! check {
        ($abi:expr, $($name:ident),* $(,)?) => {
            $(assert_eq!(
                $abi.number(stringify!($name).trim_start_matches("SYS_")),
                Some(libc::$name as u32),
                stringify!($name)
            );)*
        };
    }
    let abi = match Host::native().unwrap() {
        Host::X86_64 => Abi::X86_64,
        Host::Aarch64 => Abi::Aarch64,
    };
    check!(
        abi,
        SYS_read,
        SYS_write,
        SYS_openat,
        SYS_close,
        SYS_execve,
        SYS_execveat,
        SYS_exit_group,
        SYS_clone,
        SYS_clone3,
        SYS_unshare,
        SYS_setns,
        SYS_mount,
        SYS_umount2,
        SYS_pivot_root,
        SYS_ptrace,
        SYS_keyctl,
        SYS_add_key,
        SYS_request_key,
        SYS_kexec_load,
        SYS_bpf,
        SYS_open_by_handle_at,
        SYS_init_module,
        SYS_finit_module,
        SYS_socket,
        SYS_personality,
        SYS_mkdirat,
        SYS_setresuid,
        SYS_setgroups,
        SYS_capset,
        SYS_prctl,
        SYS_close_range,
        SYS_seccomp,
        SYS_io_uring_setup,
        SYS_pidfd_open,
        SYS_openat2,
        SYS_faccessat2,
        SYS_epoll_pwait2,
        SYS_futex_waitv,
        SYS_fchmodat2,
        SYS_mseal,
        SYS_settimeofday,
        SYS_reboot,
        SYS_sethostname,
        SYS_rt_sigreturn,
    );
    #[cfg(target_arch = "x86_64")]
    check!(
        abi,
        SYS_mkdir,
        SYS_open,
        SYS_arch_prctl,
        SYS_modify_ldt,
        SYS_iopl,
        SYS_ioperm,
        SYS_fork,
        SYS_vfork,
        SYS_umount2,
    );
    // Every ABI: no number twice.
    for abi in [Abi::X86_64, Abi::X32, Abi::X86, Abi::Aarch64, Abi::Arm] {
        let mut seen = std::collections::HashSet::new();
        for (name, n) in abi.table() {
            assert!(seen.insert(*n), "{abi:?}: {name} shares number {n}");
        }
    }
}

#[test]
fn compiled_program_is_pinned() {
    // When this fails, the compiler's output for the same section changed:
    // bump COMPILER_VERSION (so old cache entries are not used) and put the
    // new digest here.
    // A fixed section (not the CLI's default profile, which may change
    // without the compiler changing) with every kind of rule, for every
    // ABI; and the name tables themselves.
    let s = section(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                          "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "syscalls": [
            {"names": ["read", "write", "openat", "close", "mmap", "exit_group"],
             "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288u64, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["kill"], "action": "SCMP_ACT_LOG",
             "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_LE"},
                      {"index": 0, "value": 1, "op": "SCMP_CMP_GT"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
            {"names": ["ptrace"], "action": "SCMP_ACT_TRAP"},
            {"names": ["mount"], "action": "SCMP_ACT_KILL_PROCESS"}
        ]
    }));
    let mut h = Sha256::new();
    for host in [Host::X86_64, Host::Aarch64] {
        h.update(bpf::to_bytes(&compile(&s, host).unwrap()));
    }
    for abi in [Abi::X86_64, Abi::X32, Abi::X86, Abi::Aarch64, Abi::Arm] {
        h.update(format!("{:?}", abi.table()));
    }
    assert_eq!(
        (COMPILER_VERSION, hex(&h.finalize())),
        (
            2,
            String::from("479c4ac30d2a34f76ef8ba62060cd9b5e3eaf172079755fa23b14a92802878a6")
        )
    );
}

/// Prints what a compile and a cache hit cost (run with `--ignored
/// --nocapture`, in release mode for meaningful numbers).
#[test]
#[ignore]
fn bench_compile_against_cache() {
    let s = default_profile_section();
    let dir = temp_dir("bench");
    let n = 200;
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(filter(&s, None).unwrap());
    }
    let compiled = t.elapsed() / n;
    filter(&s, Some(&dir)).unwrap();
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(filter(&s, Some(&dir)).unwrap());
    }
    let cached = t.elapsed() / n;
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(cache_key(&s, Host::X86_64));
    }
    let key = t.elapsed() / n;
    let insns = compile(&s, Host::X86_64).unwrap().len();
    println!(
        "default profile: {insns} instructions; compile {compiled:?}, cached {cached:?} \
         (of which the cache key {key:?})"
    );
    fs::remove_dir_all(&dir).unwrap();

    // Loading it, and what it adds to a cheap syscall. A filter binds only
    // the thread that loads it (no TSYNC), so a thread of its own takes it
    // and takes it away when it ends.
    let program = filter(&s, None).unwrap().program;
    let calls = 200_000;
    let per_call = move || {
        let t = std::time::Instant::now();
        for _ in 0..calls {
            std::hint::black_box(nix::unistd::getppid());
        }
        t.elapsed() / calls
    };
    let bare = std::thread::spawn(per_call).join().unwrap();
    let (load, filtered) = std::thread::spawn(move || {
        nix::sys::prctl::set_no_new_privs().unwrap();
        let t = std::time::Instant::now();
        hind_init::sys::set_seccomp_filter(&program, 0).unwrap();
        let load = t.elapsed();
        (load, per_call())
    })
    .join()
    .unwrap();
    println!("load (seccomp(2)) {load:?}; getppid {bare:?} bare, {filtered:?} filtered");
}
