//! The image-store test harness itself: images built by `oci.rs` survive a
//! `skopeo` push to a loopback `docker-registry` with their digests intact,
//! indexes keep both platforms, the auth proxy runs the Bearer and Basic
//! dances and streams blobs to parallel clients, and the archives are
//! readable by another tool (skopeo).

use std::io::Read;
use std::process::Command;
use std::time::Duration;

use hind_tests::oci::{
    docker_archive, oci_archive, sha256_digest, Compression, Entry, ImageBuilder, IndexBuilder,
    Kind, Layer, MEDIA_LAYER_GZIP, MEDIA_LAYER_ZSTD, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
};
use hind_tests::process::run;
use hind_tests::registry::{
    base64, http_request, AuthMode, AuthProxy, Registry, ACCEPT_MANIFESTS, SERVICE,
};
use hind_tests::TestEnv;

/// Two layers: gzip base, zstd top with a whiteout and an opaque dir.
fn two_layer_image() -> ImageBuilder {
    let base = Layer::new(&[
        Entry::dir("etc"),
        Entry::file("etc/hello", "hello\n"),
        Entry::file("etc/gone", "bye\n"),
        Entry::dir("var/cache"),
        Entry::file("var/cache/old", "old\n"),
    ])
    .gzip();
    let top = Layer::new(&[
        Entry::whiteout("etc/gone"),
        Entry::dir("var/cache"),
        Entry::opaque("var/cache"),
        Entry::file("var/cache/new", "new\n")
            .mode(0o600)
            .owner(1000, 1000),
    ])
    .zstd();
    ImageBuilder::new()
        .layer(base)
        .layer(top)
        .entrypoint(&["/bin/sh", "-c"])
        .cmd(&["echo hi"])
        .env("PATH=/bin")
        .env("A=1")
        .working_dir("/work")
        .user("1000:1000")
        .stop_signal("SIGINT")
        .expose("8080/tcp")
}

#[test]
fn pushed_image_keeps_builder_digests() {
    let env = TestEnv::new("reg_image");
    let reg = Registry::start(env.scratch());
    let layout = env.scratch().join("layout");
    let img = two_layer_image();
    let d = img.write_layout(&layout, "v1");
    reg.push_layout(&layout, "v1", "test/app:v1");

    let r = reg.manifest("test/app", "v1");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("Docker-Content-Digest"), Some(d.manifest.as_str()));
    assert_eq!(r.header("Content-Type"), Some(MEDIA_OCI_MANIFEST));
    assert_eq!(sha256_digest(&r.body), d.manifest);
    let m = r.json();
    assert_eq!(m["config"]["digest"], d.config.as_str());
    assert_eq!(m["layers"][0]["mediaType"], MEDIA_LAYER_GZIP);
    assert_eq!(m["layers"][1]["mediaType"], MEDIA_LAYER_ZSTD);

    let c = reg.request("GET", &format!("/v2/test/app/blobs/{}", d.config), &[]);
    assert_eq!(c.status, 200);
    assert_eq!(sha256_digest(&c.body), d.config);
    let c = c.json();
    assert_eq!(c["rootfs"]["diff_ids"], serde_json::json!(d.diff_ids));
    assert_eq!(
        c["config"]["Entrypoint"],
        serde_json::json!(["/bin/sh", "-c"])
    );
    assert_eq!(c["config"]["Env"], serde_json::json!(["PATH=/bin", "A=1"]));
    assert_eq!(
        c["config"]["ExposedPorts"]["8080/tcp"],
        serde_json::json!({})
    );
    assert_eq!(c["config"]["StopSignal"], "SIGINT");

    // The zstd blob comes back byte for byte and unpacks to the tar whose
    // digest is the diff id, whiteout and opaque marker included.
    let z = reg.request("GET", &format!("/v2/test/app/blobs/{}", d.layers[1]), &[]);
    assert_eq!(sha256_digest(&z.body), d.layers[1]);
    let tar = zstd::decode_all(&z.body[..]).expect("unzstd");
    assert_eq!(sha256_digest(&tar), d.diff_ids[1]);
    let names: Vec<String> = tar::Archive::new(&tar[..])
        .entries()
        .expect("entries")
        .map(|e| String::from_utf8_lossy(&e.expect("entry").path_bytes()).into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "etc/.wh.gone",
            "var/cache",
            "var/cache/.wh..wh..opq",
            "var/cache/new"
        ]
    );

    // Same bytes when built again: the builder is deterministic.
    let again = two_layer_image().write_layout(&env.scratch().join("again"), "v1");
    assert_eq!(again, d);

    drop(reg);
    env.finish();
}

