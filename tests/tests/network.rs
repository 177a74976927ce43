//! Container networking, as Docker does it: `--network bridge|none|host|
//! container:X|NAME`, the default `bridge` network on `hind0` with a veth
//! pair and an address per container, published ports (`-p`, `-P`,
//! `--expose`) reached from the host, from another host and from other
//! containers, TCP and UDP; user networks (`network create/ls/inspect/rm/
//! prune`) where containers find each other by name; the per-container
//! /etc/hosts, /etc/resolv.conf and /etc/hostname; and nothing left behind
//! (veth, nftables elements, leases) after `rm`, also when the shim was
//! SIGKILLed. Bad flags and exhausted subnets fail with one error line.
//!
//! Every test runs its `hind` commands in a private network namespace
//! ([`TestEnv::new_netns`]); [`NetNs::peer`] is "another host" on a veth
//! link, and the tests' own clients are Rust sockets made inside either
//! namespace ([`NetNs::run_in`]).

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use hind_tests::detach::{
    inspect, is_full_id, ps_json, rm_f, run_detached, shim_pids, wait_dead, wait_for_log,
};
use hind_tests::netns::{link_names, NetNs, EXT_ADDR, EXT_IF};
use hind_tests::oci::{docker_archive, ImageBuilder, Layer};
use hind_tests::{bb, Output, TestEnv};

/// A busybox web server on port 80 answering `hello` at `/`.
const SERVE_HTTP: &str =
    "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www";

/// How long a server in a container may take to answer the first time.
const READY: Duration = Duration::from_secs(20);

/// How long the engine may take to release a removed container's network.
const GRACE: Duration = Duration::from_secs(2);

fn ns(env: &TestEnv) -> &NetNs {
    env.netns().expect("a TestEnv::new_netns env")
}

fn sock(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}")
        .parse()
        .unwrap_or_else(|e| panic!("bad address {ip}:{port}: {e}"))
}

/// `hind run -d FLAGS <busybox> sh -c SERVE_HTTP`; returns the id.
#[track_caller]
fn web(env: &TestEnv, flags: &[&str]) -> String {
    let mut args = flags.to_vec();
    args.extend_from_slice(&[bb(), "sh", "-c", SERVE_HTTP]);
    run_detached(env, &args)
}

/// `hind run -d FLAGS <busybox> sleep 600`; returns the id.
#[track_caller]
fn idle(env: &TestEnv, flags: &[&str]) -> String {
    let mut args = flags.to_vec();
    args.extend_from_slice(&[bb(), "sleep", "600"]);
    run_detached(env, &args)
}

/// `hind exec CONTAINER CMD...`; expects success, returns stdout.
#[track_caller]
fn exec(env: &TestEnv, container: &str, cmd: &[&str]) -> String {
    let mut args = vec!["exec", container];
    args.extend_from_slice(cmd);
    let out = env.run(&args);
    out.expect_success();
    out.stdout
}

/// `hind run --rm ARGS` (image and command included); expects success,
/// returns stdout.
#[track_caller]
fn run_rm(env: &TestEnv, args: &[&str]) -> String {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    out.expect_success();
    out.stdout
}

/// `GET /` of `host:port` by `busybox nc` (busybox-static's `wget`
/// crashes in a container: static glibc without its NSS modules).
fn nc_get(host: &str, port: u16) -> String {
    format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {host} {port}")
}

/// The body of an HTTP response; panics with `out` unless it is a 200.
#[track_caller]
fn body_of(out: &Output) -> String {
    out.expect_success();
    match out.stdout.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.") && head.contains(" 200 ") => {
            body.to_string()
        }
        _ => panic!("not an HTTP 200 response:\n{out}"),
    }
}

/// `GET /` of `host:port` from a throwaway container run with `flags`;
/// the body.
#[track_caller]
fn get_from_container(env: &TestEnv, flags: &[&str], host: &str, port: u16) -> String {
    let script = nc_get(host, port);
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[bb(), "sh", "-c", &script]);
    body_of(&env.run(&args))
}

/// The network namespace of container `id` (its init's), to look at it
/// with the host's `ip` or make sockets in it.
#[track_caller]
fn container_ns(env: &TestEnv, id: &str) -> NetNs {
    let doc = inspect(env, id);
    let pid = doc["State"]["Pid"].as_i64().unwrap_or(0) as i32;
    assert!(pid > 0, "no State.Pid:\n{doc:#}");
    NetNs::of_pid(pid)
}

/// `.NetworkSettings.IPAddress`, which must be set.
#[track_caller]
fn container_ip(env: &TestEnv, id: &str) -> String {
    let doc = inspect(env, id);
    let ip = doc["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        ip.parse::<std::net::Ipv4Addr>().is_ok(),
        "no NetworkSettings.IPAddress:\n{doc:#}"
    );
    ip
}

/// The host port `.NetworkSettings.Ports[port]` maps to (first binding).
#[track_caller]
fn host_port(env: &TestEnv, id: &str, port: &str) -> u16 {
    let doc = inspect(env, id);
    let p = doc["NetworkSettings"]["Ports"][port][0]["HostPort"]
        .as_str()
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(0);
    assert!(p != 0, "no host port for {port}:\n{doc:#}");
    p
}

/// `hind network inspect NAME`, the one object of the array.
#[track_caller]
fn network_inspect(env: &TestEnv, name: &str) -> serde_json::Value {
    let out = env.run(&["network", "inspect", name]);
    out.expect_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("network inspect is not JSON ({e}):\n{out}"));
    let a = v
        .as_array()
        .unwrap_or_else(|| panic!("network inspect is not an array:\n{out}"));
    assert_eq!(a.len(), 1, "network inspect of one network:\n{out}");
    a[0].clone()
}

