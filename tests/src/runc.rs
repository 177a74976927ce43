//! Driving a runc-compatible OCI runtime end to end: `hind-runc`, or any
//! other runtime named by `HIND_TEST_RUNC` (e.g. `/usr/bin/runc`, the
//! reference the tests are proven against).
//!
//! What it gives a test:
//! - [`runtime_bin`] / [`runtime_is_hind`]: which binary runs, and whether
//!   an assertion about hind's own wording may be made.
//! - [`Bundle`]: an OCI bundle in the test's scratch dir, a private writable
//!   busybox root fs (built by [`crate::image::build_busybox_rootfs`]) and a
//!   `config.json` kept as a [`serde_json::Value`] ([`default_config`], the
//!   shape `runc spec` prints but with `terminal: false`, the given args, a
//!   writable root and `linux.cgroupsPath = <cgroup parent>/<id>`, so the
//!   [`TestEnv`] leak checks cover the container's cgroup). Edit it with
//!   [`Bundle::config_mut`], [`Bundle::edit`] or [`Bundle::set`]; it is
//!   written by [`Bundle::write`], which [`Runc::create`] and [`Runc::run`]
//!   call for you (unless [`Bundle::write_raw`] put a hand-made file there).
//! - [`Runc`]: the runtime with `--root <scratch>/runc-root --log
//!   <scratch>/runc.log --log-format json`, one helper per subcommand
//!   returning an [`Output`] (deadline and capture from
//!   [`crate::process`]), [`Runc::state`] parsed. Commands that leave a
//!   container process holding their stdio (`create`, `run -d`, `exec -d`)
//!   get `/dev/null` and files instead of pipes ([`Runc::cmd`]), so the
//!   harness does not wait for an EOF that comes only when the container
//!   exits; [`Runc::container_stdout`] reads what the container wrote.
//!   Every id passed to `create`/`run` is remembered; dropping the
//!   [`Runc`] kills and force-deletes whatever of them still exists, so a
//!   failing test leaves nothing (declare it after the [`TestEnv`], so it
//!   drops first). The state root is registered with
//!   [`TestEnv::watch_state_dir`]: a container the test forgot to delete is
//!   reported as a leak by [`TestEnv::finish`].
//! - [`ConsoleSocket`]: the `--console-socket` receiver; [`Console`] is the
//!   pty master it got, to read the container's terminal and type into it.
//! - [`RuntimeOutput::expect_runtime_error`]: exit 1 and exactly one line on
//!   stderr naming the given things, as runc fails.
//!
//! # Who reaps the container's init
//!
//! `create` (and `run -d`, `exec -d`) leave the container process a child
//! of the runtime, which exits: the process is re-parented to the nearest
//! child subreaper, otherwise to PID 1 of the machine. In this sandbox PID 1
//! is not guaranteed to reap, and a containerd shim (the runtime's real
//! caller) is a subreaper, so the harness copies that: the first
//! [`Runc::new`] makes the test process a child subreaper
//! (`prctl(PR_SET_CHILD_SUBREAPER)`, process-wide, once).
//!
//! Adopted processes are then our children, but the test binary runs tests
//! as threads and `std::process::Child` waits for its own pid, so a
//! `waitpid(-1)` reaper would steal other tests' exit statuses. Instead the
//! harness reaps only pids it knows are adopted container processes: the
//! init pid from the `--pid-file` or `state` right after a successful
//! `create`/`run -d` (and pids handed to [`Runc::adopt`], e.g. from an `exec -d --pid-file`),
//! accepted only while `/proc/<pid>/stat` shows this process as parent.
//! Such a pid cannot be reused before we reap it, and we `waitpid` it
//! exactly once, so no other thread's child is ever touched. Reaping
//! happens (non-blocking) on every [`Runc`] call and on drop; the status is
//! kept for [`Runc::exit_status`]. Until reaped, a dead init is a zombie,
//! which runc reports as `stopped` (a runtime must too: that is what its
//! real callers see). An adopted process nobody registered stays a zombie
//! until the test binary exits; zombies hold no cgroup membership, mount or
//! command line, so the leak checks do not see them.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde_json::{json, Value};

use crate::process::{self, Output, Running};
use crate::TestEnv;

