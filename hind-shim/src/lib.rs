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
pub mod launch;
pub mod logfile;
pub mod spec;
pub mod supervisor;

use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

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
    let short = format!("/proc/self/fd/{}/{name}", dir.as_raw_fd());
    let _ = fs::remove_file(layout.run.join(&name));
    UnixListener::bind(&short)
        .with_context(|| format!("bind control socket {}", layout.run.join(&name).display()))
}

struct Pipes {
    child: launch::ChildStdio,
    io: supervisor::Io,
}

fn pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("create pipe")
}

fn stdio(terminal: bool, open_stdin: bool) -> anyhow::Result<Pipes> {
    let devnull = || -> anyhow::Result<OwnedFd> {
        Ok(fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .context("open /dev/null")?
            .into())
    };
    if terminal {
        // init makes the pty inside the container; until then its stdio
        // leads nowhere.
        return Ok(Pipes {
            child: launch::ChildStdio {
                stdin: devnull()?,
                stdout: devnull()?,
                stderr: devnull()?,
            },
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
        (devnull()?, None)
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

fn run(layout: &Layout, id: &str, client: &mut Option<UnixStream>) -> Result<(), Failure> {
    let dir = layout.container(id);
    let rec = Record::load(&dir).map_err(engine)?;
    let bundle = spec::load(&dir, id).map_err(engine)?;
    let log = logfile::LogFile::open(&dir.join(paths::LOG)).map_err(engine)?;
    let listener = listen(layout, id).map_err(engine)?;
    let socket_path = layout.socket(id);
    let cleanup_socket = || {
        let _ = fs::remove_file(&socket_path);
    };

    let pipes = match stdio(bundle.init.process.terminal, rec.open_stdin) {
        Ok(p) => p,
        Err(e) => {
            cleanup_socket();
            return Err(engine(e));
        }
    };
    let cgroup = match cgroups::Cgroup::new(&bundle.cgroups_path, id) {
        Ok(c) => c,
        Err(e) => {
            cleanup_socket();
            return Err(engine(e));
        }
    };
    // Undoes a started init: kill and reap it, drop its cgroup and socket.
    let undo = |pid: nix::unistd::Pid| {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        let _ = cgroup.remove();
        cleanup_socket();
    };
    let mut io = pipes.io;
    let mut created = match launch::create(&bundle, &cgroup, pipes.child, &launch::init_path()) {
        Ok(c) => c,
        Err(e) => {
            cleanup_socket();
            let code = e.exit_code();
            return Err((e.into(), code));
        }
    };
    if let Err(e) = launch::start(&mut created) {
        undo(created.pid);
        let code = e.exit_code();
        return Err((e.into(), code));
    }
    io.pty = created.pty_master.take();
    let pid = created.pid;
    drop(created);

    let started = protocol::time::now();
    let shim_pid = std::process::id() as i32;
    if let Err(e) = record::update(&dir, |r| {
        r.status = Status::Running;
        r.pid = pid.as_raw();
        r.shim_pid = shim_pid;
        r.started_at = Some(started.clone());
        r.exit_code = None;
        r.finished_at = None;
        r.oom_killed = false;
        r.error = None;
    }) {
        undo(pid);
        return Err(engine(e));
    }

    let mut sup = match supervisor::Supervisor::new(listener, pid, io, log, client) {
        Ok(s) => s,
        Err(e) => {
            undo(pid);
            return Err(engine(
                anyhow::Error::from(e).context("set up the event loop"),
            ));
        }
    };
    log::info!("container {id}: started, pid {pid}");
    sup.broadcast(&Event::Started { pid: pid.as_raw() });
    let exit = match sup.run() {
        Ok(x) => x,
        Err(e) => {
            // The loop itself broke: make sure the container does not
            // outlive its supervisor.
            log::error!("container {id}: event loop failed: {e}");
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            supervisor::Exit { code: 128 + 9 }
        }
    };

    if let Err(e) = sup.log().sync() {
        log::error!("container {id}: {e}");
    }
    let oom_killed = cgroup.oom_killed();
    if let Err(e) = cgroup.remove() {
        log::error!("container {id}: {e}");
    }
    let finished = protocol::time::now();
    if rec.auto_remove {
        if let Err(e) = record::remove_files(layout, id, &rec.name) {
            log::error!("container {id}: {e}");
        }
    } else if let Err(e) = record::update(&dir, |r| {
        r.status = Status::Exited;
        r.pid = 0;
        r.exit_code = Some(exit.code);
        r.oom_killed = oom_killed;
        r.finished_at = Some(finished.clone());
    }) {
        log::error!("container {id}: {e}");
    }
    cleanup_socket();
    log::info!("container {id}: exited with {}", exit.code);
    sup.finish(&Event::Exited {
        exit_code: exit.code,
        oom_killed,
    });
    Ok(())
}
