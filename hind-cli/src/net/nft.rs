//! hind's packet filter: all of it lives in one nftables table, `ip hind`,
//! so that one `delete table ip hind` removes every trace.
//!
//! # Why the `nft` binary
//! Each change is one `nft -f -` run with a script on stdin. nft sends the
//! whole script as one netlink batch and the kernel commits a batch as one
//! transaction: all of it applies, or none (nft(8), "-f"). Talking netlink
//! directly would save the fork and exec, but would mean carrying our own
//! copy of nft's compiler for set lookups, concatenations and maps. Reads
//! use `nft -j list ...` (libnftables-json(5)).
//!
//! Cost of one run, measured on a 2-CPU VM with kernel 6.18 and nft 1.0.6:
//! a batch that only adds elements takes 5-7 ms; one that deletes elements
//! or (re)writes chains or rules takes 17-19 ms, because the kernel waits
//! out an RCU grace period before the commit returns; `nft -j list table
//! ip hind` takes about 7 ms. So the container start path is one
//! base-plus-elements run for the network (~18 ms) and one elements-only
//! run for its published ports (~5 ms); removals read first (~25 ms).
//!
//! IPv4 only for now (family `ip`); IPv6 would be a twin `ip6 hind` table.
//!
//! # The table
//! - set `bridges` (ifname): hind's bridges; set `subnets` (ipv4_addr,
//!   interval): their subnets; set `same` (ifname . ifname): each bridge
//!   paired with itself, for the isolation rule.
//! - maps `pub_any` (proto . port -> addr . port, for `-p 8080:80`) and
//!   `pub_addr` (ip . proto . port -> addr . port, for
//!   `-p 127.0.0.1:8080:80`): the published ports. Ports are elements, not
//!   rules, so publishing never touches a chain.
//! - chain `publish`: DNATs a packet through the two maps, the specific
//!   address first; a key that is in neither map matches nothing.
//! - chain `prerouting` (nat, dstnat) jumps to `publish` for packets that
//!   arrive for a local address; chain `output` (nat, -100) does the same
//!   for packets from host processes, so `curl 127.0.0.1:8080` works.
//! - chain `postrouting` (nat, srcnat) masquerades: containers' traffic
//!   that leaves through a non-hind interface (outbound NAT); traffic from
//!   127.0.0.0/8 DNATed onto a bridge (a published port reached through
//!   127.0.0.1, which also needs `route_localnet=1` on the bridge, set by
//!   the caller); and DNATed traffic from a container onto a bridge (a
//!   container reaching a published port of a container on a bridge: without
//!   it the reply would bypass the host and the connection would fail).
//! - chain `forward` (filter, hook forward) isolates networks from each
//!   other, as Docker does: a packet routed from one hind bridge to another
//!   is dropped (`iifname . oifname` not a pair of `same`) unless it was
//!   DNATed to a published port, which is open to every network as it is
//!   to the outside. Traffic within a bridge is switched, never routed, so
//!   it never gets here.
//!
//! # Concurrency
//! Every run is atomic. Operations that must read before they write
//! (`remove_*`, because nft 1.0.6 has no `destroy` and a `delete element`
//! of an absent key fails its whole batch) take two runs; callers that may
//! race on network removal serialise it with their own lock.

