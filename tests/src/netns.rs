//! Private network namespaces for the networking tests. A [`NetNs`] is
//! "the host" of one test: the `hind` commands of a
//! [`TestEnv::new_netns`](crate::TestEnv::new_netns) run inside it, so the
//! bridges, veth pairs and nftables rules the engine makes land there and
//! never in the machine's own namespace. [`NetNs::peer`] adds "another
//! host" on a veth link, to reach published ports from outside.
//!
//! A namespace is held only by an fd: when the fd is closed and no process
//! is left in it, the kernel deletes it with every link and rule in it, so
//! a failing test needs no cleanup beyond its processes.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sched::{setns, unshare, CloneFlags};

use crate::process::{self, Output};

/// The env namespace's end of the [`NetNs::peer`] link.
pub const EXT_IF: &str = "ext0";
/// The env namespace's address on [`EXT_IF`]: its "external address".
pub const EXT_ADDR: &str = "192.0.2.1";
/// The peer's address on the link (its end is `eth0`).
pub const PEER_ADDR: &str = "192.0.2.2";

/// A network namespace, kept alive by an fd (shared with the commands
/// built by [`NetNs::cmd`] until they are spawned).
#[derive(Clone)]
pub struct NetNs {
    fd: Arc<OwnedFd>,
}

