//! The PID 1 side of a container. The shim clones this binary into fresh
//! mount, pid, uts, ipc, cgroup and network namespaces with the init socket
//! at fd 3 ([`protocol::init::INIT_SOCKET_FD`]); everything here runs before
//! the user's command exists, in one thread, and reports the first failure
//! over that socket with the exit code the CLI should give (125, 126, 127).

pub mod copyup;
pub mod exec;
pub mod process;
pub mod rootfs;
pub mod sys;

use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;

use protocol::init::{FromInit, InitConfig, ToInit, INIT_SOCKET_FD};
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
    // SAFETY: fd 3 is the init socket the shim placed there for us; nothing
    // else in this process owns it.
    let mut sock = unsafe { UnixStream::from_raw_fd(INIT_SOCKET_FD) };
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
    match frame::read(sock) {
        Ok(ToInit::Start) => {}
        // The shim is gone or gave up: there is nobody to supervise us.
        Err(frame::Error::Closed) => std::process::exit(EXIT_ENGINE),
        Ok(other) => {
            return Err(Error::UnexpectedMessage {
                expected: "Start",
                received: format!("{other:?}"),
            })
        }
        Err(e) => return Err(Error::ReadConfig(e)),
    }
    Ok(process::exec(prepared)?)
}
