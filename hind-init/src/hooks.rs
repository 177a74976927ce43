//! Running OCI hooks: a program started with the container's state (JSON)
//! on stdin, which must exit 0 within its timeout. Used by init for the
//! hooks that run inside the container (createContainer, startContainer)
//! and by `hind-runc` for the ones in the runtime's namespaces (prestart,
//! createRuntime, poststart, poststop), so all six behave alike.

use std::io::{self, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use protocol::init::Hook;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{kind} hook {path}: start")]
    Spawn {
        kind: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{kind} hook {path}: wait")]
    Wait {
        kind: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{kind} hook {path}: {how}{}", if stderr.is_empty() { String::new() } else { format!(": {stderr}") })]
    Failed {
        kind: &'static str,
        path: PathBuf,
        how: String,
        stderr: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Runs `hooks` in order, stopping at the first failure.
pub fn run_all(kind: &'static str, hooks: &[Hook], state: &str) -> Result<()> {
    hooks.iter().try_for_each(|h| run(kind, h, state))
}

/// Runs one hook with `state` on stdin; its stdout is discarded, its
/// stderr (last line) is kept for the error.
pub fn run(kind: &'static str, hook: &Hook, state: &str) -> Result<()> {
    let path = hook.path.clone();
    let mut cmd = Command::new(&hook.path);
    if let Some((first, rest)) = hook.args.split_first() {
        cmd.arg0(first).args(rest);
    }
    // stderr goes to a memfd, not a pipe: a hook writing more than a
    // pipe holds must not block while this waits for it to exit.
    let err_fd = nix::sys::memfd::memfd_create(
        c"hook-stderr",
        nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
    )
    .map_err(|e| Error::Spawn {
        kind,
        path: path.clone(),
        source: e.into(),
    })?;
    let mut err_file = std::fs::File::from(err_fd);
    let err_for_child = err_file.try_clone().map_err(|source| Error::Spawn {
        kind,
        path: path.clone(),
        source,
    })?;
    cmd.env_clear()
        .envs(hook.env.iter().filter_map(|e| e.split_once('=')))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::from(err_for_child));
    let mut child = cmd.spawn().map_err(|source| Error::Spawn {
        kind,
        path: path.clone(),
        source,
    })?;
    // A hook that does not read its stdin must not block us: a failed
    // write (EPIPE) is its business, its exit status decides.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = hook
        .timeout
        .map(|t| Instant::now() + Duration::from_secs(u64::from(t)));
    let wait_err = |source| Error::Wait {
        kind,
        path: path.clone(),
        source,
    };
    let mut pause = Duration::from_millis(1);
    let status = loop {
        if let Some(s) = child.try_wait().map_err(wait_err)? {
            break s;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Failed {
                kind,
                path,
                how: format!("timed out after {} s", hook.timeout.unwrap_or(0)),
                stderr: String::new(),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    if status.success() {
        return Ok(());
    }
    let mut err = String::new();
    if io::Seek::rewind(&mut err_file).is_ok() {
        let _ = io::Read::read_to_string(&mut err_file, &mut err);
    }
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (_, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    };
    Err(Error::Failed {
        kind,
        path,
        how,
        stderr: err.trim().lines().last().unwrap_or("").to_string(),
    })
}
