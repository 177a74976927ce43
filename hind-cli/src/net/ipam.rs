//! IPv4 subnets and address allocation. A network's leases live in its
//! record (see [`super::store`]); this module only does the arithmetic, so
//! it is tested without the kernel.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid subnet {0:?}: expected an IPv4 CIDR like 10.89.0.0/24")]
    Syntax(String),
    #[error("invalid subnet {0}: host bits are set (did you mean {1}?)")]
    HostBits(String, Subnet),
    #[error("invalid subnet {0}: it must have room for a gateway and one address (/30 or larger)")]
    TooSmall(Subnet),
}

pub type Result<T> = std::result::Result<T, Error>;

/// An IPv4 network: its first address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Subnet {
        let mask = mask(prefix);
        Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        }
    }

    /// Parses a subnet a user typed: no host bits, room for a gateway and
    /// at least one container.
    pub fn parse_user(s: &str) -> Result<Subnet> {
        let net: Subnet = s.parse()?;
        let (a, _) = s.split_once('/').expect("parse checked");
        if a.parse::<Ipv4Addr>().ok() != Some(net.addr) {
            return Err(Error::HostBits(s.to_string(), net));
        }
        if net.prefix > 30 {
            return Err(Error::TooSmall(net));
        }
        Ok(net)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.addr)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let p = self.prefix.min(other.prefix);
        u32::from(self.addr) & mask(p) == u32::from(other.addr) & mask(p)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !mask(self.prefix))
    }

    /// The gateway: the first host address, as Docker and Podman pick it.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + 1)
    }

    /// Whether `ip` may be given to a container: inside, and neither the
    /// network, the broadcast nor the gateway address.
    pub fn assignable(&self, ip: Ipv4Addr) -> bool {
        self.contains(ip) && ip != self.addr && ip != self.broadcast() && ip != self.gateway()
    }

    /// The lowest assignable address not in `taken`.
    pub fn first_free<V>(&self, taken: &BTreeMap<Ipv4Addr, V>) -> Option<Ipv4Addr> {
        let first = u32::from(self.gateway()) + 1;
        let last = u32::from(self.broadcast());
        (first..last)
            .map(Ipv4Addr::from)
            .find(|ip| !taken.contains_key(ip))
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl FromStr for Subnet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Subnet> {
        let bad = || Error::Syntax(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ok(Subnet::new(addr, prefix))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl serde::Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Subnet, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The IPv4 routes of the caller's network namespace, from
/// /proc/net/route (destination and mask are little-endian hex).
pub fn host_routes() -> Vec<Subnet> {
    let Ok(text) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            // The kernel prints the address's bytes as a native-endian u32.
            let dest = Ipv4Addr::from(dest.to_ne_bytes());
            (mask != 0).then(|| Subnet::new(dest, mask.count_ones() as u8))
        })
        .collect()
}

/// A subnet for a new network that overlaps neither the host's routes nor
/// `taken`: the first free /16 of 10.88-10.127, then of 172.18-172.31
/// (Docker's 172.17 is left to Docker).
pub fn pick_subnet(routes: &[Subnet], taken: &[Subnet]) -> Option<Subnet> {
    let candidates = (88..=127)
        .map(|b| Subnet::new(Ipv4Addr::new(10, b, 0, 0), 16))
        .chain((18..=31).map(|b| Subnet::new(Ipv4Addr::new(172, b, 0, 0), 16)));
    candidates
        .into_iter()
        .find(|c| !routes.iter().chain(taken).any(|r| r.overlaps(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_arith() {
        let n = Subnet::parse_user("10.99.0.0/30").unwrap();
        assert_eq!(n.gateway(), Ipv4Addr::new(10, 99, 0, 1));
        assert_eq!(n.broadcast(), Ipv4Addr::new(10, 99, 0, 3));
        let mut taken = BTreeMap::new();
        assert_eq!(n.first_free(&taken), Some(Ipv4Addr::new(10, 99, 0, 2)));
        taken.insert(Ipv4Addr::new(10, 99, 0, 2), ());
        assert_eq!(n.first_free(&taken), None);
        assert!(!n.assignable(Ipv4Addr::new(10, 99, 0, 1)));
        assert!(n.assignable(Ipv4Addr::new(10, 99, 0, 2)));
        assert!(matches!(
            Subnet::parse_user("10.99.0.1/24"),
            Err(Error::HostBits(..))
        ));
        assert!(matches!(
            Subnet::parse_user("10.99.0.0/31"),
            Err(Error::TooSmall(..))
        ));
        assert!(Subnet::parse_user("10.99.0.0").is_err());
        assert!(Subnet::parse_user("300.0.0.0/8").is_err());
        assert!(Subnet::parse_user("10.0.0.0/33").is_err());
    }

    #[test]
    fn overlap_and_pick() {
        let a: Subnet = "10.88.0.0/16".parse().unwrap();
        let b: Subnet = "10.88.5.0/24".parse().unwrap();
        let c: Subnet = "10.89.0.0/16".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        let default: Subnet = "0.0.0.0/0".parse().unwrap();
        // A default route is not a route to a subnet: mask 0 is skipped by
        // host_routes, and picking ignores it.
        assert_eq!(pick_subnet(&[b], &[]), Some(c));
        assert_eq!(
            pick_subnet(&[], &[a, c]).unwrap().to_string(),
            "10.90.0.0/16"
        );
        assert!(default.overlaps(&a));
    }

    #[test]
    fn routes_parse() {
        // Whatever the namespace has, every entry is a well-formed subnet.
        for r in host_routes() {
            assert!(r.prefix <= 32);
        }
    }
}
