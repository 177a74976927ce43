//! The container process's side of init: its terminal, working dir,
//! identity and limits, finding the command, and the final execve.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{
    access, chdir, dup2, execve, setgroups, setresgid, setresuid, setsid, AccessFlags, Gid, Uid,
};
use protocol::frame;
use protocol::init::{FromInit, InitConfig, SeccompFilter};
use protocol::{EXIT_CANNOT_EXEC, EXIT_ENGINE, EXIT_NOT_FOUND};
use sendfd::SendWithFd;

use crate::sys;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("allocate the container's pty")]
    Pty(#[source] nix::Error),
    #[error("send the pty master to the shim")]
    SendPty(#[source] io::Error),
    #[error("set up the terminal {0}")]
    Terminal(PathBuf, #[source] io::Error),
    #[error("start a new session")]
    Setsid(#[source] nix::Error),
    #[error("report to the shim")]
    Report(#[source] Box<frame::Error>),
    #[error("create working directory {0}")]
    MakeCwd(PathBuf, #[source] io::Error),
    #[error("chdir to working directory {0}")]
    Cwd(PathBuf, #[source] nix::Error),
    #[error("working directory {0} is outside the container's root")]
    CwdOutside(PathBuf),
    #[error("check working directory {0}")]
    CheckCwd(PathBuf, #[source] nix::Error),
    #[error("set groups {0:?}")]
    Groups(Vec<u32>, #[source] nix::Error),
    #[error("set gid {0}")]
    Gid(u32, #[source] nix::Error),
    #[error("set uid {0}")]
    Uid(u32, #[source] nix::Error),
    #[error("capabilities: {0}")]
    Caps(&'static str, #[source] io::Error),
    #[error("set rlimit {0}")]
    Rlimit(u32, #[source] io::Error),
    #[error("write oom_score_adj")]
    OomScore(#[source] io::Error),
    #[error("set no_new_privs")]
    NoNewPrivs(#[source] nix::Error),
    #[error("load the seccomp filter")]
    Seccomp(#[source] io::Error),
    #[error("set {0} {1:?}")]
    Label(&'static str, String, #[source] io::Error),
    #[error("mark fds close-on-exec")]
    Cloexec(#[source] io::Error),
    #[error("no command given")]
    NoCommand,
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotFound(String),
    #[error("exec: {0:?}: permission denied")]
    NotExecutable(String),
    #[error("argument or environment holds a NUL byte")]
    Nul,
    #[error("exec {0}")]
    Exec(PathBuf, #[source] nix::Error),
}

impl Error {
    /// Docker's convention: 127 when the command is missing, 126 when it
    /// exists but cannot run, 125 for everything hind itself failed at.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::NotFound(_) => EXIT_NOT_FOUND,
            Error::Exec(_, nix::Error::ENOENT) => EXIT_NOT_FOUND,
            Error::NotExecutable(_) | Error::Exec(..) => EXIT_CANNOT_EXEC,
            _ => EXIT_ENGINE,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// What `exec` needs, resolved while init still may fail with a message.
pub struct Prepared {
    path: CString,
    display: PathBuf,
    args: Vec<CString>,
    env: Vec<CString>,
    /// A seccomp filter left for [`exec`] to load (with no_new_privs).
    seccomp: Option<SeccompFilter>,
    kill_with_parent: bool,
    preserve_fds: u32,
    apparmor_profile: Option<String>,
    selinux_label: Option<String>,
}

pub fn prepare(cfg: &InitConfig, sock: &UnixStream) -> Result<Prepared> {
    let p = &cfg.process;
    if p.terminal {
        setup_pty(p.console_size, sock)?;
    } else {
        // Its own session: the container must not share the shim's.
        setsid().map_err(Error::Setsid)?;
    }
    for r in &p.rlimits {
        sys::setrlimit(r.resource, r.soft, r.hard).map_err(|e| Error::Rlimit(r.resource, e))?;
    }
    if let Some(adj) = p.oom_score_adj {
        fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(Error::OomScore)?;
    }
    // Docker creates a missing working dir, as root, before switching user.
    if !p.cwd.as_os_str().is_empty() {
        fs::create_dir_all(&p.cwd).map_err(|e| Error::MakeCwd(p.cwd.clone(), e))?;
    }
    // The bounding set limits what any later exec can gain, root's
    // included; it can be cut only while CAP_SETPCAP is still effective,
    // so before the identity change.
    if let Some(c) = &p.capabilities {
        for cap in 0..=protocol::caps::last_cap() {
            if !c.bounding.contains(&cap) {
                sys::drop_bounding(cap).map_err(|e| Error::Caps("drop from bounding set", e))?;
            }
        }
        // Keep the permitted set across a switch away from uid 0; the
        // capset below then sets exactly what the spec asks for.
        nix::sys::prctl::set_keepcaps(true).map_err(|e| Error::Caps("keep caps", e.into()))?;
    }

    // Seccomp goes on as late as possible, so that it vets the container's
    // command and not hind's own setup. seccomp(2) takes a filter from a
    // process that either has no_new_privs or holds CAP_SYS_ADMIN. With
    // no_new_privs the filter is loaded by `exec`, right before execve.
    // Without it, init must still hold CAP_SYS_ADMIN, which the identity
    // change below gives up: so the filter goes on here, and the rest of
    // init (setgroups, setresgid, setresuid, capset, prctl, chdir, the
    // Created/Start exchange, rt_sigaction, close_range, execve) runs under
    // it, which the default profile allows, as runc does with Docker's.
    let mut late_seccomp = None;
    if let Some(f) = &p.seccomp {
        if p.no_new_privileges {
            late_seccomp = Some(f.clone());
        } else {
            sys::set_seccomp_filter(&f.program, f.flags).map_err(Error::Seccomp)?;
        }
    }

    let gids: Vec<Gid> = p
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    setgroups(&gids).map_err(|e| Error::Groups(p.additional_gids.clone(), e))?;
    let gid = Gid::from_raw(p.gid);
    setresgid(gid, gid, gid).map_err(|e| Error::Gid(p.gid, e))?;
    let uid = Uid::from_raw(p.uid);
    setresuid(uid, uid, uid).map_err(|e| Error::Uid(p.uid, e))?;
    if let Some(c) = &p.capabilities {
        // What the host never gave hind (its own bounding set) cannot be
        // had; --privileged means "everything there is".
        let have = |set: &[u8]| -> Vec<u8> {
            set.iter()
                .copied()
                .filter(|c| sys::in_bounding(*c))
                .collect()
        };
        let (eff, prm, inh) = (have(&c.effective), have(&c.permitted), have(&c.inheritable));
        sys::capset(&eff, &prm, &inh).map_err(|e| Error::Caps("set capabilities", e))?;
        // The kernel raises an ambient capability only if it is both
        // permitted and inheritable (capabilities(7)); a spec listing one
        // that is not (runc's template does) gets the rest, as with runc.
        for cap in c
            .ambient
            .iter()
            .filter(|c| prm.contains(c) && inh.contains(c))
        {
            sys::raise_ambient(*cap).map_err(|e| Error::Caps("raise ambient capability", e))?;
        }
        let _ = nix::sys::prctl::set_keepcaps(false);
    }
    if let Some(m) = p.umask {
        umask(Mode::from_bits_truncate(m));
    }
    if !p.cwd.as_os_str().is_empty() {
        chdir(&p.cwd).map_err(|e| Error::Cwd(p.cwd.clone(), e))?;
    }
    // The working dir must be inside the container's root. A dir reached
    // through a leaked fd or a /proc magic link (`-w /proc/self/fd/N`) may
    // be a host dir, which getcwd(3) reports as ENOENT (the kernel's
    // "(unreachable)/..." answer): runc CVE-2024-21626.
    match nix::unistd::getcwd() {
        Ok(d) if d.is_absolute() => {}
        Ok(_) | Err(nix::Error::ENOENT) => return Err(Error::CwdOutside(p.cwd.clone())),
        Err(e) => return Err(Error::CheckCwd(p.cwd.clone(), e)),
    }
    if p.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().map_err(Error::NoNewPrivs)?;
    }

    let cstr = |s: &str| CString::new(s).map_err(|_| Error::Nul);
    let args = p.args.iter().map(|a| cstr(a)).collect::<Result<Vec<_>>>()?;
    let env = p.env.iter().map(|a| cstr(a)).collect::<Result<Vec<_>>>()?;
    let first = p.args.first().ok_or(Error::NoCommand)?;
    let path_var = p
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let display = lookup(first, path_var)?;
    Ok(Prepared {
        path: CString::new(display.as_os_str().as_bytes()).map_err(|_| Error::Nul)?,
        display,
        args,
        env,
        seccomp: late_seccomp,
        kill_with_parent: p.kill_with_parent,
        preserve_fds: p.preserve_fds,
        apparmor_profile: p.apparmor_profile.clone(),
        selinux_label: p.selinux_label.clone(),
    })
}

/// Finds `cmd` as execvp(3) would, in the container's PATH.
fn lookup(cmd: &str, path_var: &str) -> Result<PathBuf> {
    let check = |p: &Path| -> Result<Option<PathBuf>> {
        match fs::metadata(p) {
            Ok(md) if md.is_file() => {
                if access(p, AccessFlags::X_OK).is_ok() {
                    Ok(Some(p.to_path_buf()))
                } else {
                    Err(Error::NotExecutable(cmd.to_string()))
                }
            }
            Ok(_) => Err(Error::NotExecutable(cmd.to_string())),
            Err(_) => Ok(None),
        }
    };
    if cmd.contains('/') {
        return check(Path::new(cmd))?.ok_or_else(|| Error::NotFound(cmd.to_string()));
    }
    let mut denied = None;
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        match check(&Path::new(dir).join(cmd)) {
            Ok(Some(p)) => return Ok(p),
            Ok(None) => {}
            Err(e) => denied = Some(e),
        }
    }
    Err(denied.unwrap_or_else(|| Error::NotFound(cmd.to_string())))
}

/// Opens a pty in the container's own devpts instance, so `tty` inside
/// names a device that exists there, hands the master to the shim and
/// makes the slave this session's controlling terminal and stdio.
fn setup_pty(size: Option<(u16, u16)>, sock: &UnixStream) -> Result<()> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(Error::Pty)?;
    nix::pty::grantpt(&master).map_err(Error::Pty)?;
    nix::pty::unlockpt(&master).map_err(Error::Pty)?;
    let name = PathBuf::from(nix::pty::ptsname_r(&master).map_err(Error::Pty)?);
    let term_err = |e| Error::Terminal(name.clone(), e);
    if let Some((rows, cols)) = size {
        sys::set_winsize(master.as_fd(), rows, cols).map_err(term_err)?;
    }
    let msg = frame::encode(&FromInit::PtyMaster).map_err(|e| Error::Report(Box::new(e)))?;
    sock.send_with_fd(&msg, &[master.as_raw_fd()])
        .map_err(Error::SendPty)?;
    drop(master);

    setsid().map_err(Error::Setsid)?;
    let slave: OwnedFd = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&name)
        .map_err(term_err)?
        .into();
    sys::set_controlling_tty(slave.as_fd()).map_err(term_err)?;
    for fd in 0..3 {
        dup2(slave.as_raw_fd(), fd).map_err(|e| term_err(e.into()))?;
    }
    // /dev/console is what a program opens to reach "the" terminal.
    let console = Path::new("/dev/console");
    if fs::symlink_metadata(console).is_err() {
        fs::write(console, b"").map_err(|e| Error::Terminal(console.into(), e))?;
    }
    mount(
        Some(&name),
        console,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| Error::Terminal(console.into(), e.into()))?;
    Ok(())
}

/// Replaces init with the user's command. Returns only on failure.
pub fn exec(p: Prepared) -> Result<std::convert::Infallible> {
    // setuid cleared the parent-death signal; set it again so a killed
    // shim takes the container down with it.
    if p.kill_with_parent {
        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    }
    // Rust ignores SIGPIPE and the shim's mask may block signals; both
    // would be inherited across execve and break ordinary programs.
    for s in Signal::iterator() {
        if !matches!(s, Signal::SIGKILL | Signal::SIGSTOP) {
            // SAFETY: SIG_DFL installs no handler; nothing runs in-process.
            let _ = unsafe { signal(s, SigHandler::SigDfl) };
        }
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // Nothing of init's reaches the command but stdio and the fds the
    // caller asked to preserve (3 .. 3+N).
    sys::cloexec_from(3 + p.preserve_fds).map_err(Error::Cloexec)?;
    // The LSM labels apply from the execve on (attr/exec).
    if let Some(profile) = &p.apparmor_profile {
        fs::write("/proc/self/attr/apparmor/exec", format!("exec {profile}"))
            .or_else(|_| fs::write("/proc/self/attr/exec", format!("exec {profile}")))
            .map_err(|e| Error::Label("AppArmor profile", profile.clone(), e))?;
    }
    if let Some(label) = &p.selinux_label {
        fs::write("/proc/self/attr/exec", label)
            .map_err(|e| Error::Label("SELinux label", label.clone(), e))?;
    }
    // The very last step: from here on only execve (and, if it fails,
    // reporting over the init socket and exit) runs under the filter.
    if let Some(f) = &p.seccomp {
        sys::set_seccomp_filter(&f.program, f.flags).map_err(Error::Seccomp)?;
    }
    match execve(&p.path, &p.args, &p.env) {
        Ok(never) => match never {},
        Err(e) => Err(Error::Exec(p.display, e)),
    }
}
