//! Volumes and filesystem options: `-v` binds (rw, `:ro` with EROFS
//! inside, a file), named volumes (made on first use, filled from the
//! image, kept after the container, shared by two running containers,
//! refused by `volume rm` while used, `prune`), anonymous volumes (gone
//! with `--rm` and `rm -v`), mount targets that are symlinks out of the
//! root in the image (the CVE-2021-30465 class: nothing lands on the
//! host), `--read-only`, `--tmpfs` and `--mount type=tmpfs`, `--env-file`,
//! and what `inspect` shows. Errors are one line, exit 125, and leave no
//! container, name or volume behind.

use std::fs;
use std::os::unix::fs::{chown, symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hind_tests::detach::{inspect, rm_f, run_detached};
use hind_tests::image::build_busybox_rootfs;
use hind_tests::oci::sha256_digest;
use hind_tests::{bb, snapshot, Output, TestEnv};

fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// A private busybox root fs at `<scratch>/<name>`.
fn private_image(env: &TestEnv, name: &str) -> PathBuf {
    let dir = env.scratch().join(name);
    build_busybox_rootfs(&dir).expect("build busybox root fs");
    dir
}

/// An image with content at /data: a 0640 file, a dir of uid 1000 and a
/// symlink to a host path (`/etc/passwd`); /data itself is 0750 uid 7.
fn data_image(env: &TestEnv) -> PathBuf {
    let img = private_image(env, "img-data");
    let data = img.join("data");
    fs::create_dir_all(data.join("sub")).expect("mkdir data/sub");
    fs::write(data.join("file"), "from the image\n").expect("write data/file");
    fs::set_permissions(data.join("file"), fs::Permissions::from_mode(0o640)).expect("chmod");
    chown(data.join("sub"), Some(1000), Some(1000)).expect("chown sub");
    symlink("/etc/passwd", data.join("link")).expect("symlink");
    fs::set_permissions(&data, fs::Permissions::from_mode(0o750)).expect("chmod data");
    chown(&data, Some(7), Some(7)).expect("chown data");
    img
}

/// `hind run --rm ARGS` (an image and command among them).
fn run_rm(env: &TestEnv, args: &[&str]) -> Output {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    env.run(&all)
}

/// Names under `<root>/volumes` that are volumes (not the lock).
fn volume_dirs(env: &TestEnv) -> Vec<String> {
    hind_tests::dir_entries(&env.root().join("volumes"))
        .into_iter()
        .filter(|n| n != "lock")
        .collect()
}

fn data_dir(env: &TestEnv, name: &str) -> PathBuf {
    env.root().join("volumes").join(name).join("_data")
}

/// `hind volume ls -q`, one name per entry.
fn volume_names(env: &TestEnv) -> Vec<String> {
    let out = env.run(&["volume", "ls", "-q"]);
    out.expect_success();
    out.stdout.lines().map(str::to_string).collect()
}

#[test]
fn bind_mounts_rw_ro_and_file() {
    let env = TestEnv::new("vol_binds");
    let host = env.scratch().join("host");
    fs::create_dir(&host).expect("mkdir host");
    fs::write(host.join("f"), "host file\n").expect("write f");
    let h = s(&host);

    let out = run_rm(
        &env,
        &[
            "-v",
            &format!("{h}:/h"),
            bb(),
            "sh",
            "-c",
            "cat /h/f && echo w >/h/new",
        ],
    );
    out.expect_success();
    assert_eq!(out.stdout, "host file\n");
    assert_eq!(fs::read_to_string(host.join("new")).unwrap(), "w\n");

    // `:ro` (with `z`, accepted and ignored) is a real read-only mount.
    let before = snapshot(&host);
    let script = "cat /h/f; echo x >/h/f || echo refused; grep ' /h ' /proc/mounts";
    let out = run_rm(
        &env,
        &["-v", &format!("{h}:/h:ro,z"), bb(), "sh", "-c", script],
    );
    out.expect_success();
    assert!(out.stdout.contains("refused"), "{out}");
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    assert!(
        out.stdout.contains(" ro,") || out.stdout.contains(" ro "),
        "{out}"
    );
    assert_eq!(snapshot(&host), before, "the read-only bind was written");

    // A file onto a path the image lacks, and over one it has.
    let f = format!("{h}/f");
    let out = run_rm(
        &env,
        &[
            "-v",
            &format!("{f}:/etc/passwd"),
            "-v",
            &format!("{f}:/new/dir/file"),
            bb(),
            "sh",
            "-c",
            "cat /etc/passwd /new/dir/file; echo more >>/new/dir/file",
        ],
    );
    out.expect_success();
    assert_eq!(out.stdout, "host file\nhost file\n");
    assert_eq!(
        fs::read_to_string(host.join("f")).unwrap(),
        "host file\nmore\n"
    );
    env.finish();
}

#[test]
fn bad_mount_flags_fail_cleanly() {
    let env = TestEnv::new("vol_errors");
    let missing = env.scratch().join("missing");
    let m = s(&missing);
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            vec!["-v".into(), format!("{m}:/x")],
            vec!["bind source path does not exist", m],
        ),
        (
            vec!["--mount".into(), format!("type=bind,source={m},target=/x")],
            vec!["bind source path does not exist", m],
        ),
        (
            vec!["-v".into(), "/tmp:rel/x".into()],
            vec!["rel/x", "absolute"],
        ),
        (vec!["-v".into(), "vol:x".into()], vec!["\"x\"", "absolute"]),
        (
            vec!["--tmpfs".into(), "t".into()],
            vec!["\"t\"", "absolute"],
        ),
        (
            vec!["-v".into(), "./rel:/x".into()],
            vec!["./rel", "volume name"],
        ),
        (vec!["-v".into(), "/tmp:/x:bogus".into()], vec!["bogus"]),
        (
            vec!["-v".into(), "/tmp:/x".into(), "--tmpfs".into(), "/x".into()],
            vec!["duplicate mount point", "/x"],
        ),
        (
            vec!["--mount".into(), "type=nfs,target=/x".into()],
            vec!["nfs"],
        ),
        (vec!["--tmpfs".into(), "/t:bogus=1".into()], vec!["bogus"]),
    ];
    for (flags, names) in cases {
        let mut args: Vec<&str> = vec!["run", "--rm", "--name", "named"];
        args.extend(flags.iter().map(String::as_str));
        args.extend([bb(), "true"]);
        let out = env.run(&args);
        out.expect_hind_error(125, &names);
        assert_eq!(env.containers(), Vec::<String>::new(), "{flags:?}");
        assert_eq!(volume_dirs(&env), Vec::<String>::new(), "{flags:?}");
    }
    // The name was never claimed: it is free.
    env.run(&["run", "--rm", "--name", "named", bb(), "true"])
        .expect_success();
    // A run that fails after its volumes were made takes them away again.
    let img = private_image(&env, "img-root-link");
    fs::remove_dir(img.join("tmp")).expect("rmdir tmp");
    symlink("../../..", img.join("tmp")).expect("symlink");
    let out = run_rm(&env, &["-v", "fresh:/tmp", "-v", "/anon", s(&img), "true"]);
    out.expect_hind_error(125, &["/tmp", "root"]);
    assert_eq!(volume_dirs(&env), Vec::<String>::new());
    env.finish();
}

