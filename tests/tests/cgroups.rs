//! Resource limits, checked from the host side while the container runs:
//! the values hind writes into the container's cgroup, and that the kernel
//! enforces them (OOM kill, fork failure). Also where the cgroup lives.

use std::path::Path;

use hind_tests::{bb, cgroup, TestEnv};

/// Reads a file of the running container's cgroup for `ctrl`.
#[track_caller]
fn read(dir: &Path, file: &str) -> String {
    cgroup::read(dir, file).unwrap_or_else(|| panic!("cannot read {}/{file}", dir.display()))
}

#[track_caller]
fn held_cgroup(env: &TestEnv, ctrl: &str) -> std::path::PathBuf {
    env.wait_container_cgroup(ctrl).unwrap_or_else(|| {
        panic!(
            "no container cgroup under {}",
            env.parent_cgroup(ctrl).display()
        )
    })
}

#[test]
fn container_cgroup_is_parent_slash_id() {
    let env = TestEnv::new("cgpath");
    let r = env.spawn_held(&[]);
    let ctrls: &[&str] = if cgroup::v2_only() {
        &["pids"]
    } else {
        &["memory", "pids", "cpu", "cpuset"]
    };
    let mut ids = Vec::new();
    for ctrl in ctrls {
        let dir = held_cgroup(&env, ctrl);
        let id = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        assert!(
            id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "cgroup {} is not named by a 64-hex id",
            dir.display()
        );
        ids.push(id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "different ids per hierarchy: {ids:?}");
    let running = env.containers();
    let dir = held_cgroup(&env, "pids");
    let init = cgroup::container_init(&dir);
    let out = r.release();
    out.expect_success();
    assert_eq!(running, ids, "cgroup name is not the container id");
    assert!(
        init.is_some(),
        "the container's PID 1 is not in {}",
        dir.display()
    );
    env.finish();
}

#[test]
fn cgroup_parent_flag_nested_path() {
    let env = TestEnv::new("cgflag");
    let nested = format!("{}/nested", env.cgroup_parent());
    let r = env.spawn_held(&["--cgroup-parent", &nested]);
    let dir = cgroup::join(&cgroup::controller_root("pids"), &nested);
    let kids = hind_tests::poll(std::time::Duration::from_secs(10), || {
        let k = cgroup::children(&dir);
        (!k.is_empty()).then_some(k)
    });
    let out = r.release();
    out.expect_success();
    assert!(
        kids.is_some_and(|k| k.len() == 1),
        "no container cgroup under {}",
        dir.display()
    );
    env.finish();
}

#[test]
fn memory_limit_is_written() {
    let env = TestEnv::new("memval");
    let r = env.spawn_held(&["-m", "64m"]);
    let dir = held_cgroup(&env, "memory");
    let got = if cgroup::v2_only() {
        read(&dir, "memory.max")
    } else {
        read(&dir, "memory.limit_in_bytes")
    };
    r.release().expect_success();
    assert_eq!(got, (64u64 << 20).to_string());
    env.finish();
}

#[test]
fn memory_limit_exceeded_is_oom_killed_137() {
    let env = TestEnv::new("oom");
    env.allow_leftover_containers();
    // PID 1 itself holds 100 MiB in a shell variable, so it is the process
    // the OOM killer picks.
    let out = env.run(&[
        "run",
        "-m",
        "32m",
        bb(),
        "sh",
        "-c",
        "a=$(head -c 100m /dev/zero | tr '\\000' x); echo survived ${#a}",
    ]);
    out.expect_code(137);
    assert!(!out.stdout.contains("survived"), "{out}");
    let rec = env.record(&env.only_container());
    assert_eq!(rec["status"], "exited", "{rec}");
    assert_eq!(rec["exit_code"], 137, "{rec}");
    assert_eq!(rec["oom_killed"], true, "{rec}");
    env.finish();
}

#[test]
fn pids_limit_is_written() {
    let env = TestEnv::new("pidsval");
    let r = env.spawn_held(&["--pids-limit", "20"]);
    let dir = held_cgroup(&env, "pids");
    let got = read(&dir, "pids.max");
    r.release().expect_success();
    assert_eq!(got, "20");
    env.finish();
}

#[test]
fn pids_limit_stops_forks() {
    let env = TestEnv::new("pidsfork");
    let out = env.run(&[
        "run",
        "--rm",
        "--pids-limit",
        "8",
        bb(),
        "sh",
        "-c",
        "i=0; while [ $i -lt 20 ]; do sleep 3 & i=$((i+1)); done; echo forked-all",
    ]);
    assert!(!out.timed_out, "{out}");
    assert!(
        !out.stdout.contains("forked-all"),
        "20 forks succeeded under pids.max 8:\n{out}"
    );
    assert!(out.stderr.contains("fork"), "{out}");
    assert_ne!(out.code, 0, "{out}");
    env.finish();
}

#[track_caller]
fn check_cpu(env: &TestEnv, flags: &[&str], quota: &str, period: &str) {
    let r = env.spawn_held(flags);
    let dir = held_cgroup(env, "cpu");
    let got = if cgroup::v2_only() {
        read(&dir, "cpu.max")
    } else {
        format!(
            "{} {}",
            read(&dir, "cpu.cfs_quota_us"),
            read(&dir, "cpu.cfs_period_us")
        )
    };
    r.release().expect_success();
    assert_eq!(got, format!("{quota} {period}"), "flags {flags:?}");
}

#[test]
fn cpus_sets_cfs_quota() {
    let env = TestEnv::new("cpus");
    check_cpu(&env, &["--cpus", "0.5"], "50000", "100000");
    env.finish();
}

#[test]
fn cpu_quota_and_period_flags() {
    let env = TestEnv::new("cpuqp");
    check_cpu(
        &env,
        &["--cpu-quota", "25000", "--cpu-period", "50000"],
        "25000",
        "50000",
    );
    env.finish();
}

#[test]
fn cpuset_cpus_is_written_and_applies() {
    let env = TestEnv::new("cpuset");
    let r = env.spawn_held(&["--cpuset-cpus", "0"]);
    let dir = held_cgroup(&env, "cpuset");
    let got = read(&dir, "cpuset.cpus");
    r.release().expect_success();
    assert_eq!(got, "0");
    let out = env.run(&[
        "run",
        "--rm",
        "--cpuset-cpus",
        "0",
        bb(),
        "grep",
        "Cpus_allowed_list",
        "/proc/self/status",
    ]);
    out.expect_success();
    assert_eq!(out.stdout.split_whitespace().last(), Some("0"), "{out}");
    env.finish();
}
