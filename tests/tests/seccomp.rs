//! Seccomp and `--security-opt`: the default profile (Docker's, in effect)
//! on every container and every `exec`, what it refuses and what a
//! capability opens, `seccomp=unconfined`, `--privileged`, custom profiles
//! in Docker's format, `no-new-privileges`, clean refusals of bad profiles
//! and options, and the compiled-filter cache.
//!
//! Raw syscalls that busybox has no applet for are made by
//! `seccomp-probe` (tests/src/bin), copied with its shared libraries into
//! a private busybox image.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use hind_tests::detach::run_detached;
use hind_tests::image::build_busybox_rootfs;
use hind_tests::{bb, TestEnv};

/// One `Name:\tvalue` line of the container's /proc/self/status.
fn status(env: &TestEnv, flags: &[&str], field: &str) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    let script = format!("grep '^{field}:' /proc/self/status");
    args.extend_from_slice(&[bb(), "sh", "-c", &script]);
    let out = env.run(&args);
    out.expect_success();
    out.stdout
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no {field} in:\n{out}"))
        .to_string()
}

/// A busybox image with `/bin/seccomp-probe` and the libraries it links.
fn probe_image(env: &TestEnv) -> PathBuf {
    let img = env.scratch().join("probe-img");
    build_busybox_rootfs(&img).expect("build the busybox image");
    let probe = hind_tests::bin_dir().join("seccomp-probe");
    assert!(
        probe.is_file(),
        "{} not found: run `cargo build --workspace --bins` first",
        probe.display()
    );
    let dest = img.join("bin/seccomp-probe");
    fs::copy(&probe, &dest).expect("copy seccomp-probe");
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).unwrap();
    let ldd = Command::new("ldd").arg(&probe).output().expect("run ldd");
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
        // "/lib64/ld-linux-x86-64.so.2 (0x...)"; the vdso has no path.
        let Some(lib) = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(Path::new)
        else {
            continue;
        };
        let to = img.join(lib.strip_prefix("/").unwrap());
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(lib, &to).unwrap_or_else(|e| panic!("copy {}: {e}", lib.display()));
    }
    img
}

/// Runs the probe in a container of `img` with `flags`; returns each
/// call's result (0 or -errno) by name.
fn probe(env: &TestEnv, img: &Path, flags: &[&str], calls: &[&str]) -> Vec<(String, i32)> {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.push(img.to_str().unwrap());
    args.push("/bin/seccomp-probe");
    args.extend_from_slice(calls);
    let out = env.run(&args);
    out.expect_success();
    out.stdout
        .split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("CALL=RESULT");
            (k.to_string(), v.parse().expect("a number"))
        })
        .collect()
}

fn result(results: &[(String, i32)], call: &str) -> i32 {
    results
        .iter()
        .find(|(k, _)| k == call)
        .unwrap_or_else(|| panic!("no {call} in {results:?}"))
        .1
}

const EPERM: i32 = -libc::EPERM;

#[test]
fn default_profile_filters_run_and_exec() {
    let env = TestEnv::new("secdefault");
    assert_eq!(status(&env, &[], "Seccomp"), "2");
    assert_eq!(status(&env, &[], "NoNewPrivs"), "0");
    let _id = run_detached(&env, &["--name", "secx", bb(), "sleep", "60"]);
    for flags in [&[][..], &["--privileged"], &["-u", "65534"]] {
        let mut args = vec!["exec"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["secx", "grep", "^Seccomp:", "/proc/self/status"]);
        let out = env.run(&args);
        out.expect_success();
        assert_eq!(
            out.stdout.split_whitespace().nth(1),
            Some("2"),
            "exec {flags:?}:\n{out}"
        );
    }
    // The container's filter binds exec --privileged too (as Docker's).
    let out = env.run(&[
        "exec",
        "--privileged",
        "secx",
        "sh",
        "-c",
        "mount -t tmpfs none /tmp && echo MOUNTED; echo done",
    ]);
    out.expect_success();
    assert_eq!(out.stdout, "done\n", "{out}");
    env.run(&["rm", "-f", "secx"]).expect_success();
    env.finish();
}

#[test]
fn namespaces_and_mounts_need_sys_admin() {
    let env = TestEnv::new("secsysadmin");
    let script = "mkdir -p /mnt/t; \
                  mount -t tmpfs none /mnt/t 2>/dev/null && echo mount-ok || echo mount-denied; \
                  unshare -U true 2>/dev/null && echo userns-ok || echo userns-denied; \
                  unshare -m true 2>/dev/null && echo mntns-ok || echo mntns-denied";
    let run = |flags: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[bb(), "sh", "-c", script]);
        let out = env.run(&args);
        out.expect_success();
        out.stdout
    };
    assert_eq!(run(&[]), "mount-denied\nuserns-denied\nmntns-denied\n");
    // With CAP_SYS_ADMIN Docker's profile lets mount and unshare through.
    assert_eq!(
        run(&["--cap-add", "SYS_ADMIN"]),
        "mount-ok\nuserns-ok\nmntns-ok\n"
    );
    // Unconfined: no filter, and the kernel alone decides (no
    // CAP_SYS_ADMIN for mount; a user namespace needs no capability).
    assert_eq!(
        run(&["--security-opt", "seccomp=unconfined"]),
        "mount-denied\nuserns-ok\nmntns-denied\n"
    );
    env.finish();
}

