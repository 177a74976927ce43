//! A container's life as `hind run` reports it: exit codes (the command's,
//! 128+N for a signal, 126 and 127 for exec failures), signals forwarded to
//! PID 1, `--rm` removing everything, the record left without it, names,
//! and `HIND_ROOT`.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use hind_tests::{bb, cgroup, TestEnv};

#[test]
fn exit_code_zero() {
    let env = TestEnv::new("exit0");
    env.run(&["run", "--rm", bb(), "true"]).expect_code(0);
    env.finish();
}

#[test]
fn exit_code_is_passed_through() {
    let env = TestEnv::new("exit7");
    env.run(&["run", "--rm", bb(), "sh", "-c", "exit 7"])
        .expect_code(7);
    env.finish();
}

#[test]
fn not_executable_is_126() {
    let env = TestEnv::new("exit126");
    let out = env.run(&["run", "--rm", bb(), "/etc/passwd"]);
    out.expect_hind_error(126, &["/etc/passwd"]);
    env.finish();
}

#[test]
fn command_not_found_is_127() {
    let env = TestEnv::new("exit127");
    let out = env.run(&["run", "--rm", bb(), "no-such-cmd-e2e"]);
    out.expect_hind_error(127, &["no-such-cmd-e2e"]);
    env.finish();
}

#[test]
fn killed_by_sigkill_is_137() {
    let env = TestEnv::new("exit137");
    let r = env.spawn_held(&[]);
    let dir = env
        .wait_container_cgroup("pids")
        .expect("container cgroup appears");
    let init = cgroup::container_init(&dir).expect("container init in its cgroup");
    kill(Pid::from_raw(init), Signal::SIGKILL).expect("kill container init");
    let out = r.wait();
    out.expect_code(137);
    assert!(!out.stdout.contains("bye"), "{out}");
    env.finish();
}

/// Sends `sig` to the foreground `hind run`; the container's trap must run
/// and its exit code come back.
fn check_forwarded(name: &str, sig: Signal, trap: &str) {
    let env = TestEnv::new(name);
    let code = 40 + sig as i32;
    let script = format!(
        "trap 'echo got-{trap}; exit {code}' {trap}; echo ready; \
         i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; exit 3"
    );
    let mut r = env.spawn(&["run", "--rm", bb(), "sh", "-c", &script]);
    assert!(
        r.wait_for_stdout("ready", Duration::from_secs(30)),
        "container did not start: {}",
        r.stderr_so_far()
    );
    r.signal(sig);
    let out = r.wait();
    out.expect_code(code);
    assert!(out.stdout.contains(&format!("got-{trap}")), "{out}");
    env.finish();
}

#[test]
fn sigterm_is_forwarded() {
    check_forwarded("sigterm", Signal::SIGTERM, "TERM");
}

#[test]
fn sigint_is_forwarded() {
    check_forwarded("sigint", Signal::SIGINT, "INT");
}

#[test]
fn sighup_is_forwarded() {
    check_forwarded("sighup", Signal::SIGHUP, "HUP");
}

#[test]
fn sigusr1_is_forwarded() {
    check_forwarded("sigusr1", Signal::SIGUSR1, "USR1");
}

#[test]
fn rm_leaves_nothing() {
    let env = TestEnv::new("rm");
    let out = env.run(&[
        "run",
        "--rm",
        "--name",
        "e2e-rm",
        bb(),
        "sh",
        "-c",
        "echo hi > /tmp/f && cat /tmp/f",
    ]);
    out.expect_success();
    assert_eq!(out.stdout, "hi\n", "{out}");
    assert!(
        env.containers().is_empty(),
        "container left: {:?}",
        env.containers()
    );
    // The name is free again.
    env.run(&["run", "--rm", "--name", "e2e-rm", bb(), "true"])
        .expect_success();
    env.finish();
}

#[test]
fn record_kept_without_rm() {
    let env = TestEnv::new("record");
    env.allow_leftover_containers();
    let out = env.run(&["run", "--name", "e2e-rec", bb(), "sh", "-c", "exit 3"]);
    out.expect_code(3);
    let id = env.only_container();
    assert!(
        id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "container dir is not a 64-hex id: {id}"
    );
    let rec = env.record(&id);
    assert_eq!(rec["id"], id.as_str(), "{rec}");
    assert_eq!(rec["name"], "e2e-rec", "{rec}");
    assert_eq!(rec["status"], "exited", "{rec}");
    assert_eq!(rec["exit_code"], 3, "{rec}");
    assert_eq!(rec["oom_killed"], false, "{rec}");
    env.finish();
}

#[test]
fn name_in_use_is_refused() {
    let env = TestEnv::new("namedup");
    env.allow_leftover_containers();
    env.run(&["run", "--name", "e2e-dup", bb(), "true"])
        .expect_success();
    let before = env.containers();
    let out = env.run(&["run", "--rm", "--name", "e2e-dup", bb(), "true"]);
    out.expect_hind_error(125, &["e2e-dup"]);
    assert_eq!(before, env.containers(), "the refused run left a container");
    env.finish();
}

#[test]
fn state_root_from_env() {
    let env = TestEnv::new("envroot");
    env.allow_leftover_containers();
    let mut cmd = env.hind_env_root();
    cmd.args(["run", bb(), "true"]);
    env.run_cmd(cmd).expect_success();
    assert_eq!(env.containers().len(), 1, "no container under HIND_ROOT");
    env.finish();
}
