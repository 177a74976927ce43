//! The state root's layout. Everything hind keeps is under one root
//! (`--root`/`HIND_ROOT`, default `/var/lib/hind`); run-time files (shim
//! sockets) go to a run dir that is `/run/hind` for the default root and
//! `<root>/run` otherwise, so two roots never share sockets.

use std::path::{Path, PathBuf};

pub const DEFAULT_ROOT: &str = "/var/lib/hind";
pub const DEFAULT_RUN: &str = "/run/hind";

/// Files inside one container's directory (which is also its OCI bundle).
pub const CONFIG_JSON: &str = "config.json";
pub const RECORD: &str = "record.json";
pub const LOCK: &str = "lock";
pub const LOG: &str = "container.log";
pub const ROOTFS: &str = "rootfs";
pub const UPPER: &str = "upper";
pub const WORK: &str = "work";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub root: PathBuf,
    pub run: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Layout {
        let run = if root == Path::new(DEFAULT_ROOT) {
            PathBuf::from(DEFAULT_RUN)
        } else {
            root.join("run")
        };
        Layout {
            root: root.to_path_buf(),
            run,
        }
    }

    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }

    pub fn container(&self, id: &str) -> PathBuf {
        self.containers().join(id)
    }

    /// `names/<name>` holds the id owning that name; created with O_EXCL so
    /// two CLIs can never both take one name.
    pub fn names(&self) -> PathBuf {
        self.root.join("names")
    }

    pub fn images(&self) -> PathBuf {
        self.root.join("images")
    }

    /// Compiled seccomp filters by content hash (`<sha256>.bpf`), shared by
    /// every container with the same profile.
    pub fn seccomp_cache(&self) -> PathBuf {
        self.root.join("cache").join("seccomp")
    }

    /// Scratch space on the same filesystem as the store, for atomic renames.
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Volumes: `volumes/<name>/{_data/,volume.json}`, created and removed
    /// under `volumes/lock`.
    pub fn volumes(&self) -> PathBuf {
        self.root.join("volumes")
    }

    /// Networks: one `<name>.json` each (subnet, bridge, leases), changed
    /// under `networks/lock`.
    pub fn networks(&self) -> PathBuf {
        self.root.join("networks")
    }

    /// The container's network namespace, bind-mounted on a file (as
    /// `ip netns` does under /run/netns). In the run dir because a network
    /// namespace, like /run, does not survive a reboot.
    pub fn netns(&self, id: &str) -> PathBuf {
        self.run.join("netns").join(id)
    }

    /// The shim's control socket. Its path can exceed `sun_path` (108 bytes)
    /// under a long root, so peers reach it through `/proc/self/fd/N/NAME`
    /// with `N` an open fd of the run dir; see [`socket_name`].
    pub fn socket(&self, id: &str) -> PathBuf {
        self.run.join(socket_name(id))
    }
}

/// Rotated log number `n` (1 is the newest): `container.log.N`.
pub fn rotated_log(log: &Path, n: u32) -> PathBuf {
    let mut s = log.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// `name` in the directory open as `dir`, as a unix socket address:
/// `/proc/self/fd/N/NAME` stays short (`sun_path` holds 108 bytes)
/// whatever the directory's own path.
pub fn via_dir_fd(dir: &impl std::os::fd::AsRawFd, name: &str) -> String {
    format!("/proc/self/fd/{}/{name}", dir.as_raw_fd())
}

pub fn socket_name(id: &str) -> String {
    format!("{id}.sock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dir_follows_root() {
        assert_eq!(
            Layout::new(Path::new(DEFAULT_ROOT)).run,
            PathBuf::from(DEFAULT_RUN)
        );
        assert_eq!(
            Layout::new(Path::new("/tmp/x")).run,
            PathBuf::from("/tmp/x/run")
        );
    }
}