#[test]
fn named_volume_is_made_filled_from_the_image_and_kept() {
    let env = TestEnv::new("vol_copy_up");
    let img = data_image(&env);
    let script = "cat /data/file && stat -c '%a %u %n' /data /data/sub && readlink /data/link \
                  && echo mine >/data/written";
    let out = run_rm(&env, &["-v", "store:/data", s(&img), "sh", "-c", script]);
    out.expect_success();
    assert_eq!(
        out.stdout,
        "from the image\n750 7 /data\n755 1000 /data/sub\n/etc/passwd\n"
    );
    // On the host: the copy keeps owners, modes and the link as a link.
    let data = data_dir(&env, "store");
    let md = fs::metadata(&data).unwrap();
    assert_eq!((md.mode() & 0o7777, md.uid()), (0o750, 7));
    let f = fs::metadata(data.join("file")).unwrap();
    assert_eq!(f.mode() & 0o7777, 0o640);
    assert_eq!(fs::metadata(data.join("sub")).unwrap().uid(), 1000);
    let l = fs::symlink_metadata(data.join("link")).unwrap();
    assert!(l.file_type().is_symlink());
    assert_eq!(
        fs::read_link(data.join("link")).unwrap(),
        PathBuf::from("/etc/passwd")
    );
    assert_eq!(fs::read_to_string(data.join("written")).unwrap(), "mine\n");
    // hind's own parts are private.
    let vdir = env.root().join("volumes").join("store");
    assert_eq!(fs::metadata(&vdir).unwrap().mode() & 0o777, 0o700);
    let rec = fs::metadata(vdir.join("volume.json")).unwrap();
    assert_eq!(rec.mode() & 0o777, 0o600);

    // It outlives the container, and a volume with content is not filled
    // again: what the last container left is what the next one sees.
    fs::remove_file(data.join("file")).unwrap();
    let out = run_rm(&env, &["-v", "store:/data", s(&img), "ls", "/data"]);
    out.expect_success();
    assert_eq!(out.stdout, "link\nsub\nwritten\n");

    // Nothing in the image at the path: an empty 0755 root dir.
    let out = run_rm(
        &env,
        &[
            "-v",
            "empty:/nothing/here",
            bb(),
            "stat",
            "-c",
            "%a %u",
            "/nothing/here",
        ],
    );
    out.expect_success();
    assert_eq!(out.stdout, "755 0\n");
    // `nocopy`: not filled.
    let out = run_rm(
        &env,
        &["-v", "bare:/data:nocopy", s(&img), "ls", "-A", "/data"],
    );
    out.expect_success();
    assert_eq!(out.stdout, "");

    // `volume create`, ls, inspect.
    env.run(&["volume", "create", "--label", "k=v", "made"])
        .expect_success();
    let out = env.run(&["volume", "create", "made"]);
    out.expect_success();
    assert_eq!(out.stdout, "made\n", "create of an existing volume");
    assert_eq!(volume_names(&env), ["bare", "empty", "made", "store"]);
    let out = env.run(&["volume", "ls"]);
    out.expect_success();
    assert!(out.stdout.starts_with("DRIVER"), "{out}");
    assert!(out.stdout.contains("VOLUME NAME"), "{out}");
    assert!(
        out.stdout.contains("local     made") || out.stdout.contains("local    made"),
        "{out}"
    );
    let out = env.run(&[
        "volume",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Labels}}",
    ]);
    out.expect_success();
    assert!(out.stdout.contains("made local k=v\n"), "{out}");
    let out = env.run(&["volume", "inspect", "made", "store"]);
    out.expect_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("inspect JSON");
    assert_eq!(v[0]["Name"], "made");
    assert_eq!(v[0]["Driver"], "local");
    assert_eq!(v[0]["Scope"], "local");
    assert_eq!(v[0]["Labels"]["k"], "v");
    assert_eq!(v[1]["Mountpoint"], s(&data));
    assert!(v[1]["CreatedAt"]
        .as_str()
        .unwrap_or_default()
        .starts_with("20"));
    let out = env.run(&["volume", "inspect", "nosuch"]);
    out.expect_hind_error(1, &["nosuch"]);
    let out = env.run(&["volume", "create", "bad/name"]);
    out.expect_code(1);
    out.expect_one_error_line(&["bad/name"]);

    // rm and prune of unused volumes.
    let out = env.run(&["volume", "rm", "made", "nosuch"]);
    out.expect_code(1);
    assert_eq!(out.stdout, "made\n");
    env.run(&["volume", "rm", "-f", "nosuch"]).expect_success();
    // prune takes the unused anonymous volumes (here one left by a
    // container removed without -v), --all the named ones too (Docker 23).
    env.run(&["run", "--name", "anon", "-v", "/x", bb(), "true"])
        .expect_success();
    rm_f(&env, &["anon"]);
    let anon: Vec<String> = volume_names(&env)
        .into_iter()
        .filter(|v| v.len() == 64)
        .collect();
    assert_eq!(anon.len(), 1, "{:?}", volume_names(&env));
    let out = env.run(&["volume", "prune", "-f"]);
    out.expect_success();
    assert!(
        out.stdout
            .contains(&format!("Deleted Volumes:\n{}\n", anon[0])),
        "{out}"
    );
    assert_eq!(volume_names(&env), ["bare", "empty", "store"]);
    let out = env.run(&["volume", "prune", "-a", "-f"]);
    out.expect_success();
    assert!(
        out.stdout
            .contains("Deleted Volumes:\nbare\nempty\nstore\n"),
        "{out}"
    );
    assert_eq!(volume_dirs(&env), Vec::<String>::new());
    env.finish();
}

