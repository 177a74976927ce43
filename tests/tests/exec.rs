//! `hind exec`: a second process in a running container. It joins the
//! container's namespaces and cgroup (same PID 1, hostname and mounts),
//! takes the container's env plus `-e`, `-w` and `-u`, keeps stdout and
//! stderr apart (or uses a pty with `-t`), forwards stdin only with `-i`,
//! returns the process's exit code (or returns at once with `-d`), refuses
//! stopped and unknown containers, hands the process only fds 0-2 that all
//! resolve inside the container (runc CVE-2024-21626), and dies with the
//! container. Its output goes to the exec client, never to the log.

use std::collections::BTreeSet;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use hind_tests::detach::{
    alive, cgroup_pids, container_cgroups, inspect, logs, poll_slow, proc_stat, rm_f, run_detached,
    wait_dead, wait_exited, wait_for_log, SERVE,
};
use hind_tests::{bb, cgroup, process, Output, PtyRunning, Running, TestEnv};

const LONG: Duration = Duration::from_secs(30);

/// Starts a detached container `name` running `script` under `sh -c`
/// (with `flags` before the image) and waits for `ready` in its log.
#[track_caller]
fn start(env: &TestEnv, name: &str, flags: &[&str], script: &str) -> String {
    let mut args = vec!["--name", name];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[bb(), "sh", "-c", script]);
    let id = run_detached(env, &args);
    wait_for_log(env, name, "ready", LONG);
    id
}

/// `hind exec ARGS` with empty stdin.
fn exec(env: &TestEnv, args: &[&str]) -> Output {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    env.run(&all)
}

/// Host pid of the container's init (`State.Pid`).
#[track_caller]
fn init_pid(env: &TestEnv, container: &str) -> i32 {
    let doc = inspect(env, container);
    let pid = doc["State"]["Pid"].as_i64().unwrap_or(0) as i32;
    assert!(pid > 0, "no State.Pid:\n{doc:#}");
    pid
}

/// The NUL-separated arguments of host process `pid`.
fn cmdline(pid: i32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            c.split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (up to 20 s) for a live process with exactly `argv` in the test's
/// container cgroups and returns its host pid.
fn find_in_cgroups(env: &TestEnv, argv: &[&str]) -> Option<i32> {
    hind_tests::poll(Duration::from_secs(20), || {
        cgroup_pids(env)
            .into_iter()
            .find(|&p| alive(p) && cmdline(p) == argv)
    })
}

/// Live host processes whose command line is exactly `argv`.
fn processes_with_argv(argv: &[&str]) -> Vec<i32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|&p| alive(p) && cmdline(p) == argv)
        .collect()
}

// ---- joining the container -------------------------------------------------

#[test]
fn exec_joins_the_containers_namespaces() {
    let env = TestEnv::new("xns");
    // A tmpfs mounted by the container's command exists only in its mount
    // namespace: seeing the file on it proves exec shares that namespace,
    // not merely the root fs.
    let script = format!(
        "mkdir -p /mnt/m && mount -t tmpfs xns /mnt/m && echo on-tmpfs > /mnt/m/f && \
         echo on-root > /tmp/init-file && {SERVE}"
    );
    // Mounting needs CAP_SYS_ADMIN, which containers lack by default.
    start(
        &env,
        "x-ns",
        &["--hostname", "x-box", "--cap-add", "SYS_ADMIN"],
        &script,
    );
    let init = init_pid(&env, "x-ns");

    let out = exec(&env, &["x-ns", "cat", "/proc/1/cmdline"]);
    out.expect_success();
    let args: Vec<&str> = out.stdout.split('\0').filter(|a| !a.is_empty()).collect();
    assert_eq!(
        args,
        ["sh", "-c", script.as_str()],
        "/proc/1 is not the container's command:\n{out}"
    );

    let out = exec(&env, &["x-ns", "sh", "-c", "echo $$"]);
    out.expect_success();
    let me: i32 = out.stdout.trim().parse().unwrap_or(0);
    assert!(me > 1, "exec'd shell must be a pid other than 1:\n{out}");

    let out = exec(&env, &["x-ns", "hostname"]);
    out.expect_success();
    assert_eq!(out.stdout, "x-box\n", "{out}");

    let out = exec(&env, &["x-ns", "cat", "/mnt/m/f", "/tmp/init-file"]);
    out.expect_success();
    assert_eq!(out.stdout, "on-tmpfs\non-root\n", "{out}");

    // The container has sh (PID 1) and its `sleep`; exec adds sh and ls.
    // `; :` keeps sh from exec'ing ls.
    let out = exec(&env, &["x-ns", "sh", "-c", "ls /proc; :"]);
    out.expect_success();
    let pids: BTreeSet<i32> = out
        .stdout
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    assert!(pids.contains(&1), "no PID 1 in /proc:\n{out}");
    assert_eq!(
        pids.len(),
        4,
        "expected the container's sh and sleep plus exec's sh and ls: {pids:?}\n{out}"
    );

    // Every namespace is the container's own, as the host sees it.
    let kinds = ["ipc", "uts", "net", "pid", "cgroup", "mnt"];
    let script: String = kinds
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k}; "))
        .collect();
    let out = exec(&env, &["x-ns", "sh", "-c", &script]);
    out.expect_success();
    let inside: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(inside.len(), kinds.len(), "{out}");
    for (k, got) in kinds.iter().zip(inside) {
        let want = fs::read_link(format!("/proc/{init}/ns/{k}")).expect("init ns link");
        assert_eq!(
            want.to_string_lossy(),
            got,
            "exec is not in the container's {k} namespace\n{out}"
        );
    }

    rm_f(&env, &["x-ns"]);
    env.finish();
}

