//! Talking to registries (the Docker Registry HTTP API v2, which the OCI
//! distribution spec standardises): the HTTP transport, the
//! `WWW-Authenticate` dance (Bearer tokens and Basic credentials), the
//! credentials file `<root>/auth.json` that `hind login` writes and `hind
//! logout` edits, and the choice between https and plain http.
//!
//! Plain http is used only for loopback registries (`localhost`,
//! `127.0.0.0/8`, `::1`) and for the ones listed in `<root>/registries.json`
//! (`{"insecure": ["host:port"]}`) or in `HIND_INSECURE_REGISTRIES`
//! (comma separated); everything else is https, verified against the
//! system's CA roots.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use protocol::paths::Layout;
use serde_json::{json, Map, Value};
use ureq::config::RedirectAuthHeaders;
use ureq::http::Response;
use ureq::tls::{RootCerts, TlsConfig};
use ureq::{Agent, Body};

use super::reference::{DEFAULT_REGISTRY, DOCKER_HUB_API};
use crate::cli::{LoginArgs, LogoutArgs};

/// The credentials file under the state root.
pub const AUTH_FILE: &str = "auth.json";
/// Registries that may be spoken to over plain http.
pub const REGISTRIES_FILE: &str = "registries.json";
/// More insecure registries, comma separated.
pub const INSECURE_ENV: &str = "HIND_INSECURE_REGISTRIES";

/// A registry that does not accept the connection within this is dead.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Neither the response head nor any read of a body may stall longer, so a
/// registry that stops sending fails the pull instead of hanging it.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Token responses are a few hundred bytes; anything huge is not one.
const MAX_TOKEN_RESPONSE: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("registry {registry}: GET {url}")]
    Request {
        registry: String,
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("authentication required for {0}: run hind login {0}")]
    AuthRequired(String),
    #[error("registry {0}: access denied (wrong credentials, or no access to the repository)")]
    Denied(String),
    #[error("registry {0}: answered 401 without a WWW-Authenticate challenge")]
    NoChallenge(String),
    #[error("registry {registry}: unsupported authentication challenge {challenge:?}")]
    Challenge { registry: String, challenge: String },
    #[error("registry {registry}: token realm {realm} is plain http on a host that is not loopback or listed as insecure")]
    InsecureRealm { registry: String, realm: String },
    #[error("registry {registry}: token service {realm}")]
    Token {
        registry: String,
        realm: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("registry {registry}: token service {realm} answered {status}")]
    TokenStatus {
        registry: String,
        realm: String,
        status: u16,
    },
    #[error("registry {registry}: token service {realm} sent no token")]
    NoToken { registry: String, realm: String },
    #[error("registry {registry}: GET {url} answered {status}{detail}")]
    Status {
        registry: String,
        url: String,
        status: u16,
        /// `: message` from the registry's error body, or empty.
        detail: String,
    },
    #[error("login {0}: wrong username or password")]
    LoginFailed(String),
    #[error("login {0}: {1}")]
    LoginInput(String, &'static str),
    #[error("login {0}: read the password from stdin")]
    ReadPassword(String, #[source] io::Error),
    #[error("read {0}")]
    ReadFile(PathBuf, #[source] io::Error),
    #[error("parse {0}: {1}")]
    ParseFile(PathBuf, String),
    #[error("create {0}")]
    CreateDir(PathBuf, #[source] io::Error),
    #[error("write {0}")]
    WriteFile(PathBuf, #[source] protocol::record::Error),
    #[error("remove {0}")]
    RemoveFile(PathBuf, #[source] io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A user name and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password, not even in a debug dump.
        write!(f, "Credentials({:?}, ***)", self.username)
    }
}

impl Credentials {
    fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            base64_encode(format!("{}:{}", self.username, self.password).as_bytes())
        )
    }
}

// ---- hosts and transport

/// The host part of `host[:port]` (brackets of an IPv6 literal removed).
fn host_only(hostport: &str) -> &str {
    if let Some(rest) = hostport.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match hostport.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => hostport,
    }
}

/// Whether `hostport` names this machine: `localhost`, `127.0.0.0/8` or
/// `::1`, with or without a port.
pub fn is_loopback(hostport: &str) -> bool {
    let h = host_only(hostport);
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// The registries listed as insecure in `registries.json` and the
/// environment.
fn insecure_registries(layout: &Layout) -> Result<Vec<String>> {
    let mut out: Vec<String> = std::env::var(INSECURE_ENV)
        .unwrap_or_default()
        .split(',')
        .map(|s| server_key(s.trim()))
        .filter(|s| !s.is_empty())
        .collect();
    let p = layout.root.join(REGISTRIES_FILE);
    let data = match std::fs::read(&p) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::ReadFile(p, e)),
    };
    let v: Value =
        serde_json::from_slice(&data).map_err(|e| Error::ParseFile(p.clone(), e.to_string()))?;
    match v.get("insecure") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for h in a {
                let h = h.as_str().ok_or_else(|| {
                    Error::ParseFile(p.clone(), "\"insecure\" holds a non-string".into())
                })?;
                out.push(server_key(h));
            }
        }
        Some(_) => {
            return Err(Error::ParseFile(
                p,
                "\"insecure\" must be a list of host:port strings".into(),
            ))
        }
    }
    Ok(out)
}

