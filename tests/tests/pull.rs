//! `hind pull`, `login` and `logout` against Debian's `docker-registry` on
//! a loopback port, filled by `skopeo copy` from OCI layouts built here:
//! layers with whiteouts and opaque dirs, gzip/zstd/plain blobs, a
//! two-platform index, Bearer-token and Basic auth through the harness's
//! proxy, a tampered blob, a pull killed halfway, and `run` pulling what
//! is missing. Each test has its own registry and state root.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hind_tests::oci::{
    host_arch, sha256_digest, Entry, ImageBuilder, ImageDigests, IndexBuilder, Layer,
    MEDIA_LAYER_GZIP,
};
use hind_tests::registry::{AuthMode, AuthProxy, Registry, SERVICE};
use hind_tests::{poll, TestEnv};
use nix::sys::signal::Signal;

/// Writes `img` into a layout under the scratch dir and pushes it as
/// `repo_tag` (`repo:tag`).
fn push(env: &TestEnv, reg: &Registry, img: &ImageBuilder, repo_tag: &str) -> ImageDigests {
    let layout = env
        .scratch()
        .join(format!("layout-{}", repo_tag.replace([':', '/'], "_")));
    let d = img.write_layout(&layout, "t");
    reg.push_layout(&layout, "t", repo_tag);
    d
}

/// busybox (gzip), a plain layer with files, and a zstd layer that deletes
/// one of them and makes `/var/cache` opaque.
fn layered_image() -> ImageBuilder {
    ImageBuilder::new()
        .layer(Layer::busybox().gzip())
        .layer(Layer::new(&[
            Entry::dir("etc"),
            Entry::file("etc/hello", "hello\n"),
            Entry::file("etc/gone", "bye\n"),
            Entry::dir("var/cache"),
            Entry::file("var/cache/old", "old\n"),
            Entry::file("var/cache/older", "older\n"),
        ]))
        .layer(
            Layer::new(&[
                Entry::whiteout("etc/gone"),
                Entry::dir("var/cache"),
                Entry::opaque("var/cache"),
                Entry::file("var/cache/new", "new\n"),
            ])
            .zstd(),
        )
        .cmd(&["sh"])
}

/// Names in a dir (empty if it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    hind_tests::dir_entries(dir)
}

fn store(env: &TestEnv) -> PathBuf {
    env.root().join("images")
}

/// `hind image inspect REF` as JSON (the first document).
#[track_caller]
fn inspect(env: &TestEnv, r: &str) -> serde_json::Value {
    let out = env.run(&["image", "inspect", r]);
    out.expect_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("inspect output is not JSON ({e}):\n{out}"));
    v[0].clone()
}

/// The image holds nothing half-done: no record, no tag, nothing in the
/// store's scratch dir.
#[track_caller]
fn assert_no_image(env: &TestEnv) {
    let s = store(env);
    assert_eq!(
        entries(&s.join("db")),
        Vec::<String>::new(),
        "image records"
    );
    assert_eq!(entries(&s.join("tmp")), Vec::<String>::new(), "store tmp/");
    let refs = fs::read_to_string(s.join("refs.json")).unwrap_or_default();
    assert!(!refs.contains(':'), "tags left: {refs}");
    let out = env.run(&["images", "-q"]);
    out.expect_success();
    assert_eq!(out.stdout, "", "{out}");
}

