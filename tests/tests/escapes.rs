//! The container escapes that hit runc and Docker, each tried for real and
//! checked from both sides: inside (the attack fails) and on the host (the
//! thing it aimed at is unchanged).
//!
//! - CVE-2019-5736: a container process reopens `/proc/PID/exe` of a
//!   process hind runs inside it (init before its exec, the `hind exec`
//!   helper's child) and writes to hind's binary through it;
//! - CVE-2024-21626: a host fd or a host working dir reaching the
//!   container (`-w /proc/self/fd/N`);
//! - CVE-2021-30465 and CVE-2019-16884: mount destinations that are
//!   symlinks out of the root, procfs or sysfs on a symlink or a file;
//! - layers whose entries climb out of the store;
//! - the container touching the host: processes, modules, mounts, hostname,
//!   clock, /proc/kcore and the other masked or read-only /proc and /sys
//!   paths.
//!
//! The CVE-2019-5736 tests run copies of the binaries from the test's own
//! dir, so a regression damages only those copies, which the test hashes.

use std::collections::BTreeSet;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use hind_tests::detach::{cgroup_pids, inspect, rm_f};
use hind_tests::image::build_busybox_rootfs;
use hind_tests::oci::{
    oci_archive, sha256_digest, Compression, Entry, ImageBuilder, Kind, Layer, Layout, REF_NAME,
};
use hind_tests::{bb, process, snapshot, Output, Running, TestEnv};

const LONG: Duration = Duration::from_secs(30);

fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

// ---- private binaries and images -------------------------------------------

/// `hind`, `hind-shim` and `hind-init` copied into the test's scratch dir.
/// `hind` finds the shim next to itself and the shim finds hind-init next
/// to itself, so everything these start runs the copies.
struct Bins {
    dir: PathBuf,
}

const BINARIES: [&str; 3] = ["hind", "hind-shim", "hind-init"];

impl Bins {
    fn copy(env: &TestEnv) -> Bins {
        let dir = env.scratch().join("bin");
        fs::create_dir_all(&dir).expect("create bin dir");
        for b in BINARIES {
            let src = hind_tests::bin_dir().join(b);
            fs::copy(&src, dir.join(b))
                .unwrap_or_else(|e| panic!("copy {}: {e} (cargo build --bins?)", src.display()));
        }
        Bins { dir }
    }

    /// sha256 of each binary, by name.
    fn digests(&self) -> Vec<(String, String)> {
        BINARIES
            .iter()
            .map(|b| {
                let data = fs::read(self.dir.join(b)).expect("read binary");
                (b.to_string(), sha256_digest(&data))
            })
            .collect()
    }

    /// The copied `hind` with the test's root and cgroup parent.
    fn hind(&self, env: &TestEnv, args: &[&str]) -> Command {
        let mut c = Command::new(self.dir.join("hind"));
        c.arg("--root")
            .arg(env.root())
            .env("HIND_CGROUP_PARENT", env.cgroup_parent())
            // As TestEnv::hind: no bridge in the host's network namespace.
            .env("HIND_NETWORK", "none")
            .env_remove("HIND_ROOT")
            .args(args);
        c
    }

    fn run(&self, env: &TestEnv, args: &[&str]) -> Output {
        process::run(self.hind(env, args), b"", hind_tests::default_timeout())
    }
}

/// A private copy of the busybox root fs at `<scratch>/<name>`, for tests
/// that put hostile things into it.
fn private_image(env: &TestEnv, name: &str) -> PathBuf {
    let dir = env.scratch().join(name);
    build_busybox_rootfs(&dir).expect("build busybox root fs");
    dir
}

#[track_caller]
fn write_script(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod script");
}

/// hind-init's ELF interpreter and libraries as `ldd` lists them.
fn dynamic_deps(bin: &Path) -> (Option<PathBuf>, Vec<PathBuf>) {
    let out = Command::new("ldd").arg(bin).output().expect("run ldd");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut interp = None;
    let mut libs = Vec::new();
    for line in text.lines().map(str::trim) {
        let path = |s: &str| s.split_whitespace().next().map(PathBuf::from);
        if let Some((_, rest)) = line.split_once("=>") {
            libs.extend(path(rest.trim()).filter(|p| p.is_absolute()));
        } else if line.starts_with('/') {
            interp = path(line);
        }
    }
    (interp, libs)
}

/// Finds the first process whose comm is $1, hands it to /attack (report in
/// /tmp/report), then ends. Run by the container's own shell.
const WATCH: &str = r#"#!/bin/sh
while :; do
  for d in /proc/[0-9]*; do
    read -r c 2>/dev/null <"$d/comm" || continue
    if [ "$c" = "$1" ]; then
      /attack "${d#/proc/}" "$1" "$2" >/tmp/report 2>&1
      echo done >>/tmp/report
      exit 0
    fi
  done
