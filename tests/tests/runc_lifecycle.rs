//! The runc command line, end to end: a container's life through
//! `create`/`start`/`state`/`kill`/`delete`, `run` in the foreground and
//! detached, `exec`, `ps`, `list`, `pause`/`resume`, `update`, the console
//! socket, the JSON log, `features`, `spec`, `--version`, and how bad input
//! is refused.
//!
//! Runtime-agnostic: every assertion holds for the reference runc
//! (`HIND_TEST_RUNC=/usr/bin/runc`) and must hold for `hind-runc`, except
//! the few guarded by [`runtime_is_hind`], which check hind's own wording
//! (naming the config field, naming an unknown container id).

use std::fs;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use serde_json::{json, Value};

use hind_tests::runc::{runtime_is_hind, Bundle, ConsoleSocket, Runc, RuntimeOutput};
use hind_tests::{cgroup, poll, TestEnv};

const T: Duration = Duration::from_secs(10);

/// Not a zombie, and there: what `kill 0` would say about a process.
fn running(pid: i32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    match stat.rfind(')') {
        Some(i) => !matches!(stat[i + 1..].split_whitespace().next(), Some("Z" | "X")),
        None => false,
    }
}

/// The pids in `ps --format json ID`.
#[track_caller]
fn ps_pids(rt: &Runc, id: &str) -> Vec<i32> {
    let out = rt.cmd(&["ps", "--format", "json", id]);
    out.expect_success();
    let v: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("ps json: {e}\n{out}"));
    let mut pids: Vec<i32> = v
        .as_array()
        .unwrap_or_else(|| panic!("ps json is not an array:\n{out}"))
        .iter()
        .map(|p| p.as_i64().expect("pid is a number") as i32)
        .collect();
    pids.sort_unstable();
    pids
}

/// State fails the way it does for a container that does not exist.
#[track_caller]
fn assert_gone(rt: &Runc, id: &str) {
    rt.try_state(id).expect_runtime_error(&[]);
    assert!(
        !rt.root().join(id).exists(),
        "state dir of {id} left in {}",
        rt.root().display()
    );
}

/// Kills everything in container `id` and deletes it.
#[track_caller]
fn kill_and_delete(rt: &Runc, id: &str) {
    rt.cmd(&["kill", "--all", id, "KILL"]).expect_success();
    assert!(rt.wait_status(id, "stopped", T), "{id} never stopped");
    rt.delete(id).expect_success();
    assert_gone(rt, id);
}

#[test]
fn create_start_kill_delete() {
    let env = TestEnv::new("rc_life");
    let rt = Runc::new(&env);
    let id = "life1";
    // Holds until SIGTERM, which makes it exit 0. The trap is set before
    // the marker, so seeing the marker means the trap is in place.
    let b = Bundle::new(
        &env,
        id,
        &[
            "sh",
            "-c",
            "trap 'exit 0' TERM; touch /tmp/started; sleep 1000 & wait",
        ],
    );
    let pid_file = env.scratch().join("life1.pid");
    let pid_file_s = pid_file.to_str().unwrap();

    rt.create(&b, id, &["--pid-file", pid_file_s])
        .expect_success();
    let st = rt.state(id);
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["id"], id, "{st}");
    assert!(st["ociVersion"].is_string(), "{st}");
    assert_eq!(st["bundle"], b.dir_str(), "{st}");
    assert_eq!(st["rootfs"], b.rootfs().to_str().unwrap(), "{st}");
    assert!(
        st["created"].as_str().is_some_and(|c| c.contains('T')),
        "{st}"
    );
    let pid = st["pid"].as_i64().expect("created container has a pid") as i32;
    assert!(pid > 0, "{st}");
    let written = fs::read_to_string(&pid_file).expect("pid file written by create");
    assert_eq!(written.trim(), pid.to_string(), "pid file content");
    assert!(running(pid), "init {pid} of a created container must exist");
    let procs = cgroup::read(&b.cgroup_dir("pids"), "cgroup.procs").unwrap_or_default();
    assert!(
        procs.lines().any(|l| l.trim() == pid.to_string()),
        "init {pid} not in its cgroup {}: {procs:?}",
        b.cgroup_dir("pids").display()
    );
    // The user process has not run yet.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !b.rootfs().join("tmp/started").exists(),
        "the command ran before start"
    );
    // Creating the same id again is refused and changes nothing.
    let b2 = Bundle::new(&env, "life1-dup", &["true"]);
    let out = rt.create(&b2, id, &[]);
    out.expect_runtime_error(&["exists"]);
    if runtime_is_hind() {
        out.expect_runtime_error(&[id]);
    }
    assert_eq!(rt.status(id), "created");
    assert_eq!(rt.state(id)["bundle"], b.dir_str());

    rt.start(id).expect_success();
    assert!(
        poll(T, || b.rootfs().join("tmp/started").exists().then_some(())).is_some(),
        "the command did not run after start"
    );
    let st = rt.state(id);
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(st["pid"].as_i64(), Some(pid as i64), "pid changed: {st}");
    // A running container cannot be started again.
    rt.start(id).expect_runtime_error(&[]);

    // Default signal: SIGTERM, which the trap turns into exit 0.
    rt.kill(id, "").expect_success();
    assert!(rt.wait_status(id, "stopped", T), "not stopped after kill");
    assert_eq!(
        rt.exit_status(pid, T),
        Some(WaitStatus::Exited(Pid::from_raw(pid), 0)),
        "init must be the caller's (subreaper's) child and exit 0 on SIGTERM"
    );
    // Stopped: killing it is an error, starting it too.
    rt.kill(id, "KILL").expect_runtime_error(&[]);
    rt.start(id).expect_runtime_error(&[]);

    rt.delete(id).expect_success();
    assert_gone(&rt, id);
    assert!(
        !b.cgroup_dir("pids").exists(),
        "cgroup {} left after delete",
        b.cgroup_dir("pids").display()
    );
    env.finish();
}

