//! Detached containers driven by the lifecycle commands: `run -d` returning
//! once the container runs, failed `run -d` leaving nothing, `logs` (streams,
//! tail, timestamps, since, follow, rotation), `stop`, `start`, `restart`,
//! `kill`, `wait`, `rm`, names and id prefixes, `inspect` templates and OOM,
//! and `attach`. Recovery (dead shims, reboots, races) and restart policies
//! are in `detached_recovery.rs`.

use std::fs;
use std::time::{Duration, Instant};

use hind_tests::detach::{
    self, alive, assert_gone, container_cgroups, inspect, inspect_fmt, logs, names, ps_entry, rm_f,
    run_detached, wait_exited, wait_for_log, SERVE,
};
use hind_tests::{bb, clean, Running, TestEnv};

const LONG: Duration = Duration::from_secs(30);

// ---- run -d ----------------------------------------------------------------

#[test]
fn run_d_prints_id_and_returns_running() {
    let env = TestEnv::new("drun");
    let id = run_detached(&env, &["--name", "d-run", bb(), "sh", "-c", SERVE]);
    assert_eq!(
        env.containers(),
        vec![id.clone()],
        "container dir is the id"
    );

    // No polling: the container runs the moment `run -d` has returned.
    let doc = inspect(&env, "d-run");
    assert_eq!(doc["Id"], id.as_str(), "{doc:#}");
    assert_eq!(doc["Name"], "/d-run", "{doc:#}");
    assert_eq!(doc["State"]["Running"], true, "{doc:#}");
    assert_eq!(doc["State"]["Status"], "running", "{doc:#}");
    let pid = doc["State"]["Pid"].as_i64().unwrap_or(0);
    assert!(pid > 0, "State.Pid must be the container's pid: {doc:#}");
    assert!(alive(pid as i32), "State.Pid {pid} is not a live process");

    let out = env.run(&["ps"]);
    out.expect_success();
    let header = out.stdout.lines().next().unwrap_or_default();
    for col in [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ] {
        assert!(header.contains(col), "ps header lacks {col}:\n{out}");
    }
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&id[..12]))
        .unwrap_or_else(|| panic!("ps does not list {}:\n{out}", &id[..12]));
    assert!(row.contains(" Up "), "ps row is not Up: {row:?}");
    assert!(
        row.trim_end().ends_with("d-run"),
        "ps row lacks the name: {row:?}"
    );

    let entry = ps_entry(&env, &id).expect("ps --format json lists the container");
    assert_eq!(entry["State"], "running", "{entry}");
    assert_eq!(entry["Names"], "d-run", "{entry}");
    assert!(
        entry["Status"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Up"),
        "{entry}"
    );

    let q = env.run(&["ps", "-q"]);
    q.expect_success();
    assert_eq!(q.stdout, format!("{}\n", &id[..12]), "{q}");

    rm_f(&env, &["d-run"]);
    env.finish();
}

#[test]
fn run_d_command_not_found_leaves_nothing() {
    let env = TestEnv::new("drun127");
    let out = env.run(&["run", "-d", "--name", "d-fail", bb(), "no-such-cmd-e2e"]);
    out.expect_hind_error(127, &["no-such-cmd-e2e"]);
    assert_eq!(
        out.stdout, "",
        "no id for a container that never ran:\n{out}"
    );
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    assert!(names(&env).is_empty(), "name left: {:?}", names(&env));
    assert!(
        container_cgroups(&env).is_empty(),
        "{:?}",
        container_cgroups(&env)
    );
    assert!(
        env.run(&["ps", "-a", "-q"]).stdout.is_empty(),
        "ps -a lists the failed container"
    );
    let procs = clean::processes_naming(env.root());
    assert!(procs.is_empty(), "processes left: {procs:?}");
    // The name is free for the next container.
    run_detached(&env, &["--name", "d-fail", bb(), "true"]);
    wait_exited(&env, "d-fail", LONG);
    env.run(&["rm", "d-fail"]).expect_success();
    env.finish();
}

#[test]
fn run_d_bad_image_leaves_nothing() {
    let env = TestEnv::new("drun125");
    let missing = env.scratch().join("no-such-image");
    let missing = missing.to_str().expect("utf-8 path");
    let out = env.run(&["run", "-d", "--name", "d-img", missing, "true"]);
    out.expect_hind_error(125, &["no-such-image"]);
    assert_eq!(out.stdout, "", "{out}");
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    assert!(names(&env).is_empty(), "name left: {:?}", names(&env));
    assert!(container_cgroups(&env).is_empty());
    let procs = clean::processes_naming(env.root());
    assert!(procs.is_empty(), "processes left: {procs:?}");
    env.finish();
}