// ---- env, workdir, user ----------------------------------------------------

#[test]
fn exec_env_workdir_and_user() {
    let env = TestEnv::new("xenv");
    start(&env, "x-env", &["-e", "A=1"], SERVE);

    let show = "echo A=$A B=$B C=$C";
    let out = exec(&env, &["x-env", "sh", "-c", show]);
    out.expect_success();
    assert_eq!(
        out.stdout, "A=1 B= C=\n",
        "container env not inherited:\n{out}"
    );

    let out = exec(&env, &["-e", "B=2", "x-env", "sh", "-c", show]);
    out.expect_success();
    assert_eq!(out.stdout, "A=1 B=2 C=\n", "-e B=2 not added:\n{out}");

    let out = exec(&env, &["-e", "A=9", "x-env", "sh", "-c", show]);
    out.expect_success();
    assert_eq!(out.stdout, "A=9 B= C=\n", "-e does not override:\n{out}");

    // `-e C` copies the caller's value.
    let mut cmd = env.hind();
    cmd.env("C", "from-caller")
        .args(["exec", "-e", "C", "x-env", "sh", "-c", show]);
    let out = env.run_cmd(cmd);
    out.expect_success();
    assert_eq!(
        out.stdout, "A=1 B= C=from-caller\n",
        "-e C not copied:\n{out}"
    );

    let out = exec(&env, &["x-env", "pwd"]);
    out.expect_success();
    assert_eq!(out.stdout, "/\n", "{out}");
    let out = exec(&env, &["-w", "/tmp/newdir", "x-env", "pwd"]);
    out.expect_success();
    assert_eq!(out.stdout, "/tmp/newdir\n", "{out}");
    let out = exec(&env, &["x-env", "test", "-d", "/tmp/newdir"]);
    out.expect_success();

    let out = exec(&env, &["x-env", "id"]);
    out.expect_success();
    assert!(out.stdout.starts_with("uid=0(root) gid=0(root)"), "{out}");
    for user in ["65534", "nobody"] {
        let out = exec(&env, &["-u", user, "x-env", "id"]);
        out.expect_success();
        assert!(
            out.stdout
                .starts_with("uid=65534(nobody) gid=65534(nogroup)"),
            "-u {user}:\n{out}"
        );
    }
    for user in ["nobody:root", "65534:0"] {
        let out = exec(&env, &["-u", user, "x-env", "id"]);
        out.expect_success();
        assert!(
            out.stdout.starts_with("uid=65534(nobody) gid=0(root)"),
            "-u {user}:\n{out}"
        );
    }
    let out = exec(&env, &["-u", "no-such-user-e2e", "x-env", "id"]);
    out.expect_hind_error(125, &["no-such-user-e2e"]);

    rm_f(&env, &["x-env"]);
    env.finish();
}