/// Ids of the containers `network inspect NAME` lists as attached.
#[track_caller]
fn attached(env: &TestEnv, name: &str) -> Vec<String> {
    let doc = network_inspect(env, name);
    let mut ids: Vec<String> = doc["Containers"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

/// `hind network create ARGS`; expects success and a full id on stdout.
#[track_caller]
fn network_create(env: &TestEnv, args: &[&str]) -> String {
    let mut all = vec!["network", "create"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    out.expect_success();
    let id = out.stdout.trim().to_string();
    assert!(is_full_id(&id), "network create must print the id:\n{out}");
    id
}

/// The host end of container `id`'s veth pair: `veth` + 11 hex of the id.
fn veth_of(id: &str) -> String {
    format!("veth{}", &id[..11])
}

/// The Linux bridge of the user network with id `id`.
fn bridge_of(network_id: &str) -> String {
    format!("hbr-{}", &network_id[..11])
}

/// `inet ADDR/LEN` of interface `dev` in `ip -o -4 addr` output.
fn inet_of(ip_o_addr: &str, dev: &str) -> Option<(String, u8)> {
    ip_o_addr.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.get(1).map(|n| n.split('@').next()) != Some(Some(dev)) {
            return None;
        }
        let i = f.iter().position(|w| *w == "inet")?;
        let (a, n) = f.get(i + 1)?.split_once('/')?;
        Some((a.to_string(), n.parse().ok()?))
    })
}

/// True when `ip` is in `net`/`len`.
fn in_subnet(ip: &str, net: &str, len: u8) -> bool {
    let (Ok(a), Ok(b)) = (
        ip.parse::<std::net::Ipv4Addr>(),
        net.parse::<std::net::Ipv4Addr>(),
    ) else {
        return false;
    };
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    };
    u32::from(a) & mask == u32::from(b) & mask
}

/// Lines of a hosts file as whitespace-separated fields.
fn hosts_lines(hosts: &str) -> Vec<Vec<String>> {
    hosts
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|f| !f.is_empty())
        .collect()
}

/// True when `hosts` maps `name` to `ip`.
fn hosts_maps(hosts: &str, name: &str, ip: &str) -> bool {
    hosts_lines(hosts)
        .iter()
        .any(|f| f[0] == ip && f[1..].iter().any(|n| n == name))
}

/// True when `hosts` mentions `name` at all.
fn hosts_names(hosts: &str, name: &str) -> bool {
    hosts_lines(hosts)
        .iter()
        .any(|f| f[1..].iter().any(|n| n == name))
}

/// Removes `ids`, then checks the namespace is clean (no veth, no
/// published port; the engine gets [`GRACE`]) and finishes the env.
#[track_caller]
fn finish(env: TestEnv, ids: &[&str]) {
    if !ids.is_empty() {
        rm_f(&env, ids);
    }
    let mut leaks = Vec::new();
    let clean = hind_tests::poll(GRACE, || {
        leaks = env.netns_leaks();
        leaks.is_empty().then_some(())
    });
    assert!(
        clean.is_some(),
        "network left behind:\n  {}",
        leaks.join("\n  ")
    );
    env.finish();
}

// ---------------------------------------------------------------- harness

#[test]
fn harness_plain_envs_run_hind_without_networking() {
    let env = TestEnv::new("net_plain");
    let c = env.hind();
    let net = c
        .get_envs()
        .find(|(k, _)| *k == "HIND_NETWORK")
        .and_then(|(_, v)| v);
    assert_eq!(net, Some("none".as_ref()), "{c:?}");
    let c = env.hind_env_root();
    let net = c
        .get_envs()
        .find(|(k, _)| *k == "HIND_NETWORK")
        .and_then(|(_, v)| v);
    assert_eq!(net, Some("none".as_ref()), "{c:?}");
    // Without --network the container has a namespace with only `lo`.
    let links = link_names(&run_rm(&env, &[bb(), "ip", "-o", "link"]));
    assert_eq!(links, ["lo"]);
    env.finish();
}

#[test]
fn harness_netns_has_lo_and_a_peer_on_a_link() {
    let env = TestEnv::new_netns("net_harness");
    let ns = ns(&env);
    assert_eq!(ns.links(), ["lo"]);
    let c = env.hind();
    assert!(
        !c.get_envs()
            .any(|(k, v)| k == "HIND_NETWORK" && v.is_some()),
        "a netns env leaves the default network mode: {c:?}"
    );
    let peer = ns.peer();
    assert_eq!(ns.links(), ["lo", EXT_IF]);
    assert_eq!(peer.links(), ["lo", "eth0"]);
    // The machine's own namespace got nothing.
    let mine = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("run ip");
    assert!(
        !link_names(&String::from_utf8_lossy(&mine.stdout)).contains(&EXT_IF.to_string()),
        "{EXT_IF} leaked into the test's own namespace"
    );
    // A server on the external address, reached from the peer.
    let l = ns.run_in(|| std::net::TcpListener::bind((EXT_ADDR, 0)).expect("bind"));
    let port = l.local_addr().expect("local addr").port();
    let server = std::thread::spawn(move || {
        use std::io::Write;
        let (mut s, from) = l.accept().expect("accept");
        s.write_all(b"hi").expect("write");
        from.ip().to_string()
    });
    let got = peer.run_in(|| {
        use std::io::Read;
        let mut s =
            std::net::TcpStream::connect_timeout(&sock(EXT_ADDR, port), Duration::from_secs(5))
                .expect("connect from the peer");
        let mut b = String::new();
        s.read_to_string(&mut b).expect("read");
        b
    });
    assert_eq!(got, "hi");
    assert_eq!(server.join().expect("server thread"), "192.0.2.2");
    // The env's `hind` (and so its shim and containers) runs in the
    // namespace.
    let held = env.spawn_held(&[]);
    let hind_ns = std::fs::metadata(format!("/proc/{}/ns/net", held.pid()))
        .expect("stat hind's netns")
        .ino();
    let env_ns = std::fs::File::from(ns.fd().try_clone().expect("dup netns fd"))
        .metadata()
        .expect("fstat netns fd")
        .ino();
    held.release().expect_success();
    assert_eq!(hind_ns, env_ns, "hind runs outside the env's namespace");
    // The leak check sees veths and published-port elements.
    ns.ip(&[
        "link", "add", "vethe2e", "type", "veth", "peer", "name", "e2e0",
    ]);
    let nft = |args: &[&str]| ns.run("nft", args).expect_success().stdout.clone();
    nft(&["add", "table", "ip", "hind"]);
    nft(&[
        "add",
        "map",
        "ip",
        "hind",
        "pub_any",
        "{ type inet_proto . inet_service : ipv4_addr . inet_service; }",
    ]);
    nft(&[
        "add",
        "element",
        "ip",
        "hind",
        "pub_any",
        "{ tcp . 8080 : 10.88.0.2 . 80 }",
    ]);
    let leaks = env.netns_leaks();
    assert_eq!(leaks.len(), 2, "{leaks:?}");
    assert!(leaks[0].contains("vethe2e"), "{leaks:?}");
    assert!(leaks[1].contains("8080"), "{leaks:?}");
    nft(&["delete", "table", "ip", "hind"]);
    ns.ip(&["link", "del", "vethe2e"]);
    drop(peer);
    finish(env, &[]);
}

