//! [`TestEnv`]: one test's private world. Each test gets its own directory
//! `/tmp/hind-e2e/<name>-<pid>-<n>` (state root in `root/`, scratch files in
//! `scratch/`) and its own cgroup parent `/hind-e2e-<pid>-<n>`, handed to
//! every `hind` it runs via `--root` and `HIND_CGROUP_PARENT`, so tests never
//! see each other's containers and can run in parallel threads.
//!
//! On the way out ([`TestEnv::finish`], or drop) it checks that the test left
//! nothing behind and then removes everything anyway.
//!
//! Networking: a plain env runs `hind` with `HIND_NETWORK=none`, so no test
//! makes bridges or firewall rules in the machine's network namespace. An
//! env from [`TestEnv::new_netns`] runs every `hind` inside a private
//! [`NetNs`] instead and leaves the engine's default (bridge) in force.

use std::cell::{Cell, RefCell};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::netns::NetNs;
use crate::process::{self, Output, PtyRunning, Running};
use crate::{cgroup, clean};

static COUNTER: AtomicUsize = AtomicUsize::new(0);
static SWEPT: OnceLock<()> = OnceLock::new();

/// Shell script of a held container: see [`TestEnv::spawn_held`].
pub const HOLD: &str = "echo ready; read -t 30 x; echo bye";

/// How long a leak may take to go away on its own (hind cleaning up
/// asynchronously) before it counts.
const GRACE: Duration = Duration::from_secs(2);

pub struct TestEnv {
    base: PathBuf,
    root: PathBuf,
    scratch: PathBuf,
    cgroup_parent: String,
    keep_containers: Cell<bool>,
    /// More directories that must be empty at the end
    /// ([`TestEnv::watch_state_dir`]).
    watched: RefCell<Vec<PathBuf>>,
    done: bool,
    /// The private network namespace every `hind` runs in, if any.
    netns: Option<NetNs>,
}

