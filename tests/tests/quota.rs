//! `--storage-opt size=`: a disk quota on the container's writable layer,
//! through project quotas on the state root's filesystem. Each kernel test
//! makes its own filesystem image (xfs, or ext4 with the quota and project
//! features), loop-mounts it with prjquota under its scratch dir and puts
//! the state root on it; the mount goes (unmounted, loop device detached)
//! at the end of the test, also when it fails.
//!
//! A kernel that cannot mount such a filesystem (no CONFIG_XFS_QUOTA, no
//! CONFIG_QFMT_V2) skips those tests with a note, unless
//! `HIND_TEST_REQUIRE_QUOTA=1` (set where the kernel has them, as in the
//! scripts/test-cgroup2 guest) makes that a failure. The error tests run
//! everywhere.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use hind_tests::{bb, TestEnv};

/// The first project id hind hands out (hind-cli's `quota::FIRST_ID`).
const FIRST_ID: u32 = 100_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Xfs,
    Ext4,
}

/// A loop-mounted filesystem image under a test's scratch dir; unmounted
/// and its loop device detached on drop.
struct Mounted {
    mnt: PathBuf,
    dev: Option<String>,
}

fn sh(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("run {cmd:?}: {e} (is it installed? scripts/test installs it)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The source (loop device) of the mount at `mnt`, from the mount table.
fn mount_source(mnt: &Path) -> Option<String> {
    let mounts = fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let mut f = l.split(' ');
        let (src, point) = (f.next()?, f.next()?);
        (Path::new(point) == mnt).then(|| src.to_string())
    })
}