#[test]
fn volume_in_use_is_kept_and_shared_between_running_containers() {
    let env = TestEnv::new("vol_shared");
    env.allow_leftover_containers();
    let a = run_detached(
        &env,
        &[
            "--name",
            "a",
            "-v",
            "shared:/v",
            bb(),
            "sh",
            "-c",
            "echo from-a >/v/a; sleep 600",
        ],
    );
    let b = run_detached(
        &env,
        &["--name", "b", "-v", "shared:/v", bb(), "sleep", "600"],
    );
    let seen = hind_tests::poll(Duration::from_secs(10), || {
        let out = env.run(&["exec", "b", "cat", "/v/a"]);
        (out.code == 0).then_some(out.stdout)
    });
    assert_eq!(seen.as_deref(), Some("from-a\n"));
    env.run(&["exec", "b", "sh", "-c", "echo from-b >/v/b"])
        .expect_success();
    let out = env.run(&["exec", "a", "cat", "/v/b"]);
    out.expect_success();
    assert_eq!(out.stdout, "from-b\n");

    // In use by running containers: refused, even with -f, naming them.
    for args in [
        &["volume", "rm", "shared"][..],
        &["volume", "rm", "-f", "shared"],
    ] {
        let out = env.run(args);
        out.expect_hind_error(1, &["shared", "in use", "a", "b"]);
    }
    // In use by a stopped one: still refused, and prune keeps it.
    env.run(&["stop", "-t", "0", "a", "b"]).expect_success();
    rm_f(&env, &["a"]);
    let out = env.run(&["volume", "rm", "shared"]);
    out.expect_hind_error(1, &["shared", "b"]);
    env.run(&["volume", "prune", "-f"]).expect_success();
    assert_eq!(volume_names(&env), ["shared"]);
    rm_f(&env, &["b"]);
    let out = env.run(&["volume", "rm", "shared"]);
    out.expect_success();
    assert_eq!(out.stdout, "shared\n");
    assert_eq!(volume_dirs(&env), Vec::<String>::new());
    let _ = (a, b);
    env.finish();
}