// ---- exit codes ------------------------------------------------------------

#[test]
fn exec_exit_codes() {
    let env = TestEnv::new("xcode");
    start(&env, "x-code", &[], SERVE);

    exec(&env, &["x-code", "true"]).expect_code(0);
    exec(&env, &["x-code", "sh", "-c", "exit 7"]).expect_code(7);
    exec(&env, &["x-code", "sh", "-c", "kill -9 $$"]).expect_code(137);
    exec(&env, &["x-code", "sh", "-c", "kill -TERM $$"]).expect_code(143);

    // /etc/passwd exists but is not executable.
    let out = exec(&env, &["x-code", "/etc/passwd"]);
    out.expect_hind_error(126, &["/etc/passwd"]);
    let out = exec(&env, &["x-code", "no-such-cmd-e2e"]);
    out.expect_hind_error(127, &["no-such-cmd-e2e"]);

    // None of that disturbed the container.
    let doc = inspect(&env, "x-code");
    assert_eq!(doc["State"]["Status"], "running", "{doc:#}");

    rm_f(&env, &["x-code"]);
    env.finish();
}

// ---- standard streams ------------------------------------------------------

#[test]
fn exec_tty_is_a_container_pty_of_the_callers_size() {
    let env = TestEnv::new("xtty");
    start(&env, "x-tty", &[], SERVE);
    let mut p = env.spawn_pty(
        &[
            "exec",
            "-t",
            "x-tty",
            "sh",
            "-c",
            "tty; stty size; echo done; exit 3",
        ],
        33,
        99,
    );
    p.wait_for("done", LONG);
    let (code, text, timed_out) = p.wait();
    assert!(!timed_out, "timed out; terminal showed {text:?}");
    assert_eq!(code, 3, "terminal showed {text:?}");
    // `tty` checks that /dev/pts/N in the container is the terminal on fd 0,
    // so a host pty would print `not a tty`.
    assert!(
        text.contains("/dev/pts/"),
        "`tty` did not name a pty of the container: {text:?}"
    );
    assert!(!text.contains("not a tty"), "{text:?}");
    assert!(text.contains("33 99"), "size not passed on: {text:?}");
    rm_f(&env, &["x-tty"]);
    env.finish();
}

#[test]
fn exec_stdin_only_with_i() {
    let env = TestEnv::new("xstdin");
    start(&env, "x-in", &[], SERVE);
    let out = env.run_with_stdin(&["exec", "-i", "x-in", "cat"], b"hi\n");
    out.expect_success();
    assert_eq!(out.stdout, "hi\n", "{out}");
    // Without -i the process gets no stdin (and `cat` must not hang).
    let out = env.run_with_stdin(&["exec", "x-in", "cat"], b"secret\n");
    out.expect_success();
    assert_eq!(out.stdout, "", "{out}");
    rm_f(&env, &["x-in"]);
    env.finish();
}

#[test]
fn exec_stdout_and_stderr_stay_separate() {
    let env = TestEnv::new("xsep");
    start(&env, "x-sep", &[], SERVE);
    let out = exec(
        &env,
        &["x-sep", "sh", "-c", "echo out; echo err >&2; echo out2"],
    );
    out.expect_success();
    assert_eq!(out.stdout, "out\nout2\n", "{out}");
    assert_eq!(out.stderr, "err\n", "{out}");
    rm_f(&env, &["x-sep"]);
    env.finish();
}

// ---- -d --------------------------------------------------------------------

#[test]
fn exec_d_returns_at_once_and_the_process_runs_on() {
    let env = TestEnv::new("xdet");
    start(&env, "x-det", &[], SERVE);
    let started = Instant::now();
    let out = exec(
        &env,
        &[
            "-d",
            "x-det",
            "sh",
            "-c",
            "sleep 3; echo done > /tmp/marker",
        ],
    );
    let took = started.elapsed();
    out.expect_success();
    assert_eq!(out.stdout, "", "{out}");
    assert!(
        took < Duration::from_secs(2),
        "exec -d took {took:?}: it waited for the process"
    );
    let first = exec(&env, &["x-det", "cat", "/tmp/marker"]);
    if started.elapsed() < Duration::from_millis(2500) {
        first.expect_code(1);
    }
    let mut last = None;
    let seen = poll_slow(Duration::from_secs(10), || {
        let out = exec(&env, &["x-det", "cat", "/tmp/marker"]);
        let ok = out.code == 0 && out.stdout == "done\n";
        last = Some(out);
        ok.then_some(())
    });
    assert!(
        seen.is_some(),
        "the detached process did not write its marker:\n{}",
        last.map(|o| o.to_string()).unwrap_or_default()
    );
    rm_f(&env, &["x-det"]);
    env.finish();
}