done
"#;

/// CVE-2019-5736 from inside: given pid $1 (named $2), writes to its exe
/// directly, keeps a read fd of it (what the exploit did with O_PATH),
/// starts $3 to let the process go on, waits until it has exec'd or died
/// (so its exe is no longer busy), then reopens the kept fd through
/// /proc/self/fd for writing. Every line starting with WROTE is a success
/// of the attack.
const ATTACK: &str = r#"#!/bin/sh
p=$1
echo "found $p"
echo "exe $(readlink /proc/$p/exe 2>&1)"
if printf X 2>/dev/null >>"/proc/$p/exe"; then echo "WROTE through /proc/$p/exe"; fi
if (exec 8<"/proc/$p/exe") 2>/dev/null && exec 8<"/proc/$p/exe"; then
  echo held
else
  echo "not held"
fi
"$3" &
n=0
while [ "$(cat /proc/$p/comm 2>/dev/null)" = "$2" ] && [ $n -lt 2000 ]; do
  usleep 10000
  n=$((n + 1))
done
echo "moved on"
if printf X 2>/dev/null >>/proc/self/fd/8; then echo "WROTE through the kept fd"; fi
if printf X 2>/dev/null >/proc/self/fd/8; then echo "WROTE (truncating) through the kept fd"; fi
"#;

/// Lets a dynamic loader blocked on the library FIFOs go, once the host
/// has made /tmp/go: each FIFO gets junk (only the one it waits on has a
/// reader), so the loader fails and the process exits.
const RELEASE_LIBS: &str = r#"#!/bin/sh
while [ ! -e /tmp/go ]; do usleep 20000; done
for f in $(cat /fifos); do (echo junk >"$f") & done
"#;

/// Lets a `hind exec -u` helper blocked on the /etc/passwd FIFO go, once
/// the host has made /tmp/go.
const RELEASE_PASSWD: &str = r#"#!/bin/sh
while [ ! -e /tmp/go ]; do usleep 20000; done
while :; do cat /etc/passwd.real >/etc/passwd; done
"#;

/// The image for the CVE-2019-5736 tests: busybox plus
/// - hind-init's dynamic loader copied from the host, and a FIFO in place
///   of each library it loads, so a hind-init re-executed inside the
///   container (through `/proc/self/exe`) blocks in its loader until the
///   attacker lets it go (listed in /fifos);
/// - `/evil`, a script whose interpreter is `/proc/self/exe`: exec'd by a
///   hind-init process, it runs hind-init's own exe again, inside;
/// - the /watch, /attack and release scripts.
///
/// Without a loader (a statically linked hind-init) there is nothing to
/// hold, and only the scripts are added; the flag says which.
fn exploit_image(env: &TestEnv, bins: &Bins) -> (PathBuf, bool) {
    let img = private_image(env, "img-5736");
    write_script(&img.join("evil"), "#!/proc/self/exe\n");
    write_script(&img.join("watch"), WATCH);
    write_script(&img.join("attack"), ATTACK);
    write_script(&img.join("release-libs"), RELEASE_LIBS);
    write_script(&img.join("release-passwd"), RELEASE_PASSWD);
    let (interp, libs) = dynamic_deps(&bins.dir.join("hind-init"));
    let Some(interp) = interp else {
        return (img, false);
    };
    let rel = |p: &Path| img.join(p.strip_prefix("/").expect("absolute"));
    fs::create_dir_all(rel(interp.parent().expect("interp dir"))).expect("mkdir interp dir");
    fs::copy(&interp, rel(&interp)).expect("copy the dynamic loader");
    let mut fifos = String::new();
    for lib in &libs {
        fs::create_dir_all(rel(lib.parent().expect("lib dir"))).expect("mkdir lib dir");
        nix::unistd::mkfifo(&rel(lib), nix::sys::stat::Mode::from_bits_truncate(0o644))
            .expect("mkfifo library");
        fifos.push_str(&format!("{}\n", lib.display()));
    }
    fs::write(img.join("fifos"), fifos).expect("write /fifos");
    (img, true)
}

/// Live pids in the test's cgroups whose comm is `name`.
fn pids_named(env: &TestEnv, name: &str) -> Vec<i32> {
    cgroup_pids(env)
        .into_iter()
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .collect()
}