#[test]
fn pulls_layers_with_whiteouts_and_runs_them() {
    let env = TestEnv::new("pull_layers");
    let reg = Registry::start(env.scratch());
    let d = push(&env, &reg, &layered_image(), "test/app:v1");
    let r = reg.reference("test/app:v1");

    let out = env.run(&["pull", &r]);
    out.expect_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!("Digest: {}", d.manifest).as_str(),
            format!("Status: Downloaded newer image for {r}").as_str(),
            r.as_str(),
        ],
        "{out}"
    );
    assert_eq!(out.stderr, "", "not a terminal: no progress\n{out}");

    // Deleted files stay deleted; the opaque dir shows only the upper layer.
    let out = env.run(&[
        "run",
        "--rm",
        &r,
        "sh",
        "-c",
        "cat /etc/hello; ls /var/cache; test -e /etc/gone && echo present || echo gone",
    ]);
    out.expect_success();
    assert_eq!(out.stdout, "hello\nnew\ngone\n", "{out}");

    let out = env.run(&["images"]);
    out.expect_success();
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{}/test/app ", reg.addr())))
        .unwrap_or_else(|| panic!("image not listed:\n{out}"));
    assert!(row.contains(" v1 "), "{row}");
    let short = &d.config["sha256:".len().."sha256:".len() + 12];
    assert!(row.contains(short), "{row}");

    let i = inspect(&env, &r);
    assert_eq!(i["Id"], d.config.as_str());
    assert_eq!(
        i["RepoDigests"],
        serde_json::json!([format!("{}/test/app@{}", reg.addr(), d.manifest)])
    );
    assert_eq!(i["RootFS"]["Layers"], serde_json::json!(d.diff_ids));
    assert_eq!(i["Layers"][0]["MediaType"], MEDIA_LAYER_GZIP);
    // Blobs are kept as distributed, for `save`.
    for l in &d.layers {
        let hex = &l["sha256:".len()..];
        assert!(
            store(&env).join("blobs/sha256").join(hex).is_file(),
            "blob {l}"
        );
    }
    assert_eq!(entries(&store(&env).join("tmp")), Vec::<String>::new());
    drop(reg);
    env.finish();
}

#[test]
fn pulls_by_digest() {
    let env = TestEnv::new("pull_digest");
    let reg = Registry::start(env.scratch());
    let d = push(&env, &reg, &layered_image(), "test/app:v1");
    let r = format!("{}/test/app@{}", reg.addr(), d.manifest);

    let out = env.run(&["pull", "-q", &r]);
    out.expect_success();
    assert_eq!(out.stdout, format!("{r}\n"), "{out}");
    // No tag: the image is known by its digest only.
    let out = env.run(&["run", "--rm", &r, "cat", "/etc/hello"]);
    out.expect_success();
    assert_eq!(out.stdout, "hello\n", "{out}");
    let i = inspect(&env, &r);
    assert_eq!(i["Id"], d.config.as_str());
    assert_eq!(i["RepoTags"], serde_json::json!([]));

    // A digest nobody pushed is an unknown manifest.
    let other = format!("{}/test/app@sha256:{}", reg.addr(), "0".repeat(64));
    env.run(&["pull", &other])
        .expect_code(1)
        .expect_one_error_line(&[&other, "not found"]);
    drop(reg);
    env.finish();
}

#[test]
fn index_resolves_to_the_platform() {
    let env = TestEnv::new("pull_index");
    let reg = Registry::start(env.scratch());
    let layout = env.scratch().join("layout");
    let idx = IndexBuilder::amd64_arm64(|_| {
        ImageBuilder::new()
            .layer(Layer::busybox().gzip())
            .cmd(&["cat", "/platform"])
    });
    let d = idx.write_layout(&layout, "multi");
    reg.push_layout(&layout, "multi", "test/multi:latest");
    let r = reg.reference("test/multi:latest");

    let out = env.run(&["pull", &r]);
    out.expect_success();
    // The repo digest is the index's, the image the host platform's.
    assert!(
        out.stdout.contains(&format!("Digest: {}\n", d.index)),
        "{out}"
    );
    let host = d.image(host_arch());
    assert_eq!(inspect(&env, &r)["Id"], host.config.as_str());
    let out = env.run(&["run", "--rm", &r]);
    out.expect_success();
    assert_eq!(out.stdout, format!("{}\n", host_arch()), "{out}");

    // The other platform: not runnable here, so look at its files.
    let other = if host_arch() == "arm64" {
        "amd64"
    } else {
        "arm64"
    };
    let out = env.run(&["pull", "--platform", &format!("linux/{other}"), &r]);
    out.expect_success();
    assert!(
        out.stdout
            .contains(&format!("Status: Downloaded newer image for {r}")),
        "{out}"
    );
    let i = inspect(&env, &r);
    assert_eq!(i["Id"], d.image(other).config.as_str());
    assert_eq!(i["Architecture"], other);
    let top = i["Layers"]
        .as_array()
        .and_then(|l| l.last())
        .and_then(|l| l["Dir"].as_str())
        .expect("top layer dir")
        .to_string();
    assert_eq!(
        fs::read_to_string(Path::new(&top).join("platform")).ok(),
        Some(format!("{other}\n"))
    );
    // The busybox layer is the same blob in both: fetched once.
    let out = env.run(&["images", "-q"]);
    assert_eq!(out.stdout.lines().count(), 2, "{out}");
    assert_eq!(entries(&store(&env).join("layers")).len(), 3);

    env.run(&["pull", "--platform", "linux/s390x", &r])
        .expect_code(1)
        .expect_one_error_line(&[&r, "linux/s390x", "linux/amd64, linux/arm64"]);
    env.run(&["pull", "--platform", "amd64", &r])
        .expect_code(1)
        .expect_one_error_line(&["amd64", "os/arch"]);
    drop(reg);
    env.finish();
}

