//! The shim's control protocol: requests a client (the CLI) sends over the
//! shim's socket and the events the shim sends back. Every connection starts
//! with a [`Hello`] exchange so that a CLI and a shim of different versions
//! refuse each other clearly instead of misparsing frames.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hello {
    pub version: u32,
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// `hind exec`: one more process in the running container.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ExecRequest {
    pub args: Vec<String>,
    /// `K=V` entries over the container's environment.
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    pub stdin: bool,
    pub console_size: Option<(u16, u16)>,
    /// All capabilities (`--privileged`).
    pub privileged: bool,
}

/// Client -> shim.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    Hello(Hello),
    /// Stream the container's output to this client (and accept its stdin
    /// when `stdin` is true) until the container exits.
    Attach {
        stdin: bool,
    },
    Stdin(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The client's stdin reached EOF: close the container's stdin.
    StdinClose,
    Resize {
        rows: u16,
        cols: u16,
    },
    Signal(i32),
    /// Answer with [`Event::State`] once.
    State,
    /// Send `signal`, SIGKILL after `timeout_secs`, and do not restart.
    Stop {
        signal: i32,
        timeout_secs: u32,
    },
    /// Send [`Event::Exited`] to this client when the container exits.
    Wait,
    /// Start a process in the container; this connection then carries its
    /// `Started`/`Failed`, output, stdin and `Exited`, like a `run`.
    Exec(Box<ExecRequest>),
}

/// Shim -> client.
#[derive(Debug, Serialize, Deserialize)]
pub enum Event {
    Hello(Hello),
    /// The container's process is running.
    Started {
        pid: i32,
    },
    /// Creating or starting the container failed; nothing of it runs.
    Failed {
        message: String,
        exit_code: i32,
    },
    Output {
        stream: Stream,
        data: Vec<u8>,
    },
    /// The container exited; its record already holds this status and every
    /// resource it held is released.
    Exited {
        exit_code: i32,
        oom_killed: bool,
    },
    State {
        pid: i32,
        running: bool,
    },
    Error(String),
}