/// Runs one CVE-2019-5736 attempt: a detached container whose shell runs
/// `setup`, then watches for a process named `name`; then `hind exec
/// EXEC_ARGS`, which
/// makes such a process and blocks it (in a FIFO) until the container
/// releases it with `release`. While it is blocked, checks from the host
/// that its exe is the sealed memfd copy and cannot be opened for writing.
/// Returns the container's report and the exec's output.
fn attempt_5736(
    env: &TestEnv,
    bins: &Bins,
    img: &Path,
    setup: &str,
    name: &str,
    release: &str,
    exec_args: &[&str],
) -> (String, Output) {
    let script = format!("{setup} /watch {name} {release}; echo watched; sleep 600");
    let out = bins.run(
        env,
        &[
            "run",
            "-d",
            "--name",
            "x5736",
            path_str(img),
            "sh",
            "-c",
            &script,
        ],
    );
    out.expect_success();
    let init = inspect(env, "x5736")["State"]["Pid"].as_i64().unwrap_or(0);
    assert!(init > 0, "no init pid");
    let in_ctr = |p: &str| PathBuf::from(format!("/proc/{init}/root{p}"));
    let report = || fs::read_to_string(in_ctr("/tmp/report")).unwrap_or_default();

    let mut args = vec!["exec"];
    args.extend_from_slice(exec_args);
    let exec = Running::spawn(bins.hind(env, &args), hind_tests::default_timeout());

    // The container has made its attempts while the process is held.
    let attacked = hind_tests::poll(LONG, || report().contains("held\n").then_some(()));
    let held = pids_named(env, name);
    let mut host_view = Vec::new();
    for p in &held {
        let exe = fs::read_link(format!("/proc/{p}/exe")).unwrap_or_default();
        let writable = fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/{p}/exe"))
            .is_ok();
        host_view.push((exe, writable));
    }
    fs::write(in_ctr("/tmp/go"), "").expect("create /tmp/go in the container");
    let exec_out = exec.wait();
    let finished = hind_tests::poll(LONG, || report().contains("done\n").then_some(()));
    let text = report();
    rm_f(env, &["x5736"]);

    assert!(
        attacked.is_some() && finished.is_some(),
        "the container never got hold of a {name} process (report {text:?}):\n{exec_out}"
    );
    assert!(
        !held.is_empty(),
        "no {name} process in the container while it was held"
    );
    for (exe, writable) in host_view {
        assert!(
            exe.to_string_lossy().starts_with("/memfd:hind-init"),
            "a {name} process in the container runs {} instead of a sealed copy",
            exe.display()
        );
        assert!(!writable, "its exe {} opens for writing", exe.display());
    }
    (text, exec_out)
}

#[track_caller]
fn assert_no_write(report: &str, bins: &Bins, before: &[(String, String)]) {
    let wrote: Vec<&str> = report.lines().filter(|l| l.starts_with("WROTE")).collect();
    assert!(wrote.is_empty(), "the container wrote: {wrote:?}\n{report}");
    assert!(
        !report.contains(path_str(&bins.dir)),
        "the container saw the host path of a hind binary:\n{report}"
    );
    assert_eq!(bins.digests(), before, "a hind binary changed");
}

// ---- CVE-2019-5736 -----------------------------------------------------------

/// The exploit as published: the exec'd command is a script whose
/// interpreter is `/proc/self/exe`, so the exec helper's child runs its own
/// exe again, dumpable, inside the container. The container keeps an fd of
/// that exe, waits until the process is gone (and the file no longer busy)
/// and writes through the fd. A host file would be overwritten; the sealed
/// memfd cannot be.
#[test]
fn exec_helper_reexecuted_by_the_container_cannot_overwrite_hind() {
    let env = TestEnv::new("cve_2019_5736_reexec");
    let bins = Bins::copy(&env);
    let before = bins.digests();
    let (img, loader) = exploit_image(&env, &bins);
    if !loader {
        eprintln!("hind-init is statically linked: no loader to hold, nothing to test");
        env.finish();
        return;
    }
    // comm of a process exec'd from /evil is `evil`.
    let (report, exec) = attempt_5736(
        &env,
        &bins,
        &img,
        "",
        "evil",
        "/release-libs",
        &["x5736", "/evil"],
    );
    assert!(
        report.lines().any(|l| l == "held"),
        "the container could not keep an fd of the re-executed exe, so the \
         exploit was not exercised:\n{report}"
    );
    assert!(
        report.contains("exe /memfd:hind-init"),
        "the re-executed exe is not the sealed copy:\n{report}"
    );
    assert_ne!(exec.code, 0, "the loader was fed junk:\n{exec}");
    assert_no_write(&report, &bins, &before);
    env.finish();
}