use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "nft not found: install nftables (apt-get install nftables) or use --network none|host"
    )]
    NotInstalled,
    #[error("run nft")]
    Spawn(#[source] io::Error),
    /// nft ran and refused; `stderr` is the first line of its complaint.
    #[error("nft {op}: {stderr}")]
    Failed { op: &'static str, stderr: String },
    #[error("parse the output of nft {op}")]
    Parse {
        op: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A bridge name or subnet that cannot go into the table as given.
    #[error("invalid {0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The transport protocol of a published port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One published port: `host_ip:host_port/proto` on the host goes to
/// `addr:port` in a container. `host_ip` None (or 0.0.0.0) means every
/// local address.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortRule {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub proto: Proto,
    pub addr: Ipv4Addr,
    pub port: u16,
}

impl PortRule {
    fn host_ip(&self) -> Option<Ipv4Addr> {
        self.host_ip.filter(|ip| !ip.is_unspecified())
    }

    /// The map this rule lives in and its key there, in nft syntax.
    fn key(&self) -> (&'static str, String) {
        match self.host_ip() {
            Some(ip) => (
                "pub_addr",
                format!("{ip} . {} . {}", self.proto, self.host_port),
            ),
            None => ("pub_any", format!("{} . {}", self.proto, self.host_port)),
        }
    }

    fn value(&self) -> String {
        format!("{} . {}", self.addr, self.port)
    }

    fn same_key(&self, other: &PortRule) -> bool {
        self.host_ip() == other.host_ip()
            && self.proto == other.proto
            && self.host_port == other.host_port
    }

    fn add_line(&self) -> String {
        let (map, key) = self.key();
        format!("add element ip hind {map} {{ {key} : {} }}\n", self.value())
    }

    fn delete_line(&self) -> String {
        let (map, key) = self.key();
        format!("delete element ip hind {map} {{ {key} }}\n")
    }
}

/// Creates what is missing of the table and rewrites the fixed rules. Every
/// `add` of something that exists is a no-op that keeps its elements; the
/// `flush chain`s make the rules appear exactly once however often it runs.
/// `priority dstnat` is rejected for the output hook by nft 1.0.6, hence
/// the number there (the same -100).
const BASE: &str = "\
add table ip hind
add set ip hind bridges { type ifname; }
add set ip hind subnets { type ipv4_addr; flags interval; }
add set ip hind same { type ifname . ifname; }
add map ip hind pub_any { type inet_proto . inet_service : ipv4_addr . inet_service; }
add map ip hind pub_addr { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }
add chain ip hind publish
add chain ip hind prerouting { type nat hook prerouting priority dstnat; policy accept; }
add chain ip hind output { type nat hook output priority -100; policy accept; }
add chain ip hind postrouting { type nat hook postrouting priority srcnat; policy accept; }
add chain ip hind forward { type filter hook forward priority filter; policy accept; }
flush chain ip hind publish
flush chain ip hind prerouting
flush chain ip hind output
flush chain ip hind postrouting
flush chain ip hind forward
add rule ip hind publish dnat ip addr . port to ip daddr . meta l4proto . th dport map @pub_addr
add rule ip hind publish dnat ip addr . port to meta l4proto . th dport map @pub_any
add rule ip hind prerouting fib daddr type local jump publish
add rule ip hind output fib daddr type local jump publish
add rule ip hind postrouting ip saddr @subnets oifname != @bridges masquerade
add rule ip hind postrouting ip saddr 127.0.0.0/8 oifname @bridges masquerade
add rule ip hind postrouting ct status dnat ip saddr @subnets oifname @bridges masquerade
add rule ip hind forward iifname @bridges oifname @bridges iifname . oifname != @same ct status & dnat == 0 drop
";

/// Whether `nft` can be run. The lookup is done once per process.
pub fn available() -> bool {
    nft_path().is_some()
}

/// `nft` on PATH, else in /usr/sbin or /sbin: a root shell's PATH does not
/// always hold the sbin directories.
fn nft_path() -> Option<&'static Path> {
    static NFT: OnceLock<Option<PathBuf>> = OnceLock::new();
    NFT.get_or_init(|| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
            .map(|dir| dir.join("nft"))
            .find(|p| is_executable(p))
    })
    .as_deref()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs nft once with `args`, `script` on its stdin, and returns its stdout.
/// The child inherits the calling thread's network namespace.
fn nft(op: &'static str, args: &[&str], script: Option<&str>) -> Result<String> {
    let path = nft_path().ok_or(Error::NotInstalled)?;
    let mut child = Command::new(path)
        .args(args)
        .stdin(if script.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::Spawn)?;
    // nft reads the whole script before it writes anything, so writing all
    // of it before reading the pipes cannot deadlock. Dropping stdin is EOF.
    let written = match (script, child.stdin.take()) {
        (Some(s), Some(mut stdin)) => stdin.write_all(s.as_bytes()),
        _ => Ok(()),
    };
    let out = child.wait_with_output().map_err(Error::Spawn)?;
    if !out.status.success() {
        let stderr = first_line(&String::from_utf8_lossy(&out.stderr))
            .map_or_else(|| out.status.to_string(), str::to_owned);
        return Err(Error::Failed { op, stderr });
    }
    // A failed write with a successful exit would mean nft saw half a script.
    written.map_err(Error::Spawn)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The first non-empty line of nft's stderr without its location prefix
/// (`/dev/stdin:3:19-22: Error: `), which points into a script the user
/// never saw.
fn first_line(stderr: &str) -> Option<&str> {
    let line = stderr.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.split_once("Error: ").map_or(line, |(_, rest)| rest))
}

fn run_script(op: &'static str, script: &str) -> Result<()> {
    nft(op, &["-f", "-"], Some(script)).map(drop)
}

/// nft's complaint when the table, a set or an element is not there.
fn is_absent(e: &Error) -> bool {
    matches!(e, Error::Failed { stderr, .. } if stderr.contains("No such file or directory"))
}

/// An `add element` of a key already mapped to another value.
fn is_clash(e: &Error) -> bool {
    matches!(e, Error::Failed { stderr, .. } if stderr.contains("File exists"))
}

/// Creates the table, its sets, maps and chains where missing and rewrites
/// the fixed rules, in one run. Existing elements stay as they are.
#[cfg(test)]
pub fn ensure_base() -> Result<()> {
    run_script("create table ip hind", BASE)
}

/// Registers a bridge and its subnet (ensuring the base in the same run).
/// Adding what is already there is fine.
pub fn add_network(bridge: &str, subnet: (Ipv4Addr, u8)) -> Result<()> {
    check_bridge(bridge)?;
    let (net, len) = network(subnet)?;
    let script = format!(
        "{BASE}add element ip hind bridges {{ \"{bridge}\" }}\n\
         add element ip hind same {{ \"{bridge}\" . \"{bridge}\" }}\n\
         add element ip hind subnets {{ {net}/{len} }}\n"
    );
    run_script("add network", &script)
}

/// Unregisters a bridge and its subnet; what is absent is skipped. When no
/// bridge remains, the whole table goes, published ports included.
pub fn remove_network(bridge: &str, subnet: (Ipv4Addr, u8)) -> Result<()> {
    check_bridge(bridge)?;
    let subnet = network(subnet)?;
    let Some(state) = read_state()? else {
        return Ok(());
    };
    if state.bridges.iter().all(|b| b == bridge) {
        return delete_table();
    }
    let mut script = String::new();
    if state.bridges.iter().any(|b| b == bridge) {
        script += &format!("delete element ip hind bridges {{ \"{bridge}\" }}\n");
    }
    if state.same.iter().any(|b| b == bridge) {
        script += &format!("delete element ip hind same {{ \"{bridge}\" . \"{bridge}\" }}\n");
    }
    if state.subnets.contains(&subnet) {
        script += &format!(
            "delete element ip hind subnets {{ {}/{} }}\n",
            subnet.0, subnet.1
        );
    }
    if script.is_empty() {
        return Ok(());
    }
    run_script("remove network", &script)
}

/// Publishes ports, in one run when nothing is in the way. A key already
/// mapped to another value (left by a container that died without cleaning
/// up) is replaced: the first run fails as a whole, then one read and one
/// run delete the stale keys and add the new ones in one batch. A missing
/// table is created by a second run with the base in front.
pub fn add_ports(rules: &[PortRule]) -> Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    let adds: String = rules.iter().map(PortRule::add_line).collect();
    match run_script("add ports", &adds) {
        Err(e) if is_absent(&e) => run_script("add ports", &format!("{BASE}{adds}")),
        Err(e) if is_clash(&e) => {
            let mapped = read_state()?.map(|s| s.ports).unwrap_or_default();
            let mut script = String::new();
            let mut stale: Vec<&PortRule> = Vec::new();
            for rule in rules {
                let old = mapped.iter().find(|m| m.same_key(rule));
                if old.is_some_and(|m| m.value() != rule.value())
                    && !stale.iter().any(|s| s.same_key(rule))
                {
                    script += &rule.delete_line();
                    stale.push(rule);
                }
            }
            run_script("add ports", &(script + &adds))
        }
        other => other,
    }
}