#[test]
fn pushed_index_keeps_both_platforms() {
    let env = TestEnv::new("reg_index");
    let reg = Registry::start(env.scratch());
    let layout = env.scratch().join("layout");
    let idx = IndexBuilder::amd64_arm64(|arch| {
        ImageBuilder::new()
            .layer(Layer::new(&[Entry::file("etc/base", "base\n")]).gzip())
            .cmd(&["cat", "/platform"])
            .label("arch", arch)
    });
    let d = idx.write_layout(&layout, "multi");
    assert_eq!(d.images.len(), 2);
    reg.push_layout(&layout, "multi", "test/multi:latest");

    let r = reg.manifest("test/multi", "latest");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("Docker-Content-Digest"), Some(d.index.as_str()));
    assert_eq!(r.header("Content-Type"), Some(MEDIA_OCI_INDEX));
    let platforms: Vec<String> = r.json()["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            m["platform"]["architecture"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"]);

    for arch in ["amd64", "arm64"] {
        let img = d.image(arch);
        let m = reg.manifest("test/multi", &img.manifest);
        assert_eq!(m.status, 200, "{arch}: {}", m.text());
        assert_eq!(sha256_digest(&m.body), img.manifest);
        let top = img.layers.last().expect("top layer");
        let blob = reg.request("GET", &format!("/v2/test/multi/blobs/{top}"), &[]);
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&blob.body[..])
            .read_to_end(&mut tar)
            .expect("gunzip");
        let mut a = tar::Archive::new(&tar[..]);
        let mut e = a
            .entries()
            .expect("entries")
            .next()
            .expect("one")
            .expect("entry");
        assert_eq!(&*e.path_bytes(), b"platform");
        let mut s = String::new();
        e.read_to_string(&mut s).expect("read /platform");
        assert_eq!(s, format!("{arch}\n"));
    }
    drop(reg);
    env.finish();
}

#[test]
fn hostile_layer_is_pushed_unchanged() {
    let env = TestEnv::new("reg_hostile");
    let reg = Registry::start(env.scratch());
    let layout = env.scratch().join("layout");
    let evil = Layer::new(&[
        Entry::raw("../escape", Kind::File(b"x".to_vec())),
        Entry::raw("/abs", Kind::File(b"y".to_vec())),
        Entry::raw("a/../../b", Kind::Symlink(b"/etc/shadow".to_vec())),
        Entry::char_device("dev/mem", 1, 1),
    ]);
    let d = ImageBuilder::new()
        .layer(evil.clone())
        .write_layout(&layout, "evil");
    reg.push_layout(&layout, "evil", "test/evil:latest");
    let b = reg.request("GET", &format!("/v2/test/evil/blobs/{}", d.layers[0]), &[]);
    assert_eq!(b.body, evil.tar());
    let names: Vec<Vec<u8>> = tar::Archive::new(&b.body[..])
        .entries()
        .expect("entries")
        .map(|e| e.expect("entry").path_bytes().to_vec())
        .collect();
    assert_eq!(
        names,
        [&b"../escape"[..], b"/abs", b"a/../../b", b"dev/mem"]
    );
    drop(reg);
    env.finish();
}

