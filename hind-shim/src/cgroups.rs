//! The container's cgroup: created when its init exists, limits applied
//! before init does anything, removed (with its now-empty parent) once the
//! container is gone.
//!
//! The work is done by youki's `libcgroups`, chosen over kata's
//! `cgroups-rs` because it tells legacy, hybrid and unified hosts apart
//! from the mount table and drives a hybrid host (v1 controllers plus a
//! controller-less cgroup2 mount, as on this project's CI) through its v1
//! hierarchies, skips v1 controllers that are not mounted instead of
//! failing, and applies an OCI `linux.resources` block as it is, the same
//! type a bundle carries. What it lacks, OOM-kill detection, pruning the
//! parent and the v2 device cgroup (a BPF program, [`crate::devices_bpf`]),
//! is here. On v1 its `devices` controller applies `resources.devices`.

use std::fs;
use std::path::{Path, PathBuf};

use libcgroups::common::{
    create_cgroup_manager, get_cgroup_setup, AnyCgroupManager, CgroupConfig, CgroupManager,
    CgroupSetup, ControllerOpt, FreezerState, DEFAULT_CGROUP_ROOT,
};
use libcgroups::v1::util::{get_subsystem_mount_point, list_supported_mount_points};
use libcgroups::v1::ControllerType;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("detect the cgroup layout of this host: {0}")]
    Setup(String),
    #[error("create cgroup {0}: {1}")]
    Create(PathBuf, String),
    #[error("add pid {1} to cgroup {0}: {2}")]
    AddTask(PathBuf, i32, String),
    #[error("apply resource limits to cgroup {0}: {1}")]
    Apply(PathBuf, String),
    #[error("remove cgroup {0}: {1}")]
    Remove(PathBuf, String),
    #[error("freeze or thaw cgroup {0}: {1}")]
    Freeze(PathBuf, String),
    #[error("list the processes of cgroup {0}: {1}")]
    Pids(PathBuf, String),
    #[error("restrict the devices of cgroup {0}")]
    Devices(PathBuf, #[source] crate::devices_bpf::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

pub struct Cgroup {
    path: PathBuf,
    unified: bool,
    manager: AnyCgroupManager,
    /// Remove the parent too once it is empty (see [`Cgroup::remove`]).
    prune_parent: bool,
}

/// The whole source chain of a libcgroups error on one line (its error
/// types nest several levels deep).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

impl Cgroup {
    /// Prepares the manager for `path` (relative to each hierarchy's root).
    pub fn new(path: &Path, id: &str) -> Result<Cgroup> {
        let unified = match get_cgroup_setup().map_err(|e| Error::Setup(chain(&e)))? {
            CgroupSetup::Unified => true,
            CgroupSetup::Legacy | CgroupSetup::Hybrid => false,
        };
        let manager = create_cgroup_manager(CgroupConfig {
            cgroup_path: path.to_path_buf(),
            systemd_cgroup: false,
            container_name: id.to_string(),
        })
        .map_err(|e| Error::Create(path.to_path_buf(), chain(&e)))?;
        Ok(Cgroup {
            path: path.to_path_buf(),
            unified,
            manager,
            prune_parent: true,
        })
    }

    /// Leaves the parent alone on removal: a cgroup path the caller chose
    /// (`hind-runc`) may sit under a parent that is not hind's to prune.
    pub fn keep_parent(mut self) -> Cgroup {
        self.prune_parent = false;
        self
    }

    /// Moves `pid` in (creating the cgroup) and applies `resources`. On
    /// failure nothing of the cgroup is left.
    pub fn enter(&self, pid: i32, resources: &LinuxResources) -> Result<()> {
        let r = self.enter_inner(pid, resources);
        if r.is_err() {
            let _ = self.remove();
        }
        r
    }

    fn enter_inner(&self, pid: i32, resources: &LinuxResources) -> Result<()> {
        // Another container of the same parent may be pruning that parent
        // right now (see `remove`); creating again after it is gone works.
        let mut tries = 0;
        loop {
            match self.manager.add_task(Pid::from_raw(pid)) {
                Ok(()) => break,
                Err(_) if tries < 3 => tries += 1,
                Err(e) => return Err(Error::AddTask(self.path.clone(), pid, chain(&e))),
            }
        }
        self.apply(resources)?;
        if self.unified {
            // v2 has no devices files: the rules become a BPF program on
            // the cgroup, attached before init (waiting for its config)
            // can touch a device. It goes with the cgroup.
            let dir = Path::new(DEFAULT_CGROUP_ROOT)
                .join(self.path.strip_prefix("/").unwrap_or(&self.path));
            let rules = resources.devices().clone().unwrap_or_default();
            crate::devices_bpf::attach(&dir, &rules).map_err(|e| Error::Devices(dir, e))?;
        }
        Ok(())
    }

    /// On v1 (legacy or hybrid) hosts: creates the cgroup in every
    /// hierarchy and applies `resources` before any process is in it, and
    /// returns the `tasks` files through which the container's init joins
    /// it itself (see hind-init). `None` on a unified host, where the shim
    /// moves init in with [`Cgroup::enter`].
    pub fn prepare(&self, resources: &LinuxResources) -> Result<Option<Vec<PathBuf>>> {
        if self.unified {
            return Ok(None);
        }
        let r = self.prepare_v1(resources);
        if r.is_err() {
            let _ = self.remove();
        }
        r.map(Some)
    }

    fn prepare_v1(&self, resources: &LinuxResources) -> Result<Vec<PathBuf>> {
        let create = |e: std::io::Error, p: &Path| Error::Create(p.to_path_buf(), e.to_string());
        // The hierarchies of the controllers libcgroups manages (and will
        // remove), not named ones such as name=systemd.
        let mut mounts: Vec<PathBuf> = list_supported_mount_points()
            .map_err(|e| Error::Create(self.path.clone(), chain(&e)))?
            .into_values()
            .collect();
        mounts.sort();
        mounts.dedup();
        let rel = self.path.strip_prefix("/").unwrap_or(&self.path);
        let mut tasks = Vec::with_capacity(mounts.len());
        for m in mounts {
            let dir = m.join(rel);
            // A sibling's shim may be pruning the shared parent right now;
            // creating again after it is gone works.
            let mut tries = 0;
            while let Err(e) = fs::create_dir_all(&dir) {
                tries += 1;
                if tries > 3 {
                    return Err(create(e, &dir));
                }
            }
            if m.join("cpuset.cpus").exists() {
                // A new v1 cpuset starts empty and takes no task until its
                // cpus and mems are set: inherit them level by level.
                let mut cur = m.clone();
                for part in rel.components() {
                    let parent = cur.clone();
                    cur.push(part);
                    for f in ["cpuset.cpus", "cpuset.mems"] {
                        let own = fs::read_to_string(cur.join(f)).unwrap_or_default();
                        if own.trim().is_empty() {
                            let v = fs::read_to_string(parent.join(f))
                                .map_err(|e| create(e, &parent.join(f)))?;
                            fs::write(cur.join(f), v.trim())
                                .map_err(|e| create(e, &cur.join(f)))?;
                        }
                    }
                }
            }
            tasks.push(dir.join("tasks"));
        }
        self.apply(resources)?;
        Ok(tasks)
    }

    /// Whether the kernel's OOM killer has killed a process of this cgroup.
    pub fn oom_killed(&self) -> bool {
        let file = if self.unified {
            Path::new(DEFAULT_CGROUP_ROOT)
                .join(self.path.strip_prefix("/").unwrap_or(&self.path))
                .join("memory.events")
        } else {
            match get_subsystem_mount_point(&ControllerType::Memory) {
                Ok(m) => m
                    .join(self.path.strip_prefix("/").unwrap_or(&self.path))
                    .join("memory.oom_control"),
                Err(_) => return false,
            }
        };
        fs::read_to_string(file)
            .map(|s| {
                s.lines().any(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|n| n.trim().parse::<u64>().ok())
                        .is_some_and(|n| n > 0)
                })
            })
            .unwrap_or(false)
    }

    /// Applies `resources` (at creation, and to a cgroup that has
    /// processes already: `hind-runc update`).
    pub fn apply(&self, resources: &LinuxResources) -> Result<()> {
        let opt = ControllerOpt {
            resources,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        };
        self.manager
            .apply(&opt)
            .map_err(|e| Error::Apply(self.path.clone(), chain(&e)))
    }

    /// Freezes (`true`) or thaws every process of the cgroup.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        let state = if frozen {
            FreezerState::Frozen
        } else {
            FreezerState::Thawed
        };
        self.manager
            .freeze(state)
            .map_err(|e| Error::Freeze(self.path.clone(), chain(&e)))
    }

    /// Whether the cgroup is frozen (v1 freezer.state, v2 cgroup.freeze).
    pub fn frozen(&self) -> bool {
        let rel = self.path.strip_prefix("/").unwrap_or(&self.path);
        if self.unified {
            let f = Path::new(DEFAULT_CGROUP_ROOT)
                .join(rel)
                .join("cgroup.freeze");
            return fs::read_to_string(f).is_ok_and(|s| s.trim() == "1");
        }
        get_subsystem_mount_point(&ControllerType::Freezer)
            .ok()
            .and_then(|m| fs::read_to_string(m.join(rel).join("freezer.state")).ok())
            .is_some_and(|s| s.trim() != "THAWED")
    }

    /// Every process in the cgroup.
    pub fn pids(&self) -> Result<Vec<Pid>> {
        self.manager
            .get_all_pids()
            .map_err(|e| Error::Pids(self.path.clone(), chain(&e)))
    }

    /// Kills what is left in the cgroup, removes it, then its parent when
    /// that became empty (so the host keeps no trace of hind once its last
    /// container is gone; a concurrent create handles the race by retrying).
    pub fn remove(&self) -> Result<()> {
        self.manager
            .remove()
            .map_err(|e| Error::Remove(self.path.clone(), chain(&e)))?;
        if self.prune_parent {
            protocol::cgroupfs::prune_parent(&self.path);
        }
        Ok(())
    }
}