#[test]
fn dangerous_syscalls_are_denied() {
    let env = TestEnv::new("secsyscalls");
    let img = probe_image(&env);
    let calls = [
        "keyctl",
        "add_key",
        "request_key",
        "kexec_load",
        "open_by_handle_at",
        "bpf",
        "unshare-user",
        "clone3",
        "socket-vsock",
        "personality-query",
        "personality-exec",
    ];
    let r = probe(&env, &img, &[], &calls);
    for c in [
        "keyctl",
        "add_key",
        "request_key",
        "kexec_load",
        "open_by_handle_at",
        "bpf",
        "unshare-user",
        "socket-vsock",
        "personality-exec",
    ] {
        assert_eq!(result(&r, c), EPERM, "{c} in {r:?}");
    }
    // ENOSYS, so that libc falls back to clone, whose flags are visible.
    assert_eq!(result(&r, "clone3"), -libc::ENOSYS, "{r:?}");
    assert_eq!(result(&r, "personality-query"), 0, "{r:?}");

    // Without the filter the kernel answers these itself: proof that
    // the EPERMs above are the filter's.
    let r = probe(
        &env,
        &img,
        &["--security-opt", "seccomp=unconfined"],
        &calls,
    );
    for c in ["keyctl", "add_key", "request_key", "unshare-user", "clone3"] {
        assert_ne!(result(&r, c), EPERM, "{c} unconfined: {r:?}");
    }

    // A capability opens its calls, and only those: kexec_load never.
    let r = probe(
        &env,
        &img,
        &[
            "--cap-add",
            "DAC_READ_SEARCH",
            "--cap-add",
            "SYS_BOOT",
            "--cap-add",
            "SYS_ADMIN",
        ],
        &["open_by_handle_at", "bpf", "kexec_load", "keyctl", "clone3"],
    );
    assert_ne!(result(&r, "open_by_handle_at"), EPERM, "{r:?}");
    assert_ne!(result(&r, "bpf"), EPERM, "{r:?}");
    assert_eq!(result(&r, "clone3"), -libc::EINVAL, "{r:?}");
    assert_eq!(result(&r, "kexec_load"), EPERM, "{r:?}");
    assert_eq!(result(&r, "keyctl"), EPERM, "{r:?}");
    env.finish();
}

#[test]
fn unconfined_and_privileged_run_without_a_filter() {
    let env = TestEnv::new("secunconfined");
    assert_eq!(
        status(&env, &["--security-opt", "seccomp=unconfined"], "Seccomp"),
        "0"
    );
    assert_eq!(
        status(&env, &["--security-opt", "seccomp:unconfined"], "Seccomp"),
        "0"
    );
    assert_eq!(status(&env, &["--privileged"], "Seccomp"), "0");
    // --privileged wins over a profile, as in Docker.
    let p = env.scratch().join("allow.json");
    fs::write(&p, r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).unwrap();
    let opt = format!("seccomp={}", p.display());
    assert_eq!(
        status(&env, &["--privileged", "--security-opt", &opt], "Seccomp"),
        "0"
    );
    assert_eq!(status(&env, &["--security-opt", &opt], "Seccomp"), "2");
    env.finish();
}

#[test]
fn no_new_privileges_follows_the_flag() {
    let env = TestEnv::new("secnnp");
    let nnp = |flags: &[&str]| status(&env, flags, "NoNewPrivs");
    assert_eq!(nnp(&[]), "0");
    assert_eq!(nnp(&["--security-opt", "no-new-privileges"]), "1");
    assert_eq!(nnp(&["--security-opt", "no-new-privileges=true"]), "1");
    assert_eq!(nnp(&["--security-opt", "no-new-privileges:true"]), "1");
    assert_eq!(nnp(&["--security-opt", "no-new-privileges=false"]), "0");
    // With no_new_privs the filter is loaded last, after the switch to
    // the user: still on, for root and for others.
    for user in ["0", "65534"] {
        let flags = ["--security-opt", "no-new-privileges", "-u", user];
        assert_eq!(status(&env, &flags, "Seccomp"), "2", "user {user}");
        assert_eq!(status(&env, &flags, "NoNewPrivs"), "1", "user {user}");
    }
    assert_eq!(status(&env, &["-u", "65534"], "Seccomp"), "2");
    let out = env.run(&[
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges=maybe",
        bb(),
        "true",
    ]);
    out.expect_hind_error(125, &["no-new-privileges"]);
    env.finish();
}

