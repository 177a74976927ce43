//! The shim's event loop: one thread, one mio poll over the control socket,
//! the container's output (pipes or pty master), its stdin, the clients and
//! a signal-hook pipe for SIGCHLD. Output goes to the log file first, then
//! to attached clients, each with a bounded buffer: while a client's buffer
//! is over the mark the loop stops reading the container's output (the
//! container then blocks in write), so an attached client never loses bytes
//! and the shim's memory stays bounded. The loop never blocks on a client.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use mio::net::{UnixListener, UnixStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use protocol::control::{Event, Hello, Request, Stream};
use protocol::{frame, PROTOCOL_VERSION};

use crate::logfile::LogFile;

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);
const STDOUT: Token = Token(2);
const STDERR: Token = Token(3);
const STDIN: Token = Token(4);
const FIRST_CLIENT: usize = 16;

/// Above this many queued bytes for one client, output reading pauses.
const HIGH_WATER: usize = 1 << 20;
/// How long to keep draining output after init exited, for bytes still in
/// flight from processes that held the pipes.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
const READ_CHUNK: usize = 64 * 1024;

struct Output {
    fd: OwnedFd,
    stream: Stream,
    ready: bool,
    /// A pty master: EIO means the last slave closed.
    pty: bool,
}

struct Client {
    sock: UnixStream,
    dec: frame::Decoder,
    out: Vec<u8>,
    sent: usize,
    attached: bool,
    stdin: bool,
    /// Wants [`Event::Exited`] (wait, stop) without the output.
    waiter: bool,
    gone: bool,
}

impl Client {
    fn new(sock: UnixStream) -> Client {
        Client {
            sock,
            dec: frame::Decoder::default(),
            out: Vec::new(),
            sent: 0,
            attached: false,
            stdin: false,
            waiter: false,
            gone: false,
        }
    }

    fn pending(&self) -> usize {
        self.out.len() - self.sent
    }

    fn queue(&mut self, ev: &Event) {
        if self.gone {
            return;
        }
        if frame::encode_into(ev, &mut self.out).is_ok() {
            self.flush();
        }
    }

    fn flush(&mut self) {
        while self.sent < self.out.len() {
            match self.sock.write(&self.out[self.sent..]) {
                Ok(0) => {
                    self.gone = true;
                    return;
                }
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.gone = true;
                    return;
                }
            }
        }
        self.out.clear();
        self.sent = 0;
    }
}

/// How the container ended.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub code: i32,
}

pub struct Supervisor {
    poll: Poll,
    listener: UnixListener,
    signals: UnixStream,
    /// The container's init while one runs.
    pid: Option<Pid>,
    outputs: Vec<Option<Output>>,
    stdin: Option<OwnedFd>,
    stdin_buf: Vec<u8>,
    stdin_close: bool,
    pty: Option<OwnedFd>,
    clients: Vec<Option<Client>>,
    log: LogFile,
    exit: Option<(Exit, Instant)>,
    /// A stop was asked for: no restart, and SIGKILL at this instant.
    stop: Option<Instant>,
    /// Kept between reads; allocated on first output.
    read_buf: Vec<u8>,
    frame_buf: Vec<u8>,
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

pub struct Io {
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    pub stdin: Option<OwnedFd>,
    /// With a terminal: the master, both output and input.
    pub pty: Option<OwnedFd>,
}

impl Supervisor {
    pub fn new(listener: std::os::unix::net::UnixListener, log: LogFile) -> io::Result<Supervisor> {
        let poll = Poll::new()?;
        listener.set_nonblocking(true)?;
        let mut listener = UnixListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;

        let (sig_rx, sig_tx) = std::os::unix::net::UnixStream::pair()?;
        sig_rx.set_nonblocking(true)?;
        sig_tx.set_nonblocking(true)?;
        signal_hook::low_level::pipe::register(signal_hook::consts::SIGCHLD, sig_tx)?;
        let mut signals = UnixStream::from_std(sig_rx);
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        Ok(Supervisor {
            poll,
            listener,
            signals,
            pid: None,
            outputs: vec![None, None],
            stdin: None,
            stdin_buf: Vec::new(),
            stdin_close: false,
            pty: None,
            clients: Vec::new(),
            log,
            exit: None,
            stop: None,
            read_buf: Vec::new(),
            frame_buf: Vec::new(),
        })
    }