impl TestEnv {
    /// A fresh environment for the test called `name` (used in paths only).
    pub fn new(name: &str) -> TestEnv {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the end-to-end tests need root"
        );
        SWEPT.get_or_init(clean::sweep_stale);
        let pid = std::process::id();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let base = Path::new(crate::E2E_DIR).join(format!("{name}-{pid}-{n}"));
        let _ = clean::remove_tree(&base);
        let scratch = base.join("scratch");
        fs::create_dir_all(&scratch).expect("create test scratch dir");
        TestEnv {
            root: base.join("root"),
            scratch,
            base,
            cgroup_parent: format!("/hind-e2e-{pid}-{n}"),
            keep_containers: Cell::new(false),
            watched: RefCell::new(Vec::new()),
            done: false,
            netns: None,
        }
    }

    /// [`TestEnv::new`] whose `hind` commands all run in a fresh private
    /// network namespace (with `lo` up) and use the default network mode.
    pub fn new_netns(name: &str) -> TestEnv {
        let mut env = TestEnv::new(name);
        env.netns = Some(NetNs::new());
        env
    }

    /// The env's private network namespace ([`TestEnv::new_netns`]).
    pub fn netns(&self) -> Option<&NetNs> {
        self.netns.as_ref()
    }

    /// For a [`TestEnv::new_netns`] env: veth links and published ports
    /// left in its namespace. Call after the test's containers are gone.
    #[track_caller]
    pub fn netns_leaks(&self) -> Vec<String> {
        self.netns
            .as_ref()
            .expect("netns_leaks needs a TestEnv::new_netns env")
            .leaks()
    }

    /// Runs `c` in the env's namespace with the default network mode, or
    /// sets `HIND_NETWORK=none` when the env has no namespace of its own.
    fn network(&self, c: &mut Command) {
        match &self.netns {
            Some(ns) => {
                ns.enter_on_spawn(c);
                c.env_remove("HIND_NETWORK");
            }
            None => {
                c.env("HIND_NETWORK", "none");
            }
        }
    }

    /// The state root passed as `--root`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Moves the state root to `root` (instead of `<test dir>/root`), for a
    /// test that needs it on a filesystem of its own mounted under
    /// [`TestEnv::scratch`]. That test checks the root for leftovers and
    /// unmounts it before [`TestEnv::finish`].
    pub fn set_root(&mut self, root: PathBuf) {
        self.root = root;
    }

    /// A directory of the test's own, outside the state root.
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// The cgroup parent passed as `HIND_CGROUP_PARENT` (`/hind-e2e-...`).
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// The test runs containers without `--rm`: their directories may stay
    /// (the harness removes them after the leak check).
    pub fn allow_leftover_containers(&self) {
        self.keep_containers.set(true);
    }

    /// `hind --root ROOT` with `HIND_CGROUP_PARENT` set (and the network
    /// setup of the env, see the module doc); add args and run.
    pub fn hind(&self) -> Command {
        let mut c = Command::new(crate::hind_bin());
        c.arg("--root")
            .arg(&self.root)
            .env("HIND_CGROUP_PARENT", &self.cgroup_parent)
            .env_remove("HIND_ROOT");
        self.network(&mut c);
        c
    }

    /// `hind` with `args` and no `--root` flag: the state root comes from
    /// `HIND_ROOT` instead.
    pub fn hind_env_root(&self) -> Command {
        let mut c = Command::new(crate::hind_bin());
        c.env("HIND_ROOT", &self.root)
            .env("HIND_CGROUP_PARENT", &self.cgroup_parent);
        self.network(&mut c);
        c
    }

    /// Runs `hind ARGS` with empty stdin and waits for it.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = self.hind();
        c.args(args);
        process::run(c, b"", crate::default_timeout())
    }

    /// Runs `hind ARGS` with `input` on stdin, then EOF.
    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut c = self.hind();
        c.args(args);
        process::run(c, input, crate::default_timeout())
    }

    /// Runs a prepared command (from [`TestEnv::hind`]) to completion.
    pub fn run_cmd(&self, c: Command) -> Output {
        process::run(c, b"", crate::default_timeout())
    }

    /// Runs `hind ARGS` under `umask`: 0 shows a file hind makes without
    /// an explicit mode, 077 one that others must read but cannot.
    pub fn run_umask(&self, args: &[&str], umask: u32) -> Output {
        use std::os::unix::process::CommandExt;
        let mut c = self.hind();
        c.args(args);
        // SAFETY: umask(2) is async-signal-safe and touches only this child.
        unsafe {
            c.pre_exec(move || {
                libc::umask(umask as libc::mode_t);
                Ok(())
            });
        }
        self.run_cmd(c)
    }

    /// Starts `hind ARGS` in the background with piped stdio.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut c = self.hind();
        c.args(args);
        Running::spawn(c, crate::default_timeout())
    }

    /// Starts `hind ARGS` on a new pty of `rows` x `cols`.
    pub fn spawn_pty(&self, args: &[&str], rows: u16, cols: u16) -> PtyRunning {
        let mut c = self.hind();
        c.args(args);
        PtyRunning::spawn(c, rows, cols, crate::default_timeout())
    }

    /// Starts `hind run --rm -i FLAGS <busybox> sh -c HOLD`: a container
    /// that prints `ready` and then waits for a line or EOF on stdin (at most
    /// 30 s), so the test can look at it from the host while it runs. Panics
    /// if `ready` does not come. Finish with [`Running::release`].
    #[track_caller]
    pub fn spawn_held(&self, flags: &[&str]) -> Running {
        let mut args = vec!["run", "--rm", "-i"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[crate::image::bb(), "sh", "-c", HOLD]);
        let mut r = self.spawn(&args);
        if !r.wait_for_stdout("ready", Duration::from_secs(30)) {
            let out = r.wait();
            panic!("held container did not start:\n{out}");
        }
        r
    }

    /// Ids of the containers under `ROOT/containers`.
    pub fn containers(&self) -> Vec<String> {
        let mut ids: Vec<String> = fs::read_dir(self.root.join("containers"))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// The id of the only container; panics unless there is exactly one.
    #[track_caller]
    pub fn only_container(&self) -> String {
        let ids = self.containers();
        assert_eq!(ids.len(), 1, "expected exactly one container: {ids:?}");
        ids.into_iter().next().unwrap_or_default()
    }

    /// `ROOT/containers/<id>`.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// The parsed `record.json` of container `id`.
    #[track_caller]
    pub fn record(&self, id: &str) -> serde_json::Value {
        let p = self.container_dir(id).join("record.json");
        let data = fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        serde_json::from_slice(&data).unwrap_or_else(|e| panic!("parse {}: {e}", p.display()))
    }

    /// The cgroup parent's directory in the hierarchy carrying `ctrl`.
    pub fn parent_cgroup(&self, ctrl: &str) -> PathBuf {
        cgroup::join(&cgroup::controller_root(ctrl), &self.cgroup_parent)
    }

    /// Waits (up to 20 s) for the container's cgroup in the hierarchy of
    /// `ctrl` to appear, i.e. exactly one child of the parent, and returns
    /// it. Use while a container of this test is running.
    pub fn wait_container_cgroup(&self, ctrl: &str) -> Option<PathBuf> {
        let parent = self.parent_cgroup(ctrl);
        crate::poll(Duration::from_secs(20), || {
            let kids = cgroup::children(&parent);
            (kids.len() == 1).then(|| kids[0].clone())
        })
    }

    /// Adds `dir` (e.g. another runtime's state root) to the directories
    /// that must be empty or absent when the test finishes.
    pub fn watch_state_dir(&self, dir: PathBuf) {
        let mut w = self.watched.borrow_mut();
        if !w.contains(&dir) {
            w.push(dir);
        }
    }

    /// Directories that must be empty at the end unless containers may stay.
    fn state_dirs(&self) -> Vec<PathBuf> {
        if self.keep_containers.get() {
            Vec::new()
        } else {
            let mut dirs = vec![self.root.join("containers"), self.root.join("names")];
            dirs.extend(self.watched.borrow().iter().cloned());
            dirs
        }
    }

    /// Checks that the test left nothing behind (allowing a short grace
    /// period), removes everything regardless, and returns the leaks.
    fn check_and_clean(&mut self) -> Vec<String> {
        self.done = true;
        let mut leaks = Vec::new();
        let clean = crate::poll(GRACE, || {
            leaks = clean::scan(&self.base, &self.cgroup_parent, &self.state_dirs());
            leaks.is_empty().then_some(())
        });
        let problems = clean::force(&self.base, &self.cgroup_parent);
        if clean.is_none() {
            leaks.extend(problems);
            leaks
        } else {
            // Only cleanup trouble left: report it too.
            problems
        }
    }

    /// Asserts that nothing is left: no mount under the test dir, no process
    /// naming it or in its cgroups, no child cgroup under its cgroup parent
    /// (an empty parent is tolerated and removed), and no container or name
    /// left unless [`TestEnv::allow_leftover_containers`]. Then removes the
    /// test dir.
    #[track_caller]
    pub fn finish(mut self) {
        let leaks = self.check_and_clean();
        assert!(
            leaks.is_empty(),
            "test left things behind:\n  {}",
            leaks.join("\n  ")
        );
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let leaks = self.check_and_clean();
        if !leaks.is_empty() && !std::thread::panicking() {
            panic!("test left things behind:\n  {}", leaks.join("\n  "));
        }
    }
}