#[test]
fn second_pull_is_up_to_date_and_fetches_no_blob() {
    let env = TestEnv::new("pull_again");
    let reg = Registry::start(env.scratch());
    let d = push(&env, &reg, &layered_image(), "test/app:v1");
    // The proxy (any token will do) counts what hind asks for.
    let proxy = AuthProxy::start(reg.addr(), AuthMode::bearer("t0ken"));
    let r = proxy.reference("test/app:v1");

    env.run(&["pull", "-q", &r]).expect_success();
    let blobs = |p: &AuthProxy| {
        p.requests()
            .iter()
            .filter(|q| q.forwarded && q.path().contains("/blobs/"))
            .count()
    };
    // The config and three layers.
    assert_eq!(blobs(&proxy), 4, "{:#?}", proxy.requests());
    let layers_before = entries(&store(&env).join("layers"));

    let out = env.run(&["pull", &r]);
    out.expect_success();
    assert!(
        out.stdout.contains(&format!(
            "Digest: {}\nStatus: Image is up to date for {r}\n",
            d.manifest
        )),
        "{out}"
    );
    assert_eq!(
        blobs(&proxy),
        4,
        "second pull fetched blobs: {:#?}",
        proxy.requests()
    );
    assert_eq!(entries(&store(&env).join("layers")), layers_before);
    drop(proxy);
    drop(reg);
    env.finish();
}

