//! `hind network ls|create|rm|inspect|prune`, `hind port` and the hidden
//! `hind net-release` the shim runs for `--rm` containers.

use std::io::Write;

use anyhow::Context;
use protocol::paths::Layout;
use serde_json::{json, Value};

use super::{ipam::Subnet, store, Error, Locked, Network};
use crate::cli::{NetReleaseArgs, NetworkCommand, PortArgs};
use crate::format;

/// The networks Docker always lists; `bridge` is hind's default network
/// (listed once it exists), `host` and `none` are modes, not records.
const PREDEFINED: [&str; 3] = [store::DEFAULT, "host", "none"];

pub fn network(layout: &Layout, c: NetworkCommand) -> anyhow::Result<i32> {
    match c {
        NetworkCommand::Ls(a) => ls(layout, a),
        NetworkCommand::Create(a) => create(layout, a),
        NetworkCommand::Rm(a) => rm(layout, &a.networks),
        NetworkCommand::Inspect(a) => inspect(layout, &a.networks),
        NetworkCommand::Prune(_) => prune(layout),
    }
}

/// `host` and `none` as `ls` shows them: fixed ids of their own.
fn pseudo(name: &str) -> Value {
    use sha2::Digest;
    let id = format!("{:x}", sha2::Sha256::digest(format!("hind network {name}")));
    json!({"ID": id, "Name": name, "Driver": if name == "host" { "host" } else { "null" }, "Scope": "local"})
}

fn ls(layout: &Layout, a: crate::cli::NetworkLsArgs) -> anyhow::Result<i32> {
    super::ensure_default(layout)?;
    let mut rows: Vec<Value> = store::list(layout)?
        .iter()
        .map(|n| json!({"ID": n.id, "Name": n.name, "Driver": n.driver, "Scope": "local", "Subnet": n.subnet.to_string(), "Bridge": n.bridge, "CreatedAt": n.created}))
        .collect();
    rows.push(pseudo("host"));
    rows.push(pseudo("none"));
    rows.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    let short = |v: &Value| -> String {
        let id = v["ID"].as_str().unwrap_or_default();
        if a.list.no_trunc {
            id.to_string()
        } else {
            id[..12.min(id.len())].to_string()
        }
    };
    let mut out = std::io::stdout().lock();
    if a.list.quiet {
        for r in &rows {
            writeln!(out, "{}", short(r))?;
        }
        return Ok(0);
    }
    if format::print_rows(&mut out, a.list.format.as_deref(), &rows)? {
        return Ok(0);
    }
    let mut table = vec![["NETWORK ID", "NAME", "DRIVER", "SCOPE"]
        .map(String::from)
        .to_vec()];
    for r in &rows {
        let f = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        table.push(vec![short(r), f("Name"), f("Driver"), f("Scope")]);
    }
    write!(out, "{}", format::table(&table))?;
    Ok(0)
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && c.all(|x| x.is_ascii_alphanumeric() || "_.-".contains(x))
}

fn create(layout: &Layout, a: crate::cli::NetworkCreateArgs) -> anyhow::Result<i32> {
    if a.driver != "bridge" {
        anyhow::bail!(
            "network driver {:?} is not supported (only bridge)",
            a.driver
        );
    }
    if !valid_name(&a.name) || a.name.len() > 64 {
        return Err(Error::BadName(a.name).into());
    }
    if PREDEFINED.contains(&a.name.as_str()) || a.name == "default" {
        anyhow::bail!("{} is a pre-defined network name", a.name);
    }
    let lock = Locked::acquire(layout)?;
    if lock.load(&a.name)?.is_some() {
        return Err(Error::Exists(a.name).into());
    }
    let subnet = match &a.subnet {
        Some(s) => {
            let subnet = Subnet::parse_user(s)?;
            for n in store::list(layout)? {
                if n.subnet.overlaps(&subnet) {
                    return Err(Error::Overlap(subnet, format!("network {}", n.name)).into());
                }
            }
            for r in super::ipam::host_routes() {
                if r.overlaps(&subnet) && !r.addr.is_unspecified() {
                    return Err(Error::Overlap(subnet, format!("the host's route to {r}")).into());
                }
            }
            subnet
        }
        None => super::pick_subnet(layout, &a.name)?,
    };
    let net = Network::new(&a.name, super::random_id()?, subnet);
    lock.save(&net)?;
    let made = (|| -> super::Result<()> {
        let mut nl = super::Netlink::open()?;
        super::ensure_bridge(&mut nl, &net)?;
        Ok(())
    })();
    if let Err(e) = made {
        let _ = super::remove_bridge(&net);
        let _ = lock.remove(&net.name);
        return Err(e).with_context(|| format!("create network {}", net.name));
    }
    println!("{}", net.id);
    Ok(0)
}