#[test]
fn anonymous_volumes_go_with_rm_and_rm_v() {
    let env = TestEnv::new("vol_anonymous");
    env.allow_leftover_containers();
    let img = data_image(&env);
    // --rm: gone when `run` returns; filled from the image meanwhile.
    let out = run_rm(&env, &["-v", "/data", s(&img), "cat", "/data/file"]);
    out.expect_success();
    assert_eq!(out.stdout, "from the image\n");
    assert_eq!(volume_dirs(&env), Vec::<String>::new());
    // Without --rm it stays with the container, has a 64-hex name, and
    // `rm -v` removes it but not the named volume next to it.
    let out = env.run(&[
        "run",
        "--name",
        "keep",
        "-v",
        "/anon",
        "--mount",
        "type=volume,target=/anon2",
        "-v",
        "named:/named",
        bb(),
        "true",
    ]);
    out.expect_success();
    let vols = volume_names(&env);
    assert_eq!(vols.len(), 3, "{vols:?}");
    let anon: Vec<&String> = vols.iter().filter(|v| *v != "named").collect();
    for v in &anon {
        assert!(
            v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()),
            "{v}"
        );
    }
    env.run(&["rm", "-v", "keep"]).expect_success();
    assert_eq!(volume_names(&env), ["named"]);
    // Plain rm keeps anonymous volumes.
    env.run(&["run", "--name", "keep2", "-v", "/anon", bb(), "true"])
        .expect_success();
    env.run(&["rm", "keep2"]).expect_success();
    assert_eq!(volume_names(&env).len(), 2);
    env.finish();
}

