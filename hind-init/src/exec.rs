//! The setns helper behind `hind exec`. Started by the shim as a fresh
//! process (so it is single-threaded, as setns(2) of a mount or user
//! namespace requires), it joins the container's cgroup and namespaces,
//! then forks the new process inside the container's pid namespace with
//! CLONE_PARENT, so that the shim, not this helper, is its parent and gets
//! its exit status. The helper itself exits right after the fork, once it
//! has reported the new process's pid; the process waits for that report
//! before it sends anything of its own.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sched::{setns, CloneFlags};
use protocol::frame;
use protocol::init::{ExecConfig, FromInit, InitConfig, ToInit};

use crate::process;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("open namespace {0}")]
    OpenNs(PathBuf, #[source] io::Error),
    #[error("unknown namespace {0:?}")]
    UnknownNs(String),
    #[error("join namespace {0}")]
    Setns(String, #[source] nix::Error),
    #[error("join cgroup {0}")]
    Cgroup(PathBuf, #[source] io::Error),
    #[error("create the pipe that orders the exec helper's report")]
    GoPipe(#[source] nix::Error),
    #[error("fork into the container")]
    Fork(#[source] io::Error),
    #[error("wait for the exec helper to report this process")]
    WaitGo(#[source] io::Error),
    #[error("user {0:?}")]
    User(String, #[source] protocol::user::Error),
    #[error("report to the shim")]
    Report(#[source] Box<frame::Error>),
    #[error("expected Start from the shim")]
    NoStart,
    #[error(transparent)]
    Process(#[from] process::Error),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Process(e) => e.exit_code(),
            _ => protocol::EXIT_ENGINE,
        }
    }
}

fn flag(name: &str) -> Option<CloneFlags> {
    Some(match name {
        "ipc" => CloneFlags::CLONE_NEWIPC,
        "uts" => CloneFlags::CLONE_NEWUTS,
        "net" => CloneFlags::CLONE_NEWNET,
        "pid" => CloneFlags::CLONE_NEWPID,
        "cgroup" => CloneFlags::CLONE_NEWCGROUP,
        "mnt" => CloneFlags::CLONE_NEWNS,
        "user" => CloneFlags::CLONE_NEWUSER,
        _ => return None,
    })
}

/// Joins the container and forks the process; returns only in the child
/// (the helper exits in here after reporting the child's pid).
fn enter(sock: &mut UnixStream, cfg: &ExecConfig) -> Result<(), Error> {
    // Every namespace fd is opened before the first setns: once the mount
    // namespace changes, /proc/PID is no longer the host's.
    let mut nss = Vec::new();
    for name in &cfg.namespaces {
        let f = flag(name).ok_or_else(|| Error::UnknownNs(name.clone()))?;
        let p = PathBuf::from(format!("/proc/{}/ns/{name}", cfg.init_pid));
        let fd = File::open(&p).map_err(|e| Error::OpenNs(p.clone(), e))?;
        nss.push((name, f, fd));
    }
    // The cgroup first, while the host's /sys/fs/cgroup is still visible.
    // A v1 `tasks` file moves only the writer ("0"): this process has one
    // thread, and unlike cgroup.procs it skips the global threadgroup lock.
    for dir in &cfg.cgroups {
        let tasks = dir.join("tasks");
        let file = if tasks.exists() {
            tasks
        } else {
            dir.join("cgroup.procs")
        };
        fs::write(&file, "0").map_err(|e| Error::Cgroup(file.clone(), e))?;
    }
    for (name, f, fd) in &nss {
        setns(fd.as_fd(), *f).map_err(|e| Error::Setns(name.to_string(), e))?;
    }
    drop(nss);

    // Helper and child share the socket to the shim, and the shim needs
    // ExecPid before anything the child sends: the pid makes the child one
    // of its processes, and a child's Created that overtook it (the helper
    // descheduled right after the fork, as under load) left the shim
    // without one. So the child holds back until the helper, once its
    // report is written, sends one byte down this pipe. Close-on-exec: the
    // user's command never holds either end.
    let (go_rx, go_tx) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(Error::GoPipe)?;
    // SAFETY: the helper is single-threaded (a fresh hind-init that has
    // spawned nothing), and the child goes on as an ordinary process up to
    // its execve, which is what fork allows for a single-threaded parent.
    // CLONE_PARENT makes the shim, not this helper, the child's parent.
    let pid = unsafe { crate::sys::clone_fork(libc::CLONE_PARENT) }.map_err(Error::Fork)?;
    if pid > 0 {
        drop(go_rx);
        if frame::write(sock, &FromInit::ExecPid(pid)).is_err() {
            // No go: the child sees EOF and leaves too, and the shim
            // reports this exit status.
            std::process::exit(protocol::EXIT_ENGINE);
        }
        // A child already gone gives EPIPE (SIGPIPE is ignored, as in any
        // Rust program); the shim learns of that from the socket.
        let _ = File::from(go_tx).write_all(&[1]);
        std::process::exit(0);
    }
    drop(go_tx);
    let mut go = File::from(go_rx);
    loop {
        match go.read(&mut [0u8; 1]) {
            Ok(1) => return Ok(()),
            // The helper died before its report. Leave quietly: the shim
            // sees the socket close and reports how the helper ended.
            Ok(_) => std::process::exit(protocol::EXIT_ENGINE),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::WaitGo(e)),
        }
    }
}

pub fn run(sock: &mut UnixStream, cfg: ExecConfig) -> Result<std::convert::Infallible, Error> {
    enter(sock, &cfg)?;
    // In the child, inside the container's namespaces: setns(2) of the
    // mount namespace already moved root and cwd to the container's root,
    // so no host directory is reachable from here (CVE-2024-21626 class).
    let mut process = cfg.process.clone();
    if let Some(u) = &cfg.user {
        // Past setns of the mount namespace, "/" is the container's root.
        let user = protocol::user::resolve(std::path::Path::new("/"), u)
            .map_err(|e| Error::User(u.clone(), e))?;
        process.uid = user.uid;
        process.gid = user.gid;
        // The user's groups in the container's /etc/group, then the
        // container's --group-add ones (what the shim left here).
        let mut gids = user.additional_gids;
        for g in process.additional_gids.drain(..) {
            if !gids.contains(&g) {
                gids.push(g);
            }
        }
        process.additional_gids = gids;
    }
    let init = InitConfig {
        process,
        ..InitConfig::default()
    };
    let prepared = process::prepare(&init, sock)?;
    frame::write(sock, &FromInit::Created).map_err(|e| Error::Report(Box::new(e)))?;
    match frame::read(sock) {
        Ok(ToInit::Start) => {}
        _ => return Err(Error::NoStart),
    }
    Ok(process::exec(prepared)?)
}
