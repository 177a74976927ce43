//! Registries on loopback for the pull tests, one per test.
//!
//! - [`Registry`]: Debian's `docker-registry` (distribution v2) on its own
//!   free `127.0.0.1` port with its storage under the test's scratch dir,
//!   killed and reaped on drop. Images get in with `skopeo copy`
//!   ([`push_layout`]), digests preserved.
//! - [`AuthProxy`]: a small thread-per-connection HTTP/1.1 reverse proxy in
//!   front of a registry that demands a Bearer token (and serves it at
//!   `/token`) or Basic credentials, and records every request so a test can
//!   assert the auth dance happened.
//! - [`http_request`]: one raw HTTP/1.1 request over a `TcpStream`, for
//!   looking at a registry without going through `hind`.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `Accept` for manifests: both OCI types and both Docker v2 types.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// The `service` the auth proxy names in its challenge.
pub const SERVICE: &str = "hind-test";

/// How long the registry may take to answer `GET /v2/`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Read/write timeout of every socket here.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one `skopeo copy` may take.
const SKOPEO_TIMEOUT: Duration = Duration::from_secs(60);

/// A response read by [`http_request`].
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// In order, names as sent.
    pub headers: Vec<(String, String)>,
    /// De-chunked; empty for `HEAD`.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body if it is not.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {}", self.text()))
    }
}

/// Sends one `METHOD path HTTP/1.1` request with `headers` (plus `Host` and
/// `Connection: close`) to `addr` and reads the whole response.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> io::Result<HttpResponse> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    s.write_all(req.as_bytes())?;
    let mut r = BufReader::new(s);
    let head = read_head(&mut r)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no response"))?;
    let status = head
        .start
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad_data(format!("bad status line {:?}", head.start)))?;
    let mut body = Vec::new();
    if method != "HEAD" && status != 204 && status != 304 {
        if head
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            body = read_chunked(&mut r)?;
        } else if let Some(len) = head.content_length() {
            r.take(len).read_to_end(&mut body)?;
        } else {
            r.read_to_end(&mut body)?;
        }
    }
    Ok(HttpResponse {
        status,
        headers: head.headers,
        body,
    })
}

fn bad_data(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// A request or response head: the start line and the headers.
struct Head {
    start: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> Option<u64> {
        self.header("content-length")
            .and_then(|v| v.trim().parse().ok())
    }
}

/// Reads a head up to the empty line; `None` on EOF before the first byte.
fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut start = String::new();
    if r.read_line(&mut start)? == 0 {
        return Ok(None);
    }
    let start = start.trim_end().to_string();
    let mut headers = Vec::new();
    let mut total = start.len();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "eof inside the head",
            ));
        }
        total += line.len();
        if total > 64 * 1024 {
            return Err(bad_data("head over 64 KiB".to_string()));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| bad_data(format!("bad header line {line:?}")))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(Some(Head { start, headers }))
}

/// A chunked body (trailers skipped).
fn read_chunked(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        let size = line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| bad_data(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            loop {
                let mut t = String::new();
                if r.read_line(&mut t)? == 0 || t.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf)?;
    }
}

/// Standard base64 with padding, for `Authorization: Basic`.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A free port on 127.0.0.1 right now (someone may take it before use).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0 to find a free port")
}

