//! Running `hind` under the harness: every invocation has a deadline (the
//! child is SIGKILLed and the result marked timed out instead of hanging the
//! suite), stdout and stderr are collected by reader threads so a test can
//! watch them while the container runs, and a pty variant drives `-t`.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt, PtyMaster};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// What one finished `hind` invocation did.
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    /// Exit code, or 128+N when `hind` itself died of signal N.
    pub code: i32,
    /// The harness killed it at the deadline.
    pub timed_out: bool,
}

impl Output {
    fn new(status: ExitStatus, stdout: Vec<u8>, stderr: Vec<u8>, timed_out: bool) -> Output {
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        Output {
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            code,
            timed_out,
        }
    }

    /// Panics with the whole output unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Output {
        assert!(
            !self.timed_out,
            "hind timed out (killed by the harness):\n{self}"
        );
        assert_eq!(self.code, code, "unexpected exit code:\n{self}");
        self
    }

    /// Panics unless the exit code is 0.
    #[track_caller]
    pub fn expect_success(&self) -> &Output {
        self.expect_code(0)
    }

    /// Panics unless this is a hind failure: exit 125 and exactly one line
    /// on stderr, starting with `hind: ` and containing every one of
    /// `names` (the thing the user got wrong).
    #[track_caller]
    pub fn expect_hind_error(&self, code: i32, names: &[&str]) -> &Output {
        self.expect_code(code);
        self.expect_one_error_line(names)
    }

    /// Panics unless stderr is one line starting with `hind: ` that contains
    /// every one of `names`.
    #[track_caller]
    pub fn expect_one_error_line(&self, names: &[&str]) -> &Output {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected exactly one line on stderr:\n{self}"
        );
        assert!(
            lines[0].starts_with("hind: "),
            "error line must start with `hind: `:\n{self}"
        );
        for n in names {
            assert!(lines[0].contains(n), "error line must name {n:?}:\n{self}");
        }
        self
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "  exit code: {}", self.code)?;
        writeln!(f, "  timed out: {}", self.timed_out)?;
        writeln!(f, "  stdout: {:?}", self.stdout)?;
        write!(f, "  stderr: {:?}", self.stderr)
    }
}

/// Bytes read so far from one stream, and whether it reached EOF.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<(Vec<u8>, bool)>>);

impl Capture {
    fn start<R: Read + Send + 'static>(mut r: R) -> Capture {
        let cap = Capture::default();
        let c = cap.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => c.0.lock().unwrap().0.extend_from_slice(&buf[..n]),
                }
            }
            c.0.lock().unwrap().1 = true;
        });
        cap
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap().0).into_owned()
    }

    fn done(&self) -> bool {
        self.0.lock().unwrap().1
    }

    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.0.lock().unwrap().0)
    }
}

