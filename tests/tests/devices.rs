//! The device cgroup and `--device`. Every container gets Docker's rules:
//! it may create any device node (CAP_MKNOD) but open only the basic ones
//! (null, zero, full, random, urandom, tty, console, ptmx, ptys, tun).
//! `--privileged` allows all; `--device` brings one host device in, node
//! and rule. Checked on the v1 `devices` controller (this host) and on a
//! cgroup2-only host (scripts/test-cgroup2 runs this file in its guest),
//! where the rules are a BPF program on the container's cgroup.

use std::time::Duration;

use hind_tests::detach::{rm_f, run_detached};
use hind_tests::{bb, cgroup, Output, TestEnv};

/// `hind run --rm FLAGS <busybox> sh -c SCRIPT`.
fn sh(env: &TestEnv, flags: &[&str], script: &str) -> Output {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[bb(), "sh", "-c", script]);
    env.run(&args)
}

/// Docker's allow rules as the v1 `devices.list` shows them.
const DOCKER_LIST: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

/// The bpf(2) calls a v2 check needs, as the kernel defines them
/// (<linux/bpf.h>).
mod bpf {
    use std::io;
    use std::os::fd::AsRawFd;
    use std::path::Path;

    const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
    const BPF_PROG_QUERY: libc::c_long = 16;
    const BPF_CGROUP_DEVICE: u32 = 6;

    #[repr(C)]
    #[derive(Default)]
    struct QueryAttr {
        target_fd: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        prog_cnt: u32,
    }

    /// Ids of the device programs attached to the cgroup `dir` itself.
    pub fn device_programs(dir: &Path) -> io::Result<Vec<u32>> {
        let f = std::fs::File::open(dir)?;
        let mut ids = [0u32; 16];
        let mut attr = QueryAttr {
            target_fd: f.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..QueryAttr::default()
        };
        // SAFETY: a BPF_PROG_QUERY attr of the right layout whose
        // `prog_ids` points at `prog_cnt` writable u32s that outlive the
        // call; the kernel writes the ids and the count.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_QUERY,
                &mut attr as *mut QueryAttr,
                std::mem::size_of::<QueryAttr>(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ids[..attr.prog_cnt as usize].to_vec())
    }

    /// Whether the kernel still has a program with this id.
    pub fn program_exists(id: u32) -> bool {
        // `union bpf_attr` for BPF_PROG_GET_FD_BY_ID: prog_id, next_id,
        // open_flags.
        let mut attr = [id, 0u32, 0u32];
        // SAFETY: a BPF_PROG_GET_FD_BY_ID attr of three u32s, no pointers.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_GET_FD_BY_ID,
                attr.as_mut_ptr(),
                std::mem::size_of_val(&attr),
            )
        };
        if r >= 0 {
            // SAFETY: the kernel returned a new fd that nothing else owns.
            unsafe { libc::close(r as i32) };
            return true;
        }
        io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT)
    }
}

#[test]
fn default_rules_are_applied_to_the_cgroup() {
    let env = TestEnv::new("devrules");
    let r = env.spawn_held(&[]);
    let ctrl = if cgroup::v2_only() { "pids" } else { "devices" };
    let dir = env.wait_container_cgroup(ctrl).unwrap_or_else(|| {
        panic!(
            "no container cgroup under {}",
            env.parent_cgroup(ctrl).display()
        )
    });
    if cgroup::v2_only() {
        let progs = bpf::device_programs(&dir).expect("query the cgroup's device programs");
        r.release().expect_success();
        assert_eq!(
            progs.len(),
            1,
            "device programs on {}: {progs:?}",
            dir.display()
        );
        // The program belongs to the cgroup: gone once the cgroup is.
        let gone = hind_tests::poll(Duration::from_secs(10), || {
            (!bpf::program_exists(progs[0])).then_some(())
        });
        assert!(
            gone.is_some(),
            "device program {} outlived its cgroup",
            progs[0]
        );
    } else {
        let list = cgroup::read(&dir, "devices.list").unwrap_or_default();
        r.release().expect_success();
        let got: Vec<&str> = list.lines().collect();
        assert_eq!(got, DOCKER_LIST, "devices.list of {}", dir.display());
    }
    env.finish();
}

#[test]
fn a_node_can_be_made_but_not_opened() {
    let env = TestEnv::new("devdeny");
    // mknod works (CAP_MKNOD and the `m` rules), open is what the cgroup
    // refuses; the basic devices stay usable.
    let out = sh(
        &env,
        &[],
        "mknod /dev/sda b 8 0 && echo mknod-ok; head -c1 /dev/sda; \
         mknod /dev/kmsg2 c 1 11 && (: > /dev/kmsg2) && echo kmsg-opened; \
         echo x > /dev/null && head -c1 /dev/urandom > /dev/full; \
         head -c2 /dev/zero | od -An -tx1",
    );
    assert!(out.stdout.contains("mknod-ok"), "{out}");
    assert!(
        !out.stdout.contains("kmsg-opened"),
        "1:11 could be opened:\n{out}"
    );
    assert!(
        out.stderr.contains("/dev/sda: Operation not permitted"),
        "block 8:0 was not refused by the cgroup:\n{out}"
    );
    assert!(
        out.stderr.contains("/dev/kmsg2: Operation not permitted"),
        "{out}"
    );
    // Writing to /dev/full fails with ENOSPC: it was opened.
    assert!(out.stderr.contains("No space left on device"), "{out}");
    assert!(out.stdout.contains("00 00"), "/dev/zero unreadable:\n{out}");
    env.finish();
}

