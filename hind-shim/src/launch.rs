//! Starting a container's init: clone(2) into the new namespaces, exec
//! `hind-init` with the init socket at fd 3, put it in its cgroup, hand it
//! its config, and walk it through to the user's exec.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use protocol::frame;
use protocol::init::{ExecConfig, FromInit, InitConfig, ToInit, INIT_SOCKET_ENV, INIT_SOCKET_FD};
use protocol::EXIT_ENGINE;

use crate::cgroups::{self, Cgroup};
use crate::memfd::{self, SealedExe};
use crate::spec::Bundle;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("create the init socket pair")]
    SocketPair(#[source] io::Error),
    #[error("open namespace {0}")]
    OpenNamespace(PathBuf, #[source] io::Error),
    #[error("namespace {0} is not a {1} namespace")]
    NotNamespace(PathBuf, &'static str),
    #[error("join namespace {0}")]
    Setns(PathBuf, #[source] io::Error),
    #[error("write {0}")]
    IdMap(PathBuf, #[source] io::Error),
    #[error("create the user namespace's sync pipe")]
    Pipe(#[source] io::Error),
    #[error("clone the container init into new namespaces")]
    Clone(#[source] io::Error),
    #[error(transparent)]
    Cgroup(#[from] cgroups::Error),
    #[error(transparent)]
    Exe(#[from] memfd::Error),
    #[error("talk to hind-init")]
    Talk(#[source] frame::Error),
    #[error("receive the pty master from hind-init")]
    RecvPty(#[source] io::Error),
    #[error("hind-init sent the pty master without the fd")]
    NoPtyFd,
    #[error("hind-init exited before the container started")]
    InitDied,
    /// init, or a `hind exec` helper or its process, closed its socket
    /// without a report: how it ended is all there is to go by.
    #[error("hind-init {how} before {what} started")]
    InitExited { what: &'static str, how: Death },
    #[error("expected {expected} from hind-init, got {received}")]
    UnexpectedMessage {
        expected: &'static str,
        received: String,
    },
    /// init's own report of what failed; `exit_code` is Docker's code.
    #[error("{message}")]
    Init { message: String, exit_code: i32 },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Init { exit_code, .. } => *exit_code,
            _ => EXIT_ENGINE,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// How a hind-init process ended, from its wait status.
#[derive(Debug)]
pub struct Death(WaitStatus);

impl fmt::Display for Death {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.0 {
            WaitStatus::Exited(_, code) => write!(f, "exited with status {code}"),
            WaitStatus::Signaled(_, sig, _) => write!(f, "was killed by {sig}"),
            other => write!(f, "ended with {other:?}"),
        }
    }
}

/// Replaces [`Error::InitDied`] with how the process ended. `status` is
/// its wait status, taken after the EOF on its socket: the kernel fixes the
/// exit status before it closes a dying process's files (`do_exit` in
/// kernel/exit.c), so the SIGKILL the caller sends first does not change it.
fn died(e: Error, what: &'static str, status: nix::Result<WaitStatus>) -> Error {
    match (e, status) {
        (Error::InitDied, Ok(s)) => Error::InitExited {
            what,
            how: Death(s),
        },
        (e, _) => e,
    }
}

/// The stdio init gets as fds 0, 1, 2 (ignored for a terminal, where init
/// makes a pty of its own).
pub struct ChildStdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

impl ChildStdio {
    /// /dev/null on all three: for a terminal, whose pty init makes itself.
    pub fn devnull() -> io::Result<ChildStdio> {
        let open = || -> io::Result<OwnedFd> {
            Ok(std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")?
                .into())
        };
        Ok(ChildStdio {
            stdin: open()?,
            stdout: open()?,
            stderr: open()?,
        })
    }

    /// This process's own stdio (`hind-runc`: the caller's pipes).
    pub fn inherited() -> io::Result<ChildStdio> {
        use std::os::fd::AsFd;
        Ok(ChildStdio {
            stdin: io::stdin().as_fd().try_clone_to_owned()?,
            stdout: io::stdout().as_fd().try_clone_to_owned()?,
            stderr: io::stderr().as_fd().try_clone_to_owned()?,
        })
    }
}

/// A container whose init is waiting for the go (OCI "created").
pub struct Created {
    pub pid: Pid,
    pub sock: UnixStream,
    pub pty_master: Option<OwnedFd>,
}

/// Everything the child needs, prepared before clone so the child only
/// makes async-signal-safe calls (dup2, close_range, prctl, execveat).
struct ExecArgs {
    /// The sealed copy of hind-init to execute (see [`memfd`]).
    exe: RawFd,
    /// Namespaces to join with setns(2) (fd, type) before anything else,
    /// a user namespace first.
    join: Vec<(RawFd, libc::c_int)>,
    /// fds handed to init as 3, 4, ... (`--preserve-fds`); init's socket
    /// follows them.
    preserve: Vec<RawFd>,
    /// PR_SET_PDEATHSIG: the container dies with the process cloning it.
    kill_with_parent: bool,
    /// For a new user namespace: a pipe to read one byte from before going
    /// on, written once the parent has set the id maps (-1: none).
    maps_ready: RawFd,
    argv: [*const libc::c_char; 2],
    envp: Vec<*const libc::c_char>,
    /// What `envp` points into.
    _env: Option<std::ffi::CString>,
    /// Room for the child's fd shuffle, allocated here: the child must not
    /// allocate.
    scratch: Vec<RawFd>,
}

/// How a container's init is started, beyond what the bundle says.
#[derive(Default)]
pub struct Options {
    /// Kill init when its parent dies (the shim's containers); off when
    /// the caller supervises (`hind-runc`).
    pub kill_with_parent: bool,
    /// fds init and then the command get as 3, 4, ... (`--preserve-fds`).
    pub preserve: Vec<RawFd>,
}

/// The namespaces a process joining a container enters (`flags`: every
/// one the container has, new or joined), by their /proc/PID/ns names: the
/// user namespace first, for the privileges it gives over the rest, the
/// mount namespace last, as joining it changes what paths mean.
pub fn exec_namespaces(flags: CloneFlags) -> Vec<String> {
    [
        (CloneFlags::CLONE_NEWUSER, "user"),
        (CloneFlags::CLONE_NEWIPC, "ipc"),
        (CloneFlags::CLONE_NEWUTS, "uts"),
        (CloneFlags::CLONE_NEWNET, "net"),
        (CloneFlags::CLONE_NEWPID, "pid"),
        (CloneFlags::CLONE_NEWCGROUP, "cgroup"),
        (CloneFlags::CLONE_NEWNS, "mnt"),
    ]
    .into_iter()
    .filter(|(f, _)| flags.contains(*f))
    .map(|(_, n)| n.to_string())
    .collect()
}

/// `_IO(0xb7, 0x3)` from linux/nsfs.h.
const NS_GET_NSTYPE: libc::Ioctl = 0xb703;

fn ns_name(flag: CloneFlags) -> &'static str {
    match flag {
        CloneFlags::CLONE_NEWNET => "network",
        CloneFlags::CLONE_NEWIPC => "ipc",
        CloneFlags::CLONE_NEWUTS => "uts",
        CloneFlags::CLONE_NEWPID => "pid",
        CloneFlags::CLONE_NEWNS => "mount",
        CloneFlags::CLONE_NEWUSER => "user",
        CloneFlags::CLONE_NEWCGROUP => "cgroup",
        _ => "requested",
    }
}

pub fn init_path() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("hind-init")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin/hind-init"))
}

/// Clones init, joins it to `cgroup`, sends the config and returns once
/// init reports it is ready to exec. On any failure init is killed and
/// reaped and the cgroup removed.
pub fn create(
    bundle: &Bundle,
    cgroup: &Cgroup,
    stdio: ChildStdio,
    init: &Path,
    opts: &Options,
) -> Result<Created> {
    let spawned = spawn(bundle, cgroup, stdio, init, opts)?;
    let cfg = bundle.init.clone();
    configure(spawned, cfg, cgroup)
}

/// An init cloned into its namespaces and cgroup, waiting for its config.
pub struct Spawned {
    pub pid: Pid,
    sock: UnixStream,
    /// v1 `tasks` files init writes itself into (see [`Cgroup::prepare`]).
    cgroup_join: Vec<PathBuf>,
}

impl Spawned {
    /// Kills and reaps init and removes the cgroup: the way out when
    /// something between [`spawn`] and [`configure`] failed.
    pub fn abort(self, cgroup: &Cgroup) {
        let _ = undo(self.pid, cgroup, Error::InitDied);
    }
}

/// The way out of a failed start: init killed and reaped, the cgroup
/// removed; returns `e`, or how init ended if it just closed its socket.
fn undo(pid: Pid, cgroup: &Cgroup, e: Error) -> Error {
    let _ = kill(pid, Signal::SIGKILL);
    let status = waitpid(pid, None);
    let _ = cgroup.remove();
    died(e, "the container", status)
}

/// The first half of [`create`]: init exists in its namespaces (joined or
/// new, with its user namespace's id maps written) and its cgroup, and
/// waits for its config. The OCI prestart and createRuntime hooks run at
/// this point.
pub fn spawn(
    bundle: &Bundle,
    cgroup: &Cgroup,
    stdio: ChildStdio,
    init: &Path,
    opts: &Options,
) -> Result<Spawned> {
    let userns = bundle.clone_flags.contains(CloneFlags::CLONE_NEWUSER);
    // Limits are in place before init exists; on v1 init joins by itself,
    // except from a new user namespace, where the host's cgroup files are
    // not its to write: then this process moves it, as on v2.
    let join = if userns {
        None
    } else {
        cgroup.prepare(&bundle.resources)?
    };
    // From here on a failure must take the cgroup made above with it.
    let (pid, sock, maps_pipe) = match clone_into(bundle, stdio, init, opts, userns) {
        Ok(x) => x,
        Err(e) => {
            let _ = cgroup.remove();
            return Err(e);
        }
    };
    let prepared = (|| {
        if let Some((r, w)) = maps_pipe {
            drop(r);
            write_id_maps(pid, bundle)?;
            // Go: the child becomes root of its namespace and execs.
            let _ = nix::unistd::write(&w, &[1]);
        }
        if join.is_none() {
            cgroup.enter(pid.as_raw(), &bundle.resources)?;
        }
        Ok(())
    })();
    match prepared {
        Ok(()) => Ok(Spawned {
            pid,
            sock,
            cgroup_join: join.unwrap_or_default(),
        }),
        Err(e) => Err(undo(pid, cgroup, e)),
    }
}

/// The pipe on which a child in a new user namespace waits for its maps.
type MapsPipe = Option<(OwnedFd, OwnedFd)>;

/// Clones init into its namespaces (joining those given by path); returns
/// its pid, the parent's end of the init socket and, for a new user
/// namespace, the pipe its child waits on.
fn clone_into(
    bundle: &Bundle,
    stdio: ChildStdio,
    init: &Path,
    opts: &Options,
    userns: bool,
) -> Result<(Pid, UnixStream, MapsPipe)> {
    let (parent_sock, child_sock) = UnixStream::pair().map_err(Error::SocketPair)?;
    // A fresh copy per container: init is the container's process until
    // it execs the user's command (runc CVE-2019-5736).
    let exe = SealedExe::copy_of(init)?;
    // Opened here, not in the child: the child may only make
    // async-signal-safe calls, and an error here has a path to report.
    let mut join_fds = bundle
        .join
        .iter()
        .map(|(flag, path)| {
            let f = std::fs::File::open(path).map_err(|e| Error::OpenNamespace(path.clone(), e))?;
            // NS_GET_NSTYPE (ioctl_ns(2)): checked here so that a wrong
            // path is reported by name instead of failing in the child.
            // SAFETY: an ioctl without arguments on an fd we own.
            let kind = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_NSTYPE) };
            if kind != flag.bits() {
                return Err(Error::NotNamespace(path.clone(), ns_name(*flag)));
            }
            Ok((OwnedFd::from(f), *flag))
        })
        .collect::<Result<Vec<_>>>()?;
    // A pid namespace is entered by the parent: setns(2) of one changes
    // only where the caller's next children go (pid_namespaces(7)), and
    // init must be born in it.
    if let Some(i) = join_fds
        .iter()
        .position(|(_, f)| *f == CloneFlags::CLONE_NEWPID)
    {
        let (fd, _) = join_fds.remove(i);
        let path = bundle
            .join
            .iter()
            .find(|(f, _)| *f == CloneFlags::CLONE_NEWPID)
            .map(|(_, p)| p.clone())
            .unwrap_or_default();
        nix::sched::setns(&fd, CloneFlags::CLONE_NEWPID)
            .map_err(|e| Error::Setns(path, e.into()))?;
    }
    // The user namespace first: the others are joined with the
    // privileges it gives.
    join_fds.sort_by_key(|(_, f)| *f != CloneFlags::CLONE_NEWUSER);
    let mut exec = ExecArgs::new(
        &exe,
        join_fds
            .iter()
            .map(|(fd, t)| (fd.as_raw_fd(), t.bits()))
            .collect(),
        opts,
    );
    let maps_pipe = if userns {
        let (r, w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::Pipe(e.into()))?;
        exec.maps_ready = r.as_raw_fd();
        Some((r, w))
    } else {
        None
    };
    let pid = clone_init(bundle.clone_flags, &stdio, child_sock.as_raw_fd(), exec)?;
    // The child has its own fd for it; the pages go when it stops executing it.
    drop(exe);
    drop(join_fds);
    drop(child_sock);
    drop(stdio);
    Ok((pid, parent_sock, maps_pipe))
}

/// Writes the user namespace's uid and gid maps of `pid`, which init
/// waits for (it reads its config only after). Without maps, ids inside
/// would all be the overflow id.
fn write_id_maps(pid: Pid, bundle: &Bundle) -> Result<()> {
    for (file, maps) in [
        ("uid_map", &bundle.uid_mappings),
        ("gid_map", &bundle.gid_mappings),
    ] {
        if maps.is_empty() {
            continue;
        }
        let text: String = maps
            .iter()
            .map(|(inside, outside, len)| format!("{inside} {outside} {len}\n"))
            .collect();
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        // One write(2) with every line: the kernel takes a map only whole.
        std::fs::write(&path, text).map_err(|e| Error::IdMap(path, e))?;
    }
    Ok(())
}

/// The second half of [`create`]: hands `cfg` to the waiting init and
/// returns once init has done everything up to the exec.
pub fn configure(spawned: Spawned, mut cfg: InitConfig, cgroup: &Cgroup) -> Result<Created> {
    let pid = spawned.pid;
    cfg.cgroup_join = spawned.cgroup_join;
    handshake(spawned.sock, &cfg, pid).map_err(|e| undo(pid, cgroup, e))
}

fn handshake(mut sock: UnixStream, cfg: &InitConfig, pid: Pid) -> Result<Created> {
    frame::write(&mut sock, &ToInit::Config(Box::new(cfg.clone()))).map_err(Error::Talk)?;
    let mut rx = Receiver::default();
    let mut pty_master = None;
    loop {
        match rx.recv(&mut sock, &mut pty_master)? {
            FromInit::PtyMaster => {
                if pty_master.is_none() {
                    return Err(Error::NoPtyFd);
                }
            }
            FromInit::Created => break,
            FromInit::Failed { message, exit_code } => {
                return Err(Error::Init { message, exit_code })
            }
            FromInit::ExecPid(_) => {
                return Err(Error::UnexpectedMessage {
                    expected: "Created",
                    received: "ExecPid".into(),
                })
            }
        }
    }
    Ok(Created {
        pid,
        sock,
        pty_master,
    })
}

/// Reads frames from init, collecting an fd passed along (the pty master).
#[derive(Default)]
struct Receiver(frame::FdReader);

impl Receiver {
    fn recv(&mut self, sock: &mut UnixStream, fd_out: &mut Option<OwnedFd>) -> Result<FromInit> {
        self.0.recv(sock, fd_out).map_err(|e| match e {
            frame::Error::Closed => Error::InitDied,
            frame::Error::Io(e) => Error::RecvPty(e),
            e => Error::Talk(e),
        })
    }
}

/// Runs the setns helper for one `hind exec` and walks the process it
/// forks inside the container up to its exec. Returns its pid (a child of
/// this shim) and, with a terminal, its pty master.
pub fn exec(
    cfg: &ExecConfig,
    stdio: ChildStdio,
    init: &Path,
    opts: &Options,
) -> Result<(Pid, Option<OwnedFd>)> {
    let (parent_sock, child_sock) = UnixStream::pair().map_err(Error::SocketPair)?;
    // The helper's fork runs hind-init inside the container's pid
    // namespace until its exec, so it too runs a sealed copy.
    let exe = SealedExe::copy_of(init)?;
    let args = ExecArgs::new(&exe, Vec::new(), opts);
    let helper = clone_init(CloneFlags::empty(), &stdio, child_sock.as_raw_fd(), args)?;
    drop(exe);
    drop(child_sock);
    drop(stdio);
    let mut sock = parent_sock;
    let mut pid = None;
    let mut pty = None;
    let result = (|| {
        frame::write(&mut sock, &ToInit::Exec(Box::new(cfg.clone()))).map_err(Error::Talk)?;
        let mut rx = Receiver::default();
        loop {
            match rx.recv(&mut sock, &mut pty)? {
                FromInit::ExecPid(p) => pid = Some(Pid::from_raw(p)),
                FromInit::PtyMaster if pty.is_none() => return Err(Error::NoPtyFd),
                FromInit::PtyMaster => {}
                FromInit::Created => break,
                FromInit::Failed { message, exit_code } => {
                    return Err(Error::Init { message, exit_code })
                }
            }
        }
        // The helper reports the pid before its child may say anything.
        let pid = pid.ok_or(Error::UnexpectedMessage {
            expected: "ExecPid",
            received: "Created".into(),
        })?;
        let mut created = Created {
            pid,
            sock,
            pty_master: None,
        };
        start(&mut created)?;
        Ok(pid)
    })();
    // The helper exits right after its fork; reap it here so it never
    // lingers as a zombie.
    let helper_status = waitpid(helper, None);
    match result {
        Ok(pid) => Ok((pid, pty)),
        Err(e) => {
            // A silent end is the helper's if it failed, else that of the
            // process it reported (then reaped here, not by the event loop).
            let mut status = helper_status;
            if let Some(p) = pid {
                let _ = kill(p, Signal::SIGKILL);
                if matches!(e, Error::InitDied) && matches!(status, Ok(WaitStatus::Exited(_, 0))) {
                    status = waitpid(p, None);
                }
            }
            Err(died(e, "the exec process", status))
        }
    }
}

/// Lets the waiting init exec the user's command and waits for the exec:
/// init's end of the socket is close-on-exec, so EOF means it happened.
pub fn start(created: &mut Created) -> Result<()> {
    frame::write(&mut created.sock, &ToInit::Start).map_err(Error::Talk)?;
    match frame::read::<FromInit, _>(&mut created.sock) {
        Err(frame::Error::Closed) => Ok(()),
        Ok(FromInit::Failed { message, exit_code }) => Err(Error::Init { message, exit_code }),
        Ok(other) => Err(Error::UnexpectedMessage {
            expected: "EOF after exec",
            received: format!("{other:?}"),
        }),
        Err(e) => Err(Error::Talk(e)),
    }
}

impl ExecArgs {
    fn new(exe: &SealedExe, join: Vec<(RawFd, libc::c_int)>, opts: &Options) -> ExecArgs {
        let n = opts.preserve.len();
        // Where init's socket is when preserved fds come first; owned
        // here (the heap buffer stays put as the struct moves), read by
        // the child after clone.
        let env = (n > 0).then(|| {
            std::ffi::CString::new(format!("{INIT_SOCKET_ENV}={}", INIT_SOCKET_FD + n as i32))
                .unwrap_or_default()
        });
        let mut envp: Vec<*const libc::c_char> = env.iter().map(|v| v.as_ptr()).collect();
        envp.push(std::ptr::null());
        ExecArgs {
            exe: exe.as_raw_fd(),
            join,
            preserve: opts.preserve.clone(),
            kill_with_parent: opts.kill_with_parent,
            maps_ready: -1,
            argv: [c"hind-init".as_ptr(), std::ptr::null()],
            envp,
            _env: env,
            scratch: vec![-1; n + 5],
        }
    }
}

fn clone_init(
    flags: CloneFlags,
    stdio: &ChildStdio,
    sock: RawFd,
    mut exec: ExecArgs,
) -> Result<Pid> {
    // Sources of the child's fds 0, 1, 2, the preserved ones, the init
    // socket, then the executable (placed last, close-on-exec).
    let mut sources: Vec<RawFd> = vec![
        stdio.stdin.as_raw_fd(),
        stdio.stdout.as_raw_fd(),
        stdio.stderr.as_raw_fd(),
    ];
    sources.extend(&exec.preserve);
    sources.push(sock);
    sources.push(exec.exe);
    let exe_fd = (sources.len() - 1) as RawFd;
    // SAFETY: the shim is single-threaded, and the child below only runs
    // async-signal-safe syscalls on data prepared above before execve.
    let ret = unsafe { hind_init::sys::clone_fork(flags.bits()) }.map_err(Error::Clone)?;
    if ret > 0 {
        return Ok(Pid::from_raw(ret));
    }
    // Child. The targets 0..=exe_fd may coincide with the sources, so first
    // move the sources above them, then dup2 into place.
    // SAFETY: only async-signal-safe calls on fds this process owns, and
    // writes into memory allocated before the clone.
    unsafe {
        // Join the given namespaces first, while their fds are still open
        // (the shuffle below may overwrite low fds). A namespace that
        // cannot be joined must not silently become the host's.
        for (fd, nstype) in &exec.join {
            if libc::setns(*fd, *nstype) < 0 {
                libc::_exit(EXIT_ENGINE);
            }
        }
        if exec.maps_ready >= 0 {
            // In a new user namespace: wait for the parent to write its id
            // maps, then become its root. Host root is not mapped there,
            // so without this the exec below would run as the overflow
            // uid and drop every capability (capabilities(7), "Effect of
            // user ID changes on capabilities").
            let mut b = 0u8;
            if libc::read(exec.maps_ready, (&mut b as *mut u8).cast(), 1) != 1 {
                libc::_exit(EXIT_ENGINE);
            }
            if libc::syscall(libc::SYS_setresgid, 0, 0, 0) < 0
                || libc::syscall(libc::SYS_setresuid, 0, 0, 0) < 0
            {
                libc::_exit(EXIT_ENGINE);
            }
        }
        let above = (exe_fd + 1).max(10);
        for (i, fd) in sources.iter().enumerate() {
            exec.scratch[i] = libc::fcntl(*fd, libc::F_DUPFD, above);
            if exec.scratch[i] < 0 {
                libc::_exit(EXIT_ENGINE);
            }
        }
        for i in 0..exe_fd {
            if libc::dup2(exec.scratch[i as usize], i) < 0 {
                libc::_exit(EXIT_ENGINE);
            }
        }
        if libc::dup3(exec.scratch[exe_fd as usize], exe_fd, libc::O_CLOEXEC) < 0 {
            libc::_exit(EXIT_ENGINE);
        }
        // Nothing else of the shim's (control socket, log, clients) may
        // reach the container (runc CVE-2024-21626).
        libc::syscall(libc::SYS_close_range, exe_fd + 1, u32::MAX, 0);
        if exec.kill_with_parent {
            // A shim killed with SIGKILL takes the container with it.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        }
        // Execute the sealed copy by its fd, never the host's file. It is
        // close-on-exec, which is fine for an ELF binary (only a script
        // would need its fd to survive, as /dev/fd/N).
        libc::syscall(
            libc::SYS_execveat,
            exe_fd,
            c"".as_ptr(),
            exec.argv.as_ptr(),
            exec.envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
        libc::_exit(EXIT_ENGINE);
    }
}
