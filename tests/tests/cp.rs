//! `hind cp`: files and directories out of and into containers, stopped
//! and running, with Docker's rules for where they land (`SRC/.` copies the
//! contents, an existing DEST dir receives SRC under its name), a tar on
//! stdout or stdin with `-`, owners kept only with `-a`, `-L` following
//! only the top-level SRC, and the CVE-2019-14271 class: a container's
//! symlinks (`/escape -> /`, `/out -> /etc`, a link to the host path of a
//! canary) resolve inside the container, never on the host, in either
//! direction, and a symlink in a copied tree arrives as a symlink. A
//! stopped container's volumes and binds are copied into and out of as a
//! running one's are: a read-only one refuses a copy in, and a volume on an
//! image's `/data -> /etc` link gets the copy, never the host's /etc.
//! Errors are one line naming the container or path. Nothing stays
//! mounted.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{chown, symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use hind_tests::detach::{rm_f, run_detached, wait_for_log, SERVE};
use hind_tests::image::build_busybox_rootfs;
use hind_tests::oci::sha256_digest;
use hind_tests::{bb, snapshot, Output, TestEnv};

fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// `hind cp ARGS`.
fn cp(env: &TestEnv, args: &[&str]) -> Output {
    let mut all = vec!["cp"];
    all.extend_from_slice(args);
    env.run(&all)
}

/// `hind cp ARGS` that must succeed.
#[track_caller]
fn cp_ok(env: &TestEnv, args: &[&str]) {
    let out = cp(env, args);
    out.expect_success();
    assert_eq!(out.stderr, "", "cp printed to stderr:\n{out}");
}

/// `hind cp ARGS` that must fail with exit 1 and one error line naming
/// every one of `names`.
#[track_caller]
fn cp_err(env: &TestEnv, args: &[&str], names: &[&str]) -> Output {
    let out = cp(env, args);
    out.expect_code(1);
    out.expect_one_error_line(names);
    out
}

