//! Host-side view of the cgroup filesystem: which hierarchies exist, where a
//! controller's files are, and walking a subtree for its cgroups and pids.
//! Works on the v1 / hybrid layout (one hierarchy per controller under
//! `/sys/fs/cgroup/<ctrl>`) and on a pure v2 host (`/sys/fs/cgroup`).

use std::fs;
use std::path::{Path, PathBuf};

pub const CGROUP_MOUNT: &str = "/sys/fs/cgroup";

/// True when `/sys/fs/cgroup` itself is the unified (v2) hierarchy.
pub fn v2_only() -> bool {
    Path::new(CGROUP_MOUNT).join("cgroup.controllers").exists()
}

/// Every mounted hierarchy: `/sys/fs/cgroup` on v2, each directory under it
/// that is a cgroup root (has `cgroup.procs`) on v1 or hybrid, including
/// named ones (`systemd`) and the hybrid `unified` one.
pub fn hierarchies() -> Vec<PathBuf> {
    if v2_only() {
        return vec![PathBuf::from(CGROUP_MOUNT)];
    }
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(CGROUP_MOUNT) {
        for e in rd.flatten() {
            let p = e.path();
            // Co-mounted controllers show up as one dir plus symlinks
            // (cpu -> cpu,cpuacct); follow them but keep each root once.
            if p.join("cgroup.procs").exists() {
                let real = fs::canonicalize(&p).unwrap_or(p);
                if !out.contains(&real) {
                    out.push(real);
                }
            }
        }
    }
    out.sort();
    out
}

/// Directory of controller `ctrl` (`memory`, `pids`, `cpu`, `cpuset`): the
/// v1 hierarchy that carries it, or the v2 root.
pub fn controller_root(ctrl: &str) -> PathBuf {
    if v2_only() {
        PathBuf::from(CGROUP_MOUNT)
    } else {
        PathBuf::from(CGROUP_MOUNT).join(ctrl)
    }
}

/// `<hierarchy>/<path>` for a cgroup path like `/hind-e2e-1-2`.
pub fn join(hierarchy: &Path, cgroup_path: &str) -> PathBuf {
    hierarchy.join(cgroup_path.trim_start_matches('/'))
}

/// Child cgroups (directories) directly under `dir`.
pub fn children(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// `dir` and every cgroup below it, deepest first (the order to rmdir in).
pub fn subtree_deepest_first(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for c in children(d) {
            walk(&c, out);
        }
        out.push(d.to_path_buf());
    }
    if dir.is_dir() {
        walk(dir, &mut out);
    }
    out
}

/// Pids in `cgroup.procs` of `dir` and of every cgroup below it.
pub fn subtree_pids(dir: &Path) -> Vec<i32> {
    let mut pids = Vec::new();
    for d in subtree_deepest_first(dir) {
        if let Ok(s) = fs::read_to_string(d.join("cgroup.procs")) {
            pids.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Reads a cgroup file and trims it.
pub fn read(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The pid (host view) of the process in `dir`'s `cgroup.procs` that is
/// PID 1 of its own pid namespace, i.e. the container's init.
pub fn container_init(dir: &Path) -> Option<i32> {
    subtree_pids(dir).into_iter().find(|pid| {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .map(|ns| {
                let ids: Vec<&str> = ns.split_whitespace().collect();
                ids.len() > 1 && ids.last() == Some(&"1")
            })
            .unwrap_or(false)
    })
}