/// Unpublishes ports: deletes each entry whose key and value both match, so
/// another container's mapping of the same host port stays. Entries and a
/// table that are not there are fine.
pub fn remove_ports(rules: &[PortRule]) -> Result<()> {
    // A second round covers an entry deleted by someone else between the
    // read and the write.
    for round in 0..2 {
        let Some(state) = read_state()? else {
            return Ok(());
        };
        let mut script = String::new();
        let mut gone: Vec<&PortRule> = Vec::new();
        for rule in rules {
            let mapped = state
                .ports
                .iter()
                .any(|m| m.same_key(rule) && m.value() == rule.value());
            if mapped && !gone.iter().any(|g| g.same_key(rule)) {
                script += &rule.delete_line();
                gone.push(rule);
            }
        }
        if script.is_empty() {
            return Ok(());
        }
        match run_script("remove ports", &script) {
            Err(e) if round == 0 && is_absent(&e) => continue,
            other => return other,
        }
    }
    Ok(())
}

/// The published ports, specific addresses first, then by port.
pub fn list_ports() -> Result<Vec<PortRule>> {
    let mut ports = read_state()?.map(|s| s.ports).unwrap_or_default();
    ports.sort_by_key(|p| (p.host_ip().is_none(), p.host_port, p.proto as u8, p.host_ip));
    Ok(ports)
}