// ---------------------------------------------------------------- modes

#[test]
fn network_none_has_only_lo() {
    let env = TestEnv::new_netns("net_none");
    let links = link_names(&run_rm(
        &env,
        &["--network", "none", bb(), "ip", "-o", "link"],
    ));
    assert_eq!(links, ["lo"]);
    let id = idle(&env, &["--network", "none"]);
    let doc = inspect(&env, &id);
    assert_eq!(doc["HostConfig"]["NetworkMode"], "none", "{doc:#}");
    assert_eq!(
        doc["NetworkSettings"]["IPAddress"].as_str().unwrap_or(""),
        "",
        "{doc:#}"
    );
    assert!(ns(&env).veths().is_empty(), "{:?}", ns(&env).links());
    finish(env, &[&id]);
}

#[test]
fn default_bridge_gives_an_address_a_route_and_a_veth() {
    let env = TestEnv::new_netns("net_bridge");
    let ns = ns(&env);
    let id = web(&env, &[]);
    let doc = inspect(&env, &id);
    assert_eq!(doc["HostConfig"]["NetworkMode"], "bridge", "{doc:#}");
    let ip = container_ip(&env, &id);
    let gw = doc["NetworkSettings"]["Gateway"].as_str().unwrap_or("");
    assert_eq!(
        doc["NetworkSettings"]["Networks"]["bridge"]["IPAddress"], ip,
        "{doc:#}"
    );
    // The bridge holds the gateway address, and the container is in its
    // subnet, on a veth attached to it.
    let (br_addr, len) = inet_of(&ns.ip(&["-o", "-4", "addr"]), "hind0")
        .unwrap_or_else(|| panic!("no address on hind0: {}", ns.ip(&["-o", "-4", "addr"])));
    assert_eq!(gw, br_addr, "{doc:#}");
    assert!(in_subnet(&ip, &br_addr, len), "{ip} not in {br_addr}/{len}");
    assert_ne!(ip, gw);
    let veth = veth_of(&id);
    let on_bridge = link_names(&ns.ip(&["-o", "link", "show", "master", "hind0"]));
    assert_eq!(on_bridge, [veth.as_str()], "links on hind0");
    // Inside: eth0 with the address, a default route via the gateway.
    let cns = container_ns(&env, &id);
    let addrs = cns.ip(&["-o", "-4", "addr"]);
    assert_eq!(inet_of(&addrs, "eth0"), Some((ip.clone(), len)), "{addrs}");
    assert_eq!(cns.links(), ["lo", "eth0"]);
    // The MAC follows the address (02:42 + its bytes, as Docker), so a
    // reused address keeps neighbours' ARP caches right.
    let mac: String = std::iter::once("02:42".to_string())
        .chain(
            ip.split('.')
                .map(|o| format!("{:02x}", o.parse::<u8>().unwrap_or(0))),
        )
        .collect::<Vec<_>>()
        .join(":");
    assert_eq!(doc["NetworkSettings"]["MacAddress"], mac, "{doc:#}");
    let link = cns.ip(&["-o", "link", "show", "eth0"]);
    assert!(link.contains(&format!("link/ether {mac} ")), "{link}");
    let routes = cns.ip(&["route"]);
    drop(cns);
    assert!(
        routes
            .lines()
            .any(|l| l.starts_with(&format!("default via {gw} "))),
        "no default route via {gw}:\n{routes}"
    );
    // The host reaches it directly.
    assert_eq!(ns.wait_http(sock(&ip, 80), "/", READY), "hello\n");
    let leases = attached(&env, "bridge");
    assert_eq!(leases, [id.as_str()]);
    finish(env, &[&id]);
}

#[test]
fn host_network_is_the_callers_namespace() {
    let env = TestEnv::new_netns("net_host");
    let ns = ns(&env);
    let _peer = ns.peer();
    let links = link_names(&run_rm(
        &env,
        &["--network", "host", bb(), "ip", "-o", "link"],
    ));
    assert!(links.contains(&EXT_IF.to_string()), "{links:?}");
    // A server in the container listens in the env's namespace.
    let id = run_detached(
        &env,
        &[
            "--network",
            "host",
            bb(),
            "sh",
            "-c",
            "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8081 -h /www",
        ],
    );
    assert_eq!(inspect(&env, &id)["HostConfig"]["NetworkMode"], "host");
    assert_eq!(ns.wait_http(sock("127.0.0.1", 8081), "/", READY), "hello\n");
    assert!(ns.veths().is_empty(), "{:?}", ns.links());
    finish(env, &[&id]);
}