/// The agent every request to one registry goes through.
fn agent(plain: bool, loopback: bool) -> Agent {
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::PlatformVerifier)
        .build();
    let cfg = Agent::config_builder()
        .tls_config(tls)
        // Statuses are looked at here (401 starts the auth dance, 404 is
        // "no such image"), not turned into errors.
        .http_status_as_error(false)
        .https_only(!plain)
        // Blob GETs are commonly redirected to a CDN or object store, which
        // must not see the registry's token.
        .max_redirects(10)
        .redirect_auth_headers(RedirectAuthHeaders::SameHost)
        .user_agent(format!("hind/{}", env!("CARGO_PKG_VERSION")))
        .timeout_resolve(Some(CONNECT_TIMEOUT))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_recv_response(Some(READ_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT));
    // A proxy from the environment is for the outside world: a registry on
    // this machine is reached directly, as Go's http client (Docker) does.
    let cfg = if loopback { cfg.proxy(None) } else { cfg };
    cfg.build().new_agent()
}

// ---- the client

/// What a 401 asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Basic,
}

/// One registry, with the credentials known for it and the authorization
/// that worked last (reused by every later request, from any thread).
pub struct Client {
    registry: String,
    base: String,
    plain: bool,
    insecure: Vec<String>,
    agent: Agent,
    creds: Option<Credentials>,
    auth: Mutex<Option<String>>,
}

impl Client {
    /// A client for `registry` (`docker.io`, `host:port`) with the
    /// credentials `hind login` saved for it, if any.
    pub fn new(layout: &Layout, registry: &str) -> Result<Client> {
        let creds = credentials(layout, registry)?;
        Client::with_credentials(layout, registry, creds)
    }

    pub fn with_credentials(
        layout: &Layout,
        registry: &str,
        creds: Option<Credentials>,
    ) -> Result<Client> {
        let registry = server_key(registry);
        let host = if registry == DEFAULT_REGISTRY {
            DOCKER_HUB_API.to_string()
        } else {
            registry.clone()
        };
        let insecure = insecure_registries(layout)?;
        let loopback = is_loopback(&host);
        let plain = loopback || insecure.contains(&registry);
        let scheme = if plain { "http" } else { "https" };
        Ok(Client {
            base: format!("{scheme}://{host}"),
            agent: agent(plain, loopback),
            registry,
            plain,
            insecure,
            creds,
            auth: Mutex::new(None),
        })
    }

