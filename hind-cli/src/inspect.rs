//! `hind inspect` and `hind ps`: a container as a JSON document with
//! Docker's field names where they exist, and the table/summary views.

use oci_spec::runtime::Spec;
use protocol::paths::{self, Layout};
use protocol::record::{RestartPolicy, Status};
use serde_json::{json, Value};

use crate::format;
use crate::store::Container;

fn quote_command(cmd: &[String]) -> String {
    cmd.iter()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Docker's STATUS column: "Up 5 seconds", "Exited (0) 3 minutes ago"...
pub fn status_text(c: &Container) -> String {
    let r = &c.record;
    match r.status {
        Status::Created => "Created".into(),
        Status::Running => format!(
            "Up {}",
            format::since(r.started_at.as_deref()).unwrap_or_default()
        ),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            r.exit_code.unwrap_or(0),
            format::since(r.finished_at.as_deref()).unwrap_or_default()
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            r.exit_code.unwrap_or(0),
            format::since(r.finished_at.as_deref()).unwrap_or_default()
        ),
    }
}

/// One row of `ps` as a document (the `--format` fields).
pub fn summary(c: &Container, no_trunc: bool) -> Value {
    let r = &c.record;
    let mut cmd = quote_command(&r.command);
    if !no_trunc && cmd.chars().count() > 20 {
        cmd = cmd.chars().take(19).collect::<String>() + "…";
    }
    json!({
        "ID": if no_trunc { c.id.clone() } else { c.id[..12].to_string() },
        "Image": r.image,
        "Command": format!("\"{cmd}\""),
        "CreatedAt": r.created,
        "RunningFor": format::since(Some(&r.created)).map(|s| s + " ago").unwrap_or_default(),
        "Status": status_text(c),
        "State": r.status.as_str(),
        "Names": r.name,
        "Ports": r.network.as_ref().map(crate::net::format_ports).unwrap_or_default(),
        "Networks": r.network.as_ref().map(|n| n.network.clone().unwrap_or_else(|| n.mode.clone())).unwrap_or_default(),
    })
}

/// The full `inspect` document.
pub fn document(layout: &Layout, c: &Container) -> Value {
    let r = &c.record;
    let spec = Spec::load(c.dir.join(paths::CONFIG_JSON)).ok();
    let process = spec.as_ref().and_then(|s| s.process().clone());
    let linux = spec.as_ref().and_then(|s| s.linux().clone());
    let res = linux.as_ref().and_then(|l| l.resources().clone());
    let mem = res
        .as_ref()
        .and_then(|r| r.memory().as_ref().and_then(|m| m.limit()));
    let cpu = res.as_ref().and_then(|r| r.cpu().clone());
    let pids = res
        .as_ref()
        .and_then(|r| r.pids().as_ref().map(|p| p.limit()));
    let (policy, retries) = match r.restart {
        RestartPolicy::No => ("no", 0),
        RestartPolicy::Always => ("always", 0),
        RestartPolicy::OnFailure { max_retries } => ("on-failure", max_retries),
    };
    let mut log_config = serde_json::Map::new();
    if let Some(s) = r.log.max_size {
        log_config.insert("max-size".into(), json!(s.to_string()));
        log_config.insert("max-file".into(), json!(r.log.max_file.max(2).to_string()));
    }
    let user = process
        .as_ref()
        .map(|p| format!("{}:{}", p.user().uid(), p.user().gid()))
        .unwrap_or_default();
    json!({
        "Id": c.id,
        "Created": r.created,
        "Path": r.command.first().cloned().unwrap_or_default(),
        "Args": r.command.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": r.status.as_str(),
            "Running": r.status == Status::Running,
            "Paused": false,
            "Restarting": r.status == Status::Restarting,
            "OOMKilled": r.oom_killed,
            "Dead": false,
            "Pid": r.pid,
            "ExitCode": r.exit_code.unwrap_or(0),
            "Error": r.error.clone().unwrap_or_default(),
            "StartedAt": r.started_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            "FinishedAt": r.finished_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        },
        "Image": r.image,
        "Name": format!("/{}", r.name),
        "RestartCount": r.restart_count,
        "LogPath": c.dir.join(paths::LOG),
        "HostConfig": {
            "AutoRemove": r.auto_remove,
            "RestartPolicy": {"Name": policy, "MaximumRetryCount": retries},
            "LogConfig": {"Type": "json-file", "Config": log_config},
            "Memory": mem.unwrap_or(0),
            "CpuQuota": cpu.as_ref().and_then(|c| c.quota()).unwrap_or(0),
            "CpuPeriod": cpu.as_ref().and_then(|c| c.period()).unwrap_or(0),
            "CpusetCpus": cpu.as_ref().and_then(|c| c.cpus().clone()).unwrap_or_default(),
            "PidsLimit": pids,
            "NetworkMode": r.network.as_ref().map(|n| n.mode.clone()).unwrap_or_else(|| "none".into()),
            "PortBindings": port_map(r),
            "Dns": r.network.as_ref().map(|n| n.dns.clone()).unwrap_or_default(),
            "DnsSearch": r.network.as_ref().map(|n| n.dns_search.clone()).unwrap_or_default(),
            "DnsOptions": r.network.as_ref().map(|n| n.dns_options.clone()).unwrap_or_default(),
            "ExtraHosts": r.network.as_ref().map(|n| n.extra_hosts.iter().map(|(h, ip)| format!("{h}:{ip}")).collect::<Vec<_>>()).unwrap_or_default(),
            "StorageOpt": r.quota.as_ref().map(|q| json!({"size": q.size})),
            "Binds": crate::volume::inspect::binds(r),
            "Tmpfs": crate::volume::inspect::tmpfs(r),
            "ReadonlyRootfs": spec.as_ref().and_then(|s| s.root().as_ref()).and_then(|r| r.readonly()).unwrap_or(false),
            "CgroupParent": linux.as_ref().and_then(|l| l.cgroups_path().clone())
                .and_then(|p| p.parent().map(|p| p.display().to_string())).unwrap_or_default(),
            "Privileged": r.security.privileged,
            "CapAdd": null_if_empty(&r.security.cap_add),
            "CapDrop": null_if_empty(&r.security.cap_drop),
            "SecurityOpt": null_if_empty(&r.security.security_opt),
            "Devices": devices(&r.security.devices),
            "DeviceCgroupRules": null_if_empty(&r.security.device_cgroup_rules),
            "GroupAdd": null_if_empty(&r.security.group_add),
            "VolumesFrom": null_if_empty(&r.security.volumes_from),
        },
        "Mounts": crate::volume::inspect::mounts(r),
        "NetworkSettings": network_settings(layout, c),
        "HostnamePath": crate::net::files::path(&c.dir, crate::net::files::HOSTNAME),
        "HostsPath": crate::net::files::path(&c.dir, crate::net::files::HOSTS),
        "ResolvConfPath": crate::net::files::path(&c.dir, crate::net::files::RESOLV_CONF),
        "Config": {
            "ExposedPorts": r.network.as_ref().map(|n| n.ports.iter().map(|m| (crate::net::ports::key(m), json!({}))).collect::<serde_json::Map<_, _>>()).unwrap_or_default(),
            "Hostname": spec.as_ref().and_then(|s| s.hostname().clone()).unwrap_or_default(),
            "User": user,
            "Env": process.as_ref().and_then(|p| p.env().clone()).unwrap_or_default(),
            "Cmd": r.command,
            "Image": r.image,
            "WorkingDir": process.as_ref().map(|p| p.cwd().display().to_string()).unwrap_or_default(),
            "Tty": r.tty,
            "OpenStdin": r.open_stdin,
        },
    })
}