/// The image's /data is a symlink out of the root: to a host dir by its
/// absolute path, by `..`s, or to /etc. The volume or bind lands at that
/// path inside the container; the host's dir and /etc stay as they were.
#[test]
fn symlinked_mount_targets_stay_inside_the_root() {
    let env = TestEnv::new("vol_symlink_escape");
    let canary = env.scratch().join("canary");
    fs::create_dir(&canary).expect("mkdir canary");
    fs::write(canary.join("keep"), "canary\n").expect("write canary");
    let before = snapshot(&canary);
    let host_passwd = sha256_digest(&fs::read("/etc/passwd").expect("read /etc/passwd"));
    let c = s(&canary);
    let src = env.scratch().join("src");
    fs::create_dir(&src).expect("mkdir src");
    let up = format!("../../../../../../../../..{c}");
    for (i, target) in [c, up.as_str(), "/etc"].into_iter().enumerate() {
        let img = private_image(&env, &format!("img-{i}"));
        symlink(target, img.join("data")).expect("symlink data");
        let inside = if target == "/etc" { "/etc" } else { c };
        for mount in [format!("vol{i}:/data"), format!("{}:/data", s(&src))] {
            let script = format!(
                "echo pwned >/data/pwned && grep -c ' {inside} ' /proc/mounts && \
                 cat {inside}/pwned"
            );
            let out = run_rm(&env, &["-v", &mount, s(&img), "sh", "-c", &script]);
            out.expect_success();
            assert_eq!(out.stdout, "1\npwned\n", "{target} {mount}");
        }
        // The volume got the container's /etc (the image's), not the host's.
        if target == "/etc" {
            let passwd = fs::read_to_string(data_dir(&env, &format!("vol{i}")).join("passwd"));
            assert!(passwd
                .unwrap()
                .starts_with("root:x:0:0:root:/root:/bin/sh\nnobody"));
        }
    }
    assert_eq!(snapshot(&canary), before, "the host dir changed");
    assert!(
        !Path::new("/etc/pwned").exists(),
        "written into the host's /etc"
    );
    assert_eq!(
        sha256_digest(&fs::read("/etc/passwd").unwrap()),
        host_passwd,
        "the host's /etc/passwd changed"
    );
    // A target resolving to the root itself is refused, and the volume
    // this run made is gone again.
    let img = private_image(&env, "img-root");
    symlink("../../..", img.join("data")).expect("symlink data");
    for mount in ["rootvol:/data".to_string(), format!("{}:/data", s(&src))] {
        let out = run_rm(&env, &["-v", &mount, s(&img), "true"]);
        out.expect_hind_error(125, &["/data", "root"]);
    }
    assert!(!env.root().join("volumes/rootvol").exists());
    assert_eq!(env.containers(), Vec::<String>::new());
    let host = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!host.contains(c), "mounted on the host");
    env.finish();
}

/// Copy-up never follows a link in the image: `/data/escape -> /` and
/// `/data/etc -> /etc` arrive as links, and nothing of the host's / or
/// /etc is copied.
#[test]
fn copy_up_copies_links_as_links() {
    let env = TestEnv::new("vol_copy_links");
    let img = private_image(&env, "img-links");
    let data = img.join("data");
    fs::create_dir(&data).expect("mkdir data");
    symlink("/", data.join("escape")).expect("symlink");
    symlink("/etc", data.join("etc")).expect("symlink");
    symlink("../../../../../../etc/shadow", data.join("shadow")).expect("symlink");
    let out = run_rm(&env, &["-v", "links:/data", s(&img), "true"]);
    out.expect_success();
    let d = data_dir(&env, "links");
    assert_eq!(hind_tests::dir_entries(&d), ["escape", "etc", "shadow"]);
    for n in ["escape", "etc", "shadow"] {
        assert!(fs::symlink_metadata(d.join(n))
            .unwrap()
            .file_type()
            .is_symlink());
    }
    env.finish();
}

#[test]
fn read_only_root_keeps_volumes_and_tmpfs_writable() {
    let env = TestEnv::new("vol_read_only");
    let script = "touch /file 2>&1; echo v >/v/x && echo t >/t/x && echo s >/dev/shm/x && \
                  cat /v/x /t/x /dev/shm/x && grep ' / ' /proc/mounts";
    let out = run_rm(
        &env,
        &[
            "--read-only",
            "-v",
            "rw:/v",
            "--tmpfs",
            "/t",
            bb(),
            "sh",
            "-c",
            script,
        ],
    );
    out.expect_success();
    assert!(
        out.stdout
            .starts_with("touch: /file: Read-only file system\nv\nt\ns\n"),
        "{out}"
    );
    assert!(out.stdout.contains(" ro,"), "root not mounted ro:\n{out}");
    assert_eq!(
        fs::read_to_string(data_dir(&env, "rw").join("x")).unwrap(),
        "v\n"
    );
    let c = env.run(&["run", "--name", "ro", "--read-only", bb(), "true"]);
    c.expect_success();
    env.allow_leftover_containers();
    assert_eq!(inspect(&env, "ro")["HostConfig"]["ReadonlyRootfs"], true);
    env.run(&["rm", "ro"]).expect_success();
    env.finish();
}