#[test]
fn tampered_blob_is_refused_and_nothing_kept() {
    let env = TestEnv::new("pull_tamper");
    let reg = Registry::start(env.scratch());
    // One plain layer, so the registry's file is the tar itself and can be
    // changed without changing its size.
    let img = ImageBuilder::new().layer(Layer::new(&[Entry::file("data", "A".repeat(4096))]));
    let d = push(&env, &reg, &img, "test/bad:v1");
    let hex = &d.layers[0]["sha256:".len()..];
    let data = reg
        .dir()
        .join("storage/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let mut blob = fs::read(&data).unwrap_or_else(|e| panic!("read {}: {e}", data.display()));
    let at = blob
        .windows(8)
        .position(|w| w == b"AAAAAAAA")
        .expect("file content in the tar");
    blob[at..at + 8].copy_from_slice(b"BBBBBBBB");
    fs::write(&data, &blob).expect("tamper with the blob");

    let r = reg.reference("test/bad:v1");
    let out = env.run(&["pull", &r]);
    out.expect_code(1)
        .expect_one_error_line(&[&r, &d.layers[0], "digest mismatch"]);
    assert_no_image(&env);
    assert_eq!(entries(&store(&env).join("layers")), Vec::<String>::new());
    assert!(!store(&env).join("blobs/sha256").join(hex).exists());
    drop(reg);
    env.finish();
}

#[test]
fn token_auth_through_the_proxy() {
    let env = TestEnv::new("pull_token");
    let reg = Registry::start(env.scratch());
    push(&env, &reg, &layered_image(), "lib/bb:latest");
    let proxy = AuthProxy::start(reg.addr(), AuthMode::bearer("s3cret"));
    let r = proxy.reference("lib/bb:latest");

    let out = env.run(&["pull", &r]);
    out.expect_success();
    let tokens = proxy.token_requests();
    assert!(
        !tokens.is_empty(),
        "token endpoint not used: {:#?}",
        proxy.requests()
    );
    assert_eq!(tokens[0].query("service"), [SERVICE]);
    assert_eq!(tokens[0].query("scope"), ["repository:lib/bb:pull"]);
    // The token is reused: one 401 for the whole pull (three layers on
    // parallel threads may each meet one at worst).
    assert!(proxy.unauthorized() <= 3, "{:#?}", proxy.requests());
    assert!(proxy
        .requests()
        .iter()
        .filter(|q| q.forwarded)
        .all(|q| q.authorization.as_deref() == Some("Bearer s3cret")));
    let out = env.run(&["run", "--rm", &r, "cat", "/etc/hello"]);
    out.expect_success();
    assert_eq!(out.stdout, "hello\n");
    drop(proxy);
    drop(reg);
    env.finish();
}

#[test]
fn basic_auth_needs_login() {
    let env = TestEnv::new("pull_basic");
    let reg = Registry::start(env.scratch());
    push(&env, &reg, &layered_image(), "priv/app:v1");
    let proxy = AuthProxy::start(reg.addr(), AuthMode::basic("alice", "pw"));
    let server = proxy.addr().to_string();
    let r = proxy.reference("priv/app:v1");
    let auth = env.root().join("auth.json");

    env.run(&["pull", &r])
        .expect_code(1)
        .expect_one_error_line(&[&format!(
            "authentication required for {server}: run hind login {server}"
        )]);
    assert_no_image(&env);

    env.run_with_stdin(
        &["login", "-u", "alice", "--password-stdin", &server],
        b"nope\n",
    )
    .expect_code(1)
    .expect_one_error_line(&[&server, "wrong username or password"]);
    assert!(!auth.exists(), "failed login saved credentials");

    let out = env.run_with_stdin(
        &["login", "-u", "alice", "--password-stdin", &server],
        b"pw\n",
    );
    out.expect_success();
    assert_eq!(out.stdout, "Login Succeeded\n", "{out}");
    let md = fs::metadata(&auth).expect("auth.json written");
    assert_eq!(md.permissions().mode() & 0o777, 0o600);
    let saved: serde_json::Value =
        serde_json::from_slice(&fs::read(&auth).expect("read auth.json"))
            .expect("auth.json is JSON");
    assert_eq!(saved["auths"][&server]["auth"], "YWxpY2U6cHc=", "{saved}");

    env.run(&["pull", "-q", &r]).expect_success();
    let out = env.run(&["run", "--rm", &r, "cat", "/etc/hello"]);
    out.expect_success();
    assert_eq!(out.stdout, "hello\n");

    let out = env.run(&["logout", &server]);
    out.expect_success();
    assert_eq!(
        out.stdout,
        format!("Removing login credentials for {server}\n")
    );
    assert!(!auth.exists(), "auth.json left after the last logout");
    env.run(&["pull", &r])
        .expect_code(1)
        .expect_one_error_line(&["authentication required", &server]);
    let out = env.run(&["logout", &server]);
    out.expect_success();
    assert_eq!(out.stdout, format!("Not logged in to {server}\n"));
    drop(proxy);
    drop(reg);
    env.finish();
}

#[test]
fn unknown_image_and_dead_registry_are_clear_errors() {
    let env = TestEnv::new("pull_unknown");
    let reg = Registry::start(env.scratch());
    let r = reg.reference("nope/nothing:latest");
    env.run(&["pull", &r])
        .expect_code(1)
        .expect_one_error_line(&[&r, "not found", reg.addr()]);
    // `run` of it fails the same way, with run's exit code.
    let out = env.run(&["run", "--rm", &r, "true"]);
    out.expect_code(125);
    assert!(out.stderr.contains(&format!("{r}: not found")), "{out}");
    drop(reg);

    // Nothing listens there now: an error naming the registry, at once.
    let start = std::time::Instant::now();
    let dead = "127.0.0.1:1/x:latest";
    env.run(&["pull", dead])
        .expect_code(1)
        .expect_one_error_line(&["registry 127.0.0.1:1"]);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_no_image(&env);
    env.finish();
}

#[test]
fn run_pulls_a_missing_image() {
    let env = TestEnv::new("pull_run");
    let reg = Registry::start(env.scratch());
    let d = push(&env, &reg, &layered_image(), "test/app:v1");
    let r = reg.reference("test/app:v1");

    let out = env.run(&["run", "--rm", &r, "cat", "/etc/hello"]);
    out.expect_success();
    assert_eq!(out.stdout, "hello\n", "{out}");
    assert!(
        out.stderr
            .contains(&format!("Unable to find image '{r}' locally")),
        "{out}"
    );
    assert!(
        out.stderr.contains(&format!("Digest: {}", d.manifest)),
        "{out}"
    );
    assert!(
        out.stderr.contains("Status: Downloaded newer image"),
        "{out}"
    );
    let out = env.run(&["images", "-q"]);
    out.expect_success();
    assert_eq!(out.stdout.trim(), &d.config[7..19]);

    // Present now: the second run does not pull.
    let out = env.run(&["run", "--rm", &r, "true"]);
    out.expect_success();
    assert_eq!(out.stderr, "", "{out}");
    drop(reg);
    env.finish();
}

#[test]
fn progress_bars_on_a_terminal() {
    let env = TestEnv::new("pull_tty");
    let reg = Registry::start(env.scratch());
    let d = push(&env, &reg, &layered_image(), "test/app:v1");
    let r = reg.reference("test/app:v1");
    let mut p = env.spawn_pty(&["pull", &r], 24, 120);
    assert!(
        p.wait_for(&r, Duration::from_secs(60)),
        "{}",
        p.output_so_far()
    );
    let (code, text, _) = p.wait();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("v1: Pulling from test/app"), "{text}");
    for l in &d.layers {
        let short = &l[7..19];
        assert!(
            text.contains(&format!("{short}: Pull complete")),
            "{short}:\n{text}"
        );
    }
    // Again: everything is there.
    let mut p = env.spawn_pty(&["pull", &r], 24, 120);
    assert!(p.wait_for("up to date", Duration::from_secs(60)));
    let (code, text, _) = p.wait();
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("{}: Already exists", &d.layers[0][7..19])),
        "{text}"
    );
    drop(reg);
    env.finish();
}