// ---- refusals --------------------------------------------------------------

#[test]
fn exec_into_a_stopped_or_unknown_container_fails() {
    let env = TestEnv::new("xstopped");
    run_detached(&env, &["--name", "x-stopped", bb(), "true"]);
    wait_exited(&env, "x-stopped", LONG);
    let out = exec(&env, &["x-stopped", "echo", "hi"]);
    out.expect_hind_error(125, &["x-stopped"]);
    assert_eq!(out.stdout, "", "{out}");

    let out = exec(&env, &["x-nope-e2e", "echo", "hi"]);
    out.expect_hind_error(125, &["x-nope-e2e"]);
    assert_eq!(out.stdout, "", "{out}");

    env.run(&["rm", "x-stopped"]).expect_success();
    env.finish();
}

// ---- fds and cwd (CVE-2024-21626) ------------------------------------------

/// The shell's fds as `fds N...` (listed by `ls` into a file from a
/// subshell, so neither a glob's directory fd, a command substitution's
/// pipe nor the shell's saved copy of a redirected fd shows up), then
/// for each fd `FD TARGET inside|OUTSIDE|anon`, where a path is `inside`
/// only when that path in the container is the very file the fd refers to.
/// Then the same for the cwd and the root.
const FD_REPORT: &str = "(ls /proc/$$/fd > /tmp/fds.$$); set -- $(cat /tmp/fds.$$); \
     rm -f /tmp/fds.$$; echo fds \"$@\"; \
     for f in \"$@\" cwd root; do p=/proc/$$/fd/$f; case $f in c*|r*) p=/proc/$$/$f;; esac; \
     t=$(readlink $p); case \"$t\" in \
     /*) if [ \"$(stat -L -c %d:%i $p)\" = \"$(stat -c %d:%i \"$t\" 2>/dev/null)\" ]; \
     then w=inside; else w=OUTSIDE; fi;; *) w=anon;; esac; echo \"$f $t $w\"; done";