    /// Adds the client the shim was born with: attached, stdin included.
    pub fn add_first_client(&mut self, c: std::os::unix::net::UnixStream) -> io::Result<()> {
        c.set_nonblocking(true)?;
        let idx = self.add_client(UnixStream::from_std(c))?;
        if let Some(Some(c)) = self.clients.get_mut(idx) {
            c.attached = true;
            c.stdin = true;
        }
        Ok(())
    }

    /// Takes over a freshly started init and its stdio.
    pub fn attach_process(&mut self, pid: Pid, io: Io) -> io::Result<()> {
        self.pid = Some(pid);
        self.exit = None;
        self.stdin_buf.clear();
        self.stdin_close = false;
        let mut outputs = vec![None, None];
        let mut stdin = io.stdin;
        let mut pty = None;
        if let Some(master) = io.pty {
            set_nonblocking(&master)?;
            // A second fd for writing, so reads and writes register apart.
            let writer = master.try_clone()?;
            outputs[0] = Some(Output {
                fd: master,
                stream: Stream::Stdout,
                ready: false,
                pty: true,
            });
            pty = Some(writer);
            stdin = None;
        } else {
            for (i, (fd, stream)) in [(io.stdout, Stream::Stdout), (io.stderr, Stream::Stderr)]
                .into_iter()
                .enumerate()
            {
                if let Some(fd) = fd {
                    set_nonblocking(&fd)?;
                    outputs[i] = Some(Output {
                        fd,
                        stream,
                        ready: false,
                        pty: false,
                    });
                }
            }
        }
        for (i, o) in outputs.iter().enumerate() {
            if let Some(o) = o {
                self.poll.registry().register(
                    &mut SourceFd(&o.fd.as_raw_fd()),
                    Token(STDOUT.0 + i),
                    Interest::READABLE,
                )?;
            }
        }
        if let Some(fd) = pty.as_ref().or(stdin.as_ref()) {
            set_nonblocking(fd)?;
            self.poll.registry().register(
                &mut SourceFd(&fd.as_raw_fd()),
                STDIN,
                Interest::WRITABLE,
            )?;
        }
        self.outputs = outputs;
        self.stdin = stdin;
        self.pty = pty;
        Ok(())
    }

    /// Whether a stop was requested (the restart policy no longer applies).
    pub fn stopping(&self) -> bool {
        self.stop.is_some()
    }

    fn add_client(&mut self, mut sock: UnixStream) -> io::Result<usize> {
        let idx = match self.clients.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.clients.push(None);
                self.clients.len() - 1
            }
        };
        self.poll.registry().register(
            &mut sock,
            Token(FIRST_CLIENT + idx),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.clients[idx] = Some(Client::new(sock));
        Ok(idx)
    }

    /// Sends a chunk of output to the attached clients, encoded once.
    fn broadcast_output(&mut self, stream: Stream, data: &[u8]) {
        let mut frame = std::mem::take(&mut self.frame_buf);
        frame.clear();
        frame::encode_output(&mut frame, stream, data);
        for c in self.clients.iter_mut().flatten() {
            if c.attached && !c.gone {
                c.out.extend_from_slice(&frame);
                c.flush();
            }
        }
        self.frame_buf = frame;
    }

    /// Sends `ev` to the clients that asked for the container's streams
    /// (and an exit to those waiting for one).
    pub fn broadcast(&mut self, ev: &Event) {
        let exit = matches!(ev, Event::Exited { .. });
        for c in self.clients.iter_mut().flatten() {
            if c.attached || (exit && c.waiter) {
                c.queue(ev);
            }
        }
    }

    /// Runs until the container has exited and its output is drained.
    pub fn run(&mut self) -> io::Result<Exit> {
        let mut events = Events::with_capacity(64);
        // The container may have exited before the SIGCHLD handler existed.
        self.reap();
        loop {
            if let (Some(at), Some(pid), None) = (self.stop, self.pid, self.exit) {
                if Instant::now() >= at {
                    let _ = kill(pid, Signal::SIGKILL);
                }
            }
            let deadlines = [
                self.exit.map(|(_, t)| t + DRAIN_GRACE),
                self.stop.filter(|_| self.exit.is_none()),
            ];
            let timeout = deadlines
                .into_iter()
                .flatten()
                .min()
                .map(|t| t.saturating_duration_since(Instant::now()));
            self.poll_once(&mut events, timeout)?;
            if let Some((exit, at)) = self.exit {
                let drained = self.outputs.iter().all(Option::is_none);
                if drained || at.elapsed() >= DRAIN_GRACE {
                    for i in 0..self.outputs.len() {
                        self.close_output(i);
                    }
                    self.pty = None;
                    self.stdin = None;
                    self.pid = None;
                    return Ok(exit);
                }
            }
        }
    }

