//! The per-container supervisor. One `hind-shim` per container outlives the
//! CLI that started it: it owns the container's stdio and log, its cgroup,
//! its exit status and the control socket through which any later `hind`
//! command reaches the container.
//!
//! Invocation (by `hind`, never by users):
//! `hind-shim --root ROOT --id ID [--client-fd N]`, where fd N is a socket
//! already connected to the starting CLI: it gets `Started`/`Failed` and,
//! if it stays, the container's output, exactly like a client that
//! connected and attached, but without any window in which output could be
//! missed.

pub mod cgroups;
pub mod devices_bpf;
pub mod launch;
pub mod logfile;
pub mod memfd;
pub mod runc;
pub mod seccomp;
pub mod spec;
pub mod supervisor;

use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use protocol::control::Event;
use protocol::paths::{self, Layout};
use protocol::record::{self, Record, Status};
use protocol::{frame, EXIT_ENGINE};

struct Args {
    root: PathBuf,
    id: String,
    client_fd: Option<i32>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut root = None;
    let mut id = None;
    let mut client_fd = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| anyhow!("{a} needs a value"));
        match a.as_str() {
            "--root" => root = Some(PathBuf::from(val()?)),
            "--id" => id = Some(val()?),
            "--client-fd" => client_fd = Some(val()?.parse().context("--client-fd")?),
            _ => return Err(anyhow!("unknown argument {a}")),
        }
    }
    Ok(Args {
        root: root.ok_or_else(|| anyhow!("--root is required"))?,
        id: id.ok_or_else(|| anyhow!("--id is required"))?,
        client_fd,
    })
}

/// A minimal logger for the shim's own diagnostics: to `shim.log` in the
/// container's dir (the shim has no terminal).
struct FileLogger(std::sync::Mutex<fs::File>);

impl log::Log for FileLogger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Info
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            if let Ok(mut f) = self.0.lock() {
                let _ = writeln!(f, "{} {} {}", protocol::time::now(), r.level(), r.args());
            }
        }
    }
    fn flush(&self) {}
}

fn init_logger(dir: &Path) {
    if let Ok(f) = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(dir.join("shim.log"))
    {
        let logger = Box::leak(Box::new(FileLogger(std::sync::Mutex::new(f))));
        if log::set_logger(logger).is_ok() {
            log::set_max_level(log::LevelFilter::Info);
        }
    }
}

fn chain(e: &anyhow::Error) -> String {
    format!("{e:#}")
}

pub fn main() -> i32 {
    let _ = nix::sys::prctl::set_name(c"hind-shim");
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hind-shim: {e:#}");
            return EXIT_ENGINE;
        }
    };
    let layout = Layout::new(&args.root);
    let dir = layout.container(&args.id);
    init_logger(&dir);
    let mut client = args.client_fd.map(|fd| {
        // SAFETY: the CLI passed this connected socket as fd `fd` and nothing
        // else in this process uses that number.
        unsafe { UnixStream::from_raw_fd(fd) }
    });
    match run(&layout, &args.id, &mut client) {
        Ok(()) => 0,
        Err((e, code)) => {
            let message = chain(&e);
            log::error!("container {}: {message}", args.id);
            if let Some(c) = client.as_mut() {
                let _ = frame::write(
                    c,
                    &Event::Failed {
                        message,
                        exit_code: code,
                    },
                );
            }
            code
        }
    }
}

type Failure = (anyhow::Error, i32);

/// A shim's containers and exec'd processes die with it: nothing else
/// could supervise them.
const SHIM_OPTIONS: launch::Options = launch::Options {
    kill_with_parent: true,
    preserve: Vec::new(),
};

fn engine<E: Into<anyhow::Error>>(e: E) -> Failure {
    (e.into(), EXIT_ENGINE)
}