#[test]
fn container_network_shares_another_containers_namespace() {
    let env = TestEnv::new_netns("net_container");
    let ns = ns(&env);
    let id = web(&env, &["--name", "netowner"]);
    let ip = container_ip(&env, &id);
    ns.wait_http(sock(&ip, 80), "/", READY);
    for target in ["container:netowner".to_string(), format!("container:{id}")] {
        let body = get_from_container(&env, &["--network", &target], "127.0.0.1", 80);
        assert_eq!(body, "hello\n", "--network {target}");
        let addrs = run_rm(
            &env,
            &["--network", &target, bb(), "ip", "-o", "-4", "addr"],
        );
        assert_eq!(
            inet_of(&addrs, "eth0").map(|a| a.0),
            Some(ip.clone()),
            "{addrs}"
        );
    }
    assert_eq!(ns.veths(), [veth_of(&id)], "no veth of its own");
    finish(env, &[&id]);
}

// ---------------------------------------------------------------- ports

#[test]
fn published_port_is_reached_from_host_peer_and_containers() {
    let env = TestEnv::new_netns("net_publish");
    let ns = ns(&env);
    let peer = ns.peer();
    let id = web(&env, &["-p", "8080:80"]);
    let ip = container_ip(&env, &id);
    let gw = inspect(&env, &id)["NetworkSettings"]["Gateway"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_eq!(ns.wait_http(sock("127.0.0.1", 8080), "/", READY), "hello\n");
    let ext = sock(EXT_ADDR, 8080);
    assert_eq!(
        ns.http_get(ext, "/")
            .expect("GET from the host via its external address"),
        "hello\n"
    );
    assert_eq!(
        peer.http_get(ext, "/").expect("GET from the peer"),
        "hello\n"
    );
    assert_eq!(
        ns.http_get(sock(&ip, 80), "/")
            .expect("GET the container directly"),
        "hello\n"
    );
    // From another container: via the gateway's published port, and
    // straight to the container's address.
    for (host, port) in [(gw.as_str(), 8080), (ip.as_str(), 80)] {
        let body = get_from_container(&env, &[], host, port);
        assert_eq!(body, "hello\n", "from a container to {host}:{port}");
    }
    // What port and inspect say.
    let out = env.run(&["port", &id]);
    out.expect_success();
    assert_eq!(out.stdout, "80/tcp -> 0.0.0.0:8080\n", "{out}");
    let out = env.run(&["port", &id, "80"]);
    out.expect_success();
    // Docker prints only the address when a port is given; the longer
    // form is accepted too.
    assert!(
        out.stdout == "0.0.0.0:8080\n" || out.stdout == "80/tcp -> 0.0.0.0:8080\n",
        "{out}"
    );
    let doc = inspect(&env, &id);
    assert_eq!(
        doc["NetworkSettings"]["Ports"]["80/tcp"],
        serde_json::json!([{"HostIp": "0.0.0.0", "HostPort": "8080"}]),
        "{doc:#}"
    );
    drop(peer);
    finish(env, &[&id]);
}

#[test]
fn random_host_ports_and_a_host_ip() {
    let env = TestEnv::new_netns("net_random_port");
    let ns = ns(&env);
    let peer = ns.peer();
    let any = web(&env, &["-p", "80"]);
    let local = web(&env, &["-p", "127.0.0.1::80"]);
    let p_any = host_port(&env, &any, "80/tcp");
    let p_local = host_port(&env, &local, "80/tcp");
    assert_ne!(p_any, p_local);
    let out = env.run(&["port", &any]);
    out.expect_success();
    assert_eq!(out.stdout, format!("80/tcp -> 0.0.0.0:{p_any}\n"), "{out}");
    let out = env.run(&["port", &local]);
    out.expect_success();
    assert_eq!(
        out.stdout,
        format!("80/tcp -> 127.0.0.1:{p_local}\n"),
        "{out}"
    );
    assert_eq!(
        inspect(&env, &local)["NetworkSettings"]["Ports"]["80/tcp"][0]["HostIp"],
        "127.0.0.1"
    );
    assert_eq!(
        ns.wait_http(sock("127.0.0.1", p_any), "/", READY),
        "hello\n"
    );
    assert_eq!(
        peer.http_get(sock(EXT_ADDR, p_any), "/")
            .expect("GET from the peer"),
        "hello\n"
    );
    assert_eq!(
        ns.wait_http(sock("127.0.0.1", p_local), "/", READY),
        "hello\n"
    );
    // Bound to 127.0.0.1 only: not on the external address.
    let short = Duration::from_secs(1);
    assert!(
        !peer.can_connect(sock(EXT_ADDR, p_local), short),
        "peer reached a 127.0.0.1 port"
    );
    assert!(
        !ns.can_connect(sock(EXT_ADDR, p_local), short),
        "external address reached a 127.0.0.1 port"
    );
    drop(peer);
    finish(env, &[&any, &local]);
}

#[test]
fn publish_all_maps_exposed_ports_of_image_and_flag() {
    let env = TestEnv::new_netns("net_publish_all");
    let ns = ns(&env);
    let img = ImageBuilder::new().layer(Layer::busybox()).expose("80/tcp");
    let archive = env.scratch().join("web.tar");
    docker_archive(&archive, &[(&img, &["web:1"])]);
    env.run(&["load", "-q", "-i", archive.to_str().unwrap()])
        .expect_success();
    let id = run_detached(
        &env,
        &["-P", "--expose", "81", "web:1", "sh", "-c", SERVE_HTTP],
    );
    let p80 = host_port(&env, &id, "80/tcp");
    let p81 = host_port(&env, &id, "81/tcp");
    assert_ne!(p80, p81);
    let out = env.run(&["port", &id]);
    out.expect_success();
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            format!("80/tcp -> 0.0.0.0:{p80}"),
            format!("81/tcp -> 0.0.0.0:{p81}")
        ],
        "{out}"
    );
    assert_eq!(ns.wait_http(sock("127.0.0.1", p80), "/", READY), "hello\n");
    finish(env, &[&id]);
}