    /// The registry as the user names it (`docker.io`, `host:port`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// `scheme://host` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn send(&self, url: &str, accept: Option<&str>, auth: Option<&str>) -> Result<Response<Body>> {
        let mut req = self.agent.get(url);
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        req.call().map_err(|source| Error::Request {
            registry: self.registry.clone(),
            url: url.to_string(),
            source: Box::new(source),
        })
    }

    /// GETs `path` (`/v2/...`), authenticating as a 401 asks and retrying
    /// once. Any status but a second 401 is the caller's to judge.
    pub fn get(&self, path: &str, accept: Option<&str>) -> Result<Response<Body>> {
        let url = self.url(path);
        let mut retried = false;
        loop {
            let auth = self.auth.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let resp = self.send(&url, accept, auth.as_deref())?;
            if resp.status() != 401 {
                return Ok(resp);
            }
            if retried {
                return Err(Error::Denied(self.registry.clone()));
            }
            let header = resp
                .headers()
                .get_all("www-authenticate")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
                .join(", ");
            let new = self.authorize(&header)?;
            *self.auth.lock().unwrap_or_else(|e| e.into_inner()) = Some(new);
            retried = true;
        }
    }

    /// The `Authorization` value that answers `header`'s challenge.
    fn authorize(&self, header: &str) -> Result<String> {
        if header.trim().is_empty() {
            return Err(Error::NoChallenge(self.registry.clone()));
        }
        let challenge = parse_challenges(header)
            .into_iter()
            // Bearer wins when both are offered: the token is scoped.
            .min_by_key(|c| matches!(c, Challenge::Basic))
            .ok_or_else(|| Error::Challenge {
                registry: self.registry.clone(),
                challenge: header.to_string(),
            })?;
        match challenge {
            Challenge::Basic => match &self.creds {
                Some(c) => Ok(c.basic_header()),
                None => Err(Error::AuthRequired(self.registry.clone())),
            },
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => self.token(&realm, service.as_deref(), scope.as_deref()),
        }
    }

    /// Fetches a Bearer token from `realm` (with our credentials if we have
    /// any) and returns the `Authorization` value.
    fn token(&self, realm: &str, service: Option<&str>, scope: Option<&str>) -> Result<String> {
        if let Some(rest) = realm.strip_prefix("http://") {
            let host = rest.split(['/', '?']).next().unwrap_or(rest);
            if !self.plain && !is_loopback(host) && !self.insecure.contains(&server_key(host)) {
                return Err(Error::InsecureRealm {
                    registry: self.registry.clone(),
                    realm: realm.to_string(),
                });
            }
        }
        let mut url = realm.to_string();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        for (k, v) in [("service", service), ("scope", scope)] {
            if let Some(v) = v {
                url.push(sep);
                url.push_str(k);
                url.push('=');
                url.push_str(&query_escape(v));
                sep = '&';
            }
        }
        if let Some(c) = &self.creds {
            url.push(sep);
            url.push_str("account=");
            url.push_str(&query_escape(&c.username));
        }
        let mut req = self.agent.get(&url);
        if let Some(c) = &self.creds {
            req = req.header("Authorization", c.basic_header());
        }
        let err = |source| Error::Token {
            registry: self.registry.clone(),
            realm: realm.to_string(),
            source: Box::new(source),
        };
        let resp = req.call().map_err(err)?;
        match resp.status().as_u16() {
            200 => {}
            401 | 403 if self.creds.is_some() => return Err(Error::Denied(self.registry.clone())),
            401 | 403 => return Err(Error::AuthRequired(self.registry.clone())),
            status => {
                return Err(Error::TokenStatus {
                    registry: self.registry.clone(),
                    realm: realm.to_string(),
                    status,
                })
            }
        }
        let body = resp
            .into_body()
            .with_config()
            .limit(MAX_TOKEN_RESPONSE)
            .read_to_vec()
            .map_err(err)?;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        // `token` is Docker's name, `access_token` OAuth2's; registries send
        // either or both.
        ["token", "access_token"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str).filter(|t| !t.is_empty()))
            .map(|t| format!("Bearer {t}"))
            .ok_or_else(|| Error::NoToken {
                registry: self.registry.clone(),
                realm: realm.to_string(),
            })
    }

    /// `GET /v2/` through the auth dance: whether the registry takes our
    /// credentials. With credentials and no challenge at all, the
    /// registry is open and there is nothing to check.
    pub fn ping(&self) -> Result<()> {
        let resp = self.get("/v2/", None)?;
        if resp.status() == 200 {
            return Ok(());
        }
        Err(self.status_error(resp, &self.url("/v2/")))
    }

    /// The error for an unexpected status, with the message the registry
    /// put in its error body.
    pub fn status_error(&self, resp: Response<Body>, url: &str) -> Error {
        let status = resp.status().as_u16();
        Error::Status {
            registry: self.registry.clone(),
            url: url.to_string(),
            status,
            detail: error_detail(resp)
                .map(|d| format!(": {d}"))
                .unwrap_or_default(),
        }
    }
}

