//! Failures of hind itself: exit 125, exactly one `hind: ` line on stderr
//! naming what was wrong, and nothing left behind (no container dir, name,
//! half-unpacked image, cgroup, process or mount; the harness checks the
//! last four on `finish`).

use std::fs;
use std::path::Path;

use hind_tests::{bb, make_tar, TestEnv};

/// Nothing but empty directories in `dir` (if it exists): no file, link
/// or unpacked tree left from a failed run.
#[track_caller]
fn assert_no_files(dir: &Path) {
    fn walk(d: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(d).into_iter().flatten().flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(&e.path(), out);
            } else {
                out.push(e.path().display().to_string());
            }
        }
    }
    let mut left = Vec::new();
    walk(dir, &mut left);
    left.truncate(10);
    assert!(left.is_empty(), "left in {}: {left:?}", dir.display());
}

#[test]
fn missing_image_path() {
    let env = TestEnv::new("noimage");
    let img = env.scratch().join("no-such-image");
    let img = img.to_str().expect("utf-8");
    env.run(&["run", "--rm", img, "true"])
        .expect_hind_error(125, &[img]);
    env.finish();
}

#[test]
fn missing_relative_image_path() {
    let env = TestEnv::new("norelimage");
    let mut cmd = env.hind();
    cmd.current_dir(env.scratch())
        .args(["run", "--rm", "./no-such-dir", "true"]);
    env.run_cmd(cmd).expect_hind_error(125, &["no-such-dir"]);
    env.finish();
}

#[test]
fn corrupt_tar_image() {
    let env = TestEnv::new("badtar");
    let tar = env.scratch().join("garbage.tar");
    fs::write(&tar, vec![0x5a; 4096 + 100]).expect("write garbage");
    let tar = tar.to_str().expect("utf-8");
    env.run(&["run", "--rm", tar, "true"])
        .expect_hind_error(125, &[tar]);
    assert_no_files(&env.root().join("images"));
    assert_no_files(&env.root().join("tmp"));
    env.finish();
}

#[test]
fn truncated_tar_image() {
    let env = TestEnv::new("cuttar");
    let full = env.scratch().join("full.tar");
    make_tar(bb().as_ref(), &full);
    let data = fs::read(&full).expect("read tar");
    let cut = env.scratch().join("cut.tar");
    // Cut in the middle of a member, past the first few headers.
    fs::write(&cut, &data[..data.len() / 2 + 7]).expect("write cut tar");
    let cut = cut.to_str().expect("utf-8");
    env.run(&["run", "--rm", cut, "true"])
        .expect_hind_error(125, &[cut]);
    assert_no_files(&env.root().join("images"));
    assert_no_files(&env.root().join("tmp"));
    env.finish();
}

#[test]
fn invalid_memory_value() {
    let env = TestEnv::new("badmem");
    env.run(&["run", "--rm", "-m", "12zz", bb(), "true"])
        .expect_hind_error(125, &["12zz"]);
    env.finish();
}

#[test]
fn cpuset_out_of_range() {
    let env = TestEnv::new("badcpuset");
    let possible = fs::read_to_string("/sys/devices/system/cpu/possible").expect("cpu/possible");
    let max: u32 = possible
        .trim()
        .rsplit(['-', ','])
        .next()
        .and_then(|s| s.parse().ok())
        .expect("parse cpu/possible");
    let value = format!("0-{}", max + 1);
    env.run(&["run", "--rm", "--cpuset-cpus", &value, bb(), "true"])
        .expect_hind_error(125, &[&value]);
    env.finish();
}

#[test]
fn name_already_in_use() {
    let env = TestEnv::new("nameinuse");
    env.allow_leftover_containers();
    env.run(&["run", "--name", "e2e-taken", bb(), "true"])
        .expect_success();
    let out = env.run(&["run", "--name", "e2e-taken", bb(), "true"]);
    out.expect_hind_error(125, &["e2e-taken"]);
    assert_eq!(env.containers().len(), 1, "{:?}", env.containers());
    env.finish();
}

#[test]
fn no_overlay_refused_for_host_root() {
    let env = TestEnv::new("noovlroot");
    env.run(&["run", "--rm", "--no-overlay", "/", "true"])
        .expect_hind_error(125, &["overlay"]);
    env.finish();
}

#[test]
fn no_overlay_refused_for_tar() {
    let env = TestEnv::new("noovltar");
    let tar = env.scratch().join("img.tar");
    make_tar(bb().as_ref(), &tar);
    env.run(&[
        "run",
        "--rm",
        "--no-overlay",
        tar.to_str().expect("utf-8"),
        "true",
    ])
    .expect_hind_error(125, &["overlay"]);
    env.finish();
}

#[test]
fn unknown_flag() {
    let env = TestEnv::new("badflag");
    env.run(&["run", "--rm", "--bogus-e2e", bb(), "true"])
        .expect_hind_error(125, &["--bogus-e2e"]);
    env.finish();
}

#[test]
fn non_numeric_user() {
    let env = TestEnv::new("baduser");
    env.run(&["run", "--rm", "-u", "alice", bb(), "true"])
        .expect_hind_error(125, &["alice"]);
    env.finish();
}

#[test]
fn command_not_found_leaves_nothing() {
    let env = TestEnv::new("notfound");
    env.run(&["run", "--rm", bb(), "/bin/no-such-e2e"])
        .expect_hind_error(127, &["/bin/no-such-e2e"]);
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    env.finish();
}
