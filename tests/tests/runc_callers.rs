//! The runtime under test (`hind-runc`, or `HIND_TEST_RUNC`) driven by its
//! real callers, as users run it: podman 4.3 through conmon (`run`, exit
//! codes, stdin, `-d` with `ps`/`exec`/`stop`/`rm`, `pause`/`unpause`/
//! `kill`, `-t` on a pty, `exec -t`) and containerd 1.6 through `ctr` and
//! `containerd-shim-runc-v2` (`run --rm`, exit codes, `run -d` with
//! `task exec`/`ps`/`pause`/`resume`/`kill`/`delete`, `container rm`, `-t`
//! on a pty). Each test has a private podman store or containerd daemon
//! (`hind_tests::callers`); nothing of it is left afterwards.

use std::time::Duration;

use hind_tests::callers::{Containerd, Podman};
use hind_tests::TestEnv;

/// `/proc/<pid>/cgroup` names `path` (the container's cgroup) in some
/// hierarchy.
#[track_caller]
fn assert_in_cgroup(pid: i32, path: &str) {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/cgroup: {e}"));
    assert!(
        cg.lines().any(|l| l.ends_with(&format!(":{path}"))),
        "pid {pid} is not in cgroup {path}:\n{cg}"
    );
}

/// The v1 freezer state of cgroup `path`, if this host has that hierarchy.
fn freezer_state(path: &str) -> Option<String> {
    let dir = hind_tests::cgroup::join(&hind_tests::cgroup::controller_root("freezer"), path);
    hind_tests::cgroup::read(&dir, "freezer.state")
}

/// Shell that prints the terminal size (`ROWS COLS`) once it is set: the
/// callers resize the pty from their side after the container started
/// (ctr does so after `start`), so it may still be 0x0 at first (busybox
/// `stty size` then prints an error and nothing on stdout, and exits 0).
const SIZE: &str = "i=0; while s=$(stty size 2>/dev/null); [ -z \"$s\" ] || [ \"$s\" = \"0 0\" ]; \
                    do i=$((i+1)); [ $i -gt 100 ] && break; sleep 0.1; done; echo \"$s\"";

// ---- podman ----

#[test]
fn podman_run_prints_output() {
    let env = TestEnv::new("pm_echo");
    let p = Podman::new(&env);
    let out = p.run_container(&["--rm"], &["echo", "hi"]);
    out.expect_success();
    assert_eq!(out.stdout, "hi\n", "{out}");
    p.finish();
    env.finish();
}

#[test]
fn podman_run_propagates_exit_code() {
    let env = TestEnv::new("pm_exit");
    let p = Podman::new(&env);
    p.run_container(&["--rm"], &["sh", "-c", "exit 3"])
        .expect_code(3);
    p.finish();
    env.finish();
}

#[test]
fn podman_run_passes_stdin() {
    let env = TestEnv::new("pm_stdin");
    let p = Podman::new(&env);
    let out = p.run_container_with_stdin(
        &["--rm", "-i"],
        &["sh", "-c", "cat; echo end"],
        b"one\ntwo\n",
    );
    out.expect_success();
    assert_eq!(out.stdout, "one\ntwo\nend\n", "{out}");
    p.finish();
    env.finish();
}