#[test]
fn udp_port_is_published() {
    let env = TestEnv::new_netns("net_udp");
    let ns = ns(&env);
    let peer = ns.peer();
    let id = idle(&env, &["-p", "5353:5353/udp"]);
    let out = env.run(&["port", &id]);
    out.expect_success();
    assert_eq!(out.stdout, "5353/udp -> 0.0.0.0:5353\n", "{out}");
    // busybox nc has no UDP mode: the test's own socket, made in the
    // container's namespace, is the server, and echoes what it gets.
    let pid = inspect(&env, &id)["State"]["Pid"].as_i64().unwrap_or(0) as i32;
    assert!(pid > 0, "no State.Pid");
    let server = NetNs::of_pid(pid)
        .run_in(|| UdpSocket::bind("0.0.0.0:5353"))
        .expect("bind udp 5353 in the container's namespace");
    server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set timeout");
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        for _ in 0..2 {
            let Ok((n, from)) = server.recv_from(&mut buf) else {
                return;
            };
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(&buf[..n]);
            let _ = server.send_to(&reply, from);
        }
    });
    let ask = |from: &NetNs, to: SocketAddr, msg: &str| -> String {
        from.run_in(|| {
            let s = UdpSocket::bind("0.0.0.0:0").expect("bind client");
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            s.send_to(msg.as_bytes(), to).expect("send");
            let mut buf = [0u8; 64];
            match s.recv_from(&mut buf) {
                Ok((n, _)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
                Err(e) => format!("no answer from {to}: {e}"),
            }
        })
    };
    assert_eq!(ask(ns, sock("127.0.0.1", 5353), "one"), "echo:one");
    assert_eq!(ask(&peer, sock(EXT_ADDR, 5353), "two"), "echo:two");
    echo.join().expect("echo thread");
    drop(peer);
    finish(env, &[&id]);
}

// ---------------------------------------------------------------- files

#[test]
fn hosts_resolv_conf_and_hostname_are_the_containers() {
    let env = TestEnv::new_netns("net_etc");
    let id = idle(
        &env,
        &[
            "--hostname",
            "box",
            "--name",
            "named",
            "--add-host",
            "db:10.1.2.3",
            "--dns",
            "192.0.2.53",
            "--dns-search",
            "example.test",
            "--dns-option",
            "ndots:2",
        ],
    );
    let ip = container_ip(&env, &id);
    assert_eq!(exec(&env, &id, &["hostname"]), "box\n");
    assert_eq!(exec(&env, &id, &["cat", "/etc/hostname"]).trim(), "box");
    let hosts = exec(&env, &id, &["cat", "/etc/hosts"]);
    assert!(hosts_maps(&hosts, "localhost", "127.0.0.1"), "{hosts}");
    assert!(hosts_maps(&hosts, "box", &ip), "{hosts}");
    assert!(hosts_maps(&hosts, "db", "10.1.2.3"), "{hosts}");
    let resolv = exec(&env, &id, &["cat", "/etc/resolv.conf"]);
    let lines: Vec<&str> = resolv.lines().map(str::trim).collect();
    let servers: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("nameserver"))
        .collect();
    assert_eq!(servers, [&"nameserver 192.0.2.53"], "{resolv}");
    assert!(lines.contains(&"search example.test"), "{resolv}");
    assert!(lines.contains(&"options ndots:2"), "{resolv}");
    // Each is a bind mount of its own, not a write to the image.
    let mi = exec(&env, &id, &["cat", "/proc/self/mountinfo"]);
    for f in ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"] {
        assert!(
            mi.lines().any(|l| l.split(' ').nth(4) == Some(f)),
            "{f} is not a mount point:\n{mi}"
        );
    }
    // A user who is not root reads them too, whatever hind's umask was.
    let files = ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"];
    let exec = [&["exec", "-u", "65534", &id, "cat"][..], &files].concat();
    env.run_umask(&exec, 0o077).expect_success();
    let none = [
        "run",
        "--rm",
        "-u",
        "65534",
        "--network",
        "none",
        bb(),
        "cat",
    ];
    env.run_umask(&[&none[..], &files].concat(), 0o077)
        .expect_success();
    // -h is --hostname.
    assert_eq!(
        run_rm(
            &env,
            &["--network", "none", "-h", "shorty", bb(), "hostname"]
        ),
        "shorty\n"
    );
    finish(env, &[&id]);
}

#[test]
fn exec_runs_in_the_containers_network() {
    let env = TestEnv::new_netns("net_exec");
    let id = idle(&env, &["--hostname", "execbox"]);
    let ip = container_ip(&env, &id);
    assert_eq!(
        link_names(&exec(&env, &id, &["ip", "-o", "link"])),
        ["lo", "eth0"]
    );
    let addrs = exec(&env, &id, &["ip", "-o", "-4", "addr"]);
    assert_eq!(inet_of(&addrs, "eth0").map(|a| a.0), Some(ip), "{addrs}");
    assert_eq!(exec(&env, &id, &["hostname"]), "execbox\n");
    finish(env, &[&id]);
}

// ---------------------------------------------------------------- user networks

