//! Container networking: bridge networks with a veth pair and an address
//! per container, outbound NAT and published ports in one nftables table,
//! and the per-container /etc/hosts, /etc/resolv.conf and /etc/hostname.
//!
//! The engine does all of it before the shim starts, so the shim and the
//! runtime only see an OCI namespace path: each bridged container's network
//! namespace is made here, bound to a file in the run dir
//! ([`Layout::netns`]), configured, and named in config.json. It outlives
//! stop/start (the address and ports stay the container's until `rm`, like
//! a lease) and is released by `rm`, by the shim for `--rm`
//! (`hind net-release`), or, after a crash, when its lease is found stale.
//! Design notes: docs/design.md, "Networking".

pub mod commands;
pub mod files;
pub mod ipam;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod ports;
pub mod store;

use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use protocol::paths::Layout;
use protocol::record::{self, NetworkRecord, PortMapping, Record};

use crate::store as containers;
use ipam::Subnet;
use netlink::Netlink;
use store::{Lease, Locked, Network};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network {0}: no free address in {1}")]
    Exhausted(String, Subnet),
    #[error("invalid --ip {0:?}: not an IPv4 address")]
    IpSyntax(String),
    #[error("--ip {0} is not usable in network {1} ({2})")]
    IpOutside(Ipv4Addr, String, Subnet),
    #[error("--ip {0} is already in use in network {1}")]
    IpTaken(Ipv4Addr, String),
    #[error("--ip needs a bridge network, not --network {0}")]
    IpMode(String),
    #[error("--network-alias {0:?}: aliases are for user-defined networks, not --network {1}")]
    AliasMode(String, String),
    #[error("--network-alias {0:?}: not a valid host name")]
    AliasSyntax(String),
    #[error("port publishing needs a bridge network, not --network {0}")]
    PublishMode(String),
    #[error("port {0} is already published by container {1}")]
    PortTaken(String, String),
    #[error("port {0}: cannot bind {1}")]
    PortBusy(String, String, #[source] std::io::Error),
    #[error("no free host port for {0}")]
    NoFreePort(String),
    #[error("--network container:{0}: the container is not running")]
    ContainerNotRunning(String),
    #[error("invalid --add-host {0:?}: expected NAME:IP")]
    AddHost(String),
    #[error("invalid --dns {0:?}: not an IP address")]
    Dns(String),
    #[error("network {0} has active endpoints ({1})")]
    InUse(String, String),
    #[error("{0} is a pre-defined network and cannot be removed")]
    Predefined(String),
    #[error("network with name {0} already exists")]
    Exists(String),
    #[error("invalid network name {0:?}: use letters, digits, '_', '.' and '-'")]
    BadName(String),
    #[error("subnet {0} overlaps {1}")]
    Overlap(Subnet, String),
    #[error("no free subnet for network {0}: pass --subnet")]
    NoSubnet(String),
    #[error("invalid HIND_BRIDGE_SUBNET")]
    DefaultSubnet(#[source] ipam::Error),
    #[error(transparent)]
    Ipam(#[from] ipam::Error),
    #[error(transparent)]
    Ports(#[from] ports::Error),
    #[error(transparent)]
    Netlink(#[from] netlink::Error),
    #[error(transparent)]
    Netns(#[from] netns::Error),
    #[error(transparent)]
    Nft(#[from] nft::Error),
    #[error(transparent)]
    Files(#[from] files::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Record(#[from] record::Error),
    #[error(transparent)]
    Container(#[from] containers::Error),
    #[error(transparent)]
    Id(#[from] crate::container::Error),
    #[error("mkdir {0}")]
    Mkdir(PathBuf, #[source] std::io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The network flags of `run`.
#[derive(Debug, Default)]
pub struct Flags<'a> {
    pub network: &'a str,
    pub publish: &'a [String],
    pub publish_all: bool,
    pub expose: &'a [String],
    pub ip: Option<&'a str>,
    pub dns: &'a [String],
    pub dns_search: &'a [String],
    pub dns_option: &'a [String],
    pub add_host: &'a [String],
    pub hostname: Option<&'a str>,
    /// `--network-alias`: more names the container has on a user network.
    pub aliases: &'a [String],
}

/// How the bundle gets the container's network namespace.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Namespace {
    /// A new, empty one (only `lo`): `--network none`.
    #[default]
    New,
    /// The caller's: `--network host`.
    Host,
    /// An existing one: a bridged container's own, or another container's.
    Path(PathBuf),
}

/// The network side of a container, decided before it exists.
#[derive(Debug)]
pub struct Plan {
    pub record: NetworkRecord,
    pub namespace: Namespace,
    /// The dir whose hosts, resolv.conf and hostname files the container
    /// gets: its own, or the one of the container whose network it shares.
    pub files_from: PathBuf,
}

impl Plan {
    /// The bind mounts of the DNS files: (source, destination).
    pub fn mounts(&self) -> Vec<(PathBuf, &'static str)> {
        files::TARGETS
            .iter()
            .map(|(f, dest)| (files::path(&self.files_from, f), *dest))
            .collect()
    }
}

/// Checks the network flags and decides the namespace; allocates nothing.
pub fn plan(layout: &Layout, id: &str, f: &Flags, image_exposed: &[String]) -> Result<Plan> {
    let own_dir = layout.container(id);
    let mut rec = NetworkRecord {
        mode: f.network.to_string(),
        hostname: f
            .hostname
            .map_or_else(|| id[..12].to_string(), str::to_string),
        dns: f.dns.to_vec(),
        dns_search: f.dns_search.to_vec(),
        dns_options: f.dns_option.to_vec(),
        ..Default::default()
    };
    for d in f.dns {
        d.parse::<IpAddr>().map_err(|_| Error::Dns(d.clone()))?;
    }
    for h in f.add_host {
        let (name, ip) = h
            .split_once(':')
            .filter(|(n, ip)| !n.is_empty() && ip.parse::<IpAddr>().is_ok())
            .ok_or_else(|| Error::AddHost(h.clone()))?;
        rec.extra_hosts.push((name.to_string(), ip.to_string()));
    }
    for a in f.aliases {
        let ok = !a.is_empty()
            && a.len() <= 253
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok {
            return Err(Error::AliasSyntax(a.clone()));
        }
    }
    let ip =
        f.ip.map(|s| s.parse::<Ipv4Addr>().map_err(|_| Error::IpSyntax(s.into())))
            .transpose()?;
    let mut published = Vec::new();
    for p in f.publish {
        published.extend(ports::parse_publish(p)?);
    }
    if f.publish_all {
        for e in f.expose.iter().chain(image_exposed) {
            for (port, proto) in ports::parse_expose(e)? {
                if !published.iter().any(|m| m.port == port && m.proto == proto) {
                    published.push(PortMapping {
                        host_ip: None,
                        host_port: 0,
                        port,
                        proto,
                    });
                }
            }
        }
    } else {
        for e in f.expose {
            ports::parse_expose(e)?;
        }
    }

    let bridged = |rec: NetworkRecord| Plan {
        record: rec,
        namespace: Namespace::Path(layout.netns(id)),
        files_from: own_dir.clone(),
    };
    let plan = match f.network {
        "none" | "host" => {
            if !published.is_empty() {
                return Err(Error::PublishMode(f.network.into()));
            }
            if let Some(a) = f.aliases.first() {
                return Err(Error::AliasMode(a.clone(), f.network.into()));
            }
            if ip.is_some() {
                return Err(Error::IpMode(f.network.into()));
            }
            let host = f.network == "host";
            if host && f.hostname.is_none() {
                rec.hostname = nix::unistd::gethostname()
                    .ok()
                    .and_then(|h| h.into_string().ok())
                    .unwrap_or(rec.hostname);
            }
            Plan {
                record: rec,
                namespace: if host {
                    Namespace::Host
                } else {
                    Namespace::New
                },
                files_from: own_dir.clone(),
            }
        }
        m if m.starts_with("container:") => {
            let other = containers::resolve(layout, &m["container:".len()..])?;
            if !other.running() || other.record.pid <= 0 {
                return Err(Error::ContainerNotRunning(m["container:".len()..].into()));
            }
            if !published.is_empty() {
                return Err(Error::PublishMode(f.network.into()));
            }
            if ip.is_some() {
                return Err(Error::IpMode(f.network.into()));
            }
            if let Some(a) = f.aliases.first() {
                return Err(Error::AliasMode(a.clone(), f.network.into()));
            }
            let theirs = other.record.network.clone().unwrap_or_default();
            rec.mode = format!("container:{}", other.id);
            rec.hostname = theirs.hostname.clone();
            let namespace = if theirs.network.is_some() {
                Namespace::Path(layout.netns(&other.id))
            } else if theirs.mode == "host" {
                Namespace::Host
            } else {
                Namespace::Path(PathBuf::from(format!("/proc/{}/ns/net", other.record.pid)))
            };
            Plan {
                record: rec,
                namespace,
                files_from: other.dir.clone(),
            }
        }
        name => {
            let name = if name == "default" {
                store::DEFAULT
            } else {
                name
            };
            if name == store::DEFAULT {
                if let Some(a) = f.aliases.first() {
                    return Err(Error::AliasMode(a.clone(), f.network.into()));
                }
            }
            if name != store::DEFAULT {
                let net = store::find(layout, name)?.ok_or_else(|| Error::NotFound(name.into()))?;
                if let Some(ip) = ip {
                    check_ip(&net, ip)?;
                }
                rec.network = Some(net.name);
            } else {
                if let (Some(ip), Some(net)) = (ip, store::find(layout, name)?) {
                    check_ip(&net, ip)?;
                }
                rec.network = Some(store::DEFAULT.into());
            }
            rec.mode = rec.network.clone().expect("set");
            rec.ip = ip;
            rec.aliases = f.aliases.to_vec();
            rec.ports = published;
            bridged(rec)
        }
    };
    Ok(plan)
}

fn check_ip(net: &Network, ip: Ipv4Addr) -> Result<()> {
    if !net.subnet.assignable(ip) {
        return Err(Error::IpOutside(ip, net.name.clone(), net.subnet));
    }
    Ok(())
}

/// The container's MAC address, made from its IPv4 address as Docker does
/// (02:42 and the four address bytes: locally administered, unicast). An
/// address handed out again comes with the same MAC, so the host's and
/// other containers' ARP caches stay right across container generations.
pub fn mac_of(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// [`mac_of`] as `02:42:0a:58:00:02`.
pub fn mac_string(ip: Ipv4Addr) -> String {
    mac_of(ip)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// How long a new link may take to come up before start fails.
const LINK_UP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The host end of a container's veth pair: unique per host, within
/// IFNAMSIZ (15 characters).
pub fn veth_name(id: &str) -> String {
    format!("veth{}", &id[..11])
}

/// Allocates and sets up what the container's record asks for: the lease,
/// the network namespace and veth pair, published ports, and the DNS
/// files. Idempotent, so `start` calls it again: after a reboot it rebuilds
/// the namespace with the same address. Updates the record.
pub fn attach(layout: &Layout, id: &str) -> Result<()> {
    let dir = layout.container(id);
    let rec = Record::load(&dir)?;
    let Some(mut net_rec) = rec.network.clone() else {
        return Ok(());
    };
    if net_rec.mode.starts_with("container:") {
        return Ok(());
    }
    let Some(net_name) = net_rec.network.clone() else {
        write_files(&dir, &rec.name, &net_rec, None, &[])?;
        return Ok(());
    };
    let lock = Locked::acquire(layout)?;
    let mut net = match lock.load(&net_name)? {
        Some(n) => n,
        None if net_name == store::DEFAULT => create_default(layout, &lock)?,
        None => return Err(Error::NotFound(net_name)),
    };
    reclaim_stale(layout, &mut net);
    let ip = match net.lease_of(id) {
        Some(ip) => ip,
        None => {
            let ip = match net_rec.ip {
                Some(ip) => {
                    check_ip(&net, ip)?;
                    if net.leases.contains_key(&ip) {
                        return Err(Error::IpTaken(ip, net.name.clone()));
                    }
                    ip
                }
                None => net
                    .subnet
                    .first_free(&net.leases)
                    .ok_or_else(|| Error::Exhausted(net.name.clone(), net.subnet))?,
            };
            net.leases.insert(
                ip,
                Lease {
                    container: id.to_string(),
                    name: rec.name.clone(),
                    aliases: net_rec.aliases.clone(),
                },
            );
            lock.save(&net)?;
            ip
        }
    };
    net_rec.ip = Some(ip);
    net_rec.prefix_len = net.subnet.prefix;
    net_rec.gateway = Some(net.gateway);
    // Saved before the kernel work, so a failure below is undone by
    // release() from what the record says.
    record::update(&dir, |r| r.network = Some(net_rec.clone()))?;

    let mut nl = Netlink::open()?;
    ensure_bridge(&mut nl, &net)?;
    let ns_path = layout.netns(id);
    let veth = veth_name(id);
    if !netns::is_bound(&ns_path) {
        // A veth left from the namespace this replaces may still be on its
        // way out (the kernel destroys namespaces asynchronously).
        nl.delete_link(&veth)?;
        let parent = ns_path.parent().expect("netns path has a parent");
        std::fs::create_dir_all(parent).map_err(|e| Error::Mkdir(parent.to_path_buf(), e))?;
        // A leftover plain file (after a reboot) would make create fail.
        let _ = std::fs::remove_file(&ns_path);
        netns::create(&ns_path)?;
    }
    if nl.link_index(&veth)?.is_none() {
        let ns = netns::open(&ns_path)?;
        nl.create_veth(&veth, "eth0", ns.as_fd(), Some(mac_of(ip)))?;
        nl.set_master(&veth, &net.bridge)?;
        nl.set_up(&veth)?;
        // The container's side, from a socket made inside its namespace.
        let mut inner = Netlink::open_in(ns.as_fd())?;
        inner.add_addr_v4("eth0", ip, net.subnet.prefix)?;
        inner.set_up("eth0")?;
        inner.add_default_route_v4(net.gateway, "eth0")?;
        // Until the kernel has brought the links up (asynchronously),
        // packets are dropped without an error: a container that sends at
        // once would lose its first SYN or DNS query to a retry timeout.
        inner.wait_up("eth0", LINK_UP_TIMEOUT)?;
        nl.wait_up(&veth, LINK_UP_TIMEOUT)?;
        nl.wait_up(&net.bridge, LINK_UP_TIMEOUT)?;
    }
    if !net_rec.ports.is_empty() {
        publish(layout, id, &mut net_rec, ip)?;
        record::update(&dir, |r| r.network = Some(net_rec.clone()))?;
    }
    let user_network = net.name != store::DEFAULT;
    let peers = if user_network {
        peers_of(&net, id)
    } else {
        Vec::new()
    };
    write_files(&dir, &rec.name, &net_rec, Some(ip), &peers)?;
    if user_network {
        refresh_hosts(layout, &net, Some(id));
    }
    drop(lock);
    Ok(())
}

/// The default network's record, made if missing: Docker always lists
/// `bridge`, so `network ls` and `inspect` make it as a run would (the
/// bridge itself waits for the first container).
pub fn ensure_default(layout: &Layout) -> Result<Network> {
    let lock = Locked::acquire(layout)?;
    match lock.load(store::DEFAULT)? {
        Some(n) => Ok(n),
        None => create_default(layout, &lock),
    }
}

/// Makes the default network's record on first use; its subnet comes from
/// HIND_BRIDGE_SUBNET or the first /16 free of the host's routes.
fn create_default(layout: &Layout, lock: &Locked) -> Result<Network> {
    let subnet = match std::env::var("HIND_BRIDGE_SUBNET") {
        Ok(s) if !s.is_empty() => Subnet::parse_user(&s).map_err(Error::DefaultSubnet)?,
        _ => pick_subnet(layout, store::DEFAULT)?,
    };
    let net = Network::new(store::DEFAULT, random_id()?, subnet);
    lock.save(&net)?;
    Ok(net)
}

/// A subnet for a new network: free of the host's routes and of the other
/// networks' subnets.
pub fn pick_subnet(layout: &Layout, name: &str) -> Result<Subnet> {
    let taken: Vec<Subnet> = store::list(layout)?.iter().map(|n| n.subnet).collect();
    ipam::pick_subnet(&ipam::host_routes(), &taken).ok_or_else(|| Error::NoSubnet(name.into()))
}

pub fn random_id() -> Result<String> {
    Ok(crate::container::new_id()?)
}

/// Creates the network's bridge if it is missing (first use, or after a
/// reboot): address, up, forwarding, and its NAT rules. Returns whether it
/// did.
pub fn ensure_bridge(nl: &mut Netlink, net: &Network) -> Result<bool> {
    if nl.link_index(&net.bridge)?.is_some() {
        return Ok(false);
    }
    match nl.create_bridge(&net.bridge) {
        Ok(()) | Err(netlink::Error::Exists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    nl.add_addr_v4(&net.bridge, net.gateway, net.subnet.prefix)?;
    nl.set_up(&net.bridge)?;
    netns::sysctl("net.ipv4.ip_forward", "1")?;
    // Lets DNAT send packets from 127.0.0.1 out to the bridge, so that
    // published ports answer on localhost without a proxy process.
    netns::sysctl(&format!("net.ipv4.conf.{}.route_localnet", net.bridge), "1")?;
    if nft::available() {
        nft::add_network(&net.bridge, (net.subnet.addr, net.subnet.prefix))?;
    } else {
        // Containers still reach the host and each other; publishing a
        // port fails with nft's own "not found" error.
        eprintln!(
            "hind: warning: nft not found: network {} has no outbound NAT (apt-get install nftables)",
            net.name
        );
    }
    Ok(true)
}

/// Whether `net` is the default network with no container left: its
/// bridge and rules were made for its containers (a user network's belong
/// to the network the user made), so they go with the last one and come
/// back with the next, as Podman's default network does. Nothing of hind
/// stays in the host's network once its containers are gone.
fn unused_default(net: &Network) -> bool {
    net.name == store::DEFAULT && net.leases.is_empty()
}

/// Removes a network's bridge and rules (`network rm`, and the default
/// network's once unused).
pub fn remove_bridge(net: &Network) -> Result<()> {
    if nft::available() {
        nft::remove_network(&net.bridge, (net.subnet.addr, net.subnet.prefix))?;
    }
    Netlink::open()?.delete_link(&net.bridge)?;
    Ok(())
}

fn rule(m: &PortMapping, ip: Ipv4Addr) -> nft::PortRule {
    nft::PortRule {
        host_ip: m.host_ip,
        host_port: m.host_port,
        proto: if m.proto == "udp" {
            nft::Proto::Udp
        } else {
            nft::Proto::Tcp
        },
        addr: ip,
        port: m.port,
    }
}

/// Which container holds `ip` in any network (for error messages and to
/// tell a live mapping from a stale one).
fn owner_of(layout: &Layout, ip: Ipv4Addr) -> Option<containers::Container> {
    let nets = store::list(layout).ok()?;
    let lease = nets.iter().find_map(|n| n.leases.get(&ip))?;
    containers::Container::load(layout, &lease.container).ok()
}

/// Installs the container's published ports: picks host ports for those
/// without, refuses ports a running container holds, and replaces stale
/// mappings of stopped or vanished containers (Docker's rule: ports
/// conflict only between running containers).
fn publish(layout: &Layout, id: &str, rec: &mut NetworkRecord, ip: Ipv4Addr) -> Result<()> {
    let existing = nft::list_ports()?;
    let clash = |a: &nft::PortRule, m: &PortMapping| {
        a.host_port == m.host_port
            && a.proto.to_string() == m.proto
            && (a.host_ip.is_none() || m.host_ip.is_none() || a.host_ip == m.host_ip)
    };
    let mut stale = Vec::new();
    let mut taken: Vec<(u16, String)> = existing
        .iter()
        .map(|r| (r.host_port, r.proto.to_string()))
        .collect();
    for m in rec.ports.iter_mut() {
        let label = format!("{}/{}", m.host_port, m.proto);
        if m.host_port == 0 {
            m.host_port = free_port(m, &taken)?;
            taken.push((m.host_port, m.proto.clone()));
            continue;
        }
        for r in existing.iter().filter(|r| clash(r, m) && r.addr != ip) {
            match owner_of(layout, r.addr) {
                Some(c) if c.id != id && c.running() => {
                    return Err(Error::PortTaken(label, c.record.name.clone()))
                }
                _ => stale.push(r.clone()),
            }
        }
        // A host process listening there would be shadowed for remote
        // clients and reached on localhost: refuse, as Docker's proxy would.
        if !existing.iter().any(|r| clash(r, m)) {
            bind_check(m).map_err(|e| Error::PortBusy(label.clone(), bind_addr(m), e))?;
        }
    }
    if !stale.is_empty() {
        nft::remove_ports(&stale)?;
    }
    let rules: Vec<nft::PortRule> = rec.ports.iter().map(|m| rule(m, ip)).collect();
    nft::add_ports(&rules)?;
    Ok(())
}

fn bind_addr(m: &PortMapping) -> String {
    format!(
        "{}:{}",
        m.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
        m.host_port
    )
}

fn bind_check(m: &PortMapping) -> std::io::Result<()> {
    let addr = bind_addr(m);
    if m.proto == "udp" {
        UdpSocket::bind(&addr).map(drop)
    } else {
        TcpListener::bind(&addr).map(drop)
    }
}

/// A host port from the ephemeral range (32768-60999, as Docker) that no
/// mapping uses and nothing on the host listens on, starting at a random
/// offset so that parallel runs rarely race for one.
fn free_port(m: &PortMapping, taken: &[(u16, String)]) -> Result<u16> {
    const LO: u32 = 32768;
    const HI: u32 = 60999;
    let start = u32::from_le_bytes(rand4()) % (HI - LO + 1);
    for i in 0..=(HI - LO) {
        let port = (LO + (start + i) % (HI - LO + 1)) as u16;
        if taken
            .iter()
            .any(|(p, proto)| *p == port && *proto == m.proto)
        {
            continue;
        }
        let probe = PortMapping {
            host_port: port,
            ..m.clone()
        };
        if bind_check(&probe).is_ok() {
            return Ok(port);
        }
    }
    Err(Error::NoFreePort(ports::key(m)))
}

fn rand4() -> [u8; 4] {
    let mut b = [0u8; 4];
    // SAFETY: getrandom(2) writes at most b.len() bytes into b.
    let _ = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    b
}

/// The other members of `net`, for /etc/hosts.
fn peers_of(net: &Network, except: &str) -> Vec<files::HostEntry> {
    net.leases
        .iter()
        .filter(|(_, l)| l.container != except)
        .map(|(ip, l)| files::HostEntry {
            ip: ip.to_string(),
            names: [l.name.clone(), l.container[..12].to_string()]
                .into_iter()
                .chain(l.aliases.iter().cloned())
                .collect(),
        })
        .collect()
}

fn write_files(
    dir: &Path,
    name: &str,
    rec: &NetworkRecord,
    ip: Option<Ipv4Addr>,
    peers: &[files::HostEntry],
) -> Result<()> {
    let host = rec.mode == "host";
    let hosts = if host {
        files::host_hosts(&rec.extra_hosts)
    } else {
        files::hosts(ip, &rec.hostname, name, &rec.extra_hosts, peers)
    };
    files::make_dir(dir)?;
    files::write_in_place(&files::path(dir, files::HOSTS), &hosts)?;
    let dns = files::DnsOverrides {
        servers: &rec.dns,
        search: &rec.dns_search,
        options: &rec.dns_options,
    };
    files::write_in_place(
        &files::path(dir, files::RESOLV_CONF),
        &files::resolv_conf(&dns, host),
    )?;
    files::write_in_place(
        &files::path(dir, files::HOSTNAME),
        &format!("{}\n", rec.hostname),
    )?;
    Ok(())
}

/// Rewrites /etc/hosts of every member of a user network but `except`, so
/// members find each other by name. Best effort: a member whose record is
/// unreadable keeps its old file.
fn refresh_hosts(layout: &Layout, net: &Network, except: Option<&str>) {
    for (ip, lease) in &net.leases {
        if Some(lease.container.as_str()) == except {
            continue;
        }
        let dir = layout.container(&lease.container);
        let Ok(r) = Record::load(&dir) else { continue };
        let Some(nr) = r.network.as_ref() else {
            continue;
        };
        let _ = write_files(
            &dir,
            &r.name,
            nr,
            Some(*ip),
            &peers_of(net, &lease.container),
        );
    }
}

/// Drops the leases of containers that no longer exist (a crash between
/// their removal and ours), with whatever they left in the kernel.
fn reclaim_stale(layout: &Layout, net: &mut Network) {
    let stale: Vec<(Ipv4Addr, String)> = net
        .leases
        .iter()
        .filter(|(_, l)| {
            !layout
                .container(&l.container)
                .join(protocol::paths::RECORD)
                .exists()
        })
        .map(|(ip, l)| (*ip, l.container.clone()))
        .collect();
    for (ip, id) in stale {
        let _ = release_kernel(layout, &id, Some(ip), None);
        net.leases.remove(&ip);
    }
}

/// Removes the published ports pointing at `ip`, the veth pair and the
/// namespace of container `id`. Every step runs even if one fails; the
/// first error is returned.
fn release_kernel(
    layout: &Layout,
    id: &str,
    ip: Option<Ipv4Addr>,
    ports: Option<&[PortMapping]>,
) -> Result<()> {
    let mut first: Option<Error> = None;
    let mut keep = |r: Result<()>| {
        if let Err(e) = r {
            first.get_or_insert(e);
        }
    };
    if let Some(ip) = ip {
        if nft::available() {
            keep((|| {
                let mine: Vec<nft::PortRule> = match ports {
                    Some(p) => p.iter().map(|m| rule(m, ip)).collect(),
                    None => nft::list_ports()?
                        .into_iter()
                        .filter(|r| r.addr == ip)
                        .collect(),
                };
                if !mine.is_empty() {
                    nft::remove_ports(&mine)?;
                }
                Ok(())
            })());
        }
    }
    keep((|| {
        Netlink::open()?.delete_link(&veth_name(id))?;
        Ok(())
    })());
    keep(netns::remove(&layout.netns(id)).map_err(Error::from));
    first.map_or(Ok(()), Err)
}

/// Releases everything the container's networking holds: ports, veth,
/// namespace, lease; and updates the other members' /etc/hosts. Safe to
/// call twice and on a container that never got that far.
pub fn release(layout: &Layout, id: &str) -> Result<()> {
    let dir = layout.container(id);
    let rec = match Record::load(&dir) {
        Ok(r) => r,
        Err(_) => {
            // No record: only a namespace file may be left.
            netns::remove(&layout.netns(id))?;
            return Ok(());
        }
    };
    let Some(nr) = rec.network.as_ref() else {
        return Ok(());
    };
    let Some(net_name) = nr.network.as_deref() else {
        return Ok(());
    };
    let lock = Locked::acquire(layout)?;
    let result = release_kernel(layout, id, nr.ip, Some(&nr.ports));
    if let Some(mut net) = lock.load(net_name)? {
        if let Some(ip) = net.lease_of(id) {
            net.leases.remove(&ip);
            lock.save(&net)?;
            if net.name != store::DEFAULT {
                refresh_hosts(layout, &net, None);
            }
        }
        if unused_default(&net) {
            remove_bridge(&net)?;
        }
    }
    result
}

/// Whether a container counts as attached for `network rm`: it has a lease
/// and still exists.
pub fn active_members(layout: &Layout, net: &Network) -> Vec<String> {
    net.leases
        .values()
        .filter(|l| layout.container(&l.container).is_dir())
        .map(|l| l.name.clone())
        .collect()
}

/// For `ps` and `inspect`: a container's ports as Docker prints them.
pub fn format_ports(rec: &NetworkRecord) -> String {
    rec.ports
        .iter()
        .map(|m| {
            format!(
                "{}:{}->{}",
                m.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                m.host_port,
                ports::key(m)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
