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

/// The dirs of cgroup `path` that exist, one per hierarchy: what a process
/// joining the container writes itself into.
pub fn dirs(path: &Path) -> Vec<PathBuf> {
    hierarchy_roots()
        .into_iter()
        .map(|r| r.join(relative(path)))
        .filter(|d| d.is_dir())
        .collect()
}

fn relative(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// Removes the parent of `path` in every hierarchy if it became empty.
/// rmdir fails (EBUSY/ENOTEMPTY) while other containers use it: that is the
/// "still in use" answer, not an error. A parent kept only by orphans
/// (see [`orphans`]) loses them first, so the last container to go takes
/// every trace of hind with it.
pub fn prune_parent(path: &Path) {
    let Some(parent) = path.parent() else { return };
    let rel = relative(parent);
    if rel.as_os_str().is_empty() {
        return;
    }
    let roots = hierarchy_roots();
    let rmdir_all = |rel: &Path| {
        for r in &roots {
            let _ = fs::remove_dir(r.join(rel));
        }
    };
    rmdir_all(rel);
    if !roots.iter().any(|r| r.join(rel).is_dir()) {
        return;
    }
    let orphans = orphans(&roots, rel);
    for id in &orphans {
        rmdir_all(&rel.join(id));
    }
    if !orphans.is_empty() {
        rmdir_all(rel);
    }
}

/// The container cgroups under `parent` that nobody will ever remove: no
/// process in them in any hierarchy and no hind-shim alive for their id.
/// A shim killed with SIGKILL takes its container with it (PDEATHSIG) and
/// leaves the cgroup to whoever next loads the container's record; when
/// the record is gone too (the state root was deleted), nobody would. A
/// live shim covers the moments its cgroup is empty on purpose: being
/// made, or waiting to restart. Only names that are container ids (64 hex
/// digits) are considered, so a shared parent's other cgroups are safe.
fn orphans(roots: &[PathBuf], parent: &Path) -> Vec<String> {
    let mut ids: Vec<String> = roots
        .iter()
        .filter_map(|r| fs::read_dir(r.join(parent)).ok())
        .flat_map(|d| d.flatten())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    ids.sort();
    ids.dedup();
    ids.retain(|id| {
        roots.iter().all(|r| {
            fs::read_to_string(r.join(parent).join(id).join("cgroup.procs"))
                .map_or(true, |p| p.trim().is_empty())
        })
    });
    if ids.is_empty() {
        return ids;
    }
    let shims = shim_ids();
    ids.retain(|id| !shims.contains(id));
    ids
}

/// The container ids of the running hind-shim processes (`--id ID` in
/// their command line).
fn shim_ids() -> Vec<String> {
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| fs::read(e.path().join("cmdline")).ok())
        .filter_map(|cmd| {
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            if !args.first()?.ends_with(b"hind-shim") {
                return None;
            }
            let i = args.iter().position(|a| *a == b"--id")?;
            String::from_utf8(args.get(i + 1)?.to_vec()).ok()
        })
        .collect()
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