/// Binds the control socket. Its full path may not fit in `sun_path`, so it
/// is bound through the run dir's fd (see `protocol::paths::Layout::socket`).
fn listen(layout: &Layout, id: &str) -> anyhow::Result<UnixListener> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&layout.run)
        .with_context(|| format!("create run dir {}", layout.run.display()))?;
    let dir = fs::File::open(&layout.run)
        .with_context(|| format!("open run dir {}", layout.run.display()))?;
    let name = paths::socket_name(id);
    let short = paths::via_dir_fd(&dir, &name);
    let _ = fs::remove_file(layout.run.join(&name));
    let listener = UnixListener::bind(&short)
        .with_context(|| format!("bind control socket {}", layout.run.join(&name).display()))?;
    // bind(2) makes the socket 0777 less the umask; only root may connect
    // (the run dir being 0700 already keeps others out).
    nix::sys::stat::fchmodat(
        Some(dir.as_raw_fd()),
        name.as_str(),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .with_context(|| format!("chmod control socket {}", layout.run.join(&name).display()))?;
    Ok(listener)
}

struct Pipes {
    child: launch::ChildStdio,
    io: supervisor::Io,
}

fn pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("create pipe")?;
    // A 1 MiB pipe (the default pipe-max-size) instead of 64 KiB: a chatty
    // container blocks less often and the shim reads bigger chunks. Best
    // effort: a lower limit or a full quota just keeps the default.
    let _ = nix::fcntl::fcntl(r.as_raw_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
    Ok((r, w))
}

fn stdio(terminal: bool, open_stdin: bool) -> anyhow::Result<Pipes> {
    if terminal {
        // init makes the pty inside the container; until then its stdio
        // leads nowhere.
        return Ok(Pipes {
            child: launch::ChildStdio::devnull().context("open /dev/null")?,
            io: supervisor::Io {
                stdout: None,
                stderr: None,
                stdin: None,
                pty: None,
            },
        });
    }
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (stdin_child, stdin_ours) = if open_stdin {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        // An empty pipe rather than the host's /dev/null: reading it gives
        // EOF just the same, and no fd of the container names a host file.
        let (r, _closed) = pipe()?;
        (r, None)
    };
    Ok(Pipes {
        child: launch::ChildStdio {
            stdin: stdin_child,
            stdout: out_w,
            stderr: err_w,
        },
        io: supervisor::Io {
            stdout: Some(out_r),
            stderr: Some(err_r),
            stdin: stdin_ours,
            pty: None,
        },
    })
}

/// Starts init once for `bundle`: clone, confine, configure, exec.
fn start_once(
    bundle: &spec::Bundle,
    cgroup: &cgroups::Cgroup,
    open_stdin: bool,
) -> Result<(nix::unistd::Pid, supervisor::Io), Failure> {
    let pipes = stdio(bundle.init.process.terminal, open_stdin).map_err(engine)?;
    let mut io = pipes.io;
    let mut created = launch::create(
        bundle,
        cgroup,
        pipes.child,
        &launch::init_path(),
        &SHIM_OPTIONS,
    )
    .map_err(|e| {
        let code = e.exit_code();
        (anyhow::Error::from(e), code)
    })?;
    if let Err(e) = launch::start(&mut created) {
        let _ = kill(created.pid, Signal::SIGKILL);
        let _ = waitpid(created.pid, None);
        let code = e.exit_code();
        return Err((e.into(), code));
    }
    io.pty = created.pty_master.take();
    Ok((created.pid, io))
}

fn mark_running(dir: &Path, pid: nix::unistd::Pid, restarts: u32) -> record::Result<Record> {
    let started = protocol::time::now();
    let shim_pid = std::process::id() as i32;
    record::update(dir, |r| {
        r.status = Status::Running;
        r.pid = pid.as_raw();
        r.shim_pid = shim_pid;
        r.started_at = Some(started.clone());
        r.exit_code = None;
        r.finished_at = None;
        r.oom_killed = false;
        r.error = None;
        r.restart_count = restarts;
    })
}