#[test]
fn refuses_unknown_layer_media_types() {
    let env = TestEnv::new("pull_mediatype");
    let reg = Registry::start(env.scratch());
    let img = ImageBuilder::new().layer(
        Layer::new(&[Entry::file("a", "a")]).with_media_type("application/vnd.example.strange.v1"),
    );
    let d = push(&env, &reg, &img, "test/odd:v1");
    let r = reg.reference("test/odd:v1");
    env.run(&["pull", &r])
        .expect_code(1)
        .expect_one_error_line(&[&r, &d.layers[0], "application/vnd.example.strange.v1"]);
    assert_no_image(&env);
    drop(reg);
    env.finish();
}

/// A TCP proxy that forwards faithfully until one response has carried
/// `budget` bytes, then stops sending (the connection stays open): a
/// download stuck halfway.
struct StallProxy {
    addr: String,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl StallProxy {
    fn start(upstream: &str, budget: usize) -> StallProxy {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind stall proxy");
        let addr = l.local_addr().expect("stall proxy address").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let (s, up) = (stop.clone(), upstream.to_string());
        let accept = std::thread::spawn(move || {
            for c in l.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = c else { continue };
                let Ok(server) = TcpStream::connect(&up) else {
                    continue;
                };
                let (mut c_in, mut s_out) = (
                    client.try_clone().expect("dup"),
                    server.try_clone().expect("dup"),
                );
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_in, &mut s_out);
                    let _ = s_out.shutdown(Shutdown::Write);
                });
                let s = s.clone();
                std::thread::spawn(move || {
                    let (mut from, mut to) = (server, client);
                    let mut buf = vec![0u8; 16 * 1024];
                    let mut sent = 0;
                    loop {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let n = n.min(budget.saturating_sub(sent));
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        sent += n;
                    }
                    if sent >= budget {
                        while !s.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                    let _ = to.shutdown(Shutdown::Both);
                });
            }
        });
        StallProxy {
            addr,
            stop,
            accept: Some(accept),
        }
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