    /// Serves clients for `dur` with no container running (the restart
    /// back-off). Returns false when a stop ends the wait early.
    pub fn idle(&mut self, dur: Duration) -> io::Result<bool> {
        let mut events = Events::with_capacity(64);
        let end = Instant::now() + dur;
        while Instant::now() < end {
            if self.stop.is_some() {
                return Ok(false);
            }
            self.poll_once(
                &mut events,
                Some(end.saturating_duration_since(Instant::now())),
            )?;
        }
        Ok(self.stop.is_none())
    }

    fn poll_once(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        if let Err(e) = self.poll.poll(events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(e);
        }
        {
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    SIGNALS => self.reap(),
                    STDOUT | STDERR => {
                        if let Some(o) = &mut self.outputs[ev.token().0 - STDOUT.0] {
                            o.ready = true;
                        }
                    }
                    STDIN => self.flush_stdin(),
                    Token(t) => self.client_event(t - FIRST_CLIENT),
                }
            }
            self.pump_outputs();
            self.drop_gone_clients();
        }
        Ok(())
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((sock, _)) => {
                    if self.add_client(sock).is_err() {
                        continue;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn reap(&mut self) {
        let mut buf = [0u8; 64];
        while matches!(self.signals.read(&mut buf), Ok(n) if n > 0) {}
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if Some(pid) == self.pid => {
                    self.exit = Some((Exit { code }, Instant::now()));
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) if Some(pid) == self.pid => {
                    self.exit = Some((
                        Exit {
                            code: 128 + sig as i32,
                        },
                        Instant::now(),
                    ));
                }
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// Reads container output while it is available and no attached client
    /// is over its high-water mark.
    fn pump_outputs(&mut self) {
        let mut buf = std::mem::take(&mut self.read_buf);
        if buf.is_empty() {
            buf = vec![0u8; READ_CHUNK];
        }
        self.pump_with(&mut buf);
        self.read_buf = buf;
    }

    fn pump_with(&mut self, buf: &mut [u8]) {
        loop {
            let mut progressed = false;
            for i in 0..self.outputs.len() {
                if self
                    .clients
                    .iter()
                    .flatten()
                    .any(|c| c.attached && c.pending() > HIGH_WATER)
                {
                    return;
                }
                let Some(o) = &mut self.outputs[i] else {
                    continue;
                };
                if !o.ready {
                    continue;
                }
                let r = nix::unistd::read(o.fd.as_raw_fd(), buf);
                let stream = o.stream;
                match r {
                    Ok(0) => self.close_output(i),
                    Ok(n) => {
                        progressed = true;
                        let time = protocol::time::now();
                        if let Err(e) = self.log.write(stream, &buf[..n], &time) {
                            log::error!("{e}");
                        }
                        self.broadcast_output(stream, &buf[..n]);
                    }
                    Err(nix::Error::EAGAIN) => o.ready = false,
                    Err(nix::Error::EINTR) => {}
                    // EIO: the pty's last slave closed. Anything else: the
                    // stream is unusable; either way it is over.
                    Err(_) => self.close_output(i),
                }
            }
            if !progressed {
                return;
            }
        }
    }

    fn close_output(&mut self, i: usize) {
        if let Some(o) = self.outputs[i].take() {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&o.fd.as_raw_fd()));
            if o.pty {
                // Input to a terminal that nobody reads is pointless now.
                self.pty = None;
            }
        }
    }

    fn stdin_fd(&self) -> Option<&OwnedFd> {
        self.pty.as_ref().or(self.stdin.as_ref())
    }

    fn flush_stdin(&mut self) {
        while !self.stdin_buf.is_empty() {
            let Some(fd) = self.stdin_fd() else {
                self.stdin_buf.clear();
                return;
            };
            match nix::unistd::write(fd, &self.stdin_buf) {
                Ok(n) => {
                    self.stdin_buf.drain(..n);
                }
                Err(nix::Error::EAGAIN) => return,
                Err(nix::Error::EINTR) => {}
                Err(_) => {
                    // The container closed its stdin; drop what it won't read.
                    self.stdin_buf.clear();
                    self.stdin = None;
                }
            }
        }
        if self.stdin_close && self.stdin.is_some() {
            if let Some(fd) = self.stdin.take() {
                let _ = self
                    .poll
                    .registry()
                    .deregister(&mut SourceFd(&fd.as_raw_fd()));
            }
        }
    }

    fn client_event(&mut self, idx: usize) {
        let Some(Some(c)) = self.clients.get_mut(idx) else {
            return;
        };
        c.flush();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match c.sock.read(&mut buf) {
                Ok(0) => {
                    c.gone = true;
                    break;
                }
                Ok(n) => c.dec.feed(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    c.gone = true;
                    break;
                }
            }
        }
        loop {
            let Some(Some(c)) = self.clients.get_mut(idx) else {
                return;
            };
            let req: Request = match c.dec.next_frame() {
                Ok(Some(r)) => r,
                Ok(None) => return,
                Err(_) => {
                    c.gone = true;
                    return;
                }
            };
            self.handle(idx, req);
        }
    }

    fn handle(&mut self, idx: usize, req: Request) {
        let pid = self.pid;
        let running = self.exit.is_none();
        let Some(Some(c)) = self.clients.get_mut(idx) else {
            return;
        };
        match req {
            Request::Hello(h) => {
                c.queue(&Event::Hello(Hello {
                    version: PROTOCOL_VERSION,
                }));
                if h.version != PROTOCOL_VERSION {
                    c.queue(&Event::Error(format!(
                        "client protocol version {} is not {PROTOCOL_VERSION}",
                        h.version
                    )));
                    c.gone = true;
                }
            }
            Request::Attach { stdin } => {
                c.attached = true;
                c.stdin = stdin;
            }
            Request::Stdin(data) => {
                if c.stdin {
                    self.stdin_buf.extend_from_slice(&data);
                    self.flush_stdin();
                }
            }
            Request::StdinClose => {
                if c.stdin {
                    self.stdin_close = true;
                    self.flush_stdin();
                }
            }
            Request::Resize { rows, cols } => {
                if let Some(p) = &self.pty {
                    let _ = hind_init::sys::set_winsize(std::os::fd::AsFd::as_fd(p), rows, cols);
                }
            }
            Request::Signal(n) => match (Signal::try_from(n), pid) {
                (Ok(s), Some(pid)) => {
                    let _ = kill(pid, s);
                }
                (Ok(_), None) => c.queue(&Event::Error("the container is not running".into())),
                (Err(_), _) => c.queue(&Event::Error(format!("invalid signal {n}"))),
            },
            Request::State => c.queue(&Event::State {
                pid: pid.map_or(0, Pid::as_raw),
                running,
            }),
            Request::Wait => c.waiter = true,
            Request::Stop {
                signal,
                timeout_secs,
            } => {
                c.waiter = true;
                let at = Instant::now() + Duration::from_secs(timeout_secs.into());
                self.stop = Some(self.stop.map_or(at, |t| t.min(at)));
                if let Some(pid) = pid {
                    let sig = Signal::try_from(signal).unwrap_or(Signal::SIGTERM);
                    let _ = kill(pid, sig);
                }
            }
        }
    }

    fn drop_gone_clients(&mut self) {
        for slot in self.clients.iter_mut() {
            if slot.as_ref().is_some_and(|c| c.gone) {
                if let Some(mut c) = slot.take() {
                    let _ = self.poll.registry().deregister(&mut c.sock);
                }
            }
        }
    }

    pub fn pid(&self) -> Option<Pid> {
        self.pid
    }

    pub fn log(&self) -> &LogFile {
        &self.log
    }

    /// Sends `ev` to attached clients and waits (bounded) until each has it.
    pub fn finish(mut self, ev: &Event) {
        self.broadcast(ev);
        let deadline = Instant::now() + Duration::from_secs(5);
        for c in self.clients.iter_mut().flatten() {
            while c.pending() > 0 && !c.gone && Instant::now() < deadline {
                let fd = c.sock.as_raw_fd();
                let mut pfd = [nix::poll::PollFd::new(
                    // SAFETY: fd belongs to c.sock, alive for this call.
                    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
                    nix::poll::PollFlags::POLLOUT,
                )];
                let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(100u16));
                c.flush();
            }
        }
    }
}
