//! The shim's event loop: one thread, one mio poll over the control socket,
//! the output (pipes or pty master) and stdin of every process it
//! supervises, the clients, and a signal-hook pipe for SIGCHLD.
//!
//! The processes are the container's init and any `hind exec` processes.
//! Init's output goes to the log file first, then to attached clients; an
//! exec's output goes to the client that asked for it only. Each client has
//! a bounded buffer: while one is over the mark, the loop stops reading the
//! output that feeds it (the process then blocks in write), so a client
//! never loses bytes and the shim's memory stays bounded. The loop never
//! blocks on a client.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use mio::net::{UnixListener, UnixStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use protocol::control::{Event, ExecRequest, Hello, Request, Stream};
use protocol::{frame, PROTOCOL_VERSION};

use crate::logfile::LogFile;

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);
/// Process slot `s` owns tokens `PROC_BASE + 4s + {0: stdout, 1: stderr,
/// 2: stdin}`; clients start at `CLIENT_BASE`.
const PROC_BASE: usize = 16;
const CLIENT_BASE: usize = 1 << 20;
/// Slot of the container's init.
const INIT: usize = 0;

/// Above this many queued bytes for one client, output reading pauses.
const HIGH_WATER: usize = 1 << 20;
/// How long to keep draining output after a process exited, for bytes
/// still in flight from processes that held its pipes.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
const READ_CHUNK: usize = 64 * 1024;

struct Output {
    fd: OwnedFd,
    stream: Stream,
    ready: bool,
    /// A pty master: EIO means the last slave closed.
    pty: bool,
}

/// The stdio of a process as the shim holds it.
pub struct Io {
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    pub stdin: Option<OwnedFd>,
    /// With a terminal: the master, both output and input.
    pub pty: Option<OwnedFd>,
}

/// How a process ended.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub code: i32,
}

struct Proc {
    pid: Pid,
    outputs: [Option<Output>; 2],
    stdin: Option<OwnedFd>,
    stdin_buf: Vec<u8>,
    stdin_close: bool,
    pty: Option<OwnedFd>,
    exit: Option<(Exit, Instant)>,
    /// The client an exec belongs to; `None` for init, whose output is
    /// logged and goes to every attached client.
    owner: Option<usize>,
}

impl Proc {
    fn stdin_fd(&self) -> Option<&OwnedFd> {
        self.pty.as_ref().or(self.stdin.as_ref())
    }

    fn drained(&self) -> bool {
        self.outputs.iter().all(Option::is_none)
    }
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
    /// The process slot of this client's exec, if it asked for one.
    exec: Option<usize>,
    /// Close the connection once everything queued is sent (an exec's
    /// client after its `Exited`: that EOF is how the CLI knows it is done).
    closing: bool,
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
            exec: None,
            closing: false,
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

    fn queue_raw(&mut self, frame: &[u8]) {
        if !self.gone {
            self.out.extend_from_slice(frame);
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
        if self.closing {
            self.gone = true;
        }
    }
}

/// Starts an exec for a client: the shim's side of the setns helper.
pub type ExecStarter<'a> = dyn FnMut(&ExecRequest) -> Result<(Pid, Io), (String, i32)> + 'a;

pub struct Supervisor {
    poll: Poll,
    listener: UnixListener,
    signals: UnixStream,
    procs: Vec<Option<Proc>>,
    clients: Vec<Option<Client>>,
    /// The container's log; `None` once closed at the end.
    log: Option<LogFile>,
    /// A stop was asked for: no restart, and SIGKILL at this instant.
    stop: Option<Instant>,
    /// Kept between reads; allocated on first output.
    read_buf: Vec<u8>,
    frame_buf: Vec<u8>,
    /// Exec requests waiting to be started by the caller of `run`.
    exec_queue: Vec<(usize, Box<ExecRequest>)>,
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
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
            procs: vec![None],
            clients: Vec::new(),
            log: Some(log),
            stop: None,
            read_buf: Vec::new(),
            frame_buf: Vec::new(),
            exec_queue: Vec::new(),
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
        self.add_proc(INIT, pid, io, None)
    }