#[test]
fn killed_pull_leaves_no_image_and_the_next_one_works() {
    let env = TestEnv::new("pull_killed");
    let reg = Registry::start(env.scratch());
    // 8 MiB that does not compress, as one plain layer on top of busybox.
    let mut noise = Vec::with_capacity(8 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while noise.len() < 8 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    let img = ImageBuilder::new()
        .layer(Layer::busybox().gzip())
        .layer(Layer::new(&[Entry::file("noise", &noise)]));
    let d = push(&env, &reg, &img, "test/big:v1");
    let proxy = StallProxy::start(reg.addr(), 3 << 20);
    let r = format!("{}/test/big:v1", proxy.addr);

    let pull = env.spawn(&["pull", &r]);
    let tmp = store(&env).join("tmp");
    let partial = poll(Duration::from_secs(30), || {
        fs::read_dir(&tmp).ok()?.flatten().find(|e| {
            e.file_name().to_string_lossy().starts_with("blob-")
                && e.metadata().map(|m| m.len() > 1 << 20).unwrap_or(false)
        })
    });
    assert!(
        partial.is_some(),
        "no partial download in {}",
        tmp.display()
    );
    pull.signal(Signal::SIGKILL);
    let out = pull.wait();
    assert_eq!(out.code, 128 + 9, "{out}");

    let s = store(&env);
    assert_eq!(entries(&s.join("db")), Vec::<String>::new());
    let refs = fs::read_to_string(s.join("refs.json")).unwrap_or_default();
    assert!(!refs.contains("test/big"), "{refs}");
    env.run(&["images", "-q"]).expect_success();
    let noise_chain = sha256_digest(format!("{} {}", d.diff_ids[0], d.diff_ids[1]).as_bytes());
    assert!(
        !s.join("layers").join(&noise_chain[7..]).exists(),
        "the stalled layer was renamed into place"
    );
    drop(proxy);

    // Straight from the registry this time.
    let r = reg.reference("test/big:v1");
    env.run(&["pull", "-q", &r]).expect_success();
    // The next writer swept what the killed pull left in tmp/.
    assert_eq!(entries(&tmp), Vec::<String>::new());
    let out = env.run(&["run", "--rm", &r, "sh", "-c", "wc -c < /noise"]);
    out.expect_success();
    assert_eq!(out.stdout.trim(), (8 << 20).to_string(), "{out}");
    env.run(&["image", "prune"]).expect_success();
    assert_eq!(entries(&tmp), Vec::<String>::new());
    let ids: BTreeSet<String> = env
        .run(&["images", "-q"])
        .stdout
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(ids.len(), 1);
    drop(reg);
    env.finish();
}

/// `skopeo copy --format v2s2` of `layout`'s tag `t` (all platforms) to
/// `dest`: Docker's v2 schema 2 manifests and manifest lists, with Docker's
/// layer media types (digests of manifests change, blobs stay).
#[track_caller]
fn push_docker_format(layout: &Path, dest: &str) {
    let mut c = std::process::Command::new("skopeo");
    c.args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--all",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
    ])
    .arg(format!("oci:{}:t", layout.display()))
    .arg(format!("docker://{dest}"));
    let out = hind_tests::process::run(c, b"", Duration::from_secs(60));
    assert_eq!(out.code, 0, "skopeo copy --format v2s2:\n{out}");
}

