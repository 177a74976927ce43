//! The lifecycle of one container under `hind-runc` (OCI runtime.md,
//! "Lifecycle" and "Operations"): `create` clones init through
//! [`launch::spawn`] and [`launch::configure`], leaves it waiting on a
//! listening socket in the state dir and exits; `start` connects there and
//! lets it exec; `state`, `kill` and `delete` read the system directly.
//! The runtime's own hooks (prestart, createRuntime, poststart, poststop)
//! run here; createContainer and startContainer run in init.

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill as send_signal, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use protocol::frame;
use protocol::init::{FromInit, Hook, ToInit};
use sendfd::SendWithFd;

use super::cli::{CreateArgs, Global, RunArgs};
use super::state::{self, State, Status, CONFIG, START_SOCKET};
use crate::cgroups::{self, Cgroup};
use crate::launch::{self, ChildStdio, Created};
use crate::spec;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    State(#[from] state::Error),
    #[error(transparent)]
    Config(#[from] super::validate::Error),
    #[error(transparent)]
    Spec(#[from] spec::Error),
    #[error(transparent)]
    Cgroup(#[from] cgroups::Error),
    #[error(transparent)]
    Launch(#[from] launch::Error),
    #[error(transparent)]
    Hook(#[from] hind_init::hooks::Error),
    #[error("bundle {0}")]
    Bundle(PathBuf, #[source] io::Error),
    #[error("duplicate stdio for the container")]
    Stdio(#[source] io::Error),
    #[error("--console-socket needs --detach: in the foreground hind-runc keeps the terminal")]
    ConsoleWithoutDetach,
    #[error("process.terminal is set: a detached container needs --console-socket")]
    NeedConsoleSocket,
    #[error("send the pty master to the console socket {0}")]
    ConsoleSocket(PathBuf, #[source] io::Error),
    #[error("bind the start socket {0}")]
    Listen(PathBuf, #[source] io::Error),
    #[error("hand the start socket to init")]
    Detach(#[source] io::Error),
    #[error("container {0} is {1}, not created: it cannot be started")]
    NotCreated(String, &'static str),
    #[error("connect to container {0}")]
    Connect(String, #[source] io::Error),
    #[error("start container {0}")]
    Talk(String, #[source] frame::Error),
    #[error("container {id}: {message}")]
    StartFailed { id: String, message: String },
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("unknown signal {0:?}")]
    BadSignal(String),
    #[error("send {1} to container {0}")]
    Signal(String, Signal, #[source] nix::Error),
    #[error("cannot delete container {0} that is not stopped: {1}")]
    NotStopped(String, &'static str),
    #[error("container {0} did not stop after SIGKILL")]
    WontDie(String),
    #[error("wait for container {0}")]
    Wait(String, #[source] nix::Error),
    #[error("write {0}")]
    WriteSpec(PathBuf, #[source] io::Error),
    #[error("{0} exists already: remove it or choose another bundle")]
    SpecExists(PathBuf),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The config.json of a bundle, checked (fields named on error).
fn load_spec(path: &Path) -> Result<Spec> {
    Ok(super::validate::load(path)?)
}

/// The cgroup path of a container: the spec's `linux.cgroupsPath`, read
/// as systemd's "slice:prefix:name" under --systemd-cgroup, and "/ID" by
/// default as with runc. A relative path is taken from the hierarchy's
/// root (the spec leaves the base to the runtime).
pub fn cgroups_path(spec: Option<&Path>, id: &str, systemd: bool) -> PathBuf {
    let Some(p) = spec.filter(|p| !p.as_os_str().is_empty()) else {
        return if systemd {
            PathBuf::from(format!("/system.slice/hind-runc-{id}.scope"))
        } else {
            PathBuf::from("/").join(id)
        };
    };
    let text = p.to_string_lossy();
    if systemd {
        let parts: Vec<&str> = text.split(':').collect();
        if let [slice, prefix, name] = parts[..] {
            let mut out = systemd_slice(if slice.is_empty() {
                "system.slice"
            } else {
                slice
            });
            let unit = if name.ends_with(".slice") {
                name.to_string()
            } else if prefix.is_empty() {
                format!("{name}.scope")
            } else {
                format!("{prefix}-{name}.scope")
            };
            out.push(unit);
            return out;
        }
    }
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        PathBuf::from("/").join(p)
    }
}

/// Where systemd puts a slice in the cgroup tree: "a-b.slice" is
/// /a.slice/a-b.slice (systemd.slice(5)); "-.slice" is the root.
fn systemd_slice(slice: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    let Some(stem) = slice.strip_suffix(".slice").filter(|s| *s != "-") else {
        return out;
    };
    let mut acc = String::new();
    for part in stem.split('-') {
        if !acc.is_empty() {
            acc.push('-');
        }
        acc.push_str(part);
        out.push(format!("{acc}.slice"));
    }
    out
}

/// The OCI state JSON hooks read, with `status`.
fn hook_state(st: &State, status: &str) -> String {
    let mut v = st.to_oci(Status::Running);
    v["status"] = serde_json::Value::from(status);
    v["pid"] = serde_json::Value::from(st.pid);
    v.to_string()
}

/// A container made up to `created`, init still this process's child.
struct Made {
    st: State,
    spec: Spec,
    created: Created,
    cgroup: Cgroup,
}

impl Made {
    /// Undoes everything: init killed and reaped, cgroup and state gone,
    /// and the poststop hooks run as for any failed create.
    fn abort(self, root: &Path) {
        let _ = send_signal(self.created.pid, Signal::SIGKILL);
        let _ = waitpid(self.created.pid, None);
        let _ = self.cgroup.remove();
        poststop(&self.spec, &self.st);
        let _ = state::remove_dir(root, &self.st.id);
    }
}

/// Runs the runtime-namespace hooks of one kind from the spec.
fn run_hooks(
    spec: &Spec,
    kind: &'static str,
    pick: impl Fn(&oci_spec::runtime::Hooks) -> &Option<Vec<oci_spec::runtime::Hook>>,
    state_json: &str,
) -> Result<()> {
    let hooks: Vec<Hook> = spec::hooks(spec, pick);
    Ok(hind_init::hooks::run_all(kind, &hooks, state_json)?)
}

/// Sends the pty master over the console socket (SCM_RIGHTS), what conmon
/// and containerd's shim wait for.
pub fn send_console(socket: &Path, master: &OwnedFd) -> Result<()> {
    let err = |e| Error::ConsoleSocket(socket.to_path_buf(), e);
    let s = UnixStream::connect(socket).map_err(err)?;
    s.send_with_fd(b"/dev/ptmx", &[master.as_raw_fd()])
        .map_err(err)?;
    Ok(())
}

/// Everything of create up to a waiting init: checked config, state dir,
/// cgroup, namespaces, hooks, mounts.
fn make(g: &Global, a: &CreateArgs, detached: bool) -> Result<Made> {
    let bundle = fs::canonicalize(&a.bundle).map_err(|e| Error::Bundle(a.bundle.clone(), e))?;
    let config = bundle.join(CONFIG);
    let spec = load_spec(&config)?;
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && detached && a.console_socket.is_none() {
        return Err(Error::NeedConsoleSocket);
    }
    let dir = state::create_dir(&g.root, &a.id)?;
    let undo_dir = || {
        let _ = state::remove_dir(&g.root, &a.id);
    };
    let prepared = (|| -> Result<(spec::Bundle, Cgroup, State)> {
        fs::copy(&config, dir.join(CONFIG)).map_err(|e| Error::Bundle(config.clone(), e))?;
        let mut b = spec::from_spec(&spec, &bundle, &a.id, None)?;
        // The caller supervises: init must outlive this short process.
        b.init.process.kill_with_parent = false;
        // runc's default propagation: the container's copy of the mount
        // tree is a slave of the host's, so host mounts under a bind
        // source show up inside and nothing goes back.
        if b.init.rootfs_propagation == 0 {
            b.init.rootfs_propagation = nix::mount::MsFlags::MS_SLAVE.bits();
        }
        b.init.process.preserve_fds = a.preserve_fds;
        let linux = spec.linux().as_ref();
        b.cgroups_path = cgroups_path(
            linux.and_then(|l| l.cgroups_path().as_deref()),
            &a.id,
            g.systemd_cgroup,
        );
        let cgroup = Cgroup::new(&b.cgroups_path, &a.id)?.keep_parent();
        let st = State {
            id: a.id.clone(),
            pid: 0,
            pid_start: 0,
            bundle: bundle.clone(),
            rootfs: b.init.rootfs.clone(),
            created: protocol::time::now(),
            cgroups_path: b.cgroups_path.clone(),
            annotations: spec
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        };
        Ok((b, cgroup, st))
    })();
    let (b, cgroup, mut st) = prepared.inspect_err(|_| undo_dir())?;
    let stdio = if terminal {
        ChildStdio::devnull()
    } else {
        ChildStdio::inherited()
    }
    .map_err(Error::Stdio)
    .inspect_err(|_| undo_dir())?;
    let opts = launch::Options {
        kill_with_parent: false,
        preserve: (3..3 + a.preserve_fds as RawFd).collect(),
    };
    let spawned = launch::spawn(&b, &cgroup, stdio, &launch::init_path(), &opts)
        .inspect_err(|_| undo_dir())?;
    st.pid = spawned.pid.as_raw();
    st.pid_start = state::proc_stat(st.pid).map(|(_, s)| s).unwrap_or(0);
    log::debug!("container {}: init is pid {}", a.id, st.pid);
    // prestart (deprecated) and createRuntime hooks: the namespaces exist,
    // nothing is mounted yet (config.md, "POSIX-platform Hooks").
    let creating = hook_state(&st, "creating");
    let hooked = run_hooks(&spec, "prestart", |h| h.prestart(), &creating)
        .and_then(|()| run_hooks(&spec, "createRuntime", |h| h.create_runtime(), &creating));
    // A failed create goes on with `delete` (runtime.md, "Lifecycle"
    // steps 2 and 12): the poststop hooks run whatever failed.
    if let Err(e) = hooked {
        spawned.abort(&cgroup);
        poststop(&spec, &st);
        undo_dir();
        return Err(e);
    }
    let mut cfg = b.init.clone();
    cfg.hooks.create_state = creating;
    cfg.hooks.start_state = hook_state(&st, "created");
    let created = launch::configure(spawned, cfg, &cgroup).inspect_err(|_| {
        poststop(&spec, &st);
        undo_dir();
    })?;
    let made = Made {
        st,
        spec,
        created,
        cgroup,
    };
    let finish = (|| {
        if let (Some(sock), Some(master)) = (&a.console_socket, &made.created.pty_master) {
            send_console(sock, master)?;
        }
        made.st.save(&g.root)?;
        if let Some(p) = &a.pid_file {
            state::write_pid_file(p, made.st.pid)?;
        }
        Ok(())
    })();
    match finish {
        Ok(()) => Ok(made),
        Err(e) => {
            made.abort(&g.root);
            Err(e)
        }
    }
}

/// Binds `start.sock` in the state dir (through the dir's fd: the full
/// path may not fit in sun_path) and hands it to init, which then waits
/// there for `start` after this process exits.
fn detach(g: &Global, made: &mut Made) -> Result<()> {
    let dir = state::dir(&g.root, &made.st.id);
    let path = dir.join(START_SOCKET);
    let d = fs::File::open(&dir).map_err(|e| Error::Listen(path.clone(), e))?;
    let short = protocol::paths::via_dir_fd(&d, START_SOCKET);
    let listener = UnixListener::bind(&short).map_err(|e| Error::Listen(path.clone(), e))?;
    let msg = frame::encode(&ToInit::Detach)
        .map_err(|e| Error::Detach(io::Error::other(e.to_string())))?;
    made.created
        .sock
        .send_with_fd(&msg, &[listener.as_raw_fd()])
        .map_err(Error::Detach)?;
    Ok(())
}

pub fn create(g: &Global, a: &CreateArgs) -> Result<()> {
    let mut made = make(g, a, true)?;
    if let Err(e) = detach(g, &mut made) {
        made.abort(&g.root);
        return Err(e);
    }
    log::debug!("container {}: created", a.id);
    Ok(())
}

/// Sends Start over `sock` and waits for the exec (EOF: init's end is
/// close-on-exec) or init's report of what failed.
fn release(id: &str, mut sock: UnixStream) -> Result<()> {
    frame::write(&mut sock, &ToInit::Start).map_err(|e| Error::Talk(id.to_string(), e))?;
    match frame::read::<FromInit, _>(&mut sock) {
        Err(frame::Error::Closed) => Ok(()),
        Ok(FromInit::Failed { message, .. }) => Err(Error::StartFailed {
            id: id.to_string(),
            message,
        }),
        Ok(other) => Err(Error::StartFailed {
            id: id.to_string(),
            message: format!("unexpected {other:?} from init"),
        }),
        Err(e) => Err(Error::Talk(id.to_string(), e)),
    }
}

fn saved_spec(g: &Global, id: &str) -> Result<Spec> {
    let p = state::dir(&g.root, id).join(CONFIG);
    Spec::load(&p).map_err(|e| Error::Bundle(p, io::Error::other(e.to_string())))
}

/// The poststop hooks: a failure is logged, not fatal (config.md).
fn poststop(spec: &Spec, st: &State) {
    if let Err(e) = run_hooks(
        spec,
        "poststop",
        |h| h.poststop(),
        &hook_state(st, "stopped"),
    ) {
        log::warn!("container {}: {e}", st.id);
    }
}

/// The poststart hooks: a failure is logged, not fatal (config.md).
fn poststart(spec: &Spec, st: &State) {
    if let Err(e) = run_hooks(
        spec,
        "poststart",
        |h| h.poststart(),
        &hook_state(st, "running"),
    ) {
        log::warn!("container {}: {e}", st.id);
    }
}

pub fn start(g: &Global, id: &str) -> Result<()> {
    let st = State::load(&g.root, id)?;
    let status = st.status(&g.root);
    if status != Status::Created {
        return Err(Error::NotCreated(id.to_string(), status.as_str()));
    }
    let path = state::dir(&g.root, id).join(START_SOCKET);
    let d = fs::File::open(state::dir(&g.root, id)).map_err(|e| Error::Connect(id.into(), e))?;
    let short = protocol::paths::via_dir_fd(&d, START_SOCKET);
    let sock = UnixStream::connect(&short).map_err(|e| Error::Connect(id.into(), e))?;
    // From here on the container counts as started: a second `start`
    // finds no socket.
    let _ = fs::remove_file(&path);
    release(id, sock)?;
    poststart(&saved_spec(g, id)?, &st);
    Ok(())
}

pub fn state(g: &Global, id: &str) -> Result<()> {
    let st = State::load(&g.root, id)?;
    let status = st.status(&g.root);
    println!("{:#}", st.to_oci(status));
    Ok(())
}

/// A signal by number or name, with or without "SIG" (`9`, `KILL`,
/// `SIGKILL`, `sigkill`).
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::BadSignal(s.to_string()));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map_err(|_| Error::BadSignal(s.to_string()))
}

pub fn kill(g: &Global, id: &str, signal: Option<&str>, all: bool) -> Result<()> {
    let sig = parse_signal(signal.unwrap_or("SIGTERM"))?;
    let st = State::load(&g.root, id)?;
    if all {
        if let Some(cg) = st.cgroup() {
            let pids = cg.pids().unwrap_or_default();
            // A frozen process gets the signal once thawed; SIGKILL works
            // on frozen tasks on v2 only, so thaw for it.
            if sig == Signal::SIGKILL && cg.frozen() {
                let _ = cg.freeze(false);
            }
            for pid in pids {
                let _ = send_signal(pid, sig);
            }
            return Ok(());
        }
    }
    if !st.alive() {
        return Err(Error::NotRunning(id.to_string()));
    }
    send_signal(Pid::from_raw(st.pid), sig).map_err(|e| Error::Signal(id.to_string(), sig, e))
}

/// Kills what is left in the container's cgroup and removes it, runs the
/// poststop hooks and drops the state.
fn destroy(g: &Global, st: &State) -> Result<()> {
    if let Some(cg) = st.cgroup() {
        let _ = cg.freeze(false);
        for pid in cg.pids().unwrap_or_default() {
            let _ = send_signal(pid, Signal::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut removed = cg.remove();
        while removed.is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            removed = cg.remove();
        }
        removed?;
    }
    if let Ok(spec) = saved_spec(g, &st.id) {
        poststop(&spec, st);
    }
    state::remove_dir(&g.root, &st.id)?;
    Ok(())
}

pub fn delete(g: &Global, id: &str, force: bool) -> Result<()> {
    let st = match State::load(&g.root, id) {
        Ok(st) => st,
        // runc: deleting what is gone with --force is no error.
        Err(state::Error::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let status = st.status(&g.root);
    match status {
        Status::Stopped => {}
        // A created container has run nothing of the user's: runc deletes
        // it without --force.
        Status::Created => stop(&st)?,
        Status::Running | Status::Paused if force => stop(&st)?,
        s => return Err(Error::NotStopped(id.to_string(), s.as_str())),
    }
    destroy(g, &st)
}

/// SIGKILLs init (thawing it first) and waits until it is gone or a
/// zombie; its parent, not this process, reaps it.
fn stop(st: &State) -> Result<()> {
    if let Some(cg) = st.cgroup() {
        let _ = cg.freeze(false);
    }
    let _ = send_signal(Pid::from_raw(st.pid), Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(10);
    while st.alive() {
        if Instant::now() > deadline {
            return Err(Error::WontDie(st.id.clone()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// `run`: create and start in one process. In the foreground this process
/// stays init's parent, forwards signals to it, and exits with its status
/// after deleting the container.
pub fn run(g: &Global, a: &RunArgs) -> Result<i32> {
    if !a.detach && a.create.console_socket.is_some() {
        return Err(Error::ConsoleWithoutDetach);
    }
    let made = make(g, &a.create, a.detach)?;
    let id = a.create.id.clone();
    let Made {
        st,
        spec,
        created,
        cgroup: _,
    } = made;
    let Created {
        pid,
        sock,
        pty_master,
    } = created;
    if let Err(e) = release(&id, sock) {
        // init reported the failure and exits: reap it, then the rest of
        // delete (cgroup, poststop hooks, state).
        let _ = waitpid(pid, None);
        let _ = destroy(g, &st);
        return Err(e);
    }
    poststart(&spec, &st);
    if a.detach {
        return Ok(0);
    }
    let proxy = pty_master
        .filter(|_| a.create.console_socket.is_none())
        .and_then(proxy_pty);
    let code = wait_forwarding(&id, pid)?;
    if let Some(t) = proxy {
        let _ = t.join();
    }
    if !a.keep {
        destroy(g, &st)?;
    }
    Ok(code)
}

/// Waits for `pid` (a child), passing the usual termination and job
/// control signals on to it; returns its exit status, 128+N if killed.
/// Without threads: after joining a pid namespace by path this process may
/// not start any (clone(2), EINVAL for CLONE_THREAD), so the signals are
/// blocked and taken with sigwait(2) alongside SIGCHLD.
pub fn wait_forwarding(id: &str, pid: Pid) -> Result<i32> {
    use nix::sys::signal::{SigSet, SigmaskHow};
    use nix::sys::wait::WaitPidFlag;
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCHLD,
    ] {
        set.add(s);
    }
    let wait_err = |e| Error::Wait(id.to_string(), e);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(wait_err)?;
    loop {
        // Checked before each wait: the child may have exited before the
        // mask was set, and SIGCHLDs coalesce.
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, c)) => return Ok(c),
            Ok(WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as i32),
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(wait_err(e)),
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => {}
            Ok(sig) => {
                let _ = send_signal(pid, sig);
            }
        }
    }
}

/// Copies between this process's stdio and a pty master until the
/// container closes it (foreground `run` or `exec` with a terminal and no
/// console socket). None if no thread could be started (after joining a
/// pid namespace): the container then runs without its terminal relayed.
pub fn proxy_pty(master: OwnedFd) -> Option<std::thread::JoinHandle<()>> {
    let mut out = fs::File::from(master);
    if let Ok(mut input) = out.try_clone() {
        let _ = std::thread::Builder::new().spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stdin = io::stdin();
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || input.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
    std::thread::Builder::new()
        .spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stdout = io::stdout();
            // EIO once the last slave fd is closed: the container is done.
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 || stdout.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = stdout.flush();
            }
        })
        .ok()
}

/// `spec`: a template config.json in `bundle`, never over an existing one.
pub fn write_spec(bundle: &Path) -> Result<()> {
    let path = bundle.join(CONFIG);
    if path.exists() {
        return Err(Error::SpecExists(path));
    }
    let text = serde_json::to_string_pretty(&super::template::default_spec())
        .map_err(|e| Error::WriteSpec(path.clone(), io::Error::other(e)))?;
    fs::write(&path, text + "\n").map_err(|e| Error::WriteSpec(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_paths() {
        let p = |s: Option<&str>, sd| cgroups_path(s.map(Path::new), "c1", sd);
        assert_eq!(p(None, false), Path::new("/c1"));
        assert_eq!(p(Some(""), false), Path::new("/c1"));
        assert_eq!(p(Some("/a/b"), false), Path::new("/a/b"));
        assert_eq!(p(Some("a/b"), false), Path::new("/a/b"));
        assert_eq!(
            p(Some("machine.slice:libpod:abc"), true),
            Path::new("/machine.slice/libpod-abc.scope")
        );
        assert_eq!(
            p(Some("a-b-c.slice:pre:x"), true),
            Path::new("/a.slice/a-b.slice/a-b-c.slice/pre-x.scope")
        );
        assert_eq!(
            p(Some(":crio:x"), true),
            Path::new("/system.slice/crio-x.scope")
        );
        assert_eq!(p(Some("-.slice::x"), true), Path::new("/x.scope"));
        assert_eq!(
            p(Some("user.slice:p:sub.slice"), true),
            Path::new("/user.slice/sub.slice")
        );
        assert_eq!(p(None, true), Path::new("/system.slice/hind-runc-c1.scope"));
    }

    #[test]
    fn signals_by_number_and_name() {
        for s in ["9", "KILL", "SIGKILL", "kill", "sigkill"] {
            assert_eq!(parse_signal(s).ok(), Some(Signal::SIGKILL), "{s}");
        }
        assert_eq!(parse_signal("15").ok(), Some(Signal::SIGTERM));
        for bad in ["0x", "NOPE", "99", ""] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }
}