/// The setns helper's orders for one `hind exec`: the container's
/// namespaces and cgroup, its process settings with the request's on top.
fn exec_config(
    bundle: &spec::Bundle,
    init_pid: nix::unistd::Pid,
    cgroups: &[PathBuf],
    req: &protocol::control::ExecRequest,
) -> protocol::init::ExecConfig {
    use nix::sched::CloneFlags;
    let mut p = bundle.init.process.clone();
    p.args = req.args.clone();
    p.terminal = req.tty;
    p.console_size = req.console_size;
    protocol::env::merge(&mut p.env, &req.env);
    if req.tty && !p.env.iter().any(|e| e.starts_with("TERM=")) {
        p.env.push("TERM=xterm".into());
    }
    if let Some(cwd) = &req.cwd {
        p.cwd = PathBuf::from(cwd);
    }
    if req.user.is_some() {
        // The helper resolves the user inside the container and adds the
        // groups the container's /etc/group gives it to these.
        p.additional_gids = bundle.group_add.clone();
    }
    if req.privileged {
        let all: Vec<u8> = (0..=protocol::caps::last_cap()).collect();
        p.capabilities = Some(protocol::init::Capabilities {
            bounding: all.clone(),
            effective: all.clone(),
            permitted: all,
            inheritable: Vec::new(),
            ambient: Vec::new(),
        });
    }
    // Namespaces joined by path are the container's as much as new ones;
    // a new cgroup namespace is made by init, not at clone.
    let mut flags = bundle
        .join
        .iter()
        .fold(bundle.clone_flags, |acc, (f, _)| acc | *f);
    if bundle.init.new_cgroup_ns {
        flags |= CloneFlags::CLONE_NEWCGROUP;
    }
    let namespaces = launch::exec_namespaces(flags);
    protocol::init::ExecConfig {
        init_pid: init_pid.as_raw(),
        namespaces,
        cgroups: cgroups.to_vec(),
        process: p,
        user: req.user.clone(),
    }
}

/// Back-off before restart number `n` (from 0): 100 ms doubling, at most a
/// minute, back to 100 ms when the last run lasted 10 s or more (Docker's).
fn backoff(n: u32, ran: Duration) -> Duration {
    if ran >= Duration::from_secs(10) {
        return Duration::from_millis(100);
    }
    Duration::from_millis(100u64.saturating_mul(1 << n.min(10))).min(Duration::from_secs(60))
}