#[test]
fn user_network_members_find_each_other_by_name() {
    let env = TestEnv::new_netns("net_user");
    let ns = ns(&env);
    let net = network_create(&env, &["e2enet"]);
    let web1 = web(&env, &["--network", "e2enet", "--name", "web1"]);
    // `client` keeps asking for `late`, which does not exist yet.
    let ask_late = format!(
        "until {{ {}; }} 2>/dev/null | grep -q hello; do sleep 0.2; done; \
         echo reached-late; exec sleep 600",
        nc_get("late", 80)
    );
    let client = run_detached(
        &env,
        &[
            "--network",
            "e2enet",
            "--name",
            "client",
            bb(),
            "sh",
            "-c",
            &ask_late,
        ],
    );
    let ip1 = container_ip(&env, &web1);
    ns.wait_http(sock(&ip1, 80), "/", READY);
    // A new member reaches an older one by name.
    let body = get_from_container(&env, &["--network", "e2enet"], "web1", 80);
    assert_eq!(body, "hello\n");
    // An older member reaches one that comes later by name: the engine
    // updated its hosts file.
    let late = web(&env, &["--network", "e2enet", "--name", "late"]);
    let ip_late = container_ip(&env, &late);
    ns.wait_http(sock(&ip_late, 80), "/", READY);
    wait_for_log(&env, &client, "reached-late", READY);
    let hosts = exec(&env, &web1, &["cat", "/etc/hosts"]);
    assert!(hosts_maps(&hosts, "late", &ip_late), "{hosts}");
    assert!(
        hosts_maps(&hosts, "client", &container_ip(&env, &client)),
        "{hosts}"
    );
    // The bridge and what network inspect says.
    let bridge = bridge_of(&net);
    assert!(ns.links().contains(&bridge), "{:?}", ns.links());
    let doc = network_inspect(&env, "e2enet");
    assert_eq!(doc["Name"], "e2enet", "{doc:#}");
    assert_eq!(doc["Id"], net.as_str(), "{doc:#}");
    assert_eq!(doc["Driver"], "bridge", "{doc:#}");
    assert_eq!(
        doc["Options"]["com.docker.network.bridge.name"],
        bridge.as_str(),
        "{doc:#}"
    );
    let subnet = doc["IPAM"]["Config"][0]["Subnet"].as_str().unwrap_or("");
    let (net_addr, len) = subnet
        .split_once('/')
        .and_then(|(a, l)| Some((a, l.parse::<u8>().ok()?)))
        .unwrap_or_else(|| panic!("no IPAM subnet:\n{doc:#}"));
    assert!(in_subnet(&ip1, net_addr, len), "{ip1} not in {subnet}");
    let members = &doc["Containers"];
    assert_eq!(members.as_object().map(|m| m.len()), Some(3), "{doc:#}");
    assert_eq!(members[&web1]["Name"], "web1", "{doc:#}");
    assert_eq!(
        members[&web1]["IPv4Address"],
        format!("{ip1}/{len}"),
        "{doc:#}"
    );
    assert_eq!(
        inspect(&env, &web1)["NetworkSettings"]["Networks"]["e2enet"]["IPAddress"],
        ip1.as_str()
    );
    assert_eq!(inspect(&env, &web1)["HostConfig"]["NetworkMode"], "e2enet");
    // A member that goes is taken out of the others' hosts files.
    rm_f(&env, &[&late]);
    let hosts = exec(&env, &client, &["cat", "/etc/hosts"]);
    assert!(!hosts_names(&hosts, "late"), "{hosts}");
    // On the default bridge there are no names.
    let other = idle(&env, &[]);
    let hosts = exec(&env, &other, &["cat", "/etc/hosts"]);
    assert!(!hosts_names(&hosts, "web1"), "{hosts}");
    // In use: not removed, and the error names it.
    env.run(&["network", "rm", "e2enet"])
        .expect_code(1)
        .expect_one_error_line(&["e2enet"]);
    rm_f(&env, &[&web1, &client, &other]);
    env.run(&["network", "rm", "e2enet"]).expect_success();
    assert!(
        !ns.links().contains(&bridge),
        "{bridge} left: {:?}",
        ns.links()
    );
    finish(env, &[]);
}

#[test]
fn user_network_with_a_subnet_and_fixed_addresses() {
    let env = TestEnv::new_netns("net_subnet");
    network_create(&env, &["--subnet", "10.77.0.0/24", "fixed"]);
    let doc = network_inspect(&env, "fixed");
    assert_eq!(
        doc["IPAM"]["Config"][0]["Subnet"], "10.77.0.0/24",
        "{doc:#}"
    );
    assert_eq!(doc["IPAM"]["Config"][0]["Gateway"], "10.77.0.1", "{doc:#}");
    let id = idle(&env, &["--network", "fixed", "--ip", "10.77.0.50"]);
    let doc = inspect(&env, &id);
    assert_eq!(doc["NetworkSettings"]["IPAddress"], "10.77.0.50", "{doc:#}");
    assert_eq!(doc["NetworkSettings"]["Gateway"], "10.77.0.1", "{doc:#}");
    assert_eq!(
        doc["NetworkSettings"]["Networks"]["fixed"]["IPAddress"], "10.77.0.50",
        "{doc:#}"
    );
    let addrs = container_ns(&env, &id).ip(&["-o", "-4", "addr"]);
    assert_eq!(
        inet_of(&addrs, "eth0"),
        Some(("10.77.0.50".to_string(), 24)),
        "{addrs}"
    );
    let before = ps_json(&env, true).len();
    // Outside the subnet, and taken.
    for bad in ["10.78.0.5", "10.77.0.50"] {
        env.run(&["run", "-d", "--network", "fixed", "--ip", bad, bb(), "true"])
            .expect_hind_error(125, &[bad]);
    }
    assert_eq!(
        ps_json(&env, true).len(),
        before,
        "a failed run left a container"
    );
    assert_eq!(ns(&env).veths(), [veth_of(&id)]);
    rm_f(&env, &[&id]);
    assert!(attached(&env, "fixed").is_empty());
    env.run(&["network", "rm", "fixed"]).expect_success();
    finish(env, &[]);
}

