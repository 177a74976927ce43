//! The foreground side of `hind run`: waits for the shim's verdict, then
//! relays the container's output to this process's stdout and stderr,
//! stdin to the container (`-i`), window size changes (`-t`) and signals,
//! and returns the container's exit code.
//!
//! Three threads, each blocking on one thing: the main thread reads events
//! from the shim, one thread reads stdin, one waits for signals. Writes to
//! the shim go whole frames at a time under a mutex.

use std::fs::File;
use std::io::{self, Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use nix::sys::termios::{self, SetArg, Termios};
use protocol::control::{Event, Request, Stream};
use protocol::{frame, EXIT_ENGINE};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The shim's report that the container could not be started.
    #[error("{message}")]
    Failed { message: String, exit_code: i32 },
    #[error("talk to the container's shim")]
    Talk(#[source] frame::Error),
    #[error("the container's shim exited without a report (see shim.log in the container's dir)")]
    ShimGone,
    #[error("the container's shim sent {0} before starting it")]
    Unexpected(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Failed { exit_code, .. } => *exit_code,
            _ => EXIT_ENGINE,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Waits for `Started` (returning the pid) or `Failed`.
pub fn wait_started(sock: &mut UnixStream) -> Result<i32> {
    match frame::read::<Event, _>(sock) {
        Ok(Event::Started { pid }) => Ok(pid),
        Ok(Event::Failed { message, exit_code }) => Err(Error::Failed { message, exit_code }),
        Ok(other) => Err(Error::Unexpected(format!("{other:?}"))),
        Err(frame::Error::Closed) => Err(Error::ShimGone),
        Err(e) => Err(Error::Talk(e)),
    }
}

/// Puts the terminal on fd 0 in raw mode until dropped.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        let stdin = io::stdin();
        let saved = termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

/// The caller's window size, from whichever of stdin/stdout is a terminal.
pub fn window_size() -> Option<(u16, u16)> {
    for fd in [0, 1, 2] {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes a winsize into `ws`, which outlives the call.
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_row > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

fn send(w: &Mutex<UnixStream>, req: &Request) -> bool {
    match frame::encode(req) {
        Ok(buf) => w
            .lock()
            .map(|mut s| s.write_all(&buf).is_ok())
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Signals forwarded to the container, as Docker's sig-proxy does: all
/// that a user or a supervisor sends to stop or poke a process.
const FORWARDED: &[i32] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGTERM,
    libc::SIGALRM,
    libc::SIGCONT,
];

/// Relays until the container exits; returns its exit code.
pub fn relay(sock: UnixStream, tty: bool, stdin: bool) -> Result<i32> {
    let writer = Arc::new(Mutex::new(
        sock.try_clone().map_err(|e| Error::Talk(e.into()))?,
    ));
    let mut reader = sock;

    let mut sigs: Vec<i32> = FORWARDED.to_vec();
    if tty {
        sigs.push(libc::SIGWINCH);
    }
    if let Ok(mut signals) = signal_hook::iterator::Signals::new(&sigs) {
        let w = Arc::clone(&writer);
        std::thread::spawn(move || {
            for s in signals.forever() {
                let req = if s == libc::SIGWINCH {
                    match window_size() {
                        Some((rows, cols)) => Request::Resize { rows, cols },
                        None => continue,
                    }
                } else {
                    Request::Signal(s)
                };
                if !send(&w, &req) {
                    return;
                }
            }
        });
    }

    // Raw mode only when the terminal's input goes to the container.
    let _raw = if tty && stdin && nix::unistd::isatty(0).unwrap_or(false) {
        RawMode::enter()
    } else {
        None
    };

    if stdin {
        let w = Arc::clone(&writer);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 32 * 1024];
            let mut input = io::stdin().lock();
            loop {
                match input.read(&mut buf) {
                    Ok(0) => {
                        send(&w, &Request::StdinClose);
                        return;
                    }
                    Ok(n) => {
                        if !send(&w, &Request::Stdin(buf[..n].to_vec())) {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return,
                }
            }
        });
    }

    // Unbuffered writes straight to fds 1 and 2: each chunk from the shim
    // is already a large buffer.
    // SAFETY: fds 1 and 2 stay open for the life of the process; ManuallyDrop
    // keeps these Files from closing them.
    let mut out = ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
    // SAFETY: as above.
    let mut err = ManuallyDrop::new(unsafe { File::from_raw_fd(2) });
    let mut out_ok = true;
    let mut err_ok = true;
    let mut dec = frame::Decoder::default();
    let mut buf = vec![0u8; 256 * 1024];
    let mut code = None;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The shim is gone after telling us the exit: that is the end.
            Err(e) if code.is_some() && e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(Error::Talk(e.into())),
        };
        dec.feed(&buf[..n]);
        while let Some(body) = dec.next_body().map_err(Error::Talk)? {
            if let Some((stream, data)) = frame::decode_output(body) {
                // A closed stdout (`| head`) stops that stream only; the
                // container runs on, as with Docker.
                let (w, ok) = match stream {
                    Stream::Stdout => (&mut out, &mut out_ok),
                    Stream::Stderr => (&mut err, &mut err_ok),
                };
                if *ok && w.write_all(data).is_err() {
                    *ok = false;
                }
                continue;
            }
            match frame::decode::<Event>(body).map_err(Error::Talk)? {
                Event::Exited { exit_code, .. } => code = Some(exit_code),
                Event::Error(m) => eprintln!("hind: {m}"),
                _ => {}
            }
        }
    }
    let _ = out.as_raw_fd();
    code.ok_or(Error::ShimGone)
}