fn run(layout: &Layout, id: &str, client: &mut Option<UnixStream>) -> Result<(), Failure> {
    let dir = layout.container(id);
    // Only one shim per container, ever: a second `start` loses here.
    let _life = match record::LifeLock::try_acquire(&dir).map_err(engine)? {
        Some(l) => l,
        None => return Err(engine(anyhow!("container {id} is already running"))),
    };
    let rec = Record::load(&dir).map_err(engine)?;
    let bundle = spec::load(&dir, id, Some(&layout.seccomp_cache())).map_err(engine)?;
    let log = logfile::LogFile::open(&dir.join(paths::LOG), rec.log).map_err(engine)?;
    let listener = listen(layout, id).map_err(engine)?;
    let socket_path = layout.socket(id);
    let cleanup_socket = || {
        let _ = fs::remove_file(&socket_path);
    };
    let prepared = (|| {
        let cgroup = cgroups::Cgroup::new(&bundle.cgroups_path, id).map_err(engine)?;
        let sup = supervisor::Supervisor::new(listener, log)
            .map_err(|e| engine(anyhow::Error::from(e).context("set up the event loop")))?;
        Ok::<_, Failure>((cgroup, sup))
    })();
    let (cgroup, mut sup) = match prepared {
        Ok(x) => x,
        Err(e) => {
            cleanup_socket();
            return Err(e);
        }
    };
    let undo = |pid: Option<nix::unistd::Pid>| {
        if let Some(pid) = pid {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        let _ = cgroup.remove();
        cleanup_socket();
    };

    let (pid, io) = match start_once(&bundle, &cgroup, rec.open_stdin) {
        Ok(x) => x,
        Err(e) => {
            undo(None);
            return Err(e);
        }
    };
    let attached = mark_running(&dir, pid, 0)
        .map_err(anyhow::Error::from)
        .and_then(|_| {
            if let Some(c) = client.take() {
                sup.add_first_client(c)?;
            }
            sup.attach_process(pid, io)?;
            Ok(())
        });
    if let Err(e) = attached {
        undo(Some(pid));
        return Err(engine(e));
    }
    log::info!("container {id}: started, pid {pid}");
    sup.broadcast(&Event::Started { pid: pid.as_raw() });

    let mut restarts = 0;
    let mut started_at = Instant::now();
    let cgroup_dirs = protocol::cgroupfs::dirs(&bundle.cgroups_path);
    let init_path = launch::init_path();
    // Everything start-up needs has run: give its pages back.
    trim_memory();
    let (exit, oom_killed) = loop {
        let current = sup.pid();
        let mut exec = |req: &protocol::control::ExecRequest| {
            let pid =
                current.ok_or_else(|| ("the container is not running".to_string(), EXIT_ENGINE))?;
            let cfg = exec_config(&bundle, pid, &cgroup_dirs, req);
            let pipes = stdio(req.tty, req.stdin).map_err(|e| (chain(&e), EXIT_ENGINE))?;
            let mut io = pipes.io;
            let (pid, pty) = launch::exec(&cfg, pipes.child, &init_path, &SHIM_OPTIONS)
                .map_err(|e| (e.to_string(), e.exit_code()))?;
            io.pty = pty;
            Ok((pid, io))
        };
        let exit = match sup.run(&mut exec) {
            Ok(x) => x,
            Err(e) => {
                // The loop itself broke: the container must not outlive
                // its supervisor.
                log::error!("container {id}: event loop failed: {e}");
                if let Some(pid) = sup.pid() {
                    let _ = kill(pid, Signal::SIGKILL);
                    let _ = waitpid(pid, None);
                }
                break (supervisor::Exit { code: 128 + 9 }, false);
            }
        };
        let oom = cgroup.oom_killed();
        log::info!("container {id}: exited with {}", exit.code);
        if sup.stopping() || !rec.restart.should_restart(exit.code, restarts) {
            break (exit, oom);
        }
        let finished = protocol::time::now();
        if let Err(e) = record::update(&dir, |r| {
            r.status = Status::Restarting;
            r.pid = 0;
            r.exit_code = Some(exit.code);
            r.oom_killed = oom;
            r.finished_at = Some(finished.clone());
        }) {
            log::error!("container {id}: {e}");
        }
        sup.broadcast(&Event::Exited {
            exit_code: exit.code,
            oom_killed: oom,
        });
        match sup.idle(backoff(restarts, started_at.elapsed())) {
            Ok(true) => {}
            _ => break (exit, oom),
        }
        restarts += 1;
        match start_once(&bundle, &cgroup, rec.open_stdin) {
            Ok((pid, io)) => {
                started_at = Instant::now();
                if let Err(e) = mark_running(&dir, pid, restarts) {
                    log::error!("container {id}: {e}");
                }
                if let Err(e) = sup.attach_process(pid, io) {
                    log::error!("container {id}: {e}");
                    let _ = kill(pid, Signal::SIGKILL);
                }
                log::info!("container {id}: restarted ({restarts}), pid {pid}");
                sup.broadcast(&Event::Started { pid: pid.as_raw() });
            }
            Err((e, _)) => {
                log::error!("container {id}: restart failed: {}", chain(&e));
                let msg = chain(&e);
                let _ = record::update(&dir, |r| r.error = Some(msg.clone()));
                break (exit, oom);
            }
        }
    };

    // A log about to be deleted need not reach the disk.
    if let Err(e) = sup.close_log(!rec.auto_remove) {
        log::error!("container {id}: {e}");
    }
    if let Err(e) = cgroup.remove() {
        log::error!("container {id}: {e}");
    }
    let finished = protocol::time::now();
    if rec.auto_remove {
        if rec.network.as_ref().is_some_and(|n| n.owns_resources()) {
            release_network(layout, id);
        }
        match record::remove_files(layout, id, &rec.name) {
            Ok(()) => {
                // After the files: a project id is freed only once nothing
                // is charged to it.
                if let Some(q) = &rec.quota {
                    let project = q.project_id.to_string();
                    run_hind(layout, id, &["quota-release", id, &project]);
                }
                // Docker removes an --rm container's anonymous volumes
                // (`volume rm` keeps one another container took up).
                let anonymous = rec.mounts.iter().filter(|m| m.anonymous);
                let names: Vec<&str> = anonymous.filter_map(|m| m.name.as_deref()).collect();
                if !names.is_empty() {
                    let args = [&["volume", "rm", "-f"][..], &names].concat();
                    run_hind(layout, id, &args);
                }
            }
            Err(e) => log::error!("container {id}: {e}"),
        }
    } else if let Err(e) = record::update(&dir, |r| {
        r.status = Status::Exited;
        r.pid = 0;
        r.exit_code = Some(exit.code);
        r.oom_killed = oom_killed;
        r.finished_at = Some(finished.clone());
        r.restart_count = restarts;
    }) {
        log::error!("container {id}: {e}");
    }
    cleanup_socket();
    sup.finish(&Event::Exited {
        exit_code: exit.code,
        oom_killed,
    });
    Ok(())
}

/// Releases an `--rm` container's network (lease, veth, namespace,
/// published ports) through `hind net-release`: that is the engine's
/// business, and keeping netlink and nftables out of the shim keeps the
/// long-lived process small.
fn release_network(layout: &Layout, id: &str) {
    run_hind(layout, id, &["net-release", id]);
}

/// Runs `hind --root ROOT ARGS` (the hind next to this shim) and logs a
/// failure: the engine's own clean-up commands for `--rm` containers
/// (`net-release`, `quota-release`), kept out of the long-lived shim.
fn run_hind(layout: &Layout, id: &str, args: &[&str]) {
    let hind = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("hind")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("hind"));
    let status = std::process::Command::new(&hind)
        .arg("--root")
        .arg(&layout.root)
        .args(args)
        .stdin(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => log::error!("container {id}: {} {}: {s}", hind.display(), args[0]),
        Err(e) => log::error!("container {id}: run {}: {e}", hind.display()),
    }
}

/// Gives back what start-up needed and the long life does not: freed heap
/// (malloc_trim) and the pages of this binary and its libraries touched
/// while parsing the bundle and setting up the cgroup (madvise DONTNEED on
/// their read-only file mappings; the loop faults back in the few it runs).
/// Keeps the per-container cost of a shim near a megabyte.
fn trim_memory() {
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe { libc::malloc_trim(0) };
    let Ok(smaps) = fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut candidate: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or_default();
        if let Some((a, b)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            // A mapping header: "start-end perms offset dev inode path".
            let perms = f.next().unwrap_or_default();
            let inode = f.nth(2).unwrap_or("0");
            candidate = match (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                (Ok(a), Ok(b)) if inode != "0" && !perms.contains('w') && perms.ends_with('p') => {
                    Some((a, b))
                }
                _ => None,
            };
        } else if first == "Anonymous:" {
            // Only mappings without private copies: RELRO data was written
            // at load time and dropping it would bring back unrelocated
            // bytes from the file.
            if let (Some((a, b)), Some("0")) = (candidate.take(), f.next()) {
                // SAFETY: a read-only private file mapping of this process
                // with no private pages: dropping its pages only makes later
                // accesses fault them back in, with identical contents.
                unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
            }
        }
    }
}