/// The exec helper's child, held while it reads the container's
/// /etc/passwd for `-u` (the container made it a FIFO): it runs from the
/// sealed memfd and is not dumpable, so the container cannot even open its
/// exe.
#[test]
fn exec_helper_is_a_non_dumpable_sealed_copy() {
    let env = TestEnv::new("cve_2019_5736_helper");
    let bins = Bins::copy(&env);
    let before = bins.digests();
    let (img, _) = exploit_image(&env, &bins);
    let (report, exec) = attempt_5736(
        &env,
        &bins,
        &img,
        "cp /etc/passwd /etc/passwd.real && rm /etc/passwd && mkfifo /etc/passwd &&",
        "hind-init",
        "/release-passwd",
        &["-u", "nobody", "x5736", "sh", "-c", "id -u"],
    );
    exec.expect_success();
    assert_eq!(exec.stdout, "65534\n", "{exec}");
    assert!(
        report.lines().any(|l| l == "not held"),
        "the container opened the exe of a non-dumpable helper:\n{report}"
    );
    assert_no_write(&report, &bins, &before);
    env.finish();
}

/// The container's init runs from a sealed memfd too: held in its loader
/// (its command is /evil), its exe is the copy and not writable.
#[test]
fn init_runs_from_a_sealed_copy() {
    let env = TestEnv::new("cve_2019_5736_init");
    let bins = Bins::copy(&env);
    let before = bins.digests();
    let (img, loader) = exploit_image(&env, &bins);
    if !loader {
        eprintln!("hind-init is statically linked: no loader to hold, nothing to test");
        env.finish();
        return;
    }
    let out = bins.run(
        &env,
        &["run", "-d", "--name", "init5736", path_str(&img), "/evil"],
    );
    out.expect_success();
    let init = inspect(&env, "init5736")["State"]["Pid"]
        .as_i64()
        .unwrap_or(0);
    assert!(init > 0, "no init pid");
    let exe = fs::read_link(format!("/proc/{init}/exe")).unwrap_or_default();
    let writable = fs::OpenOptions::new()
        .append(true)
        .open(format!("/proc/{init}/exe"))
        .is_ok();
    // From inside: a second process finds pid 1 running the copy.
    let inside = bins.run(
        &env,
        &[
            "exec",
            "init5736",
            "sh",
            "-c",
            "readlink /proc/1/exe; printf X 2>/dev/null >>/proc/1/exe && echo WROTE; :",
        ],
    );
    rm_f(&env, &["init5736"]);
    assert!(
        exe.to_string_lossy().starts_with("/memfd:hind-init"),
        "init runs {}",
        exe.display()
    );
    assert!(!writable, "init's exe opens for writing");
    inside.expect_success();
    assert!(
        inside.stdout.starts_with("/memfd:hind-init") && !inside.stdout.contains("WROTE"),
        "{inside}"
    );
    assert_eq!(bins.digests(), before, "a hind binary changed");
    env.finish();
}

// ---- CVE-2024-21626 ------------------------------------------------------------

/// Walks up from the working dir as far as `..` goes and compares the end
/// with `/`: equal only if the working dir is inside the container's root.
/// Also leaves a file in the working dir and lists the shell's fds.
const CWD_PROBE: &str = "touch ./cwd-probe-$$ 2>/dev/null; \
    cd ../../../../../../../../..; stat -c %d:%i . /; ls /proc/$$/fd; :";

/// Working dirs that lead out of a container if a host fd or dir leaks in.
const CWD_ATTACKS: &[&str] = &[
    "/proc/self/fd/3",
    "/proc/self/fd/4",
    "/proc/self/fd/5",
    "/proc/self/fd/7",
    "/proc/self/fd/7/..",
    "/proc/1/cwd/..",
    "/proc/self/cwd/../..",
    "/proc/self/root/..",
];

/// `hind ARGS` for the test's root, not yet run.
fn hind_cmd(env: &TestEnv, args: &[&str]) -> Command {
    let mut c = env.hind();
    c.args(args);
    c
}