#[test]
fn tmpfs_size_mode_and_options() {
    let env = TestEnv::new("vol_tmpfs");
    let script = "stat -c %a /t /m && grep -E ' /(t|m) ' /proc/mounts && \
                  (head -c 2097152 /dev/zero >/t/big 2>/dev/null || echo full) && \
                  stat -c %s /t/big && \
                  cp /bin/busybox /m/true && (/m/true 2>/dev/null || echo noexec)";
    let out = run_rm(
        &env,
        &[
            "--tmpfs",
            "/t:size=1m,mode=1770",
            "--mount",
            "type=tmpfs,target=/m,tmpfs-size=4m,tmpfs-mode=700",
            bb(),
            "sh",
            "-c",
            script,
        ],
    );
    out.expect_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(&lines[..2], ["1770", "700"], "{out}");
    let t = lines
        .iter()
        .find(|l| l.contains(" /t "))
        .expect("/t mounted");
    assert!(t.contains("size=1024k") && t.contains("mode=1770"), "{t}");
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(t.contains(o), "{t}: {o}");
    }
    let m = lines
        .iter()
        .find(|l| l.contains(" /m "))
        .expect("/m mounted");
    assert!(m.contains("size=4096k") && m.contains("mode=700"), "{m}");
    assert!(
        out.stdout.contains("full\n1048576\n"),
        "1m tmpfs took more:\n{out}"
    );
    assert!(out.stdout.ends_with("noexec\n"), "{out}");
    // `exec` overrides Docker's default noexec.
    let out = run_rm(
        &env,
        &[
            "--tmpfs",
            "/t:exec",
            bb(),
            "sh",
            "-c",
            "cp /bin/busybox /t/true && /t/true && echo ran",
        ],
    );
    out.expect_success();
    assert_eq!(out.stdout, "ran\n");
    env.finish();
}

#[test]
fn env_file() {
    let env = TestEnv::new("vol_env_file");
    let f = env.scratch().join("env");
    fs::write(
        &f,
        "# a comment\n\nA=from-file\n  B=two words \nC=file\nHIND_TEST_FROM_CALLER\nHIND_TEST_UNSET_VAR\n",
    )
    .unwrap();
    let mut cmd = env.hind();
    cmd.env("HIND_TEST_FROM_CALLER", "caller").args([
        "run",
        "--rm",
        "--env-file",
        s(&f),
        "-e",
        "C=flag",
        bb(),
        "sh",
        "-c",
        "echo \"$A|$B|$C|$HIND_TEST_FROM_CALLER|${HIND_TEST_UNSET_VAR-unset}\"",
    ]);
    let out = env.run_cmd(cmd);
    out.expect_success();
    assert_eq!(out.stdout, "from-file|two words |flag|caller|unset\n");
    let missing = env.scratch().join("nosuch.env");
    let out = run_rm(&env, &["--env-file", s(&missing), bb(), "true"]);
    out.expect_hind_error(125, &[s(&missing)]);
    assert_eq!(env.containers(), Vec::<String>::new());
    env.finish();
}

#[test]
fn inspect_shows_mounts() {
    let env = TestEnv::new("vol_inspect");
    env.allow_leftover_containers();
    let host = env.scratch().join("host");
    fs::create_dir(&host).expect("mkdir host");
    let h = s(&host);
    env.run(&[
        "run",
        "--name",
        "m",
        "-v",
        &format!("{h}:/h:ro"),
        "-v",
        "named:/n",
        "-v",
        "/anon",
        "--tmpfs",
        "/t:size=1m",
        "--mount",
        "type=tmpfs,target=/mt",
        bb(),
        "true",
    ])
    .expect_success();
    let doc = inspect(&env, "m");
    let mounts = doc["Mounts"].as_array().expect("Mounts array");
    assert_eq!(mounts.len(), 4, "{mounts:?}");
    let by_dest = |d: &str| {
        mounts
            .iter()
            .find(|m| m["Destination"] == d)
            .unwrap_or_else(|| panic!("no mount at {d}: {mounts:?}"))
    };
    let b = by_dest("/h");
    assert_eq!(b["Type"], "bind");
    assert_eq!(b["Source"], h);
    assert_eq!(b["Mode"], "ro");
    assert_eq!(b["RW"], false);
    assert_eq!(b["Propagation"], "rprivate");
    let n = by_dest("/n");
    assert_eq!(n["Type"], "volume");
    assert_eq!(n["Name"], "named");
    assert_eq!(n["Driver"], "local");
    assert_eq!(n["Source"], s(&data_dir(&env, "named")));
    assert_eq!(n["RW"], true);
    assert_eq!(by_dest("/anon")["Type"], "volume");
    assert_eq!(by_dest("/mt")["Type"], "tmpfs");
    let hc = &doc["HostConfig"];
    assert_eq!(
        hc["Binds"],
        serde_json::json!([format!("{h}:/h:ro"), "named:/n"])
    );
    assert_eq!(hc["Tmpfs"], serde_json::json!({"/t": "size=1m"}));
    assert_eq!(hc["ReadonlyRootfs"], false);
    env.run(&["rm", "-v", "m"]).expect_success();
    assert_eq!(volume_names(&env), ["named"]);
    env.finish();
}