#[test]
fn podman_detached_exec_stop_rm() {
    let env = TestEnv::new("pm_detach");
    let p = Podman::new(&env);
    let out = p.run_container(&["-d"], &["sleep", "100"]);
    out.expect_success();
    let id = out.stdout.trim().to_string();
    assert_eq!(id.len(), 64, "podman run -d prints the id:\n{out}");

    let ps = p.run(&["ps", "--no-trunc", "--format", "{{.ID}} {{.Status}}"]);
    ps.expect_success();
    assert!(
        ps.stdout
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("Up")),
        "podman ps does not show {id} running:\n{ps}"
    );
    assert_eq!(p.inspect(&id, "{{.State.Status}}"), "running");
    let pid: i32 = p
        .inspect(&id, "{{.State.Pid}}")
        .parse()
        .expect("State.Pid is a number");
    assert!(pid > 0);
    assert_in_cgroup(pid, &p.cgroup_path(&id));

    let ex = p.run(&["exec", &id, "echo", "x"]);
    ex.expect_success();
    assert_eq!(ex.stdout, "x\n", "{ex}");
    p.run(&["exec", &id, "sh", "-c", "exit 4"]).expect_code(4);
    let ex = p.run_with_stdin(&["exec", "-i", &id, "cat"], b"via exec\n");
    ex.expect_success();
    assert_eq!(ex.stdout, "via exec\n", "{ex}");

    // `sleep` as PID 1 ignores SIGTERM: podman sends SIGKILL after 1 s.
    p.run(&["stop", "-t", "1", &id]).expect_success();
    assert_eq!(p.inspect(&id, "{{.State.Status}}"), "exited");
    assert_eq!(p.inspect(&id, "{{.State.ExitCode}}"), "137");
    p.run(&["rm", &id]).expect_success();
    let ps = p.run(&["ps", "-a", "-q"]);
    assert!(ps.stdout.trim().is_empty(), "container left:\n{ps}");
    p.finish();
    env.finish();
}

#[test]
fn podman_pause_unpause_kill() {
    let env = TestEnv::new("pm_pause");
    let p = Podman::new(&env);
    let out = p.run_container(&["-d"], &["sleep", "100"]);
    out.expect_success();
    let id = out.stdout.trim().to_string();
    let cg = p.cgroup_path(&id);

    p.run(&["pause", &id]).expect_success();
    assert_eq!(p.inspect(&id, "{{.State.Status}}"), "paused");
    if let Some(state) = freezer_state(&cg) {
        assert_eq!(state, "FROZEN");
    }
    p.run(&["unpause", &id]).expect_success();
    assert_eq!(p.inspect(&id, "{{.State.Status}}"), "running");
    if let Some(state) = freezer_state(&cg) {
        assert_eq!(state, "THAWED");
    }
    // The container still works after the thaw.
    p.run(&["exec", &id, "true"]).expect_success();

    p.run(&["kill", "-s", "KILL", &id]).expect_success();
    let w = p.run(&["wait", &id]);
    w.expect_success();
    assert_eq!(w.stdout.trim(), "137", "{w}");
    p.run(&["rm", &id]).expect_success();
    p.finish();
    env.finish();
}

#[test]
fn podman_rm_force_running() {
    let env = TestEnv::new("pm_rmf");
    let p = Podman::new(&env);
    let out = p.run_container(&["-d"], &["sleep", "100"]);
    out.expect_success();
    let id = out.stdout.trim().to_string();
    p.run(&["rm", "--force", "--time", "0", &id])
        .expect_success();
    let ps = p.run(&["ps", "-a", "-q"]);
    assert!(ps.stdout.trim().is_empty(), "container left:\n{ps}");
    p.finish();
    env.finish();
}