#[test]
fn network_ls_lists_builtins_and_user_networks() {
    let env = TestEnv::new_netns("net_ls");
    let id = network_create(&env, &["lsnet"]);
    let out = env.run(&["network", "ls"]);
    out.expect_success();
    let mut lines = out.stdout.lines();
    let head: Vec<&str> = lines
        .next()
        .unwrap_or("")
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(head, ["NETWORK ID", "NAME", "DRIVER", "SCOPE"], "{out}");
    let names: Vec<&str> = lines.filter_map(|l| l.split_whitespace().nth(1)).collect();
    for n in ["bridge", "host", "none", "lsnet"] {
        assert!(names.contains(&n), "{n} not listed:\n{out}");
    }
    let out = env.run(&["network", "ls", "--format", "json"]);
    out.expect_success();
    let nets: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON ({e}):\n{out}"))
        })
        .collect();
    let find = |n: &str| {
        nets.iter()
            .find(|v| v["Name"] == n)
            .unwrap_or_else(|| panic!("{n} not in:\n{out}"))
    };
    let mine = find("lsnet");
    assert_eq!(mine["Driver"], "bridge", "{out}");
    let listed_id = mine["ID"].as_str().unwrap_or("");
    assert!(
        !listed_id.is_empty() && id.starts_with(listed_id),
        "{id} vs {out}"
    );
    assert_eq!(find("bridge")["Driver"], "bridge", "{out}");
    find("host");
    find("none");
    env.run(&["network", "rm", "lsnet"]).expect_success();
    finish(env, &[]);
}

#[test]
fn builtin_networks_cannot_be_removed_and_prune_keeps_used_ones() {
    let env = TestEnv::new_netns("net_prune");
    let ns = ns(&env);
    for b in ["bridge", "host", "none"] {
        let out = env.run(&["network", "rm", b]);
        assert_ne!(out.code, 0, "{out}");
        out.expect_one_error_line(&[b]);
    }
    let unused = network_create(&env, &["unused"]);
    network_create(&env, &["used"]);
    let id = idle(&env, &["--network", "used"]);
    assert!(ns.links().contains(&bridge_of(&unused)), "{:?}", ns.links());
    env.run(&["network", "prune", "-f"]).expect_success();
    env.run(&["network", "inspect", "unused"]).expect_code(1);
    network_inspect(&env, "used");
    network_inspect(&env, "bridge");
    assert!(
        !ns.links().contains(&bridge_of(&unused)),
        "{:?}",
        ns.links()
    );
    rm_f(&env, &[&id]);
    env.run(&["network", "prune", "-f"]).expect_success();
    env.run(&["network", "inspect", "used"]).expect_code(1);
    finish(env, &[]);
}

// ---------------------------------------------------------------- teardown

/// A published web container, checked to hold a veth, a port and a lease.
#[track_caller]
fn published(env: &TestEnv) -> String {
    let ns = ns(env);
    let id = web(env, &["-p", "8080:80"]);
    ns.wait_http(sock("127.0.0.1", 8080), "/", READY);
    assert!(ns.veths().contains(&veth_of(&id)), "{:?}", ns.links());
    assert!(!ns.published_ports().is_empty(), "no published port in nft");
    assert_eq!(attached(env, "bridge"), [id.as_str()]);
    id
}

/// After `id` is gone: no veth, no published port, no lease, no server.
#[track_caller]
fn assert_released(env: &TestEnv) {
    let ns = ns(env);
    let leaks = hind_tests::poll(GRACE, || ns.leaks().is_empty().then_some(()));
    assert!(leaks.is_some(), "left: {:?}", ns.leaks());
    assert!(attached(env, "bridge").is_empty(), "lease kept");
    assert!(
        !ns.can_connect(sock("127.0.0.1", 8080), Duration::from_secs(1)),
        "port 8080 still answers"
    );
    // The default network's bridge and hind's nftables table were there
    // for the container only: they go with the last one.
    assert!(!ns.links().iter().any(|l| l == "hind0"), "{:?}", ns.links());
    let tables = ns.run("nft", &["list", "tables"]);
    assert!(!tables.stdout.contains("ip hind"), "{tables}");
}

#[test]
fn rm_releases_veth_port_and_lease() {
    let env = TestEnv::new_netns("net_teardown");
    let id = published(&env);
    rm_f(&env, &[&id]);
    assert_released(&env);
    finish(env, &[]);
}

#[test]
fn rm_after_shim_sigkill_releases_veth_port_and_lease() {
    let env = TestEnv::new_netns("net_teardown_kill");
    let id = published(&env);
    let shims = shim_pids(&id);
    assert!(!shims.is_empty(), "no shim for {id}");
    for &p in &shims {
        kill(Pid::from_raw(p), Signal::SIGKILL).expect("kill shim");
    }
    for &p in &shims {
        assert!(
            wait_dead(p, Duration::from_secs(10)),
            "shim {p} survived SIGKILL"
        );
    }
    rm_f(&env, &[&id]);
    assert_released(&env);
    finish(env, &[]);
}

// ---------------------------------------------------------------- failures

