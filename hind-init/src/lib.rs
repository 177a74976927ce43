//! The PID 1 side of a container. The shim clones this binary into fresh
//! mount, pid, uts, ipc, cgroup and network namespaces with the init socket
//! at fd 3 ([`protocol::init::INIT_SOCKET_FD`]); everything here runs before
//! the user's command exists, in one thread, and reports the first failure
//! over that socket with the exit code the CLI should give (125, 126, 127).

pub mod copyup;
pub mod exec;
pub mod hooks;
pub mod process;
pub mod rootfs;
pub mod sys;

use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};

use protocol::init::{FromInit, InitConfig, ToInit, INIT_SOCKET_ENV, INIT_SOCKET_FD};
use protocol::{frame, EXIT_ENGINE};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("make hind-init non-dumpable")]
    NonDumpable(#[source] nix::Error),
    #[error("read config from the shim")]
    ReadConfig(#[source] frame::Error),
    #[error("expected {expected} from the shim, got {received}")]
    UnexpectedMessage {
        expected: &'static str,
        received: String,
    },
    #[error(transparent)]
    Rootfs(#[from] rootfs::Error),
    #[error(transparent)]
    Process(#[from] process::Error),
    #[error(transparent)]
    Exec(#[from] exec::Error),
    #[error("receive the start socket")]
    RecvListener(#[source] std::io::Error),
    #[error("the start socket did not come with its message")]
    NoListener,
    #[error("wait for `start` on the start socket")]
    Accept(#[source] std::io::Error),
    #[error(transparent)]
    Hook(#[from] hooks::Error),
}

impl Error {
    fn exit_code(&self) -> i32 {
        match self {
            Error::Process(e) => e.exit_code(),
            Error::Exec(e) => e.exit_code(),
            _ => EXIT_ENGINE,
        }
    }
}

/// Formats an error with its whole `source()` chain on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

pub fn main() {
    // Where the socket is: 3, or after the fds preserved for the command.
    let fd: RawFd = std::env::var(INIT_SOCKET_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(INIT_SOCKET_FD);
    // SAFETY: the shim placed the init socket at this fd for us; nothing
    // else in this process owns it.
    let mut sock = unsafe { UnixStream::from_raw_fd(fd) };
    let _ = nix::sys::prctl::set_name(c"hind-init");
    let err = match run(&mut sock) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let code = err.exit_code();
    let _ = frame::write(
        &mut sock,
        &FromInit::Failed {
            message: chain(&err),
            exit_code: code,
        },
    );
    std::process::exit(code);
}

fn run(sock: &mut UnixStream) -> Result<std::convert::Infallible, Error> {
    // Everything before the command's exec talks over `sock`; a detached
    // create swaps in the connection of `start` for the last exchange.
    // Until it execs the user's command this process is hind's code inside
    // the container's pid namespace. Non-dumpable, it cannot be ptraced by
    // the container and its /proc/PID/{exe,fd,cwd,root,mem,environ} cannot
    // be opened from there (proc(5), ptrace(2) "access mode checking"): a
    // second wall, after the sealed memfd it runs from, against runc
    // CVE-2019-5736. execve(2) of the user's command makes it dumpable again.
    nix::sys::prctl::set_dumpable(false).map_err(Error::NonDumpable)?;
    let cfg: InitConfig = match frame::read(sock).map_err(Error::ReadConfig)? {
        ToInit::Config(c) => *c,
        ToInit::Exec(c) => return Ok(exec::run(sock, *c)?),
        other => {
            return Err(Error::UnexpectedMessage {
                expected: "Config",
                received: format!("{other:?}"),
            })
        }
    };
    rootfs::setup(&cfg)?;
    let prepared = process::prepare(&cfg, sock)?;
    frame::write(sock, &FromInit::Created).map_err(|e| process::Error::Report(Box::new(e)))?;
    match read_with_fd(sock)? {
        (ToInit::Start, _) => {}
        (ToInit::Detach, Some(listener)) => {
            // `hind-runc create` has exited; `hind-runc start` connects
            // here. Its connection replaces the creator's socket, so the
            // exec (close-on-exec) or a failure is reported to `start`.
            let (conn, _) = listener.accept().map_err(Error::Accept)?;
            drop(listener);
            *sock = conn;
            match frame::read(sock) {
                Ok(ToInit::Start) => {}
                Ok(other) => {
                    return Err(Error::UnexpectedMessage {
                        expected: "Start",
                        received: format!("{other:?}"),
                    })
                }
                Err(frame::Error::Closed) => std::process::exit(EXIT_ENGINE),
                Err(e) => return Err(Error::ReadConfig(e)),
            }
        }
        (ToInit::Detach, None) => return Err(Error::NoListener),
        (other, _) => {
            return Err(Error::UnexpectedMessage {
                expected: "Start",
                received: format!("{other:?}"),
            })
        }
    }
    hooks::run_all(
        "startContainer",
        &cfg.hooks.start_container,
        &cfg.hooks.start_state,
    )?;
    Ok(process::exec(prepared)?)
}

/// Reads one frame, and the fd sent along with it (a listener), if any.
fn read_with_fd(sock: &mut UnixStream) -> Result<(ToInit, Option<UnixListener>), Error> {
    let mut fd = None;
    match frame::FdReader::default().recv(sock, &mut fd) {
        Ok(m) => Ok((m, fd.map(UnixListener::from))),
        // The shim is gone or gave up: nobody supervises us.
        Err(frame::Error::Closed) => std::process::exit(EXIT_ENGINE),
        Err(frame::Error::Io(e)) => Err(Error::RecvListener(e)),
        Err(e) => Err(Error::ReadConfig(e)),
    }
}