#[cfg(test)]
pub fn table_exists() -> Result<bool> {
    match nft("list table ip hind", &["list", "table", "ip", "hind"], None) {
        Ok(_) => Ok(true),
        Err(e) if is_absent(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes the table and with it every rule, set and element; absent is fine.
pub fn delete_table() -> Result<()> {
    match nft(
        "delete table ip hind",
        &["delete", "table", "ip", "hind"],
        None,
    ) {
        Err(e) if is_absent(&e) => Ok(()),
        other => other.map(drop),
    }
}

/// A Linux interface name (dev_valid_name: 1 to 15 bytes, no '/', ':' or
/// whitespace), further kept to characters that need no escaping in an nft
/// string.
fn check_bridge(name: &str) -> Result<()> {
    let ok = (1..16).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!("bridge name {name:?}")))
    }
}

/// The subnet with its host bits cleared, as nft stores and lists it.
fn network((addr, len): (Ipv4Addr, u8)) -> Result<(Ipv4Addr, u8)> {
    if len > 32 {
        return Err(Error::Invalid(format!("subnet {addr}/{len}")));
    }
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    Ok((Ipv4Addr::from(u32::from(addr) & mask), len))
}

/// What the table holds, as far as this module is concerned.
#[derive(Debug, Default, PartialEq)]
struct State {
    bridges: Vec<String>,
    /// Bridges paired with themselves in `same`.
    same: Vec<String>,
    subnets: Vec<(Ipv4Addr, u8)>,
    ports: Vec<PortRule>,
}