/// `hind exec FLAGS x-fds sh -c FD_REPORT`, with an extra inheritable fd 7
/// (no CLOEXEC) handed to hind as a careless caller would.
fn fd_report_cmd(env: &TestEnv, flags: &[&str], file: &fs::File) -> std::process::Command {
    let raw = file.as_raw_fd();
    let mut cmd = env.hind();
    cmd.arg("exec")
        .args(flags)
        .args(["x-fds", "sh", "-c", FD_REPORT]);
    // SAFETY: the closure runs in the forked child before exec and only calls
    // dup2(2), which is async-signal-safe; the caller keeps `file` (and so
    // `raw`) open until after spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 leaves the new fd without FD_CLOEXEC, so it survives exec.
            if libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Checks one [`FD_REPORT`]: exactly fds 0-2, the cwd `cwd`, the root `/`;
/// returns the fds or links that refer to something outside the container.
#[track_caller]
fn check_fd_report(what: &str, text: &str, cwd: &str) -> Vec<String> {
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
    let mut fds: Vec<u32> = lines
        .by_ref()
        .find_map(|l| l.strip_prefix("fds "))
        .unwrap_or_else(|| panic!("{what}: no fd list in {text:?}"))
        .split(' ')
        .map(|f| f.parse().unwrap_or(u32::MAX))
        .collect();
    fds.sort_unstable();
    assert_eq!(fds, [0, 1, 2], "{what}: fds other than 0-2 in {text:?}");
    let rows: Vec<Vec<&str>> = lines.take(5).map(|l| l.split(' ').collect()).collect();
    assert_eq!(rows.len(), 5, "{what}: {text:?}");
    let find = |k: &str| rows.iter().find(|r| r[0] == k).map(|r| r[1]);
    assert_eq!(find("cwd"), Some(cwd), "{what}: {text:?}");
    assert_eq!(find("root"), Some("/"), "{what}: {text:?}");
    let mut outside = Vec::new();
    for r in &rows {
        assert_eq!(r.len(), 3, "{what}: odd line {r:?} in {text:?}");
        if r[2] == "OUTSIDE" || r[1].contains(hind_tests::E2E_DIR) {
            outside.push(format!(
                "{what}: {} -> {} is not that path in the container",
                r[0], r[1]
            ));
        }
    }
    outside
}

#[test]
fn exec_gets_only_fds_0_1_2_all_inside_the_container() {
    let env = TestEnv::new("xfds");
    start(&env, "x-fds", &[], SERVE);
    let file = fs::File::open("/dev/null").expect("open /dev/null");
    let mut outside = Vec::new();
    for (flags, cwd) in [
        (&[][..], "/"),
        (&["-i"][..], "/"),
        (&["-w", "/tmp/wd"][..], "/tmp/wd"),
    ] {
        let out = env.run_cmd(fd_report_cmd(&env, flags, &file));
        out.expect_success();
        let what = format!("exec {flags:?}");
        outside.extend(check_fd_report(&what, &out.stdout, cwd));
    }
    let cmd = fd_report_cmd(&env, &["-t"], &file);
    let mut p = PtyRunning::spawn(cmd, 24, 200, LONG);
    p.wait_for("root /", LONG);
    let (code, text, timed_out) = p.wait();
    assert!(!timed_out && code == 0, "exec -t: {code} {text:?}");
    outside.extend(check_fd_report("exec -t", &text, "/"));
    drop(file);
    rm_f(&env, &["x-fds"]);
    env.finish();
    assert!(
        outside.is_empty(),
        "fds resolve outside the container:\n  {}",
        outside.join("\n  ")
    );
}

// ---- cgroup ----------------------------------------------------------------

#[test]
fn exec_runs_in_the_containers_cgroup() {
    let env = TestEnv::new("xcg");
    // `sleep` as the container's command: init has no children, so any
    // second pid in the container's cgroup is the exec'd one.
    run_detached(&env, &["--name", "x-cg", bb(), "sleep", "600"]);
    let init = init_pid(&env, "x-cg");
    let cgs = container_cgroups(&env);
    assert!(!cgs.is_empty(), "no container cgroup");
    for cg in &cgs {
        assert_eq!(
            cgroup::subtree_pids(cg),
            [init],
            "before exec {} holds more than init",
            cg.display()
        );
    }

    exec(&env, &["-d", "x-cg", "sleep", "777"]).expect_success();
    let pid = find_in_cgroups(&env, &["sleep", "777"])
        .unwrap_or_else(|| panic!("exec'd sleep not in the container cgroups {cgs:?}"));
    for cg in &cgs {
        let pids = cgroup::subtree_pids(cg);
        assert!(
            pids.len() > 1 && pids.contains(&init) && pids.contains(&pid),
            "{} should hold init {init} and the exec'd {pid}: {pids:?}",
            cg.display()
        );
    }
    let mine = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("exec'd cgroup");
    let theirs = fs::read_to_string(format!("/proc/{init}/cgroup")).expect("init cgroup");
    assert_eq!(mine, theirs, "exec'd process is not in init's cgroups");
    assert!(mine.contains(env.cgroup_parent()), "{mine}");

    // It sits in the container's pid namespace as a child of the shim.
    let ns = |p: i32| fs::read_link(format!("/proc/{p}/ns/pid")).expect("pid ns link");
    assert_eq!(
        ns(pid),
        ns(init),
        "exec'd process outside the pid namespace"
    );
    let ppid = proc_stat(pid).map(|s| s.ppid).unwrap_or(0);
    let comm = fs::read_to_string(format!("/proc/{ppid}/comm")).unwrap_or_default();
    assert_eq!(
        comm.trim(),
        "hind-shim",
        "parent of the exec'd process ({ppid}) is not the shim"
    );

    rm_f(&env, &["x-cg"]);
    assert!(
        wait_dead(pid, Duration::from_secs(10)),
        "exec'd sleep outlived rm -f"
    );
    env.finish();
}

// ---- concurrency -----------------------------------------------------------

#[test]
fn twenty_concurrent_execs_each_get_their_own_exit_code() {
    let env = TestEnv::new("xconc");
    start(&env, "x-conc", &[], SERVE);
    let handles: Vec<_> = (0..20)
        .map(|n| {
            let mut cmd = env.hind();
            cmd.args([
                "exec",
                "x-conc",
                "sh",
                "-c",
                &format!("echo n={n}; exit {n}"),
            ]);
            std::thread::spawn(move || process::run(cmd, b"", hind_tests::default_timeout()))
        })
        .collect();
    for (n, h) in handles.into_iter().enumerate() {
        let out = h.join().expect("exec thread");
        out.expect_code(n as i32);
        assert_eq!(out.stdout, format!("n={n}\n"), "exec {n}:\n{out}");
    }
    rm_f(&env, &["x-conc"]);
    env.finish();
}

// ---- lifetime --------------------------------------------------------------

#[test]
fn exec_processes_die_with_the_container() {
    let env = TestEnv::new("xdie");
    start(&env, "x-die", &[], SERVE);
    exec(&env, &["-d", "x-die", "sleep", "601"]).expect_success();
    let detached = find_in_cgroups(&env, &["sleep", "601"]).expect("exec -d sleep 601 running");
    // An attached exec too: its client must end when the process is killed.
    let attached: Running = env.spawn(&["exec", "x-die", "sleep", "602"]);
    let attached_pid =
        find_in_cgroups(&env, &["sleep", "602"]).expect("attached exec sleep 602 running");

    let started = Instant::now();
    env.run(&["stop", "x-die"]).expect_success();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "stop took {:?}: exec'd processes held the container",
        started.elapsed()
    );
    assert_eq!(inspect(&env, "x-die")["State"]["Status"], "exited");
    for pid in [detached, attached_pid] {
        assert!(
            wait_dead(pid, Duration::from_secs(5)),
            "exec'd process {pid} survived stop"
        );
    }
    for argv in [["sleep", "601"], ["sleep", "602"]] {
        let left = processes_with_argv(&argv);
        assert!(left.is_empty(), "{argv:?} left on the host: {left:?}");
    }
    let pids = cgroup_pids(&env);
    assert!(pids.is_empty(), "processes left in the cgroups: {pids:?}");

    let out = attached.wait();
    out.expect_code(137);

    env.run(&["rm", "x-die"]).expect_success();
    env.finish();
}