#[test]
fn docker_schema2_manifest_and_list() {
    let env = TestEnv::new("pull_docker_types");
    let reg = Registry::start(env.scratch());
    let img = ImageBuilder::new()
        .layer(Layer::busybox().gzip())
        .layer(Layer::new(&[Entry::file("etc/hello", "hello\n")]).gzip());
    let layout = env.scratch().join("single");
    img.write_layout(&layout, "t");
    push_docker_format(&layout, &reg.reference("docker/single:v1"));
    let m = reg.manifest("docker/single", "v1");
    assert_eq!(
        m.header("Content-Type"),
        Some("application/vnd.docker.distribution.manifest.v2+json")
    );
    let digest = m
        .header("Docker-Content-Digest")
        .expect("digest")
        .to_string();
    let r = reg.reference("docker/single:v1");
    let out = env.run(&["pull", &r]);
    out.expect_success();
    assert!(out.stdout.contains(&format!("Digest: {digest}\n")), "{out}");
    let i = inspect(&env, &r);
    assert_eq!(
        i["Layers"][1]["MediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    let out = env.run(&["run", "--rm", &r, "cat", "/etc/hello"]);
    out.expect_success();
    assert_eq!(out.stdout, "hello\n");

    let layout = env.scratch().join("list");
    IndexBuilder::amd64_arm64(|_| ImageBuilder::new().layer(Layer::busybox().gzip()))
        .write_layout(&layout, "t");
    push_docker_format(&layout, &reg.reference("docker/list:v1"));
    let m = reg.manifest("docker/list", "v1");
    assert_eq!(
        m.header("Content-Type"),
        Some("application/vnd.docker.distribution.manifest.list.v2+json")
    );
    let r = reg.reference("docker/list:v1");
    env.run(&["pull", "-q", &r]).expect_success();
    let out = env.run(&["run", "--rm", &r, "cat", "/platform"]);
    out.expect_success();
    assert_eq!(out.stdout, format!("{}\n", host_arch()));
    drop(reg);
    env.finish();
}

/// An HTTP front that answers every blob GET with a 307 to the registry
/// itself and forwards everything else: what registries that keep blobs
/// in an object store do. Counts the redirects.
struct RedirectProxy {
    addr: String,
    redirects: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl RedirectProxy {
    fn start(upstream: &str) -> RedirectProxy {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind redirect proxy");
        let addr = l.local_addr().expect("redirect proxy address").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let redirects = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s, n, up) = (stop.clone(), redirects.clone(), upstream.to_string());
        let accept = std::thread::spawn(move || {
            for c in l.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = c else { continue };
                let (n, up) = (n.clone(), up.clone());
                std::thread::spawn(move || {
                    let _ = redirect_one(client, &up, &n);
                });
            }
        });
        RedirectProxy {
            addr,
            redirects,
            stop,
            accept: Some(accept),
        }
    }
}

/// Serves one request: a 307 for blobs, else the registry's answer, with
/// the connection closed after it.
fn redirect_one(
    mut client: TcpStream,
    upstream: &str,
    redirects: &std::sync::atomic::AtomicUsize,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut b)? == 0 {
            return Ok(());
        }
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
    if path.contains("/blobs/") {
        redirects.fetch_add(1, Ordering::SeqCst);
        write!(
            client,
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{upstream}{path}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
        return Ok(());
    }
    let mut req = String::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            req.push_str(line);
            req.push_str("\r\n");
        }
    }
    req.push_str("Connection: close\r\n\r\n");
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(req.as_bytes())?;
    std::io::copy(&mut up, &mut client)?;
    client.shutdown(Shutdown::Both)
}

impl Drop for RedirectProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

#[test]
fn blob_redirects_are_followed() {
    let env = TestEnv::new("pull_redirect");
    let reg = Registry::start(env.scratch());
    let d = push(&env, &reg, &layered_image(), "test/app:v1");
    let proxy = RedirectProxy::start(reg.addr());
    let r = format!("{}/test/app:v1", proxy.addr);
    env.run(&["pull", "-q", &r]).expect_success();
    // The config and every layer came by way of a redirect.
    assert_eq!(proxy.redirects.load(Ordering::SeqCst), 1 + d.layers.len());
    let out = env.run(&["run", "--rm", &r, "cat", "/var/cache/new"]);
    out.expect_success();
    assert_eq!(out.stdout, "new\n");
    drop(proxy);
    drop(reg);
    env.finish();
}