    fn add_proc(&mut self, slot: usize, pid: Pid, io: Io, owner: Option<usize>) -> io::Result<()> {
        let mut outputs = [None, None];
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
        let base = PROC_BASE + 4 * slot;
        for (i, o) in outputs.iter().enumerate() {
            if let Some(o) = o {
                self.poll.registry().register(
                    &mut SourceFd(&o.fd.as_raw_fd()),
                    Token(base + i),
                    Interest::READABLE,
                )?;
            }
        }
        if let Some(fd) = pty.as_ref().or(stdin.as_ref()) {
            set_nonblocking(fd)?;
            self.poll.registry().register(
                &mut SourceFd(&fd.as_raw_fd()),
                Token(base + 2),
                Interest::WRITABLE,
            )?;
        }
        if self.procs.len() <= slot {
            self.procs.resize_with(slot + 1, || None);
        }
        self.procs[slot] = Some(Proc {
            pid,
            outputs,
            stdin,
            stdin_buf: Vec::new(),
            stdin_close: false,
            pty,
            exit: None,
            owner,
        });
        Ok(())
    }

    fn free_slot(&mut self) -> usize {
        match self.procs.iter().skip(1).position(Option::is_none) {
            Some(i) => i + 1,
            None => {
                self.procs.push(None);
                self.procs.len() - 1
            }
        }
    }

    /// Whether a stop was requested (the restart policy no longer applies).
    pub fn stopping(&self) -> bool {
        self.stop.is_some()
    }

    pub fn pid(&self) -> Option<Pid> {
        self.procs[INIT].as_ref().map(|p| p.pid)
    }

    fn init_running(&self) -> Option<Pid> {
        self.procs[INIT]
            .as_ref()
            .filter(|p| p.exit.is_none())
            .map(|p| p.pid)
    }

    /// Flushes the log to disk (`sync`) and closes it. Closing before the
    /// final `Exited` matters for `--rm`: the kernel frees an unlinked
    /// file's blocks at its last close, which can take a while for a big
    /// log, and that must be over when `hind run --rm` returns.
    pub fn close_log(&mut self, sync: bool) -> crate::logfile::Result<()> {
        match self.log.take() {
            Some(l) if sync => l.sync(),
            _ => Ok(()),
        }
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
            Token(CLIENT_BASE + idx),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.clients[idx] = Some(Client::new(sock));
        Ok(idx)
    }

    /// Sends `ev` about the container to the clients that asked for its
    /// streams (and an exit to those waiting for one).
    pub fn broadcast(&mut self, ev: &Event) {
        let exit = matches!(ev, Event::Exited { .. });
        for c in self.clients.iter_mut().flatten() {
            if c.attached || (exit && c.waiter) {
                c.queue(ev);
            }
        }
    }