/// `hind cp ARGS` with stdout captured as bytes (a tar).
#[track_caller]
fn cp_stdout(env: &TestEnv, args: &[&str]) -> Vec<u8> {
    let out = env
        .hind()
        .arg("cp")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run hind cp");
    assert!(
        out.status.success(),
        "hind cp {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Entries of a tar: name -> (type, mode, uid, gid, data or link target).
fn tar_entries(data: &[u8]) -> BTreeMap<String, (char, u32, u64, u64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut ar = tar::Archive::new(data);
    for e in ar.entries().expect("read tar") {
        let mut e = e.expect("tar entry");
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let h = e.header().clone();
        let body = match e.link_name_bytes() {
            Some(l) => l.into_owned(),
            None => {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut v).expect("tar data");
                v
            }
        };
        out.insert(
            name,
            (
                h.entry_type().as_byte() as char,
                h.mode().unwrap_or(0) & 0o7777,
                h.uid().unwrap_or(0),
                h.gid().unwrap_or(0),
                body,
            ),
        );
    }
    out
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn link(p: &Path) -> PathBuf {
    fs::read_link(p).unwrap_or_else(|e| panic!("{} is not a symlink: {e}", p.display()))
}

/// `(uid, gid, mode & 07777)` of `p`, not following a symlink.
fn owner_mode(p: &Path) -> (u32, u32, u32) {
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

/// The container's upper dir: where a copy into a stopped container lands.
fn upper(env: &TestEnv, name: &str) -> PathBuf {
    let out = env.run(&["inspect", "-f", "{{.Id}}", name]);
    out.expect_success();
    env.container_dir(out.stdout.trim()).join("upper")
}

/// Runs a container `name` to completion with `script`.
#[track_caller]
fn run_script(env: &TestEnv, name: &str, script: &str) {
    env.run(&["run", "--name", name, bb(), "sh", "-c", script])
        .expect_success();
}

/// Starts a detached container `name` that first runs `setup`, then
/// serves until stopped.
#[track_caller]
fn run_serving(env: &TestEnv, name: &str, setup: &str) {
    let script = format!("{setup}; {SERVE}");
    run_detached(env, &["--name", name, bb(), "sh", "-c", &script]);
    wait_for_log(env, name, "ready", Duration::from_secs(30));
}

/// `hind exec NAME sh -c SCRIPT`; returns stdout.
#[track_caller]
fn exec(env: &TestEnv, name: &str, script: &str) -> String {
    let out = env.run(&["exec", name, "sh", "-c", script]);
    out.expect_success();
    out.stdout
}

/// A host dir with a file the tests must never see read or changed.
struct Canary {
    dir: PathBuf,
    before: BTreeMap<PathBuf, String>,
}

impl Canary {
    fn new(env: &TestEnv) -> Canary {
        let dir = env.scratch().join("canary");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("secret"), "host secret\n").unwrap();
        let before = snapshot(&dir);
        Canary { dir, before }
    }

    fn path(&self) -> &str {
        s(&self.dir)
    }

    #[track_caller]
    fn check(&self) {
        assert_eq!(
            snapshot(&self.dir),
            self.before,
            "the host canary {} changed",
            self.dir.display()
        );
    }
}

const DATA: &str = "mkdir -p /data/sub && echo hello > /data/f && chmod 640 /data/f \
                    && echo deep > /data/sub/g && ln -s / /data/root";

/// Checks a host copy of the container's `/data` at `dir`.
#[track_caller]
fn check_data(dir: &Path) {
    assert_eq!(read(&dir.join("f")), "hello\n");
    assert_eq!(owner_mode(&dir.join("f")).2, 0o640);
    assert_eq!(read(&dir.join("sub/g")), "deep\n");
    // A link out of the tree stays a link, the same one.
    assert_eq!(link(&dir.join("root")), Path::new("/"));
}

fn copy_out(env: &TestEnv, c: &str) {
    let sc = env.scratch();
    // A file to a new name, a file into a dir, a file over a file.
    cp_ok(env, &[&format!("{c}:/data/f"), s(&sc.join("f1"))]);
    assert_eq!(read(&sc.join("f1")), "hello\n");
    fs::create_dir(sc.join("into")).unwrap();
    cp_ok(env, &[&format!("{c}:/data/f"), s(&sc.join("into"))]);
    assert_eq!(read(&sc.join("into/f")), "hello\n");
    fs::write(sc.join("over"), "old old old\n").unwrap();
    cp_ok(env, &[&format!("{c}:data/sub/g"), s(&sc.join("over"))]);
    assert_eq!(read(&sc.join("over")), "deep\n");
    // A dir to a new name becomes that dir; into an existing dir, it keeps
    // its name; `/.` copies the contents.
    cp_ok(env, &[&format!("{c}:/data"), s(&sc.join("new"))]);
    check_data(&sc.join("new"));
    fs::create_dir(sc.join("exists")).unwrap();
    cp_ok(env, &[&format!("{c}:/data/"), s(&sc.join("exists"))]);
    check_data(&sc.join("exists/data"));
    fs::create_dir(sc.join("contents")).unwrap();
    cp_ok(env, &[&format!("{c}:/data/."), s(&sc.join("contents"))]);
    check_data(&sc.join("contents"));
    assert!(!sc.join("contents/data").exists());
    // Docker's refusals.
    cp_err(
        env,
        &[&format!("{c}:/data"), s(&sc.join("over"))],
        &["over", "cannot copy"],
    );
    cp_err(
        env,
        &[
            &format!("{c}:/data/f"),
            &format!("{}/", s(&sc.join("nodir"))),
        ],
        &["nodir", "must exist"],
    );
    cp_err(
        env,
        &[&format!("{c}:/data/f/"), s(&sc.join("x"))],
        &[&format!("{c}:/data/f"), "not a directory"],
    );
}

#[test]
fn copy_out_of_a_stopped_container() {
    let env = TestEnv::new("cp_out_stopped");
    run_script(&env, "c1", DATA);
    copy_out(&env, "c1");
    env.run(&["rm", "c1"]).expect_success();
    env.finish();
}

#[test]
fn copy_out_of_a_running_container() {
    let env = TestEnv::new("cp_out_running");
    run_serving(&env, "r1", DATA);
    copy_out(&env, "r1");
    // What only the running container has: a file written after start.
    exec(&env, "r1", "echo live > /tmp/live");
    cp_ok(&env, &["r1:/tmp/live", s(&env.scratch().join("live"))]);
    assert_eq!(read(&env.scratch().join("live")), "live\n");
    rm_f(&env, &["r1"]);
    env.finish();
}

/// Host files to copy in: `hello`, `d/sub/g`, `c/x`.
fn host_tree(env: &TestEnv) {
    let sc = env.scratch();
    fs::write(sc.join("hello"), "hi\n").unwrap();
    fs::create_dir_all(sc.join("d/sub")).unwrap();
    fs::set_permissions(sc.join("d"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::write(sc.join("d/sub/g"), "g\n").unwrap();
    symlink("/", sc.join("d/root")).unwrap();
    fs::create_dir_all(sc.join("c")).unwrap();
    fs::write(sc.join("c/x"), "x\n").unwrap();
}

const SHOW: &str = "cat /etc/hello /in/sub/g /tmp/x; readlink /in/root; stat -c %a /in";
const SHOWN: &str = "hi\ng\nx\n/\n750\n";

fn copy_in(env: &TestEnv, c: &str) {
    let sc = env.scratch();
    cp_ok(env, &[s(&sc.join("hello")), &format!("{c}:/etc/")]);
    cp_ok(env, &[s(&sc.join("d")), &format!("{c}:/in")]);
    cp_ok(
        env,
        &[&format!("{}/.", s(&sc.join("c"))), &format!("{c}:tmp")],
    );
    // Into an existing dir under its own name, and over an existing file.
    cp_ok(env, &[s(&sc.join("d")), &format!("{c}:/tmp")]);
    cp_ok(env, &[s(&sc.join("hello")), &format!("{c}:/etc/passwd2")]);
    cp_ok(env, &[s(&sc.join("c/x")), &format!("{c}:/etc/passwd2")]);
    cp_err(
        env,
        &[s(&sc.join("d")), &format!("{c}:/etc/passwd2")],
        &["passwd2", "cannot copy"],
    );
    cp_err(
        env,
        &[s(&sc.join("hello")), &format!("{c}:/nodir/x")],
        &[&format!("{c}:/nodir/x")],
    );
}

#[test]
fn copy_into_a_stopped_container() {
    let env = TestEnv::new("cp_in_stopped");
    host_tree(&env);
    let script = format!("{SHOW}; cat /tmp/d/sub/g /etc/passwd2; true");
    run_script(&env, "c2", &script);
    copy_in(&env, "c2");
    // The changes are the container's: in its upper dir, and what it sees
    // when started again.
    let up = upper(&env, "c2");
    assert_eq!(read(&up.join("etc/hello")), "hi\n");
    assert_eq!(read(&up.join("in/sub/g")), "g\n");
    let out = env.run(&["start", "-a", "c2"]);
    out.expect_success();
    assert_eq!(out.stdout, format!("{SHOWN}g\nx\n"), "{out}");
    env.run(&["rm", "c2"]).expect_success();
    env.finish();
}

#[test]
fn copy_into_a_running_container() {
    let env = TestEnv::new("cp_in_running");
    host_tree(&env);
    run_serving(&env, "r2", "true");
    copy_in(&env, "r2");
    assert_eq!(exec(&env, "r2", SHOW), SHOWN);
    assert_eq!(exec(&env, "r2", "cat /tmp/d/sub/g /etc/passwd2"), "g\nx\n");
    rm_f(&env, &["r2"]);
    env.finish();
}

/// A container on the host root `/` (its upper dir is inside its image
/// dir): copies go to and come from its own layer, never the host's files.
#[test]
fn host_root_container_copies_stay_in_its_layer() {
    let env = TestEnv::new("cp_host_root");
    let probe = format!("/tmp/hind-cp-host-root-{}", std::process::id());
    let script = format!("echo mine > {probe}.out; cat {probe}.in 2>/dev/null; true");
    env.run(&["run", "--name", "hr", "/", "sh", "-c", &script])
        .expect_success();
    assert!(!Path::new(&format!("{probe}.out")).exists());
    let sc = env.scratch();
    cp_ok(&env, &[&format!("hr:{probe}.out"), s(&sc.join("out"))]);
    assert_eq!(read(&sc.join("out")), "mine\n");
    fs::write(sc.join("in"), "theirs\n").unwrap();
    cp_ok(&env, &[s(&sc.join("in")), &format!("hr:{probe}.in")]);
    assert!(!Path::new(&format!("{probe}.in")).exists());
    let out = env.run(&["start", "-a", "hr"]);
    out.expect_success();
    assert_eq!(out.stdout, "theirs\n", "{out}");
    env.run(&["rm", "hr"]).expect_success();
    env.finish();
}

#[test]
fn tar_on_stdout_and_stdin() {
    let env = TestEnv::new("cp_tar");
    run_script(
        &env,
        "t1",
        &format!("{DATA}; cat /tmp/a /tmp/b/c 2>&1; true"),
    );
    let t = tar_entries(&cp_stdout(&env, &["t1:/data", "-"]));
    let names: Vec<&str> = t.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["data/", "data/f", "data/root", "data/sub/", "data/sub/g"]
    );
    assert_eq!(t["data/f"].4, b"hello\n");
    assert_eq!(t["data/f"].1, 0o640);
    assert_eq!((t["data/root"].0, &t["data/root"].4[..]), ('2', &b"/"[..]));
    let t = tar_entries(&cp_stdout(&env, &["t1:/data/.", "-"]));
    let names: Vec<&str> = t.keys().map(String::as_str).collect();
    assert_eq!(names, ["f", "root", "sub/", "sub/g"]);
    let t = tar_entries(&cp_stdout(&env, &["t1:/data/sub/g", "-"]));
    assert_eq!(t.keys().collect::<Vec<_>>(), ["g"]);

    // A tar on stdin unpacks into an existing directory.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o644);
    h.set_size(2);
    h.set_uid(4321);
    h.set_gid(0);
    h.set_mtime(1_500_000_000);
    b.append_data(&mut h.clone(), "a", &b"A\n"[..]).unwrap();
    b.append_data(&mut h, "b/c", &b"C\n"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let out = env.run_with_stdin(&["cp", "-", "t1:/tmp"], &tar);
    out.expect_success();
    let up = upper(&env, "t1");
    assert_eq!(read(&up.join("tmp/b/c")), "C\n");
    // Without -a, the copies are root's.
    assert_eq!(owner_mode(&up.join("tmp/a")), (0, 0, 0o644));
    let out = env.run_with_stdin(&["cp", "-a", "-", "t1:/tmp"], &tar);
    out.expect_success();
    assert_eq!(owner_mode(&up.join("tmp/a")).0, 4321);
    let out = env.run(&["start", "-a", "t1"]);
    assert!(out.stdout.ends_with("A\nC\n"), "{out}");
    let out = env.run_with_stdin(&["cp", "-", "t1:/data/f"], &tar);
    out.expect_code(1);
    out.expect_one_error_line(&["t1:/data/f", "directory"]);
    env.run(&["rm", "t1"]).expect_success();
    env.finish();
}

#[test]
fn archive_mode_keeps_owners_and_set_id_bits() {
    let env = TestEnv::new("cp_archive");
    let sc = env.scratch();
    let f = sc.join("suid");
    fs::write(&f, "#!/bin/sh\n").unwrap();
    chown(&f, Some(1234), Some(5678)).unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o4755)).unwrap();
    run_script(
        &env,
        "a1",
        "echo x > /tmp/o && chown 1000:1000 /tmp/o && chmod 6755 /tmp/o",
    );
    let up = upper(&env, "a1");
    // In: root's without -a (and no set-id bits), the source's with it.
    cp_ok(&env, &[s(&f), "a1:/tmp/plain"]);
    assert_eq!(owner_mode(&up.join("tmp/plain")), (0, 0, 0o755));
    cp_ok(&env, &["-a", s(&f), "a1:/tmp/kept"]);
    assert_eq!(owner_mode(&up.join("tmp/kept")), (1234, 5678, 0o4755));
    // Out: the caller's (root's) without -a, the container's with it.
    cp_ok(&env, &["a1:/tmp/o", s(&sc.join("o-plain"))]);
    assert_eq!(owner_mode(&sc.join("o-plain")), (0, 0, 0o755));
    cp_ok(&env, &["-a", "a1:/tmp/o", s(&sc.join("o-kept"))]);
    assert_eq!(owner_mode(&sc.join("o-kept")), (1000, 1000, 0o6755));
    env.run(&["rm", "a1"]).expect_success();
    env.finish();
}

#[test]
fn follow_link_follows_only_the_source_inside_the_container() {
    let env = TestEnv::new("cp_follow");
    let sc = env.scratch();
    run_script(
        &env,
        "l1",
        &format!("{DATA} && ln -s /data /link && ln -s data/f /flink"),
    );
    cp_ok(&env, &["l1:/link", s(&sc.join("plain"))]);
    assert_eq!(link(&sc.join("plain")), Path::new("/data"));
    cp_ok(&env, &["-L", "l1:/link", s(&sc.join("followed"))]);
    check_data(&sc.join("followed"));
    fs::create_dir(sc.join("into")).unwrap();
    cp_ok(&env, &["-L", "l1:/flink", s(&sc.join("into"))]);
    // Docker's naming: the link's name, the target's content.
    assert_eq!(read(&sc.join("into/flink")), "hello\n");
    // A trailing `/` means the directory the link leads to.
    cp_ok(&env, &["l1:/link/", s(&sc.join("slash"))]);
    check_data(&sc.join("slash"));
    env.run(&["rm", "l1"]).expect_success();
    env.finish();
}

/// Links in the container that point at the host: `/escape -> /`, a link
/// to the canary's host path, and a file link to the canary's secret.
fn evil_links(canary: &str) -> String {
    format!(
        "ln -s / /escape && ln -s /etc /out && ln -s {canary} /hostlink \
         && ln -s {canary}/secret /filelink"
    )
}

fn no_escape_out(env: &TestEnv, c: &str, canary: &Canary) {
    let sc = env.scratch();
    let dest = |n: &str| sc.join(format!("{c}-{n}"));
    // Where the container has its own copy of the canary's path, reads go
    // to it.
    cp_ok(env, &[&format!("{c}:/hostlink/secret"), s(&dest("a"))]);
    assert_eq!(read(&dest("a")), "container secret\n");
    let via_root = format!("{c}:/escape/{}/secret", canary.path());
    cp_ok(env, &[&via_root, s(&dest("b"))]);
    assert_eq!(read(&dest("b")), "container secret\n");
    cp_ok(env, &["-L", &format!("{c}:/filelink"), s(&dest("c"))]);
    assert_eq!(read(&dest("c")), "container secret\n");
    cp_ok(env, &["-L", &format!("{c}:/hostlink"), s(&dest("d"))]);
    assert_eq!(read(&dest("d/secret")), "container secret\n");
    let tar = cp_stdout(env, &[&format!("{c}:/escape/etc/passwd"), "-"]);
    assert!(!tar.windows(11).any(|w| w == b"host secret"));
    // Not followed, a link arrives as the same link.
    cp_ok(env, &[&format!("{c}:/filelink"), s(&dest("e"))]);
    assert_eq!(link(&dest("e")), canary.dir.join("secret"));
    // Copying onto that link again replaces the link: it is not followed
    // to the host file it names.
    cp_ok(env, &[&format!("{c}:/hostlink/secret"), s(&dest("e"))]);
    assert_eq!(read(&dest("e")), "container secret\n");
    assert!(!fs::symlink_metadata(dest("e")).unwrap().is_symlink());
    // Where the container has nothing there, there is nothing to copy.
    cp_err(
        env,
        &[&format!("{c}:/hostlink/only-on-host"), s(&dest("f"))],
        &["only-on-host", "no such file"],
    );
    assert!(!dest("f").exists());
    canary.check();
}

#[test]
fn copy_out_never_follows_a_container_symlink_to_the_host() {
    let env = TestEnv::new("cp_cve_out");
    let canary = Canary::new(&env);
    fs::write(canary.dir.join("only-on-host"), "host only\n").unwrap();
    let canary = Canary::new(&env);
    let setup = format!(
        "{} && mkdir -p {p} && echo 'container secret' > {p}/secret",
        evil_links(canary.path()),
        p = canary.path()
    );
    run_script(&env, "e1", &setup);
    no_escape_out(&env, "e1", &canary);
    run_serving(&env, "e2", &setup);
    no_escape_out(&env, "e2", &canary);
    rm_f(&env, &["e2"]);
    env.run(&["rm", "e1"]).expect_success();
    env.finish();
}

fn no_escape_in(env: &TestEnv, c: &str, canary: &Canary, probe: &str) {
    let sc = env.scratch();
    fs::write(sc.join("file"), "from host\n").unwrap();
    fs::create_dir_all(sc.join("dir")).unwrap();
    fs::write(sc.join("dir/inner"), "inner\n").unwrap();
    // `/out -> /etc` is the container's /etc; the host's gets nothing.
    let host_etc = Path::new("/etc").join(probe);
    cp_ok(env, &[s(&sc.join("file")), &format!("{c}:/out/{probe}")]);
    assert!(!host_etc.exists(), "{} was written", host_etc.display());
    cp_ok(env, &[s(&sc.join("dir")), &format!("{c}:/escape/")]);
    // The canary's path does not exist in the container: no copy, and
    // nothing on the host either.
    cp_err(
        env,
        &[s(&sc.join("file")), &format!("{c}:/hostlink/new")],
        &[&format!("{c}:/hostlink/new")],
    );
    cp_err(
        env,
        &[s(&sc.join("file")), &format!("{c}:/filelink")],
        &[&format!("{c}:/filelink")],
    );
    // A hostile tar: a link to the canary's host path, then a file below
    // it, and a name with `..`.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, "evil", canary.path()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(6);
    b.append_data(&mut h, "evil/pwned", &b"pwned\n"[..])
        .unwrap();
    let tar = b.into_inner().unwrap();
    let out = env.run_with_stdin(&["cp", "-", &format!("{c}:/tmp")], &tar);
    assert_ne!(out.code, 0, "{out}");
    let mut dotdot = vec![0u8; 512];
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(6);
    h.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../pwned2");
    h.set_cksum();
    dotdot[..512].copy_from_slice(h.as_bytes());
    dotdot.extend_from_slice(b"pwned\n");
    dotdot.resize(512 * 4, 0);
    let out = env.run_with_stdin(&["cp", "-", &format!("{c}:/tmp")], &dotdot);
    assert_ne!(out.code, 0, "{out}");
    canary.check();
}

#[test]
fn copy_in_never_writes_through_a_container_symlink_to_the_host() {
    let env = TestEnv::new("cp_cve_in");
    let canary = Canary::new(&env);
    let probe = format!("hind-cp-probe-{}", std::process::id());
    let show = format!("cat /etc/{probe} /dir/inner; ls /dir");
    run_script(
        &env,
        "i1",
        &format!("{} && {show} 2>/dev/null; true", evil_links(canary.path())),
    );
    no_escape_in(&env, "i1", &canary, &probe);
    let up = upper(&env, "i1");
    assert_eq!(read(&up.join("etc").join(&probe)), "from host\n");
    assert_eq!(read(&up.join("dir/inner")), "inner\n");
    assert!(!up.join("tmp/evil/pwned").exists());

    run_serving(&env, "i2", &evil_links(canary.path()));
    no_escape_in(&env, "i2", &canary, &probe);
    assert_eq!(exec(&env, "i2", &show), "from host\ninner\ninner\n");
    // Once the container has the canary's path itself, copies land there.
    exec(&env, "i2", &format!("mkdir -p {}", canary.path()));
    cp_ok(&env, &[s(&env.scratch().join("file")), "i2:/hostlink/new"]);
    let got = exec(&env, "i2", &format!("cat {}/new", canary.path()));
    assert_eq!(got, "from host\n");
    canary.check();
    rm_f(&env, &["i2"]);
    env.run(&["rm", "i1"]).expect_success();
    env.finish();
}

#[test]
fn copy_out_never_writes_through_a_host_symlink_in_dest() {
    let env = TestEnv::new("cp_dest_links");
    let canary = Canary::new(&env);
    let sc = env.scratch();
    run_script(
        &env,
        "h1",
        "mkdir -p /data/sub && echo pwned > /data/sub/secret",
    );
    // DEST holds a link where the container's tree has a directory: the
    // copy refuses rather than write into what the link points at.
    fs::create_dir(sc.join("dest")).unwrap();
    symlink(&canary.dir, sc.join("dest/sub")).unwrap();
    let out = cp(&env, &["h1:/data/.", s(&sc.join("dest"))]);
    out.expect_code(1);
    out.expect_one_error_line(&["sub"]);
    // DEST itself a link: to a file, the link is replaced; to a directory,
    // only `DEST/` goes into it.
    symlink(canary.dir.join("secret"), sc.join("filelink")).unwrap();
    cp_ok(&env, &["h1:/data/sub/secret", s(&sc.join("filelink"))]);
    assert_eq!(read(&sc.join("filelink")), "pwned\n");
    assert!(!fs::symlink_metadata(sc.join("filelink"))
        .unwrap()
        .is_symlink());
    symlink(&canary.dir, sc.join("dirlink")).unwrap();
    cp_err(
        &env,
        &["h1:/data/sub/secret", s(&sc.join("dirlink"))],
        &["dirlink", "symlink"],
    );
    fs::create_dir(sc.join("real")).unwrap();
    symlink(sc.join("real"), sc.join("reallink")).unwrap();
    let slash = format!("{}/", s(&sc.join("reallink")));
    cp_ok(&env, &["h1:/data/sub/secret", &slash]);
    assert_eq!(read(&sc.join("real/secret")), "pwned\n");
    canary.check();
    env.run(&["rm", "h1"]).expect_success();
    env.finish();
}

#[test]
fn errors_name_what_is_wrong() {
    let env = TestEnv::new("cp_errors");
    let sc = env.scratch();
    fs::write(sc.join("file"), "x\n").unwrap();
    run_script(&env, "x1", "true");
    let out = sc.join("out");
    let here = s(&out);
    cp_err(&env, &["nosuch:/etc/passwd", here], &["nosuch"]);
    cp_err(&env, &[s(&sc.join("file")), "nosuch:/tmp"], &["nosuch"]);
    cp_err(&env, &["x1:/no/such/file", here], &["x1:/no/such/file"]);
    cp_err(&env, &["x1:/etc/nope", here], &["x1:/etc/nope"]);
    let missing = sc.join("missing");
    cp_err(&env, &[s(&missing), "x1:/tmp"], &[s(&missing)]);
    cp_err(&env, &["x1:/etc/passwd", s(&sc.join("a/b/c"))], &["a/b/c"]);
    cp_err(&env, &["x1:/etc", "x1:/tmp"], &["between containers"]);
    cp_err(&env, &[s(&sc.join("file")), here], &["CONTAINER:PATH"]);
    assert!(!Path::new(here).exists());
    env.run(&["rm", "x1"]).expect_success();
    env.finish();
}

/// A named volume's data dir on the host.
fn volume_data(env: &TestEnv, name: &str) -> PathBuf {
    env.root().join("volumes").join(name).join("_data")
}

/// Runs a container `name` to completion with `mounts` (`-v` values).
#[track_caller]
fn run_with_mounts(env: &TestEnv, name: &str, mounts: &[&str], image: &str) {
    let mut args = vec!["run", "--name", name];
    for m in mounts {
        args.extend_from_slice(&["-v", m]);
    }
    args.extend_from_slice(&[image, "true"]);
    env.run(&args).expect_success();
}

#[test]
fn copy_into_a_stopped_containers_volume_and_bind() {
    let env = TestEnv::new("cp_in_volume");
    let sc = env.scratch();
    fs::write(sc.join("hello"), "hi\n").unwrap();
    fs::create_dir_all(sc.join("d/sub")).unwrap();
    fs::write(sc.join("d/sub/g"), "g\n").unwrap();
    let bind = sc.join("bind");
    fs::create_dir(&bind).unwrap();
    let bind_mount = format!("{}:/bound", s(&bind));
    run_with_mounts(
        &env,
        "v1",
        &["store:/data", &bind_mount, "fresh:/new/vol"],
        bb(),
    );
    cp_ok(&env, &[s(&sc.join("hello")), "v1:/data/"]);
    cp_ok(&env, &[s(&sc.join("d")), "v1:/data/d"]);
    cp_ok(&env, &[s(&sc.join("hello")), "v1:/bound/hello"]);
    // In the volume and the bind, not in the container's layer under them.
    let data = volume_data(&env, "store");
    assert_eq!(read(&data.join("hello")), "hi\n");
    assert_eq!(read(&data.join("d/sub/g")), "g\n");
    assert_eq!(read(&bind.join("hello")), "hi\n");
    let up = upper(&env, "v1");
    assert!(!up.join("data/hello").exists());
    assert!(!up.join("bound/hello").exists());
    // A new container with the volume sees the copies.
    let out = env.run(&[
        "run",
        "--rm",
        "-v",
        "store:/data",
        bb(),
        "cat",
        "/data/hello",
        "/data/d/sub/g",
    ]);
    out.expect_success();
    assert_eq!(out.stdout, "hi\ng\n", "{out}");
    // A mount point missing from the layer (as before a first start) is
    // made there, and the copy goes into the volume over it.
    fs::remove_dir_all(up.join("new")).unwrap();
    cp_ok(&env, &[s(&sc.join("hello")), "v1:/new/vol/"]);
    assert_eq!(read(&volume_data(&env, "fresh").join("hello")), "hi\n");
    assert!(up.join("new/vol").is_dir());
    assert!(!up.join("new/vol/hello").exists());
    let out = env.run(&["start", "-a", "v1"]);
    out.expect_success();
    env.run(&["rm", "v1"]).expect_success();
    env.finish();
}

#[test]
fn copy_out_of_a_stopped_containers_volume_and_bind() {
    let env = TestEnv::new("cp_out_volume");
    let sc = env.scratch();
    let bind = sc.join("bind");
    fs::create_dir(&bind).unwrap();
    fs::write(bind.join("b"), "from the bind\n").unwrap();
    let bind_mount = format!("{}:/bound:ro", s(&bind));
    env.run(&[
        "run",
        "--name",
        "o1",
        "-v",
        "store:/data",
        "-v",
        &bind_mount,
        bb(),
        "sh",
        "-c",
        DATA,
    ])
    .expect_success();
    // Written on the host after the container stopped: only the volume
    // has it.
    fs::write(volume_data(&env, "store").join("late"), "late\n").unwrap();
    copy_out(&env, "o1");
    cp_ok(&env, &["o1:/data/late", s(&sc.join("late"))]);
    assert_eq!(read(&sc.join("late")), "late\n");
    cp_ok(&env, &["o1:/bound/b", s(&sc.join("b"))]);
    assert_eq!(read(&sc.join("b")), "from the bind\n");
    let t = tar_entries(&cp_stdout(&env, &["o1:/bound/.", "-"]));
    assert_eq!(t.keys().collect::<Vec<_>>(), ["b"]);
    env.run(&["rm", "o1"]).expect_success();
    env.finish();
}

#[test]
fn a_read_only_bind_refuses_a_copy_in() {
    let env = TestEnv::new("cp_in_ro");
    let sc = env.scratch();
    fs::write(sc.join("hello"), "hi\n").unwrap();
    let bind = sc.join("bind");
    fs::create_dir_all(bind.join("sub")).unwrap();
    fs::write(bind.join("hello"), "host file\n").unwrap();
    let before = snapshot(&bind);
    let ro = format!("{}:/ro:ro", s(&bind));
    run_with_mounts(&env, "r1", &[&ro], bb());
    for dest in ["r1:/ro/", "r1:/ro/hello", "r1:/ro/sub/new", "r1:ro/../ro"] {
        let out = cp(&env, &[s(&sc.join("hello")), dest]);
        out.expect_code(1);
        out.expect_one_error_line(&["r1:/ro", "read-only"]);
    }
    let out = env.run_with_stdin(&["cp", "-", "r1:/ro"], &[0u8; 1024]);
    out.expect_code(1);
    out.expect_one_error_line(&["r1:/ro", "read-only"]);
    assert_eq!(snapshot(&bind), before, "the read-only bind changed");
    // Reading it still works.
    cp_ok(&env, &["r1:/ro/hello", s(&sc.join("out"))]);
    assert_eq!(read(&sc.join("out")), "host file\n");
    // Reached through a link in the container, the mount refuses too.
    symlink("/ro", upper(&env, "r1").join("link")).unwrap();
    let out = cp(&env, &[s(&sc.join("hello")), "r1:/link/"]);
    out.expect_code(1);
    out.expect_one_error_line(&["r1:/link", "read-only"]);
    assert_eq!(snapshot(&bind), before, "the read-only bind changed");
    env.run(&["rm", "r1"]).expect_success();
    env.finish();
}

/// The image's /data is a link to /etc: the volume is on the container's
/// /etc, and a copy into the stopped container goes there, never to the
/// host's /etc.
#[test]
fn copy_into_a_volume_on_a_link_to_etc_stays_inside() {
    let env = TestEnv::new("cp_in_volume_link");
    let sc = env.scratch();
    let img = sc.join("img");
    build_busybox_rootfs(&img).expect("build busybox root fs");
    symlink("/etc", img.join("data")).unwrap();
    let hash = || sha256_digest(&fs::read("/etc/passwd").expect("read /etc/passwd"));
    let host_passwd = hash();
    let probe = format!("hind-cp-link-{}", std::process::id());
    fs::write(sc.join(&probe), "pwned\n").unwrap();
    fs::write(sc.join("passwd"), "pwned\n").unwrap();
    let bind = sc.join("bind");
    fs::create_dir(&bind).unwrap();
    for (name, mount) in [
        ("l1", "etcvol:/data".to_string()),
        ("l2", format!("{}:/data", s(&bind))),
    ] {
        run_with_mounts(&env, name, &[&mount], s(&img));
        cp_ok(&env, &[s(&sc.join(&probe)), &format!("{name}:/data/")]);
        cp_ok(
            &env,
            &[s(&sc.join("passwd")), &format!("{name}:/data/passwd")],
        );
        cp_ok(
            &env,
            &[s(&sc.join(&probe)), &format!("{name}:/etc/{probe}.2")],
        );
    }
    let vol = volume_data(&env, "etcvol");
    for dir in [&vol, &bind] {
        assert_eq!(read(&dir.join(&probe)), "pwned\n");
        assert_eq!(read(&dir.join("passwd")), "pwned\n");
        assert_eq!(read(&dir.join(format!("{probe}.2"))), "pwned\n");
    }
    assert!(
        !Path::new("/etc").join(&probe).exists(),
        "written into the host's /etc"
    );
    assert!(!Path::new("/etc").join(format!("{probe}.2")).exists());
    assert_eq!(hash(), host_passwd, "the host's /etc/passwd changed");
    env.run(&["rm", "l1", "l2"]).expect_success();
    env.finish();
}

/// A `--no-overlay` container (its root a plain directory): its volume is
/// copied into and out of while it is stopped, and the image dir under the
/// mount point gets nothing.
#[test]
fn no_overlay_container_volume() {
    let env = TestEnv::new("cp_no_overlay_volume");
    let sc = env.scratch();
    let img = sc.join("img");
    build_busybox_rootfs(&img).expect("build busybox root fs");
    fs::create_dir(img.join("data")).unwrap();
    fs::write(sc.join("hello"), "hi\n").unwrap();
    env.run(&[
        "run",
        "--name",
        "n1",
        "--no-overlay",
        "-v",
        "nvol:/data",
        s(&img),
        "true",
    ])
    .expect_success();
    cp_ok(&env, &[s(&sc.join("hello")), "n1:/data/"]);
    assert_eq!(read(&volume_data(&env, "nvol").join("hello")), "hi\n");
    assert!(!img.join("data/hello").exists());
    cp_ok(&env, &["n1:/data/hello", s(&sc.join("back"))]);
    assert_eq!(read(&sc.join("back")), "hi\n");
    env.run(&["rm", "n1"]).expect_success();
    env.finish();
}