// ---- logs ------------------------------------------------------------------

#[test]
fn logs_keep_streams_apart_and_print_a_final_partial_line() {
    let env = TestEnv::new("dlogs");
    let id = run_detached(
        &env,
        &[
            "--name",
            "d-logs",
            bb(),
            "sh",
            "-c",
            "echo out1; echo err1 >&2; echo out2; printf partial",
        ],
    );
    wait_exited(&env, "d-logs", LONG);
    let out = logs(&env, &["d-logs"]);
    assert_eq!(out.stdout, "out1\nout2\npartial", "{out}");
    assert_eq!(out.stderr, "err1\n", "{out}");

    // The file is Docker's json-file format: one object per line.
    let text = fs::read_to_string(env.container_dir(&id).join("container.log"))
        .expect("read container.log");
    let entries: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    let got: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            assert!(e["time"].is_string(), "entry without time: {e}");
            (
                e["stream"].as_str().unwrap_or_default().to_string(),
                e["log"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let stdout: String = got
        .iter()
        .filter(|(s, _)| s == "stdout")
        .map(|(_, l)| l.as_str())
        .collect();
    let stderr: String = got
        .iter()
        .filter(|(s, _)| s == "stderr")
        .map(|(_, l)| l.as_str())
        .collect();
    assert_eq!(stdout, "out1\nout2\npartial", "container.log:\n{text}");
    assert_eq!(stderr, "err1\n", "container.log:\n{text}");

    env.run(&["rm", "d-logs"]).expect_success();
    env.finish();
}

#[test]
fn logs_tail() {
    let env = TestEnv::new("dtail");
    run_detached(&env, &["--name", "d-tail", bb(), "seq", "1", "10"]);
    wait_exited(&env, "d-tail", LONG);
    assert_eq!(logs(&env, &["--tail", "3", "d-tail"]).stdout, "8\n9\n10\n");
    assert_eq!(logs(&env, &["--tail", "1", "d-tail"]).stdout, "10\n");
    let all: String = (1..=10).map(|i| format!("{i}\n")).collect();
    assert_eq!(logs(&env, &["--tail", "all", "d-tail"]).stdout, all);
    assert_eq!(logs(&env, &["--tail", "100", "d-tail"]).stdout, all);
    env.run(&["rm", "d-tail"]).expect_success();
    env.finish();
}

/// True for an RFC 3339 time such as `2024-05-01T12:00:00.123456789Z` or
/// `2024-05-01T12:00:00+02:00`.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || b[10] != b'T'
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    rest == "Z"
        || (rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && rest.as_bytes()[3] == b':')
}

#[test]
fn logs_timestamps() {
    let env = TestEnv::new("dtimes");
    run_detached(
        &env,
        &["--name", "d-ts", bb(), "sh", "-c", "echo one; echo two"],
    );
    wait_exited(&env, "d-ts", LONG);
    let out = logs(&env, &["-t", "d-ts"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for (line, want) in lines.iter().zip(["one", "two"]) {
        let (ts, text) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("no timestamp on {line:?}"));
        assert!(is_rfc3339(ts), "not an RFC 3339 time: {ts:?} in {line:?}");
        assert_eq!(text, want, "{out}");
    }
    env.run(&["rm", "d-ts"]).expect_success();
    env.finish();
}

#[test]
fn logs_since() {
    let env = TestEnv::new("dsince");
    run_detached(
        &env,
        &["--name", "d-since", bb(), "sh", "-c", "echo one; echo two"],
    );
    wait_exited(&env, "d-since", LONG);
    let future = logs(&env, &["--since", "2099-01-01T00:00:00Z", "d-since"]);
    assert_eq!(future.stdout, "", "{future}");
    assert_eq!(future.stderr, "", "{future}");
    let past = logs(&env, &["--since", "2000-01-01T00:00:00Z", "d-since"]);
    assert_eq!(past.stdout, "one\ntwo\n", "{past}");
    env.run(&["rm", "d-since"]).expect_success();
    env.finish();
}

#[test]
fn logs_follow_prints_new_lines_and_ends_with_the_container() {
    let env = TestEnv::new("dfollow");
    // Prints `early`, then `late` and a final partial line only when told
    // to (SIGUSR1), so the test knows those come after `logs -f` started.
    let script = "trap 'echo late; printf end-partial; exit 0' USR1; echo early; \
                  while true; do sleep 0.1; done";
    run_detached(&env, &["--name", "d-follow", bb(), "sh", "-c", script]);
    let mut cmd = env.hind();
    cmd.args(["logs", "-f", "d-follow"]);
    let mut f = Running::spawn(cmd, LONG);
    assert!(
        f.wait_for_stdout("early", LONG),
        "logs -f did not print the existing line: {:?} / {:?}",
        f.stdout_so_far(),
        f.stderr_so_far()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!f.exited(), "logs -f ended while the container runs");
    assert!(!f.stdout_so_far().contains("late"));
    env.run(&["kill", "-s", "USR1", "d-follow"])
        .expect_success();
    assert!(
        f.wait_for_stdout("end-partial", LONG),
        "logs -f did not print later output: {:?}",
        f.stdout_so_far()
    );
    let started = Instant::now();
    let out = f.wait();
    out.expect_success();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "logs -f took {:?} to end after the container",
        started.elapsed()
    );
    assert_eq!(out.stdout, "early\nlate\nend-partial", "{out}");
    // On a container that has ended, -f prints everything and returns.
    let started = Instant::now();
    let out = logs(&env, &["-f", "d-follow"]);
    assert_eq!(out.stdout, "early\nlate\nend-partial", "{out}");
    assert!(started.elapsed() < Duration::from_secs(5), "logs -f waited");
    env.run(&["rm", "d-follow"]).expect_success();
    env.finish();
}

#[test]
fn logs_rotate_and_keep_the_newest_lines() {
    let env = TestEnv::new("drotate");
    // 400 lines of 50 bytes: about 20 KB of output, 45 KB of json-file.
    let script = "i=0; while [ $i -lt 400 ]; do \
                  echo line-$(printf %03d $i)-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; \
                  i=$((i+1)); done; echo last-line";
    let id = run_detached(
        &env,
        &[
            "--name",
            "d-rot",
            "--log-opt",
            "max-size=1k",
            "--log-opt",
            "max-file=3",
            bb(),
            "sh",
            "-c",
            script,
        ],
    );
    let doc = wait_exited(&env, "d-rot", LONG);
    assert_eq!(doc["State"]["ExitCode"], 0, "{doc:#}");
    let dir = env.container_dir(&id);
    let log = dir.join("container.log");
    assert!(log.exists(), "no container.log");
    assert!(dir.join("container.log.1").exists(), "not rotated: no .1");
    for n in 3..10 {
        let p = dir.join(format!("container.log.{n}"));
        assert!(!p.exists(), "max-file=3 but {} exists", p.display());
    }
    let out = logs(&env, &["d-rot"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.last(), Some(&"last-line"), "{out}");
    assert!(lines.len() > 2, "rotated logs print only {lines:?}");
    assert!(
        !out.stdout.contains("line-000-"),
        "a deleted file is printed"
    );
    // What is printed is the newest lines, in order, without gaps.
    let nums: Vec<u32> = lines[..lines.len() - 1]
        .iter()
        .map(|l| {
            l.strip_prefix("line-")
                .and_then(|r| r.get(..3))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected line {l:?}"))
        })
        .collect();
    let want: Vec<u32> = (400 - nums.len() as u32..400).collect();
    assert_eq!(nums, want, "not the newest lines in order");
    env.run(&["rm", "d-rot"]).expect_success();
    env.finish();
}

#[test]
fn logs_follow_keeps_up_across_rotation() {
    let env = TestEnv::new("dfollowrot");
    // On USR1: 6 bursts of 20 lines of 50 bytes (one write each, 2 ms
    // apart) through max-size=1k, i.e. 8 entries a file: each burst
    // rotates 2 or 3 times within about 50 ms. max-file=5 keeps every line
    // of a burst on disk, and a 400 ms pause after it lets any reader
    // catch up, so `logs -f` has no excuse to lose a line.
    let script = "trap 'n=0; b=0; while [ $b -lt 6 ]; do i=0; while [ $i -lt 20 ]; do \
                  echo line-$(printf %03d $n)-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; \
                  usleep 2000; i=$((i+1)); n=$((n+1)); done; sleep 0.4; b=$((b+1)); done; \
                  echo last-line; exit 0' USR1; \
                  echo ready; while true; do sleep 0.1; done";
    run_detached(
        &env,
        &[
            "--name",
            "d-frot",
            "--log-opt",
            "max-size=1k",
            "--log-opt",
            "max-file=5",
            bb(),
            "sh",
            "-c",
            script,
        ],
    );
    let mut cmd = env.hind();
    cmd.args(["logs", "-f", "d-frot"]);
    let mut f = Running::spawn(cmd, Duration::from_secs(60));
    assert!(
        f.wait_for_stdout("ready", LONG),
        "logs -f printed nothing: {:?}",
        f.stderr_so_far()
    );
    env.run(&["kill", "-s", "USR1", "d-frot"]).expect_success();
    let out = f.wait();
    out.expect_success();
    let want: String = std::iter::once("ready\n".to_string())
        .chain((0..120).map(|i| format!("line-{i:03}-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n")))
        .chain(std::iter::once("last-line\n".to_string()))
        .collect();
    if out.stdout != want {
        let got: Vec<&str> = out.stdout.lines().collect();
        let missing: Vec<String> = want
            .lines()
            .filter(|l| !got.contains(l))
            .map(|l| l.chars().take(8).collect())
            .collect();
        panic!(
            "logs -f lost or reordered lines across rotations: {} lines printed of {}, \
             missing {missing:?}; stderr {:?}",
            got.len(),
            want.lines().count(),
            out.stderr
        );
    }
    env.run(&["rm", "d-frot"]).expect_success();
    env.finish();
}

/// Sizes of `container.log` and its rotated files that exist.
fn log_file_sizes(env: &TestEnv, id: &str) -> Vec<(String, u64)> {
    let dir = env.container_dir(id);
    let mut out = Vec::new();
    for n in 0..10 {
        let name = if n == 0 {
            "container.log".to_string()
        } else {
            format!("container.log.{n}")
        };
        if let Ok(m) = fs::metadata(dir.join(&name)) {
            out.push((name, m.len()));
        }
    }
    out
}

#[test]
fn log_rotation_honours_max_size_for_bursts() {
    let env = TestEnv::new("drotburst");
    // `seq` writing to a pipe is block-buffered: many lines per write(2).
    let id = run_detached(
        &env,
        &[
            "--name",
            "d-burst",
            "--log-opt",
            "max-size=1k",
            "--log-opt",
            "max-file=3",
            bb(),
            "seq",
            "1",
            "5000",
        ],
    );
    wait_exited(&env, "d-burst", LONG);
    let sizes = log_file_sizes(&env, &id);
    // A file may pass max-size by at most the one entry that did it
    // (Docker's json-file rotates per entry); an entry here is < 100 bytes.
    assert!(
        sizes.iter().all(|(_, n)| *n <= 1024 + 100),
        "log files exceed max-size=1k: {sizes:?}"
    );
    assert!(sizes.len() <= 3, "max-file=3: {sizes:?}");
    let out = logs(&env, &["d-burst"]);
    assert!(out.stdout.ends_with("\n4999\n5000\n"), "{out}");
    env.run(&["rm", "d-burst"]).expect_success();
    env.finish();
}

// ---- stop ------------------------------------------------------------------

#[test]
fn stop_runs_the_term_trap() {
    let env = TestEnv::new("dstop");
    let script = "trap 'echo got-term; exit 42' TERM; echo ready; sleep 600 & wait";
    run_detached(&env, &["--name", "d-stop", bb(), "sh", "-c", script]);
    wait_for_log(&env, "d-stop", "ready", LONG);
    let started = Instant::now();
    let out = env.run(&["stop", "d-stop"]);
    out.expect_success();
    assert_eq!(out.stdout, "d-stop\n", "stop prints the name:\n{out}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stop of a container that exits on TERM took {:?}",
        started.elapsed()
    );
    let doc = inspect(&env, "d-stop");
    assert_eq!(doc["State"]["Status"], "exited", "{doc:#}");
    assert_eq!(doc["State"]["Running"], false, "{doc:#}");
    assert_eq!(doc["State"]["ExitCode"], 42, "{doc:#}");
    assert!(logs(&env, &["d-stop"]).stdout.contains("got-term"));
    // Stopping a stopped container is not an error (as in Docker).
    let out = env.run(&["stop", "d-stop"]);
    out.expect_success();
    assert_eq!(inspect(&env, "d-stop")["State"]["ExitCode"], 42);
    env.run(&["rm", "d-stop"]).expect_success();
    env.finish();
}

#[test]
fn stop_kills_a_container_ignoring_term_after_the_timeout() {
    let env = TestEnv::new("dstopkill");
    let script = "trap '' TERM; echo ready; sleep 600 & wait";
    run_detached(&env, &["--name", "d-stubborn", bb(), "sh", "-c", script]);
    wait_for_log(&env, "d-stubborn", "ready", LONG);
    let started = Instant::now();
    let out = env.run(&["stop", "-t", "1", "d-stubborn"]);
    let took = started.elapsed();
    out.expect_success();
    assert_eq!(out.stdout, "d-stubborn\n", "{out}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "stop -t 1 took {took:?}"
    );
    let doc = inspect(&env, "d-stubborn");
    assert_eq!(doc["State"]["Status"], "exited", "{doc:#}");
    assert_eq!(doc["State"]["ExitCode"], 137, "{doc:#}");
    env.run(&["rm", "d-stubborn"]).expect_success();
    env.finish();
}

#[test]
fn stop_with_signal_sends_that_signal() {
    let env = TestEnv::new("dstopsig");
    let script = "trap 'echo got-usr1; exit 21' USR1; trap 'echo got-term; exit 22' TERM; \
                  echo ready; sleep 600 & wait";
    run_detached(&env, &["--name", "d-usr1", bb(), "sh", "-c", script]);
    wait_for_log(&env, "d-usr1", "ready", LONG);
    env.run(&["stop", "-s", "USR1", "d-usr1"]).expect_success();
    let doc = inspect(&env, "d-usr1");
    assert_eq!(doc["State"]["ExitCode"], 21, "{doc:#}");
    let text = logs(&env, &["d-usr1"]).stdout;
    assert!(
        text.contains("got-usr1") && !text.contains("got-term"),
        "{text:?}"
    );
    env.run(&["rm", "d-usr1"]).expect_success();
    env.finish();
}

// ---- start and restart -----------------------------------------------------

#[test]
fn start_runs_the_same_command_on_the_same_filesystem() {
    let env = TestEnv::new("dstart");
    let script = "echo run >> /root/runs; echo count=$(wc -l < /root/runs); \
                  trap 'exit 0' TERM; sleep 600 & wait";
    let id = run_detached(&env, &["--name", "d-start", bb(), "sh", "-c", script]);
    wait_for_log(&env, "d-start", "count=1", LONG);
    let first = inspect(&env, "d-start");
    env.run(&["stop", "d-start"]).expect_success();
    assert_eq!(inspect_fmt(&env, "d-start", "{{.State.Status}}"), "exited");

    let out = env.run(&["start", "d-start"]);
    out.expect_success();
    assert_eq!(out.stdout, "d-start\n", "start prints the name:\n{out}");
    let second = inspect(&env, "d-start");
    assert_eq!(second["State"]["Running"], true, "{second:#}");
    assert_eq!(second["Id"], id.as_str());
    assert_eq!(second["Config"]["Cmd"], first["Config"]["Cmd"]);
    assert_ne!(
        second["State"]["Pid"], first["State"]["Pid"],
        "a new process runs"
    );
    // The file written by the first run is still there.
    wait_for_log(&env, "d-start", "count=2", LONG);
    let text = logs(&env, &["d-start"]).stdout;
    assert_eq!(text, "count=1\ncount=2\n", "{text:?}");

    env.run(&["stop", "d-start"]).expect_success();
    env.run(&["rm", "d-start"]).expect_success();
    env.finish();
}

#[test]
fn start_a_attaches_and_returns_the_exit_code() {
    let env = TestEnv::new("dstarta");
    let script = "echo x >> /root/n; echo attached-$(wc -l < /root/n); echo to-err >&2; exit 4";
    run_detached(&env, &["--name", "d-sa", bb(), "sh", "-c", script]);
    let doc = wait_exited(&env, "d-sa", LONG);
    assert_eq!(doc["State"]["ExitCode"], 4, "{doc:#}");
    let out = env.run(&["start", "-a", "d-sa"]);
    out.expect_code(4);
    assert_eq!(
        out.stdout, "attached-2\n",
        "start -a relays this run only:\n{out}"
    );
    assert!(out.stderr.contains("to-err"), "{out}");
    assert_eq!(inspect_fmt(&env, "d-sa", "{{.State.Status}}"), "exited");
    env.run(&["rm", "d-sa"]).expect_success();
    env.finish();
}

#[test]
fn restart_stops_and_starts_again() {
    let env = TestEnv::new("drestart");
    let script = "echo started; trap 'echo got-term; exit 0' TERM; sleep 600 & wait";
    run_detached(&env, &["--name", "d-rs", bb(), "sh", "-c", script]);
    wait_for_log(&env, "d-rs", "started", LONG);
    let before = inspect(&env, "d-rs");
    let out = env.run(&["restart", "-t", "5", "d-rs"]);
    out.expect_success();
    assert_eq!(out.stdout, "d-rs\n", "{out}");
    let after = inspect(&env, "d-rs");
    assert_eq!(after["State"]["Running"], true, "{after:#}");
    assert_ne!(after["State"]["Pid"], before["State"]["Pid"], "{after:#}");
    wait_for_log(&env, "d-rs", "started\ngot-term\nstarted\n", LONG);
    rm_f(&env, &["d-rs"]);
    env.finish();
}

// ---- kill ------------------------------------------------------------------

#[test]
fn kill_term_reaches_the_trap() {
    let env = TestEnv::new("dkill");
    let script = "trap 'echo got-term; exit 43' TERM; echo ready; sleep 600 & wait";
    run_detached(&env, &["--name", "d-kill", bb(), "sh", "-c", script]);
    wait_for_log(&env, "d-kill", "ready", LONG);
    let out = env.run(&["kill", "-s", "TERM", "d-kill"]);
    out.expect_success();
    assert_eq!(out.stdout, "d-kill\n", "{out}");
    let w = env.run(&["wait", "d-kill"]);
    w.expect_success();
    assert_eq!(w.stdout, "43\n", "{w}");
    assert!(logs(&env, &["d-kill"]).stdout.contains("got-term"));
    env.run(&["rm", "d-kill"]).expect_success();
    env.finish();
}

#[test]
fn kill_accepts_every_spelling_of_sigkill() {
    let env = TestEnv::new("dkill9");
    let cases: [&[&str]; 4] = [&[], &["-s", "9"], &["-s", "KILL"], &["-s", "SIGKILL"]];
    for (i, flags) in cases.iter().enumerate() {
        let name = format!("d-k{i}");
        // No TERM trap and PID 1: only SIGKILL ends it.
        run_detached(
            &env,
            &["--name", &name, bb(), "sh", "-c", "sleep 600 & wait"],
        );
        let mut args = vec!["kill"];
        args.extend_from_slice(flags);
        args.push(&name);
        env.run(&args).expect_success();
        let doc = wait_exited(&env, &name, LONG);
        assert_eq!(doc["State"]["ExitCode"], 137, "kill {flags:?}: {doc:#}");
        env.run(&["rm", &name]).expect_success();
    }
    env.finish();
}

#[test]
fn kill_of_a_stopped_container_fails() {
    let env = TestEnv::new("dkillstopped");
    run_detached(&env, &["--name", "d-ks", bb(), "true"]);
    wait_exited(&env, "d-ks", LONG);
    let out = env.run(&["kill", "d-ks"]);
    out.expect_code(1)
        .expect_one_error_line(&["d-ks", "not running"]);
    assert_eq!(out.stdout, "", "{out}");
    env.run(&["rm", "d-ks"]).expect_success();
    env.finish();
}

// ---- wait ------------------------------------------------------------------

#[test]
fn wait_for_a_running_and_an_exited_container() {
    let env = TestEnv::new("dwait");
    let id = run_detached(
        &env,
        &["--name", "d-w1", bb(), "sh", "-c", "sleep 1; exit 5"],
    );
    let started = Instant::now();
    let out = env.run(&["wait", "d-w1"]);
    out.expect_success();
    assert_eq!(out.stdout, "5\n", "{out}");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "wait returned before the container ended"
    );
    assert_eq!(inspect_fmt(&env, "d-w1", "{{.State.Status}}"), "exited");
    // Exited already: answers at once.
    let started = Instant::now();
    let out = env.run(&["wait", "d-w1"]);
    out.expect_success();
    assert_eq!(out.stdout, "5\n", "{out}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let entry = detach::ps_entry(&env, &id).expect("ps -a lists it");
    assert!(
        entry["Status"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Exited (5)"),
        "{entry}"
    );
    env.run(&["rm", "d-w1"]).expect_success();
    env.finish();
}

#[test]
fn wait_for_several_prints_one_line_each() {
    let env = TestEnv::new("dwaitmany");
    run_detached(&env, &["--name", "d-a", bb(), "sh", "-c", "exit 1"]);
    wait_exited(&env, "d-a", LONG);
    run_detached(
        &env,
        &["--name", "d-b", bb(), "sh", "-c", "sleep 1; exit 2"],
    );
    run_detached(
        &env,
        &["--name", "d-c", bb(), "sh", "-c", "sleep 0.5; exit 3"],
    );
    let out = env.run(&["wait", "d-a", "d-b", "d-c"]);
    out.expect_success();
    assert_eq!(out.stdout, "1\n2\n3\n", "{out}");
    env.run(&["rm", "d-a", "d-b", "d-c"]).expect_success();
    env.finish();
}

// ---- rm --------------------------------------------------------------------

#[test]
fn rm_refuses_a_running_container_without_force() {
    let env = TestEnv::new("drm");
    let id = run_detached(&env, &["--name", "d-rm", bb(), "sh", "-c", SERVE]);
    let out = env.run(&["rm", "d-rm"]);
    out.expect_code(1).expect_one_error_line(&["d-rm"]);
    assert_eq!(inspect_fmt(&env, "d-rm", "{{.State.Running}}"), "true");

    let out = env.run(&["rm", "-f", "d-rm"]);
    out.expect_success();
    assert_gone(&env, &id);
    assert!(names(&env).is_empty(), "name left: {:?}", names(&env));
    let out = env.run(&["inspect", "d-rm"]);
    out.expect_code(1)
        .expect_one_error_line(&["no such container: d-rm"]);
    // The name can be used again, by a new container.
    let id2 = run_detached(&env, &["--name", "d-rm", bb(), "sh", "-c", SERVE]);
    assert_ne!(id, id2);
    rm_f(&env, &["d-rm"]);
    assert_gone(&env, &id2);
    env.finish();
}

#[test]
fn rm_goes_on_past_an_unknown_container() {
    let env = TestEnv::new("drmmany");
    let a = run_detached(&env, &["--name", "d-m1", bb(), "true"]);
    let b = run_detached(&env, &["--name", "d-m2", bb(), "true"]);
    wait_exited(&env, "d-m1", LONG);
    wait_exited(&env, "d-m2", LONG);
    let out = env.run(&["rm", "d-m1", "d-nope", "d-m2"]);
    out.expect_code(1)
        .expect_one_error_line(&["no such container: d-nope"]);
    assert_eq!(
        out.stdout, "d-m1\nd-m2\n",
        "rm prints what it removed:\n{out}"
    );
    assert_gone(&env, &a);
    assert_gone(&env, &b);
    env.finish();
}

#[test]
fn rm_of_an_exited_container_removes_everything() {
    let env = TestEnv::new("drmexited");
    let id = run_detached(&env, &["--name", "d-rmx", bb(), "sh", "-c", "echo hi"]);
    wait_exited(&env, "d-rmx", LONG);
    let out = env.run(&["rm", "d-rmx"]);
    out.expect_success();
    assert_gone(&env, &id);
    assert!(names(&env).is_empty(), "name left: {:?}", names(&env));
    env.finish();
}

// ---- names and prefixes ----------------------------------------------------

#[test]
fn name_in_use_is_refused() {
    let env = TestEnv::new("dnamedup");
    let id = run_detached(&env, &["--name", "d-dup", bb(), "sh", "-c", SERVE]);
    let out = env.run(&["run", "-d", "--name", "d-dup", bb(), "true"]);
    out.expect_hind_error(125, &["d-dup"]);
    assert_eq!(
        env.containers(),
        vec![id],
        "the refused run left a container"
    );
    rm_f(&env, &["d-dup"]);
    env.finish();
}

#[test]
fn containers_resolve_by_name_id_and_prefix() {
    let env = TestEnv::new("dprefix");
    let id = run_detached(&env, &["--name", "d-pre", bb(), "true"]);
    wait_exited(&env, "d-pre", LONG);
    for q in [&id[..], &id[..12], &id[..5], "d-pre"] {
        assert_eq!(inspect_fmt(&env, q, "{{.Id}}"), id, "resolving {q:?}");
    }
    let out = env.run(&["inspect", "d-nope"]);
    out.expect_code(1)
        .expect_one_error_line(&["no such container: d-nope"]);
    let out = env.run(&["stop", "d-nope"]);
    out.expect_code(1)
        .expect_one_error_line(&["no such container: d-nope"]);
    env.run(&["rm", &id[..7]]).expect_success();
    env.finish();
}

#[test]
fn ambiguous_prefix_is_an_error() {
    let env = TestEnv::new("dambig");
    let mut ids: Vec<String> = Vec::new();
    // 17 ids always have two sharing a first digit.
    let digit = loop {
        let id = run_detached(&env, &[bb(), "true"]);
        let d = id[..1].to_string();
        ids.push(id);
        if ids.iter().filter(|i| i.starts_with(&d)).count() == 2 {
            break d;
        }
        assert!(ids.len() <= 16, "17 ids with distinct first digits?");
    };
    for id in &ids {
        wait_exited(&env, id, LONG);
    }
    let out = env.run(&["inspect", &digit]);
    out.expect_code(1).expect_one_error_line(&[&digit]);
    let line = out.stderr.to_lowercase();
    assert!(
        line.contains("ambiguous") || line.contains("multiple"),
        "the error must say the prefix matches several containers:\n{out}"
    );
    let out = env.run(&["rm", &digit]);
    out.expect_code(1);
    assert_eq!(
        env.containers().len(),
        ids.len(),
        "rm of an ambiguous prefix removed one"
    );
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut args = vec!["rm"];
    args.extend_from_slice(&refs);
    env.run(&args).expect_success();
    env.finish();
}

// ---- inspect ---------------------------------------------------------------

#[test]
fn inspect_templates() {
    let env = TestEnv::new("dinspect");
    let id = run_detached(
        &env,
        &[
            "--name",
            "d-ins",
            "-e",
            "E2E_VAR=yes",
            bb(),
            "sh",
            "-c",
            SERVE,
        ],
    );
    assert_eq!(inspect_fmt(&env, "d-ins", "{{.State.Status}}"), "running");
    assert_eq!(inspect_fmt(&env, "d-ins", "{{.Name}}"), "/d-ins");
    let doc = inspect(&env, "d-ins");
    assert_eq!(doc["Config"]["Cmd"], serde_json::json!(["sh", "-c", SERVE]));
    assert_eq!(doc["Config"]["Tty"], false, "{doc:#}");
    assert_eq!(doc["Config"]["OpenStdin"], false, "{doc:#}");
    assert_eq!(doc["Config"]["Hostname"], &id[..12], "{doc:#}");
    assert!(
        doc["Config"]["Env"]
            .as_array()
            .is_some_and(|e| e.iter().any(|v| v == "E2E_VAR=yes")),
        "{doc:#}"
    );
    assert_eq!(doc["HostConfig"]["RestartPolicy"]["Name"], "no", "{doc:#}");
    assert_eq!(doc["RestartCount"], 0, "{doc:#}");
    let log_path = doc["LogPath"].as_str().unwrap_or_default();
    assert_eq!(
        log_path,
        env.container_dir(&id)
            .join("container.log")
            .to_str()
            .unwrap_or("?"),
        "{doc:#}"
    );
    assert!(doc["State"]["StartedAt"].is_string(), "{doc:#}");

    env.run(&["kill", "-s", "TERM", "d-ins"]).expect_success();
    wait_exited(&env, "d-ins", LONG);
    assert_eq!(inspect_fmt(&env, "d-ins", "{{.State.ExitCode}}"), "0");
    assert_eq!(inspect_fmt(&env, "d-ins", "{{.State.Status}}"), "exited");
    let doc = inspect(&env, "d-ins");
    assert_eq!(doc["State"]["Running"], false, "{doc:#}");
    assert_eq!(doc["State"]["OOMKilled"], false, "{doc:#}");
    assert_ne!(
        doc["State"]["FinishedAt"], "0001-01-01T00:00:00Z",
        "{doc:#}"
    );

    // Several containers: one JSON array, one template line each.
    run_detached(&env, &["--name", "d-ins2", bb(), "sh", "-c", "exit 9"]);
    wait_exited(&env, "d-ins2", LONG);
    let out = env.run(&[
        "inspect",
        "-f",
        "{{.Name}} {{.State.ExitCode}}",
        "d-ins",
        "d-ins2",
    ]);
    out.expect_success();
    assert_eq!(out.stdout, "/d-ins 0\n/d-ins2 9\n", "{out}");
    env.run(&["rm", "d-ins", "d-ins2"]).expect_success();
    env.finish();
}

#[test]
fn inspect_shows_oom_kill() {
    let env = TestEnv::new("doom");
    run_detached(
        &env,
        &[
            "--name",
            "d-oom",
            "-m",
            "16m",
            bb(),
            "sh",
            "-c",
            "x=$(head -c 200000000 /dev/zero | tr \"\\0\" a)",
        ],
    );
    let doc = wait_exited(&env, "d-oom", Duration::from_secs(60));
    assert_eq!(doc["State"]["OOMKilled"], true, "{doc:#}");
    assert_eq!(doc["State"]["ExitCode"], 137, "{doc:#}");
    assert_eq!(inspect_fmt(&env, "d-oom", "{{.State.OOMKilled}}"), "true");
    env.run(&["rm", "d-oom"]).expect_success();
    env.finish();
}

// ---- attach ----------------------------------------------------------------

#[test]
fn attach_relays_output_and_exit_code() {
    let env = TestEnv::new("dattach");
    let script = "i=0; while [ $i -lt 25 ]; do echo line-$i; sleep 0.2; i=$((i+1)); done; exit 9";
    run_detached(&env, &["--name", "d-att", bb(), "sh", "-c", script]);
    let mut a = env.spawn(&["attach", "d-att"]);
    assert!(
        a.wait_for_stdout("line-", LONG),
        "attach printed nothing: {:?}",
        a.stderr_so_far()
    );
    assert!(!a.exited(), "attach ended while the container runs");
    let out = a.wait();
    out.expect_code(9);
    assert!(out.stdout.ends_with("line-24\n"), "{out}");
    // Lines come whole and in order.
    let nums: Vec<u32> = out
        .stdout
        .lines()
        .map(|l| {
            l.strip_prefix("line-")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected line {l:?}"))
        })
        .collect();
    assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
    env.run(&["rm", "d-att"]).expect_success();
    env.finish();
}

#[test]
fn attach_to_a_stopped_container_fails() {
    let env = TestEnv::new("dattachx");
    run_detached(&env, &["--name", "d-attx", bb(), "true"]);
    wait_exited(&env, "d-attx", LONG);
    let out = env.run(&["attach", "--no-stdin", "d-attx"]);
    out.expect_code(1).expect_one_error_line(&["d-attx"]);
    env.run(&["rm", "d-attx"]).expect_success();
    env.finish();
}