    /// Runs until the container's init has exited and its output is
    /// drained, starting the execs clients ask for with `exec`.
    pub fn run(&mut self, exec: &mut ExecStarter) -> io::Result<Exit> {
        let mut events = Events::with_capacity(64);
        // The container may have exited before the SIGCHLD handler existed.
        self.reap();
        loop {
            if let (Some(at), Some(pid)) = (self.stop, self.init_running()) {
                if Instant::now() >= at {
                    let _ = kill(pid, Signal::SIGKILL);
                }
            }
            let mut deadline = self.stop.filter(|_| self.init_running().is_some());
            for p in self.procs.iter().flatten() {
                if let Some((_, t)) = p.exit {
                    let d = t + DRAIN_GRACE;
                    deadline = Some(deadline.map_or(d, |x| x.min(d)));
                }
            }
            let timeout = deadline.map(|t| t.saturating_duration_since(Instant::now()));
            self.poll_once(&mut events, timeout)?;
            for (client, req) in std::mem::take(&mut self.exec_queue) {
                self.start_exec(client, &req, exec);
            }
            self.finish_execs();
            if let Some(p) = &self.procs[INIT] {
                if let Some((exit, at)) = p.exit {
                    if p.drained() || at.elapsed() >= DRAIN_GRACE {
                        self.close_proc(INIT);
                        return Ok(exit);
                    }
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
            for (client, _) in std::mem::take(&mut self.exec_queue) {
                if let Some(Some(c)) = self.clients.get_mut(client) {
                    c.queue(&Event::Failed {
                        message: "the container is not running".into(),
                        exit_code: protocol::EXIT_ENGINE,
                    });
                }
            }
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
        for ev in events.iter() {
            match ev.token() {
                LISTENER => self.accept(),
                SIGNALS => self.reap(),
                Token(t) if t >= CLIENT_BASE => self.client_event(t - CLIENT_BASE),
                Token(t) => {
                    let (slot, k) = ((t - PROC_BASE) / 4, (t - PROC_BASE) % 4);
                    if k == 2 {
                        self.flush_stdin(slot);
                    } else if let Some(Some(p)) = self.procs.get_mut(slot) {
                        if let Some(o) = &mut p.outputs[k] {
                            o.ready = true;
                        }
                    }
                }
            }
        }
        self.pump_outputs();
        self.drop_gone_clients();
        Ok(())
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((sock, _)) => {
                    let _ = self.add_client(sock);
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
            let (pid, code) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, code),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, 128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            // Children that are not a process of ours (the exec helper,
            // which exits once it has forked) are just reaped.
            if let Some(p) = self.procs.iter_mut().flatten().find(|p| p.pid == pid) {
                p.exit = Some((Exit { code }, Instant::now()));
            }
        }
    }

    /// Reports and forgets exec processes that exited and drained.
    fn finish_execs(&mut self) {
        for slot in 1..self.procs.len() {
            let Some(p) = &self.procs[slot] else { continue };
            let Some((exit, at)) = p.exit else { continue };
            if !p.drained() && at.elapsed() < DRAIN_GRACE {
                continue;
            }
            let owner = p.owner;
            self.close_proc(slot);
            self.procs[slot] = None;
            if let Some(Some(c)) = owner.and_then(|o| self.clients.get_mut(o)) {
                c.exec = None;
                c.closing = true;
                c.queue(&Event::Exited {
                    exit_code: exit.code,
                    oom_killed: false,
                });
            }
        }
    }

    fn start_exec(&mut self, client: usize, req: &ExecRequest, exec: &mut ExecStarter) {
        let result = if self.init_running().is_none() {
            Err((
                "the container is not running".to_string(),
                protocol::EXIT_ENGINE,
            ))
        } else {
            exec(req)
        };
        let slot = self.free_slot();
        let ev = match result {
            Ok((pid, io)) => match self.add_proc(slot, pid, io, Some(client)) {
                Ok(()) => {
                    if let Some(Some(c)) = self.clients.get_mut(client) {
                        c.exec = Some(slot);
                        c.stdin = req.stdin;
                    }
                    Event::Started { pid: pid.as_raw() }
                }
                Err(e) => {
                    let _ = kill(pid, Signal::SIGKILL);
                    Event::Failed {
                        message: format!("supervise the exec process: {e}"),
                        exit_code: protocol::EXIT_ENGINE,
                    }
                }
            },
            Err((message, exit_code)) => Event::Failed { message, exit_code },
        };
        if let Some(Some(c)) = self.clients.get_mut(client) {
            c.queue(&ev);
        }
    }

    /// Whether the clients fed by process `slot` can take more output.
    fn can_feed(&self, slot: usize) -> bool {
        let owner = self.procs[slot].as_ref().and_then(|p| p.owner);
        !self.clients.iter().enumerate().any(|(i, c)| {
            c.as_ref().is_some_and(|c| {
                let fed = match owner {
                    None => c.attached,
                    Some(o) => o == i,
                };
                fed && c.pending() > HIGH_WATER
            })
        })
    }

    /// Reads output while it is available and its clients keep up.
    fn pump_outputs(&mut self) {
        let mut buf = std::mem::take(&mut self.read_buf);
        if buf.is_empty() {
            buf = vec![0u8; READ_CHUNK];
        }
        loop {
            let mut progressed = false;
            for slot in 0..self.procs.len() {
                for k in 0..2 {
                    if !self.can_feed(slot) {
                        break;
                    }
                    let Some(Some(p)) = self.procs.get_mut(slot) else {
                        break;
                    };
                    let owner = p.owner;
                    let Some(o) = &mut p.outputs[k] else { continue };
                    if !o.ready {
                        continue;
                    }
                    let stream = o.stream;
                    match nix::unistd::read(o.fd.as_raw_fd(), &mut buf) {
                        Ok(0) => self.close_output(slot, k),
                        Ok(n) => {
                            progressed = true;
                            self.deliver(owner, stream, &buf[..n]);
                        }
                        Err(nix::Error::EAGAIN) => o.ready = false,
                        Err(nix::Error::EINTR) => {}
                        // EIO: the pty's last slave closed. Anything else:
                        // the stream is unusable; either way it is over.
                        Err(_) => self.close_output(slot, k),
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        self.read_buf = buf;
    }

    /// Init's output: log first, then every attached client. An exec's:
    /// its client only.
    fn deliver(&mut self, owner: Option<usize>, stream: Stream, data: &[u8]) {
        if owner.is_none() {
            let time = protocol::time::now();
            if let Some(Err(e)) = self.log.as_mut().map(|l| l.write(stream, data, &time)) {
                log::error!("{e}");
            }
        }
        let mut frame = std::mem::take(&mut self.frame_buf);
        frame.clear();
        frame::encode_output(&mut frame, stream, data);
        for (i, c) in self.clients.iter_mut().enumerate() {
            let Some(c) = c else { continue };
            let fed = match owner {
                None => c.attached,
                Some(o) => o == i,
            };
            if fed {
                c.queue_raw(&frame);
            }
        }
        self.frame_buf = frame;
    }

    fn close_output(&mut self, slot: usize, k: usize) {
        let Some(Some(p)) = self.procs.get_mut(slot) else {
            return;
        };
        if let Some(o) = p.outputs[k].take() {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&o.fd.as_raw_fd()));
            if o.pty {
                // Input to a terminal that nobody reads is pointless now.
                p.pty = None;
            }
        }
    }

    /// Releases every fd of process `slot` (it stays in its slot).
    fn close_proc(&mut self, slot: usize) {
        for k in 0..2 {
            self.close_output(slot, k);
        }
        if let Some(Some(p)) = self.procs.get_mut(slot) {
            if let Some(fd) = p.stdin_fd() {
                let _ = self
                    .poll
                    .registry()
                    .deregister(&mut SourceFd(&fd.as_raw_fd()));
            }
            p.pty = None;
            p.stdin = None;
        }
    }

    fn flush_stdin(&mut self, slot: usize) {
        let Some(Some(p)) = self.procs.get_mut(slot) else {
            return;
        };
        while !p.stdin_buf.is_empty() {
            let Some(fd) = p.stdin_fd() else {
                p.stdin_buf.clear();
                return;
            };
            match nix::unistd::write(fd, &p.stdin_buf) {
                Ok(n) => {
                    p.stdin_buf.drain(..n);
                }
                Err(nix::Error::EAGAIN) => return,
                Err(nix::Error::EINTR) => {}
                Err(_) => {
                    // The process closed its stdin; drop what it won't read.
                    p.stdin_buf.clear();
                    p.stdin = None;
                }
            }
        }
        if p.stdin_close {
            if let Some(fd) = p.stdin.take() {
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

    /// The process a client's stdin, resize and signals go to: its exec,
    /// or the container's init.
    fn target(&self, idx: usize) -> usize {
        self.clients
            .get(idx)
            .and_then(|c| c.as_ref())
            .and_then(|c| c.exec)
            .unwrap_or(INIT)
    }

    fn handle(&mut self, idx: usize, req: Request) {
        let pid = self.init_running();
        let target = self.target(idx);
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
                    if let Some(Some(p)) = self.procs.get_mut(target) {
                        p.stdin_buf.extend_from_slice(&data);
                    }
                    self.flush_stdin(target);
                }
            }
            Request::StdinClose => {
                if c.stdin {
                    if let Some(Some(p)) = self.procs.get_mut(target) {
                        p.stdin_close = true;
                    }
                    self.flush_stdin(target);
                }
            }
            Request::Resize { rows, cols } => {
                if let Some(Some(p)) = self.procs.get(target) {
                    if let Some(pty) = &p.pty {
                        let _ =
                            hind_init::sys::set_winsize(std::os::fd::AsFd::as_fd(pty), rows, cols);
                    }
                }
            }
            Request::Signal(n) => {
                let to = self
                    .procs
                    .get(target)
                    .and_then(|p| p.as_ref())
                    .filter(|p| p.exit.is_none())
                    .map(|p| p.pid);
                match (Signal::try_from(n), to) {
                    (Ok(s), Some(pid)) => {
                        let _ = kill(pid, s);
                    }
                    (Ok(_), None) => c.queue(&Event::Error("the container is not running".into())),
                    (Err(_), _) => c.queue(&Event::Error(format!("invalid signal {n}"))),
                }
            }
            Request::State => c.queue(&Event::State {
                pid: pid.map_or(0, Pid::as_raw),
                running: pid.is_some(),
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
            Request::Exec(req) => {
                if c.exec.is_some() {
                    c.queue(&Event::Error("one exec per connection".into()));
                } else {
                    self.exec_queue.push((idx, req));
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
            // Closing a unix socket with unread input makes the peer's
            // next read fail with ECONNRESET, possibly before it has read
            // the Exited just sent: read (and drop) what it sent first.
            let mut sink = [0u8; 16 * 1024];
            while matches!(c.sock.read(&mut sink), Ok(n) if n > 0) {}
        }
    }
}