#[test]
fn bearer_proxy_runs_token_flow() {
    let env = TestEnv::new("reg_bearer");
    let reg = Registry::start(env.scratch());
    let layout = env.scratch().join("layout");
    let d = ImageBuilder::new()
        .layer(Layer::busybox().gzip())
        .write_layout(&layout, "latest");
    reg.push_layout(&layout, "latest", "lib/bb:latest");
    let proxy = AuthProxy::start(reg.addr(), AuthMode::bearer("s3cret"));
    let p = proxy.addr();
    let accept = ("Accept", ACCEPT_MANIFESTS);

    let r = http_request(p, "GET", "/v2/lib/bb/manifests/latest", &[accept]).expect("GET");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some(
            format!(
                "Bearer realm=\"http://{p}/token\",service=\"{SERVICE}\",scope=\"repository:lib/bb:pull\""
            )
            .as_str()
        )
    );
    let r = http_request(p, "GET", "/v2/", &[]).expect("GET /v2/");
    assert_eq!(r.status, 401);
    assert!(!r
        .header("WWW-Authenticate")
        .unwrap_or("")
        .contains("scope="));

    let t = http_request(
        p,
        "GET",
        "/token?scope=repository%3Alib%2Fbb%3Apull&service=hind-test",
        &[],
    )
    .expect("GET /token");
    assert_eq!(t.status, 200);
    assert_eq!(t.json()["token"], "s3cret");
    assert_eq!(t.json()["access_token"], "s3cret");

    let auth = ("Authorization", "Bearer s3cret");
    let wrong = ("Authorization", "Bearer nope");
    let r = http_request(p, "GET", "/v2/lib/bb/manifests/latest", &[accept, wrong]).expect("GET");
    assert_eq!(r.status, 401);
    let r = http_request(p, "HEAD", "/v2/lib/bb/manifests/latest", &[accept, auth]).expect("HEAD");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Docker-Content-Digest"), Some(d.manifest.as_str()));
    assert!(r.body.is_empty());
    let r = http_request(p, "GET", "/v2/lib/bb/manifests/latest", &[accept, auth]).expect("GET");
    assert_eq!(r.status, 200);
    assert_eq!(sha256_digest(&r.body), d.manifest);
    let r = http_request(p, "GET", "/v2/lib/bb/manifests/nope", &[accept, auth]).expect("GET");
    assert_eq!(r.status, 404, "registry's own 404 passes through");

    // The busybox layer (about a megabyte) to eight clients at once.
    let layer = d.layers[0].clone();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (p, layer) = (p.to_string(), layer.clone());
            std::thread::spawn(move || {
                let path = format!("/v2/lib/bb/blobs/{layer}");
                let r = http_request(&p, "GET", &path, &[("Authorization", "Bearer s3cret")])
                    .expect("GET blob");
                assert_eq!(r.status, 200);
                assert_eq!(sha256_digest(&r.body), layer);
                r.body.len()
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().expect("blob thread") > 100_000);
    }

    assert_eq!(proxy.unauthorized(), 3);
    let tokens = proxy.token_requests();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].query("service"), [SERVICE]);
    assert_eq!(tokens[0].query("scope"), ["repository:lib/bb:pull"]);
    assert_eq!(proxy.forwarded(), 3 + 8);

    drop(proxy);
    drop(reg);
    env.finish();
}

#[test]
fn basic_proxy_checks_credentials() {
    let env = TestEnv::new("reg_basic");
    let reg = Registry::start(env.scratch());
    let layout = env.scratch().join("layout");
    let d = two_layer_image().write_layout(&layout, "v1");
    reg.push_layout(&layout, "v1", "priv/app:v1");
    let proxy = AuthProxy::start(reg.addr(), AuthMode::basic("alice", "pw"));
    let p = proxy.addr();
    let accept = ("Accept", ACCEPT_MANIFESTS);
    let path = "/v2/priv/app/manifests/v1";

    let r = http_request(p, "GET", path, &[accept]).expect("GET");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some("Basic realm=\"hind-test\"")
    );
    let bad = format!("Basic {}", base64(b"alice:nope"));
    let r = http_request(p, "GET", path, &[accept, ("Authorization", &bad)]).expect("GET");
    assert_eq!(r.status, 401);
    let good = format!("Basic {}", base64(b"alice:pw"));
    let r = http_request(p, "GET", path, &[accept, ("Authorization", &good)]).expect("GET");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Docker-Content-Digest"), Some(d.manifest.as_str()));
    assert_eq!(proxy.unauthorized(), 2);
    assert_eq!(proxy.forwarded(), 1);
    drop(proxy);
    drop(reg);
    env.finish();
}

/// skopeo reads the archives: the OCI archive (plain and gzip'd) gives back
/// the builder's manifest, the docker archive the builder's config.
#[test]
fn archives_are_readable_by_skopeo() {
    let env = TestEnv::new("reg_archives");
    let s = env.scratch();
    let img = two_layer_image();
    let d = img.write_layout(&s.join("layout"), "v1");
    let skopeo = |args: &[&str]| {
        let mut c = Command::new("skopeo");
        c.arg("--insecure-policy").args(args);
        let out = run(c, b"", Duration::from_secs(30));
        assert_eq!(out.code, 0, "skopeo {args:?}:\n{out}");
        out.stdout
    };
    for (name, c) in [
        ("img.tar", Compression::None),
        ("img.tar.gz", Compression::Gzip),
    ] {
        let path = s.join(name);
        oci_archive(&s.join("layout"), &path, c);
        let raw = skopeo(&[
            "inspect",
            "--raw",
            &format!("oci-archive:{}:v1", path.display()),
        ]);
        assert_eq!(sha256_digest(raw.as_bytes()), d.manifest, "{name}");
    }

    let tar = s.join("docker.tar");
    let dd = docker_archive(&tar, &[(&img, &["example/app:v1"])]);
    assert_eq!(dd[0].config, d.config);
    let config = skopeo(&[
        "inspect",
        "--config",
        "--raw",
        &format!("docker-archive:{}", tar.display()),
    ]);
    assert_eq!(sha256_digest(config.as_bytes()), d.config);
    env.finish();
}
