//! Helpers for the tests of detached containers: `hind run -d` returning an
//! id, reading `inspect` and `ps --format json` as JSON, polling a
//! container's logs or state, and looking at host processes (alive or a
//! zombie, parent and session, the shims of a container) and at the
//! container cgroups under a test's cgroup parent.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::process::Output;
use crate::{cgroup, clean, TestEnv};

/// A container script that prints `ready` and then waits (at most 10 min)
/// until SIGTERM, on which it prints `got-term` and exits 0. The shell
/// waits on a background `sleep`, so the trap runs at once.
pub const SERVE: &str = "trap 'echo got-term; exit 0' TERM; echo ready; sleep 600 & wait";

/// True for a full container id: 64 lowercase hex digits.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Runs `hind run -d ARGS`, expects success and one line holding a full
/// id on stdout, and returns that id.
#[track_caller]
pub fn run_detached(env: &TestEnv, args: &[&str]) -> String {
    let mut all = vec!["run", "-d"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    out.expect_success();
    let id = out.stdout.trim_end_matches('\n');
    assert!(
        is_full_id(id),
        "run -d must print exactly the 64-hex id:\n{out}"
    );
    id.to_string()
}

/// `hind inspect CONTAINER` parsed; panics unless it is an array of one.
#[track_caller]
pub fn inspect(env: &TestEnv, container: &str) -> serde_json::Value {
    let out = env.run(&["inspect", container]);
    out.expect_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("inspect output is not JSON ({e}):\n{out}"));
    let arr = v
        .as_array()
        .unwrap_or_else(|| panic!("inspect output is not an array:\n{out}"));
    assert_eq!(arr.len(), 1, "inspect of one container:\n{out}");
    arr[0].clone()
}

/// `hind inspect -f TEMPLATE CONTAINER`, trimmed.
#[track_caller]
pub fn inspect_fmt(env: &TestEnv, container: &str, template: &str) -> String {
    let out = env.run(&["inspect", "-f", template, container]);
    out.expect_success();
    out.stdout.trim().to_string()
}

/// `hind ps [-a] --no-trunc --format json`, one object per line.
#[track_caller]
pub fn ps_json(env: &TestEnv, all: bool) -> Vec<serde_json::Value> {
    let mut args = vec!["ps", "--no-trunc", "--format", "json"];
    if all {
        args.push("-a");
    }
    let out = env.run(&args);
    out.expect_success();
    out.stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("ps line {l:?} is not JSON ({e}):\n{out}"))
        })
        .collect()
}

/// The `ps -a --format json` object of the container with full id `id`.
#[track_caller]
pub fn ps_entry(env: &TestEnv, id: &str) -> Option<serde_json::Value> {
    ps_json(env, true).into_iter().find(|e| e["ID"] == id)
}

/// `hind logs ARGS` (ending with the container); expects success.
#[track_caller]
pub fn logs(env: &TestEnv, args: &[&str]) -> Output {
    let mut all = vec!["logs"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    out.expect_success();
    out
}

/// Calls `f` every 100 ms until it returns `Some` or `timeout` passes.
pub fn poll_slow<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits up to `timeout` for `needle` in `hind logs CONTAINER` (stdout
/// and stderr); panics with the logs if it does not come.
#[track_caller]
pub fn wait_for_log(env: &TestEnv, container: &str, needle: &str, timeout: Duration) {
    let mut last = None;
    let found = poll_slow(timeout, || {
        let out = env.run(&["logs", container]);
        let hit = out.stdout.contains(needle) || out.stderr.contains(needle);
        last = Some(out);
        hit.then_some(())
    });
    if found.is_none() {
        panic!(
            "{needle:?} did not appear in the logs of {container} within {timeout:?}:\n{}",
            last.map(|o| o.to_string()).unwrap_or_default()
        );
    }
}

/// Waits up to `timeout` until `inspect CONTAINER` satisfies `f`; returns
/// the matching document, or panics with the last one.
#[track_caller]
pub fn wait_for_state(
    env: &TestEnv,
    container: &str,
    timeout: Duration,
    what: &str,
    f: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    let found = poll_slow(timeout, || {
        let doc = inspect(env, container);
        let ok = f(&doc);
        last = doc;
        ok.then(|| last.clone())
    });
    found.unwrap_or_else(|| {
        panic!("{container} did not become {what} within {timeout:?}; last inspect:\n{last:#}")
    })
}

/// Waits until the container has exited (inspect `State.Status` is
/// `exited`) and returns its inspect document.
#[track_caller]
pub fn wait_exited(env: &TestEnv, container: &str, timeout: Duration) -> serde_json::Value {
    wait_for_state(env, container, timeout, "exited", |d| {
        d["State"]["Status"] == "exited"
    })
}

/// `hind rm -f CONTAINERS`; expects success.
#[track_caller]
pub fn rm_f(env: &TestEnv, containers: &[&str]) {
    let mut args = vec!["rm", "-f"];
    args.extend_from_slice(containers);
    env.run(&args).expect_success();
}

/// What `/proc/PID/stat` says about a process.
#[derive(Debug, Clone, Copy)]
pub struct ProcStat {
    /// `R`, `S`, `D`, `Z` ...
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
}

/// Parses `/proc/PID/stat`; `None` when the process does not exist.
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything; the
    // fields after the last `)` are fixed.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        session: f.get(3)?.parse().ok()?,
    })
}

/// True when `pid` exists and is not a zombie (a dead process nobody has
/// reaped yet does not count as alive).
pub fn alive(pid: i32) -> bool {
    proc_stat(pid).is_some_and(|s| !matches!(s.state, 'Z' | 'X' | 'x'))
}

/// Waits up to `timeout` for `pid` to be gone or a zombie.
pub fn wait_dead(pid: i32, timeout: Duration) -> bool {
    crate::poll(timeout, || (!alive(pid)).then_some(())).is_some()
}

/// Live (non-zombie) `hind-shim` processes whose command line names the
/// container id `id`.
pub fn shim_pids(id: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let comm = fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim() != "hind-shim" || !alive(pid) {
            continue;
        }
        let cmd = fs::read(e.path().join("cmdline")).unwrap_or_default();
        if cmd.split(|&b| b == 0).any(|a| a == id.as_bytes()) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

/// Child cgroups of the test's cgroup parent, in every hierarchy.
pub fn container_cgroups(env: &TestEnv) -> Vec<PathBuf> {
    clean::parent_dirs(env.cgroup_parent())
        .iter()
        .flat_map(|d| cgroup::children(d))
        .collect()
}

/// Pids (host view) in the test's cgroups, in every hierarchy.
pub fn cgroup_pids(env: &TestEnv) -> Vec<i32> {
    let mut pids: Vec<i32> = clean::parent_dirs(env.cgroup_parent())
        .iter()
        .flat_map(|d| cgroup::subtree_pids(d))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Panics unless nothing of container `id` is left: no directory, no
/// socket, no cgroup under the test's parent, no live shim.
#[track_caller]
pub fn assert_gone(env: &TestEnv, id: &str) {
    let dir = env.container_dir(id);
    assert!(!dir.exists(), "container dir left: {}", dir.display());
    let sock = env.root().join("run").join(format!("{id}.sock"));
    assert!(!sock.exists(), "socket left: {}", sock.display());
    let cgs = container_cgroups(env);
    assert!(cgs.is_empty(), "cgroups left: {cgs:?}");
    let shims = shim_pids(id);
    assert!(shims.is_empty(), "shim still running: {shims:?}");
}

/// Entries of `ROOT/names` (one per named container).
pub fn names(env: &TestEnv) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(env.root().join("names"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