/// The runtime under test: `HIND_TEST_RUNC` if set, else `hind-runc` next
/// to the other hind binaries ([`crate::bin_dir`]).
pub fn runtime_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HIND_TEST_RUNC") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "HIND_TEST_RUNC={} is not a file", p.display());
        return p;
    }
    let bin = crate::bin_dir().join("hind-runc");
    assert!(
        bin.is_file(),
        "{} not found: run `cargo build --workspace --bins` first, set HIND_BIN_DIR, \
         or set HIND_TEST_RUNC=/usr/bin/runc to test the reference runtime",
        bin.display()
    );
    bin
}

/// True when the runtime under test is hind-runc (no `HIND_TEST_RUNC`, or
/// one whose file name is `hind-runc`): guards assertions about hind's own
/// wording that runc does not share.
pub fn runtime_is_hind() -> bool {
    match std::env::var_os("HIND_TEST_RUNC") {
        None => true,
        Some(p) => Path::new(&p).file_name().is_some_and(|n| n == "hind-runc"),
    }
}

/// The `config.json` of a new bundle: what `runc spec` prints (same
/// capabilities, mounts, namespaces, masked and read-only paths, rlimit,
/// no_new_privs, device deny-all), except `process.terminal` false,
/// `process.args` = `args`, `root.readonly` false, and
/// `linux.cgroupsPath` = `cgroups_path`.
pub fn default_config(args: &[&str], cgroups_path: &str) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": args,
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
                "ambient": caps
            },
            "rlimits": [
                { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }
            ],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": "runc",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            {
                "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]
            },
            {
                "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666",
                            "mode=0620", "gid=5"]
            },
            {
                "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
            },
            {
                "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"]
            },
            {
                "destination": "/sys", "type": "sysfs", "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"]
            },
            {
                "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
            }
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": {
                "devices": [ { "allow": false, "access": "rwm" } ]
            },
            "namespaces": [
                { "type": "pid" },
                { "type": "network" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// An OCI bundle: `<scratch>/bundles/<id>/` with `rootfs/` (a private,
/// writable busybox root fs) and `config.json`.
pub struct Bundle {
    dir: PathBuf,
    config: Value,
    /// A hand-written config.json is in place: [`Bundle::write`] must not
    /// replace it.
    raw: bool,
}

impl Bundle {
    /// A bundle for the container `id` of this test running `args`, with
    /// [`default_config`] (cgroup `<env.cgroup_parent()>/<id>`) already
    /// written. Use one bundle per container: the id is in its cgroup path.
    #[track_caller]
    pub fn new(env: &TestEnv, id: &str, args: &[&str]) -> Bundle {
        let dir = env.scratch().join("bundles").join(id);
        assert!(!dir.exists(), "bundle {} made twice", dir.display());
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let rootfs = dir.join("rootfs");
        crate::image::build_busybox_rootfs(&rootfs)
            .unwrap_or_else(|e| panic!("build busybox rootfs in {}: {e}", rootfs.display()));
        let cgroups_path = format!("{}/{id}", env.cgroup_parent());
        let b = Bundle {
            dir,
            config: default_config(args, &cgroups_path),
            raw: false,
        };
        b.write();
        b
    }

    /// The bundle directory (`--bundle`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// [`Bundle::dir`] as a `&str`, for argument lists.
    pub fn dir_str(&self) -> &str {
        self.dir.to_str().expect("bundle path is UTF-8")
    }

    /// `<bundle>/rootfs`: the container's `/`, seen from the host.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The container's cgroup in the hierarchy of `ctrl` (`pids`,
    /// `memory`, `freezer` ...) as `linux.cgroupsPath` of the config names
    /// it (an absolute cgroupfs path, as [`Bundle::new`] sets it).
    #[track_caller]
    pub fn cgroup_dir(&self, ctrl: &str) -> PathBuf {
        let path = self.config["linux"]["cgroupsPath"]
            .as_str()
            .expect("config has linux.cgroupsPath");
        crate::cgroup::join(&crate::cgroup::controller_root(ctrl), path)
    }

    /// `<bundle>/config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// The config as it will be written.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The config to edit in place; written by the next [`Bundle::write`].
    pub fn config_mut(&mut self) -> &mut Value {
        &mut self.config
    }

    /// Edits the config with `f`; chainable.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Bundle {
        f(&mut self.config);
        self
    }

    /// Sets the value at JSON pointer `pointer` (e.g. `/process/cwd`),
    /// creating missing objects on the way; chainable.
    #[track_caller]
    pub fn set(&mut self, pointer: &str, value: Value) -> &mut Bundle {
        let mut cur = &mut self.config;
        let keys: Vec<&str> = pointer.split('/').skip(1).collect();
        let (last, path) = keys.split_last().expect("pointer names a field");
        for k in path {
            if cur.is_null() {
                *cur = json!({});
            }
            cur = match cur {
                Value::Object(m) => m.entry(k.to_string()).or_insert(Value::Null),
                Value::Array(a) => {
                    let i: usize = k.parse().expect("array index in pointer");
                    &mut a[i]
                }
                other => panic!("{pointer}: {k} is inside a non-container {other}"),
            };
        }
        if cur.is_null() {
            *cur = json!({});
        }
        match cur {
            Value::Object(m) => {
                m.insert(last.to_string(), value);
            }
            Value::Array(a) => {
                let i: usize = last.parse().expect("array index in pointer");
                a[i] = value;
            }
            other => panic!("{pointer}: parent is a non-container {other}"),
        }
        self
    }

    /// Removes the value at JSON pointer `pointer`, if present; chainable.
    pub fn remove(&mut self, pointer: &str) -> &mut Bundle {
        let (parent, last) = pointer.rsplit_once('/').expect("pointer names a field");
        if let Some(Value::Object(m)) = self.config.pointer_mut(parent) {
            m.remove(last);
        }
        self
    }

    /// Writes the config to `config.json` (pretty), unless a raw one from
    /// [`Bundle::write_raw`] is in place.
    #[track_caller]
    pub fn write(&self) {
        if self.raw {
            return;
        }
        let p = self.config_path();
        let text = serde_json::to_string_pretty(&self.config).expect("serialize config");
        fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }

    /// Puts `text` as `config.json` verbatim (invalid JSON allowed); later
    /// writes leave it alone.
    #[track_caller]
    pub fn write_raw(&mut self, text: &str) {
        let p = self.config_path();
        fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        self.raw = true;
    }
}

/// Pids of adopted container processes the harness may reap, with their
/// status once reaped (see the module doc).
static ADOPTED: Mutex<Option<HashMap<i32, Option<WaitStatus>>>> = Mutex::new(None);
static SUBREAPER: Once = Once::new();

/// The parent pid of `pid` from `/proc/<pid>/stat`.
fn ppid_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parens: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Reaps every adopted pid that has exited (non-blocking).
fn reap_adopted() {
    let mut g = ADOPTED.lock().unwrap_or_else(|e| e.into_inner());
    let Some(map) = g.as_mut() else { return };
    for (pid, status) in map.iter_mut() {
        if status.is_some() {
            continue;
        }
        match waitpid(Pid::from_raw(*pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(st) => *status = Some(st),
            // Not (or no longer) our child: never wait for it again.
            Err(_) => *status = Some(WaitStatus::StillAlive),
        }
    }
}

/// The runtime under test, with this test's state root and log file.
pub struct Runc {
    bin: PathBuf,
    root: PathBuf,
    log: PathBuf,
    /// Ids passed to create/run: force-deleted on drop if still there.
    ids: Mutex<Vec<String>>,
    /// Where detached commands' stdio goes ([`Runc::cmd_to_files`]).
    io_dir: PathBuf,
    seq: AtomicUsize,
}

/// True for a command that leaves a process holding its stdio: `create`,
/// or `run`/`exec` with `-d`/`--detach`.
fn leaves_process(args: &[&str]) -> bool {
    match args.first() {
        Some(&"create") => true,
        Some(&"run") | Some(&"exec") => args.iter().any(|a| *a == "-d" || *a == "--detach"),
        _ => false,
    }
}

impl Runc {
    /// The runtime for `env`: state root `<scratch>/runc-root` (watched by
    /// the env's leak check), log `<scratch>/runc.log` in JSON. Makes the
    /// test process a child subreaper (see the module doc).
    pub fn new(env: &TestEnv) -> Runc {
        SUBREAPER.call_once(|| {
            nix::sys::prctl::set_child_subreaper(true).expect("prctl(PR_SET_CHILD_SUBREAPER)");
        });
        let root = env.scratch().join("runc-root");
        env.watch_state_dir(root.clone());
        Runc {
            bin: runtime_bin(),
            root,
            log: env.scratch().join("runc.log"),
            ids: Mutex::new(Vec::new()),
            io_dir: env.scratch().join("runc-io"),
            seq: AtomicUsize::new(0),
        }
    }

    /// The runtime binary.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The state root passed as `--root`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The log file passed as `--log`.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole log so far (empty if none).
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's lines that are JSON objects, parsed.
    pub fn log_entries(&self) -> Vec<Value> {
        self.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.is_object())
            .collect()
    }

    /// `<runtime> --root ROOT --log LOG --log-format json`; add the
    /// subcommand and run it yourself (e.g. in another cwd).
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .arg("--log-format")
            .arg("json");
        c
    }

    /// Remembers `id` for the cleanup on drop (done by create and run).
    pub fn track(&self, id: &str) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    }

    /// Runs a prepared [`Runc::command`] to completion, `input` on stdin.
    pub fn run_cmd(&self, c: Command, input: &[u8]) -> Output {
        let out = process::run(c, input, crate::default_timeout());
        reap_adopted();
        out
    }

    /// Runs `<runtime> GLOBALS ARGS` with empty stdin. A command that
    /// leaves a container process behind holding its stdio (`create`, or
    /// `run`/`exec` with `-d`/`--detach` anywhere in `args`) runs with
    /// stdin `/dev/null` and stdout/stderr going to files under
    /// `<scratch>/runc-io/` instead of pipes, read back once the runtime
    /// exits: pipes would not reach EOF while the container lives.
    pub fn cmd(&self, args: &[&str]) -> Output {
        if leaves_process(args) {
            let n = self.seq.fetch_add(1, Ordering::SeqCst);
            return self.cmd_to_files(args, &format!("cmd-{n}"));
        }
        let mut c = self.command();
        c.args(args);
        self.run_cmd(c, b"")
    }

    /// Runs `<runtime> GLOBALS ARGS` with stdin `/dev/null` and stdout and
    /// stderr in `<scratch>/runc-io/<name>.out` and `.err`, which anything
    /// the runtime leaves running keeps writing to.
    pub fn cmd_to_files(&self, args: &[&str], name: &str) -> Output {
        let mut c = self.command();
        c.args(args);
        self.run_to_files(c, name)
    }

    /// Runs the prepared `c` as [`Runc::cmd_to_files`] does.
    fn run_to_files(&self, mut c: Command, name: &str) -> Output {
        fs::create_dir_all(&self.io_dir)
            .unwrap_or_else(|e| panic!("mkdir {}: {e}", self.io_dir.display()));
        let out_p = self.io_dir.join(format!("{name}.out"));
        let err_p = self.io_dir.join(format!("{name}.err"));
        let create =
            |p: &Path| File::create(p).unwrap_or_else(|e| panic!("create {}: {e}", p.display()));
        c.stdin(Stdio::null())
            .stdout(create(&out_p))
            .stderr(create(&err_p));
        let mut child = c.spawn().unwrap_or_else(|e| panic!("spawn {c:?}: {e}"));
        let deadline = Instant::now() + crate::default_timeout();
        let (status, timed_out) = loop {
            if let Some(st) = child.try_wait().expect("wait for the runtime") {
                break (st, false);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                break (child.wait().expect("wait for the killed runtime"), true);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        reap_adopted();
        let read =
            |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
        Output {
            stdout: read(&out_p),
            stderr: read(&err_p),
            code: status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
            timed_out,
        }
    }

    /// What container `id` (made by [`Runc::create`] or [`Runc::run`] with
    /// `-d`) and the runtime's create/run wrote to stdout so far.
    pub fn container_stdout(&self, id: &str) -> String {
        let p = self.io_dir.join(format!("{id}.out"));
        String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned()
    }

    /// Runs `<runtime> GLOBALS ARGS` with `input` on stdin, then EOF.
    pub fn cmd_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut c = self.command();
        c.args(args);
        self.run_cmd(c, input)
    }

    /// Runs `<runtime> GLOBALS ARGS` in the working directory `cwd` (for
    /// relative paths and the default bundle); stdio as in [`Runc::cmd`].
    /// A container made this way is not tracked: call [`Runc::track`]
    /// before and [`Runc::adopt_init`] after.
    pub fn cmd_in(&self, cwd: &Path, args: &[&str]) -> Output {
        let mut c = self.command();
        c.args(args).current_dir(cwd);
        if leaves_process(args) {
            let n = self.seq.fetch_add(1, Ordering::SeqCst);
            return self.run_to_files(c, &format!("cmd-{n}"));
        }
        self.run_cmd(c, b"")
    }

    /// Starts `<runtime> GLOBALS ARGS` in the background with piped stdio
    /// (e.g. a foreground `run` to watch).
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut c = self.command();
        c.args(args);
        Running::spawn(c, crate::default_timeout())
    }

    /// `create --bundle DIR FLAGS ID` (config.json written first). On
    /// success the init pid is adopted for reaping (from `--pid-file` if
    /// `flags` has one, else from `state`).
    pub fn create(&self, bundle: &Bundle, id: &str, flags: &[&str]) -> Output {
        bundle.write();
        self.track(id);
        let mut args = vec!["create", "--bundle", bundle.dir_str()];
        args.extend_from_slice(flags);
        args.push(id);
        let out = self.cmd_to_files(&args, id);
        if out.code == 0 {
            self.adopt_new(id, flags);
        }
        out
    }

    /// `run --bundle DIR FLAGS ID` (config.json written first). With `-d`
    /// or `--detach` in `flags`, the init pid is adopted on success (from
    /// `--pid-file` if given: a short-lived container may be gone before
    /// `state` is asked, which then reports pid 0).
    pub fn run(&self, bundle: &Bundle, id: &str, flags: &[&str]) -> Output {
        bundle.write();
        self.track(id);
        let mut args = vec!["run", "--bundle", bundle.dir_str()];
        args.extend_from_slice(flags);
        args.push(id);
        if !leaves_process(&args) {
            return self.cmd(&args);
        }
        let out = self.cmd_to_files(&args, id);
        if out.code == 0 {
            self.adopt_new(id, flags);
        }
        out
    }

    /// `start ID`.
    pub fn start(&self, id: &str) -> Output {
        self.cmd(&["start", id])
    }

    /// `state ID` as it came.
    pub fn try_state(&self, id: &str) -> Output {
        self.cmd(&["state", id])
    }

    /// `state ID`, parsed; panics unless it succeeds with a JSON object.
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        let out = self.try_state(id);
        out.expect_success();
        let v: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state {id} is not JSON ({e}):\n{out}"));
        assert!(v.is_object(), "state {id} is not an object:\n{out}");
        v
    }

    /// The `status` field of `state ID`.
    #[track_caller]
    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .unwrap_or_else(|| panic!("state {id} has no status string"))
            .to_string()
    }

    /// The `pid` field of `state ID`.
    #[track_caller]
    pub fn pid(&self, id: &str) -> i32 {
        let v = self.state(id);
        v["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("state {id} has no pid: {v}")) as i32
    }

    /// Polls `state ID` until its status is `status` (up to `timeout`);
    /// false if it never was.
    pub fn wait_status(&self, id: &str, status: &str, timeout: Duration) -> bool {
        crate::poll(timeout, || {
            let out = self.try_state(id);
            let v: Value = serde_json::from_str(&out.stdout).ok()?;
            (v["status"] == status).then_some(())
        })
        .is_some()
    }

    /// `kill ID SIGNAL` (`signal` empty: the runtime's default, SIGTERM).
    pub fn kill(&self, id: &str, signal: &str) -> Output {
        if signal.is_empty() {
            self.cmd(&["kill", id])
        } else {
            self.cmd(&["kill", id, signal])
        }
    }

    /// `delete ID`.
    pub fn delete(&self, id: &str) -> Output {
        self.cmd(&["delete", id])
    }

    /// `delete --force ID`.
    pub fn delete_force(&self, id: &str) -> Output {
        self.cmd(&["delete", "--force", id])
    }

    /// `exec FLAGS ID CMD...`.
    pub fn exec(&self, id: &str, flags: &[&str], cmd: &[&str]) -> Output {
        let mut args = vec!["exec"];
        args.extend_from_slice(flags);
        args.push(id);
        args.extend_from_slice(cmd);
        self.cmd(&args)
    }

    /// Adopts the init of a container just made with `flags`: the pid in
    /// the `--pid-file` if `flags` name one (exact even when the container
    /// already exited), else the `state` pid.
    fn adopt_new(&self, id: &str, flags: &[&str]) {
        let pid_file = flags
            .iter()
            .position(|f| *f == "--pid-file")
            .and_then(|i| flags.get(i + 1));
        match pid_file.and_then(|p| fs::read_to_string(p).ok()) {
            Some(text) => self.adopt(text.trim().parse().unwrap_or(0)),
            None => self.adopt_init(id),
        }
    }

    /// Adopts the init of container `id` (its `state` pid) for reaping.
    pub fn adopt_init(&self, id: &str) {
        let out = self.try_state(id);
        if let Ok(v) = serde_json::from_str::<Value>(&out.stdout) {
            if let Some(pid) = v["pid"].as_i64() {
                self.adopt(pid as i32);
            }
        }
    }

    /// Registers `pid` (an adopted container process, e.g. from an
    /// `exec -d --pid-file`) for reaping; ignored unless this process is
    /// its parent right now. See the module doc.
    pub fn adopt(&self, pid: i32) {
        if pid <= 0 || ppid_of(pid) != Some(std::process::id() as i32) {
            return;
        }
        let mut g = ADOPTED.lock().unwrap_or_else(|e| e.into_inner());
        g.get_or_insert_with(HashMap::new)
            .entry(pid)
            .or_insert(None);
    }

    /// Waits up to `timeout` for the adopted `pid` to exit and returns how
    /// it ended; `None` if it was never adopted (not our child), is still
    /// running, or was reaped by someone else.
    pub fn exit_status(&self, pid: i32, timeout: Duration) -> Option<WaitStatus> {
        crate::poll(timeout, || {
            reap_adopted();
            let g = ADOPTED.lock().unwrap_or_else(|e| e.into_inner());
            match g.as_ref().and_then(|m| m.get(&pid)) {
                // Never adopted, or found not to be our child.
                None | Some(Some(WaitStatus::StillAlive)) => Some(None),
                Some(Some(st)) => Some(Some(*st)),
                Some(None) => None,
            }
        })
        .flatten()
    }

    /// Kills and force-deletes every tracked container that still has a
    /// state dir. Called on drop; harmless to call twice.
    pub fn cleanup(&self) {
        let ids = std::mem::take(&mut *self.ids.lock().unwrap_or_else(|e| e.into_inner()));
        for id in ids {
            if !self.root.join(&id).exists() {
                continue;
            }
            let _ = self.cmd(&["kill", "--all", &id, "KILL"]);
            let _ = self.cmd(&["delete", "--force", &id]);
        }
        reap_adopted();
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Checks on the [`Output`] of a runtime command.
pub trait RuntimeOutput {
    /// Panics unless the command failed as runc fails: exit 1 and exactly
    /// one line on stderr, containing every one of `names`.
    fn expect_runtime_error(&self, names: &[&str]) -> &Output;
}

impl RuntimeOutput for Output {
    #[track_caller]
    fn expect_runtime_error(&self, names: &[&str]) -> &Output {
        self.expect_code(1);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected exactly one line on stderr:\n{self}"
        );
        for n in names {
            assert!(lines[0].contains(n), "error line must name {n:?}:\n{self}");
        }
        self
    }
}

/// Waits until `fd` is readable (or hung up) or `timeout` passes.
fn wait_readable(fd: std::os::fd::BorrowedFd<'_>, timeout: Duration) -> bool {
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    loop {
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(n) => return n > 0,
            Err(Errno::EINTR) => continue,
            Err(e) => panic!("poll: {e}"),
        }
    }
}

