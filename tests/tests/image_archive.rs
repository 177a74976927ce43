//! Images in and out of tar files: `load` of OCI archives (plain and gzip,
//! whiteouts and opaque dirs honoured) and of `docker save` tarballs,
//! corrupt and hostile archives refused without a trace in the store or
//! outside it, `save` then `load` into another root keeping the image id,
//! `import` of a root fs tar, `commit` of a container's changes (twice, on
//! top of each other) and `export` of a container's merged root, with
//! nothing left mounted.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use hind_tests::image::make_tar;
use hind_tests::oci::{
    docker_archive, oci_archive, Compression, Entry, ImageBuilder, Kind, Layer, Layout, REF_NAME,
};
use hind_tests::{bb, busybox_image, TestEnv, HOLD};

/// Names in a directory, sorted (empty if it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    hind_tests::dir_entries(dir)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// busybox, then a layer with files to delete and a dir to make opaque,
/// then a layer that deletes, hides and overwrites them.
fn layered_image(c: Compression) -> ImageBuilder {
    let base = Layer::new(&[
        Entry::dir("etc"),
        Entry::file("etc/keep", "keep 1\n"),
        Entry::file("etc/gone", "gone\n"),
        Entry::dir("data"),
        Entry::dir("data/old"),
        Entry::file("data/old/a", "a\n"),
        Entry::file("data/old/b", "b\n"),
    ])
    .compress(c);
    let top = Layer::new(&[
        Entry::file("etc/keep", "keep 2\n"),
        Entry::whiteout("etc/gone"),
        Entry::dir("data/old"),
        Entry::opaque("data/old"),
        Entry::file("data/old/new", "new\n"),
    ])
    .compress(c);
    ImageBuilder::new()
        .layer(Layer::busybox().compress(c))
        .layer(base)
        .layer(top)
        .cmd(&["sh"])
}

/// What the layered image shows: the top layer's file, a deleted file
/// gone, and only the top layer's content of the opaque dir.
const LAYERED_CHECK: &str =
    "cat /etc/keep; test -e /etc/gone && echo gone-present; ls /data/old | tr '\\n' ' '; echo";
const LAYERED_SEES: &str = "keep 2\nnew \n";

/// Loads the archive at `path`; returns stdout.
#[track_caller]
fn load(env: &TestEnv, path: &Path) -> String {
    let out = env.run(&["load", "-i", path_str(path)]);
    out.expect_success();
    out.stdout
}

/// The full id of image `img`.
#[track_caller]
fn image_id(env: &TestEnv, img: &str) -> String {
    let out = env.run(&["image", "inspect", "-f", "{{.Id}}", img]);
    out.expect_success();
    out.stdout.trim().to_string()
}

fn load_oci(c: Compression, name: &str) {
    let env = TestEnv::new(name);
    let layout = env.scratch().join("layout");
    let d = Layout::create(&layout).add_image(&layered_image(c), &[(REF_NAME, "test/layered:1")]);
    let archive = env.scratch().join("image.tar");
    oci_archive(&layout, &archive, c);
    assert_eq!(load(&env, &archive), "Loaded image: test/layered:1\n");
    assert_eq!(image_id(&env, "test/layered:1"), d.config);
    let out = env.run(&["run", "--rm", "test/layered:1", "sh", "-c", LAYERED_CHECK]);
    out.expect_success();
    assert_eq!(out.stdout, LAYERED_SEES, "{out}");
    assert_eq!(
        entries(&env.root().join("images/tmp")),
        Vec::<String>::new(),
        "load left scratch files"
    );
    env.finish();
}

#[test]
fn load_oci_archive() {
    load_oci(Compression::None, "load_oci");
}

#[test]
fn load_oci_archive_gzip() {
    load_oci(Compression::Gzip, "load_oci_gz");
}

#[test]
fn load_oci_bare_tag_and_zstd_archive() {
    let env = TestEnv::new("load_oci_bare");
    let layout = env.scratch().join("layout");
    let d =
        Layout::create(&layout).add_image(&layered_image(Compression::Zstd), &[(REF_NAME, "1.0")]);
    let archive = env.scratch().join("image.tar.zst");
    oci_archive(&layout, &archive, Compression::Zstd);
    // A bare tag names no repository: the image is loaded untagged.
    let out = env.run(&["load", "-i", path_str(&archive)]);
    out.expect_success();
    assert_eq!(
        out.stdout,
        format!("Loaded image ID: {}\n", d.config),
        "{out}"
    );
    assert!(out.stderr.contains("\"1.0\""), "{out}");
    let out = env.run(&["run", "--rm", &d.config, "sh", "-c", LAYERED_CHECK]);
    out.expect_success();
    assert_eq!(out.stdout, LAYERED_SEES, "{out}");
    env.finish();
}