/// Docker's `{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}`.
fn port_map(r: &protocol::record::Record) -> Value {
    let mut m = serde_json::Map::new();
    for p in r.network.iter().flat_map(|n| &n.ports) {
        let e = m
            .entry(crate::net::ports::key(p))
            .or_insert_with(|| json!([]));
        if let Some(a) = e.as_array_mut() {
            a.push(json!({
                "HostIp": p.host_ip.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED).to_string(),
                "HostPort": p.host_port.to_string(),
            }));
        }
    }
    Value::Object(m)
}

/// `NetworkSettings`: the address, gateway, ports, and per network.
fn network_settings(layout: &Layout, c: &Container) -> Value {
    let r = &c.record;
    let n = r.network.clone().unwrap_or_default();
    let ip = n.ip.map(|i| i.to_string()).unwrap_or_default();
    let gw = n.gateway.map(|i| i.to_string()).unwrap_or_default();
    let mac = n.ip.map(crate::net::mac_string).unwrap_or_default();
    let mut networks = serde_json::Map::new();
    let name = n.network.clone().unwrap_or_else(|| n.mode.clone());
    if !name.is_empty() && !name.starts_with("container:") {
        let id = n
            .network
            .as_deref()
            .and_then(|net| crate::net::store::find(layout, net).ok().flatten())
            .map(|x| x.id)
            .unwrap_or_default();
        let aliases: Vec<String> = [r.name.clone(), c.id[..12].to_string()]
            .into_iter()
            .chain(n.aliases.iter().cloned())
            .collect();
        networks.insert(
            name,
            json!({
                "NetworkID": id,
                "EndpointID": "",
                "IPAddress": ip,
                "IPPrefixLen": n.prefix_len,
                "Gateway": gw,
                "MacAddress": mac,
                "Aliases": aliases,
            }),
        );
    }
    json!({
        "SandboxKey": if n.network.is_some() { layout.netns(&c.id).display().to_string() } else { String::new() },
        "IPAddress": ip,
        "IPPrefixLen": n.prefix_len,
        "Gateway": gw,
        "MacAddress": mac,
        "Ports": port_map(r),
        "Networks": networks,
    })
}

/// Docker prints `null` for an unset list in HostConfig.
fn null_if_empty(v: &[String]) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        json!(v)
    }
}

/// `--device` flags as Docker's HostConfig.Devices entries.
fn devices(flags: &[String]) -> Value {
    let list: Vec<Value> = flags
        .iter()
        .filter_map(|f| crate::device::parse(f).ok())
        .map(|m| {
            json!({
                "PathOnHost": m.host,
                "PathInContainer": m.container,
                "CgroupPermissions": m.perms,
            })
        })
        .collect();
    if list.is_empty() {
        Value::Null
    } else {
        Value::from(list)
    }
}