/// The first `message` of a registry's `{"errors": [...]}` body.
pub fn error_detail(resp: Response<Body>) -> Option<String> {
    let body = resp
        .into_body()
        .with_config()
        .limit(64 * 1024)
        .read_to_vec()
        .ok()?;
    let v: Value = serde_json::from_slice(&body).ok()?;
    let e = v.get("errors")?.as_array()?.first()?;
    e.get("message")
        .and_then(Value::as_str)
        .or_else(|| e.get("code").and_then(Value::as_str))
        .map(str::to_lowercase)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses `WWW-Authenticate` (RFC 7235): one or more challenges, each a
/// scheme and comma-separated `key=value` or `key="quoted, value"` pairs.
/// Challenges of other schemes are dropped.
fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut raw: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let b = header.as_bytes();
    let mut i = 0;
    let skip = |i: &mut usize, pred: &dyn Fn(u8) -> bool| {
        while *i < b.len() && pred(b[*i]) {
            *i += 1;
        }
    };
    while i < b.len() {
        skip(&mut i, &|c| c == b' ' || c == b',' || c == b'\t');
        let start = i;
        skip(&mut i, &|c| c != b' ' && c != b'=' && c != b',');
        if start == i {
            break;
        }
        let word = &header[start..i];
        skip(&mut i, &|c| c == b' ' || c == b'\t');
        if i < b.len() && b[i] == b'=' {
            // A parameter of the current challenge.
            i += 1;
            skip(&mut i, &|c| c == b' ' || c == b'\t');
            let mut value = String::new();
            if i < b.len() && b[i] == b'"' {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    let ch = header[i..].chars().next().unwrap_or('\u{fffd}');
                    value.push(ch);
                    i += ch.len_utf8();
                }
                i += 1;
            } else {
                let vs = i;
                skip(&mut i, &|c| c != b',' && c != b' ');
                value.push_str(&header[vs..i]);
            }
            if let Some((_, params)) = raw.last_mut() {
                params.push((word.to_ascii_lowercase(), value));
            }
        } else {
            raw.push((word.to_ascii_lowercase(), Vec::new()));
        }
    }
    raw.into_iter()
        .filter_map(|(scheme, params)| {
            let get = |k: &str| {
                params
                    .iter()
                    .find(|(pk, _)| pk == k)
                    .map(|(_, v)| v.clone())
            };
            match scheme.as_str() {
                "basic" => Some(Challenge::Basic),
                "bearer" => Some(Challenge::Bearer {
                    realm: get("realm")?,
                    service: get("service"),
                    scope: get("scope"),
                }),
                _ => None,
            }
        })
        .collect()
}

// ---- base64 (RFC 4648, standard alphabet, padded): what `auth` holds

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(c.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(c.get(2).copied().unwrap_or(0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(B64[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

// ---- the credentials file

/// The key a registry is filed under: `host[:port]` without scheme or path,
/// Docker Hub's several names folded into `docker.io`.
pub fn server_key(s: &str) -> String {
    let s = s
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or(s).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DEFAULT_REGISTRY.to_string()
        }
        _ => host,
    }
}

fn auth_path(layout: &Layout) -> PathBuf {
    layout.root.join(AUTH_FILE)
}

/// The whole credentials file (`{}` when there is none).
fn read_auth_file(p: &Path) -> Result<Map<String, Value>> {
    let data = match std::fs::read(p) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(e) => return Err(Error::ReadFile(p.to_path_buf(), e)),
    };
    match serde_json::from_slice(&data) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::ParseFile(
            p.to_path_buf(),
            "not a JSON object".into(),
        )),
        Err(e) => Err(Error::ParseFile(p.to_path_buf(), e.to_string())),
    }
}