#[test]
fn load_docker_save_tarball() {
    let env = TestEnv::new("load_docker");
    let img = layered_image(Compression::None);
    let archive = env.scratch().join("docker.tar");
    let d = docker_archive(&archive, &[(&img, &["dock:1", "dock:latest"])]);
    let out = load(&env, &archive);
    assert_eq!(out, "Loaded image: dock:1\nLoaded image: dock:latest\n");
    assert_eq!(image_id(&env, "dock"), d[0].config);
    let out = env.run(&["run", "--rm", "dock:1", "sh", "-c", LAYERED_CHECK]);
    out.expect_success();
    assert_eq!(out.stdout, LAYERED_SEES, "{out}");
    // Loading it again finds every layer present and changes nothing.
    load(&env, &archive);
    assert_eq!(entries(&env.root().join("images/layers")).len(), 3);
    env.finish();
}

#[test]
fn load_from_stdin() {
    let env = TestEnv::new("load_stdin");
    let layout = env.scratch().join("layout");
    Layout::create(&layout).add_image(&layered_image(Compression::Gzip), &[(REF_NAME, "piped:1")]);
    let archive = env.scratch().join("image.tar.gz");
    oci_archive(&layout, &archive, Compression::Gzip);
    let bytes = fs::read(&archive).expect("read archive");
    let out = env.run_with_stdin(&["load"], &bytes);
    out.expect_success();
    assert_eq!(out.stdout, "Loaded image: piped:1\n");
    env.finish();
}

/// The store holds no image, layer, blob or scratch file.
#[track_caller]
fn assert_store_empty(env: &TestEnv) {
    let images = env.root().join("images");
    let out = env.run(&["images", "-q"]);
    out.expect_success();
    assert_eq!(out.stdout, "", "an image was left: {out}");
    assert_eq!(entries(&images.join("db")), Vec::<String>::new(), "records");
    assert_eq!(
        entries(&images.join("layers")),
        Vec::<String>::new(),
        "layers"
    );
    assert_eq!(
        entries(&images.join("blobs/sha256")),
        Vec::<String>::new(),
        "blobs"
    );
    assert_eq!(entries(&images.join("tmp")), Vec::<String>::new(), "tmp");
}

#[test]
fn load_corrupt_layer_fails_and_leaves_nothing() {
    let env = TestEnv::new("load_corrupt");
    let layout_dir = env.scratch().join("layout");
    let mut layout = Layout::create(&layout_dir);
    let d = layout.add_image(
        &layered_image(Compression::Gzip),
        &[(REF_NAME, "bad/img:1")],
    );
    // The second layer's blob replaced by another valid layer: it unpacks
    // fine but hashes to something else than the manifest says.
    let other = Layer::new(&[Entry::file("etc/evil", "evil\n")]).gzip();
    fs::write(layout.blob_path(&d.layers[1]), other.blob()).expect("corrupt blob");
    let archive = env.scratch().join("bad.tar");
    oci_archive(&layout_dir, &archive, Compression::None);
    let out = env.run(&["load", "-i", path_str(&archive)]);
    out.expect_one_error_line(&[&d.layers[1], path_str(&archive)]);
    assert_ne!(out.code, 0, "{out}");
    assert_store_empty(&env);
    env.finish();
}

#[test]
fn load_of_garbage_fails_naming_the_archive() {
    let env = TestEnv::new("load_garbage");
    let archive = env.scratch().join("garbage.tar");
    fs::write(&archive, vec![b'x'; 4096]).expect("write garbage");
    let out = env.run(&["load", "-i", path_str(&archive)]);
    assert_ne!(out.code, 0, "{out}");
    out.expect_one_error_line(&[path_str(&archive)]);
    // A tar without an image in it.
    let empty = env.scratch().join("empty.tar");
    fs::write(
        &empty,
        hind_tests::oci::tar_of(&[Entry::file("hello", "x")]),
    )
    .expect("write");
    let out = env.run(&["load", "-i", path_str(&empty)]);
    assert_ne!(out.code, 0, "{out}");
    out.expect_one_error_line(&[path_str(&empty), "index.json"]);
    assert_store_empty(&env);
    env.finish();
}

