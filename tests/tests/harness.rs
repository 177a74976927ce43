//! Checks of the harness itself: the leak check must fail a test that left
//! a child cgroup, a container dir or a process behind, must tolerate an
//! empty cgroup parent, and must clean up in every case.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::Command;

use hind_tests::TestEnv;

/// Runs `env.finish()` and returns whether it reported a leak.
fn finish_fails(env: TestEnv) -> bool {
    catch_unwind(AssertUnwindSafe(|| env.finish())).is_err()
}

#[test]
fn child_cgroup_is_a_leak() {
    let env = TestEnv::new("hleakcg");
    let child = env.parent_cgroup("pids").join("leaked");
    fs::create_dir_all(&child).expect("create child cgroup");
    let parent = env.parent_cgroup("pids");
    assert!(finish_fails(env), "a child cgroup was not reported");
    assert!(!parent.exists(), "the leaked cgroup was not removed");
}

#[test]
fn empty_cgroup_parent_is_tolerated() {
    let env = TestEnv::new("hemptycg");
    let parent = env.parent_cgroup("pids");
    fs::create_dir_all(&parent).expect("create parent cgroup");
    env.finish();
    assert!(!parent.exists(), "the empty parent was not removed");
}

#[test]
fn container_dir_is_a_leak() {
    let env = TestEnv::new("hleakdir");
    fs::create_dir_all(env.root().join("containers").join("abc")).expect("mkdir");
    let root: PathBuf = env.root().to_path_buf();
    assert!(finish_fails(env), "a container dir was not reported");
    assert!(!root.exists(), "the state root was not removed");
}

#[test]
fn container_dir_allowed_when_declared() {
    let env = TestEnv::new("hkeepdir");
    env.allow_leftover_containers();
    fs::create_dir_all(env.root().join("containers").join("abc")).expect("mkdir");
    env.finish();
}

#[test]
fn process_naming_root_is_a_leak() {
    let env = TestEnv::new("hleakproc");
    // `$0` carries the state root into the command line, like a shim's
    // `--root` argument would.
    let mut child = Command::new("/bin/sh")
        .args(["-c", "sleep 30; :"])
        .arg(env.root())
        .spawn()
        .expect("spawn sleeper");
    // Until it has exec'd, the child still shows the test's command line.
    let cmdline = format!("/proc/{}/cmdline", child.id());
    let root = env.root().to_string_lossy().into_owned();
    let named = hind_tests::poll(std::time::Duration::from_secs(5), || {
        let c = fs::read(&cmdline).unwrap_or_default();
        String::from_utf8_lossy(&c).contains(&root).then_some(())
    });
    assert!(named.is_some(), "sleeper never showed the root");
    assert!(
        finish_fails(env),
        "a process naming the root was not reported"
    );
    let status = child.wait().expect("reap sleeper");
    assert!(!status.success(), "the leaked process was not killed");
}