/// The registry binary: `HIND_TEST_REGISTRY` or `docker-registry` on PATH
/// (package `docker-registry`).
fn registry_binary() -> PathBuf {
    std::env::var_os("HIND_TEST_REGISTRY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("docker-registry"))
}

/// One `docker-registry serve` on `127.0.0.1:PORT`, storage under
/// `SCRATCH/registry-PORT/storage`, its log in `.../registry.log`. Killed
/// and reaped on drop; drop it before [`crate::TestEnv::finish`], whose leak
/// check would see its command line naming the test dir.
pub struct Registry {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl Registry {
    /// Starts a registry and waits (up to 20 s) until `GET /v2/` answers
    /// 200. A port taken between picking and binding is retried.
    #[track_caller]
    pub fn start(scratch: &Path) -> Registry {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let dir = scratch.join(format!("registry-{port}"));
            fs::create_dir_all(dir.join("storage"))
                .unwrap_or_else(|e| panic!("create {}/storage: {e}", dir.display()));
            let config = dir.join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\n\
                     log:\n  level: info\n  accesslog:\n    disabled: true\n\
                     storage:\n  filesystem:\n    rootdirectory: \"{}\"\n  delete:\n    enabled: true\n  \
                     maintenance:\n    uploadpurging:\n      enabled: false\n\
                     http:\n  addr: \"{addr}\"\n",
                    dir.join("storage").display()
                ),
            )
            .unwrap_or_else(|e| panic!("write {}: {e}", config.display()));
            let log = File::create(dir.join("registry.log"))
                .unwrap_or_else(|e| panic!("create {}/registry.log: {e}", dir.display()));
            let mut cmd = Command::new(registry_binary());
            cmd.arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup registry log fd"))
                .stderr(log);
            // SAFETY: prctl(2) is async-signal-safe and touches no memory
            // of the parent; it only asks the kernel to SIGKILL the
            // registry if the test thread that started it dies without
            // running our Drop (a killed test binary).
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = cmd.spawn().unwrap_or_else(|e| {
                panic!(
                    "start {}: {e} (apt-get install docker-registry; scripts/test does)",
                    registry_binary().display()
                )
            });
            let mut reg = Registry { child, addr, dir };
            match reg.wait_ready() {
                Ok(()) => return reg,
                Err(e) => {
                    let log = reg.log();
                    if log.contains("address already in use") {
                        last = format!("{e}\n{log}");
                        continue;
                    }
                    panic!("registry on {} did not come up: {e}\n{log}", reg.addr);
                }
            }
        }
        panic!("registry: no free port after 5 tries: {last}");
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let end = Instant::now() + READY_TIMEOUT;
        let mut last = String::from("no answer");
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Err(format!("docker-registry exited: {st}"));
            }
            match http_request(&self.addr, "GET", "/v2/", &[]) {
                Ok(r) if r.status == 200 => return Ok(()),
                Ok(r) => last = format!("GET /v2/ answered {}", r.status),
                Err(e) => last = format!("GET /v2/: {e}"),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("not ready after {READY_TIMEOUT:?}: {last}"))
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `127.0.0.1:PORT/REPO_TAG`, a reference for `hind pull`.
    pub fn reference(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.addr)
    }

    /// The registry's own directory (config, log, `storage/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the registry logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// Pushes tag `tag` of the OCI layout `layout` as `REPO:TAG` (or
    /// `REPO@sha256:...`) to this registry; see [`push_layout`].
    #[track_caller]
    pub fn push_layout(&self, layout: &Path, tag: &str, repo_tag: &str) {
        push_layout(layout, tag, &self.reference(repo_tag));
    }

    /// `GET`/`HEAD`/... `path` on this registry.
    #[track_caller]
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        http_request(&self.addr, method, path, headers)
            .unwrap_or_else(|e| panic!("{method} http://{}{path}: {e}", self.addr))
    }

    /// `GET /v2/REPO/manifests/REFERENCE` accepting every manifest type.
    #[track_caller]
    pub fn manifest(&self, repo: &str, reference: &str) -> HttpResponse {
        self.request(
            "GET",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Accept", ACCEPT_MANIFESTS)],
        )
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `skopeo copy --all --preserve-digests` of tag `tag` of the OCI layout
/// `layout` to `docker://DEST` (`127.0.0.1:PORT/repo:tag`), plain HTTP.
/// Every manifest, index and blob keeps the digest the builder computed.
/// Panics with skopeo's output if it fails.
#[track_caller]
pub fn push_layout(layout: &Path, tag: &str, dest: &str) {
    let mut c = Command::new("skopeo");
    c.args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-no-creds",
    ])
    .arg(format!("oci:{}:{tag}", layout.display()))
    .arg(format!("docker://{dest}"));
    let out = crate::process::run(c, b"", SKOPEO_TIMEOUT);
    assert!(
        out.code == 0 && !out.timed_out,
        "skopeo copy oci:{}:{tag} docker://{dest} failed \
         (apt-get install skopeo; scripts/test does):\n{out}",
        layout.display()
    );
}

/// What the [`AuthProxy`] demands.
#[derive(Clone, Debug)]
pub enum AuthMode {
    /// `/v2/...` needs `Authorization: Bearer TOKEN`; `GET /token` hands
    /// it out to anybody.
    Bearer { token: String },
    /// `/v2/...` needs `Authorization: Basic base64(USER:PASS)`.
    Basic { user: String, pass: String },
}

impl AuthMode {
    pub fn bearer(token: &str) -> AuthMode {
        AuthMode::Bearer {
            token: token.to_string(),
        }
    }

    pub fn basic(user: &str, pass: &str) -> AuthMode {
        AuthMode::Basic {
            user: user.to_string(),
            pass: pass.to_string(),
        }
    }
}

/// One request the proxy answered.
#[derive(Clone, Debug)]
pub struct ProxyRequest {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    pub authorization: Option<String>,
    /// What the client got (the registry's status when forwarded).
    pub status: u16,
    pub forwarded: bool,
}