/// `volume rm` racing `run -v`: the volumes lock keeps rm from removing a
/// volume between its creation by `run` and the record that lists it, so
/// every container that started still has its volume, and it is the one
/// on disk.
#[test]
fn volume_rm_racing_run_never_takes_a_volume_in_use() {
    let env = TestEnv::new("vol_race");
    env.allow_leftover_containers();
    let removers: Vec<std::process::Command> = (0..40)
        .map(|_| {
            let mut c = env.hind();
            c.args(["volume", "rm", "race"]);
            c
        })
        .collect();
    let names: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for c in removers {
                let _ = hind_tests::process::run(c, b"", hind_tests::default_timeout());
            }
        });
        for n in &names {
            run_detached(&env, &["--name", n, "-v", "race:/v", bb(), "sleep", "600"]);
        }
    });
    let data = data_dir(&env, "race");
    for n in &names {
        let mark = format!("/v/{n}");
        env.run(&["exec", n, "touch", &mark]).expect_success();
        assert!(
            data.join(n).exists(),
            "{n} writes into a volume that is gone"
        );
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    rm_f(&env, &refs);
    env.run(&["volume", "rm", "race"]).expect_success();
    env.finish();
}

/// An image's `Volumes` (Dockerfile `VOLUME`) each get an anonymous
/// volume filled from the image, unless a flag mounts something there; with
/// `--rm` they go with the container.
#[test]
fn image_volumes_become_anonymous_volumes() {
    use hind_tests::oci::{docker_archive, Entry, ImageBuilder, Layer};
    use serde_json::json;
    let env = TestEnv::new("vol_image");
    env.allow_leftover_containers();
    let img = ImageBuilder::new()
        .layer(Layer::busybox())
        .layer(Layer::new(&[
            Entry::dir("data"),
            Entry::file("data/seed", "seeded\n"),
            Entry::dir("cache"),
        ]))
        .config_field("Volumes", json!({"/data": {}, "/cache/": {}}));
    let archive = env.scratch().join("vol.tar");
    docker_archive(&archive, &[(&img, &["withvol:1"])]);
    env.run(&["load", "-q", "-i", s(&archive)]).expect_success();

    // Both paths are volumes, /data filled from the image; a write there
    // lands in the volume, not the container's layer.
    let out = env.run(&[
        "run",
        "--name",
        "v1",
        "withvol:1",
        "sh",
        "-c",
        "cat /data/seed; echo new > /data/new; grep -c ' /data \\| /cache ' /proc/self/mounts",
    ]);
    out.expect_success();
    assert_eq!(out.stdout, "seeded\n2\n", "{out}");
    let vols = volume_names(&env);
    assert_eq!(vols.len(), 2, "{vols:?}");
    let with_new: Vec<&String> = vols
        .iter()
        .filter(|v| data_dir(&env, v).join("new").exists())
        .collect();
    assert_eq!(with_new.len(), 1, "{vols:?}");
    env.run(&["rm", "-v", "v1"]).expect_success();
    assert_eq!(volume_names(&env), Vec::<String>::new());

    // A flag at the same path wins: the named volume, no anonymous one.
    let out = run_rm(
        &env,
        &["-v", "mine:/data", "withvol:1", "cat", "/data/seed"],
    );
    out.expect_success();
    assert_eq!(out.stdout, "seeded\n");
    assert_eq!(volume_names(&env), ["mine"]);
    env.run(&["volume", "rm", "mine"]).expect_success();
    env.finish();
}