/// A listening unix socket for `--console-socket`: the runtime connects
/// and sends the pty master of the container's terminal (SCM_RIGHTS).
pub struct ConsoleSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    /// Binds `<scratch>/<name>.sock`. Keep `name` short: a socket path has
    /// at most 107 bytes.
    #[track_caller]
    pub fn bind(env: &TestEnv, name: &str) -> ConsoleSocket {
        let path = env.scratch().join(format!("{name}.sock"));
        let _ = fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .unwrap_or_else(|e| panic!("bind console socket {}: {e}", path.display()));
        ConsoleSocket { path, listener }
    }

    /// The socket path (for `--console-socket`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// [`ConsoleSocket::path`] as a `&str`.
    pub fn path_str(&self) -> &str {
        self.path.to_str().expect("socket path is UTF-8")
    }

    /// Accepts one connection and receives one fd from it, all within
    /// `timeout`; panics otherwise. The runtime may already have connected
    /// and sent (the kernel queues both), so calling this after `create`
    /// returned is fine.
    #[track_caller]
    pub fn receive(&self, timeout: Duration) -> Console {
        let end = Instant::now() + timeout;
        assert!(
            wait_readable(self.listener.as_fd(), timeout),
            "no connection on console socket {} within {timeout:?}",
            self.path.display()
        );
        let (stream, _) = self.listener.accept().expect("accept on console socket");
        let left = end.saturating_duration_since(Instant::now());
        assert!(
            wait_readable(stream.as_fd(), left),
            "no message on console socket {} within {timeout:?}",
            self.path.display()
        );
        let mut buf = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<UnixAddr>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .expect("recvmsg on console socket");
        let mut fds = Vec::new();
        for c in msg.cmsgs().expect("parse control messages") {
            if let ControlMessageOwned::ScmRights(got) = c {
                fds.extend(got);
            }
        }
        let mut fds = fds.into_iter().map(|fd| {
            // SAFETY: the kernel just installed this fd in our table for
            // this message (SCM_RIGHTS); nothing else owns it.
            unsafe { OwnedFd::from_raw_fd(fd) }
        });
        let master = fds.next().expect("console socket message carries an fd");
        assert!(fds.next().is_none(), "console socket sent more than one fd");
        Console::new(File::from(master))
    }

    /// [`ConsoleSocket::receive`] on a thread, for commands that block
    /// until the container exits (a foreground `run`): join it to get the
    /// console.
    pub fn receive_in_background(self, timeout: Duration) -> JoinHandle<Console> {
        std::thread::spawn(move || self.receive(timeout))
    }
}