#[test]
fn podman_run_tty() {
    let env = TestEnv::new("pm_tty");
    let p = Podman::new(&env);
    let mut args = vec!["run".to_string()];
    args.extend(p.run_flags());
    args.extend(
        [
            "--rm",
            "-t",
            hind_tests::callers::IMAGE,
            "sh",
            "-c",
            &format!("tty; {SIZE}; exit 7"),
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut t = p.spawn_pty(&args, 30, 100);
    assert!(
        t.wait_for("30 100", Duration::from_secs(30)),
        "no terminal size from the container:\n{}",
        t.output_so_far()
    );
    let (code, text, timed_out) = t.wait();
    assert!(!timed_out, "podman run -t timed out:\n{text}");
    assert_eq!(code, 7, "{text}");
    assert!(text.contains("/dev/pts/0"), "not on a terminal:\n{text}");
    p.finish();
    env.finish();
}

#[test]
fn podman_exec_tty() {
    let env = TestEnv::new("pm_xtty");
    let p = Podman::new(&env);
    let out = p.run_container(&["-d"], &["sleep", "100"]);
    out.expect_success();
    let id = out.stdout.trim().to_string();
    let mut t = p.spawn_pty(
        &["exec", "-t", &id, "sh", "-c", &format!("tty; {SIZE}")],
        25,
        90,
    );
    assert!(
        t.wait_for("25 90", Duration::from_secs(30)),
        "no terminal size from the exec:\n{}",
        t.output_so_far()
    );
    let (code, text, timed_out) = t.wait();
    assert!(
        !timed_out && code == 0,
        "podman exec -t failed ({code}):\n{text}"
    );
    assert!(text.contains("/dev/pts/"), "not on a terminal:\n{text}");
    p.run(&["rm", "--force", "--time", "0", &id])
        .expect_success();
    p.finish();
    env.finish();
}

// ---- containerd ----

#[test]
fn containerd_run_prints_output() {
    let env = TestEnv::new("cd_echo");
    let c = Containerd::start(&env);
    let out = c.run_container(&["--rm"], "c1", &["echo", "hi"]);
    out.expect_success();
    assert_eq!(out.stdout, "hi\n", "{out}");
    c.finish();
    env.finish();
}

#[test]
fn containerd_run_propagates_exit_code() {
    let env = TestEnv::new("cd_exit");
    let c = Containerd::start(&env);
    c.run_container(&["--rm"], "c1", &["sh", "-c", "exit 3"])
        .expect_code(3);
    c.finish();
    env.finish();
}

#[test]
fn containerd_detached_exec_kill_delete() {
    let env = TestEnv::new("cd_detach");
    let c = Containerd::start(&env);
    c.run_container(&["-d"], "c1", &["sleep", "100"])
        .expect_success();
    assert!(c.wait_task_status("c1", "RUNNING"), "task c1 not running");
    let (pid, _) = c.task("c1").expect("task c1");
    assert!(pid > 0);
    assert_in_cgroup(pid, &c.cgroup_path("c1"));

    // ctr 1.6 `task exec` can lose the output of a process that exits at
    // once (about 1 in 100 under load, with runc too): it tears its fifo
    // reader down when the exit arrives. A short sleep keeps the exec alive
    // until its output is through.
    let ex = c.exec("c1", "e1", &[], &["sh", "-c", "echo x; sleep 0.2"]);
    ex.expect_success();
    assert_eq!(ex.stdout, "x\n", "{ex}");
    c.exec("c1", "e2", &[], &["sh", "-c", "exit 6"])
        .expect_code(6);
    let ps = c.ctr(&["task", "ps", "c1"]);
    ps.expect_success();
    assert!(
        ps.stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&pid.to_string())),
        "ctr task ps does not list the init pid {pid}:\n{ps}"
    );

    c.ctr(&["task", "pause", "c1"]).expect_success();
    assert!(c.wait_task_status("c1", "PAUSED"), "task c1 not paused");
    c.ctr(&["task", "resume", "c1"]).expect_success();
    assert!(c.wait_task_status("c1", "RUNNING"), "task c1 not resumed");

    // SIGTERM (the default) is ignored by `sleep` as PID 1; SIGKILL is not.
    c.ctr(&["task", "kill", "c1"]).expect_success();
    c.ctr(&["task", "kill", "-s", "SIGKILL", "c1"])
        .expect_success();
    assert!(c.wait_task_status("c1", "STOPPED"), "task c1 not stopped");
    c.ctr(&["task", "delete", "c1"]).expect_success();
    assert!(c.task("c1").is_none(), "task c1 still listed");
    c.ctr(&["containers", "rm", "c1"]).expect_success();
    c.finish();
    env.finish();
}

#[test]
fn containerd_run_tty() {
    let env = TestEnv::new("cd_tty");
    let c = Containerd::start(&env);
    let mut args = vec!["run".to_string()];
    args.extend(c.run_flags("c1"));
    args.extend(
        [
            "--rm",
            "-t",
            hind_tests::callers::IMAGE,
            "c1",
            "sh",
            "-c",
            &format!("tty; {SIZE}; exit 5"),
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut t = c.spawn_pty(&args, 30, 100);
    assert!(
        t.wait_for("30 100", Duration::from_secs(30)),
        "no terminal size from the container:\n{}",
        t.output_so_far()
    );
    let (code, text, timed_out) = t.wait();
    assert!(!timed_out, "ctr run -t timed out:\n{text}");
    assert_eq!(code, 5, "{text}");
    assert!(text.contains("/dev/pts/0"), "not on a terminal:\n{text}");
    c.finish();
    env.finish();
}
