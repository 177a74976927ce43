//! The commands that act on existing containers: ps, inspect, stop, start,
//! restart, kill, wait, rm and attach. Each resolves its arguments with
//! `store`, talks to the container's shim when it runs and reads or
//! changes the record (under its lock) when it does not.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use nix::sys::signal::Signal;
use protocol::control::Request;
use protocol::paths::Layout;
use protocol::record::{self, LifeLock, Status};

use crate::cli::{
    AttachArgs, Containers, ExecArgs, InspectArgs, KillArgs, PsArgs, RmArgs, StartArgs, StopArgs,
};
use crate::store::{self, Container};
use crate::{attach, client, format, inspect, shim};

/// Parses a signal given as `9`, `KILL` or `SIGKILL`.
pub fn parse_signal(s: &str) -> anyhow::Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n)
            .map(|s| s as i32)
            .map_err(|_| anyhow!("invalid signal {s:?}"));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map(|s| s as i32)
        .map_err(|_| anyhow!("invalid signal {s:?}"))
}

/// Runs `f` for each container argument; errors are printed and make the
/// command fail at the end, the others still run (as Docker does).
fn each(
    layout: &Layout,
    args: &Containers,
    mut f: impl FnMut(&mut Container) -> anyhow::Result<()>,
) -> anyhow::Result<i32> {
    let mut failed = 0;
    for q in &args.containers {
        let r = store::resolve(layout, q)
            .map_err(anyhow::Error::from)
            .and_then(|mut c| f(&mut c));
        if let Err(e) = r {
            eprintln!("hind: {e:#}");
            failed += 1;
        }
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

pub fn ps(layout: &Layout, a: PsArgs) -> anyhow::Result<i32> {
    let all = store::list(layout);
    let shown: Vec<&Container> = all.iter().filter(|c| a.all || c.running()).collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if a.list.quiet {
        for c in shown {
            let id = if a.list.no_trunc {
                &c.id[..]
            } else {
                &c.id[..12]
            };
            writeln!(out, "{id}")?;
        }
        return Ok(0);
    }
    let docs: Vec<serde_json::Value> = shown
        .iter()
        .map(|c| inspect::summary(c, a.list.no_trunc))
        .collect();
    if format::print_rows(&mut out, a.list.format.as_deref(), &docs)? {
        return Ok(0);
    }
    let mut rows = vec![[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec()];
    for s in &docs {
        let f = |k: &str| s[k].as_str().unwrap_or_default().to_string();
        rows.push(vec![
            f("ID"),
            f("Image"),
            f("Command"),
            f("RunningFor"),
            f("Status"),
            f("Ports"),
            f("Names"),
        ]);
    }
    write!(out, "{}", format::table(&rows))?;
    Ok(0)
}

pub fn inspect(layout: &Layout, a: InspectArgs) -> anyhow::Result<i32> {
    let mut docs = Vec::new();
    let mut failed = false;
    for q in &a.containers.containers {
        match store::resolve(layout, q) {
            Ok(c) => docs.push(inspect::document(layout, &c)),
            Err(e) => {
                eprintln!("hind: {e}");
                failed = true;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    match a.format.as_deref() {
        None | Some("json") => {
            writeln!(out, "{}", serde_json::to_string_pretty(&docs)?)?;
        }
        Some(tpl) => {
            for d in &docs {
                writeln!(out, "{}", format::render(tpl, d)?)?;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// Stops one container: the stop signal, SIGKILL after `timeout`; the shim
/// times the SIGKILL, so it happens even if this CLI dies meanwhile.
fn stop_one(layout: &Layout, c: &Container, signal: i32, timeout: u32) -> anyhow::Result<()> {
    if !c.running() {
        return Ok(());
    }
    let mut s = match client::connect(layout, &c.id) {
        Ok(s) => s,
        // It is stopping or stopped between our look and our connect: the
        // shim removes its socket just before it exits.
        Err(e) => {
            return if wait_shim_gone(c, Duration::from_secs(5)) {
                Ok(())
            } else {
                Err(e.into())
            }
        }
    };
    client::send(
        &mut s,
        &c.id,
        &Request::Stop {
            signal,
            timeout_secs: timeout,
        },
    )?;
    client::wait_exit(&mut s, &c.id)?;
    // The shim closes the socket once the record is final; wait for that.
    let _ = std::io::Read::read(&mut s, &mut [0u8; 1]);
    Ok(())
}

/// Waits until no shim holds the container's life lock.
fn wait_shim_gone(c: &Container, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while record::shim_alive(&c.dir) {
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn stop_signal(c: &Container, flag: Option<&str>) -> anyhow::Result<i32> {
    match flag {
        Some(s) => parse_signal(s),
        None => Ok(c.record.stop_signal.unwrap_or(libc::SIGTERM)),
    }
}

pub fn stop(layout: &Layout, a: StopArgs) -> anyhow::Result<i32> {
    each(layout, &a.containers, |c| {
        let sig = stop_signal(c, a.signal.as_deref())?;
        stop_one(layout, c, sig, a.time)?;
        println!("{}", c.record.name);
        Ok(())
    })
}

/// Starts a stopped container through a new shim. Returns the connection
/// to it, already past `Started`.
/// Whether another process's shim has the container running: its life
/// lock is held and, within a moment, its record says so.
fn started_by_another(dir: &std::path::Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    while record::shim_alive(dir) {
        if let Ok(r) = record::Record::load(dir) {
            if matches!(r.status, Status::Running | Status::Restarting) {
                return true;
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn start_one(
    layout: &Layout,
    c: &Container,
) -> anyhow::Result<Option<std::os::unix::net::UnixStream>> {
    if c.running() {
        return Ok(None);
    }
    // The namespace, address and ports stay while the container is
    // stopped; after a reboot this rebuilds them.
    crate::net::attach(layout, &c.id)
        .with_context(|| format!("start container {}", c.record.name))?;
    let mut sock = shim::spawn(layout, &c.id)?;
    match attach::wait_started(&mut sock) {
        Ok(_) => Ok(Some(sock)),
        // Another `start` won the race: the container runs, as asked. The
        // life lock is also held by a `cp` into the stopped container, so
        // only a record that says running counts as started.
        Err(_) if started_by_another(&c.dir) => Ok(None),
        Err(e) => {
            let msg = e.to_string();
            let _ = record::update(&c.dir, |r| r.error = Some(msg.clone()));
            Err(anyhow::Error::from(e).context(format!("start container {}", c.record.name)))
        }
    }
}

pub fn start(layout: &Layout, a: StartArgs) -> anyhow::Result<i32> {
    if a.attach || a.interactive {
        if a.containers.containers.len() != 1 {
            bail!("start -a/-i takes exactly one container");
        }
        let c = store::resolve(layout, &a.containers.containers[0])?;
        let sock = match start_one(layout, &c)? {
            Some(s) => s,
            None => attach_socket(layout, &c, a.interactive)?,
        };
        return Ok(attach::relay(
            sock,
            c.record.tty,
            a.interactive && c.record.open_stdin,
        )?);
    }
    each(layout, &a.containers, |c| {
        start_one(layout, c)?;
        println!("{}", c.record.name);
        Ok(())
    })
}

pub fn restart(layout: &Layout, a: StopArgs) -> anyhow::Result<i32> {
    each(layout, &a.containers, |c| {
        let sig = stop_signal(c, a.signal.as_deref())?;
        stop_one(layout, c, sig, a.time)?;
        let c = store::Container::load(layout, &c.id)?;
        start_one(layout, &c)?;
        println!("{}", c.record.name);
        Ok(())
    })
}

pub fn kill(layout: &Layout, a: KillArgs) -> anyhow::Result<i32> {
    let sig = parse_signal(&a.signal)?;
    each(layout, &a.containers, |c| {
        if !c.running() {
            bail!("container {} is not running", c.record.name);
        }
        let mut s = client::connect(layout, &c.id)?;
        client::send(&mut s, &c.id, &Request::Signal(sig))?;
        println!("{}", c.record.name);
        Ok(())
    })
}

pub fn wait(layout: &Layout, a: Containers) -> anyhow::Result<i32> {
    each(layout, &a, |c| {
        let mut code = c.record.exit_code;
        if c.running() {
            if let Ok(mut s) = client::connect(layout, &c.id) {
                client::send(&mut s, &c.id, &Request::Wait)?;
                code = client::wait_exit(&mut s, &c.id)?;
            }
            if code.is_none() {
                code = store::Container::load(layout, &c.id)
                    .ok()
                    .and_then(|c| c.record.exit_code);
            }
        }
        println!("{}", code.unwrap_or(0));
        Ok(())
    })
}

pub fn rm(layout: &Layout, a: RmArgs) -> anyhow::Result<i32> {
    each(layout, &a.containers, |c| {
        if c.running() {
            if !a.force {
                bail!(
                    "cannot remove container {}: it is running (stop it first, or use rm -f)",
                    c.record.name
                );
            }
            stop_one(layout, c, libc::SIGKILL, 0)?;
        }
        // Holding the life lock keeps a concurrent `start` from bringing a
        // shim up while the files go away.
        let mut lock = None;
        for _ in 0..100 {
            match LifeLock::try_acquire(&c.dir) {
                Ok(Some(l)) => {
                    lock = Some(l);
                    break;
                }
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
                // Removed meanwhile (an --rm container's shim did it).
                Err(_) if !c.dir.exists() => break,
                Err(e) => return Err(e.into()),
            }
        }
        if lock.is_none() && c.dir.exists() {
            bail!(
                "cannot remove container {}: its shim is still running",
                c.record.name
            );
        }
        let r = store::Container::load(layout, &c.id);
        if let Ok(cur) = &r {
            if cur.record.status == Status::Running {
                bail!(
                    "cannot remove container {}: it was started again",
                    c.record.name
                );
            }
        }
        // A failure here is reported but does not keep the container: its
        // lease then looks stale and the next network change reclaims it.
        if let Err(e) = crate::net::release(layout, &c.id) {
            eprintln!(
                "hind: container {}: release its network: {:#}",
                c.record.name,
                anyhow::Error::from(e)
            );
        }
        record::remove_files(layout, &c.id, &c.record.name)
            .with_context(|| format!("remove container {}", c.record.name))?;
        // Like the network: a failure is reported, and the claim, whose
        // container is gone, is swept by the next allocation.
        if let Some(q) = &c.record.quota {
            if let Err(e) = crate::quota::release(layout, &c.id, q.project_id) {
                eprintln!(
                    "hind: container {}: release its disk quota: {:#}",
                    c.record.name,
                    anyhow::Error::from(e)
                );
            }
        }
        if a.volumes {
            crate::volume::commands::remove_anonymous(layout, &c.record);
        }
        drop(lock);
        println!("{}", c.record.name);
        Ok(())
    })
}

fn attach_socket(
    layout: &Layout,
    c: &Container,
    stdin: bool,
) -> anyhow::Result<std::os::unix::net::UnixStream> {
    let mut s = client::connect(layout, &c.id)?;
    client::send(&mut s, &c.id, &Request::Attach { stdin })?;
    Ok(s)
}

pub fn attach(layout: &Layout, a: AttachArgs) -> anyhow::Result<i32> {
    let c = store::resolve(layout, &a.container)?;
    if !c.running() {
        bail!(
            "cannot attach to container {}: it is not running",
            c.record.name
        );
    }
    let stdin = c.record.open_stdin && !a.no_stdin;
    let s = attach_socket(layout, &c, stdin)?;
    Ok(attach::relay(s, c.record.tty, stdin)?)
}

/// `hind exec`: the shim starts the process (through the setns helper) and
/// this connection carries it like a `run`: Started/Failed, output,
/// stdin, resizes, signals, and its exit code.
pub fn exec(layout: &Layout, a: ExecArgs) -> anyhow::Result<i32> {
    let c = store::resolve(layout, &a.container)?;
    if !c.running() {
        bail!("container {} is not running", c.record.name);
    }
    if let Some(w) = &a.workdir {
        if !w.starts_with('/') {
            bail!("invalid --workdir {w:?}: must be an absolute path");
        }
    }
    let env = crate::bundle::expand_env(&a.env)?;
    let req = protocol::control::ExecRequest {
        args: a.command.clone(),
        env,
        cwd: a.workdir.clone(),
        user: a.user.clone(),
        tty: a.tty,
        stdin: a.interactive && !a.detach,
        console_size: if a.tty { attach::window_size() } else { None },
        privileged: a.privileged,
    };
    let mut s = client::connect(layout, &c.id)?;
    client::send(&mut s, &c.id, &Request::Exec(Box::new(req)))?;
    attach::wait_started(&mut s)?;
    if a.detach {
        return Ok(0);
    }
    Ok(attach::relay(s, a.tty, a.interactive)?)
}