/// The credentials saved for `registry`, if any. Entries are matched by
/// [`server_key`], so Docker's `https://index.docker.io/v1/` works too.
pub fn credentials(layout: &Layout, registry: &str) -> Result<Option<Credentials>> {
    let p = auth_path(layout);
    let file = read_auth_file(&p)?;
    let want = server_key(registry);
    let Some(auths) = file.get("auths").and_then(Value::as_object) else {
        return Ok(None);
    };
    let Some(entry) = auths
        .iter()
        .find(|(k, _)| server_key(k) == want)
        .map(|(_, v)| v)
    else {
        return Ok(None);
    };
    let bad = |why: &str| Error::ParseFile(p.clone(), format!("entry {want}: {why}"));
    if let Some(a) = entry.get("auth").and_then(Value::as_str) {
        let raw = base64_decode(a).ok_or_else(|| bad("auth is not base64"))?;
        let raw = String::from_utf8(raw).map_err(|_| bad("auth is not UTF-8"))?;
        let (u, pw) = raw
            .split_once(':')
            .ok_or_else(|| bad("auth is not user:password"))?;
        return Ok(Some(Credentials {
            username: u.to_string(),
            password: pw.to_string(),
        }));
    }
    match (
        entry.get("username").and_then(Value::as_str),
        entry.get("password").and_then(Value::as_str),
    ) {
        (Some(u), Some(pw)) => Ok(Some(Credentials {
            username: u.to_string(),
            password: pw.to_string(),
        })),
        _ => Ok(None),
    }
}

/// Replaces the credentials file atomically; it stays 0600 (write_atomic
/// creates its temp file so) inside the 0700 state root.
fn write_auth_file(layout: &Layout, file: &Map<String, Value>) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&layout.root)
        .map_err(|e| Error::CreateDir(layout.root.clone(), e))?;
    let p = auth_path(layout);
    let data = serde_json::to_vec_pretty(file).expect("auth file serializes");
    protocol::record::write_atomic(&p, &data).map_err(|e| Error::WriteFile(p, e))
}

/// Saves `creds` for `registry`, keeping every other entry.
pub fn save_credentials(layout: &Layout, registry: &str, creds: &Credentials) -> Result<()> {
    let p = auth_path(layout);
    let mut file = read_auth_file(&p)?;
    let key = server_key(registry);
    let auths = file
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let auths = auths.as_object_mut().expect("just made an object");
    auths.retain(|k, _| server_key(k) != key);
    let auth = base64_encode(format!("{}:{}", creds.username, creds.password).as_bytes());
    auths.insert(key, json!({ "auth": auth }));
    write_auth_file(layout, &file)
}

/// Forgets `registry`'s credentials; false if there were none. The file
/// goes away with its last entry.
pub fn remove_credentials(layout: &Layout, registry: &str) -> Result<bool> {
    let p = auth_path(layout);
    let mut file = read_auth_file(&p)?;
    let key = server_key(registry);
    let Some(auths) = file.get_mut("auths").and_then(Value::as_object_mut) else {
        return Ok(false);
    };
    let before = auths.len();
    auths.retain(|k, _| server_key(k) != key);
    if auths.len() == before {
        return Ok(false);
    }
    if auths.is_empty() {
        file.remove("auths");
    }
    if file.is_empty() {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::RemoveFile(p, e)),
        }
    } else {
        write_auth_file(layout, &file)?;
    }
    Ok(true)
}

// ---- login and logout

/// Reads one line from the terminal on stdin after printing `label` on
/// stderr; with `echo` off the typed text is not shown (a password).
fn prompt(server: &str, label: &str, echo: bool) -> Result<String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        return Err(Error::LoginInput(
            server.to_string(),
            if echo {
                "no username given (-u) and stdin is not a terminal"
            } else {
                "no password given (-p or --password-stdin) and stdin is not a terminal"
            },
        ));
    }
    eprint!("{label}");
    let _ = io::stderr().flush();
    let saved = if echo {
        None
    } else {
        tcgetattr(&stdin).ok().inspect(|t| {
            let mut quiet = t.clone();
            quiet.local_flags.remove(LocalFlags::ECHO);
            let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
        })
    };
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    if let Some(t) = saved {
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &t);
        eprintln!();
    }
    r.map_err(|e| Error::ReadPassword(server.to_string(), e))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// `hind login [-u USER] [-p PASS | --password-stdin] [SERVER]`: checks the