#[test]
fn kill_signal_spellings() {
    let env = TestEnv::new("rc_killsig");
    let rt = Runc::new(&env);
    for (i, sig) in ["9", "KILL", "SIGKILL"].iter().enumerate() {
        let id = format!("ks{i}");
        let b = Bundle::new(&env, &id, &["sleep", "1000"]);
        rt.run(&b, &id, &["-d"]).expect_success();
        let pid = rt.pid(&id);
        rt.kill(&id, sig).expect_success();
        assert!(rt.wait_status(&id, "stopped", T), "kill {sig}: not stopped");
        assert_eq!(
            rt.exit_status(pid, T),
            Some(WaitStatus::Signaled(
                Pid::from_raw(pid),
                Signal::SIGKILL,
                false
            )),
            "kill {sig}"
        );
        rt.delete(&id).expect_success();
        assert_gone(&rt, &id);
    }
    // A signal the runtime does not know is refused, naming it.
    let b = Bundle::new(&env, "ksbad", &["sleep", "1000"]);
    rt.run(&b, "ksbad", &["-d"]).expect_success();
    rt.kill("ksbad", "SIGNOPE")
        .expect_runtime_error(&["SIGNOPE"]);
    assert_eq!(rt.status("ksbad"), "running");
    kill_and_delete(&rt, "ksbad");
    env.finish();
}

/// `kill` signals init only (which, as PID 1 of its namespace, ignores
/// SIGTERM without a handler); `kill --all` signals every process.
#[test]
fn kill_all_signals_every_process() {
    let env = TestEnv::new("rc_killall");
    let rt = Runc::new(&env);
    let id = "kall";
    let b = Bundle::new(&env, id, &["sh", "-c", "sleep 1000 & sleep 1001 & wait"]);
    rt.run(&b, id, &["-d"]).expect_success();
    let init = rt.pid(id);
    let pids = poll(T, || {
        let p = ps_pids(&rt, id);
        (p.len() == 3).then_some(p)
    })
    .expect("init and two sleeps");
    assert!(pids.contains(&init), "{pids:?} lacks init {init}");

    rt.kill(id, "TERM").expect_success();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(rt.status(id), "running", "init ignores SIGTERM");
    assert_eq!(ps_pids(&rt, id), pids, "plain kill reached other processes");

    rt.cmd(&["kill", "--all", id, "TERM"]).expect_success();
    // The sleeps die, so init's `wait` returns and the shell exits.
    assert!(
        rt.wait_status(id, "stopped", T),
        "kill --all did not stop it"
    );
    for p in &pids {
        assert!(!running(*p), "{p} survived kill --all");
    }
    rt.delete(id).expect_success();
    assert_gone(&rt, id);
    env.finish();
}

