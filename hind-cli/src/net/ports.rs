//! `-p`/`--publish`, `--expose` and `-P` parsing, in Docker's syntax:
//! `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`, ports or equal-length
//! ranges (`8000-8001:80-81`). A host port of 0 means "pick one".

use std::net::Ipv4Addr;

use protocol::record::PortMapping;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid port mapping {0:?}: {1}")]
    Publish(String, &'static str),
    #[error("invalid exposed port {0:?}")]
    Expose(String),
}

pub type Result<T> = std::result::Result<T, Error>;

fn range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u16, u16) = (a.parse().ok()?, b.parse().ok()?);
    (a >= 1 && a <= b).then_some((a, b))
}

fn proto(p: Option<&str>) -> Option<String> {
    match p.unwrap_or("tcp") {
        "tcp" => Some("tcp".into()),
        "udp" => Some("udp".into()),
        _ => None,
    }
}

/// One `-p` value, expanded to one mapping per port.
pub fn parse_publish(spec: &str) -> Result<Vec<PortMapping>> {
    let bad = |why| Error::Publish(spec.to_string(), why);
    let (body, p) = match spec.rsplit_once('/') {
        Some((b, p)) => (b, Some(p)),
        None => (spec, None),
    };
    let proto = proto(p).ok_or_else(|| bad("the protocol must be tcp or udp"))?;
    let parts: Vec<&str> = body.split(':').collect();
    let (ip, host, cont) = match parts.as_slice() {
        [c] => (None, "", *c),
        [h, c] => (None, *h, *c),
        [ip, h, c] => (Some(*ip), *h, *c),
        _ => return Err(bad("expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]")),
    };
    let host_ip = match ip {
        None | Some("") | Some("0.0.0.0") => None,
        Some(ip) => Some(
            ip.parse::<Ipv4Addr>()
                .map_err(|_| bad("the host address must be an IPv4 address"))?,
        ),
    };
    let (c0, c1) = range(cont).ok_or_else(|| bad("the container port must be 1-65535"))?;
    let hosts: Vec<u16> = if host.is_empty() {
        vec![0; usize::from(c1 - c0) + 1]
    } else {
        let (h0, h1) = range(host).ok_or_else(|| bad("the host port must be 1-65535"))?;
        if h1 - h0 != c1 - c0 {
            return Err(bad("the host and container port ranges differ in length"));
        }
        (h0..=h1).collect()
    };
    Ok((c0..=c1)
        .zip(hosts)
        .map(|(port, host_port)| PortMapping {
            host_ip,
            host_port,
            port,
            proto: proto.clone(),
        })
        .collect())
}

/// One `--expose` value or image `ExposedPorts` key: `PORT[-PORT][/PROTO]`.
pub fn parse_expose(spec: &str) -> Result<Vec<(u16, String)>> {
    let bad = || Error::Expose(spec.to_string());
    let (body, p) = match spec.split_once('/') {
        Some((b, p)) => (b, Some(p)),
        None => (spec, None),
    };
    let proto = proto(p).ok_or_else(bad)?;
    let (a, b) = range(body).ok_or_else(bad)?;
    Ok((a..=b).map(|port| (port, proto.clone())).collect())
}

/// `PORT/PROTO` as Docker prints it.
pub fn key(m: &PortMapping) -> String {
    format!("{}/{}", m.port, m.proto)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> PortMapping {
        let v = parse_publish(s).unwrap();
        assert_eq!(v.len(), 1);
        v.into_iter().next().unwrap()
    }

    #[test]
    fn publish_forms() {
        let m = one("8080:80");
        assert_eq!(
            (m.host_ip, m.host_port, m.port, m.proto.as_str()),
            (None, 8080, 80, "tcp")
        );
        let m = one("127.0.0.1:8080:80/udp");
        assert_eq!(m.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(m.proto, "udp");
        assert_eq!(one("80").host_port, 0);
        assert_eq!(one("127.0.0.1::80").host_port, 0);
        let r = parse_publish("8000-8002:80-82").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!((r[2].host_port, r[2].port), (8002, 82));
        for bad in [
            "70000:80",
            "abc",
            "80:0",
            "1:2:3:4",
            "8000-8001:80",
            "80/sctp",
            "::1:80:80",
            "x:80:80",
        ] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expose_forms() {
        assert_eq!(parse_expose("80").unwrap(), vec![(80, "tcp".into())]);
        assert_eq!(parse_expose("53/udp").unwrap(), vec![(53, "udp".into())]);
        assert_eq!(parse_expose("1-2").unwrap().len(), 2);
        assert!(parse_expose("http").is_err());
    }
}