impl ProxyRequest {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// Every value of query parameter `key`, percent-decoded.
    pub fn query(&self, key: &str) -> Vec<String> {
        let Some((_, q)) = self.target.split_once('?') else {
            return Vec::new();
        };
        q.split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .filter(|(k, _)| percent_decode(k) == key)
            .map(|(_, v)| percent_decode(v))
            .collect()
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Shared {
    addr: String,
    upstream: String,
    mode: AuthMode,
    stop: AtomicBool,
    log: Mutex<Vec<ProxyRequest>>,
}

/// An auth front for a [`Registry`] on its own loopback port: one thread
/// per connection, one request per connection (every response closes it),
/// bodies streamed both ways. Stopped on drop; connection threads still
/// running then end with their sockets.
pub struct AuthProxy {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl AuthProxy {
    /// Starts a proxy for the registry at `upstream` (`127.0.0.1:PORT`).
    #[track_caller]
    pub fn start(upstream: &str, mode: AuthMode) -> AuthProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind auth proxy on 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("auth proxy local address")
            .to_string();
        let shared = Arc::new(Shared {
            addr,
            upstream: upstream.to_string(),
            mode,
            stop: AtomicBool::new(false),
            log: Mutex::new(Vec::new()),
        });
        let s = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("auth-proxy".to_string())
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let s = Arc::clone(&s);
                    let _ = std::thread::Builder::new()
                        .name("auth-proxy-conn".to_string())
                        .spawn(move || {
                            let _ = handle(&s, conn);
                        });
                }
            })
            .expect("spawn auth proxy thread");
        AuthProxy {
            shared,
            accept: Some(accept),
        }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// `127.0.0.1:PORT/REPO_TAG` through the proxy.
    pub fn reference(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.shared.addr)
    }

    /// The token endpoint named in the challenge.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.shared.addr)
    }

    /// Every request answered so far, in order of answer.
    pub fn requests(&self) -> Vec<ProxyRequest> {
        self.shared.log.lock().expect("proxy log lock").clone()
    }

    /// Requests to `/token`.
    pub fn token_requests(&self) -> Vec<ProxyRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path() == "/token")
            .collect()
    }

    /// How many requests got a 401 from the proxy.
    pub fn unauthorized(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.status == 401 && !r.forwarded)
            .count()
    }

    /// How many requests were passed on to the registry.
    pub fn forwarded(&self) -> usize {
        self.requests().iter().filter(|r| r.forwarded).count()
    }
}

impl Drop for AuthProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Unblocks accept(2) so the thread sees the flag.
        let _ = TcpStream::connect(&self.shared.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Shared {
    fn record(&self, head: &Head, auth: Option<&str>, status: u16, forwarded: bool) {
        let mut parts = head.start.split(' ');
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        self.log.lock().expect("proxy log lock").push(ProxyRequest {
            method,
            target,
            authorization: auth.map(str::to_string),
            status,
            forwarded,
        });
    }

    fn authorized(&self, auth: Option<&str>) -> bool {
        let Some((scheme, cred)) = auth.and_then(|a| a.split_once(' ')) else {
            return false;
        };
        match &self.mode {
            AuthMode::Bearer { token } => {
                scheme.eq_ignore_ascii_case("bearer") && cred.trim() == token
            }
            AuthMode::Basic { user, pass } => {
                scheme.eq_ignore_ascii_case("basic")
                    && cred.trim() == base64(format!("{user}:{pass}").as_bytes())
            }
        }
    }

    /// The `WWW-Authenticate` value for a request of `method` on `path`.
    fn challenge(&self, method: &str, path: &str) -> String {
        match &self.mode {
            AuthMode::Basic { .. } => format!("Basic realm=\"{SERVICE}\""),
            AuthMode::Bearer { .. } => {
                let mut c = format!(
                    "Bearer realm=\"http://{}/token\",service=\"{SERVICE}\"",
                    self.addr
                );
                if let Some(repo) = repo_of(path) {
                    let action = if matches!(method, "GET" | "HEAD") {
                        "pull"
                    } else {
                        "pull,push"
                    };
                    c.push_str(&format!(",scope=\"repository:{repo}:{action}\""));
                }
                c
            }
        }
    }
}

/// The repository of a `/v2/NAME/{manifests,blobs,tags}/...` path.
fn repo_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v2/")?;
    let end = ["/manifests/", "/blobs/", "/tags/"]
        .iter()
        .filter_map(|m| rest.rfind(m))
        .max()?;
    Some(&rest[..end])
}