#[test]
fn delete_running_needs_force() {
    let env = TestEnv::new("rc_delforce");
    let rt = Runc::new(&env);
    let id = "delf";
    let b = Bundle::new(&env, id, &["sleep", "1000"]);
    rt.run(&b, id, &["-d"]).expect_success();
    let pid = rt.pid(id);

    rt.delete(id).expect_runtime_error(&[id]);
    assert_eq!(rt.status(id), "running", "failed delete changed the state");
    assert!(running(pid));

    rt.delete_force(id).expect_success();
    assert_gone(&rt, id);
    assert!(
        poll(T, || (!running(pid)).then_some(())).is_some(),
        "init {pid} survived delete --force"
    );
    assert!(!b.cgroup_dir("pids").exists(), "cgroup left");
    // Forcing the deletion of what does not exist is not an error.
    rt.delete_force(id).expect_success();
    // A created (never started) container can be force-deleted too.
    let b2 = Bundle::new(&env, "delf2", &["true"]);
    rt.create(&b2, "delf2", &[]).expect_success();
    rt.delete_force("delf2").expect_success();
    assert_gone(&rt, "delf2");
    env.finish();
}

#[test]
fn run_foreground_passes_status_and_output() {
    let env = TestEnv::new("rc_runfg");
    let rt = Runc::new(&env);
    let b = Bundle::new(
        &env,
        "fg1",
        &["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"],
    );
    let out = rt.run(&b, "fg1", &[]);
    out.expect_code(3);
    assert_eq!(out.stdout, "to-stdout\n", "{out}");
    assert!(out.stderr.contains("to-stderr"), "{out}");
    // A foreground run deletes its container when it ends.
    assert_gone(&rt, "fg1");

    let b = Bundle::new(&env, "fg2", &["true"]);
    rt.run(&b, "fg2", &[]).expect_code(0);
    assert_gone(&rt, "fg2");

    // Input: the runtime's stdin is the container's.
    let b = Bundle::new(&env, "fg3", &["sh", "-c", "read l; echo got-$l"]);
    let mut c = rt.command();
    c.args(["run", "--bundle", b.dir_str(), "fg3"]);
    rt.track("fg3");
    let out = rt.run_cmd(c, b"line\n");
    out.expect_code(0);
    assert_eq!(out.stdout, "got-line\n", "{out}");
    assert_gone(&rt, "fg3");
    env.finish();
}

/// A command that cannot be started: one error line naming it on stderr,
/// the same as a JSON `{"level":"error","msg":...}` line in `--log`, and
/// nothing left behind.
#[test]
fn bad_command_is_logged_as_json_error() {
    let env = TestEnv::new("rc_badcmd");
    let rt = Runc::new(&env);
    let b = Bundle::new(&env, "bad1", &["no-such-cmd-e2e"]);
    let out = rt.run(&b, "bad1", &[]);
    out.expect_runtime_error(&["no-such-cmd-e2e"]);
    let errors: Vec<Value> = rt
        .log_entries()
        .into_iter()
        .filter(|e| e["level"] == "error")
        .collect();
    assert!(
        errors.iter().any(|e| e["msg"]
            .as_str()
            .is_some_and(|m| m.contains("no-such-cmd-e2e"))),
        "no error entry naming the command in the log:\n{}",
        rt.log_text()
    );
    for line in rt.log_text().lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line:?}"));
        assert!(v["level"].is_string() && v["msg"].is_string(), "{line}");
    }
    assert_gone(&rt, "bad1");
    env.finish();
}

#[test]
fn run_detached() {
    let env = TestEnv::new("rc_rund");
    let rt = Runc::new(&env);
    let id = "det1";
    let b = Bundle::new(
        &env,
        id,
        &["sh", "-c", "echo detached-out; touch /tmp/ran; sleep 1000"],
    );
    let pid_file = env.scratch().join("det1.pid");
    let started = std::time::Instant::now();
    rt.run(&b, id, &["-d", "--pid-file", pid_file.to_str().unwrap()])
        .expect_success();
    assert!(started.elapsed() < T, "run -d waited for the container");
    let st = rt.state(id);
    assert_eq!(st["status"], "running", "{st}");
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert_eq!(
        fs::read_to_string(&pid_file).expect("pid file").trim(),
        pid.to_string()
    );
    assert!(
        poll(T, || b.rootfs().join("tmp/ran").exists().then_some(())).is_some(),
        "command did not run"
    );
    assert!(
        poll(T, || rt
            .container_stdout(id)
            .contains("detached-out")
            .then_some(()))
        .is_some(),
        "container stdout is not the runtime's: {:?}",
        rt.container_stdout(id)
    );
    kill_and_delete(&rt, id);
    env.finish();
}

