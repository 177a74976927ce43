//! Starting a container's `hind-shim` so that it outlives this CLI: fork,
//! setsid, fork again and exec, leaving the shim a child of init (or of the
//! nearest subreaper) in a session of its own, with no terminal. The CLI
//! keeps one end of a socket pair whose other end the shim gets as its
//! first client.

use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use protocol::paths::Layout;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("create the shim's socket pair")]
    SocketPair(#[source] io::Error),
    #[error("fork the shim")]
    Fork(#[source] nix::Error),
    #[error("hind-shim not found next to {0} or in /usr/local/bin")]
    NotFound(PathBuf),
    #[error("the intermediate shim process failed ({0:?})")]
    Intermediate(WaitStatus),
}

pub type Result<T> = std::result::Result<T, Error>;

/// fd number at which the shim finds its first client.
const CLIENT_FD: i32 = 3;

pub fn shim_path() -> Result<PathBuf> {
    let exe = std::env::current_exe().unwrap_or_default();
    let near = exe.parent().map(|d| d.join("hind-shim"));
    match near {
        Some(p) if p.exists() => Ok(p),
        _ => {
            let p = PathBuf::from("/usr/local/bin/hind-shim");
            if p.exists() {
                Ok(p)
            } else {
                Err(Error::NotFound(exe))
            }
        }
    }
}

/// Starts the shim for container `id`; returns the CLI's end of its first
/// client connection.
pub fn spawn(layout: &Layout, id: &str) -> Result<UnixStream> {
    let path = shim_path()?;
    let (ours, theirs) = UnixStream::pair().map_err(Error::SocketPair)?;
    let c = |s: &[u8]| CString::new(s).expect("no NUL in argument");
    let prog = c(path.as_os_str().as_bytes());
    let argv = [
        c(b"hind-shim"),
        c(b"--root"),
        c(layout.root.as_os_str().as_bytes()),
        c(b"--id"),
        c(id.as_bytes()),
        c(b"--client-fd"),
        c(CLIENT_FD.to_string().as_bytes()),
    ];
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k == "PATH" || k == "RUST_BACKTRACE")
        .map(|(k, v)| {
            let mut s = k.as_bytes().to_vec();
            s.push(b'=');
            s.extend_from_slice(v.as_bytes());
            c(&s)
        })
        .collect();
    let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    let sock = theirs.as_raw_fd();

    // SAFETY: the CLI is single-threaded here (no thread has been spawned
    // yet), and both children only make async-signal-safe calls on data
    // prepared above before execve or _exit.
    match unsafe { fork() }.map_err(Error::Fork)? {
        ForkResult::Child => {
            // SAFETY: async-signal-safe syscalls only, see above.
            unsafe {
                libc::setsid();
                match libc::fork() {
                    0 => {
                        let moved = libc::fcntl(sock, libc::F_DUPFD, 10);
                        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                        if moved < 0 || null < 0 {
                            libc::_exit(125);
                        }
                        libc::dup2(null, 0);
                        libc::dup2(null, 1);
                        libc::dup2(null, 2);
                        libc::dup2(moved, CLIENT_FD);
                        // The shim inherits nothing else of ours.
                        libc::syscall(libc::SYS_close_range, CLIENT_FD + 1, u32::MAX, 0);
                        libc::execve(prog.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr());
                        libc::_exit(125);
                    }
                    -1 => libc::_exit(125),
                    _ => libc::_exit(0),
                }
            }
        }
        ForkResult::Parent { child } => {
            drop(theirs);
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, 0)) => Ok(ours),
                Ok(other) => Err(Error::Intermediate(other)),
                Err(e) => Err(Error::Fork(e)),
            }
        }
    }
}
