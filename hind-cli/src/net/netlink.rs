//! A small synchronous rtnetlink client: the link, address and route
//! requests container networking needs, over one raw
//! `AF_NETLINK`/`NETLINK_ROUTE` socket.
//!
//! Hand-rolled rather than taken from a crate: the `rtnetlink` crate runs on
//! an async runtime, which hind does not otherwise use (one concurrency
//! model), and the general netlink crates model every attribute of every
//! family when hind sends about eight fixed messages. Here each request is
//! one `send` and one or two `recv`s with no runtime to start, which counts
//! on the `hind run` start path. Layouts are from netlink(7), rtnetlink(7),
//! `<linux/if_link.h>` and `<linux/veth.h>`.
//!
//! A netlink socket belongs to the network namespace it was created in for
//! its whole life, whichever thread later uses it; [`Netlink::open_in`]
//! relies on that to configure a container's namespace without moving the
//! caller.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use libc::c_int;
use nix::errno::Errno;
use nix::sys::socket::{
    recv, send, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType,
};

use super::netns;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("open netlink socket")]
    Open(#[source] io::Error),
    #[error("open netlink socket in another network namespace")]
    OpenIn(#[source] netns::Error),
    #[error("invalid link name {0:?}")]
    BadName(String),
    #[error("no link named {0}")]
    NoLink(String),
    #[error("look up link {0}")]
    LinkIndex(String, #[source] io::Error),
    #[error("link {0} did not come up within {1:?}")]
    NotUp(String, Duration),
    #[error("list links")]
    #[cfg(test)]
    ListLinks(#[source] io::Error),
    #[error("bridge {0} already exists")]
    Exists(String),
    #[error("create bridge {0}")]
    CreateBridge(String, #[source] io::Error),
    #[error("create veth pair {host} (peer {peer})")]
    CreateVeth {
        host: String,
        peer: String,
        #[source]
        source: io::Error,
    },
    #[error("attach {link} to {master}")]
    SetMaster {
        link: String,
        master: String,
        #[source]
        source: io::Error,
    },
    #[error("set link {0} up")]
    SetUp(String, #[source] io::Error),
    #[error("add address {addr}/{prefix_len} to {link}")]
    AddAddr {
        link: String,
        addr: Ipv4Addr,
        prefix_len: u8,
        #[source]
        source: io::Error,
    },
    #[error("add default route via {gateway} dev {link}")]
    AddRoute {
        gateway: Ipv4Addr,
        link: String,
        #[source]
        source: io::Error,
    },
    #[error("delete link {0}")]
    DeleteLink(String, #[source] io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The kernel sizes each dump chunk to the reader's last buffer but never
/// above 32 KiB (`netlink_recvmsg` caps `max_recvmsg_len`), so a buffer this
/// size is never short; `MSG_TRUNC` still catches it if that changes.
const RECV_BUF: usize = 32 * 1024;
/// A dump that raced a link change is retried this many times.
#[cfg(test)]
const DUMP_TRIES: usize = 5;

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = libc::NLMSG_ERROR as u16;
const NLMSG_DONE: u16 = libc::NLMSG_DONE as u16;
/// `<linux/veth.h>`, not in libc: the peer's ifinfomsg inside IFLA_INFO_DATA.
const VETH_INFO_PEER: u16 = 1;

pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// A socket in the calling thread's current network namespace.
    pub fn open() -> Result<Netlink> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(|e| Error::Open(e.into()))?;
        Ok(Netlink {
            fd,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// A socket inside `netns`, created on a short-lived thread that joins
    /// it; the calling thread's namespace is untouched.
    pub fn open_in(netns: BorrowedFd<'_>) -> Result<Netlink> {
        netns::run_in(netns, Netlink::open).map_err(Error::OpenIn)?
    }

    /// The index of link `name`, or `None` if there is no such link.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        Ok(self.link(name)?.map(|l| l.index))
    }

    /// Waits until `link` is operationally up. The kernel applies a carrier
    /// change asynchronously (linkwatch activates the qdisc and forwards the
    /// bridge port), and until then packets on the link are dropped without
    /// an error: a container sending at once would lose its first TCP SYN
    /// (1 s retransmit) or DNS query (5 s). Links that report no carrier
    /// state (operstate UNKNOWN, like lo) count as up once set up.
    pub fn wait_up(&mut self, link: &str, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        // Usually up already, or within a few hundred microseconds.
        let mut pause = Duration::from_micros(100);
        loop {
            let l = self.link(link)?.ok_or_else(|| Error::NoLink(link.into()))?;
            let oper = c_int::from(l.operstate);
            let admin_up = l.flags & libc::IFF_UP as u32 != 0;
            if admin_up && (oper == libc::IF_OPER_UP || oper == libc::IF_OPER_UNKNOWN) {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(Error::NotUp(link.into(), timeout));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    /// The names of all links in the socket's namespace.
    #[cfg(test)]
    pub fn link_names(&mut self) -> Result<Vec<String>> {
        for _ in 0..DUMP_TRIES {
            let mut names = Vec::new();
            let req = Request::new(libc::RTM_GETLINK, libc::NLM_F_DUMP, &ifinfomsg(0, 0));
            let interrupted = self
                .transact(req, |ty, msg| {
                    let name = attrs(msg.get(16..).unwrap_or_default())
                        .find(|&(t, _)| t == libc::IFLA_IFNAME)
                        .map(|(_, v)| String::from_utf8_lossy(v.strip_suffix(&[0]).unwrap_or(v)));
                    if let (libc::RTM_NEWLINK, Some(name)) = (ty, name) {
                        names.push(name.into_owned());
                    }
                })
                .map_err(Error::ListLinks)?;
            // Links created by concurrent `hind run`s can make a dump skip
            // or repeat entries; the kernel flags it and a retry is cheap.
            if !interrupted {
                return Ok(names);
            }
        }
        Err(Error::ListLinks(Errno::EAGAIN.into()))
    }

    /// Creates bridge `name`, down. [`Error::Exists`] if a link of that name
    /// exists already, which callers sharing one bridge treat as success.
    pub fn create_bridge(&mut self, name: &str) -> Result<()> {
        check_name(name)?;
        let flags = libc::NLM_F_CREATE | libc::NLM_F_EXCL;
        let mut req = Request::new(libc::RTM_NEWLINK, flags, &ifinfomsg(0, 0));
        req.str(libc::IFLA_IFNAME, name);
        req.nest(libc::IFLA_LINKINFO, |r| {
            r.str(libc::IFLA_INFO_KIND, "bridge");
        });
        self.ack(req).map_err(|e| match e.raw_os_error() {
            Some(libc::EEXIST) => Error::Exists(name.into()),
            _ => Error::CreateBridge(name.into(), e),
        })
    }

    /// Creates veth pair `host` (in the socket's namespace) and `peer`,
    /// created directly inside `peer_netns` under its final name, so there is
    /// no rename step and no moment where `peer` exists on the host. The
    /// peer gets `peer_mac` if given, a random address otherwise.
    pub fn create_veth(
        &mut self,
        host: &str,
        peer: &str,
        peer_netns: BorrowedFd<'_>,
        peer_mac: Option<[u8; 6]>,
    ) -> Result<()> {
        check_name(host)?;
        check_name(peer)?;
        let flags = libc::NLM_F_CREATE | libc::NLM_F_EXCL;
        let mut req = Request::new(libc::RTM_NEWLINK, flags, &ifinfomsg(0, 0));
        req.str(libc::IFLA_IFNAME, host);
        req.nest(libc::IFLA_LINKINFO, |r| {
            r.str(libc::IFLA_INFO_KIND, "veth");
            r.nest(libc::IFLA_INFO_DATA, |r| {
                r.nest(VETH_INFO_PEER, |r| {
                    // The peer's attributes follow its own ifinfomsg. The
                    // kernel resolves the fd in our fd table while handling
                    // the send, so it only has to be open until then.
                    r.raw(&ifinfomsg(0, 0));
                    r.str(libc::IFLA_IFNAME, peer);
                    r.u32(libc::IFLA_NET_NS_FD, peer_netns.as_raw_fd() as u32);
                    if let Some(mac) = &peer_mac {
                        r.attr(libc::IFLA_ADDRESS, mac);
                    }
                });
            });
        });
        self.ack(req).map_err(|source| Error::CreateVeth {
            host: host.into(),
            peer: peer.into(),
            source,
        })
    }

    /// Enslaves `link` to bridge `master`.
    pub fn set_master(&mut self, link: &str, master: &str) -> Result<()> {
        check_name(link)?;
        let master_index = self.require(master)?;
        let mut req = Request::new(libc::RTM_SETLINK, 0, &ifinfomsg(0, 0));
        req.str(libc::IFLA_IFNAME, link)
            .u32(libc::IFLA_MASTER, master_index);
        self.ack(req).map_err(|source| Error::SetMaster {
            link: link.into(),
            master: master.into(),
            source,
        })
    }

    pub fn set_up(&mut self, link: &str) -> Result<()> {
        check_name(link)?;
        let up = libc::IFF_UP as u32;
        let mut req = Request::new(libc::RTM_SETLINK, 0, &ifinfomsg(up, up));
        req.str(libc::IFLA_IFNAME, link);
        self.ack(req).map_err(|e| Error::SetUp(link.into(), e))
    }

    /// Adds `addr/prefix_len` with its broadcast address, as
    /// `ip addr add A/P brd + dev L` does. An existing identical address is
    /// fine.
    pub fn add_addr_v4(&mut self, link: &str, addr: Ipv4Addr, prefix_len: u8) -> Result<()> {
        let err = |source| Error::AddAddr {
            link: link.into(),
            addr,
            prefix_len,
            source,
        };
        if prefix_len > 32 {
            return Err(err(Errno::EINVAL.into()));
        }
        let index = self.require(link)?;
        let flags = libc::NLM_F_CREATE | libc::NLM_F_EXCL;
        let mut req = Request::new(libc::RTM_NEWADDR, flags, &ifaddrmsg(prefix_len, index));
        req.attr(libc::IFA_LOCAL, &addr.octets())
            .attr(libc::IFA_ADDRESS, &addr.octets());
        // /31 and /32 have no broadcast address (RFC 3021).
        if prefix_len < 31 {
            let broadcast = Ipv4Addr::from(u32::from(addr) | u32::MAX >> prefix_len);
            req.attr(libc::IFA_BROADCAST, &broadcast.octets());
        }
        match self.ack(req) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => Err(err(e)),
            _ => Ok(()),
        }
    }

    /// Adds `default via gateway dev link` to the main table.
    pub fn add_default_route_v4(&mut self, gateway: Ipv4Addr, link: &str) -> Result<()> {
        let index = self.require(link)?;
        let flags = libc::NLM_F_CREATE | libc::NLM_F_EXCL;
        let mut req = Request::new(libc::RTM_NEWROUTE, flags, &rtmsg_default_v4());
        req.attr(libc::RTA_GATEWAY, &gateway.octets())
            .u32(libc::RTA_OIF, index);
        self.ack(req).map_err(|source| Error::AddRoute {
            gateway,
            link: link.into(),
            source,
        })
    }

    /// Deletes link `name` (for a veth, both ends). `Ok(false)` if there was
    /// no such link, so cleanup can run twice.
    pub fn delete_link(&mut self, name: &str) -> Result<bool> {
        check_name(name)?;
        let mut req = Request::new(libc::RTM_DELLINK, 0, &ifinfomsg(0, 0));
        req.str(libc::IFLA_IFNAME, name);
        match self.ack(req) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(Error::DeleteLink(name.into(), e)),
        }
    }

    fn link(&mut self, name: &str) -> Result<Option<LinkState>> {
        check_name(name)?;
        let mut req = Request::new(libc::RTM_GETLINK, 0, &ifinfomsg(0, 0));
        req.str(libc::IFLA_IFNAME, name);
        let mut link = None;
        let reply = self.transact(req, |ty, msg| {
            if ty != libc::RTM_NEWLINK {
                return;
            }
            // ifinfomsg: ifi_index at 4, ifi_flags at 8, then attributes.
            let operstate = attrs(msg.get(16..).unwrap_or_default())
                .find(|&(t, _)| t == libc::IFLA_OPERSTATE)
                .and_then(|(_, v)| v.first().copied());
            link = Some(LinkState {
                index: u32_at(msg, 4).unwrap_or(0),
                flags: u32_at(msg, 8).unwrap_or(0),
                operstate: operstate.unwrap_or(0),
            });
        });
        match reply {
            Ok(_) => Ok(link),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(Error::LinkIndex(name.into(), e)),
        }
    }

    /// The index of `name`, for requests that take an index (IFLA_MASTER,
    /// ifaddrmsg, RTA_OIF); the others name links by IFLA_IFNAME and save
    /// this round trip.
    fn require(&mut self, name: &str) -> Result<u32> {
        self.link_index(name)?
            .ok_or_else(|| Error::NoLink(name.into()))
    }

    fn ack(&mut self, req: Request) -> io::Result<()> {
        self.transact(req, |_, _| {}).map(drop)
    }

    /// Sends `req` and reads until its ack (or a dump's NLMSG_DONE), passing
    /// every other reply's type and payload to `each`. Returns whether the
    /// kernel flagged a dump as interrupted by a concurrent change.
    fn transact(&mut self, mut req: Request, mut each: impl FnMut(u16, &[u8])) -> io::Result<bool> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let fd = self.fd.as_raw_fd();
        // Unaddressed sends on an unconnected netlink socket go to the kernel.
        retry_eintr(|| send(fd, req.finish(seq), MsgFlags::empty()))?;
        let mut interrupted = false;
        loop {
            // MSG_TRUNC makes recv return the datagram's full length, so a
            // reply that did not fit is an error, not silently cut short.
            let n = retry_eintr(|| recv(fd, &mut self.buf, MsgFlags::MSG_TRUNC))?;
            if n > self.buf.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "netlink reply truncated",
                ));
            }
            let mut rest = &self.buf[..n];
            while rest.len() >= NLMSG_HDRLEN {
                let len = u32_at(rest, 0).unwrap_or(0) as usize;
                if len < NLMSG_HDRLEN || len > rest.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "malformed netlink reply",
                    ));
                }
                let (ty, flags) = (u16_at(rest, 4), u16_at(rest, 6).unwrap_or(0));
                let msg_seq = u32_at(rest, 8);
                let payload = &rest[NLMSG_HDRLEN..len];
                rest = &rest[align(len).min(rest.len())..];
                // Left over from an earlier request, e.g. one whose caller
                // gave up on an error mid-dump.
                if msg_seq != Some(seq) {
                    continue;
                }
                interrupted |= flags & libc::NLM_F_DUMP_INTR as u16 != 0;
                match ty {
                    // Both carry an errno, negated; 0 in NLMSG_ERROR is the ack.
                    Some(NLMSG_ERROR | NLMSG_DONE) => {
                        return match u32_at(payload, 0).map(|e| e as i32) {
                            Some(e) if e < 0 => Err(io::Error::from_raw_os_error(-e)),
                            _ => Ok(interrupted),
                        };
                    }
                    Some(ty) => each(ty, payload),
                    None => {}
                }
            }
        }
    }
}

/// What RTM_GETLINK says about one link.
struct LinkState {
    index: u32,
    /// IFF_* flags.
    flags: u32,
    /// IF_OPER_* (RFC 2863 operational state).
    operstate: u8,
}

/// Link names as the kernel's `dev_valid_name` accepts them, checked here
/// so a bad name fails with its own message rather than a bare EINVAL.
fn check_name(name: &str) -> Result<()> {
    let bad = |b: u8| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace();
    let ok = !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && !name.bytes().any(bad);
    ok.then_some(()).ok_or_else(|| Error::BadName(name.into()))
}

/// One request being built: nlmsghdr, the family's fixed header, then
/// attributes, each padded to 4 bytes (NLMSG_ALIGN, RTA_ALIGN).
struct Request(Vec<u8>);

impl Request {
    fn new(ty: u16, flags: c_int, header: &[u8]) -> Request {
        // Every request asks for an ack, so errors and completion both come
        // back as a message we wait for.
        let flags = (flags | libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
        let mut b = Vec::with_capacity(128);
        b.extend_from_slice(&0u32.to_ne_bytes()); // length: set by finish
        b.extend_from_slice(&ty.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&[0; 8]); // sequence (set by finish) and port id
        b.extend_from_slice(header);
        Request(b)
    }

    fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self.0.resize(align(self.0.len()), 0);
        self
    }

    fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let start = self.begin(ty);
        self.0.extend_from_slice(data);
        self.end(start)
    }

    /// NUL-terminated, which both NLA_STRING and NLA_NUL_STRING policies take.
    fn str(&mut self, ty: u16, s: &str) -> &mut Self {
        let start = self.begin(ty);
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
        self.end(start)
    }

    fn u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_ne_bytes())
    }

    /// An attribute whose payload is the attributes `f` adds.
    fn nest(&mut self, ty: u16, f: impl FnOnce(&mut Self)) -> &mut Self {
        let start = self.begin(ty);
        f(self);
        self.end(start)
    }

    fn begin(&mut self, ty: u16) -> usize {
        let start = self.0.len();
        self.0.extend_from_slice(&[0, 0]);
        self.0.extend_from_slice(&ty.to_ne_bytes());
        start
    }

    /// Writes the attribute's length (without trailing padding), then pads.
    fn end(&mut self, start: usize) -> &mut Self {
        let len = (self.0.len() - start) as u16;
        self.0[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self.0.resize(align(self.0.len()), 0);
        self
    }

    fn finish(&mut self, seq: u32) -> &[u8] {
        let len = self.0.len() as u32;
        self.0[0..4].copy_from_slice(&len.to_ne_bytes());
        self.0[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.0
    }
}

/// struct ifinfomsg: family, pad, type, index, flags, change. The index is
/// always 0: requests name their link with IFLA_IFNAME instead.
fn ifinfomsg(flags: u32, change: u32) -> [u8; 16] {
    let mut m = [0; 16];
    m[8..12].copy_from_slice(&flags.to_ne_bytes());
    m[12..16].copy_from_slice(&change.to_ne_bytes());
    m
}

/// struct ifaddrmsg: family, prefix length, flags, scope, index.
fn ifaddrmsg(prefix_len: u8, index: u32) -> [u8; 8] {
    let mut m = [
        libc::AF_INET as u8,
        prefix_len,
        0,
        libc::RT_SCOPE_UNIVERSE,
        0,
        0,
        0,
        0,
    ];
    m[4..8].copy_from_slice(&index.to_ne_bytes());
    m
}

/// struct rtmsg for 0.0.0.0/0 in the main table, as `ip route add` sends it:
/// family, dst_len, src_len, tos, table, protocol, scope, type, flags.
fn rtmsg_default_v4() -> [u8; 12] {
    [
        libc::AF_INET as u8,
        0,
        0,
        0,
        libc::RT_TABLE_MAIN,
        libc::RTPROT_BOOT,
        libc::RT_SCOPE_UNIVERSE,
        libc::RTN_UNICAST,
        0,
        0,
        0,
        0,
    ]
}

/// The (type, payload) attributes in `b`, stopping at the first malformed one.
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = u16_at(b, 0)? as usize;
        let ty = u16_at(b, 2)?;
        if len < 4 || len > b.len() {
            return None;
        }
        let data = &b[4..len];
        b = &b[align(len).min(b.len())..];
        Some((ty, data))
    })
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn retry_eintr<T>(mut f: impl FnMut() -> nix::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(Errno::EINTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::os::fd::AsFd;
    use std::time::Duration;

    use super::*;
    use crate::net::netns::tests::{private_netns, Scratch};

    const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
    const PEER: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 2);
    /// Off the container's subnet: reachable from inside only by the default route.
    const FAR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    /// Accepts `client`'s connection on `listener`, checks it came from
    /// `from`, and passes one byte each way.
    fn exchange(listener: &TcpListener, mut client: TcpStream, from: Ipv4Addr) {
        let (mut server, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), from);
        let mut b = [0];
        client.write_all(b"q").unwrap();
        server.read_exact(&mut b).unwrap();
        server.write_all(b"r").unwrap();
        client.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"r");
    }

    fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
        TcpStream::connect_timeout(&addr, Duration::from_secs(5))
    }

    #[test]
    fn bridge_veth_addresses_route_and_traffic() {
        private_netns();
        let scratch = Scratch::new("netlink-veth");
        netns::create(&scratch.netns()).unwrap();
        let ns = netns::open(&scratch.netns()).unwrap();
        let mut host = Netlink::open().unwrap();

        host.create_bridge("hindt0").unwrap();
        let again = host.create_bridge("hindt0");
        assert!(matches!(again, Err(Error::Exists(n)) if n == "hindt0"));
        host.create_veth("vetht0", "eth0", ns.as_fd(), None)
            .unwrap();
        host.set_master("vetht0", "hindt0").unwrap();
        host.set_up("vetht0").unwrap();
        host.set_up("hindt0").unwrap();
        host.add_addr_v4("hindt0", GATEWAY, 24).unwrap();
        host.add_addr_v4("hindt0", GATEWAY, 24).unwrap(); // EEXIST is fine
        host.add_addr_v4("hindt0", FAR, 32).unwrap();

        let mut inside = Netlink::open_in(ns.as_fd()).unwrap();
        inside.add_addr_v4("eth0", PEER, 24).unwrap();
        inside.set_up("eth0").unwrap();
        inside.add_default_route_v4(GATEWAY, "eth0").unwrap();

        let names = host.link_names().unwrap();
        for name in ["lo", "hindt0", "vetht0"] {
            assert!(
                names.iter().any(|n| n == name),
                "{name} missing from {names:?}"
            );
        }
        assert!(
            !names.iter().any(|n| n == "eth0"),
            "peer leaked to the host: {names:?}"
        );
        let mut inner = inside.link_names().unwrap();
        inner.sort();
        assert_eq!(inner, ["eth0", "lo"]);

        // Without this, the first SYN is dropped in about one run of ten.
        let second = Duration::from_secs(1);
        host.wait_up("vetht0", second).unwrap();
        host.wait_up("hindt0", second).unwrap();
        inside.wait_up("eth0", second).unwrap();

        // Host to container, over the bridge and the veth.
        let listener = netns::run_in(ns.as_fd(), || TcpListener::bind((PEER, 0)))
            .unwrap()
            .unwrap();
        let client = connect(listener.local_addr().unwrap()).unwrap();
        exchange(&listener, client, GATEWAY);

        // Container to an off-subnet host address: needs the default route.
        let far = TcpListener::bind((FAR, 0)).unwrap();
        let addr = far.local_addr().unwrap();
        let client = netns::run_in(ns.as_fd(), || connect(addr))
            .unwrap()
            .unwrap();
        exchange(&far, client, PEER);

        assert!(host.delete_link("vetht0").unwrap());
        assert!(!host.delete_link("vetht0").unwrap());
        assert_eq!(
            inside.link_names().unwrap(),
            ["lo"],
            "the peer goes with its veth"
        );
        assert!(host.delete_link("hindt0").unwrap());
    }

    #[test]
    fn lookups_and_errors() {
        private_netns();
        let mut nl = Netlink::open().unwrap();
        assert_eq!(nl.link_names().unwrap(), ["lo"]);
        assert_eq!(nl.link_index("lo").unwrap(), Some(1));
        assert_eq!(nl.link_index("nothere0").unwrap(), None);
        let brief = Duration::from_millis(1);
        assert!(matches!(nl.wait_up("lo", brief), Err(Error::NotUp(..))));
        nl.set_up("lo").unwrap();
        nl.wait_up("lo", brief).unwrap(); // operstate UNKNOWN counts as up
        assert!(matches!(
            nl.wait_up("nothere0", brief),
            Err(Error::NoLink(_))
        ));
        assert!(!nl.delete_link("nothere0").unwrap());
        let err = nl.set_master("lo", "nothere0").unwrap_err();
        assert!(matches!(err, Error::NoLink(n) if n == "nothere0"));
        let err = nl.set_up("nothere0").unwrap_err();
        assert!(matches!(&err, Error::SetUp(_, e) if e.raw_os_error() == Some(libc::ENODEV)));
        assert_eq!(err.to_string(), "set link nothere0 up");
        for bad in ["", "a/b", "sixteen-chars-xx", "..", "a b"] {
            assert!(
                matches!(nl.create_bridge(bad), Err(Error::BadName(_))),
                "{bad:?}"
            );
        }
        let err = nl.add_addr_v4("lo", PEER, 33).unwrap_err();
        assert!(
            matches!(err, Error::AddAddr { source, .. } if source.raw_os_error() == Some(libc::EINVAL))
        );
    }
}
