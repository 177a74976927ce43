//! Capabilities: Docker's default set unless told otherwise, `--cap-add`,
//! `--cap-drop` (ALL too), `--privileged`, none for a non-root user, and
//! the same rules for `hind exec`.

use hind_tests::detach::run_detached;
use hind_tests::{bb, TestEnv};

/// Docker's default capability set as a mask: CHOWN DAC_OVERRIDE FOWNER
/// FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT
/// MKNOD AUDIT_WRITE SETFCAP.
const DOCKER_DEFAULT: u64 = 0xa80425fb;

/// Reads one `Cap*` mask from the container's /proc/self/status.
fn caps(env: &TestEnv, flags: &[&str], field: &str) -> u64 {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    let script = format!("grep '^{field}:' /proc/self/status");
    args.extend_from_slice(&[bb(), "sh", "-c", &script]);
    let out = env.run(&args);
    out.expect_success();
    let hex = out.stdout.split_whitespace().nth(1).unwrap_or("");
    u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("no {field} in:\n{out}"))
}

/// The capabilities this test process (and so hind) may hand out.
fn host_bounding() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("CapBnd:")).unwrap();
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

#[test]
fn default_set_is_dockers() {
    let env = TestEnv::new("capdef");
    let want = DOCKER_DEFAULT & host_bounding();
    assert_eq!(caps(&env, &[], "CapEff"), want);
    assert_eq!(caps(&env, &[], "CapBnd"), want);
    assert_eq!(caps(&env, &[], "CapInh"), 0);
    assert_eq!(caps(&env, &[], "CapAmb"), 0);
    env.finish();
}

#[test]
fn cap_add_and_drop() {
    let env = TestEnv::new("capaddrop");
    let b = host_bounding();
    assert_eq!(
        caps(&env, &["--cap-drop", "ALL"], "CapEff"),
        0,
        "drop ALL leaves nothing"
    );
    assert_eq!(
        caps(
            &env,
            &["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"],
            "CapBnd"
        ),
        (1 << 12) & b
    );
    assert_eq!(
        caps(&env, &["--cap-drop", "CAP_CHOWN"], "CapEff"),
        DOCKER_DEFAULT & !1 & b
    );
    assert_eq!(
        caps(&env, &["--cap-add", "sys_admin"], "CapEff"),
        (DOCKER_DEFAULT | 1 << 21) & b
    );
    env.finish();
}

#[test]
fn privileged_has_everything_there_is() {
    let env = TestEnv::new("capprivileged");
    assert_eq!(caps(&env, &["--privileged"], "CapEff"), host_bounding());
    env.finish();
}

#[test]
fn non_root_user_has_none() {
    let env = TestEnv::new("capuser");
    assert_eq!(caps(&env, &["-u", "65534"], "CapEff"), 0);
    assert_eq!(caps(&env, &["-u", "65534"], "CapPrm"), 0);
    env.finish();
}

#[test]
fn default_set_cannot_mount_or_load_modules() {
    let env = TestEnv::new("capdeny");
    let out = env.run(&[
        "run",
        "--rm",
        bb(),
        "sh",
        "-c",
        "mkdir -p /mnt/x; mount -t tmpfs t /mnt/x && echo MOUNTED; \
         hostname evil 2>/dev/null && echo RENAMED; echo done",
    ]);
    out.expect_success();
    assert_eq!(out.stdout, "done\n", "{out}");
    env.finish();
}

#[test]
fn unknown_capability_is_refused() {
    let env = TestEnv::new("capbogus");
    let out = env.run(&["run", "--rm", "--cap-add", "BOGUS", bb(), "true"]);
    assert_eq!(out.code, 125, "{out}");
    out.expect_one_error_line(&["BOGUS"]);
    env.finish();
}

#[test]
fn exec_inherits_the_containers_set_and_privileged_widens_it() {
    let env = TestEnv::new("capexec");
    let _id = run_detached(&env, &["--name", "capx", bb(), "sleep", "60"]);
    let eff = |flags: &[&str]| -> u64 {
        let mut args = vec!["exec"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["capx", "grep", "^CapEff:", "/proc/self/status"]);
        let out = env.run(&args);
        out.expect_success();
        u64::from_str_radix(out.stdout.split_whitespace().nth(1).unwrap_or(""), 16).unwrap()
    };
    let b = host_bounding();
    assert_eq!(eff(&[]), DOCKER_DEFAULT & b);
    assert_eq!(eff(&["--privileged"]), b);
    assert_eq!(eff(&["-u", "65534"]), 0);
    env.run(&["rm", "-f", "capx"]).expect_success();
    env.finish();
}

/// `inspect` shows the privilege and device flags as given, in Docker's
/// HostConfig fields (null when not set).
#[test]
fn inspect_shows_privilege_flags() {
    use hind_tests::detach::inspect;
    let env = TestEnv::new("capinspect");
    env.allow_leftover_containers();
    let out = env.run(&[
        "run",
        "--name",
        "flags",
        "--cap-add",
        "NET_ADMIN",
        "--cap-drop",
        "MKNOD",
        "--security-opt",
        "no-new-privileges",
        "--security-opt",
        "label:disable",
        "--device",
        "/dev/zero:/dev/z:r",
        "--device-cgroup-rule",
        "c 1:11 w",
        "--group-add",
        "7",
        bb(),
        "true",
    ]);
    out.expect_success();
    let h = &inspect(&env, "flags")["HostConfig"];
    assert_eq!(h["Privileged"], false, "{h}");
    assert_eq!(h["CapAdd"], serde_json::json!(["NET_ADMIN"]), "{h}");
    assert_eq!(h["CapDrop"], serde_json::json!(["MKNOD"]), "{h}");
    assert_eq!(
        h["SecurityOpt"],
        serde_json::json!(["no-new-privileges=true", "label=disable"]),
        "{h}"
    );
    assert_eq!(
        h["Devices"],
        serde_json::json!([{"PathOnHost": "/dev/zero", "PathInContainer": "/dev/z", "CgroupPermissions": "r"}]),
        "{h}"
    );
    assert_eq!(
        h["DeviceCgroupRules"],
        serde_json::json!(["c 1:11 w"]),
        "{h}"
    );
    assert_eq!(h["GroupAdd"], serde_json::json!(["7"]), "{h}");
    env.run(&["run", "--name", "plain", "--privileged", bb(), "true"])
        .expect_success();
    let h = &inspect(&env, "plain")["HostConfig"];
    assert_eq!(h["Privileged"], true, "{h}");
    for k in [
        "CapAdd",
        "CapDrop",
        "SecurityOpt",
        "Devices",
        "DeviceCgroupRules",
        "VolumesFrom",
    ] {
        assert!(h[k].is_null(), "{k}: {h}");
    }
    env.run(&["rm", "flags", "plain"]).expect_success();
    env.finish();
}
