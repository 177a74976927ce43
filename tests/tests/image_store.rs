//! The image store as `run` and the listing commands see it: an image's
//! config (Entrypoint, Cmd, Env, WorkingDir, User, StopSignal) applied with
//! flags overriding it, `images`/`tag`/`rmi`/`image prune`, an image with
//! more layers than one page of overlay options holds, and references
//! that name nothing.

use std::path::Path;
use std::time::Duration;

use hind_tests::detach::{rm_f, run_detached, wait_exited, wait_for_log};
use hind_tests::oci::{docker_archive, Entry, ImageBuilder, Layer};
use hind_tests::TestEnv;

/// Loads `img` tagged `tag` into the env's store through a docker-save
/// archive; returns the image id.
fn load(env: &TestEnv, img: &ImageBuilder, tag: &str) -> String {
    let archive = env
        .scratch()
        .join(format!("{}.tar", tag.replace([':', '/'], "_")));
    let d = docker_archive(&archive, &[(img, &[tag])]);
    env.run(&["load", "-q", "-i", archive.to_str().unwrap()])
        .expect_success();
    d[0].config.clone()
}

fn entries(dir: &Path) -> Vec<String> {
    hind_tests::dir_entries(dir)
}

fn configured_image() -> ImageBuilder {
    ImageBuilder::new()
        .layer(Layer::busybox())
        .layer(Layer::new(&[
            Entry::dir("work").mode(0o777),
            Entry::file("etc/motd", "from the image\n"),
        ]))
        .entrypoint(&["/bin/sh", "-c"])
        .cmd(&["echo $GREETING in $(pwd) as $(id -u):$(id -g); cat /etc/motd"])
        .env("GREETING=hello")
        .env("PATH=/usr/bin:/bin")
        .working_dir("/work")
        .user("nobody")
        .stop_signal("SIGUSR1")
}

#[test]
fn run_applies_the_image_config() {
    let env = TestEnv::new("imgcfg");
    load(&env, &configured_image(), "cfg:1");
    let out = env.run(&["run", "--rm", "cfg:1"]);
    out.expect_success();
    assert_eq!(
        out.stdout, "hello in /work as 65534:65534\nfrom the image\n",
        "{out}"
    );
    // Arguments replace Cmd but keep the Entrypoint; flags beat the config.
    let out = env.run(&[
        "run",
        "--rm",
        "-e",
        "GREETING=bye",
        "-w",
        "/",
        "-u",
        "0",
        "cfg:1",
        "echo $GREETING in $(pwd) as $(id -u) PATH=$PATH",
    ]);
    out.expect_success();
    assert_eq!(out.stdout, "bye in / as 0 PATH=/usr/bin:/bin\n", "{out}");
    // --entrypoint replaces the entrypoint and drops the image's Cmd.
    let out = env.run(&["run", "--rm", "--entrypoint", "/bin/echo", "cfg:1", "plain"]);
    out.expect_success();
    assert_eq!(out.stdout, "plain\n", "{out}");
    env.finish();
}

#[test]
fn stop_uses_the_image_stop_signal() {
    let env = TestEnv::new("imgstop");
    load(&env, &configured_image(), "cfg:stop");
    let id = run_detached(
        &env,
        &[
            "cfg:stop",
            "trap 'echo got usr1; exit 3' USR1; echo ready; while true; do sleep 0.1; done",
        ],
    );
    wait_for_log(&env, &id, "ready", Duration::from_secs(10));
    env.run(&["stop", "-t", "10", &id]).expect_success();
    let st = wait_exited(&env, &id, Duration::from_secs(10));
    assert_eq!(st["State"]["ExitCode"], 3, "{st}");
    wait_for_log(&env, &id, "got usr1", Duration::from_secs(5));
    rm_f(&env, &[&id]);
    env.finish();
}