/// `hind ARGS` with the host dir `dir` open as fd 7 (inheritable), as a
/// careless caller would leave it.
fn with_dir_fd(mut cmd: Command, dir: &fs::File) -> Command {
    let raw = dir.as_raw_fd();
    // SAFETY: the closure runs in the forked child before exec and only
    // calls dup2(2), which is async-signal-safe; the caller keeps `dir`
    // open until the command has been spawned.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Checks one probe: either refused naming the dir, or run inside the
/// root with fds 0-2 only.
#[track_caller]
fn check_cwd(what: &str, dir: &str, out: &Output) {
    if out.code != 0 {
        assert_eq!(out.code, 125, "{what}: {out}");
        assert!(
            out.stderr.contains(dir),
            "{what}: error must name {dir}:\n{out}"
        );
        return;
    }
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{what}: {out}");
    assert_eq!(
        lines[0], lines[1],
        "{what}: the working dir is outside the root:\n{out}"
    );
    assert_eq!(
        lines[2..],
        ["0", "1", "2"],
        "{what}: fds besides 0-2:\n{out}"
    );
}

#[test]
fn working_dir_cannot_lead_out_of_the_root() {
    let env = TestEnv::new("cve_2024_21626");
    let canary = env.scratch().join("canary");
    fs::create_dir(&canary).expect("mkdir canary");
    let dir = fs::File::open(&canary).expect("open canary dir");
    let before = snapshot(&canary);

    let out = env.run_cmd(with_dir_fd(
        hind_cmd(&env, &["run", "--rm", bb(), "sh", "-c", CWD_PROBE]),
        &dir,
    ));
    check_cwd("run", "/", &out);
    out.expect_success();
    for w in CWD_ATTACKS {
        let out = env.run_cmd(with_dir_fd(
            hind_cmd(&env, &["run", "--rm", "-w", w, bb(), "sh", "-c", CWD_PROBE]),
            &dir,
        ));
        check_cwd(&format!("run -w {w}"), w, &out);
    }

    let out = env.run(&["run", "-d", "--name", "x21626", bb(), "sleep", "600"]);
    out.expect_success();
    for w in CWD_ATTACKS {
        let out = env.run_cmd(with_dir_fd(
            hind_cmd(&env, &["exec", "-w", w, "x21626", "sh", "-c", CWD_PROBE]),
            &dir,
        ));
        check_cwd(&format!("exec -w {w}"), w, &out);
    }
    rm_f(&env, &["x21626"]);
    drop(dir);
    assert_eq!(snapshot(&canary), before, "the host dir changed");
    env.finish();
}

// ---- CVE-2021-30465 and CVE-2019-16884 ---------------------------------------

/// Runs `hind run --rm IMG ARGS` and returns the output; the test's
/// container dir must be empty after (a failed create leaves nothing).
fn run_image(env: &TestEnv, img: &Path, args: &[&str]) -> Output {
    let mut all = vec!["run", "--rm", path_str(img)];
    all.extend_from_slice(args);
    let out = env.run(&all);
    assert_eq!(
        env.containers(),
        Vec::<String>::new(),
        "left behind:\n{out}"
    );
    out
}

/// Replaces `name` in the image with a symlink to `target`.
fn relink(img: &Path, name: &str, target: &str) {
    let p = img.join(name);
    let _ = fs::remove_dir_all(&p);
    let _ = fs::remove_file(&p);
    symlink(target, &p).expect("symlink");
}

/// An image's `/dev` is a symlink to a host dir, absolute or by `..`: the
/// /dev tmpfs, its submounts and the /dev links all land at that path
/// inside the container, and the host dir stays empty.
#[test]
fn mount_destination_symlinked_to_the_host_lands_inside_the_root() {
    let env = TestEnv::new("cve_2021_30465");
    let canary = env.scratch().join("canary");
    fs::create_dir(&canary).expect("mkdir canary");
    let c = path_str(&canary);
    for (n, target) in [
        ("abs", c.to_string()),
        ("up", format!("../../../../../../../../..{c}")),
    ] {
        let img = private_image(&env, &format!("img-{n}"));
        relink(&img, "dev", &target);
        let script = format!(
            "echo x >/dev/null && ls /dev/ptmx /dev/fd >/dev/null && \
             grep -c ' {c}' /proc/mounts"
        );
        let out = run_image(&env, &img, &["sh", "-c", &script]);
        out.expect_success();
        let mounts: u32 = out.stdout.trim().parse().unwrap_or(0);
        assert!(
            mounts >= 2,
            "{n}: /dev and its submounts not at {c}:\n{out}"
        );
        assert_eq!(
            fs::read_dir(&canary).expect("read canary").count(),
            0,
            "{n}: written into the host's {c}"
        );
    }
    let host = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!host.contains(c), "mounted on the host");
    env.finish();
}

/// A destination that resolves to the root itself (`dev -> ../..`) would
/// put a filesystem over the whole root: refused, naming it.
#[test]
fn mount_destination_resolving_to_the_root_is_refused() {
    let env = TestEnv::new("mount_on_root");
    for target in ["../../..", "/", "."] {
        let img = private_image(&env, "img-root");
        relink(&img, "dev", target);
        let out = run_image(&env, &img, &["true"]);
        out.expect_hind_error(125, &["/dev", "root"]);
        fs::remove_dir_all(&img).expect("remove image");
    }
    env.finish();
}

