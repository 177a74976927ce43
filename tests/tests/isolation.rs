//! What a container sees of the machine: its command is PID 1, it has its
//! own mount, pid, uts, ipc, cgroup and net namespaces, a hostname, a
//! read-only /sys, a minimal /dev, only `lo`, and only fds 0-2.

use std::collections::BTreeSet;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use hind_tests::{bb, TestEnv};

#[test]
fn command_is_pid_1() {
    let env = TestEnv::new("pid1");
    let out = env.run(&["run", "--rm", bb(), "sh", "-c", "echo $$"]);
    out.expect_success();
    assert_eq!(out.stdout, "1\n", "{out}");
    env.finish();
}

#[test]
fn pid_namespace_shows_only_container_processes() {
    let env = TestEnv::new("pidns");
    // `; :` keeps sh from exec'ing ls, so there are exactly two: sh and ls.
    let out = env.run(&["run", "--rm", bb(), "sh", "-c", "ls /proc; :"]);
    out.expect_success();
    let pids: Vec<&str> = out
        .stdout
        .split_whitespace()
        .filter(|s| s.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert!(pids.contains(&"1"), "{out}");
    assert_eq!(pids.len(), 2, "expected sh and ls only: {pids:?}\n{out}");
    env.finish();
}

#[test]
fn namespaces_differ_from_host() {
    let env = TestEnv::new("nsids");
    let kinds = ["mnt", "pid", "uts", "ipc", "cgroup", "net"];
    let script: String = kinds
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k}; "))
        .collect();
    let out = env.run(&["run", "--rm", bb(), "sh", "-c", &script]);
    out.expect_success();
    let inside: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(inside.len(), kinds.len(), "{out}");
    for (k, got) in kinds.iter().zip(inside) {
        let host = std::fs::read_link(format!("/proc/self/ns/{k}")).expect("host ns link");
        assert_ne!(
            host.to_string_lossy(),
            got,
            "{k} namespace is the host's\n{out}"
        );
    }
    env.finish();
}

#[test]
fn cgroup_namespace_hides_host_path() {
    let env = TestEnv::new("cgns");
    let out = env.run(&["run", "--rm", bb(), "cat", "/proc/self/cgroup"]);
    out.expect_success();
    assert!(
        !out.stdout.contains(env.cgroup_parent()),
        "the container sees its host cgroup path:\n{out}"
    );
    env.finish();
}

#[test]
fn hostname_defaults_to_short_id() {
    let env = TestEnv::new("hostdef");
    env.allow_leftover_containers();
    let out = env.run(&["run", bb(), "hostname"]);
    out.expect_success();
    let id = env.only_container();
    assert_eq!(out.stdout.trim(), &id[..12], "{out}");
    env.finish();
}

#[test]
fn hostname_flag_sets_hostname() {
    let env = TestEnv::new("hostflag");
    let out = env.run(&[
        "run",
        "--rm",
        "--hostname",
        "e2e-box",
        bb(),
        "sh",
        "-c",
        "hostname; cat /proc/sys/kernel/hostname",
    ]);
    out.expect_success();
    assert_eq!(out.stdout, "e2e-box\ne2e-box\n", "{out}");
    let host = nix::unistd::gethostname().expect("gethostname");
    assert_ne!(host.to_string_lossy(), "e2e-box", "host hostname changed");
    env.finish();
}

#[test]
fn mount_inside_is_invisible_on_host() {
    let env = TestEnv::new("mntns");
    let marker = format!("e2emark{}", env.cgroup_parent().replace(['/', '-'], ""));
    let script = format!(
        "mkdir -p /mnt/m && mount -t tmpfs {marker} /mnt/m && grep -q {marker} /proc/mounts \
         && echo ready; read -t 30 x; echo bye"
    );
    // Mounting needs CAP_SYS_ADMIN, which containers lack by default.
    let mut r = env.spawn(&[
        "run",
        "--rm",
        "-i",
        "--cap-add",
        "SYS_ADMIN",
        bb(),
        "sh",
        "-c",
        &script,
    ]);
    let ready = r.wait_for_stdout("ready", Duration::from_secs(30));
    let host_self = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let host_init = std::fs::read_to_string("/proc/1/mountinfo").unwrap_or_default();
    let out = r.release();
    assert!(ready, "the mount inside failed:\n{out}");
    assert!(!host_self.contains(&marker), "mount leaked to the host");
    assert!(
        !host_init.contains(&marker),
        "mount leaked to pid 1's namespace"
    );
    out.expect_success();
    env.finish();
}

