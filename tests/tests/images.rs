//! Images: a directory under an overlay (never modified), `--no-overlay`
//! straight on a directory, a tar unpacked once into the store, and the host
//! root (`/` and its alias `NOIMG`).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use hind_tests::image::build_busybox_rootfs;
use hind_tests::{bb, make_tar, snapshot, TestEnv};

fn private_image(env: &TestEnv) -> String {
    let dir = env.scratch().join("img");
    build_busybox_rootfs(&dir).expect("build private image");
    dir.to_str().expect("utf-8").to_string()
}

/// Unpacked copies of the busybox image under `images` (dirs holding
/// `bin/busybox`, up to four levels down) with the inode of that file, which
/// changes if the tar is unpacked again.
fn unpacked(images: &Path) -> Vec<(PathBuf, u64)> {
    fn walk(d: &Path, depth: u32, out: &mut Vec<(PathBuf, u64)>) {
        if let Ok(m) = fs::symlink_metadata(d.join("bin/busybox")) {
            out.push((d.to_path_buf(), m.ino()));
            return;
        }
        if depth == 0 {
            return;
        }
        for e in fs::read_dir(d).into_iter().flatten().flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(&e.path(), depth - 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(images, 4, &mut out);
    out.sort();
    out
}

#[test]
fn overlay_leaves_image_untouched() {
    let env = TestEnv::new("overlay");
    env.allow_leftover_containers();
    let img = private_image(&env);
    let before = snapshot(Path::new(&img));
    let out = env.run(&[
        "run",
        &img,
        "sh",
        "-c",
        "echo data > /newfile && rm /etc/group && echo more >> /etc/passwd && cat /newfile",
    ]);
    out.expect_success();
    assert_eq!(out.stdout, "data\n", "{out}");
    assert_eq!(
        before,
        snapshot(Path::new(&img)),
        "the image directory changed"
    );
    let id = env.only_container();
    let upper = env.container_dir(&id).join("upper");
    assert_eq!(
        fs::read_to_string(upper.join("newfile")).ok().as_deref(),
        Some("data\n"),
        "new file not in {}",
        upper.display()
    );
    env.finish();
}

#[test]
fn overlay_changes_do_not_leak_between_containers() {
    let env = TestEnv::new("overlay2");
    let out = env.run(&["run", "--rm", bb(), "sh", "-c", "echo x > /leak"]);
    out.expect_success();
    let out = env.run(&[
        "run",
        "--rm",
        bb(),
        "sh",
        "-c",
        "[ ! -e /leak ] && echo clean",
    ]);
    out.expect_success();
    assert_eq!(out.stdout, "clean\n", "{out}");
    env.finish();
}

#[test]
fn no_overlay_writes_to_image_dir() {
    let env = TestEnv::new("nooverlay");
    let img = private_image(&env);
    let out = env.run(&[
        "run",
        "--rm",
        "--no-overlay",
        &img,
        "sh",
        "-c",
        "echo direct > /written",
    ]);
    out.expect_success();
    assert_eq!(
        fs::read_to_string(Path::new(&img).join("written"))
            .ok()
            .as_deref(),
        Some("direct\n"),
        "{out}"
    );
    env.finish();
}

#[test]
fn tar_image_is_unpacked_once_and_reused() {
    let env = TestEnv::new("tarimg");
    let tar = env.scratch().join("busybox.tar");
    make_tar(bb().as_ref(), &tar);
    let tar = tar.to_str().expect("utf-8");
    let out = env.run(&["run", "--rm", tar, "sh", "-c", "head -1 /etc/passwd"]);
    out.expect_success();
    assert_eq!(out.stdout, "root:x:0:0:root:/root:/bin/sh\n", "{out}");
    let images = env.root().join("images");
    let first = unpacked(&images);
    assert_eq!(
        first.len(),
        1,
        "expected one unpacked image under {}: {first:?}",
        images.display()
    );
    let out = env.run(&["run", "--rm", tar, "cat", "/etc/group"]);
    out.expect_success();
    assert!(out.stdout.starts_with("root:x:0:"), "{out}");
    assert_eq!(
        first,
        unpacked(&images),
        "the second run unpacked the tar again"
    );
    env.finish();
}

#[test]
fn host_root_image_runs() {
    let env = TestEnv::new("hostroot");
    let out = env.run(&["run", "--rm", "/", "/bin/true"]);
    out.expect_success();
    let out = env.run(&["run", "--rm", "/", "cat", "/etc/os-release"]);
    out.expect_success();
    let host = fs::read_to_string("/etc/os-release").expect("host os-release");
    assert_eq!(out.stdout, host, "{out}");
    env.finish();
}

#[test]
fn noimg_is_host_root() {
    let env = TestEnv::new("noimg");
    let out = env.run(&["run", "--rm", "NOIMG", "cat", "/etc/os-release"]);
    out.expect_success();
    let host = fs::read_to_string("/etc/os-release").expect("host os-release");
    assert_eq!(out.stdout, host, "{out}");
    env.finish();
}

#[test]
fn host_root_is_not_modified() {
    let env = TestEnv::new("hostrw");
    let name = format!("/hind-e2e-marker{}", env.cgroup_parent().replace('/', "-"));
    let script = format!("echo x > {name} && cat {name}");
    let out = env.run(&["run", "--rm", "/", "sh", "-c", &script]);
    out.expect_success();
    let leaked = Path::new(&name).exists();
    if leaked {
        let _ = fs::remove_file(&name);
    }
    assert!(!leaked, "a write inside reached the host root: {name}");
    env.finish();
}

#[test]
fn relative_image_paths() {
    let env = TestEnv::new("relimg");
    private_image(&env);
    let sub = env.scratch().join("sub");
    fs::create_dir_all(&sub).expect("mkdir sub");
    for (dir, img) in [(env.scratch(), "./img"), (sub.as_path(), "../img")] {
        let mut cmd = env.hind();
        cmd.current_dir(dir)
            .args(["run", "--rm", img, "head", "-1", "/etc/passwd"]);
        let out = env.run_cmd(cmd);
        out.expect_success();
        assert_eq!(
            out.stdout, "root:x:0:0:root:/root:/bin/sh\n",
            "{img}: {out}"
        );
    }
    env.finish();
}