fn rm(layout: &Layout, names: &[String]) -> anyhow::Result<i32> {
    let mut failed = false;
    for q in names {
        let r = (|| -> super::Result<()> {
            if PREDEFINED.contains(&q.as_str()) {
                return Err(Error::Predefined(q.clone()));
            }
            let lock = Locked::acquire(layout)?;
            let net = store::find(layout, q)?.ok_or_else(|| Error::NotFound(q.clone()))?;
            if net.name == store::DEFAULT {
                return Err(Error::Predefined(q.clone()));
            }
            let members = super::active_members(layout, &net);
            if !members.is_empty() {
                return Err(Error::InUse(net.name.clone(), members.join(", ")));
            }
            super::remove_bridge(&net)?;
            lock.remove(&net.name)?;
            Ok(())
        })();
        match r {
            Ok(()) => println!("{q}"),
            Err(e) => {
                eprintln!("hind: {:#}", anyhow::Error::from(e));
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

fn document(layout: &Layout, n: &Network) -> Value {
    let containers: serde_json::Map<String, Value> = n
        .leases
        .iter()
        .filter(|(_, l)| layout.container(&l.container).is_dir())
        .map(|(ip, l)| {
            (
                l.container.clone(),
                json!({"Name": l.name, "IPv4Address": format!("{ip}/{}", n.subnet.prefix), "MacAddress": super::mac_string(*ip), "IPv6Address": ""}),
            )
        })
        .collect();
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()}]},
        "Internal": false,
        "Attachable": false,
        "Containers": containers,
        "Options": {"com.docker.network.bridge.name": n.bridge},
        "Labels": {},
    })
}

fn inspect(layout: &Layout, names: &[String]) -> anyhow::Result<i32> {
    let mut docs = Vec::new();
    let mut failed = false;
    if names.iter().any(|n| n == store::DEFAULT) {
        super::ensure_default(layout)?;
    }
    for q in names {
        match store::find(layout, q)? {
            Some(n) => docs.push(document(layout, &n)),
            None => {
                eprintln!("hind: {}", Error::NotFound(q.clone()));
                failed = true;
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&docs)?);
    Ok(if failed { 1 } else { 0 })
}

/// Removes user networks without members, and on every network the leases
/// of containers that are gone (with their veth, namespace and ports).
fn prune(layout: &Layout) -> anyhow::Result<i32> {
    let lock = Locked::acquire(layout)?;
    let mut removed = Vec::new();
    for mut n in store::list(layout)? {
        let before = n.leases.len();
        super::reclaim_stale(layout, &mut n);
        if n.leases.len() != before {
            lock.save(&n)?;
        }
        if n.name != store::DEFAULT && n.leases.is_empty() {
            super::remove_bridge(&n)?;
            lock.remove(&n.name)?;
            removed.push(n.name);
        } else if super::unused_default(&n) {
            super::remove_bridge(&n)?;
        } else if super::nft::available() {
            // Puts back the NAT rules of a network whose bridge exists,
            // should the ruleset have been flushed since.
            super::nft::add_network(&n.bridge, (n.subnet.addr, n.subnet.prefix))?;
        }
    }
    if !removed.is_empty() {
        println!("Deleted Networks:");
        for n in removed {
            println!("{n}");
        }
    }
    Ok(0)
}

pub fn port(layout: &Layout, a: PortArgs) -> anyhow::Result<i32> {
    let c = crate::store::resolve(layout, &a.container)?;
    let ports = c
        .record
        .network
        .as_ref()
        .map(|n| n.ports.clone())
        .unwrap_or_default();
    let want = a.port.as_deref().map(|p| {
        if p.contains('/') {
            p.to_string()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut out = std::io::stdout().lock();
    let mut any = false;
    for m in &ports {
        let key = super::ports::key(m);
        if want.as_ref().is_some_and(|w| *w != key) {
            continue;
        }
        any = true;
        let ip = m.host_ip.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
        if want.is_some() {
            writeln!(out, "{ip}:{}", m.host_port)?;
        } else {
            writeln!(out, "{key} -> {ip}:{}", m.host_port)?;
        }
    }
    if let (Some(w), false) = (&want, any) {
        anyhow::bail!("no public port {w} published for {}", a.container);
    }
    Ok(0)
}

pub fn net_release(layout: &Layout, a: NetReleaseArgs) -> anyhow::Result<i32> {
    super::release(layout, &a.id)?;
    Ok(0)
}