#[test]
fn exec_command_line() {
    let env = TestEnv::new("rc_exec");
    let rt = Runc::new(&env);
    let id = "ex1";
    let b = Bundle::new(&env, id, &["sleep", "1000"]);
    rt.run(&b, id, &["-d"]).expect_success();

    let out = rt.exec(
        id,
        &[],
        &["sh", "-c", "echo exec-out; echo exec-err >&2; exit 5"],
    );
    out.expect_code(5);
    assert_eq!(out.stdout, "exec-out\n", "{out}");
    assert!(out.stderr.contains("exec-err"), "{out}");

    let out = rt.exec(
        id,
        &["--cwd", "/tmp", "--env", "FOO=bar", "--env", "BAZ=qux"],
        &["sh", "-c", "pwd; echo $FOO-$BAZ"],
    );
    out.expect_success();
    assert_eq!(out.stdout, "/tmp\nbar-qux\n", "{out}");

    // The exec'd process sees the container: its pid namespace, its root.
    let out = rt.exec(id, &[], &["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"]);
    out.expect_success();
    assert_eq!(out.stdout.trim(), "sleep 1000", "{out}");

    // Input reaches it.
    let mut c = rt.command();
    c.args(["exec", id, "sh", "-c", "read l; echo in-$l"]);
    let out = rt.run_cmd(c, b"put\n");
    out.expect_success();
    assert_eq!(out.stdout, "in-put\n", "{out}");

    // A command that does not exist: runc fails exec with 255.
    let out = rt.exec(id, &[], &["no-such-exec-e2e"]);
    out.expect_code(255);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].contains("no-such-exec-e2e"), "{out}");
    assert_eq!(rt.status(id), "running");

    kill_and_delete(&rt, id);
    env.finish();
}

#[test]
fn exec_process_json() {
    let env = TestEnv::new("rc_execproc");
    let rt = Runc::new(&env);
    let id = "exp1";
    let b = Bundle::new(&env, id, &["sleep", "1000"]);
    rt.run(&b, id, &["-d"]).expect_success();
    let process = json!({
        "terminal": false,
        "user": { "uid": 65534, "gid": 65534 },
        "args": ["sh", "-c", "echo $A; pwd; id -u; id -g"],
        "env": ["PATH=/bin", "A=from-json"],
        "cwd": "/tmp"
    });
    let p = env.scratch().join("process.json");
    fs::write(&p, process.to_string()).unwrap();
    let out = rt.exec(id, &["--process", p.to_str().unwrap()], &[]);
    out.expect_success();
    assert_eq!(out.stdout, "from-json\n/tmp\n65534\n65534\n", "{out}");

    // Its exit status comes back too.
    let p2 = env.scratch().join("process2.json");
    let mut process2 = process.clone();
    process2["args"] = json!(["sh", "-c", "exit 9"]);
    fs::write(&p2, process2.to_string()).unwrap();
    rt.exec(id, &["--process", p2.to_str().unwrap()], &[])
        .expect_code(9);

    kill_and_delete(&rt, id);
    env.finish();
}

#[test]
fn exec_detached_with_pid_file() {
    let env = TestEnv::new("rc_execd");
    let rt = Runc::new(&env);
    let id = "exd1";
    let b = Bundle::new(&env, id, &["sleep", "1000"]);
    rt.run(&b, id, &["-d"]).expect_success();
    let init = rt.pid(id);
    let pid_file = env.scratch().join("exec.pid");
    rt.exec(
        id,
        &["-d", "--pid-file", pid_file.to_str().unwrap()],
        &["sh", "-c", "touch /tmp/exec-ran; exec sleep 1001"],
    )
    .expect_success();
    let pid: i32 = fs::read_to_string(&pid_file)
        .expect("exec pid file")
        .trim()
        .parse()
        .expect("pid file holds a pid");
    rt.adopt(pid);
    assert!(running(pid), "exec'd process {pid} is not running");
    assert!(
        poll(T, || b.rootfs().join("tmp/exec-ran").exists().then_some(())).is_some(),
        "exec'd command did not run"
    );
    let pids = poll(T, || {
        let p = ps_pids(&rt, id);
        (p.contains(&pid)).then_some(p)
    })
    .unwrap_or_else(|| panic!("ps does not list exec'd {pid}"));
    assert!(pids.contains(&init), "{pids:?}");
    // Killing init takes the exec'd process with it (same pid namespace).
    rt.kill(id, "KILL").expect_success();
    assert!(rt.wait_status(id, "stopped", T));
    assert!(
        poll(T, || (!running(pid)).then_some(())).is_some(),
        "exec'd {pid} survived its container"
    );
    rt.delete(id).expect_success();
    assert_gone(&rt, id);
    env.finish();
}

