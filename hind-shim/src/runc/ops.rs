//! The `hind-runc` operations on a running container: `exec` (the same
//! setns helper `hind exec` uses, [`launch::exec`]), `ps`, `list`,
//! `pause`/`resume` (the freezer) and `update` (new resource limits).

use std::fs;
use std::io::{self, Read};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use clap::Args;
use oci_spec::runtime::{LinuxResources, Process as OciProcess, Spec};

use super::cli::Global;
use super::container::{self, proxy_pty, wait_forwarding};
use super::state::{self, State, Status, CONFIG};
use crate::cgroups::{self, Cgroup};
use crate::launch;
use crate::spec;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Container(#[from] container::Error),
    #[error(transparent)]
    State(#[from] state::Error),
    #[error(transparent)]
    Cgroup(#[from] cgroups::Error),
    #[error(transparent)]
    Spec(#[from] spec::Error),
    #[error(transparent)]
    Launch(#[from] launch::Error),
    #[error("read {0}")]
    Read(PathBuf, #[source] io::Error),
    #[error("parse {0}: {1}")]
    Parse(PathBuf, String),
    #[error("container {0} is {1}, not running")]
    NotRunning(String, &'static str),
    #[error("container {0} is {1}")]
    WrongStatus(String, &'static str),
    #[error("exec: no command given (args or --process)")]
    NoCommand,
    #[error("--user {0:?}: expected UID[:GID] in numbers")]
    BadUser(String),
    #[error("unknown ps format {0:?} (table or json)")]
    BadFormat(String),
    #[error("run ps")]
    Ps(#[source] io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Args)]
pub struct ExecArgs {
    /// An OCI process JSON file describing the process (instead of args).
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    #[arg(short, long)]
    pub tty: bool,
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    #[arg(short, long)]
    pub env: Vec<String>,
    /// UID[:GID].
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<u32>,
    #[arg(long)]
    pub no_new_privs: bool,
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for compatibility.
    #[arg(long, hide = true)]
    pub process_label: Option<String>,
    /// Accepted for compatibility.
    #[arg(long, hide = true)]
    pub apparmor: Option<String>,
    /// Exec even into a paused container (the process waits for resume).
    #[arg(long)]
    pub ignore_paused: bool,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args)]
pub struct UpdateArgs {
    /// A JSON file of OCI linux.resources, "-" for stdin.
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    #[arg(long)]
    pub memory: Option<i64>,
    #[arg(long)]
    pub memory_swap: Option<i64>,
    #[arg(long)]
    pub pids_limit: Option<i64>,
    #[arg(long)]
    pub cpu_shares: Option<u64>,
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    #[arg(long)]
    pub cpu_period: Option<u64>,
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    pub id: String,
}

fn running(g: &Global, id: &str) -> Result<(State, Cgroup)> {
    let st = State::load(&g.root, id)?;
    let cg = Cgroup::new(&st.cgroups_path, id)?.keep_parent();
    let status = st.status(&g.root);
    if status != Status::Running && status != Status::Paused {
        return Err(Error::NotRunning(id.to_string(), status.as_str()));
    }
    Ok((st, cg))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let data = if path == Path::new("-") {
        let mut v = Vec::new();
        io::stdin()
            .read_to_end(&mut v)
            .map_err(|e| Error::Read(path.into(), e))?;
        v
    } else {
        fs::read(path).map_err(|e| Error::Read(path.into(), e))?
    };
    let de = &mut serde_json::Deserializer::from_slice(&data);
    serde_path_to_error::deserialize(de).map_err(|e| Error::Parse(path.into(), e.to_string()))
}

pub fn exec(g: &Global, a: &ExecArgs) -> Result<i32> {
    let (st, cg) = running(g, &a.id)?;
    // A process joining a frozen cgroup would freeze before its exec.
    if !a.ignore_paused && cg.frozen() {
        return Err(Error::WrongStatus(a.id.clone(), Status::Paused.as_str()));
    }
    let spec_path = state::dir(&g.root, &a.id).join(CONFIG);
    let spec =
        Spec::load(&spec_path).map_err(|e| Error::Parse(spec_path.clone(), e.to_string()))?;
    let oci: OciProcess = match &a.process {
        Some(p) => read_json(p)?,
        None => {
            let mut p = spec.process().clone().unwrap_or_default();
            if a.command.is_empty() {
                return Err(Error::NoCommand);
            }
            p.set_args(Some(a.command.clone()));
            p.set_terminal(Some(a.tty));
            p
        }
    };
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let mut p = spec::process(&oci, seccomp, None)?;
    if p.args.is_empty() {
        return Err(Error::NoCommand);
    }
    if a.tty {
        p.terminal = true;
    }
    protocol::env::merge(&mut p.env, &a.env);
    if let Some(cwd) = &a.cwd {
        p.cwd = cwd.clone();
    }
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        p.uid = uid.parse().map_err(|_| Error::BadUser(u.clone()))?;
        p.gid = gid.parse().map_err(|_| Error::BadUser(u.clone()))?;
    }
    p.additional_gids.extend(&a.additional_gids);
    if a.no_new_privs {
        p.no_new_privileges = true;
    }
    p.kill_with_parent = false;
    p.preserve_fds = a.preserve_fds;
    let cgroups = protocol::cgroupfs::dirs(&st.cgroups_path);
    let terminal = p.terminal;
    let cfg = protocol::init::ExecConfig {
        init_pid: st.pid,
        namespaces: launch::exec_namespaces(spec::namespace_flags(&spec)),
        cgroups,
        process: p,
        user: None,
    };
    let stdio = if terminal {
        launch::ChildStdio::devnull()
    } else {
        launch::ChildStdio::inherited()
    }
    .map_err(container::Error::Stdio)?;
    let opts = launch::Options {
        kill_with_parent: false,
        preserve: (3..3 + a.preserve_fds as RawFd).collect(),
    };
    let (pid, pty) = match launch::exec(&cfg, stdio, &launch::init_path(), &opts) {
        Ok(x) => x,
        Err(e) => {
            // The process forked in the container (killed by now) is this
            // process's child: reap it, or it stays a zombie in the
            // container's pid namespace, which holds up the container's
            // end until someone else does.
            while !matches!(nix::sys::wait::waitpid(None, None), Err(nix::Error::ECHILD)) {}
            return Err(e.into());
        }
    };
    if let Some(f) = &a.pid_file {
        state::write_pid_file(f, pid.as_raw())?;
    }
    let proxy = match (pty, &a.console_socket) {
        (Some(m), Some(sock)) => {
            container::send_console(sock, &m)?;
            None
        }
        (Some(m), None) if !a.detach => proxy_pty(m),
        _ => None,
    };
    if a.detach {
        return Ok(0);
    }
    let code = wait_forwarding(&a.id, pid)?;
    if let Some(t) = proxy {
        let _ = t.join();
    }
    Ok(code)
}

pub fn ps(g: &Global, id: &str, format: &str, ps_args: &[String]) -> Result<()> {
    let st = State::load(&g.root, id)?;
    let cg = Cgroup::new(&st.cgroups_path, id)?.keep_parent();
    let pids: Vec<i32> = cg.pids()?.iter().map(|p| p.as_raw()).collect();
    match format {
        "json" => println!("{}", serde_json::Value::from(pids)),
        "table" => {
            let args: Vec<String> = if ps_args.is_empty() {
                vec!["-ef".into()]
            } else {
                ps_args.to_vec()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .map_err(Error::Ps)?;
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .unwrap_or(1);
            println!("{header}");
            for l in lines {
                let pid = l.split_whitespace().nth(col).and_then(|p| p.parse().ok());
                if pid.is_some_and(|p: i32| pids.contains(&p)) {
                    println!("{l}");
                }
            }
        }
        other => return Err(Error::BadFormat(other.to_string())),
    }
    Ok(())
}

pub fn list(g: &Global, format: &str, quiet: bool) -> Result<()> {
    let mut rows = Vec::new();
    for id in state::ids(&g.root) {
        let Ok(st) = State::load(&g.root, &id) else {
            continue;
        };
        let status = st.status(&g.root);
        rows.push((st, status));
    }
    if quiet {
        for (st, _) in &rows {
            println!("{}", st.id);
        }
        return Ok(());
    }
    match format {
        "json" => {
            // runc prints `null` for no containers; callers parse either.
            let v: Vec<serde_json::Value> = rows.iter().map(|(st, s)| st.to_oci(*s)).collect();
            if v.is_empty() {
                println!("null");
            } else {
                println!("{}", serde_json::Value::from(v));
            }
        }
        "table" => {
            println!(
                "{:<12} {:<8} {:<10} {:<40} {:<32} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for (st, s) in &rows {
                let pid = if *s == Status::Stopped { 0 } else { st.pid };
                println!(
                    "{:<12} {:<8} {:<10} {:<40} {:<32} root",
                    st.id,
                    pid,
                    s.as_str(),
                    st.bundle.display(),
                    st.created
                );
            }
        }
        other => return Err(Error::BadFormat(other.to_string())),
    }
    Ok(())
}

pub fn pause(g: &Global, id: &str, frozen: bool) -> Result<()> {
    let st = State::load(&g.root, id)?;
    let cg = Cgroup::new(&st.cgroups_path, id)?.keep_parent();
    let status = st.status(&g.root);
    let ok = if frozen {
        status == Status::Running
    } else {
        status == Status::Paused
    };
    if !ok {
        return Err(Error::WrongStatus(id.to_string(), status.as_str()));
    }
    Ok(cg.freeze(frozen)?)
}

pub fn update(g: &Global, a: &UpdateArgs) -> Result<()> {
    let (_st, cg) = running(g, &a.id)?;
    let mut v: serde_json::Value = match &a.resources {
        Some(p) => read_json(p)?,
        None => serde_json::json!({}),
    };
    let mut set = |section: &str, key: &str, val: serde_json::Value| {
        if !v[section].is_object() {
            v[section] = serde_json::json!({});
        }
        v[section][key] = val;
    };
    if let Some(m) = a.memory {
        set("memory", "limit", m.into());
    }
    if let Some(m) = a.memory_swap {
        set("memory", "swap", m.into());
    }
    if let Some(p) = a.pids_limit {
        set("pids", "limit", p.into());
    }
    if let Some(c) = a.cpu_shares {
        set("cpu", "shares", c.into());
    }
    if let Some(c) = a.cpu_quota {
        set("cpu", "quota", c.into());
    }
    if let Some(c) = a.cpu_period {
        set("cpu", "period", c.into());
    }
    if let Some(c) = &a.cpuset_cpus {
        set("cpu", "cpus", c.clone().into());
    }
    let resources: LinuxResources = serde_json::from_value(v)
        .map_err(|e| Error::Parse(PathBuf::from("resources"), e.to_string()))?;
    Ok(cg.apply(&resources)?)
}
