//! Leak detection and forced cleanup. After a test, nothing of it may be
//! left on the machine: no mount under its directory, no process naming its
//! state root or sitting in its cgroups, no child cgroup under its cgroup
//! parent. [`scan`] reports what is left; [`force`] removes it anyway so a
//! failing test (or a product bug) does not poison the machine for the next
//! run. [`sweep_stale`] does the same for directories and cgroups of earlier
//! test processes that died before cleaning up.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cgroup;

/// One line of `/proc/self/mountinfo` reduced to its mount point, with the
/// kernel's octal escapes (`\040` for a space ...) undone.
fn unescape(field: &str) -> PathBuf {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(oct, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Mount points in this process's mount namespace at or below `base`.
pub fn mounts_under(base: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .filter(|m| m.starts_with(base))
        .collect()
}

/// True when one of the NUL-separated `cmdline` arguments names `base` or a
/// path below it (also as the value of `--flag=PATH`).
fn cmdline_mentions(cmdline: &[u8], base: &str) -> bool {
    cmdline.split(|&c| c == 0).any(|arg| {
        let arg = String::from_utf8_lossy(arg);
        arg.match_indices(base).any(|(i, _)| {
            let rest = &arg[i + base.len()..];
            rest.is_empty() || rest.starts_with('/')
        })
    })
}

/// Processes (other than this one) whose command line names `base`.
pub fn processes_naming(base: &Path) -> Vec<(i32, String)> {
    let base = base.to_string_lossy().to_string();
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmd) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if cmdline_mentions(&cmd, &base) {
            out.push((pid, describe_pid(pid)));
        }
    }
    out
}

/// `pid (comm) cmdline` for messages.
pub fn describe_pid(pid: i32) -> String {
    let cmd = fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            String::from_utf8_lossy(&c)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    format!("{pid} ({}) {cmd}", comm.trim())
}

/// The cgroup parent's directory in each hierarchy (and directly under
/// `/sys/fs/cgroup`, where a v2 layout would put it), existing or not.
pub fn parent_dirs(cgroup_parent: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = cgroup::hierarchies()
        .iter()
        .map(|h| cgroup::join(h, cgroup_parent))
        .collect();
    let top = cgroup::join(Path::new(cgroup::CGROUP_MOUNT), cgroup_parent);
    if !out.contains(&top) {
        out.push(top);
    }
    out
}

/// What a test left behind, as human-readable lines; empty when clean.
/// Each of `state_dirs` (e.g. `ROOT/containers`) must be empty or absent.
pub fn scan(base: &Path, cgroup_parent: &str, state_dirs: &[PathBuf]) -> Vec<String> {
    let mut leaks = Vec::new();
    for m in mounts_under(base) {
        leaks.push(format!("mount left at {}", m.display()));
    }
    for (_, d) in processes_naming(base) {
        leaks.push(format!("process left naming {}: {d}", base.display()));
    }
    for dir in parent_dirs(cgroup_parent) {
        if !dir.exists() {
            continue;
        }
        let kids = cgroup::children(&dir);
        if !kids.is_empty() {
            leaks.push(format!(
                "cgroup {} left with children {:?}",
                dir.display(),
                kids.iter()
                    .map(|k| k
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .to_string())
                    .collect::<Vec<_>>()
            ));
        }
        for pid in cgroup::subtree_pids(&dir) {
            leaks.push(format!(
                "process left in cgroup {}: {}",
                dir.display(),
                describe_pid(pid)
            ));
        }
    }
    for d in state_dirs {
        if let Ok(rd) = fs::read_dir(d) {
            let names: Vec<String> = rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect();
            if !names.is_empty() {
                leaks.push(format!("entries left in {}: {names:?}", d.display()));
            }
        }
    }
    leaks
}

