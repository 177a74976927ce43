//! The test image: a minimal root fs made from Debian's `busybox-static`
//! (`/bin/busybox` plus one symlink per applet, a passwd/group with root and
//! nobody, and the usual empty mount points). Built once per test process
//! into `/tmp/hind-e2e/images/busybox-<pid>` (built under a temp name and
//! renamed, so nobody sees half an image); a test that lets a container
//! write to its image builds a private copy with [`build_busybox_rootfs`].
//! Also: packing a dir into a tar with the `tar` command, and a snapshot of
//! a tree to prove it was not modified.

use std::collections::BTreeMap;
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

static BUSYBOX_IMAGE: OnceLock<PathBuf> = OnceLock::new();

/// The static busybox to build images from: `HIND_TEST_BUSYBOX` or
/// `/bin/busybox` (package `busybox-static`).
pub fn busybox_binary() -> PathBuf {
    let p = std::env::var_os("HIND_TEST_BUSYBOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/bin/busybox"));
    assert!(
        p.is_file(),
        "{} not found: apt-get install busybox-static (scripts/test does)",
        p.display()
    );
    p
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// Builds a busybox root fs at `dest` (which must not exist yet).
pub fn build_busybox_rootfs(dest: &Path) -> std::io::Result<()> {
    let bb = busybox_binary();
    let bin = dest.join("bin");
    fs::create_dir_all(&bin)?;
    fs::copy(&bb, bin.join("busybox"))?;
    fs::set_permissions(bin.join("busybox"), fs::Permissions::from_mode(0o755))?;
    let list = Command::new(&bb).arg("--list").output()?;
    if !list.status.success() {
        return Err(std::io::Error::other(format!(
            "{} --list failed",
            bb.display()
        )));
    }
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        symlink("busybox", bin.join(applet))?;
    }
    for (dir, mode) in [
        ("etc", 0o755),
        ("tmp", 0o1777),
        ("root", 0o700),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
    ] {
        let d = dest.join(dir);
        fs::create_dir_all(&d)?;
        fs::set_permissions(&d, fs::Permissions::from_mode(mode))?;
    }
    fs::write(dest.join("etc/passwd"), PASSWD)?;
    fs::write(dest.join("etc/group"), GROUP)?;
    Ok(())
}

/// The shared read-only busybox image of this test process.
pub fn busybox_image() -> &'static Path {
    BUSYBOX_IMAGE.get_or_init(|| {
        let dir = Path::new(crate::E2E_DIR).join("images");
        fs::create_dir_all(&dir).expect("create image dir");
        let pid = std::process::id();
        let tmp = dir.join(format!(".busybox-{pid}.tmp"));
        let dest = dir.join(format!("busybox-{pid}"));
        let _ = crate::clean::remove_tree(&tmp);
        let _ = crate::clean::remove_tree(&dest);
        build_busybox_rootfs(&tmp)
            .unwrap_or_else(|e| panic!("build busybox image in {}: {e}", tmp.display()));
        fs::rename(&tmp, &dest).expect("rename busybox image into place");
        // SAFETY: registers a plain `extern "C" fn()` that only touches
        // paths; atexit(3) has no other precondition.
        unsafe { libc::atexit(remove_busybox_image) };
        dest
    })
}

/// [`busybox_image`] as a `&str`, for argument lists.
pub fn bb() -> &'static str {
    busybox_image().to_str().expect("image path is UTF-8")
}

/// Removes this process's busybox image when the test binary exits (the
/// libtest harness leaves through `exit`), and the shared dirs if empty.
extern "C" fn remove_busybox_image() {
    if let Some(p) = BUSYBOX_IMAGE.get() {
        let _ = crate::clean::remove_tree(p);
        if let Some(images) = p.parent() {
            let _ = fs::remove_dir(images);
            if let Some(e2e) = images.parent() {
                let _ = fs::remove_dir(e2e);
            }
        }
    }
}

/// Packs the contents of `src` into the tar file `dest` (`tar -C src -cf`).
pub fn make_tar(src: &Path, dest: &Path) {
    let st = Command::new("tar")
        .arg("-C")
        .arg(src)
        .arg("-cf")
        .arg(dest)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(
        st.success(),
        "tar -C {} -cf {} failed",
        src.display(),
        dest.display()
    );
}

/// Every entry under `dir` with its type, mode, owner, size, mtime and a
/// hash of its content (or its link target), keyed by relative path.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, p: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let m = fs::symlink_metadata(p).expect("stat snapshot entry");
        let rel = p.strip_prefix(root).unwrap_or(p).to_path_buf();
        let mut h = DefaultHasher::new();
        let kind = if m.file_type().is_symlink() {
            fs::read_link(p).expect("readlink").hash(&mut h);
            "link"
        } else if m.is_dir() {
            "dir"
        } else {
            fs::read(p).expect("read snapshot file").hash(&mut h);
            "file"
        };
        out.insert(
            rel,
            format!(
                "{kind} mode={:o} uid={} gid={} size={} mtime={}.{} hash={:x}",
                m.mode(),
                m.uid(),
                m.gid(),
                m.size(),
                m.mtime(),
                m.mtime_nsec(),
                h.finish()
            ),
        );
        if m.is_dir() {
            let mut kids: Vec<PathBuf> = fs::read_dir(p)
                .expect("read snapshot dir")
                .flatten()
                .map(|e| e.path())
                .collect();
            kids.sort();
            for k in kids {
                walk(root, &k, out);
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}