// ---- logs ------------------------------------------------------------------

#[test]
fn exec_output_stays_out_of_the_container_log() {
    let env = TestEnv::new("xlog");
    start(&env, "x-log", &[], SERVE);
    let out = exec(
        &env,
        &[
            "x-log",
            "sh",
            "-c",
            "echo exec-out-e2e; echo exec-err-e2e >&2",
        ],
    );
    out.expect_success();
    assert_eq!(out.stdout, "exec-out-e2e\n", "{out}");
    assert_eq!(out.stderr, "exec-err-e2e\n", "{out}");
    exec(&env, &["-d", "x-log", "sh", "-c", "echo exec-detached-e2e"]).expect_success();
    let mut p = env.spawn_pty(&["exec", "-t", "x-log", "echo", "exec-tty-e2e"], 24, 80);
    p.wait_for("exec-tty-e2e", LONG);
    let (code, text, _) = p.wait();
    assert_eq!(code, 0, "{text:?}");
    // Give a detached writer time to (wrongly) reach the log.
    std::thread::sleep(Duration::from_millis(500));
    env.run(&["stop", "x-log"]).expect_success();
    let log = logs(&env, &["x-log"]);
    assert!(log.stdout.contains("ready"), "{log}");
    assert!(log.stdout.contains("got-term"), "{log}");
    for s in ["exec-out", "exec-err", "exec-detached", "exec-tty"] {
        assert!(
            !log.stdout.contains(s) && !log.stderr.contains(s),
            "{s} reached the container log:\n{log}"
        );
    }
    env.run(&["rm", "x-log"]).expect_success();
    env.finish();
}