/// Waits for `child` until `deadline`, SIGKILLing it at the deadline.
/// Returns its status and whether it had to be killed.
fn wait_deadline(child: &mut Child, deadline: Instant) -> (ExitStatus, bool) {
    loop {
        if let Some(st) = child.try_wait().expect("wait for hind") {
            return (st, false);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            return (child.wait().expect("wait for killed hind"), true);
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// A `hind` process started in the background with piped stdio.
pub struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Capture,
    err: Capture,
    deadline: Instant,
}

impl Running {
    /// Spawns `cmd` with stdin, stdout and stderr piped; it is killed if it
    /// is still running `timeout` from now when waited for.
    pub fn spawn(mut cmd: Command, timeout: Duration) -> Running {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let out = Capture::start(child.stdout.take().expect("piped stdout"));
        let err = Capture::start(child.stderr.take().expect("piped stderr"));
        Running {
            stdin: child.stdin.take(),
            child,
            out,
            err,
            deadline: Instant::now() + timeout,
        }
    }

    /// Host pid of the `hind` process.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Sends `sig` to the `hind` process.
    pub fn signal(&self, sig: Signal) {
        kill(self.pid(), sig).unwrap_or_else(|e| panic!("kill {} {sig}: {e}", self.pid()));
    }

    /// Writes to hind's stdin.
    pub fn write_stdin(&mut self, data: &[u8]) {
        let s = self.stdin.as_mut().expect("stdin still open");
        s.write_all(data).expect("write hind stdin");
        s.flush().expect("flush hind stdin");
    }

    /// Closes hind's stdin (EOF for the container with `-i`).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    pub fn stdout_so_far(&self) -> String {
        self.out.text()
    }

    pub fn stderr_so_far(&self) -> String {
        self.err.text()
    }

    /// True when `hind` has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits up to `timeout` for `needle` on stdout; false if it did not
    /// come (or hind exited without printing it).
    pub fn wait_for_stdout(&mut self, needle: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if self.out.text().contains(needle) {
                return true;
            }
            if Instant::now() >= end || (self.exited() && self.out.done()) {
                return self.out.text().contains(needle);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Closes stdin (which lets a [`crate::TestEnv::spawn_held`] container
    /// finish) and waits for hind.
    pub fn release(mut self) -> Output {
        self.close_stdin();
        self.wait()
    }

    /// Waits for `hind` to exit (killing it at the deadline) and for its
    /// output streams to close (at most 5 s more: a leaked container holding
    /// the pipes must not hang the test; the leak check reports it).
    pub fn wait(mut self) -> Output {
        self.stdin = None;
        let (status, timed_out) = wait_deadline(&mut self.child, self.deadline);
        let end = Instant::now() + Duration::from_secs(5);
        while !(self.out.done() && self.err.done()) && Instant::now() < end {
            thread::sleep(Duration::from_millis(10));
        }
        Output::new(status, self.out.take(), self.err.take(), timed_out)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd` to completion with `input` on its stdin (then EOF).
pub fn run(cmd: Command, input: &[u8], timeout: Duration) -> Output {
    let mut r = Running::spawn(cmd, timeout);
    if !input.is_empty() {
        // The container may exit without reading; a broken pipe is fine.
        if let Some(s) = r.stdin.as_mut() {
            let _ = s.write_all(input);
        }
    }
    r.wait()
}

nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);

/// A `hind` process whose stdin, stdout and stderr are the slave side of a
/// fresh pty that is also its controlling terminal, as when a person runs
/// `hind run -t` in a terminal emulator. The test holds the master.
pub struct PtyRunning {
    child: Child,
    master: Arc<PtyMaster>,
    out: Capture,
    deadline: Instant,
}

impl PtyRunning {
    /// Spawns `cmd` on a new pty of `rows` x `cols`.
    pub fn spawn(mut cmd: Command, rows: u16, cols: u16, timeout: Duration) -> PtyRunning {
        // O_CLOEXEC on both sides: another test thread forking at the same
        // moment must not inherit them, or the master never sees EOF.
        let master =
            posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).expect("posix_openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname_r(&master).expect("ptsname_r");
        let slave: OwnedFd = nix::fcntl::open(
            name.as_str(),
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        // SAFETY: `open` just returned this fd and nothing else owns it.
        .map(|fd| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
        .expect("open pty slave");
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which
        // points at a live local; the fd is a valid open pty.
        unsafe { set_winsize(slave.as_raw_fd(), &ws) }.expect("TIOCSWINSZ");
        let dup = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup pty slave"));
        cmd.stdin(dup(&slave))
            .stdout(dup(&slave))
            .stderr(dup(&slave));
        // SAFETY: the closure runs in the forked child before exec and only
        // calls setsid(2) and ioctl(2), both async-signal-safe; it touches no
        // memory shared with other threads.
        unsafe {
            cmd.pre_exec(take_stdin_as_ctty);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        drop(slave);
        let master = Arc::new(master);
        let reader = ArcReader(master.clone());
        PtyRunning {
            child,
            master,
            out: Capture::start(reader),
            deadline: Instant::now() + timeout,
        }
    }

    /// Everything read from the master so far (`\r\n` line ends).
    pub fn output_so_far(&self) -> String {
        self.out.text()
    }

    /// Waits up to `timeout` for `needle` in the terminal output.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if self.out.text().contains(needle) {
                return true;
            }
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if Instant::now() >= end || (exited && self.out.done()) {
                return self.out.text().contains(needle);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types `data` into the terminal.
    pub fn write(&self, data: &[u8]) {
        (&*self.master).write_all(data).expect("write pty master");
    }

    /// Resizes the terminal; the kernel sends SIGWINCH to hind.
    pub fn resize(&self, rows: u16, cols: u16) {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one `winsize` from a live local; the
        // master fd is open for the lifetime of `self`.
        unsafe { set_winsize(self.master.as_raw_fd(), &ws) }.expect("TIOCSWINSZ");
    }

    /// Host pid of the `hind` process.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// The terminal's current settings (shared by master and slave), to
    /// see whether hind put the caller's terminal into raw mode.
    pub fn termios(&self) -> nix::sys::termios::Termios {
        nix::sys::termios::tcgetattr(&*self.master).expect("tcgetattr on pty master")
    }

    /// Waits for hind to exit (killed at the deadline) and for the terminal
    /// output to drain; returns the exit code (128+N for a signal), the
    /// output and whether it timed out.
    pub fn wait(mut self) -> (i32, String, bool) {
        let (status, timed_out) = wait_deadline(&mut self.child, self.deadline);
        let end = Instant::now() + Duration::from_secs(5);
        while !self.out.done() && Instant::now() < end {
            thread::sleep(Duration::from_millis(10));
        }
        let o = Output::new(status, self.out.take(), Vec::new(), timed_out);
        (o.code, o.stdout, timed_out)
    }

    /// [`PtyRunning::wait`], plus the terminal settings hind left behind.
    pub fn wait_with_termios(self) -> (i32, String, bool, nix::sys::termios::Termios) {
        let master = self.master.clone();
        let (code, text, timed_out) = self.wait();
        let t = nix::sys::termios::tcgetattr(&*master).expect("tcgetattr on pty master");
        (code, text, timed_out, t)
    }
}

impl Drop for PtyRunning {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// In the child before exec: a new session whose controlling terminal is
/// the pty on fd 0, as a login shell would have.
fn take_stdin_as_ctty() -> std::io::Result<()> {
    nix::unistd::setsid()?;
    // SAFETY: TIOCSCTTY takes an int argument, passed by value; fd 0 is the
    // pty slave that Command dup2'ed there.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Reads the shared pty master; ends on EIO, which is what the master gets
/// once every slave fd is closed.
struct ArcReader(Arc<PtyMaster>);

impl Read for ArcReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        (&*self.0).read(buf)
    }
}