/// credentials against the registry, then saves them.
pub fn login(layout: &Layout, a: LoginArgs) -> anyhow::Result<i32> {
    let server = server_key(a.server.as_deref().unwrap_or(DEFAULT_REGISTRY));
    if a.password_stdin && a.password.is_some() {
        return Err(Error::LoginInput(
            server,
            "--password and --password-stdin exclude each other",
        )
        .into());
    }
    let username = match a.username {
        Some(u) => u,
        None => prompt(&server, "Username: ", true)?,
    };
    if username.is_empty() {
        return Err(Error::LoginInput(server, "empty username").into());
    }
    let password = if a.password_stdin {
        let mut s = String::new();
        io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Error::ReadPassword(server.clone(), e))?;
        s.trim_end_matches(['\r', '\n']).to_string()
    } else if let Some(p) = a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else {
        prompt(&server, "Password: ", false)?
    };
    if password.is_empty() {
        return Err(Error::LoginInput(server, "empty password").into());
    }
    let creds = Credentials { username, password };
    let client = Client::with_credentials(layout, &server, Some(creds.clone()))?;
    match client.ping() {
        Ok(()) => {}
        Err(Error::Denied(_)) => return Err(Error::LoginFailed(server).into()),
        Err(e) => return Err(e.into()),
    }
    save_credentials(layout, &server, &creds)?;
    println!("Login Succeeded");
    Ok(0)
}

/// `hind logout [SERVER]`.
pub fn logout(layout: &Layout, a: LogoutArgs) -> anyhow::Result<i32> {
    let server = server_key(a.server.as_deref().unwrap_or(DEFAULT_REGISTRY));
    if remove_credentials(layout, &server)? {
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
            ("alice:p@ss:w0rd", "YWxpY2U6cEBzczp3MHJk"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
            assert_eq!(base64_decode(enc).unwrap(), plain.as_bytes());
        }
        assert!(base64_decode("a*b").is_none());
    }

    #[test]
    fn challenges_parse() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#;
        assert_eq!(
            parse_challenges(h),
            vec![Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull,push".into()),
            }]
        );
        assert_eq!(
            parse_challenges(r#"Basic realm="x""#),
            vec![Challenge::Basic]
        );
        assert_eq!(
            parse_challenges(r#"Basic realm="a, b", Bearer realm=http://t/token"#),
            vec![
                Challenge::Basic,
                Challenge::Bearer {
                    realm: "http://t/token".into(),
                    service: None,
                    scope: None
                }
            ]
        );
        assert!(parse_challenges("Negotiate abc").is_empty());
        assert!(parse_challenges(r#"Bearer service="x""#).is_empty());
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.3.4.5",
            "[::1]:80",
            "::1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "example.com",
            "10.0.0.1:5000",
            "[fe80::1]:5000",
            "localhost.example.com",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn server_keys() {
        assert_eq!(server_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(server_key("registry-1.docker.io"), "docker.io");
        assert_eq!(server_key("http://127.0.0.1:5000/"), "127.0.0.1:5000");
        assert_eq!(server_key("Quay.IO"), "quay.io");
    }

    #[test]
    fn credentials_file_round_trips() {
        let dir = std::env::temp_dir().join(format!("hind-auth-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let layout = Layout::new(&dir);
        let c = Credentials {
            username: "alice".into(),
            password: "pw:with:colons".into(),
        };
        assert_eq!(credentials(&layout, "h:1").unwrap(), None);
        save_credentials(&layout, "http://h:1/", &c).unwrap();
        save_credentials(&layout, "other:2", &c).unwrap();
        assert_eq!(credentials(&layout, "h:1").unwrap(), Some(c.clone()));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.join(AUTH_FILE))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        assert!(remove_credentials(&layout, "h:1").unwrap());
        assert!(!remove_credentials(&layout, "h:1").unwrap());
        assert_eq!(credentials(&layout, "h:1").unwrap(), None);
        assert!(remove_credentials(&layout, "other:2").unwrap());
        assert!(!dir.join(AUTH_FILE).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