/// Writes a whole response made here (no body for `HEAD`).
fn respond(
    out: &mut TcpStream,
    method: &str,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        411 => "Length Required",
        502 => "Bad Gateway",
        _ => "",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    out.write_all(head.as_bytes())?;
    if method != "HEAD" {
        out.write_all(body)?;
    }
    out.flush()
}

/// Serves one request on `client`, then closes it.
fn handle(s: &Shared, client: TcpStream) -> io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut out = client.try_clone()?;
    let mut reader = BufReader::with_capacity(64 * 1024, client);
    let Some(head) = read_head(&mut reader)? else {
        return Ok(());
    };
    let method = head.start.split(' ').next().unwrap_or("").to_string();
    let target = head.start.split(' ').nth(1).unwrap_or("").to_string();
    let path = target.split('?').next().unwrap_or("");
    let auth = head.header("authorization").map(str::to_string);
    let auth = auth.as_deref();
    let json = [("Content-Type", "application/json")];
    if path == "/token" {
        let AuthMode::Bearer { token } = &s.mode else {
            s.record(&head, auth, 404, false);
            return respond(&mut out, &method, 404, &[], b"no token service");
        };
        s.record(&head, auth, 200, false);
        let body = serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": 300,
        });
        respond(&mut out, &method, 200, &json, body.to_string().as_bytes())?;
    } else if path == "/v2" || path.starts_with("/v2/") {
        if !s.authorized(auth) {
            s.record(&head, auth, 401, false);
            let challenge = s.challenge(&method, path);
            let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#;
            respond(
                &mut out,
                &method,
                401,
                &[
                    ("Content-Type", "application/json"),
                    ("Docker-Distribution-Api-Version", "registry/2.0"),
                    ("WWW-Authenticate", &challenge),
                ],
                body,
            )?;
        } else {
            forward(s, &head, auth, &mut reader, &mut out)?;
        }
    } else {
        s.record(&head, auth, 404, false);
        respond(&mut out, &method, 404, &[], b"not found")?;
    }
    let _ = out.shutdown(Shutdown::Both);
    Ok(())
}

/// Sends the request upstream with `Connection: close` (and without the
/// client's credentials), then streams the whole response back.
fn forward(
    s: &Shared,
    head: &Head,
    auth: Option<&str>,
    reader: &mut BufReader<TcpStream>,
    out: &mut TcpStream,
) -> io::Result<()> {
    let method = head.start.split(' ').next().unwrap_or("");
    if head.header("transfer-encoding").is_some() {
        s.record(head, auth, 411, false);
        return respond(
            out,
            method,
            411,
            &[],
            b"chunked request bodies not supported",
        );
    }
    let mut up = match TcpStream::connect(&s.upstream) {
        Ok(up) => up,
        Err(e) => {
            s.record(head, auth, 502, false);
            return respond(out, method, 502, &[], e.to_string().as_bytes());
        }
    };
    up.set_read_timeout(Some(IO_TIMEOUT))?;
    up.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut req = format!("{}\r\n", head.start);
    for (k, v) in &head.headers {
        let k_l = k.to_ascii_lowercase();
        if matches!(
            k_l.as_str(),
            "connection" | "keep-alive" | "proxy-connection" | "authorization" | "te" | "upgrade"
        ) {
            continue;
        }
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    up.write_all(req.as_bytes())?;
    if let Some(len) = head.content_length() {
        io::copy(&mut reader.take(len), &mut up)?;
    }
    let mut upr = BufReader::with_capacity(64 * 1024, up);
    let mut status_line = String::new();
    upr.read_line(&mut status_line)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    s.record(head, auth, status, true);
    out.write_all(status_line.as_bytes())?;
    io::copy(&mut upr, out)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn repo_from_path() {
        assert_eq!(repo_of("/v2/a/b/manifests/latest"), Some("a/b"));
        assert_eq!(repo_of("/v2/lib/x/blobs/sha256:00"), Some("lib/x"));
        assert_eq!(repo_of("/v2/r/blobs/uploads/1234"), Some("r"));
        assert_eq!(repo_of("/v2/r/tags/list"), Some("r"));
        assert_eq!(repo_of("/v2/"), None);
    }

    #[test]
    fn query_decoding() {
        let r = ProxyRequest {
            method: "GET".into(),
            target: "/token?scope=repository%3Aa%2Fb%3Apull&service=hind-test&scope=x".into(),
            authorization: None,
            status: 200,
            forwarded: false,
        };
        assert_eq!(r.query("scope"), ["repository:a/b:pull", "x"]);
        assert_eq!(r.query("service"), ["hind-test"]);
        assert!(r.query("nope").is_empty());
    }
}