/// `--volumes-from`: another container's volumes and binds at the same
/// paths, in their modes or the flag's; an explicit flag at a path wins;
/// a missing container fails the run cleanly.
#[test]
fn volumes_from_another_container() {
    let env = TestEnv::new("vol_from");
    env.allow_leftover_containers();
    let host = env.scratch().join("hostdir");
    fs::create_dir(&host).expect("mkdir hostdir");
    fs::write(host.join("h"), "bound\n").expect("write h");
    let bind = format!("{}:/b:ro", s(&host));
    env.run(&[
        "run",
        "--name",
        "src",
        "-v",
        "/anon",
        "-v",
        "named:/named",
        "-v",
        &bind,
        "--tmpfs",
        "/t",
        bb(),
        "sh",
        "-c",
        "echo a > /anon/f; echo n > /named/f",
    ])
    .expect_success();

    let out = run_rm(
        &env,
        &[
            "--volumes-from",
            "src",
            bb(),
            "sh",
            "-c",
            "cat /anon/f /named/f /b/h; grep -c ' /t ' /proc/self/mounts; \
             echo x > /b/x 2>/dev/null || echo b-ro; echo more > /anon/g && echo anon-rw",
        ],
    );
    assert_eq!(out.stdout, "a\nn\nbound\n0\nb-ro\nanon-rw\n", "{out}");
    // :ro makes them all read-only; an explicit -v at a path wins.
    let out = run_rm(
        &env,
        &[
            "--volumes-from",
            "src:ro",
            "-v",
            "other:/named",
            bb(),
            "sh",
            "-c",
            "echo x > /anon/x 2>/dev/null || echo anon-ro; ls /named | wc -l",
        ],
    );
    assert_eq!(out.stdout, "anon-ro\n0\n", "{out}");
    // Neither --rm run took src's anonymous volume with it.
    assert!(volume_names(&env).len() >= 3, "{:?}", volume_names(&env));

    for (flag, names) in [
        ("nosuch", &["nosuch"][..]),
        ("src:rx", &["src:rx", "CONTAINER[:ro|:rw]"][..]),
    ] {
        let before = env.containers().len();
        let out = env.run(&["run", "--rm", "--volumes-from", flag, bb(), "true"]);
        out.expect_hind_error(125, names);
        assert_eq!(env.containers().len(), before, "{flag} left a container");
    }
    env.run(&["rm", "-v", "src"]).expect_success();
    env.run(&["volume", "rm", "named", "other"])
        .expect_success();
    assert_eq!(volume_names(&env), Vec::<String>::new());
    env.finish();
}

/// Sets the extended attribute `name` of `path`.
fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    let n = std::ffi::CString::new(name).expect("name");
    // SAFETY: NUL-terminated strings and a buffer valid for its length,
    // which the kernel only reads.
    let r = unsafe {
        libc::setxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "setxattr {name} on {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// The value of the extended attribute `name` of `path`, if any.
fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    let n = std::ffi::CString::new(name).expect("name");
    let mut buf = [0u8; 256];
    // SAFETY: NUL-terminated strings and a buffer valid for its length,
    // into which the kernel writes at most that many bytes.
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| buf[..r as usize].to_vec())
}

/// Copy-up keeps hard links as links and extended attributes, of files and
/// of dirs.
#[test]
fn copy_up_keeps_hard_links_and_xattrs() {
    let env = TestEnv::new("vol_links");
    let img = private_image(&env, "img-links");
    let data = img.join("data");
    fs::create_dir_all(data.join("sub")).expect("mkdir data/sub");
    fs::write(data.join("a"), "linked\n").expect("write a");
    fs::hard_link(data.join("a"), data.join("sub/b")).expect("link b");
    fs::write(data.join("single"), "one\n").expect("write single");
    set_xattr(&data.join("single"), "user.hind.test", b"file-value");
    set_xattr(&data.join("sub"), "user.hind.test", b"dir-value");
    let out = run_rm(&env, &["-v", "links:/data", s(&img), "true"]);
    out.expect_success();
    let vol = data_dir(&env, "links");
    let a = fs::metadata(vol.join("a")).expect("stat a");
    let b = fs::metadata(vol.join("sub/b")).expect("stat sub/b");
    assert_eq!(a.ino(), b.ino(), "a and sub/b are one file");
    assert_eq!(a.nlink(), 2);
    assert_eq!(
        fs::read_to_string(vol.join("sub/b")).expect("read b"),
        "linked\n"
    );
    assert_eq!(fs::metadata(vol.join("single")).expect("stat").nlink(), 1);
    assert_eq!(
        get_xattr(&vol.join("single"), "user.hind.test").as_deref(),
        Some(&b"file-value"[..])
    );
    assert_eq!(
        get_xattr(&vol.join("sub"), "user.hind.test").as_deref(),
        Some(&b"dir-value"[..])
    );
    env.run(&["volume", "rm", "links"]).expect_success();
    env.finish();
}