#[test]
fn save_then_load_into_another_root() {
    let env = TestEnv::new("save_load");
    let layout = env.scratch().join("layout");
    let d = Layout::create(&layout).add_image(
        &layered_image(Compression::Gzip),
        &[(REF_NAME, "saved/img:2")],
    );
    let archive = env.scratch().join("in.tar");
    oci_archive(&layout, &archive, Compression::None);
    load(&env, &archive);
    let saved = env.scratch().join("saved.tar");
    env.run(&["save", "-o", path_str(&saved), "saved/img:2"])
        .expect_success();

    // The archive: an OCI layout plus docker's manifest.json, and the
    // blobs exactly as stored (so every digest is unchanged).
    let mut names = BTreeMap::new();
    let mut a = tar::Archive::new(fs::File::open(&saved).expect("open saved archive"));
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read entry");
        names.insert(name, data);
    }
    for n in ["oci-layout", "index.json", "manifest.json"] {
        assert!(names.contains_key(n), "{n} missing: {:?}", names.keys());
    }
    for blob in d.layers.iter().chain([&d.config, &d.manifest]) {
        let n = format!("blobs/sha256/{}", blob.trim_start_matches("sha256:"));
        let data = names.get(&n).unwrap_or_else(|| panic!("{n} missing"));
        assert_eq!(&hind_tests::oci::sha256_digest(data), blob);
    }
    let index: serde_json::Value =
        serde_json::from_slice(&names["index.json"]).expect("index.json");
    assert_eq!(
        index["manifests"][0]["annotations"]["io.containerd.image.name"],
        "docker.io/saved/img:2"
    );
    let docker: serde_json::Value =
        serde_json::from_slice(&names["manifest.json"]).expect("manifest.json");
    assert_eq!(docker[0]["RepoTags"], serde_json::json!(["saved/img:2"]));

    // To stdout: the same bytes (the archive is deterministic).
    let piped = env.scratch().join("piped.tar");
    let mut c = env.hind();
    c.args(["save", "saved/img:2"])
        .stdout(fs::File::create(&piped).expect("create piped.tar"));
    assert!(c.status().expect("run hind save").success());
    assert!(
        fs::read(&piped).expect("read piped.tar") == fs::read(&saved).expect("read saved.tar"),
        "save to stdout and to -o differ"
    );

    let env2 = TestEnv::new("save_load2");
    let out = env2.run(&["load", "-i", path_str(&saved)]);
    out.expect_success();
    assert_eq!(out.stdout, "Loaded image: saved/img:2\n");
    assert_eq!(image_id(&env2, "saved/img:2"), d.config);
    let out = env2.run(&["run", "--rm", "saved/img:2", "sh", "-c", LAYERED_CHECK]);
    out.expect_success();
    assert_eq!(out.stdout, LAYERED_SEES, "{out}");
    env2.finish();
    env.finish();
}

#[test]
fn save_of_an_unknown_image_fails() {
    let env = TestEnv::new("save_errors");
    let out = env.run(&[
        "save",
        "-o",
        path_str(&env.scratch().join("x.tar")),
        "nothing:here",
    ]);
    assert_ne!(out.code, 0, "{out}");
    out.expect_one_error_line(&["nothing:here"]);
    assert_eq!(
        entries(env.scratch()),
        Vec::<String>::new(),
        "save left a file"
    );
    env.finish();
}

#[test]
fn import_root_fs_tar() {
    let env = TestEnv::new("import");
    let tar = env.scratch().join("rootfs.tar");
    make_tar(busybox_image(), &tar);
    let out = env.run(&["import", "-m", "from a tar", path_str(&tar), "imported:1"]);
    out.expect_success();
    let id = out.stdout.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out}");
    assert_eq!(image_id(&env, "imported:1"), id);
    let out = env.run(&["run", "--rm", "imported:1", "echo", "hi"]);
    out.expect_success();
    assert_eq!(out.stdout, "hi\n");
    let out = env.run(&[
        "image",
        "inspect",
        "-f",
        "{{.Os}}/{{.Architecture}}",
        "imported:1",
    ]);
    out.expect_success();
    assert_eq!(
        out.stdout.trim(),
        format!("linux/{}", hind_tests::oci::host_arch())
    );

    // gzip'd, from stdin, untagged.
    let gz = Compression::Gzip.apply(&fs::read(&tar).expect("read tar"));
    let out = env.run_with_stdin(&["import", "-"], &gz);
    out.expect_success();
    let id2 = out.stdout.trim().to_string();
    let out = env.run(&["run", "--rm", &id2, "cat", "/etc/group"]);
    out.expect_success();
    assert!(out.stdout.starts_with("root:x:0:"), "{out}");
    env.finish();
}

