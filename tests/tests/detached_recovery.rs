//! Detached containers outliving things: the CLI that started them (the
//! shim is its own session, not a child of the caller), a foreground
//! `hind run` killed with SIGKILL, a shim killed with SIGKILL, a simulated
//! reboot; restart policies; and commands racing on one container (two
//! `start`s, `stop` against `rm -f`).

use std::fs;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use hind_tests::detach::{
    alive, assert_gone, cgroup_pids, container_cgroups, inspect, logs, names, poll_slow, proc_stat,
    ps_entry, ps_json, rm_f, run_detached, shim_pids, wait_dead, wait_for_log, wait_for_state,
    SERVE,
};
use hind_tests::{bb, TestEnv};

const LONG: Duration = Duration::from_secs(30);

/// What `inspect` says in `State.Error` once a shim died under its container.
const SHIM_DIED: &str = "hind-shim exited unexpectedly; the container was killed";

/// The shim pid recorded for container `id`.
#[track_caller]
fn shim_pid(env: &TestEnv, id: &str) -> i32 {
    let rec = env.record(id);
    rec["shim_pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("record has no shim_pid: {rec:#}")) as i32
}

/// How many times `needle` occurs in `hind logs CONTAINER`.
fn log_count(env: &TestEnv, container: &str, needle: &str) -> usize {
    logs(env, &[container]).stdout.matches(needle).count()
}

/// Pids in the test's cgroups that are PID 1 of their own pid namespace,
/// i.e. container inits.
fn container_inits(env: &TestEnv) -> Vec<i32> {
    cgroup_pids(env)
        .into_iter()
        .filter(|pid| {
            let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            alive(*pid)
                && status
                    .lines()
                    .find_map(|l| l.strip_prefix("NSpid:"))
                    .is_some_and(|ns| {
                        let ids: Vec<&str> = ns.split_whitespace().collect();
                        ids.len() > 1 && ids.last() == Some(&"1")
                    })
        })
        .collect()
}

// ---- outliving the CLI -----------------------------------------------------

#[test]
fn container_survives_the_cli() {
    let env = TestEnv::new("dsurvive");
    let id = run_detached(&env, &["--name", "d-surv", bb(), "sh", "-c", SERVE]);
    // `run -d` has exited; the shim lives on, not as our child and not in
    // our session.
    let shim = shim_pid(&env, &id);
    assert_eq!(
        shim_pids(&id),
        vec![shim],
        "the recorded shim is the one shim"
    );
    let st = proc_stat(shim).unwrap_or_else(|| panic!("shim {shim} is gone"));
    let me = std::process::id() as i32;
    let my_sid = nix::unistd::getsid(None).expect("getsid").as_raw();
    assert_ne!(st.ppid, me, "the shim is a child of the test: {st:?}");
    assert_ne!(
        st.session, my_sid,
        "the shim is in the test's session: {st:?}"
    );
    let cmdline = fs::read(format!("/proc/{shim}/cmdline")).expect("shim cmdline");
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let root = env.root().to_string_lossy().into_owned();
    let want = [
        "--root",
        root.as_str(),
        "--id",
        id.as_str(),
        "--client-fd",
        "3",
    ];
    assert!(
        args.first().is_some_and(|a| a.ends_with("hind-shim")) && args[1..] == want,
        "shim command line: {args:?}"
    );

    let pid = inspect(&env, &id)["State"]["Pid"].as_i64().unwrap_or(0) as i32;
    let cst = proc_stat(pid).unwrap_or_else(|| panic!("container {pid} is gone"));
    assert_ne!(
        cst.session, my_sid,
        "the container is in the test's session"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(alive(pid), "the container died after the CLI exited");
    assert!(alive(shim), "the shim died after the CLI exited");
    assert_eq!(inspect(&env, &id)["State"]["Running"], true);

    rm_f(&env, &["d-surv"]);
    assert!(wait_dead(shim, LONG), "rm -f left the shim running");
    env.finish();
}

#[test]
fn foreground_run_killed_leaves_the_container_running() {
    let env = TestEnv::new("dfgkill");
    let script = "echo first; i=0; while [ $i -lt 15 ]; do echo tick-$i; sleep 0.2; \
                  i=$((i+1)); done; echo last";
    let mut r = env.spawn(&["run", "--name", "d-fg", bb(), "sh", "-c", script]);
    assert!(
        r.wait_for_stdout("first", LONG),
        "foreground run printed nothing: {:?}",
        r.stderr_so_far()
    );
    r.signal(Signal::SIGKILL);
    let out = r.wait();
    assert_eq!(out.code, 128 + 9, "{out}");
    let id = env.only_container();
    let doc = inspect(&env, "d-fg");
    assert_eq!(
        doc["State"]["Running"], true,
        "the container died with the CLI: {doc:#}"
    );
    let w = env.run(&["wait", "d-fg"]);
    w.expect_success();
    assert_eq!(w.stdout, "0\n", "{w}");
    let text = logs(&env, &["d-fg"]).stdout;
    let want: String = std::iter::once("first".to_string())
        .chain((0..15).map(|i| format!("tick-{i}")))
        .chain(std::iter::once("last".to_string()))
        .map(|l| l + "\n")
        .collect();
    assert_eq!(text, want, "logs after the CLI died");
    env.run(&["rm", &id]).expect_success();
    env.finish();
}

// ---- restart policies ------------------------------------------------------

#[test]
fn restart_on_failure_stops_after_max_retries() {
    let env = TestEnv::new("donfailure");
    run_detached(
        &env,
        &[
            "--name",
            "d-of",
            "--restart",
            "on-failure:2",
            bb(),
            "sh",
            "-c",
            "echo attempt; exit 3",
        ],
    );
    let doc = wait_for_state(
        &env,
        "d-of",
        Duration::from_secs(60),
        "exited after 2 restarts",
        |d| d["State"]["Status"] == "exited" && d["RestartCount"] == 2,
    );
    assert_eq!(doc["State"]["ExitCode"], 3, "{doc:#}");
    assert_eq!(doc["State"]["Restarting"], false, "{doc:#}");
    assert_eq!(
        doc["HostConfig"]["RestartPolicy"]["Name"], "on-failure",
        "{doc:#}"
    );
    assert_eq!(
        doc["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2,
        "{doc:#}"
    );
    // And no more after that.
    std::thread::sleep(Duration::from_secs(2));
    let doc = inspect(&env, "d-of");
    assert_eq!(doc["State"]["Status"], "exited", "{doc:#}");
    assert_eq!(doc["RestartCount"], 2, "{doc:#}");
    assert_eq!(log_count(&env, "d-of", "attempt"), 3, "runs in total");
    assert!(cgroup_pids(&env).is_empty(), "{:?}", cgroup_pids(&env));
    env.run(&["rm", "d-of"]).expect_success();
    env.finish();
}

#[test]
fn restart_always_until_stopped() {
    let env = TestEnv::new("dalways");
    let script = "echo tick; trap 'exit 0' TERM; sleep 0.3 & wait";
    let id = run_detached(
        &env,
        &[
            "--name",
            "d-al",
            "--restart",
            "always",
            bb(),
            "sh",
            "-c",
            script,
        ],
    );
    wait_for_state(
        &env,
        "d-al",
        Duration::from_secs(60),
        "restarted twice",
        |d| d["RestartCount"].as_u64().unwrap_or(0) >= 2,
    );
    assert_eq!(
        inspect(&env, "d-al")["HostConfig"]["RestartPolicy"]["Name"],
        "always"
    );
    let out = env.run(&["stop", "d-al"]);
    out.expect_success();
    assert_eq!(out.stdout, "d-al\n", "{out}");
    let doc = inspect(&env, "d-al");
    assert_eq!(doc["State"]["Status"], "exited", "{doc:#}");
    assert_eq!(doc["State"]["Running"], false, "{doc:#}");
    assert_eq!(doc["State"]["Restarting"], false, "{doc:#}");
    let count = doc["RestartCount"].clone();
    let ticks = log_count(&env, "d-al", "tick");
    // Stopped for good: no restart later.
    std::thread::sleep(Duration::from_secs(2));
    let doc = inspect(&env, "d-al");
    assert_eq!(
        doc["State"]["Status"], "exited",
        "restarted after stop: {doc:#}"
    );
    assert_eq!(doc["RestartCount"], count, "restarted after stop: {doc:#}");
    assert_eq!(
        log_count(&env, "d-al", "tick"),
        ticks,
        "ran again after stop"
    );
    assert!(cgroup_pids(&env).is_empty(), "{:?}", cgroup_pids(&env));
    assert!(
        ps_json(&env, false).is_empty(),
        "ps lists a stopped container"
    );
    let entry = ps_entry(&env, &id).expect("ps -a lists it");
    assert_eq!(entry["State"], "exited", "{entry}");
    assert!(
        entry["Status"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Exited"),
        "{entry}"
    );
    env.run(&["rm", "d-al"]).expect_success();
    env.finish();
}

#[test]
fn restart_no_does_not_restart() {
    let env = TestEnv::new("drestartno");
    run_detached(
        &env,
        &[
            "--name",
            "d-no",
            "--restart",
            "no",
            bb(),
            "sh",
            "-c",
            "echo once; exit 1",
        ],
    );
    let w = env.run(&["wait", "d-no"]);
    w.expect_success();
    assert_eq!(w.stdout, "1\n", "{w}");
    std::thread::sleep(Duration::from_millis(1500));
    let doc = inspect(&env, "d-no");
    assert_eq!(doc["State"]["Status"], "exited", "{doc:#}");
    assert_eq!(doc["RestartCount"], 0, "{doc:#}");
    assert_eq!(doc["HostConfig"]["RestartPolicy"]["Name"], "no", "{doc:#}");
    assert_eq!(logs(&env, &["d-no"]).stdout, "once\n");
    env.run(&["rm", "d-no"]).expect_success();
    env.finish();
}

#[test]
fn restart_and_rm_are_refused_together() {
    let env = TestEnv::new("drestartrm");
    for policy in ["always", "on-failure:3"] {
        let out = env.run(&["run", "-d", "--rm", "--restart", policy, bb(), "true"]);
        out.expect_hind_error(125, &["--restart", "--rm"]);
        assert_eq!(out.stdout, "", "{out}");
    }
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    env.finish();
}

// ---- a dead shim, a reboot -------------------------------------------------

#[test]
fn shim_killed_shows_exited_and_can_start_again() {
    let env = TestEnv::new("dshimkill");
    let id = run_detached(&env, &["--name", "d-sk", bb(), "sh", "-c", SERVE]);
    wait_for_log(&env, "d-sk", "ready", LONG);
    let shim = shim_pid(&env, &id);
    let pid = inspect(&env, "d-sk")["State"]["Pid"].as_i64().unwrap_or(0) as i32;
    assert!(alive(pid), "container pid {pid} not alive");
    kill(Pid::from_raw(shim), Signal::SIGKILL).expect("kill shim");
    assert!(wait_dead(shim, LONG), "shim survived SIGKILL");
    assert!(
        wait_dead(pid, LONG),
        "the container outlived its shim: {}",
        hind_tests::clean::describe_pid(pid)
    );
    assert!(
        poll_slow(LONG, || cgroup_pids(&env).is_empty().then_some(())).is_some(),
        "container processes left: {:?}",
        cgroup_pids(&env)
    );

    let entry = ps_entry(&env, &id).expect("ps -a lists it");
    assert_eq!(entry["State"], "exited", "{entry}");
    assert!(
        entry["Status"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Exited (137)"),
        "{entry}"
    );
    // That ps reconciled the record and removed what the shim left.
    let cgs = container_cgroups(&env);
    assert!(cgs.is_empty(), "cgroup left after ps: {cgs:?}");
    let sock = env.root().join("run").join(format!("{id}.sock"));
    assert!(!sock.exists(), "socket left after ps: {}", sock.display());
    assert!(
        ps_json(&env, false).is_empty(),
        "ps lists a dead container as running"
    );
    let doc = inspect(&env, "d-sk");
    assert_eq!(doc["State"]["Status"], "exited", "{doc:#}");
    assert_eq!(doc["State"]["Running"], false, "{doc:#}");
    assert_eq!(doc["State"]["ExitCode"], 137, "{doc:#}");
    assert_eq!(doc["State"]["Error"], SHIM_DIED, "{doc:#}");
    let rec = env.record(&id);
    assert_eq!(rec["status"], "exited", "{rec:#}");
    assert_eq!(rec["exit_code"], 137, "{rec:#}");

    let out = env.run(&["start", "d-sk"]);
    out.expect_success();
    let doc = inspect(&env, "d-sk");
    assert_eq!(doc["State"]["Running"], true, "{doc:#}");
    assert_eq!(
        doc["State"]["Error"], "",
        "start clears the old error: {doc:#}"
    );
    assert_eq!(shim_pids(&id).len(), 1, "one new shim");
    wait_for_log(&env, "d-sk", "ready\nready\n", LONG);
    rm_f(&env, &["d-sk"]);
    assert_gone(&env, &id);
    env.finish();
}

#[test]
fn reboot_leaves_a_startable_exited_container() {
    let env = TestEnv::new("dreboot");
    let id = run_detached(&env, &["--name", "d-boot", bb(), "sh", "-c", SERVE]);
    wait_for_log(&env, "d-boot", "ready", LONG);
    let shim = shim_pid(&env, &id);
    // Everything dies at once and nobody writes anything down; the run
    // directory (a tmpfs on a real machine) is empty after boot.
    kill(Pid::from_raw(shim), Signal::SIGKILL).expect("kill shim");
    for pid in cgroup_pids(&env) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    assert!(wait_dead(shim, LONG), "shim survived SIGKILL");
    assert!(
        poll_slow(LONG, || cgroup_pids(&env).is_empty().then_some(())).is_some(),
        "container processes left: {:?}",
        cgroup_pids(&env)
    );
    assert_eq!(
        env.record(&id)["status"],
        "running",
        "precondition: stale record"
    );
    fs::remove_dir_all(env.root().join("run")).expect("remove ROOT/run");

    let entry = ps_entry(&env, &id).expect("ps -a lists it");
    assert_eq!(entry["State"], "exited", "{entry}");
    assert_eq!(inspect(&env, "d-boot")["State"]["Status"], "exited");

    let out = env.run(&["start", "d-boot"]);
    out.expect_success();
    let doc = inspect(&env, "d-boot");
    assert_eq!(doc["State"]["Running"], true, "{doc:#}");
    let pid = doc["State"]["Pid"].as_i64().unwrap_or(0) as i32;
    assert!(alive(pid), "State.Pid {pid} is not alive");
    wait_for_log(&env, "d-boot", "ready\nready\n", LONG);
    assert!(
        env.root().join("run").join(format!("{id}.sock")).exists(),
        "no control socket after start"
    );
    let out = env.run(&["stop", "d-boot"]);
    out.expect_success();
    assert_eq!(inspect(&env, "d-boot")["State"]["ExitCode"], 0);
    env.run(&["rm", "d-boot"]).expect_success();
    assert_gone(&env, &id);
    env.finish();
}

#[test]
fn dead_shim_container_can_be_removed_without_force() {
    let env = TestEnv::new("dshimrm");
    let id = run_detached(&env, &["--name", "d-dead", bb(), "sh", "-c", SERVE]);
    let shim = shim_pid(&env, &id);
    let pid = inspect(&env, "d-dead")["State"]["Pid"]
        .as_i64()
        .unwrap_or(0) as i32;
    kill(Pid::from_raw(shim), Signal::SIGKILL).expect("kill shim");
    assert!(wait_dead(shim, LONG), "shim survived SIGKILL");
    assert!(wait_dead(pid, LONG), "the container outlived its shim");
    // No ps first: rm itself must find out that the container is gone.
    let out = env.run(&["rm", "d-dead"]);
    out.expect_success();
    assert_gone(&env, &id);
    assert!(names(&env).is_empty(), "name left: {:?}", names(&env));
    env.finish();
}

// ---- races -----------------------------------------------------------------

#[test]
fn two_starts_at_once_run_one_shim() {
    let env = TestEnv::new("dstartrace");
    let id = run_detached(&env, &["--name", "d-sr", bb(), "sh", "-c", SERVE]);
    for round in 0..3 {
        env.run(&["stop", "d-sr"]).expect_success();
        assert_eq!(inspect(&env, "d-sr")["State"]["Status"], "exited");
        let a = env.spawn(&["start", "d-sr"]);
        let b = env.spawn(&["start", "d-sr"]);
        let (oa, ob) = (a.wait(), b.wait());
        assert!(
            oa.code == 0 && ob.code == 0,
            "round {round}: both starts must succeed:\n{oa}\n{ob}"
        );
        let doc = inspect(&env, "d-sr");
        assert_eq!(doc["State"]["Running"], true, "round {round}: {doc:#}");
        // A losing shim may take a moment to go away; then exactly one.
        let one = poll_slow(Duration::from_secs(5), || {
            (shim_pids(&id).len() == 1).then_some(())
        });
        assert!(one.is_some(), "round {round}: shims {:?}", shim_pids(&id));
        assert_eq!(shim_pids(&id), vec![shim_pid(&env, &id)], "round {round}");
        let inits = container_inits(&env);
        assert_eq!(inits.len(), 1, "round {round}: container inits {inits:?}");
        assert_eq!(
            doc["State"]["Pid"].as_i64(),
            Some(i64::from(inits[0])),
            "round {round}: {doc:#}"
        );
    }
    rm_f(&env, &["d-sr"]);
    assert_gone(&env, &id);
    env.finish();
}

#[test]
fn stop_and_rm_f_at_once_leave_nothing() {
    let env = TestEnv::new("dstoprm");
    // A container that exits on TERM, and one that waits for the SIGKILL.
    let scripts = [SERVE, "trap '' TERM; echo ready; sleep 600 & wait"];
    for round in 0..4 {
        let name = format!("d-race{round}");
        let script = scripts[round % 2];
        let id = run_detached(&env, &["--name", &name, bb(), "sh", "-c", script]);
        wait_for_log(&env, &name, "ready", LONG);
        let started = Instant::now();
        let s = env.spawn(&["stop", "-t", "3", &name]);
        let r = env.spawn(&["rm", "-f", &name]);
        let (os, or) = (s.wait(), r.wait());
        let dir = env.container_dir(&id);
        if dir.exists() {
            let rec = dir.join("record.json");
            if let Ok(data) = fs::read(&rec) {
                if let Err(e) = serde_json::from_slice::<serde_json::Value>(&data) {
                    panic!(
                        "round {round}: corrupt {}: {e}: {:?}",
                        rec.display(),
                        String::from_utf8_lossy(&data)
                    );
                }
            }
        }
        assert!(!os.timed_out && !or.timed_out, "round {round}:\n{os}\n{or}");
        assert_eq!(or.code, 0, "round {round}: rm -f failed:\n{or}");
        match os.code {
            0 => assert_eq!(os.stdout, format!("{name}\n"), "round {round}:\n{os}"),
            1 => {
                os.expect_one_error_line(&[&name]);
            }
            _ => panic!("round {round}: stop failed oddly:\n{os}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "round {round}: the race took {:?}",
            started.elapsed()
        );
        assert_gone(&env, &id);
        assert!(
            names(&env).is_empty(),
            "round {round}: names {:?}",
            names(&env)
        );
        assert!(
            cgroup_pids(&env).is_empty(),
            "round {round}: processes {:?}",
            cgroup_pids(&env)
        );
        let out = env.run(&["ps", "-a", "-q"]);
        out.expect_success();
        assert_eq!(out.stdout, "", "round {round}: ps -a still lists it");
    }
    env.finish();
}

#[test]
fn two_runs_with_one_name_at_once() {
    let env = TestEnv::new("dnamerace");
    for round in 0..3 {
        let name = format!("d-nr{round}");
        let args = ["run", "-d", "--name", &name, bb(), "sh", "-c", SERVE];
        let a = env.spawn(&args);
        let b = env.spawn(&args);
        let (oa, ob) = (a.wait(), b.wait());
        let (won, lost) = match (oa.code, ob.code) {
            (0, _) => (oa, ob),
            (_, 0) => (ob, oa),
            _ => panic!("round {round}: neither run won:\n{oa}\n{ob}"),
        };
        lost.expect_hind_error(125, &[&name]);
        let id = won.stdout.trim().to_string();
        assert_eq!(env.containers(), vec![id.clone()], "round {round}");
        assert_eq!(names(&env), vec![name.clone()], "round {round}");
        assert_eq!(inspect(&env, &name)["Id"], id.as_str(), "round {round}");
        assert_eq!(container_inits(&env).len(), 1, "round {round}");
        rm_f(&env, &[&name]);
        assert_gone(&env, &id);
    }
    env.finish();
}

#[test]
fn shim_state_after_stop_and_start_is_not_leaked() {
    // A stopped container keeps no shim; a started one has exactly one.
    let env = TestEnv::new("dshimcount");
    let id = run_detached(&env, &["--name", "d-sc", bb(), "sh", "-c", SERVE]);
    assert_eq!(shim_pids(&id).len(), 1);
    env.run(&["stop", "d-sc"]).expect_success();
    assert!(
        poll_slow(LONG, || shim_pids(&id).is_empty().then_some(())).is_some(),
        "a shim stays after stop: {:?}",
        shim_pids(&id)
    );
    assert!(
        container_cgroups(&env).is_empty(),
        "{:?}",
        container_cgroups(&env)
    );
    env.run(&["start", "d-sc"]).expect_success();
    assert_eq!(shim_pids(&id).len(), 1);
    rm_f(&env, &["d-sc"]);
    assert_gone(&env, &id);
    env.finish();
}

/// A container whose shim was killed and whose record was then lost (its
/// state deleted by hand) leaves an empty cgroup nobody will ever load
/// again; the next container to leave that cgroup parent removes it, and
/// the parent with it.
#[test]
fn lost_containers_cgroup_goes_with_the_next_container() {
    let env = TestEnv::new("orphan_cgroup");
    let lost = run_detached(&env, &[bb(), "sleep", "600"]);
    let init = inspect(&env, &lost)["State"]["Pid"].as_i64().unwrap_or(0) as i32;
    let shim = shim_pid(&env, &lost);
    kill(Pid::from_raw(shim), Signal::SIGKILL).expect("kill shim");
    assert!(wait_dead(shim, LONG), "shim survived SIGKILL");
    assert!(wait_dead(init, LONG), "init outlived its shim");
    let name = env.record(&lost)["name"].as_str().unwrap_or("").to_string();
    fs::remove_dir_all(env.container_dir(&lost)).expect("remove the container's dir");
    fs::remove_file(env.root().join("names").join(&name)).expect("remove its name");
    assert!(
        container_cgroups(&env).iter().any(|c| c.ends_with(&lost)),
        "the lost container's cgroup is already gone: nothing to test"
    );
    env.run(&["run", "--rm", bb(), "true"]).expect_success();
    let gone = poll_slow(LONG, || container_cgroups(&env).is_empty().then_some(()));
    assert!(gone.is_some(), "left: {:?}", container_cgroups(&env));
    env.finish();
}