#[test]
fn privileged_may_open_any_device() {
    let env = TestEnv::new("devpriv");
    let out = sh(
        &env,
        &["--privileged"],
        "mknod /dev/kmsg2 c 1 11 && (: > /dev/kmsg2) && echo kmsg-opened",
    );
    out.expect_success();
    assert_eq!(out.stdout, "kmsg-opened\n", "{out}");
    env.finish();
}

#[test]
fn device_flag_brings_node_and_rule() {
    let env = TestEnv::new("devflag");
    // /dev/kmsg (1:11) is not among the defaults: its rule comes from the
    // flag, write-only, and its node goes to a dir that does not exist yet.
    let out = sh(
        &env,
        &[
            "--device",
            "/dev/zero:/dev/myzero",
            "--device",
            "/dev/kmsg:/dev/sub/mykmsg:w",
        ],
        "stat -c '%n %F %t:%T %a %u:%g' /dev/myzero /dev/sub/mykmsg; \
         head -c2 /dev/myzero | od -An -tx1; \
         (: > /dev/sub/mykmsg) && echo kmsg-write-ok; \
         head -c1 /dev/sub/mykmsg > /dev/null || echo kmsg-read-refused",
    );
    out.expect_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "/dev/myzero character special file 1:5 666 0:0",
            "/dev/sub/mykmsg character special file 1:b 644 0:0",
            " 00 00",
            "kmsg-write-ok",
            "kmsg-read-refused",
        ],
        "{out}"
    );
    assert!(out.stderr.contains("Operation not permitted"), "{out}");
    // Without the flag the same node cannot be opened.
    let out = sh(
        &env,
        &[],
        "mknod /dev/mykmsg c 1 11; (: > /dev/mykmsg) || echo refused",
    );
    assert_eq!(out.stdout, "refused\n", "{out}");
    env.finish();
}

#[test]
fn device_flag_errors_name_the_path_and_create_nothing() {
    let env = TestEnv::new("devbad");
    let file = env.scratch().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let file = file.to_str().unwrap();
    for (flag, names) in [
        (
            "/nonexistent-hind-dev",
            &["/nonexistent-hind-dev", "No such file"][..],
        ),
        (file, &[file, "not a character or block device"][..]),
        ("/dev/zero:dev/z", &["dev/z", "not absolute"][..]),
        ("/dev/zero:/dev/z:rwx", &["rwx", "permissions"][..]),
    ] {
        let out = env.run(&["run", "--rm", "--device", flag, bb(), "true"]);
        out.expect_hind_error(125, names);
        assert!(
            env.containers().is_empty(),
            "--device {flag} left a container"
        );
    }
    env.finish();
}

#[test]
fn exec_is_confined_by_the_same_rules() {
    let env = TestEnv::new("devexec");
    let id = run_detached(&env, &[bb(), "sleep", "30"]);
    let out = env.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "mknod /dev/k c 1 11 && (: > /dev/k) 2>/dev/null || echo refused; \
         echo x > /dev/null && echo null-ok",
    ]);
    out.expect_success();
    assert_eq!(out.stdout, "refused\nnull-ok\n", "{out}");
    rm_f(&env, &[&id]);
    env.finish();
}

#[test]
fn device_cgroup_rule_lets_a_device_be_opened() {
    let env = TestEnv::new("devrule");
    // 1:11 (kmsg) is not among the defaults: the rule lets a node of it
    // be written, not read.
    let out = sh(
        &env,
        &["--device-cgroup-rule", "c 1:11 w"],
        "mknod /dev/k c 1 11 && (: > /dev/k) && echo write-ok; \
         head -c1 /dev/k > /dev/null || echo read-refused",
    );
    assert_eq!(out.stdout, "write-ok\nread-refused\n", "{out}");
    for bad in ["c 1:11", "x 1:11 r", "c 1:11 rx", "c one:11 r"] {
        let out = env.run(&["run", "--rm", "--device-cgroup-rule", bad, bb(), "true"]);
        out.expect_hind_error(125, &[bad, "--device-cgroup-rule"]);
        assert!(env.containers().is_empty(), "rule {bad:?} left a container");
    }
    env.finish();
}

#[test]
fn privileged_sees_the_host_devices() {
    let env = TestEnv::new("devhost");
    // Any node the host has beyond the defaults, e.g. /dev/kmsg.
    let host: Vec<String> = ["/dev/kmsg", "/dev/loop-control", "/dev/fuse"]
        .iter()
        .filter(|p| std::path::Path::new(p).exists())
        .map(|p| p.to_string())
        .collect();
    assert!(!host.is_empty(), "the host has none of the probe devices");
    let list = host.join(" ");
    let stat = |flags: &[&str]| {
        sh(
            &env,
            flags,
            &format!("for d in {list}; do stat -c '%n %t:%T' $d 2>/dev/null || echo \"$d missing\"; done"),
        )
    };
    let out = stat(&["--privileged"]);
    out.expect_success();
    for d in &host {
        let md = std::fs::metadata(d).expect("stat host device");
        use std::os::unix::fs::MetadataExt;
        let want = format!(
            "{d} {:x}:{:x}",
            nix::sys::stat::major(md.rdev()),
            nix::sys::stat::minor(md.rdev())
        );
        assert!(out.stdout.lines().any(|l| l == want), "{want}:\n{out}");
    }
    let out = stat(&[]);
    for d in &host {
        assert!(out.stdout.contains(&format!("{d} missing")), "{out}");
    }
    env.finish();
}