#[test]
fn custom_profile_sets_its_errno() {
    let env = TestEnv::new("seccustom");
    let p = env.scratch().join("no-mkdir.json");
    // Docker's format: everything allowed but making directories, which
    // fails with ENOTDIR.
    fs::write(
        &p,
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 20,
                 "comment": "no new directories"}
            ]
        }"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", p.display());
    let out = env.run(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        bb(),
        "sh",
        "-c",
        "mkdir /tmp/d; echo rc=$?; touch /tmp/f && echo touched",
    ]);
    out.expect_success();
    assert_eq!(out.stdout, "rc=1\ntouched\n", "{out}");
    assert!(out.stderr.contains("Not a directory"), "{out}");

    // Every syscall named in a profile reaches exec'd processes too.
    let _id = run_detached(
        &env,
        &[
            "--name",
            "secc",
            "--security-opt",
            &opt,
            bb(),
            "sleep",
            "60",
        ],
    );
    let out = env.run(&["exec", "secc", "mkdir", "/tmp/e"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("Not a directory"), "{out}");
    env.run(&["rm", "-f", "secc"]).expect_success();

    // A relative path is the caller's.
    let out = env.run_cmd({
        let mut c = env.hind();
        c.current_dir(env.scratch()).args([
            "run",
            "--rm",
            "--security-opt",
            "seccomp=no-mkdir.json",
            bb(),
            "mkdir",
            "/tmp/d",
        ]);
        c
    });
    assert_eq!(out.code, 1, "{out}");
    env.finish();
}

#[test]
fn bad_profiles_and_options_are_refused_cleanly() {
    let env = TestEnv::new("secbad");
    let write = |name: &str, text: &str| -> String {
        let p = env.scratch().join(name);
        fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let bad_action = write(
        "bad-action.json",
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}]}"#,
    );
    let bad_op = write(
        "bad-op.json",
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]}]}"#,
    );
    let not_json = write("not-json.json", "{\"defaultAction\": ");
    let notify = write(
        "notify.json",
        r#"{"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/run/agent.sock"}"#,
    );
    let cases: [(&str, &[&str]); 5] = [
        (&bad_action, &["syscalls[0].action", "SCMP_ACT_BOGUS"]),
        (&bad_op, &["syscalls[0].args[0].op", "SCMP_CMP_SOMETIMES"]),
        (&not_json, &["invalid JSON"]),
        (&notify, &["SCMP_ACT_NOTIFY"]),
        ("/nonexistent/profile.json", &["No such file"]),
    ];
    for (file, names) in cases {
        let opt = format!("seccomp={file}");
        let out = env.run(&["run", "--rm", "--security-opt", &opt, bb(), "true"]);
        let mut all = vec![file];
        all.extend_from_slice(names);
        out.expect_hind_error(125, &all);
        // Also without --rm: nothing may be left behind either way.
        let out = env.run(&["run", "--name", "x", "--security-opt", &opt, bb(), "true"]);
        out.expect_hind_error(125, &all);
        assert!(
            env.containers().is_empty(),
            "{file}: {:?}",
            env.containers()
        );
    }
    for opt in ["bogus", "apparmor=docker-default", "seccomp"] {
        let out = env.run(&["run", "--rm", "--security-opt", opt, bb(), "true"]);
        out.expect_hind_error(125, &["--security-opt", opt]);
    }
    // No-ops that already hold for hind.
    env.run(&[
        "run",
        "--rm",
        "--security-opt",
        "label=disable",
        "--security-opt",
        "apparmor=unconfined",
        bb(),
        "true",
    ])
    .expect_success();
    env.finish();
}

/// The `.bpf` files of the filter cache.
fn cache_entries(env: &TestEnv) -> Vec<PathBuf> {
    let dir = env.root().join("cache/seccomp");
    let mut v: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn filters_are_compiled_once_and_cached() {
    let env = TestEnv::new("seccache");
    env.run(&["run", "--rm", bb(), "true"]).expect_success();
    let first = cache_entries(&env);
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].extension().is_some_and(|e| e == "bpf"));
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&first[0]), 0o600);
    assert_eq!(mode(first[0].parent().unwrap()), 0o700);
    let before = fs::metadata(&first[0]).unwrap().modified().unwrap();

    // The same profile and capabilities: the same entry, not rewritten.
    env.run(&["run", "--rm", bb(), "true"]).expect_success();
    assert_eq!(cache_entries(&env), first);
    assert_eq!(fs::metadata(&first[0]).unwrap().modified().unwrap(), before);

    // Other capabilities resolve to another section: a second entry.
    env.run(&["run", "--rm", "--cap-add", "SYS_ADMIN", bb(), "true"])
        .expect_success();
    assert_eq!(cache_entries(&env).len(), 2);

    // A damaged entry is compiled again, and the container still confined.
    fs::write(&first[0], b"garbage").unwrap();
    assert_eq!(status(&env, &[], "Seccomp"), "2");
    assert!(fs::read(&first[0]).unwrap().len() > 100);
    env.finish();
}