/// procfs and sysfs only go onto real directories: a symlink (into the
/// root or to the host) or a file at /proc or /sys is refused naming it,
/// and a /proc that is something else after mounting (a tmpfs over it
/// through `dev -> proc`) is refused before init writes to it.
#[test]
fn proc_and_sys_only_on_real_directories() {
    let env = TestEnv::new("cve_2019_16884");
    let canary = env.scratch().join("canary");
    fs::create_dir(&canary).expect("mkdir canary");
    let before = snapshot(&canary);
    let c = path_str(&canary);
    // What to break in a fresh image, and the destination the error names.
    type Break<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Break)> = vec![
        ("/proc", Box::new(|img| relink(img, "proc", "../../.."))),
        ("/proc", Box::new(move |img| relink(img, "proc", c))),
        ("/proc", Box::new(|img| relink(img, "proc", "tmp"))),
        (
            "/proc",
            Box::new(|img| {
                fs::remove_dir(img.join("proc")).expect("rmdir proc");
                fs::write(img.join("proc"), "").expect("write proc file");
            }),
        ),
        ("/sys", Box::new(move |img| relink(img, "sys", c))),
        ("/sys", Box::new(|img| relink(img, "sys", "proc"))),
        ("/proc", Box::new(|img| relink(img, "dev", "proc"))),
    ];
    for (i, (dest, make)) in cases.iter().enumerate() {
        let img = private_image(&env, &format!("img-{i}"));
        make(&img);
        let out = run_image(&env, &img, &["true"]);
        out.expect_hind_error(125, &[dest]);
    }
    assert_eq!(snapshot(&canary), before, "the host dir changed");
    env.finish();
}

/// `run` reads the image's /etc/passwd and /etc/group on the host, before
/// the container exists: a symlink there is not followed into the host's
/// files, and a FIFO does not hang it.
#[test]
fn image_user_files_are_not_read_from_the_host() {
    let env = TestEnv::new("image_user_files");
    let host_group = env.scratch().join("host-group");
    fs::write(&host_group, "root:x:0:\nhostonly:x:4242:root\n").expect("write host group");
    let img = private_image(&env, "img-group");
    fs::remove_file(img.join("etc/group")).expect("rm group");
    symlink(&host_group, img.join("etc/group")).expect("symlink group");
    let out = run_image(&env, &img, &["id", "-G"]);
    out.expect_success();
    assert!(
        !out.stdout.contains("4242"),
        "the host's group file was read:\n{out}"
    );

    let img = private_image(&env, "img-fifo");
    fs::remove_file(img.join("etc/passwd")).expect("rm passwd");
    nix::unistd::mkfifo(
        &img.join("etc/passwd"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .expect("mkfifo passwd");
    let out = run_image(&env, &img, &["echo", "ran"]);
    out.expect_success();
    assert_eq!(out.stdout, "ran\n", "{out}");
    env.finish();
}

// ---- layers ------------------------------------------------------------------

/// Loads an archive of busybox plus a layer of `evil` entries as
/// `evil/NAME:1`.
fn load_layer(env: &TestEnv, name: &str, evil: &[Entry]) -> Output {
    let layout = env.scratch().join(format!("layout-{name}"));
    let img = ImageBuilder::new()
        .layer(Layer::busybox())
        .layer(Layer::new(evil));
    Layout::create(&layout).add_image(&img, &[(REF_NAME, &format!("evil/{name}:1"))]);
    let archive = env.scratch().join(format!("{name}.tar"));
    oci_archive(&layout, &archive, Compression::None);
    env.run(&["load", "-i", path_str(&archive)])
}

/// Layers that climb out with `..` names, absolute names, a symlink then a
/// file through it, or a hard link to a host file: the host dir they aim
/// at is unchanged, its file keeps one link, and a neutralised layer's
/// files are inside the image.
#[test]
fn layers_create_nothing_outside_the_store() {
    let env = TestEnv::new("layer_escape");
    let canary = env.scratch().join("canary");
    fs::create_dir(&canary).expect("mkdir canary");
    let victim = canary.join("victim");
    fs::write(&victim, "host data").expect("write victim");
    let before = snapshot(&canary);
    let c = path_str(&canary);
    let up = "../".repeat(24);
    let rel = c.trim_start_matches('/');
    let cases: Vec<(&str, Vec<Entry>)> = vec![
        (
            "dotdot",
            vec![Entry::raw(
                format!("{up}{rel}/dotdot"),
                Kind::File(b"x".to_vec()),
            )],
        ),
        (
            "absolute",
            vec![Entry::raw(
                format!("{c}/absolute"),
                Kind::File(b"x".to_vec()),
            )],
        ),
        (
            "symlink",
            vec![
                Entry::symlink("evil", c),
                Entry::file("evil/through-link", "x"),
                Entry::symlink("up", &format!("{up}{rel}")),
                Entry::file("up/through-up", "x"),
            ],
        ),
        (
            "hardlink",
            vec![Entry::raw(
                "victim-link",
                Kind::Hardlink(format!("{up}{rel}/victim").into_bytes()),
            )],
        ),
        (
            "hardlink-abs",
            vec![Entry::raw(
                "victim-link",
                Kind::Hardlink(format!("{c}/victim").into_bytes()),
            )],
        ),
    ];
    for (name, entries) in &cases {
        let out = load_layer(&env, name, entries);
        assert_eq!(
            snapshot(&canary),
            before,
            "{name}: the host dir changed:\n{out}"
        );
        let links = fs::metadata(&victim).map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.nlink()
        });
        assert_eq!(links.ok(), Some(1), "{name}: the host file got a link");
        if out.code == 0 {
            // Neutralised: whatever the layer made is inside the image.
            let img = format!("evil/{name}:1");
            let run = env.run(&["run", "--rm", &img, "sh", "-c", "ls -a /evil/ /up/ 2>&1; :"]);
            run.expect_success();
            env.run(&["rmi", &img]).expect_success();
        }
    }
    assert_eq!(snapshot(&canary), before, "the host dir changed");
    env.finish();
}