#[test]
fn images_tag_rmi_and_prune() {
    let env = TestEnv::new("imgcmds");
    let img = ImageBuilder::new().layer(Layer::busybox()).cmd(&["true"]);
    let id = load(&env, &img, "box:1");
    let hex = id.trim_start_matches("sha256:");

    let out = env.run(&["images"]);
    out.expect_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("REPOSITORY"), "{out}");
    assert!(
        lines[1].starts_with("box") && lines[1].contains(" 1 ") && lines[1].contains(&hex[..12]),
        "{out}"
    );

    env.run(&["tag", "box:1", "other/name:2"]).expect_success();
    let out = env.run(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    out.expect_success();
    let mut shown: Vec<&str> = out.stdout.lines().collect();
    shown.sort();
    assert_eq!(
        shown,
        [
            format!("box:1 {}", &hex[..12]),
            format!("other/name:2 {}", &hex[..12])
        ],
        "{out}"
    );
    let out = env.run(&["images", "-q", "--no-trunc"]);
    assert_eq!(out.stdout.trim(), id, "{out}");
    let out = env.run(&["images", "--format", "json"]);
    let first: serde_json::Value =
        serde_json::from_str(out.stdout.lines().next().unwrap()).expect("json line");
    assert_eq!(first["ID"], &hex[..12], "{out}");

    // Removing one of two tags only untags.
    let out = env.run(&["rmi", "other/name:2"]);
    out.expect_success();
    assert_eq!(out.stdout, "Untagged: other/name:2\n", "{out}");

    // An image a container uses is refused, naming the container.
    let out = env.run(&["run", "--name", "user", "box:1"]);
    out.expect_success();
    let out = env.run(&["rmi", "box:1"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains("container") && out.stderr.contains("box:1"),
        "{out}"
    );
    // Forced: the name goes, the content stays for the container.
    env.run(&["rmi", "-f", "box:1"]).expect_success();
    let out = env.run(&["images", "-q"]);
    assert_eq!(out.stdout.trim(), &hex[..12], "a dangling image: {out}");
    env.run(&["start", "-a", "user"]).expect_success();
    env.run(&["rm", "user"]).expect_success();

    let out = env.run(&["image", "prune", "-f"]);
    out.expect_success();
    assert!(out.stdout.contains(&format!("deleted: {id}")), "{out}");
    let images = env.root().join("images");
    assert_eq!(entries(&images.join("layers")), Vec::<String>::new());
    assert_eq!(entries(&images.join("blobs/sha256")), Vec::<String>::new());
    assert_eq!(entries(&images.join("db")), Vec::<String>::new());
    let out = env.run(&["images", "-q"]);
    assert_eq!(out.stdout, "", "{out}");
    env.finish();
}

#[test]
fn rmi_by_id_and_errors() {
    let env = TestEnv::new("imgrmi");
    let img = ImageBuilder::new().layer(Layer::busybox());
    let id = load(&env, &img, "gone:1");
    let hex = id.trim_start_matches("sha256:");
    let out = env.run(&["rmi", &hex[..8]]);
    out.expect_success();
    assert_eq!(
        out.stdout,
        format!("Untagged: gone:1\nDeleted: {id}\n"),
        "{out}"
    );
    assert_eq!(
        entries(&env.root().join("images/layers")),
        Vec::<String>::new()
    );
    let out = env.run(&["rmi", "nosuch:tag"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("nosuch:tag"), "{out}");
    let out = env.run(&["run", "--rm", "--pull", "never", "nosuch:tag", "true"]);
    assert_eq!(out.code, 125, "{out}");
    assert!(out.stderr.contains("nosuch:tag"), "{out}");
    let out = env.run(&["run", "--rm", "Bad//Ref", "true"]);
    assert_eq!(out.code, 125, "{out}");
    assert!(out.stderr.contains("Bad//Ref"), "{out}");
    assert_eq!(env.containers(), Vec::<String>::new());
    env.finish();
}

/// More layers than fit in one page of `lowerdir=` options: each layer's
/// path under the per-test root is over 100 bytes, so 60 of them need the
/// one-layer-at-a-time mount API.
#[test]
fn deep_image_runs() {
    let env = TestEnv::new("imgdeep");
    let mut img = ImageBuilder::new().layer(Layer::busybox());
    for i in 0..60 {
        img = img.layer(Layer::new(&[Entry::file(
            &format!("layers/l{i:02}"),
            format!("{i}\n"),
        )]));
    }
    // The top layer deletes one file of a lower one.
    img = img.layer(Layer::new(&[Entry::whiteout("layers/l07")]));
    load(&env, &img, "deep:1");
    let out = env.run(&[
        "run",
        "--rm",
        "deep:1",
        "sh",
        "-c",
        "ls /layers | wc -l; cat /layers/l59; test -e /layers/l07 || echo l07 gone",
    ]);
    out.expect_success();
    assert_eq!(out.stdout, "59\n59\nl07 gone\n", "{out}");
    env.finish();
}