/// Loads the layered image as `base:1` (docker archive, quick).
fn load_base(env: &TestEnv) {
    let archive = env.scratch().join("base.tar");
    docker_archive(
        &archive,
        &[(&layered_image(Compression::None), &["base:1"])],
    );
    load(env, &archive);
}

#[test]
fn commit_makes_layers_with_whiteouts() {
    let env = TestEnv::new("commit");
    load_base(&env);
    env.run(&[
        "run",
        "--name",
        "c1",
        "base:1",
        "sh",
        "-c",
        "echo new > /new && rm /etc/keep && mkdir -p /d && echo f > /d/f && rm -r /data && mkdir /data && echo fresh > /data/x",
    ])
    .expect_success();
    let out = env.run(&["commit", "-m", "first", "-a", "tester", "c1", "com:1"]);
    out.expect_success();
    let id1 = out.stdout.trim().to_string();
    assert!(id1.starts_with("sha256:"), "{out}");
    let check = "cat /new /d/f; ls /data | tr '\\n' ' '; echo; test -e /etc/keep || echo keep-deleted; test -e /etc/gone || echo gone-deleted";
    let out = env.run(&["run", "--rm", "com:1", "sh", "-c", check]);
    out.expect_success();
    assert_eq!(
        out.stdout, "new\nf\nx \nkeep-deleted\ngone-deleted\n",
        "{out}"
    );
    let out = env.run(&["image", "inspect", "com:1"]);
    out.expect_success();
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("inspect json");
    assert_eq!(doc[0]["RootFS"]["Layers"].as_array().map(Vec::len), Some(4));

    // A second commit on top of the first.
    env.run(&[
        "run",
        "--name",
        "c2",
        "com:1",
        "sh",
        "-c",
        "rm /new && echo 2 > /two",
    ])
    .expect_success();
    let out = env.run(&["commit", "c2", "com:2"]);
    out.expect_success();
    let out = env.run(&[
        "run",
        "--rm",
        "com:2",
        "sh",
        "-c",
        "cat /two /d/f; test -e /new || echo new-deleted; test -e /etc/keep || echo keep-deleted",
    ]);
    out.expect_success();
    assert_eq!(out.stdout, "2\nf\nnew-deleted\nkeep-deleted\n", "{out}");
    // The base image is unchanged.
    let out = env.run(&["run", "--rm", "base:1", "sh", "-c", LAYERED_CHECK]);
    out.expect_success();
    assert_eq!(out.stdout, LAYERED_SEES, "{out}");
    env.run(&["rm", "c1", "c2"]).expect_success();
    env.finish();
}

#[test]
fn commit_running_container() {
    let env = TestEnv::new("commit_running");
    load_base(&env);
    let script = format!("echo live > /live; {HOLD}");
    let mut held = env.spawn(&[
        "run", "--rm", "-i", "--name", "r1", "base:1", "sh", "-c", &script,
    ]);
    assert!(
        held.wait_for_stdout("ready", std::time::Duration::from_secs(30)),
        "container did not start"
    );
    let out = env.run(&["commit", "r1", "live:1"]);
    out.expect_success();
    held.release().expect_success();
    let out = env.run(&["run", "--rm", "live:1", "cat", "/live"]);
    out.expect_success();
    assert_eq!(out.stdout, "live\n");
    env.finish();
}

#[test]
fn commit_refuses_directory_images() {
    let env = TestEnv::new("commit_dir");
    env.run(&["run", "--name", "d1", bb(), "true"])
        .expect_success();
    let out = env.run(&["commit", "d1", "x:1"]);
    assert_ne!(out.code, 0, "{out}");
    out.expect_one_error_line(&["d1", "store images"]);
    env.run(&["rm", "d1"]).expect_success();
    env.finish();
}