#[test]
fn exhausted_subnet_fails_naming_the_network() {
    let env = TestEnv::new_netns("net_exhaust");
    let ns = ns(&env);
    network_create(&env, &["--subnet", "10.99.0.0/30", "tiny"]);
    let first = idle(&env, &["--network", "tiny"]);
    assert_eq!(container_ip(&env, &first), "10.99.0.2");
    env.run(&["run", "-d", "--network", "tiny", bb(), "sleep", "600"])
        .expect_hind_error(125, &["tiny"]);
    assert_eq!(
        ps_json(&env, true).len(),
        1,
        "the failed run left a container"
    );
    assert_eq!(ns.veths(), [veth_of(&first)]);
    rm_f(&env, &[&first]);
    env.run(&["network", "rm", "tiny"]).expect_success();
    finish(env, &[]);
}

#[test]
fn bad_network_flags_fail_naming_the_value() {
    let env = TestEnv::new_netns("net_bad_flags");
    let cases: &[(&[&str], &str)] = &[
        (&["-p", "70000:80"], "70000"),
        (&["-p", "abc"], "abc"),
        (&["--ip", "300.1.1.1"], "300.1.1.1"),
        (&["--network", "nosuch"], "nosuch"),
    ];
    for (flags, bad) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[bb(), "true"]);
        env.run(&args).expect_hind_error(125, &[bad]);
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[bb(), "true"]);
        env.run(&args).expect_hind_error(125, &[bad]);
    }
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    finish(env, &[]);
}

#[test]
fn a_host_port_in_use_fails_the_second_container() {
    let env = TestEnv::new_netns("net_port_conflict");
    let ns = ns(&env);
    let first = web(&env, &["-p", "8080:80"]);
    ns.wait_http(sock("127.0.0.1", 8080), "/", READY);
    env.run(&["run", "-d", "-p", "8080:80", bb(), "sleep", "600"])
        .expect_hind_error(125, &["8080"]);
    // The failed one holds no network.
    assert_eq!(ns.veths(), [veth_of(&first)]);
    // The same port number over UDP is another port.
    let udp = idle(&env, &["-p", "8080:80/udp"]);
    assert_eq!(ns.wait_http(sock("127.0.0.1", 8080), "/", READY), "hello\n");
    let all: Vec<String> = ps_json(&env, true)
        .iter()
        .filter_map(|e| e["ID"].as_str().map(str::to_string))
        .collect();
    assert!(all.contains(&first) && all.contains(&udp), "{all:?}");
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    finish(env, &refs);
}

/// Networks are isolated from each other, as in Docker: a container
/// reaches another on its own network, not one on another network (routed
/// through the host) nor one on the default bridge; a published port stays
/// reachable from everywhere, through the host.
#[test]
fn networks_are_isolated_from_each_other() {
    let env = TestEnv::new_netns("net_isolate");
    let ns = ns(&env);
    network_create(&env, &["iso-a"]);
    network_create(&env, &["iso-b"]);
    let web_a = web(&env, &["--network", "iso-a", "-p", "8089:80"]);
    let web_default = web(&env, &[]);
    let ip_a = container_ip(&env, &web_a);
    let ip_default = container_ip(&env, &web_default);
    ns.wait_http(sock(&ip_a, 80), "/", READY);
    ns.wait_http(sock(&ip_default, 80), "/", READY);
    // Same network: reached.
    assert_eq!(
        get_from_container(&env, &["--network", "iso-a"], &ip_a, 80),
        "hello\n"
    );
    // Another network, or the default bridge: not reached (nc times out).
    for (flags, target) in [
        (&["--network", "iso-b"][..], ip_a.as_str()),
        (&[][..], ip_a.as_str()),
        (&["--network", "iso-a"][..], ip_default.as_str()),
    ] {
        let script = format!(
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {target} 80 || echo unreachable"
        );
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[bb(), "sh", "-c", &script]);
        let out = env.run(&args);
        assert!(
            !out.stdout.contains("hello"),
            "{flags:?} reached {target}:\n{out}"
        );
    }
    // The published port, through the host's address on the default bridge.
    let gw = exec(&env, &web_default, &["ip", "route"]);
    let gateway = gw
        .lines()
        .find_map(|l| l.strip_prefix("default via "))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no default route:\n{gw}"))
        .to_string();
    assert_eq!(
        get_from_container(&env, &["--network", "iso-b"], &gateway, 8089),
        "hello\n"
    );
    rm_f(&env, &[&web_a, &web_default]);
    env.run(&["network", "rm", "iso-a", "iso-b"])
        .expect_success();
    finish(env, &[]);
}

/// `--network-alias`: more names by which the other members of a user
/// network find a container; refused on networks without names.
#[test]
fn network_aliases_are_names_on_user_networks() {
    let env = TestEnv::new_netns("net_alias");
    let ns = ns(&env);
    network_create(&env, &["aliasnet"]);
    let db = web(
        &env,
        &[
            "--network",
            "aliasnet",
            "--name",
            "db1",
            "--network-alias",
            "database",
            "--network-alias",
            "primary.db",
        ],
    );
    let ip = container_ip(&env, &db);
    ns.wait_http(sock(&ip, 80), "/", READY);
    for name in ["database", "primary.db", "db1"] {
        assert_eq!(
            get_from_container(&env, &["--network", "aliasnet"], name, 80),
            "hello\n",
            "{name}"
        );
    }
    let aliases = &inspect(&env, &db)["NetworkSettings"]["Networks"]["aliasnet"]["Aliases"];
    assert!(
        aliases
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "database")),
        "{aliases}"
    );
    for (network, alias) in [("bridge", "x"), ("none", "x"), ("aliasnet", "bad name")] {
        let out = env.run(&[
            "run",
            "--rm",
            "--network",
            network,
            "--network-alias",
            alias,
            bb(),
            "true",
        ]);
        out.expect_hind_error(125, &["--network-alias", alias]);
    }
    rm_f(&env, &[&db]);
    env.run(&["network", "rm", "aliasnet"]).expect_success();
    finish(env, &[]);
}
