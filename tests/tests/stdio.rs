//! The container's standard streams: separate stdout and stderr without a
//! terminal, stdin only with `-i`, whole streams copied byte for byte, and
//! a real pty with `-t` (its size at start and after a resize).

use std::time::Duration;

use nix::sys::termios::LocalFlags;

use hind_tests::{bb, TestEnv};

#[test]
fn stdout_and_stderr_stay_separate() {
    let env = TestEnv::new("stdsep");
    let out = env.run(&[
        "run",
        "--rm",
        bb(),
        "sh",
        "-c",
        "echo out; echo err >&2; echo out2",
    ]);
    out.expect_success();
    assert_eq!(out.stdout, "out\nout2\n", "{out}");
    assert!(out.stderr.contains("err\n"), "{out}");
    assert!(!out.stderr.contains("out"), "{out}");
    env.finish();
}

#[test]
fn large_stdout_is_copied_whole() {
    let env = TestEnv::new("bigout");
    let out = env.run(&[
        "run",
        "--rm",
        bb(),
        "sh",
        "-c",
        "head -c 2097152 /dev/zero | tr '\\000' a",
    ]);
    out.expect_success();
    assert_eq!(out.stdout.len(), 2 << 20, "stdout truncated or padded");
    assert!(out.stdout.bytes().all(|b| b == b'a'));
    env.finish();
}

#[test]
fn stdin_is_forwarded_with_i() {
    let env = TestEnv::new("stdin");
    let out = env.run_with_stdin(&["run", "--rm", "-i", bb(), "cat"], b"hi\n");
    out.expect_success();
    assert_eq!(out.stdout, "hi\n", "{out}");
    env.finish();
}

#[test]
fn large_stdin_round_trips() {
    let env = TestEnv::new("bigin");
    let input: Vec<u8> = (0..(512 * 1024u32)).map(|i| (i % 251) as u8).collect();
    let out = env.run_with_stdin(&["run", "--rm", "-i", bb(), "wc", "-c"], &input);
    out.expect_success();
    assert_eq!(out.stdout.trim(), input.len().to_string(), "{out}");
    env.finish();
}

#[test]
fn stdin_not_forwarded_without_i() {
    let env = TestEnv::new("nostdin");
    let out = env.run_with_stdin(&["run", "--rm", bb(), "cat"], b"secret\n");
    out.expect_success();
    assert_eq!(out.stdout, "", "{out}");
    env.finish();
}

#[test]
fn tty_gives_a_terminal_of_the_callers_size() {
    let env = TestEnv::new("tty");
    let mut p = env.spawn_pty(
        &[
            "run",
            "--rm",
            "-t",
            bb(),
            "sh",
            "-c",
            "tty; stty size; [ -e /dev/console ] && echo console-yes; echo done",
        ],
        33,
        99,
    );
    p.wait_for("done", Duration::from_secs(30));
    let (code, text, timed_out) = p.wait();
    assert!(!timed_out, "timed out; terminal showed {text:?}");
    assert_eq!(code, 0, "terminal showed {text:?}");
    assert!(
        text.contains("/dev/pts/0") || text.contains("/dev/console"),
        "`tty` did not name a terminal: {text:?}"
    );
    assert!(text.contains("33 99"), "size not passed on: {text:?}");
    assert!(text.contains("console-yes"), "no /dev/console: {text:?}");
    env.finish();
}

#[test]
fn tty_resize_reaches_container() {
    let env = TestEnv::new("ttyresize");
    let mut p = env.spawn_pty(
        &[
            "run",
            "--rm",
            "-i",
            "-t",
            bb(),
            "sh",
            "-c",
            "echo ready; read x; stty size; echo done",
        ],
        24,
        80,
    );
    assert!(
        p.wait_for("ready", Duration::from_secs(30)),
        "{:?}",
        p.output_so_far()
    );
    p.resize(40, 120);
    std::thread::sleep(Duration::from_millis(500));
    p.write(b"go\r");
    p.wait_for("done", Duration::from_secs(30));
    let (code, text, timed_out) = p.wait();
    assert!(!timed_out, "timed out; terminal showed {text:?}");
    assert_eq!(code, 0, "terminal showed {text:?}");
    assert!(text.contains("40 120"), "resize not passed on: {text:?}");
    env.finish();
}

#[test]
fn tty_passes_exit_code_and_both_streams() {
    let env = TestEnv::new("ttyexit");
    let mut p = env.spawn_pty(
        &[
            "run",
            "--rm",
            "-t",
            bb(),
            "sh",
            "-c",
            "echo to-out; echo to-err >&2; exit 5",
        ],
        24,
        80,
    );
    p.wait_for("to-err", Duration::from_secs(30));
    let (code, text, timed_out) = p.wait();
    assert!(!timed_out, "timed out; terminal showed {text:?}");
    assert_eq!(code, 5, "terminal showed {text:?}");
    assert!(
        text.contains("to-out") && text.contains("to-err"),
        "{text:?}"
    );
    env.finish();
}

#[test]
fn tty_raw_mode_while_running_and_restored_after() {
    let env = TestEnv::new("ttyraw");
    let mut p = env.spawn_pty(
        &[
            "run",
            "--rm",
            "-i",
            "-t",
            bb(),
            "sh",
            "-c",
            "echo ready; read x; echo done",
        ],
        24,
        80,
    );
    let before = p.termios().local_flags;
    assert!(
        before.contains(LocalFlags::ICANON | LocalFlags::ECHO),
        "a fresh pty should be cooked: {before:?}"
    );
    assert!(
        p.wait_for("ready", Duration::from_secs(30)),
        "{:?}",
        p.output_so_far()
    );
    let during = p.termios().local_flags;
    p.write(b"go\r");
    p.wait_for("done", Duration::from_secs(30));
    let (code, text, timed_out, after) = p.wait_with_termios();
    assert!(!timed_out, "timed out; terminal showed {text:?}");
    assert_eq!(code, 0, "terminal showed {text:?}");
    assert!(
        !during.intersects(LocalFlags::ICANON | LocalFlags::ECHO),
        "terminal not in raw mode while the container ran: {during:?}"
    );
    assert_eq!(
        after.local_flags, before,
        "terminal settings not restored after exit"
    );
    env.finish();
}