/// The entries of a tar file: name -> content (empty for non-files).
fn tar_entries(path: &Path) -> BTreeMap<String, (tar::EntryType, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut a = tar::Archive::new(fs::File::open(path).expect("open tar"));
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = String::from_utf8_lossy(&e.path_bytes())
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let kind = e.header().entry_type();
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read entry");
        out.insert(name, (kind, data));
    }
    out
}

#[test]
fn export_writes_the_merged_root() {
    let env = TestEnv::new("export");
    load_base(&env);
    env.run(&[
        "run",
        "--name",
        "e1",
        "base:1",
        "sh",
        "-c",
        "echo changed > /etc/motd && rm /data/old/new",
    ])
    .expect_success();
    let tar = env.scratch().join("e1.tar");
    env.run(&["export", "-o", path_str(&tar), "e1"])
        .expect_success();
    let got = tar_entries(&tar);
    assert_eq!(
        got.get("etc/motd").map(|e| &e.1[..]),
        Some(&b"changed\n"[..])
    );
    assert_eq!(
        got.get("etc/keep").map(|e| &e.1[..]),
        Some(&b"keep 2\n"[..])
    );
    assert!(got.contains_key("bin/busybox"), "image files missing");
    for gone in ["data/old/new", "data/old/a", "etc/gone"] {
        assert!(
            !got.contains_key(gone),
            "{gone} should not be in the export"
        );
    }
    assert!(
        !got.keys().any(|k| k.contains(".wh.")),
        "whiteouts leaked into the export"
    );
    assert_eq!(
        entries(&env.root().join("images/tmp")),
        Vec::<String>::new(),
        "export left its mount point"
    );
    env.run(&["rm", "e1"]).expect_success();
    env.finish();
}

#[test]
fn export_running_container_on_a_directory() {
    let env = TestEnv::new("export_running");
    let held = env.spawn_held(&["--name", "run1", "-e", "X=1"]);
    let out = env.run(&["exec", "run1", "sh", "-c", "echo live > /tmp/live"]);
    out.expect_success();
    let tar = env.scratch().join("running.tar");
    env.run(&["export", "-o", path_str(&tar), "run1"])
        .expect_success();
    let got = tar_entries(&tar);
    assert_eq!(got.get("tmp/live").map(|e| &e.1[..]), Some(&b"live\n"[..]));
    assert!(got.contains_key("bin/busybox"));
    held.release().expect_success();
    env.finish();
}

#[test]
fn export_refuses_the_host_root() {
    let env = TestEnv::new("export_host");
    env.run(&["run", "--name", "h1", "/", "true"])
        .expect_success();
    let tar = env.scratch().join("host.tar");
    let out = env.run(&["export", "-o", path_str(&tar), "h1"]);
    assert_ne!(out.code, 0, "{out}");
    out.expect_one_error_line(&["host root"]);
    assert!(!tar.exists());
    env.run(&["rm", "h1"]).expect_success();
    env.finish();
}

/// More layers than one page of `lowerdir=` options holds with full
/// paths: export must still mount them all.
#[test]
fn export_deep_image() {
    let env = TestEnv::new("export_deep");
    let mut img = ImageBuilder::new().layer(Layer::busybox());
    for i in 0..70 {
        img = img.layer(Layer::new(&[Entry::file(
            &format!("layers/l{i:02}"),
            format!("{i}\n"),
        )]));
    }
    let archive = env.scratch().join("deep.tar");
    docker_archive(&archive, &[(&img, &["deep:1"])]);
    load(&env, &archive);
    env.run(&["run", "--name", "deep1", "deep:1", "rm", "/layers/l07"])
        .expect_success();
    let tar = env.scratch().join("deep-export.tar");
    env.run(&["export", "-o", path_str(&tar), "deep1"])
        .expect_success();
    let got = tar_entries(&tar);
    let layers: Vec<&String> = got.keys().filter(|k| k.starts_with("layers/l")).collect();
    assert_eq!(layers.len(), 69, "{layers:?}");
    assert_eq!(got.get("layers/l69").map(|e| &e.1[..]), Some(&b"69\n"[..]));
    assert!(!got.contains_key("layers/l07"));
    env.run(&["rm", "deep1"]).expect_success();
    env.finish();
}

