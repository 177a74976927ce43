//! Removing a container's cgroup directly through the cgroup filesystem,
//! for the cases where its shim is gone (killed, or the machine rebooted
//! with state on disk) and for pruning the shared parent. The shim creates
//! and configures cgroups with libcgroups; this is only the teardown.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Whether `/sys/fs/cgroup` is a cgroup2 mount (a unified-only host).
pub fn unified() -> bool {
    Path::new(CGROUP_ROOT).join("cgroup.controllers").exists()
}

/// Every hierarchy root the cgroup `rel` may exist under.
pub fn hierarchy_roots() -> Vec<PathBuf> {
    if unified() {
        return vec![PathBuf::from(CGROUP_ROOT)];
    }
    fs::read_dir(CGROUP_ROOT)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn relative(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// Removes the parent of `path` in every hierarchy if it became empty.
/// rmdir fails (EBUSY/ENOTEMPTY) while other containers use it: that is the
/// "still in use" answer, not an error.
pub fn prune_parent(path: &Path) {
    let Some(parent) = path.parent() else { return };
    let rel = relative(parent);
    if rel.as_os_str().is_empty() {
        return;
    }
    for r in hierarchy_roots() {
        let _ = fs::remove_dir(r.join(rel));
    }
}

/// Kills whatever is left in cgroup `path` and removes it in every
/// hierarchy, then prunes its parent. Best effort, bounded in time.
pub fn remove(path: &Path) {
    let rel = relative(path);
    if rel.as_os_str().is_empty() {
        return;
    }
    for r in hierarchy_roots() {
        let dir = r.join(rel);
        if !dir.is_dir() {
            continue;
        }
        for attempt in 0..20 {
            if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            if fs::remove_dir(&dir).is_ok() || !dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10 * (attempt + 1)));
        }
    }
    prune_parent(path);
}