#[test]
fn ps_lists_container_pids() {
    let env = TestEnv::new("rc_ps");
    let rt = Runc::new(&env);
    let id = "ps1";
    let b = Bundle::new(&env, id, &["sh", "-c", "sleep 1000 & wait"]);
    rt.run(&b, id, &["-d"]).expect_success();
    let init = rt.pid(id);
    let pids = poll(T, || {
        let p = ps_pids(&rt, id);
        (p.len() == 2).then_some(p)
    })
    .expect("init and its sleep");
    assert!(pids.contains(&init), "{pids:?} lacks {init}");
    let procs = cgroup::subtree_pids(&b.cgroup_dir("pids"));
    assert_eq!(pids, procs, "ps must list exactly the cgroup's processes");
    // The default table has a header and one line per process.
    let out = rt.cmd(&["ps", id]);
    out.expect_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].contains("PID"), "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        out.stdout.contains(&init.to_string()),
        "table lacks {init}:\n{out}"
    );
    kill_and_delete(&rt, id);
    env.finish();
}

#[test]
fn list_table_and_json() {
    let env = TestEnv::new("rc_list");
    let rt = Runc::new(&env);
    // Nothing yet: a header only, and an empty JSON list (or null).
    let out = rt.cmd(&["list"]);
    out.expect_success();
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    let out = rt.cmd(&["list", "--format", "json"]);
    out.expect_success();
    let v: Value = serde_json::from_str(&out.stdout).expect("list json");
    assert!(v.is_null() || v == json!([]), "{out}");

    let ba = Bundle::new(&env, "lsa", &["sleep", "1000"]);
    let bb = Bundle::new(&env, "lsb", &["sleep", "1000"]);
    rt.create(&ba, "lsa", &[]).expect_success();
    rt.run(&bb, "lsb", &["-d"]).expect_success();

    let out = rt.cmd(&["list"]);
    out.expect_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for col in ["ID", "PID", "STATUS", "BUNDLE", "CREATED"] {
        assert!(lines[0].contains(col), "header lacks {col}:\n{out}");
    }
    let row = |id: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no row for {id}:\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(row("lsa")[1], rt.pid("lsa").to_string());
    assert_eq!(row("lsa")[2], "created");
    assert_eq!(row("lsb")[2], "running");
    assert_eq!(row("lsb")[3], bb.dir_str());

    let out = rt.cmd(&["list", "--format", "json"]);
    out.expect_success();
    let v: Value = serde_json::from_str(&out.stdout).expect("list json");
    let arr = v.as_array().expect("list json is an array");
    assert_eq!(arr.len(), 2, "{out}");
    let entry = |id: &str| {
        arr.iter()
            .find(|e| e["id"] == id)
            .unwrap_or_else(|| panic!("no entry for {id}:\n{out}"))
    };
    assert_eq!(entry("lsa")["status"], "created");
    assert_eq!(entry("lsb")["status"], "running");
    assert_eq!(entry("lsb")["pid"].as_i64(), Some(rt.pid("lsb") as i64));
    assert_eq!(entry("lsb")["bundle"], bb.dir_str());

    rt.delete_force("lsa").expect_success();
    kill_and_delete(&rt, "lsb");
    let out = rt.cmd(&["list", "--format", "json"]);
    let v: Value = serde_json::from_str(&out.stdout).expect("list json");
    assert!(v.is_null() || v == json!([]), "{out}");
    env.finish();
}