// ---- the host is out of reach ------------------------------------------------

/// Runs `sh -c SCRIPT` in a fresh busybox container with `flags`; expects
/// success and returns stdout.
#[track_caller]
fn inside(env: &TestEnv, flags: &[&str], script: &str) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[bb(), "sh", "-c", script]);
    let out = env.run(&args);
    out.expect_success();
    out.stdout
}

/// The value of `Key:` in /proc/self/status inside the container, as hex.
fn cap_bounding(stdout: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(u64::MAX)
}

#[test]
fn host_processes_are_invisible_and_cannot_be_signalled() {
    let env = TestEnv::new("host_procs");
    let mut host = Command::new("sleep")
        .arg("600")
        .spawn()
        .expect("start a host process");
    let hp = host.id();
    let script = format!(
        "for d in /proc/[0-9]*; do printf '%s ' ${{d#/proc/}}; done; echo; \
         ps -o pid | tr '\\n' ' '; echo; \
         kill -0 {hp} 2>/dev/null && echo SEEN; kill -TERM {hp} 2>/dev/null && echo SIGNALLED; \
         kill -KILL {hp} 2>/dev/null && echo KILLED; echo end"
    );
    let out = inside(&env, &[], &script);
    let alive = host.try_wait().expect("try_wait").is_none();
    let _ = host.kill();
    let _ = host.wait();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    for l in &lines[..2] {
        let pids: BTreeSet<u32> = l
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        assert!(!pids.is_empty() && pids.len() <= 8, "{out:?}");
        assert!(
            !pids.contains(&hp),
            "the host's pid {hp} is visible: {out:?}"
        );
        assert!(pids.contains(&1), "{out:?}");
    }
    assert_eq!(lines[2], "end", "a host process was reached: {out:?}");
    assert!(alive, "the host process died");
    env.finish();
}

#[test]
fn kernel_modules_cannot_be_loaded() {
    let env = TestEnv::new("modules");
    let host_before = fs::read_to_string("/proc/modules").ok();
    let out = inside(
        &env,
        &[],
        "printf 'not a module' >/tmp/x.ko; insmod /tmp/x.ko 2>/dev/null && echo LOADED; \
         modprobe -q loop 2>/dev/null && echo PROBED; grep CapBnd /proc/self/status",
    );
    assert!(
        !out.contains("LOADED") && !out.contains("PROBED"),
        "{out:?}"
    );
    // CAP_SYS_MODULE (16) is not in the bounding set: no exec gets it back.
    assert_eq!(cap_bounding(&out) & (1 << 16), 0, "{out:?}");
    let host_after = fs::read_to_string("/proc/modules").ok();
    let names = |s: &Option<String>| -> BTreeSet<String> {
        s.iter()
            .flat_map(|t| t.lines())
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect()
    };
    let new: Vec<String> = names(&host_after)
        .difference(&names(&host_before))
        .cloned()
        .collect();
    assert!(new.is_empty(), "modules appeared on the host: {new:?}");
    env.finish();
}

#[test]
fn filesystems_cannot_be_mounted() {
    let env = TestEnv::new("no_mount");
    let marker = format!("hindmark{}", std::process::id());
    let out = inside(
        &env,
        &[],
        &format!(
            "mkdir -p /mnt/m; mount -t tmpfs {marker} /mnt/m 2>/dev/null && echo MOUNTED; \
             mount --bind /tmp /mnt/m 2>/dev/null && echo BOUND; \
             mount -t proc proc /mnt/m 2>/dev/null && echo PROC; grep -c {marker} /proc/mounts; :"
        ),
    );
    assert_eq!(out, "0\n", "{out:?}");
    let host = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!host.contains(&marker), "mounted on the host");
    env.finish();
}

