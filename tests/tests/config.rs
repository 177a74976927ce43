//! Process settings from the command line: environment (`-e`), working
//! directory (`-w`, created when missing) and user (`-u UID[:GID]`).

use hind_tests::{bb, TestEnv};

#[test]
fn env_flag_sets_variables() {
    let env = TestEnv::new("envflag");
    let out = env.run(&[
        "run",
        "--rm",
        "-e",
        "E2E_FOO=bar baz",
        "-e",
        "E2E_EQ=a=b",
        bb(),
        "sh",
        "-c",
        "echo \"$E2E_FOO\"; echo \"$E2E_EQ\"",
    ]);
    out.expect_success();
    assert_eq!(out.stdout, "bar baz\na=b\n", "{out}");
    env.finish();
}

#[test]
fn host_environment_does_not_leak() {
    let env = TestEnv::new("envleak");
    let mut cmd = env.hind();
    cmd.env("E2E_HOST_SECRET", "leaked").args([
        "run",
        "--rm",
        bb(),
        "sh",
        "-c",
        "echo \"[$E2E_HOST_SECRET]\"",
    ]);
    let out = env.run_cmd(cmd);
    out.expect_success();
    assert_eq!(out.stdout, "[]\n", "{out}");
    env.finish();
}

#[test]
fn workdir_is_created_and_used() {
    let env = TestEnv::new("workdir");
    let out = env.run(&["run", "--rm", "-w", "/work/deep/dir", bb(), "pwd"]);
    out.expect_success();
    assert_eq!(out.stdout, "/work/deep/dir\n", "{out}");
    env.finish();
}

#[test]
fn user_flag_sets_uid_and_gid() {
    let env = TestEnv::new("user");
    let out = env.run(&[
        "run",
        "--rm",
        "-u",
        "65534:65534",
        bb(),
        "sh",
        "-c",
        "id -u; id -g",
    ]);
    out.expect_success();
    assert_eq!(out.stdout, "65534\n65534\n", "{out}");
    let out = env.run(&["run", "--rm", "-u", "1234", bb(), "id", "-u"]);
    out.expect_success();
    assert_eq!(out.stdout, "1234\n", "{out}");
    env.finish();
}

#[test]
fn default_user_is_root() {
    let env = TestEnv::new("root");
    let out = env.run(&["run", "--rm", bb(), "sh", "-c", "id -u; id -g"]);
    out.expect_success();
    assert_eq!(out.stdout, "0\n0\n", "{out}");
    env.finish();
}