#[test]
fn sys_is_read_only_and_proc_mounted() {
    let env = TestEnv::new("sysro");
    let out = env.run(&["run", "--rm", bb(), "cat", "/proc/mounts"]);
    out.expect_success();
    let find = |mp: &str| {
        out.stdout
            .lines()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .rfind(|f| f.len() > 3 && f[1] == mp)
            .map(|f| (f[2].to_string(), f[3].to_string()))
    };
    let (fs, opts) = find("/sys").unwrap_or_else(|| panic!("/sys not mounted:\n{out}"));
    assert_eq!(fs, "sysfs", "{out}");
    assert!(
        opts.split(',').any(|o| o == "ro"),
        "/sys is not read-only: {opts}\n{out}"
    );
    let (fs, _) = find("/proc").unwrap_or_else(|| panic!("/proc not mounted:\n{out}"));
    assert_eq!(fs, "proc", "{out}");
    env.finish();
}

#[test]
fn dev_has_exactly_the_basic_devices() {
    let env = TestEnv::new("dev");
    let script = "ls -A /dev; echo ---; \
        for d in null zero full random urandom tty; do stat -c '%n %F %t:%T' /dev/$d; done; \
        echo ---; cat /proc/mounts; echo ---; \
        echo x > /dev/null && echo null-ok; \
        [ \"$(head -c 3 /dev/zero | od -An -tx1 | tr -d ' ')\" = 000000 ] && echo zero-ok; \
        echo x > /dev/shm/f && echo shm-ok";
    let out = env.run(&["run", "--rm", bb(), "sh", "-c", script]);
    out.expect_success();
    let parts: Vec<&str> = out.stdout.split("---\n").collect();
    assert_eq!(parts.len(), 4, "{out}");
    let names: BTreeSet<&str> = parts[0].split_whitespace().collect();
    for need in [
        "null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "mqueue",
    ] {
        assert!(names.contains(need), "/dev/{need} missing: {names:?}");
    }
    let allowed_extra = ["fd", "stdin", "stdout", "stderr", "core"];
    for n in &names {
        assert!(
            ["null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "mqueue",]
                .contains(n)
                || allowed_extra.contains(n),
            "unexpected /dev/{n} (no -t, so no console either): {names:?}"
        );
    }
    for (dev, num) in [
        ("null", "1:3"),
        ("zero", "1:5"),
        ("full", "1:7"),
        ("random", "1:8"),
        ("urandom", "1:9"),
        ("tty", "5:0"),
    ] {
        let want = format!("/dev/{dev} character special file {num}");
        assert!(parts[1].contains(&want), "want {want:?}:\n{out}");
    }
    let fstype = |mp: &str| {
        parts[2]
            .lines()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .rfind(|f| f.len() > 2 && f[1] == mp)
            .map(|f| f[2].to_string())
    };
    assert_eq!(fstype("/dev").as_deref(), Some("tmpfs"), "{out}");
    assert_eq!(fstype("/dev/pts").as_deref(), Some("devpts"), "{out}");
    assert_eq!(fstype("/dev/mqueue").as_deref(), Some("mqueue"), "{out}");
    assert_eq!(fstype("/dev/shm").as_deref(), Some("tmpfs"), "{out}");
    for ok in ["null-ok", "zero-ok", "shm-ok"] {
        assert!(parts[3].contains(ok), "{ok} missing:\n{out}");
    }
    env.finish();
}

#[test]
fn network_has_only_loopback_up() {
    let env = TestEnv::new("netlo");
    let out = env.run(&[
        "run",
        "--rm",
        bb(),
        "sh",
        "-c",
        "cat /proc/net/dev; echo ---; ip -o link show lo",
    ]);
    out.expect_success();
    let (dev, lo) = out.stdout.split_once("---\n").expect("separator");
    let ifaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, ["lo"], "{out}");
    assert!(lo.contains("UP"), "lo is not up:\n{out}");
    env.finish();
}

#[test]
fn only_fds_0_1_2_reach_the_command() {
    let env = TestEnv::new("fds");
    // Hand hind an extra inheritable fd (7, not CLOEXEC) the way a careless
    // caller would; it must not reach the container.
    let file = std::fs::File::open("/dev/null").expect("open /dev/null");
    let raw = file.as_raw_fd();
    let mut cmd = env.hind();
    cmd.args(["run", "--rm", bb(), "sh", "-c", "ls /proc/$$/fd; :"]);
    // SAFETY: the closure runs in the forked child before exec and only calls
    // dup2(2), which is async-signal-safe; `raw` stays open in the parent
    // until after spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 leaves the new fd without FD_CLOEXEC, so it survives exec.
            if libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = env.run_cmd(cmd);
    drop(file);
    out.expect_success();
    let fds: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(fds, ["0", "1", "2"], "{out}");
    env.finish();
}