/// Kills every process found by [`scan`], unmounts everything under `base`,
/// removes the cgroup parent's whole subtree and finally `base` itself (only
/// when nothing is mounted below it any more, and never crossing into
/// another filesystem). Best effort; returns what could not be removed.
pub fn force(base: &Path, cgroup_parent: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for _ in 0..50 {
        let mut pids: Vec<i32> = processes_naming(base).into_iter().map(|p| p.0).collect();
        for dir in parent_dirs(cgroup_parent) {
            pids.extend(cgroup::subtree_pids(&dir));
        }
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(40));
    }
    let mut mounts = mounts_under(base);
    mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    for m in mounts {
        let _ = umount2(&m, MntFlags::MNT_DETACH);
    }
    for dir in parent_dirs(cgroup_parent) {
        for d in cgroup::subtree_deepest_first(&dir) {
            let ok = crate::poll(Duration::from_secs(2), || fs::remove_dir(&d).ok());
            if ok.is_none() && d.exists() {
                problems.push(format!("cannot remove cgroup {}", d.display()));
            }
        }
    }
    if !mounts_under(base).is_empty() {
        problems.push(format!("not removing {}: still has mounts", base.display()));
        return problems;
    }
    if let Err(e) = remove_tree(base) {
        problems.push(format!("cannot remove {}: {e}", base.display()));
    }
    problems
}

/// `rm -rf` that refuses to descend into a directory on another device, so a
/// mount the harness failed to see can never take host files with it.
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    fn walk(p: &Path, dev: u64) -> std::io::Result<()> {
        let m = fs::symlink_metadata(p)?;
        if !m.is_dir() {
            return fs::remove_file(p);
        }
        if m.dev() != dev {
            return Err(std::io::Error::other(format!(
                "{} is on another filesystem",
                p.display()
            )));
        }
        for e in fs::read_dir(p)? {
            walk(&e?.path(), dev)?;
        }
        fs::remove_dir(p)
    }
    walk(path, meta.dev())
}

fn pid_alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The pid embedded in a name like `<test>-<pid>-<n>` or `busybox-<pid>`.
fn embedded_pid(name: &str, with_counter: bool) -> Option<i32> {
    let mut parts = name.rsplit('-');
    if with_counter {
        parts.next()?.parse::<u64>().ok()?;
    }
    parts.next()?.parse().ok()
}

/// Removes test dirs under [`crate::E2E_DIR`] and `hind-e2e-<pid>-<n>`
/// cgroups whose test process is gone.
pub fn sweep_stale() {
    let e2e = Path::new(crate::E2E_DIR);
    if let Ok(rd) = fs::read_dir(e2e) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name == "images" {
                continue;
            }
            if let Some(pid) = embedded_pid(&name, true) {
                if !pid_alive(pid) {
                    let cg = format!("/hind-e2e-{pid}-{}", name.rsplit('-').next().unwrap_or(""));
                    force(&e.path(), &cg);
                }
            }
        }
    }
    if let Ok(rd) = fs::read_dir(e2e.join("images")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let name = name.trim_start_matches('.').trim_end_matches(".tmp");
            if let Some(pid) = embedded_pid(name, false) {
                if !pid_alive(pid) {
                    let _ = remove_tree(&e.path());
                }
            }
        }
    }
    for h in cgroup::hierarchies() {
        for c in cgroup::children(&h) {
            let name = c
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let Some(rest) = name.strip_prefix("hind-e2e-") else {
                continue;
            };
            if let Some(pid) = embedded_pid(rest, true) {
                if !pid_alive(pid) {
                    for pid in cgroup::subtree_pids(&c) {
                        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                    for d in cgroup::subtree_deepest_first(&c) {
                        let _ = crate::poll(Duration::from_secs(1), || fs::remove_dir(&d).ok());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(unescape("/a\\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape("/plain"), PathBuf::from("/plain"));
    }

    #[test]
    fn cmdline_match_is_per_path() {
        let base = "/tmp/hind-e2e/x-1-1";
        assert!(cmdline_mentions(
            b"hind\0--root\0/tmp/hind-e2e/x-1-1/root\0",
            base
        ));
        assert!(cmdline_mentions(
            b"hind\0--root=/tmp/hind-e2e/x-1-1\0",
            base
        ));
        assert!(!cmdline_mentions(
            b"hind\0--root\0/tmp/hind-e2e/x-1-10/root\0",
            base
        ));
    }

    #[test]
    fn pids_in_names() {
        assert_eq!(embedded_pid("pid1-123-4", true), Some(123));
        assert_eq!(embedded_pid("busybox-77", false), Some(77));
        assert_eq!(embedded_pid("junk", true), None);
    }
}