#[test]
fn pause_and_resume() {
    let env = TestEnv::new("rc_pause");
    let rt = Runc::new(&env);
    let id = "pz1";
    let b = Bundle::new(
        &env,
        id,
        &[
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; usleep 20000; done",
        ],
    );
    rt.run(&b, id, &["-d"]).expect_success();
    let counter = || {
        fs::read_to_string(b.rootfs().join("tmp/n"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    assert!(poll(T, counter).is_some(), "counter never started");

    rt.cmd(&["pause", id]).expect_success();
    assert_eq!(rt.status(id), "paused");
    let frozen = counter();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(counter(), frozen, "counter advanced while paused");
    // Pausing twice is an error; so is resuming a running container.
    rt.cmd(&["pause", id]).expect_runtime_error(&[]);
    // An exec would freeze with the container: refused, as an exec
    // failure (255), unless asked for with --ignore-paused.
    let out = rt.exec(id, &[], &["true"]);
    out.expect_code(255);
    assert!(out.stderr.contains("paused"), "{out}");

    rt.cmd(&["resume", id]).expect_success();
    assert_eq!(rt.status(id), "running");
    let before = counter().unwrap_or(0);
    assert!(
        poll(T, || (counter().unwrap_or(0) > before + 3).then_some(())).is_some(),
        "counter did not advance after resume"
    );
    rt.cmd(&["resume", id]).expect_runtime_error(&[]);

    kill_and_delete(&rt, id);
    env.finish();
}

#[test]
fn update_resources_from_stdin() {
    let env = TestEnv::new("rc_update");
    let rt = Runc::new(&env);
    let id = "up1";
    let mut b = Bundle::new(&env, id, &["sleep", "1000"]);
    b.set("/linux/resources/pids", json!({ "limit": 100 }));
    rt.run(&b, id, &["-d"]).expect_success();
    let dir = b.cgroup_dir("pids");
    assert_eq!(cgroup::read(&dir, "pids.max").as_deref(), Some("100"));

    rt.cmd_with_stdin(
        &["update", "--resources", "-", id],
        br#"{"pids":{"limit":42}}"#,
    )
    .expect_success();
    assert_eq!(cgroup::read(&dir, "pids.max").as_deref(), Some("42"));

    // From a file too.
    let f = env.scratch().join("res.json");
    fs::write(&f, r#"{"pids":{"limit":17}}"#).unwrap();
    rt.cmd(&["update", "--resources", f.to_str().unwrap(), id])
        .expect_success();
    assert_eq!(cgroup::read(&dir, "pids.max").as_deref(), Some("17"));

    // Bad JSON is refused and changes nothing.
    rt.cmd_with_stdin(&["update", "--resources", "-", id], b"{nope")
        .expect_runtime_error(&[]);
    assert_eq!(cgroup::read(&dir, "pids.max").as_deref(), Some("17"));

    kill_and_delete(&rt, id);
    env.finish();
}

/// `create --console-socket` with `terminal: true`: the runtime sends the
/// pty master over the socket; the container's stdio is the slave.
#[test]
fn console_socket_create_start() {
    let env = TestEnv::new("rc_console");
    let rt = Runc::new(&env);
    let id = "con1";
    let mut b = Bundle::new(&env, id, &["sh", "-c", "tty; read l; echo got-$l; exit 4"]);
    b.set("/process/terminal", json!(true));
    let sock = ConsoleSocket::bind(&env, "con");
    rt.create(&b, id, &["--console-socket", sock.path_str()])
        .expect_success();
    let mut con = sock.receive(T);
    let pid = rt.pid(id);
    rt.start(id).expect_success();
    assert!(con.wait_for("/dev/pts/0", T), "no tty: {:?}", con.text());
    con.write(b"typed\n");
    assert!(con.wait_for("got-typed", T), "no echo: {:?}", con.text());
    assert!(rt.wait_status(id, "stopped", T));
    assert_eq!(
        rt.exit_status(pid, T),
        Some(WaitStatus::Exited(Pid::from_raw(pid), 4))
    );
    rt.delete(id).expect_success();
    assert_gone(&rt, id);
    env.finish();
}

/// `run -d --console-socket`: the output goes to the pty, sized as
/// `process.consoleSize` says; a foreground `run` refuses a console socket
/// (it would neither detach nor own the terminal).
#[test]
fn console_socket_run_detached() {
    let env = TestEnv::new("rc_conrun");
    let rt = Runc::new(&env);
    let id = "con2";
    let mut b = Bundle::new(
        &env,
        id,
        &["sh", "-c", "tty; echo size=$(stty size); read l; exit 6"],
    );
    b.set("/process/terminal", json!(true));
    b.set(
        "/process/consoleSize",
        json!({ "height": 30, "width": 100 }),
    );
    let sock = ConsoleSocket::bind(&env, "con");

    let out = rt.run(&b, "con2fg", &["--console-socket", sock.path_str()]);
    out.expect_runtime_error(&["console"]);
    assert_gone(&rt, "con2fg");

    let out = rt.run(&b, id, &["-d", "--console-socket", sock.path_str()]);
    out.expect_success();
    assert!(out.stdout.is_empty(), "output bypassed the pty: {out}");
    let pid = rt.pid(id);
    let mut con = sock.receive(T);
    assert!(con.wait_for("size=", T), "{:?}", con.text());
    con.write(b"\n");
    let text = con.read_to_eof(T);
    assert!(text.contains("/dev/pts/0"), "{text:?}");
    assert!(text.contains("size=30 100"), "{text:?}");
    assert!(rt.wait_status(id, "stopped", T));
    assert_eq!(
        rt.exit_status(pid, T),
        Some(WaitStatus::Exited(Pid::from_raw(pid), 6))
    );
    rt.delete(id).expect_success();
    assert_gone(&rt, id);
    env.finish();
}

#[test]
fn features_prints_json() {
    let env = TestEnv::new("rc_features");
    let rt = Runc::new(&env);
    let out = rt.cmd(&["features"]);
    out.expect_success();
    let v: Value = serde_json::from_str(&out.stdout).expect("features JSON");
    let max = v["ociVersionMax"].as_str().expect("ociVersionMax");
    assert!(max.starts_with("1."), "{max}");
    assert!(v["ociVersionMin"].as_str().is_some(), "{v}");
    assert!(v["hooks"].is_array(), "{v}");
    assert!(v["linux"]["namespaces"].is_array(), "{v}");
    env.finish();
}

#[test]
fn spec_writes_config() {
    let env = TestEnv::new("rc_spec");
    let rt = Runc::new(&env);
    let dir = env.scratch().join("spec-cwd");
    fs::create_dir_all(&dir).unwrap();
    rt.cmd_in(&dir, &["spec"]).expect_success();
    let text = fs::read_to_string(dir.join("config.json")).expect("config.json written");
    let v: Value = serde_json::from_str(&text).expect("config.json is JSON");
    assert!(v["ociVersion"].is_string(), "{v}");
    assert_eq!(v["process"]["args"], json!(["sh"]), "{v}");
    assert_eq!(v["root"]["path"], "rootfs", "{v}");
    assert!(v["linux"]["namespaces"].is_array(), "{v}");
    // It does not overwrite an existing config.
    rt.cmd_in(&dir, &["spec"])
        .expect_runtime_error(&["config.json"]);
    assert_eq!(fs::read_to_string(dir.join("config.json")).unwrap(), text);

    let other = env.scratch().join("spec-bundle");
    fs::create_dir_all(&other).unwrap();
    rt.cmd(&["spec", "--bundle", other.to_str().unwrap()])
        .expect_success();
    assert!(other.join("config.json").is_file());
    env.finish();
}

#[test]
fn version_flag() {
    let env = TestEnv::new("rc_version");
    let rt = Runc::new(&env);
    let out = rt.cmd(&["--version"]);
    out.expect_success();
    let first = out.stdout.lines().next().unwrap_or_default();
    assert!(first.contains("version"), "{out}");
    assert!(
        out.stdout.lines().any(|l| l.starts_with("spec: 1.")),
        "no `spec: 1.x` line:\n{out}"
    );
    env.finish();
}

/// A config.json the runtime cannot use is refused before anything is
/// made: exit 1, one line, no state, no cgroup (the leak check).
#[test]
fn invalid_config_refused() {
    let env = TestEnv::new("rc_badcfg");
    let rt = Runc::new(&env);

    let mut b = Bundle::new(&env, "bc1", &["true"]);
    b.set("/process/user/uid", json!("zero"));
    rt.create(&b, "bc1", &[])
        .expect_runtime_error(&["process.user.uid"]);
    assert_gone(&rt, "bc1");

    let mut b = Bundle::new(&env, "bc2", &["true"]);
    b.set("/process/cwd", json!("tmp"));
    let out = rt.create(&b, "bc2", &[]);
    out.expect_runtime_error(&[]);
    assert!(out.stderr.to_lowercase().contains("cwd"), "{out}");
    if runtime_is_hind() {
        out.expect_runtime_error(&["process.cwd"]);
    }
    assert_gone(&rt, "bc2");

    let mut b = Bundle::new(&env, "bc3", &["true"]);
    b.write_raw("{ \"ociVersion\": ");
    rt.create(&b, "bc3", &[]).expect_runtime_error(&[]);
    assert_gone(&rt, "bc3");

    let b = Bundle::new(&env, "bc4", &["true"]);
    fs::remove_file(b.config_path()).unwrap();
    let mut c = rt.command();
    c.args(["create", "--bundle", b.dir_str(), "bc4"]);
    rt.track("bc4");
    rt.run_cmd(c, b"").expect_runtime_error(&["config.json"]);
    assert_gone(&rt, "bc4");
    env.finish();
}

/// A relative `--pid-file` is relative to the caller's cwd, and the default
/// bundle is the cwd.
#[test]
fn relative_pid_file_and_default_bundle() {
    let env = TestEnv::new("rc_relpid");
    let rt = Runc::new(&env);
    let id = "rp1";
    let b = Bundle::new(&env, id, &["sleep", "1000"]);
    rt.track(id);
    rt.cmd_in(b.dir(), &["create", "--pid-file", "rel.pid", id])
        .expect_success();
    rt.adopt_init(id);
    let st = rt.state(id);
    assert_eq!(st["bundle"], b.dir_str(), "{st}");
    let written = fs::read_to_string(b.dir().join("rel.pid")).expect("relative pid file");
    assert_eq!(written.trim(), st["pid"].as_i64().unwrap().to_string());
    rt.delete_force(id).expect_success();
    assert_gone(&rt, id);
    env.finish();
}

/// Every command on an id that does not exist fails with one line (hind:
/// naming the id); `delete --force` of it succeeds.
#[test]
fn unknown_container_id() {
    let env = TestEnv::new("rc_unknown");
    let rt = Runc::new(&env);
    let id = format!("nosuch-{}", std::process::id());
    for args in [
        vec!["start", &id],
        vec!["state", &id],
        vec!["kill", &id],
        vec!["kill", &id, "KILL"],
        vec!["delete", &id],
        vec!["pause", &id],
        vec!["resume", &id],
        vec!["ps", &id],
        vec!["update", "--resources", "-", &id],
    ] {
        let out = rt.cmd_with_stdin(&args, b"{}");
        out.expect_runtime_error(&[]);
        if runtime_is_hind() {
            out.expect_runtime_error(&[&id]);
        }
    }
    // exec fails with 255 in runc.
    let out = rt.exec(&id, &[], &["true"]);
    out.expect_code(255);
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    if runtime_is_hind() {
        assert!(out.stderr.contains(&id), "{out}");
    }
    rt.delete_force(&id).expect_success();
    env.finish();
}

/// Runs `<runtime> GLOBALS ARGS` with `files` as its fds 3, 4, ... on top
/// of stdio, as conmon and systemd socket activation pass them.
fn cmd_with_fds(rt: &Runc, args: &[&str], files: &[&fs::File]) -> hind_tests::Output {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let mut c = rt.command();
    c.args(args);
    let raw: Vec<i32> = files.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: the closure runs in the forked child before exec and only
    // calls dup2(2), which is async-signal-safe, on fds the parent owns;
    // each source is first copied above the targets so none is clobbered.
    unsafe {
        c.pre_exec(move || {
            let base = 100;
            for (i, fd) in raw.iter().enumerate() {
                if libc::dup2(*fd, base + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for i in 0..raw.len() as i32 {
                if libc::dup2(base + i, 3 + i) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(base + i);
            }
            Ok(())
        });
    }
    rt.run_cmd(c, b"")
}

/// `--preserve-fds N` hands the caller's fds 3 .. 3+N to the container's
/// process (and to an exec'd one) at the same numbers, and nothing above.
#[test]
fn preserve_fds_reach_the_process() {
    let env = TestEnv::new("rc_preserve");
    let rt = Runc::new(&env);
    let id = "pfd";
    let script = "cat <&3; echo to-four >&4; ls /proc/self/fd | sort -n | tr '\\n' ' '";
    let b = Bundle::new(&env, id, &["sh", "-c", script]);
    b.write();
    rt.track(id);
    let input = env.scratch().join("in3");
    fs::write(&input, "from-three\n").expect("write in3");
    let output = env.scratch().join("out4");
    let f3 = fs::File::open(&input).expect("open in3");
    let f4 = fs::File::create(&output).expect("create out4");
    // A third fd the runtime is not told to keep.
    let f5 = fs::File::open(&input).expect("open in3 again");
    let out = cmd_with_fds(
        &rt,
        &["run", "--bundle", b.dir_str(), "--preserve-fds", "2", id],
        &[&f3, &f4, &f5],
    );
    out.expect_success();
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("from-three"), "{out}");
    // ls itself holds one more fd for the dir it lists.
    let fds: Vec<u32> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    assert_eq!(&fds[..5], &[0, 1, 2, 3, 4], "{out}");
    assert!(fds.len() <= 6, "only 0-4 and ls's own: {out}");
    assert_eq!(fs::read_to_string(&output).expect("out4"), "to-four\n");
    assert_gone(&rt, id);
    env.finish();
}