#[test]
fn hostname_changes_stay_in_the_container() {
    let env = TestEnv::new("hostname");
    let host_before = nix::unistd::gethostname().expect("gethostname");
    // Without CAP_SYS_ADMIN, as with Docker, sethostname is refused.
    let out = inside(
        &env,
        &[],
        "hostname e2e-evil 2>/dev/null && echo RENAMED; hostname",
    );
    assert!(!out.contains("RENAMED"), "{out:?}");
    // With it, only the container's own uts namespace changes.
    let out = inside(
        &env,
        &["--cap-add", "SYS_ADMIN"],
        "hostname e2e-renamed && hostname",
    );
    assert_eq!(out, "e2e-renamed\n");
    let host_after = nix::unistd::gethostname().expect("gethostname");
    assert_eq!(host_after, host_before, "the host's hostname changed");
    env.finish();
}

#[test]
fn the_clock_cannot_be_set() {
    let env = TestEnv::new("clock");
    let before = SystemTime::now();
    // busybox `date -s` reports a failed clock_settime(2) on stderr and
    // still exits 0; the year it prints after tells.
    let out = inside(
        &env,
        &[],
        "date -s '2001-02-03 04:05:06' 2>&1 >/dev/null; date +%Y; grep CapBnd /proc/self/status",
    );
    let elapsed = SystemTime::now().duration_since(before).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() == 3 && lines[1] != "2001", "{out:?}");
    assert!(lines[0].contains("can't set date"), "{out:?}");
    // CAP_SYS_TIME (25) is not in the bounding set.
    assert_eq!(cap_bounding(&out) & (1 << 25), 0, "{out:?}");
    assert!(
        elapsed.is_some_and(|d| d < LONG),
        "the host's clock moved: {elapsed:?}"
    );
    env.finish();
}

/// /proc/kcore (when the kernel has it) and the other masked /proc files
/// read as empty inside, while the host still reads them.
#[test]
fn kcore_and_masked_proc_files_are_empty() {
    let env = TestEnv::new("kcore");
    let files = ["kcore", "timer_list", "sched_debug", "keys"];
    let script: String = files
        .iter()
        .map(|f| format!("echo {f} $(cat /proc/{f} 2>/dev/null | wc -c); "))
        .collect();
    let out = inside(&env, &[], &script);
    let mut checked = 0;
    for f in files {
        let host = Path::new("/proc").join(f);
        if !host.exists() {
            continue;
        }
        checked += 1;
        assert!(
            out.lines().any(|l| l == format!("{f} 0")),
            "/proc/{f} is readable inside: {out:?}"
        );
    }
    assert!(checked > 0, "none of {files:?} exists on this host");
    // The mask is the container's: the host still reads its timer list.
    if let Ok(t) = fs::read_to_string("/proc/timer_list") {
        assert!(!t.is_empty(), "the host's /proc/timer_list is empty");
    }
    env.finish();
}

/// /proc/sysrq-trigger and /proc/sys cannot be written: the write fails
/// and the host's value is unchanged.
#[test]
fn sysrq_trigger_and_proc_sys_cannot_be_written() {
    let env = TestEnv::new("sysrq");
    let printk = fs::read_to_string("/proc/sys/kernel/printk").expect("read printk");
    let out = inside(
        &env,
        &[],
        "echo h 2>/dev/null >/proc/sysrq-trigger && echo SYSRQ; \
         v=$(cat /proc/sys/kernel/printk); echo $v 2>/dev/null >/proc/sys/kernel/printk && echo SYSCTL; \
         echo 1 2>/dev/null >/proc/sys/vm/drop_caches && echo DROPPED; \
         grep -E ' /proc/(sys|sysrq-trigger) ' /proc/mounts",
    );
    for bad in ["SYSRQ", "SYSCTL", "DROPPED"] {
        assert!(!out.contains(bad), "{bad}: {out:?}");
    }
    let sys = out
        .lines()
        .find(|l| l.split(' ').nth(1) == Some("/proc/sys"))
        .unwrap_or_else(|| panic!("/proc/sys is not a mount of its own: {out:?}"));
    assert!(
        sys.split(' ')
            .nth(3)
            .is_some_and(|o| o.split(',').any(|x| x == "ro")),
        "/proc/sys is not read-only: {out:?}"
    );
    if Path::new("/proc/sysrq-trigger").exists() {
        assert!(out.contains(" /proc/sysrq-trigger "), "{out:?}");
    }
    let after = fs::read_to_string("/proc/sys/kernel/printk").expect("read printk");
    assert_eq!(after, printk, "the host's printk changed");
    env.finish();
}

#[test]
fn sys_firmware_is_empty() {
    let env = TestEnv::new("firmware");
    let out = inside(&env, &[], "ls -A /sys/firmware; echo end");
    assert_eq!(out, "end\n", "/sys/firmware shows something: {out:?}");
    let host = fs::read_dir("/sys/firmware")
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(
        host > 0,
        "the host's /sys/firmware is empty: nothing was hidden"
    );
    env.finish();
}
