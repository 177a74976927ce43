//! The container's /etc/resolv.conf, /etc/hosts and /etc/hostname: made per
//! container in its directory and bind-mounted over the image's, so the
//! image is never written. Rewrites go into the same inode (truncate and
//! write), because a bind mount keeps pointing at the inode it was made on.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// The files' directory inside the container's: 0700 like everything of
/// hind's, while the files are 0644, as a container's non-root users must
/// read them (through the bind mount, which never walks this directory).
pub const DIR: &str = "etc";

pub const HOSTS: &str = "hosts";
pub const RESOLV_CONF: &str = "resolv.conf";
pub const HOSTNAME: &str = "hostname";

/// What the three files go to inside the container.
pub const TARGETS: [(&str, &str); 3] = [
    (HOSTS, "/etc/hosts"),
    (RESOLV_CONF, "/etc/resolv.conf"),
    (HOSTNAME, "/etc/hostname"),
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("write {0}")]
    Write(PathBuf, #[source] std::io::Error),
    #[error("create {0}")]
    Mkdir(PathBuf, #[source] std::io::Error),
}

/// Where the container in `container_dir` keeps file `name`.
pub fn path(container_dir: &Path, name: &str) -> PathBuf {
    container_dir.join(DIR).join(name)
}

/// Makes the files' directory (mode 0700) if it is missing.
pub fn make_dir(container_dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = container_dir.join(DIR);
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(Error::Mkdir(dir, e)),
        _ => Ok(()),
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// systemd-resolved's stub, which only answers inside the host's netns.
const RESOLVED_STUB: &str = "127.0.0.53";
const RESOLVED_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";
/// Docker's fallback when the host has only loopback servers.
const FALLBACK_DNS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// `--dns`, `--dns-search`, `--dns-option`: each replaces the host's.
#[derive(Debug, Default)]
pub struct DnsOverrides<'a> {
    pub servers: &'a [String],
    pub search: &'a [String],
    pub options: &'a [String],
}

/// The container's resolv.conf: the host's, with loopback servers (which
/// would be the container's own loopback) replaced; the resolved stub by
/// resolved's upstream servers. In the host's netns (`host_netns`)
/// loopback servers work and are kept.
pub fn resolv_conf(o: &DnsOverrides, host_netns: bool) -> String {
    let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    resolv_conf_from(&host, Path::new(RESOLVED_UPSTREAM), o, host_netns)
}

/// [`resolv_conf`] from the host's text, with resolved's upstream file at
/// `upstream` (read only when the host's names the stub).
fn resolv_conf_from(host: &str, upstream: &Path, o: &DnsOverrides, host_netns: bool) -> String {
    let upstream = if !host_netns && servers_of(host).iter().any(|s| s == RESOLVED_STUB) {
        fs::read_to_string(upstream).ok()
    } else {
        None
    };
    let base = upstream.as_deref().unwrap_or(host);
    let mut servers: Vec<String> = servers_of(base)
        .into_iter()
        .filter(|s| host_netns || !is_loopback(s))
        .collect();
    if !o.servers.is_empty() {
        servers = o.servers.to_vec();
    } else if servers.is_empty() && !host_netns {
        servers = FALLBACK_DNS.iter().map(|s| s.to_string()).collect();
    }
    let keyword = |k: &str| -> Vec<String> {
        base.lines()
            .filter_map(|l| l.trim().strip_prefix(k))
            .flat_map(|rest| rest.split_whitespace().map(str::to_string))
            .collect()
    };
    let search = if o.search.is_empty() {
        keyword("search ")
    } else {
        o.search.to_vec()
    };
    let options = if o.options.is_empty() {
        keyword("options ")
    } else {
        o.options.to_vec()
    };
    let mut out = String::new();
    for s in &servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

fn servers_of(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|r| r.split_whitespace().next().map(str::to_string))
        .collect()
}

fn is_loopback(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// One line of /etc/hosts.
#[derive(Debug, Clone, PartialEq)]
pub struct HostEntry {
    pub ip: String,
    pub names: Vec<String>,
}

/// The container's /etc/hosts: localhost, its own address under its
/// hostname (and name), `--add-host` entries, then the other members of a
/// user network by name. Without an address of its own (`none`) the
/// hostname maps to loopback so that it still resolves.
pub fn hosts(
    own: Option<Ipv4Addr>,
    hostname: &str,
    name: &str,
    extra: &[(String, String)],
    peers: &[HostEntry],
) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    let mut own_names = vec![hostname.to_string()];
    if name != hostname {
        own_names.push(name.to_string());
    }
    let own = own.map_or("127.0.1.1".to_string(), |ip| ip.to_string());
    out.push_str(&format!("{own}\t{}\n", own_names.join(" ")));
    for (host, ip) in extra {
        out.push_str(&format!("{ip}\t{host}\n"));
    }
    for p in peers {
        out.push_str(&format!("{}\t{}\n", p.ip, p.names.join(" ")));
    }
    out
}

/// The host's /etc/hosts plus `--add-host` entries, for `--network host`.
pub fn host_hosts(extra: &[(String, String)]) -> String {
    let mut out = fs::read_to_string("/etc/hosts").unwrap_or_default();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for (host, ip) in extra {
        out.push_str(&format!("{ip}\t{host}\n"));
    }
    out
}

/// Writes `text` into `path` in place (see the module doc), mode 0644
/// whatever the caller's umask: the container's users must read it.
pub fn write_in_place(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let err = |e| Error::Write(path.to_path_buf(), e);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(err)?;
    f.set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_layout() {
        let h = hosts(
            Some(Ipv4Addr::new(10, 88, 0, 2)),
            "abc",
            "web",
            &[("db".into(), "10.0.0.9".into())],
            &[HostEntry {
                ip: "10.88.0.3".into(),
                names: vec!["api".into()],
            }],
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.contains("10.88.0.2\tabc web\n"));
        assert!(h.contains("10.0.0.9\tdb\n"));
        assert!(h.ends_with("10.88.0.3\tapi\n"));
        let none = hosts(None, "abc", "abc", &[], &[]);
        assert!(none.contains("127.0.1.1\tabc\n"));
    }

    #[test]
    fn resolv_overrides() {
        let servers = vec!["9.9.9.9".to_string()];
        let search = vec!["example.org".to_string()];
        let r = resolv_conf(
            &DnsOverrides {
                servers: &servers,
                search: &search,
                options: &[],
            },
            false,
        );
        assert!(r.starts_with("nameserver 9.9.9.9\n"), "{r}");
        assert!(r.contains("search example.org\n"));
        // Without overrides, no loopback server reaches a private netns.
        let r = resolv_conf(&DnsOverrides::default(), false);
        assert!(!servers_of(&r).iter().any(|s| is_loopback(s)), "{r}");
        assert!(!servers_of(&r).is_empty());
    }

    #[test]
    fn resolved_stub_becomes_its_upstream_servers() {
        let dir = std::env::temp_dir().join(format!("hind-resolv-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let up = dir.join("resolv.conf");
        fs::write(
            &up,
            "nameserver 192.0.2.53\nnameserver 198.51.100.53\nsearch lan\n",
        )
        .unwrap();
        let host = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n";
        let none = DnsOverrides::default();
        let r = resolv_conf_from(host, &up, &none, false);
        assert_eq!(
            r,
            "nameserver 192.0.2.53\nnameserver 198.51.100.53\nsearch lan\n",
        );
        // The host's own namespace reaches the stub: kept as it is.
        let r = resolv_conf_from(host, &up, &none, true);
        assert!(r.starts_with("nameserver 127.0.0.53\n"), "{r}");
        // Without resolved's file, loopback servers go, Docker's fallback
        // comes in.
        let r = resolv_conf_from(host, &dir.join("missing"), &none, false);
        assert!(
            r.starts_with("nameserver 8.8.8.8\nnameserver 8.8.4.4\n"),
            "{r}"
        );
        assert!(r.contains("options edns0 trust-ad\n"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn write_keeps_inode() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("hind-files-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("hosts");
        write_in_place(&p, "one\n").unwrap();
        let ino = fs::metadata(&p).unwrap().ino();
        write_in_place(&p, "two\n").unwrap();
        assert_eq!(fs::metadata(&p).unwrap().ino(), ino);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert_eq!(fs::read_to_string(&p).unwrap(), "two\n");
        fs::remove_dir_all(&dir).unwrap();
    }
}