impl NetNs {
    /// A new namespace with `lo` up and nothing else.
    #[track_caller]
    pub fn new() -> NetNs {
        // unshare(2) moves only the calling thread (namespaces are per
        // task), so a short-lived thread does it and the test thread stays
        // where it was; the fd outlives the thread.
        let fd = std::thread::spawn(|| -> Result<OwnedFd, String> {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))?;
            // std opens with O_CLOEXEC: no other test's child inherits it.
            let f = File::open("/proc/thread-self/ns/net")
                .map_err(|e| format!("open /proc/thread-self/ns/net: {e}"))?;
            Ok(OwnedFd::from(f))
        })
        .join()
        .expect("netns thread panicked")
        .unwrap_or_else(|e| panic!("{e}"));
        let ns = NetNs { fd: Arc::new(fd) };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace at `path`: `/proc/PID/ns/net` of a container's
    /// process, or a bind-mounted namespace file.
    #[track_caller]
    pub fn open(path: &Path) -> NetNs {
        let f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        NetNs {
            fd: Arc::new(OwnedFd::from(f)),
        }
    }

    /// The namespace of process `pid`.
    #[track_caller]
    pub fn of_pid(pid: i32) -> NetNs {
        NetNs::open(Path::new(&format!("/proc/{pid}/ns/net")))
    }

    /// The fd holding the namespace (O_CLOEXEC).
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// `/proc/<test pid>/fd/<fd>`: a path another process can open (or
    /// hand to `ip ... netns PATH`) to reach this namespace.
    pub fn path(&self) -> String {
        format!("/proc/{}/fd/{}", std::process::id(), self.fd.as_raw_fd())
    }

    /// Makes `c` enter this namespace between fork and exec.
    pub fn enter_on_spawn(&self, c: &mut Command) {
        // The closure owns a reference, so the fd stays open for as long as
        // the command can be spawned; the child inherits it across fork
        // (O_CLOEXEC only closes it at exec, after setns).
        let fd = self.fd.clone();
        // SAFETY: the closure runs in the forked child before exec and only
        // makes the setns(2) syscall on an fd that is open (the Arc keeps
        // it so in the parent, hence in the child's copy of the fd table);
        // it allocates nothing and takes no lock.
        unsafe {
            c.pre_exec(move || {
                if libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// `program` run inside this namespace.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        self.enter_on_spawn(&mut c);
        c
    }

    /// Runs `program ARGS` in the namespace to completion.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        let mut c = self.cmd(program);
        c.args(args);
        process::run(c, b"", crate::default_timeout())
    }

    /// `ip ARGS` in the namespace; panics unless it succeeds. Returns its
    /// stdout.
    #[track_caller]
    pub fn ip(&self, args: &[&str]) -> String {
        let out = self.run("ip", args);
        assert!(
            out.code == 0 && !out.timed_out,
            "ip {} failed:\n{out}",
            args.join(" ")
        );
        out.stdout
    }

    /// Runs `f` on a scoped thread that has entered the namespace, and
    /// returns its result. Sockets made there stay in the namespace for
    /// good, so `f` may return them to be used from any thread.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(&*self.fd, CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("setns(CLONE_NEWNET): {e}"));
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Names of the network interfaces, from `ip -o link` (without the
    /// `@peer` suffix of a veth).
    #[track_caller]
    pub fn links(&self) -> Vec<String> {
        link_names(&self.ip(&["-o", "link"]))
    }

    /// The host ends of veth pairs left in the namespace: after every
    /// container of the test is gone there must be none.
    pub fn veths(&self) -> Vec<String> {
        self.links()
            .into_iter()
            .filter(|l| l.starts_with("veth"))
            .collect()
    }

    /// Elements of the engine's published-port maps (`pub_any` and
    /// `pub_addr` in table `ip hind`), as JSON text; empty when the table
    /// does not exist.
    pub fn published_ports(&self) -> Vec<String> {
        let out = self.run("nft", &["-j", "list", "table", "ip", "hind"]);
        if out.code != 0 {
            return Vec::new();
        }
        let v: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("nft -j output is not JSON ({e}):\n{out}"));
        let mut elems = Vec::new();
        for o in v["nftables"].as_array().into_iter().flatten() {
            let m = &o["map"];
            let name = m["name"].as_str().unwrap_or("");
            if name != "pub_any" && name != "pub_addr" {
                continue;
            }
            for e in m["elem"].as_array().into_iter().flatten() {
                elems.push(format!("{name}: {e}"));
            }
        }
        elems
    }

    /// What a test left in the namespace after its containers are gone:
    /// veth links and published-port map elements.
    pub fn leaks(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .veths()
            .into_iter()
            .map(|l| format!("veth link left: {l}"))
            .collect();
        v.extend(
            self.published_ports()
                .into_iter()
                .map(|e| format!("published port left: {e}")),
        );
        v
    }

    /// "Another host": a new namespace joined to this one by a veth pair,
    /// [`EXT_IF`] with [`EXT_ADDR`]/24 here and `eth0` with
    /// [`PEER_ADDR`]/24 there. One peer per namespace.
    #[track_caller]
    pub fn peer(&self) -> NetNs {
        let peer = NetNs::new();
        let there = peer.path();
        self.ip(&[
            "link", "add", EXT_IF, "type", "veth", "peer", "name", "eth0", "netns", &there,
        ]);
        self.ip(&["addr", "add", &format!("{EXT_ADDR}/24"), "dev", EXT_IF]);
        self.ip(&["link", "set", EXT_IF, "up"]);
        peer.ip(&["addr", "add", &format!("{PEER_ADDR}/24"), "dev", "eth0"]);
        peer.ip(&["link", "set", "eth0", "up"]);
        peer
    }
}

impl Default for NetNs {
    fn default() -> Self {
        NetNs::new()
    }
}

/// Interface names from `ip -o link` output (`2: eth0@if5: <...> ...`).
pub fn link_names(ip_o_link: &str) -> Vec<String> {
    ip_o_link
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// One HTTP/1.0 GET of `path` from `addr` (in the calling thread's
/// namespace); the response body, or what went wrong.
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let Some((head, body)) = resp.split_once("\r\n\r\n") else {
        return Err(std::io::Error::other(format!(
            "no end of headers in {resp:?}"
        )));
    };
    if !head.starts_with("HTTP/1.") || !head.contains(" 200 ") {
        return Err(std::io::Error::other(format!("not a 200: {head:?}")));
    }
    Ok(body.to_string())
}

impl NetNs {
    /// [`http_get`] from inside this namespace.
    pub fn http_get(&self, addr: SocketAddr, path: &str) -> std::io::Result<String> {
        self.run_in(|| http_get(addr, path, Duration::from_secs(5)))
    }

    /// Polls GET `path` from `addr` (inside this namespace) until it
    /// answers 200, up to `timeout`; panics with the last error. The way
    /// to wait for a server in a container to be ready.
    #[track_caller]
    pub fn wait_http(&self, addr: SocketAddr, path: &str, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            let r = self.run_in(|| http_get(addr, path, Duration::from_secs(2)));
            match r {
                Ok(body) => return body,
                Err(e) if Instant::now() >= end => {
                    panic!("GET http://{addr}{path} did not answer within {timeout:?}: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// True when a TCP connect to `addr` from this namespace succeeds
    /// within `timeout`.
    pub fn can_connect(&self, addr: SocketAddr, timeout: Duration) -> bool {
        self.run_in(|| TcpStream::connect_timeout(&addr, timeout).is_ok())
    }
}