/// The pty master of a container's terminal, from a [`ConsoleSocket`].
pub struct Console {
    master: File,
    seen: Vec<u8>,
    eof: bool,
}

impl Console {
    fn new(master: File) -> Console {
        Console {
            master,
            seen: Vec::new(),
            eof: false,
        }
    }

    /// The master itself.
    pub fn file(&self) -> &File {
        &self.master
    }

    /// Gives up the master.
    pub fn into_file(self) -> File {
        self.master
    }

    /// Everything read so far (`\r\n` line ends).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// Reads what arrives within `timeout`; stops early at EOF (EIO: every
    /// slave fd is closed). Returns false once EOF was seen.
    pub fn read_for(&mut self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while !self.eof {
            let left = end.saturating_duration_since(Instant::now());
            if !wait_readable(self.master.as_fd(), left) {
                break;
            }
            let mut buf = [0u8; 4096];
            match self.master.read(&mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => self.seen.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => self.eof = true,
            }
            if left.is_zero() {
                break;
            }
        }
        !self.eof
    }

    /// Reads until `needle` shows up (true) or `timeout` passes or EOF.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if self.text().contains(needle) {
                return true;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() || self.eof {
                return false;
            }
            self.read_for(left.min(Duration::from_millis(100)));
        }
    }

    /// Reads until EOF or `timeout`; returns everything read.
    pub fn read_to_eof(&mut self, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        while !self.eof && Instant::now() < end {
            self.read_for(end.saturating_duration_since(Instant::now()));
        }
        self.text()
    }

    /// Types `data` into the terminal.
    pub fn write(&mut self, data: &[u8]) {
        self.master.write_all(data).expect("write pty master");
    }
}
