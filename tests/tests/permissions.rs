//! Files and permissions: everything hind keeps under its state root is
//! root's alone (the root and every dir 0700, records, configs, logs,
//! sockets and image files 0600), whatever the caller's umask; and a user
//! who is not root gets a clear "needs root" and nothing on disk.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use hind_tests::detach::rm_f;
use hind_tests::oci::{oci_archive, Compression, ImageBuilder, Layer, Layout, REF_NAME};
use hind_tests::{bb, process, Output, TestEnv};

fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// `hind ARGS` run with umask 000, so that any file hind creates without
/// an explicit mode comes out world-writable and is caught.
fn hind_umask0(env: &TestEnv, args: &[&str]) -> Output {
    env.run_umask(args, 0)
}

/// Is `rel` (relative to the state root) container or image content,
/// whose modes are the image's own and not hind's to choose? The files in
/// a container's `etc` are its /etc/hosts, resolv.conf and hostname, which
/// the container's non-root users read: 0644 like Docker's; their dir is
/// still checked.
fn is_content(rel: &Path) -> bool {
    let parts: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
    match parts.as_slice() {
        ["containers", _, "etc", _file] => true,
        ["containers", _, dir, ..] => matches!(*dir, "upper" | "work" | "rootfs"),
        ["images", "layers", _, "diff", ..] => true,
        ["images", "tar", _, "rootfs", ..] => true,
        _ => false,
    }
}

/// Every path under `root` (content dirs excluded) whose mode lets anyone
/// but root in, with what it is.
fn loose_modes(root: &Path) -> Vec<String> {
    let mut loose = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let rel = p.strip_prefix(root).unwrap_or(&p).to_path_buf();
        if is_content(&rel) {
            continue;
        }
        let md = fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
        let ft = md.file_type();
        let mode = md.mode() & 0o7777;
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_socket() {
            "socket"
        } else if ft.is_symlink() {
            "symlink"
        } else {
            "file"
        };
        let want_owner = md.uid() == 0;
        if (kind != "symlink" && mode & 0o077 != 0) || !want_owner {
            loose.push(format!(
                "{kind} {} mode {mode:04o} uid {}",
                p.display(),
                md.uid()
            ));
        }
        if ft.is_dir() {
            for e in fs::read_dir(&p).expect("read dir").flatten() {
                stack.push(e.path());
            }
        }
    }
    loose.sort();
    loose
}

/// Names of the kinds of entries seen (for the test to prove it looked at
/// records, logs, sockets and the image store, not an empty root).
fn names_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let rel = p.strip_prefix(root).unwrap_or(&p).to_path_buf();
        if is_content(&rel) {
            continue;
        }
        if let Some(n) = p.file_name() {
            out.push(n.to_string_lossy().into_owned());
        }
        if p.is_dir() && !p.is_symlink() {
            for e in fs::read_dir(&p).expect("read dir").flatten() {
                stack.push(e.path());
            }
        }
    }
    out
}

#[test]
fn everything_under_the_state_root_is_root_only() {
    let env = TestEnv::new("perm_root");
    // An image loaded into the store, a running container with a log, an
    // exec, a stopped container with a record, a tag, a commit.
    let layout = env.scratch().join("layout");
    let img = ImageBuilder::new().layer(Layer::busybox());
    Layout::create(&layout).add_image(&img, &[(REF_NAME, "perm/img:1")]);
    let archive = env.scratch().join("image.tar");
    oci_archive(&layout, &archive, Compression::None);
    hind_umask0(&env, &["load", "-i", path_str(&archive)]).expect_success();
    hind_umask0(&env, &["tag", "perm/img:1", "perm/img:2"]).expect_success();
    hind_umask0(
        &env,
        &[
            "run",
            "-d",
            "--name",
            "perm-up",
            "perm/img:1",
            "sh",
            "-c",
            "echo hello; sleep 600",
        ],
    )
    .expect_success();
    hind_umask0(&env, &["run", "--name", "perm-done", bb(), "true"]).expect_success();
    let out = hind_umask0(&env, &["exec", "perm-up", "echo", "from-exec"]);
    out.expect_success();
    hind_umask0(&env, &["logs", "perm-up"]).expect_success();
    hind_umask0(&env, &["commit", "perm-up", "perm/committed:1"]).expect_success();
    hind_umask0(&env, &["ps", "-a"]).expect_success();

    let root = env.root();
    let loose = loose_modes(root);
    let seen = names_under(root);
    rm_f(&env, &["perm-up", "perm-done"]);

    let root_mode = fs::metadata(root).expect("stat root").mode() & 0o7777;
    assert_eq!(root_mode, 0o700, "state root {}", root.display());
    for want in [
        "record.json",
        "config.json",
        "container.log",
        "shim.log",
        "lock",
        "perm-up",
        "refs.json",
        "blobs",
        "layers",
    ] {
        assert!(
            seen.iter().any(|n| n == want),
            "no {want} under the root: {seen:?}"
        );
    }
    assert!(
        seen.iter().any(|n| n.ends_with(".sock")),
        "no socket under the root: {seen:?}"
    );
    assert!(
        loose.is_empty(),
        "open to others than root:\n  {}",
        loose.join("\n  ")
    );
    env.finish();
}

/// `setpriv` to uid and gid 65534 with no supplementary groups.
fn as_nobody(args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(hind_tests::hind_bin())
        .args(args)
        .env_remove("HIND_ROOT");
    c
}

#[test]
fn a_user_who_is_not_root_is_told_and_nothing_is_made() {
    let env = TestEnv::new("perm_nonroot");
    // A dir anyone may write to, so that the refusal, not a lack of
    // permission, is what keeps the root from being made.
    let open = env.scratch().join("open");
    fs::create_dir(&open).expect("mkdir open");
    fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).expect("chmod open");
    let root = open.join("nobody-root");
    let r = path_str(&root);
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["--root", r, "run", "--rm", bb(), "true"], 125),
        (vec!["--root", r, "run", "-d", bb(), "sleep", "60"], 125),
        (vec!["--root", r, "ps", "-a"], 1),
        (vec!["--root", r, "pull", "busybox"], 1),
        (vec!["--root", r, "exec", "x", "true"], 125),
    ];
    for (args, code) in &cases {
        let out = process::run(as_nobody(args), b"", hind_tests::default_timeout());
        out.expect_hind_error(*code, &["needs root"]);
        assert!(
            fs::symlink_metadata(&root).is_err(),
            "{args:?} made {}",
            root.display()
        );
    }
    // The same with the root in the environment.
    let mut c = as_nobody(&["run", "--rm", bb(), "true"]);
    c.env("HIND_ROOT", &root);
    let out = process::run(c, b"", hind_tests::default_timeout());
    out.expect_hind_error(125, &["needs root"]);
    assert!(fs::symlink_metadata(&root).is_err(), "made {}", r);
    let leftover: Vec<PathBuf> = fs::read_dir(&open)
        .expect("read scratch")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(leftover.is_empty(), "made {leftover:?}");
    env.finish();
}