impl Mounted {
    /// Makes a `kind` image in the env's scratch dir and mounts it with
    /// `options`. `None` (after a note) when this kernel cannot mount it.
    fn new(env: &TestEnv, kind: Kind, options: &str) -> Option<Mounted> {
        let img = env.scratch().join("fs.img");
        let mnt = env.scratch().join("mnt");
        fs::create_dir_all(&mnt).expect("create the mount point");
        // xfsprogs 6 wants at least 300 MB; the file is sparse.
        fs::File::create(&img)
            .and_then(|f| f.set_len(320 << 20))
            .expect("create the image file");
        match kind {
            Kind::Xfs => sh(Command::new("mkfs.xfs").arg("-q").arg("-f").arg(&img)),
            Kind::Ext4 => sh(Command::new("mkfs.ext4")
                .args(["-q", "-F", "-O", "quota,project"])
                .arg(&img)),
        }
        .unwrap_or_else(|e| panic!("{e}"));
        let mounted = sh(Command::new("mount")
            .arg("-o")
            .arg(format!("loop,{options}"))
            .arg(&img)
            .arg(&mnt));
        let m = Mounted {
            dev: mount_source(&mnt),
            mnt,
        };
        match mounted {
            Ok(()) => Some(m),
            Err(e) if std::env::var("HIND_TEST_REQUIRE_QUOTA").as_deref() == Ok("1") => {
                panic!("mount {kind:?} with {options}: {e}")
            }
            Err(e) => {
                eprintln!("skipped: this kernel cannot mount {kind:?} with {options}: {e}");
                None
            }
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if mount_source(&self.mnt).is_some() && sh(Command::new("umount").arg(&self.mnt)).is_err() {
            // Busy (a leaked process): detach it so that nothing stays
            // visible; the harness reports the process.
            let _ = sh(Command::new("umount").arg("-l").arg(&self.mnt));
        }
        // mount -o loop sets autoclear; detach anyway in case it did not.
        if let Some(dev) = self.dev.as_deref().filter(|d| d.starts_with("/dev/loop")) {
            let _ = Command::new("losetup")
                .arg("-d")
                .arg(dev)
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// An env whose state root is on a fresh `kind` filesystem mounted with
/// prjquota; `None` when the kernel cannot (see the module doc).
fn quota_env(name: &str, kind: Kind) -> Option<(TestEnv, Mounted)> {
    let mut env = TestEnv::new(name);
    let m = Mounted::new(&env, kind, "prjquota")?;
    env.set_root(m.mnt.join("root"));
    Some((env, m))
}

/// The quota of project `id` on the filesystem of `path` (Q_GETQUOTA via
/// quotactl_fd(2)): (block hard limit in KiB, bytes used), or `None` when
/// the filesystem keeps nothing for it.
fn project_quota(path: &Path, id: u32) -> Option<(u64, u64)> {
    const PRJQUOTA: u32 = 2;
    let f = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    // SAFETY: dqblk is plain integers; all zeroes is a valid value.
    let mut d: libc::dqblk = unsafe { std::mem::zeroed() };
    let cmd = ((libc::Q_GETQUOTA as u32) << 8) | PRJQUOTA;
    // SAFETY: `f` is open; Q_GETQUOTA writes a struct if_dqblk, which
    // libc's dqblk is.
    let r = unsafe {
        libc::syscall(
            libc::SYS_quotactl_fd,
            f.as_raw_fd() as libc::c_uint,
            cmd as libc::c_uint,
            id as libc::c_uint,
            &mut d as *mut libc::dqblk,
        )
    };
    if r == -1 {
        let e = std::io::Error::last_os_error();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "Q_GETQUOTA {id}: {e}");
        return None;
    }
    (d.dqb_bhardlimit != 0 || d.dqb_curspace != 0).then_some((d.dqb_bhardlimit, d.dqb_curspace))
}

/// Project id claims left under the state root.
fn claims(env: &TestEnv) -> Vec<String> {
    hind_tests::dir_entries(&env.root().join("quota"))
        .into_iter()
        .filter(|n| n != "lock")
        .collect()
}

/// Checks the state root on the mount for leftovers (containers, names,
/// project id claims), unmounts it, then runs the harness's own checks.
#[track_caller]
fn finish(env: TestEnv, m: Mounted) {
    let mut left = Vec::new();
    for d in ["containers", "names"] {
        for n in hind_tests::dir_entries(&env.root().join(d)) {
            left.push(format!("{d}/{n}"));
        }
    }
    left.extend(claims(&env).into_iter().map(|c| format!("quota/{c}")));
    drop(m);
    env.finish();
    assert!(left.is_empty(), "left in the state root: {left:?}");
}

/// Writes 20 MiB into the container's writable layer; returns dd's output.
const WRITE_20M: &str = "dd if=/dev/zero of=/big bs=1M count=20 2>&1; echo dd-status=$?";

fn size_limit(kind: Kind, name: &str, error: &str) {
    let Some((env, m)) = quota_env(name, kind) else {
        return;
    };
    // Under the limit is fine, past it fails with the filesystem's error.
    let out = env.run(&[
        "run",
        "--rm",
        "--storage-opt",
        "size=10m",
        bb(),
        "sh",
        "-c",
        &format!("dd if=/dev/zero of=/small bs=1M count=5 2>&1 && {WRITE_20M}"),
    ]);
    out.expect_success();
    assert!(out.stdout.contains(error), "want {error:?}:\n{out}");
    assert!(!out.stdout.contains("dd-status=0"), "{out}");
    // The --rm container's id is gone again, limit and claim.
    assert_eq!(project_quota(&m.mnt, FIRST_ID), None);
    assert!(claims(&env).is_empty(), "{:?}", claims(&env));

    // The host is not limited: the same filesystem takes 20 MiB more.
    let host_file = m.mnt.join("host-file");
    fs::write(&host_file, vec![1u8; 20 << 20]).expect("host writes past the container's limit");
    fs::remove_file(&host_file).unwrap();

    // A kept container: its quota shows in inspect and the kernel, and
    // `rm` clears both.
    env.run(&[
        "run",
        "--name",
        "q",
        "--storage-opt",
        "size=10m",
        bb(),
        "sh",
        "-c",
        "echo hello > /f",
    ])
    .expect_success();
    let out = env.run(&["inspect", "q"]);
    out.expect_success();
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("inspect json");
    assert_eq!(
        doc[0]["HostConfig"]["StorageOpt"],
        serde_json::json!({"size": "10m"}),
        "{out}"
    );
    let id = doc[0]["Id"].as_str().expect("Id").to_string();
    let project = env.record(&id)["quota"]["project_id"]
        .as_u64()
        .expect("project_id in the record") as u32;
    let (limit, used) = project_quota(&m.mnt, project).expect("a quota for the container");
    assert_eq!(limit, 10 * 1024, "hard limit in KiB");
    assert!(used > 0, "the container's file counts");
    assert_eq!(claims(&env), vec![project.to_string()]);
    env.run(&["rm", "q"]).expect_success();
    assert_eq!(project_limit(&m.mnt, project), 0);
    assert!(claims(&env).is_empty(), "{:?}", claims(&env));
    finish(env, m);
}

/// The limit of `project`, 0 when there is none (usage of removed files
/// may lag behind: xfs frees inodes in the background).
fn project_limit(path: &Path, project: u32) -> u64 {
    project_quota(path, project).map_or(0, |(l, _)| l)
}

#[test]
fn xfs_size_limit() {
    // xfs charges project quotas as ENOSPC, as Docker users know it.
    size_limit(Kind::Xfs, "quota_xfs", "No space left on device");
}

#[test]
fn ext4_size_limit() {
    // ext4 reports a project quota as EDQUOT.
    size_limit(Kind::Ext4, "quota_ext4", "Disk quota exceeded");
}

/// While an `--rm` container runs its id has a limit; when it exits the
/// shim removes it with the container.
#[test]
fn rm_container_releases_its_project_id() {
    let Some((env, m)) = quota_env("quota_held", Kind::Xfs) else {
        return;
    };
    let r = env.spawn_held(&["--storage-opt", "size=20m"]);
    let id = env.only_container();
    let project = env.record(&id)["quota"]["project_id"]
        .as_u64()
        .expect("project_id in the record") as u32;
    assert_eq!(project_limit(&m.mnt, project), 20 * 1024);
    r.release().expect_success();
    assert_eq!(project_limit(&m.mnt, project), 0);
    assert!(claims(&env).is_empty(), "{:?}", claims(&env));
    finish(env, m);
}

/// Two containers get two ids; without the option there is no limit.
#[test]
fn ids_are_unique_and_no_option_is_unlimited() {
    let Some((env, m)) = quota_env("quota_ids", Kind::Xfs) else {
        return;
    };
    for n in ["a", "b"] {
        env.run(&["run", "--name", n, "--storage-opt", "size=8m", bb(), "true"])
            .expect_success();
    }
    let ids = env.containers();
    let projects: Vec<u64> = ids
        .iter()
        .map(|id| env.record(id)["quota"]["project_id"].as_u64().unwrap())
        .collect();
    assert_ne!(projects[0], projects[1]);
    let out = env.run(&["run", "--rm", bb(), "sh", "-c", WRITE_20M]);
    out.expect_success();
    assert!(out.stdout.contains("dd-status=0"), "{out}");
    env.run(&["rm", "a", "b"]).expect_success();
    for p in projects {
        assert_eq!(project_limit(&m.mnt, p as u32), 0);
    }
    finish(env, m);
}

/// On a filesystem without project quotas: one line naming the state root
/// and its filesystem, exit 125, and nothing made.
#[test]
fn no_project_quotas_is_an_error() {
    let env = TestEnv::new("quota_unsupported");
    let root = env.root().display().to_string();
    let out = env.run(&[
        "run",
        "--rm",
        "--name",
        "nq",
        "--storage-opt",
        "size=10m",
        bb(),
        "true",
    ]);
    out.expect_hind_error(125, &["--storage-opt size", &root, "project quotas"]);
    assert!(env.containers().is_empty());
    assert!(hind_tests::dir_entries(&env.root().join("names")).is_empty());
    // The name is still free.
    env.run(&["run", "--rm", "--name", "nq", bb(), "true"])
        .expect_success();
    env.finish();
}

/// xfs mounted without prjquota: the error says to mount it with prjquota
/// (or, on a kernel whose xfs has no quotas, says that).
#[test]
fn xfs_without_prjquota_is_an_error() {
    let mut env = TestEnv::new("quota_noprj");
    let Some(m) = Mounted::new(&env, Kind::Xfs, "rw") else {
        return;
    };
    env.set_root(m.mnt.join("root"));
    let out = env.run(&["run", "--rm", "--storage-opt", "size=10m", bb(), "true"]);
    let root = env.root().display().to_string();
    out.expect_hind_error(125, &[&root, "xfs", "project quotas"]);
    assert!(
        out.stderr.contains("mount it with -o prjquota") || out.stderr.contains("CONFIG_XFS_QUOTA"),
        "{out}"
    );
    finish(env, m);
}

#[test]
fn bad_storage_opts() {
    let env = TestEnv::new("quota_bad");
    for (opt, named) in [
        ("size=abc", "abc"),
        ("size=0", "\"0\""),
        ("size=10q", "10q"),
        ("foo=1", "foo"),
        ("size", "size"),
    ] {
        let out = env.run(&["run", "--rm", "--storage-opt", opt, bb(), "true"]);
        out.expect_hind_error(125, &[named]);
    }
    let out = env.run(&[
        "run",
        "--rm",
        "--no-overlay",
        "--storage-opt",
        "size=10m",
        bb(),
        "true",
    ]);
    out.expect_hind_error(125, &["--no-overlay"]);
    assert!(env.containers().is_empty());
    env.finish();
}