/// Loads an OCI archive whose one layer (after busybox) is `evil`, and
/// checks that none of `targets` came to exist; returns the load output.
fn load_hostile(
    env: &TestEnv,
    name: &str,
    evil: &[Entry],
    targets: &[PathBuf],
) -> hind_tests::Output {
    let layout = env.scratch().join(format!("layout-{name}"));
    let img = ImageBuilder::new()
        .layer(Layer::busybox())
        .layer(Layer::new(evil));
    Layout::create(&layout).add_image(&img, &[(REF_NAME, &format!("evil/{name}:1"))]);
    let archive = env.scratch().join(format!("{name}.tar"));
    oci_archive(&layout, &archive, Compression::None);
    let out = env.run(&["load", "-i", path_str(&archive)]);
    for t in targets {
        assert!(
            fs::symlink_metadata(t).is_err(),
            "{name}: {} was created outside the store:\n{out}",
            t.display()
        );
    }
    assert_eq!(
        entries(&env.root().join("images/tmp")),
        Vec::<String>::new(),
        "{name}: scratch left"
    );
    out
}

#[test]
fn load_refuses_layers_that_escape() {
    let env = TestEnv::new("load_escape");
    let pid = std::process::id();
    let outside = env.scratch().join("outside");
    fs::create_dir(&outside).expect("mkdir outside");
    let tmp_target = PathBuf::from(format!("/tmp/hind-escape-{pid}"));
    let deep_up = "../".repeat(20);

    // `..` names: relative to the layer dir, and climbing all the way to /.
    let out = load_hostile(
        &env,
        "dotdot",
        &[
            Entry::raw("../escape", Kind::File(b"x".to_vec())),
            Entry::raw(
                format!("{deep_up}tmp/hind-escape-{pid}"),
                Kind::File(b"x".to_vec()),
            ),
        ],
        &[tmp_target.clone(), env.root().join("images/tmp/escape")],
    );
    assert_ne!(out.code, 0, "{out}");
    out.expect_one_error_line(&["../escape"]);

    // Absolute names.
    let abs = outside.join("abs");
    let out = load_hostile(
        &env,
        "absolute",
        &[
            Entry::raw(path_str(&abs), Kind::File(b"x".to_vec())),
            Entry::raw(path_str(&tmp_target), Kind::File(b"x".to_vec())),
        ],
        &[abs.clone(), tmp_target.clone()],
    );
    assert_ne!(out.code, 0, "{out}");

    // A symlink out of the layer, then a file through it: either refused
    // or resolved inside the layer, never written outside.
    let out = load_hostile(
        &env,
        "symlink",
        &[
            Entry::symlink("evil", path_str(&outside)),
            Entry::file("evil/pwned", "x"),
            Entry::symlink("up", &format!("{deep_up}tmp")),
            Entry::file(&format!("up/hind-escape-{pid}"), "x"),
        ],
        &[outside.join("pwned"), tmp_target.clone()],
    );
    if out.code == 0 {
        // Neutralised: the files landed inside the image.
        let run = env.run(&[
            "run",
            "--rm",
            "evil/symlink:1",
            "sh",
            "-c",
            &format!("cat {}/pwned", path_str(&outside)),
        ]);
        run.expect_success();
        assert_eq!(run.stdout, "x");
    }

    // A hard link to a host file.
    let out = load_hostile(
        &env,
        "hardlink",
        &[Entry::raw(
            "passwd-copy",
            Kind::Hardlink(format!("{deep_up}etc/passwd").into_bytes()),
        )],
        &[],
    );
    assert_ne!(out.code, 0, "{out}");
    assert_eq!(entries(&outside), Vec::<String>::new(), "written outside");
    env.finish();
}

#[test]
fn rmi_and_prune_empty_the_store() {
    let env = TestEnv::new("rmi_prune");
    let layout = env.scratch().join("layout");
    Layout::create(&layout).add_image(
        &layered_image(Compression::Gzip),
        &[(REF_NAME, "gone/img:1")],
    );
    let archive = env.scratch().join("image.tar");
    oci_archive(&layout, &archive, Compression::None);
    load(&env, &archive);
    assert_eq!(entries(&env.root().join("images/layers")).len(), 3);
    env.run(&["rmi", "gone/img:1"]).expect_success();
    env.run(&["image", "prune"]).expect_success();
    assert_store_empty(&env);
    env.finish();
}