/// One `nft -j list table ip hind`; None when there is no table.
fn read_state() -> Result<Option<State>> {
    const OP: &str = "-j list table ip hind";
    match nft(OP, &["-j", "list", "table", "ip", "hind"], None) {
        Ok(json) => parse_state(&json)
            .map(Some)
            .map_err(|source| Error::Parse { op: OP, source }),
        Err(e) if is_absent(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads the sets and maps out of nft's JSON. Elements this module did not
/// write (another protocol, a range) are skipped, not errors: hind only
/// ever acts on what it recognises.
fn parse_state(json: &str) -> serde_json::Result<State> {
    let doc: Value = serde_json::from_str(json)?;
    let mut state = State::default();
    let objects = doc["nftables"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    for object in objects {
        let (set, is_map) = match (object.get("set"), object.get("map")) {
            (Some(set), _) => (set, false),
            (None, Some(map)) => (map, true),
            _ => continue,
        };
        let elems = set["elem"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        match (set["name"].as_str(), is_map) {
            (Some("bridges"), false) => {
                let names = elems.iter().filter_map(|e| elem(e).as_str());
                state.bridges.extend(names.map(str::to_owned));
            }
            (Some("same"), false) => {
                // {"concat": [a, b]}: hind only writes a bridge with itself.
                let pairs = elems.iter().filter_map(|e| {
                    let c = elem(e).get("concat")?.as_array()?;
                    match c.as_slice() {
                        [a, b] if a == b => a.as_str().map(str::to_owned),
                        _ => None,
                    }
                });
                state.same.extend(pairs);
            }
            (Some("subnets"), false) => {
                state
                    .subnets
                    .extend(elems.iter().filter_map(|e| subnet(elem(e))));
            }
            (Some(name @ ("pub_any" | "pub_addr")), true) => {
                let specific = name == "pub_addr";
                state
                    .ports
                    .extend(elems.iter().filter_map(|e| port_rule(e, specific)));
            }
            _ => {}
        }
    }
    Ok(state)
}

/// An element's value: nft wraps elements that carry options (a timeout,
/// a comment) as `{"elem": {"val": ...}}`.
fn elem(v: &Value) -> &Value {
    v.get("elem").and_then(|e| e.get("val")).unwrap_or(v)
}

/// `"10.1.2.3"` (a /32) or `{"prefix": {"addr": "10.88.0.0", "len": 16}}`.
fn subnet(v: &Value) -> Option<(Ipv4Addr, u8)> {
    if let Some(s) = v.as_str() {
        return Some((s.parse().ok()?, 32));
    }
    let prefix = v.get("prefix")?;
    let len = u8::try_from(prefix["len"].as_u64()?).ok()?;
    Some((prefix["addr"].as_str()?.parse().ok()?, len))
}

/// A map element, `[key, value]` with concatenations on both sides:
/// `[{"concat": ["127.0.0.1", "tcp", 8080]}, {"concat": ["10.0.0.2", 80]}]`.
fn port_rule(v: &Value, specific: bool) -> Option<PortRule> {
    let [key, value] = v.as_array()?.as_slice() else {
        return None;
    };
    let key = elem(key)["concat"].as_array()?;
    let (host_ip, proto, host_port) = match (specific, key.as_slice()) {
        (true, [ip, proto, port]) => (Some(ip.as_str()?.parse().ok()?), proto, port),
        (false, [proto, port]) => (None, proto, port),
        _ => return None,
    };
    let [addr, port] = value["concat"].as_array()?.as_slice() else {
        return None;
    };
    Some(PortRule {
        host_ip,
        host_port: port_number(host_port)?,
        proto: match proto {
            Value::String(s) if s == "tcp" => Proto::Tcp,
            Value::String(s) if s == "udp" => Proto::Udp,
            Value::Number(n) if n.as_u64() == Some(6) => Proto::Tcp,
            Value::Number(n) if n.as_u64() == Some(17) => Proto::Udp,
            _ => return None,
        },
        addr: addr.as_str()?.parse().ok()?,
        port: port_number(port)?,
    })
}

/// A port as nft prints it: a number, or a number in a string.
fn port_number(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => u16::try_from(n.as_u64()?).ok(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    //! The kernel tests run as root, each on a thread of its own moved into
    //! a fresh network namespace (unshare(2) CLONE_NEWNET acts on the
    //! calling thread only); nft, spawned from that thread, inherits it.
    //! The host's ruleset is never touched.

    use super::*;
    use std::fs::File;
    use std::io::Read;
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::time::{Duration, Instant};

    use nix::sched::{setns, unshare, CloneFlags};

    /// Runs `f` on a new thread in a new, empty network namespace, which
    /// goes away with the thread (and whatever `f` left open in it).
    fn in_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            let thread = s.spawn(|| {
                unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET): run as root");
                f()
            });
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// A network namespace kept alive by an fd, with no process in it.
    struct Netns(OwnedFd);

    impl Netns {
        fn new() -> Netns {
            in_netns(|| Netns(File::open("/proc/thread-self/ns/net").unwrap().into()))
        }

        /// A path `ip ... netns PATH` opens (iproute2 opens a name with a
        /// '/' as a path): this process's fd.
        fn path(&self) -> String {
            format!("/proc/{}/fd/{}", std::process::id(), self.0.as_raw_fd())
        }

        /// Runs `f` on a thread inside this namespace.
        fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
            std::thread::scope(|s| {
                let thread = s.spawn(|| {
                    setns(&self.0, CloneFlags::CLONE_NEWNET).expect("setns");
                    f()
                });
                thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
        }
    }

    fn ip(args: &str) {
        let status = Command::new("ip")
            .args(args.split_whitespace())
            .status()
            .expect("run ip");
        assert!(status.success(), "ip {args}: {status}");
    }

    fn sysctl(path: &str, value: &str) {
        std::fs::write(format!("/proc/sys/net/ipv4/{path}"), value)
            .unwrap_or_else(|e| panic!("write {path}: {e}"));
    }

    fn rule_count() -> usize {
        let json = nft("list", &["-j", "list", "table", "ip", "hind"], None).unwrap();
        let doc: Value = serde_json::from_str(&json).unwrap();
        let objects = doc["nftables"].as_array().unwrap();
        objects.iter().filter(|o| o.get("rule").is_some()).count()
    }

    fn rule(
        host_ip: Option<[u8; 4]>,
        host_port: u16,
        proto: Proto,
        addr: [u8; 4],
        port: u16,
    ) -> PortRule {
        PortRule {
            host_ip: host_ip.map(Ipv4Addr::from),
            host_port,
            proto,
            addr: addr.into(),
            port,
        }
    }

    const NET: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 231, 0, 0), 24);

    #[test]
    fn child_inherits_thread_netns() {
        let host = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        in_netns(|| {
            let mine = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
            assert_ne!(mine, host);
            let out = Command::new("readlink")
                .arg("/proc/self/ns/net")
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                mine.to_str().unwrap()
            );
            ensure_base().unwrap();
            assert!(table_exists().unwrap());
        });
        // A sibling namespace does not see that table.
        in_netns(|| assert!(!table_exists().unwrap()));
    }

    #[test]
    fn ensure_base_is_idempotent() {
        in_netns(|| {
            ensure_base().unwrap();
            let rules = rule_count();
            // publish 2, prerouting, output, postrouting 3, forward 1.
            assert_eq!(rules, 8);
            add_network("hbr0", NET).unwrap();
            let r = rule(None, 8080, Proto::Tcp, [10, 231, 0, 2], 80);
            add_ports(std::slice::from_ref(&r)).unwrap();
            ensure_base().unwrap();
            ensure_base().unwrap();
            assert_eq!(rule_count(), rules);
            // ... and leaves the elements alone.
            assert_eq!(list_ports().unwrap(), vec![r]);
            let state = read_state().unwrap().unwrap();
            assert_eq!(state.bridges, ["hbr0"]);
            assert_eq!(state.subnets, [NET]);
        });
    }

    #[test]
    fn networks_add_and_remove() {
        in_netns(|| {
            let other = (Ipv4Addr::new(10, 232, 0, 0), 16);
            add_network("hbr0", NET).unwrap();
            add_network("hbr0", NET).unwrap();
            // Host bits are cleared.
            add_network("hbr1", (Ipv4Addr::new(10, 232, 5, 1), 16)).unwrap();
            let state = read_state().unwrap().unwrap();
            assert_eq!(state.bridges.len(), 2);
            assert_eq!(state.same.len(), 2);
            assert_eq!(state.subnets.len(), 2);
            assert!(state.subnets.contains(&other));
            assert!(matches!(
                add_network("hbr2", (Ipv4Addr::new(10, 231, 0, 0), 25)),
                Err(Error::Failed { .. })
            ));
            assert!(matches!(add_network("a b", NET), Err(Error::Invalid(_))));

            remove_network("hbr0", NET).unwrap();
            remove_network("hbr0", NET).unwrap();
            let state = read_state().unwrap().unwrap();
            assert_eq!(state.bridges, ["hbr1"]);
            assert_eq!(state.same, ["hbr1"]);
            assert_eq!(state.subnets, [other]);
            remove_network("hbr1", other).unwrap();
            assert!(!table_exists().unwrap());
            remove_network("hbr1", other).unwrap();
        });
    }

    #[test]
    fn ports_round_trip_and_exact_removal() {
        in_netns(|| {
            add_network("hbr0", NET).unwrap();
            let a = rule(None, 8080, Proto::Tcp, [10, 231, 0, 2], 80);
            let b = rule(Some([127, 0, 0, 1]), 8080, Proto::Tcp, [10, 231, 0, 3], 80);
            let c = rule(None, 5353, Proto::Udp, [10, 231, 0, 2], 53);
            let d = rule(Some([0, 0, 0, 0]), 9000, Proto::Tcp, [10, 231, 0, 4], 9000);
            add_ports(&[a.clone(), b.clone(), c.clone(), d.clone()]).unwrap();
            add_ports(std::slice::from_ref(&a)).unwrap();
            let d_any = PortRule {
                host_ip: None,
                ..d.clone()
            };
            assert_eq!(
                list_ports().unwrap(),
                vec![b.clone(), c.clone(), a.clone(), d_any.clone()]
            );

            // Same host port, another container: not removed.
            let not_a = PortRule {
                addr: [10, 231, 0, 9].into(),
                ..a.clone()
            };
            let not_b = PortRule {
                port: 81,
                ..b.clone()
            };
            remove_ports(&[not_a, not_b]).unwrap();
            assert_eq!(list_ports().unwrap().len(), 4);

            remove_ports(&[a.clone(), a.clone(), b.clone(), d]).unwrap();
            assert_eq!(list_ports().unwrap(), vec![c.clone()]);
            remove_ports(&[a, b]).unwrap();
            assert_eq!(list_ports().unwrap(), vec![c]);
        });
    }

    #[test]
    fn stale_port_is_replaced() {
        in_netns(|| {
            add_network("hbr0", NET).unwrap();
            let old = rule(None, 8080, Proto::Tcp, [10, 231, 0, 2], 80);
            let keep = rule(None, 8081, Proto::Tcp, [10, 231, 0, 2], 81);
            add_ports(&[old, keep.clone()]).unwrap();
            let new = rule(None, 8080, Proto::Tcp, [10, 231, 0, 7], 8000);
            let other = rule(Some([127, 0, 0, 1]), 8080, Proto::Udp, [10, 231, 0, 7], 53);
            add_ports(&[new.clone(), other.clone()]).unwrap();
            assert_eq!(list_ports().unwrap(), vec![other, new, keep]);
        });
    }

    #[test]
    fn absent_table_is_fine() {
        in_netns(|| {
            let r = rule(None, 8080, Proto::Tcp, [10, 231, 0, 2], 80);
            assert!(!table_exists().unwrap());
            assert_eq!(list_ports().unwrap(), []);
            remove_ports(std::slice::from_ref(&r)).unwrap();
            remove_network("hbr0", NET).unwrap();
            delete_table().unwrap();
            // add_ports on no table creates it.
            add_ports(std::slice::from_ref(&r)).unwrap();
            assert_eq!(list_ports().unwrap(), [r]);
            assert_eq!(rule_count(), 8);
            delete_table().unwrap();
            assert!(!table_exists().unwrap());
        });
    }

    /// Waits up to two seconds for a connection on `listener`.
    fn accept(listener: &TcpListener) -> SocketAddr {
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match listener.accept() {
                Ok((mut stream, peer)) => {
                    stream.set_nonblocking(false).unwrap();
                    let mut buf = [0; 4];
                    stream.read_exact(&mut buf).unwrap();
                    assert_eq!(&buf, b"ping");
                    return peer;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }

    fn connect(to: &str) -> io::Result<()> {
        let mut stream = TcpStream::connect_timeout(&to.parse().unwrap(), Duration::from_secs(2))?;
        stream.write_all(b"ping")
    }

    /// A host namespace with bridge hbr0 (10.231.0.1/24), two containers
    /// on it (c1 10.231.0.2 serving on :80, c2 10.231.0.3), and an outside
    /// network namespace at 192.0.2.2 behind veth ve0 (192.0.2.1).
    #[test]
    fn published_ports_and_nat_carry_traffic() {
        in_netns(|| {
            ip("link set lo up");
            ip("link add hbr0 type bridge");
            ip("addr add 10.231.0.1/24 dev hbr0");
            ip("link set hbr0 up");
            let (c1, c2, ext) = (Netns::new(), Netns::new(), Netns::new());
            for (n, ns, addr) in [(1, &c1, "10.231.0.2"), (2, &c2, "10.231.0.3")] {
                ip(&format!(
                    "link add vh{n} type veth peer name vc{n} netns {}",
                    ns.path()
                ));
                ip(&format!("link set vh{n} master hbr0 up"));
                ns.run(|| {
                    ip("link set lo up");
                    ip(&format!("addr add {addr}/24 dev vc{n}"));
                    ip(&format!("link set vc{n} up"));
                    ip("route add default via 10.231.0.1");
                });
            }
            ip(&format!(
                "link add ve0 type veth peer name ve1 netns {}",
                ext.path()
            ));
            ip("addr add 192.0.2.1/24 dev ve0");
            ip("link set ve0 up");
            let outside = ext.run(|| {
                ip("link set lo up");
                ip("addr add 192.0.2.2/24 dev ve1");
                ip("link set ve1 up");
                TcpListener::bind("192.0.2.2:9000").unwrap()
            });
            let server = c1.run(|| TcpListener::bind("10.231.0.2:80").unwrap());
            sysctl("ip_forward", "1");
            sysctl("conf/hbr0/route_localnet", "1");

            add_network("hbr0", NET).unwrap();
            let any = rule(None, 18080, Proto::Tcp, [10, 231, 0, 2], 80);
            let local = rule(Some([127, 0, 0, 1]), 18081, Proto::Tcp, [10, 231, 0, 2], 80);
            add_ports(&[any.clone(), local.clone()]).unwrap();
            let bridge_ip: Ipv4Addr = [10, 231, 0, 1].into();

            // From the host through loopback: output DNAT, then masquerade
            // of 127.0.0.1 onto the bridge.
            connect("127.0.0.1:18080").unwrap();
            assert_eq!(accept(&server).ip(), bridge_ip);
            connect("127.0.0.1:18081").unwrap();
            assert_eq!(accept(&server).ip(), bridge_ip);
            // From the host to its bridge address.
            connect("10.231.0.1:18080").unwrap();
            accept(&server);
            // A port published on 127.0.0.1 only is not on other addresses.
            assert!(connect("10.231.0.1:18081").is_err());
            // From another container, to the host: prerouting DNAT, and the
            // masquerade that brings the reply back through the host.
            c2.run(|| connect("10.231.0.1:18080")).unwrap();
            assert_eq!(accept(&server).ip(), bridge_ip);
            // Outbound NAT: the outside sees the host's address.
            c1.run(|| connect("192.0.2.2:9000")).unwrap();
            assert_eq!(accept(&outside).ip(), Ipv4Addr::new(192, 0, 2, 1));

            remove_ports(&[any]).unwrap();
            assert!(connect("127.0.0.1:18080").is_err());
            connect("127.0.0.1:18081").unwrap();
            accept(&server);
            remove_network("hbr0", NET).unwrap();
            assert!(!table_exists().unwrap());
        });
    }

    #[test]
    fn parses_nft_json() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "ip", "name": "hind", "handle": 1}},
            {"set": {"family": "ip", "name": "bridges", "table": "hind", "type": "ifname", "elem": ["hind0", "br-1"]}},
            {"set": {"family": "ip", "name": "subnets", "table": "hind", "type": "ipv4_addr", "flags": ["interval"],
                     "elem": ["10.1.2.3", {"prefix": {"addr": "10.88.0.0", "len": 16}}, {"range": ["10.9.0.1", "10.9.0.7"]}]}},
            {"map": {"family": "ip", "name": "pub_any", "table": "hind", "type": ["inet_proto", "inet_service"], "map": "ipv4_addr . inet_service",
                     "elem": [[{"concat": ["tcp", 8080]}, {"concat": ["10.0.0.2", 80]}],
                              [{"elem": {"val": {"concat": [17, "53"]}, "comment": "x"}}, {"concat": ["10.0.0.3", 53]}],
                              [{"concat": ["sctp", 1]}, {"concat": ["10.0.0.3", 1]}]]}},
            {"map": {"family": "ip", "name": "pub_addr", "table": "hind", "type": ["ipv4_addr", "inet_proto", "inet_service"], "map": "ipv4_addr . inet_service",
                     "elem": [[{"concat": ["127.0.0.1", "tcp", 8080]}, {"concat": ["10.0.0.2", 80]}]]}}]}"#;
        let state = parse_state(json).unwrap();
        assert_eq!(state.bridges, ["hind0", "br-1"]);
        assert_eq!(
            state.subnets,
            [([10, 1, 2, 3].into(), 32), ([10, 88, 0, 0].into(), 16)]
        );
        assert_eq!(
            state.ports,
            [
                rule(None, 8080, Proto::Tcp, [10, 0, 0, 2], 80),
                rule(None, 53, Proto::Udp, [10, 0, 0, 3], 53),
                rule(Some([127, 0, 0, 1]), 8080, Proto::Tcp, [10, 0, 0, 2], 80),
            ]
        );
        assert_eq!(
            parse_state(r#"{"nftables": []}"#).unwrap(),
            State::default()
        );
    }

    #[test]
    fn scripts_and_checks() {
        let r = rule(Some([127, 0, 0, 1]), 8080, Proto::Udp, [10, 0, 0, 2], 53);
        assert_eq!(
            r.add_line(),
            "add element ip hind pub_addr { 127.0.0.1 . udp . 8080 : 10.0.0.2 . 53 }\n"
        );
        assert_eq!(
            r.delete_line(),
            "delete element ip hind pub_addr { 127.0.0.1 . udp . 8080 }\n"
        );
        let r = PortRule {
            host_ip: Some(Ipv4Addr::UNSPECIFIED),
            ..r
        };
        assert_eq!(
            r.delete_line(),
            "delete element ip hind pub_any { udp . 8080 }\n"
        );
        assert_eq!(
            network(([10, 88, 3, 4].into(), 16)).unwrap(),
            ([10, 88, 0, 0].into(), 16)
        );
        assert_eq!(
            network(([10, 88, 3, 4].into(), 0)).unwrap(),
            ([0, 0, 0, 0].into(), 0)
        );
        assert_eq!(
            network(([10, 88, 3, 4].into(), 32)).unwrap(),
            ([10, 88, 3, 4].into(), 32)
        );
        assert!(network(([10, 88, 3, 4].into(), 33)).is_err());
        for bad in ["", "a b", "x\"", "0123456789abcdef", "..", "a/b", "a;b"] {
            assert!(check_bridge(bad).is_err(), "{bad:?}");
        }
        for good in ["hind0", "br-1a2b", "h_0.1", "0123456789abcde"] {
            check_bridge(good).unwrap();
        }
        assert_eq!(
            first_line("\n/dev/stdin:1:19-22: Error: No such file or directory\ndelete ...\n"),
            Some("No such file or directory")
        );
        assert_eq!(
            Error::Failed {
                op: "add ports",
                stderr: "Could not process rule: File exists".into()
            }
            .to_string(),
            "nft add ports: Could not process rule: File exists"
        );
    }
}
