//! The runtime under test ([`crate::runc::runtime_bin`]) driven by its real
//! callers, each private to one test:
//!
//! - [`Podman`]: podman 4.3, which has conmon run `create` and `exec` and
//!   runs `start`, `kill`, `pause`, `resume`, `delete` itself. Its storage
//!   (`--root`), `--tmpdir`, config files (`CONTAINERS_CONF`,
//!   `CONTAINERS_STORAGE_CONF`, `CONTAINERS_REGISTRIES_CONF`, and the
//!   signature policy of `load`, so the host's config does not matter),
//!   file locks (instead of the host-wide `/dev/shm/libpod_lock`) and
//!   `TMPDIR` live under `<scratch>/podman`, `--runroot` is `<scratch>/pr`
//!   (podman refuses one longer than 50 bytes). It uses the cgroupfs
//!   manager, a file events log, and the CNI network backend pointed at an
//!   empty config and plugin dir: containers run with `--network none`, and
//!   nothing of the host's networking is read or written. Containers go
//!   under the env's cgroup parent (`<parent>/libpod-<id>`), so the
//!   [`TestEnv`] leak checks see their cgroups.
//! - [`Containerd`]: a `containerd` 1.6 of the test's own (root, state,
//!   sockets and `opt` dir under `<scratch>/ctd`, the CRI plugin disabled,
//!   overlayfs snapshotter), driven with `ctr`, whose
//!   `containerd-shim-runc-v2` calls the runtime with
//!   `--root <scratch>/ctd/runc/<ns>`; containers get the cgroup
//!   `<parent>/<id>`.
//!
//! Both load the busybox test image from a `docker save` archive built by
//! [`crate::oci::docker_archive`] (no network), tagged [`IMAGE`].
//!
//! # What is still global
//!
//! - podman never passes `--root` to the runtime (and its exit command
//!   would drop a `--runtime-flag root=`), so its containers' runtime state
//!   lives in the runtime's default root (`/run/runc`, `/run/hind-runc`);
//!   the teardown asks the runtime (`list --format json`) that no container
//!   whose bundle is under this test's dir is left there.
//! - conmon makes a `conmon` cgroup under the cgroup parent and never
//!   removes it: the teardown does, once it is empty.
//! - conmon's console socket is `/tmp/conmon-term.XXXXXX` whatever
//!   `TMPDIR` says (conmon removes it).
//! - `podman load` updates the image library's blob-info cache in
//!   `/var/lib/containers/cache` (a cache keyed by digest; skopeo uses it
//!   too).
//! - containerd's shim listens on `/run/containerd/s/<hash>` (fixed in
//!   containerd 1.6); the teardown checks that the socket of each container
//!   it ran is gone.
//!
//! # Teardown
//!
//! [`Podman::finish`] and [`Containerd::finish`] remove every container,
//! wait for the caller's helper processes (conmon, `podman container
//! cleanup`, shims) to exit, stop containerd, remove podman's storage, and
//! panic with what was left over (containers, runtime state, processes,
//! mounts). Dropping either without `finish` (a failing test) does the same
//! cleanup without the panic. Call `finish` before [`TestEnv::finish`].

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::oci::{docker_archive, ImageBuilder, Layer};
use crate::process::{self, Output, PtyRunning};
use crate::{cgroup, clean, TestEnv};

/// The name both callers know the busybox test image by.
pub const IMAGE: &str = "localhost/hindtest/busybox:latest";

/// The containerd namespace of every test.
pub const NAMESPACE: &str = "hindtest";

/// How long the callers' helper processes (conmon and its exit command,
/// containerd shims) may take to go away once their container is gone.
const HELPERS_GRACE: Duration = Duration::from_secs(15);

fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

#[track_caller]
fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

#[track_caller]
fn mkdir(path: &Path) {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
}

/// Writes the busybox test image, tagged [`IMAGE`], as a `docker save`
/// archive at `dest`.
pub fn busybox_archive(dest: &Path) {
    let img = ImageBuilder::new()
        .layer(Layer::busybox())
        .env("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .cmd(&["sh"]);
    docker_archive(dest, &[(&img, &[IMAGE])]);
}

/// One container as `runtime [--root ROOT] list --format json` shows it.
#[derive(Debug, Clone)]
pub struct RuntimeContainer {
    pub id: String,
    pub bundle: String,
    pub status: String,
}

/// The containers the runtime under test knows in `root` (its default root
/// when `None`). runc prints `null` for none.
#[track_caller]
pub fn runtime_containers(root: Option<&Path>) -> Vec<RuntimeContainer> {
    try_runtime_containers(root).unwrap_or_else(|e| panic!("{e}"))
}

/// [`runtime_containers`], with the failure as a message.
fn try_runtime_containers(root: Option<&Path>) -> Result<Vec<RuntimeContainer>, String> {
    let mut c = Command::new(crate::runc::runtime_bin());
    if let Some(r) = root {
        c.arg("--root").arg(r);
    }
    c.args(["list", "--format", "json"]);
    let out = process::run(c, b"", crate::default_timeout());
    if out.code != 0 || out.timed_out {
        return Err(format!("runtime list --format json failed:\n{out}"));
    }
    let v: Value = serde_json::from_str(out.stdout.trim())
        .map_err(|e| format!("runtime list --format json: {e}:\n{out}"))?;
    Ok(v.as_array()
        .map(|a| {
            a.iter()
                .map(|c| RuntimeContainer {
                    id: c["id"].as_str().unwrap_or_default().to_string(),
                    bundle: c["bundle"].as_str().unwrap_or_default().to_string(),
                    status: c["status"].as_str().unwrap_or_default().to_string(),
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Waits up to [`HELPERS_GRACE`] for the processes naming `dir` to exit,
/// then SIGKILLs them (all started by this test, through its caller) and
/// reports each as a problem.
fn wait_helpers_gone(dir: &Path, what: &str, problems: &mut Vec<String>) {
    let gone = crate::poll(HELPERS_GRACE, || {
        clean::processes_naming(dir).is_empty().then_some(())
    });
    if gone.is_none() {
        for (pid, desc) in clean::processes_naming(dir) {
            problems.push(format!("{what} process did not exit: {desc}"));
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// podman, private to one test (see the module doc).
pub struct Podman<'e> {
    env: &'e TestEnv,
    dir: PathBuf,
    runroot: PathBuf,
    runtime: PathBuf,
    done: bool,
}

impl<'e> Podman<'e> {
    /// Sets podman up under `<scratch>/podman` and loads the busybox image.
    #[track_caller]
    pub fn new(env: &'e TestEnv) -> Podman<'e> {
        let runtime = crate::runc::runtime_bin();
        let dir = env.scratch().join("podman");
        for d in ["tmp", "networks", "cni-plugins"] {
            mkdir(&dir.join(d));
        }
        let runroot = env.scratch().join("pr");
        assert!(
            path_str(&runroot).len() <= 50,
            "podman's runroot {} is longer than podman allows (50): use a shorter test name",
            runroot.display()
        );
        let d = path_str(&dir);
        let r = path_str(&runroot);
        // Everything podman would take from /etc/containers or
        // /usr/share/containers and that touches the host is set here.
        write(
            &dir.join("containers.conf"),
            &format!(
                "[engine]\n\
                 cgroup_manager = \"cgroupfs\"\n\
                 events_logger = \"file\"\n\
                 lock_type = \"file\"\n\
                 tmp_dir = \"{d}/tmp\"\n\
                 image_copy_tmp_dir = \"{d}/tmp\"\n\
                 volume_path = \"{d}/root/volumes\"\n\
                 [network]\n\
                 network_backend = \"cni\"\n\
                 network_config_dir = \"{d}/networks\"\n\
                 cni_plugin_dirs = [\"{d}/cni-plugins\"]\n"
            ),
        );
        write(
            &dir.join("storage.conf"),
            &format!(
                "[storage]\n\
                 driver = \"overlay\"\n\
                 graphroot = \"{d}/root\"\n\
                 runroot = \"{r}\"\n"
            ),
        );
        write(
            &dir.join("registries.conf"),
            "unqualified-search-registries = []\n",
        );
        // `load` checks the image against a signature policy, by default
        // the host's /etc/containers/policy.json.
        write(
            &dir.join("policy.json"),
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        );
        let p = Podman {
            env,
            dir,
            runroot,
            runtime,
            done: false,
        };
        let archive = p.dir.join("busybox.tar");
        busybox_archive(&archive);
        let policy = p.dir.join("policy.json");
        p.run(&[
            "load",
            "--signature-policy",
            path_str(&policy),
            "-i",
            path_str(&archive),
        ])
        .expect_success();
        p
    }

    /// `<scratch>/podman`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `podman` with the private global flags and environment; add args.
    pub fn cmd(&self) -> Command {
        let d = &self.dir;
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
            .env("TMPDIR", d.join("tmp"))
            .env_remove("CONTAINER_HOST")
            .env_remove("CONTAINER_CONNECTION")
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(&self.runroot)
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .arg("--runtime")
            .arg(&self.runtime);
        c
    }

    /// The flags every `podman run` of the tests needs: the local image
    /// only, no network, the env's cgroup parent, and rlimits this host
    /// allows (podman asks for a higher RLIMIT_NOFILE by default than the
    /// hard limit here).
    pub fn run_flags(&self) -> Vec<String> {
        [
            "--pull",
            "never",
            "--network",
            "none",
            "--cgroup-parent",
            self.env.cgroup_parent(),
            "--ulimit",
            "nofile=20000:20000",
            "--ulimit",
            "nproc=1000:1000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// `podman ARGS` to completion, empty stdin.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, b"")
    }

    /// `podman ARGS` with `input` on stdin, then EOF.
    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        process::run(c, input, crate::default_timeout())
    }

    /// `podman run <run_flags> FLAGS IMAGE CMD...`.
    pub fn run_container(&self, flags: &[&str], cmd: &[&str]) -> Output {
        self.run_container_with_stdin(flags, cmd, b"")
    }

    /// [`Podman::run_container`] with `input` on stdin.
    pub fn run_container_with_stdin(&self, flags: &[&str], cmd: &[&str], input: &[u8]) -> Output {
        let mut c = self.cmd();
        c.arg("run").args(self.run_flags()).args(flags).arg(IMAGE);
        c.args(cmd);
        process::run(c, input, crate::default_timeout())
    }

    /// Starts `podman ARGS` on a new pty of `rows` x `cols` (for `-t`).
    pub fn spawn_pty(&self, args: &[&str], rows: u16, cols: u16) -> PtyRunning {
        let mut c = self.cmd();
        c.args(args);
        PtyRunning::spawn(c, rows, cols, crate::default_timeout())
    }

    /// `podman inspect -f FORMAT ID`, trimmed.
    #[track_caller]
    pub fn inspect(&self, id: &str, format: &str) -> String {
        let out = self.run(&["inspect", "-f", format, id]);
        out.expect_success();
        out.stdout.trim().to_string()
    }

    /// The cgroup podman asks the runtime to make for container `id`:
    /// `<cgroup parent>/libpod-<id>` (cgroupfs manager).
    pub fn cgroup_path(&self, id: &str) -> String {
        format!("{}/libpod-{id}", self.env.cgroup_parent())
    }

    /// Removes everything and returns what was left over.
    fn teardown(&mut self) -> Vec<String> {
        self.done = true;
        let mut problems = Vec::new();
        let left = self.run(&["ps", "--all", "--quiet", "--no-trunc"]);
        if !left.stdout.trim().is_empty() {
            problems.push(format!(
                "podman containers left: {:?}",
                left.stdout.split_whitespace().collect::<Vec<_>>()
            ));
        }
        let rm = self.run(&["rm", "--all", "--force", "--time", "0"]);
        if rm.code != 0 {
            problems.push(format!("podman rm --all --force failed:\n{rm}"));
        }
        // conmon runs `podman container cleanup` when a container exits;
        // let it (and conmon) finish before the storage goes.
        wait_helpers_gone(&self.dir, "podman", &mut problems);
        wait_helpers_gone(&self.runroot, "podman", &mut problems);
        let mine = path_str(self.env.scratch()).to_string();
        let listed = try_runtime_containers(None).unwrap_or_else(|e| {
            problems.push(e);
            Vec::new()
        });
        for c in listed {
            if c.bundle.starts_with(&mine) {
                problems.push(format!(
                    "runtime state left in its default root: {} ({}, bundle {})",
                    c.id, c.status, c.bundle
                ));
                let mut d = Command::new(&self.runtime);
                d.args(["delete", "--force", &c.id]);
                process::run(d, b"", crate::default_timeout());
            }
        }
        // podman 4.3's reset sometimes races its own event log while it
        // removes the tmpdir (`unlinkat .../tmp/events: directory not
        // empty`); a second run finds the rest.
        let mut reset = self.run(&["system", "reset", "--force"]);
        if reset.code != 0 {
            std::thread::sleep(Duration::from_millis(500));
            reset = self.run(&["system", "reset", "--force"]);
        }
        if reset.code != 0 {
            problems.push(format!("podman system reset failed:\n{reset}"));
        }
        for m in clean::mounts_under(&self.dir)
            .into_iter()
            .chain(clean::mounts_under(&self.runroot))
        {
            problems.push(format!("podman left a mount at {}", m.display()));
        }
        // conmon's own cgroup (cgroupfs manager: `<parent>/conmon`),
        // made by podman, removed by nobody.
        for h in cgroup::hierarchies() {
            let conmon = cgroup::join(&h, self.env.cgroup_parent()).join("conmon");
            if conmon.is_dir() {
                let pids = cgroup::subtree_pids(&conmon);
                if !pids.is_empty() {
                    problems.push(format!("processes left in {}: {pids:?}", conmon.display()));
                    continue;
                }
                let gone = crate::poll(Duration::from_secs(2), || fs::remove_dir(&conmon).ok());
                if gone.is_none() {
                    problems.push(format!("cannot remove {}", conmon.display()));
                }
            }
        }
        problems
    }

    /// Removes every container and the storage; panics if anything was
    /// left behind (containers, runtime state, processes, mounts).
    #[track_caller]
    pub fn finish(mut self) {
        let problems = self.teardown();
        assert!(
            problems.is_empty(),
            "podman left things behind:\n  {}",
            problems.join("\n  ")
        );
    }
}

impl Drop for Podman<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let problems = self.teardown();
        if !problems.is_empty() && !std::thread::panicking() {
            panic!("podman left things behind:\n  {}", problems.join("\n  "));
        }
    }
}

/// A containerd daemon private to one test, driven with `ctr` (see the
/// module doc).
pub struct Containerd<'e> {
    env: &'e TestEnv,
    dir: PathBuf,
    runtime: PathBuf,
    daemon: Option<Child>,
    /// Ids passed to [`Containerd::run_flags`], for the shim socket check.
    ids: std::cell::RefCell<Vec<String>>,
}

impl<'e> Containerd<'e> {
    /// Starts containerd under `<scratch>/ctd`, waits until it answers and
    /// imports the busybox image into namespace [`NAMESPACE`].
    #[track_caller]
    pub fn start(env: &'e TestEnv) -> Containerd<'e> {
        let runtime = crate::runc::runtime_bin();
        // Short names: the sockets must fit in sun_path (108 bytes).
        let dir = env.scratch().join("ctd");
        for d in ["tmp", "fifo", "opt"] {
            mkdir(&dir.join(d));
        }
        let d = path_str(&dir);
        write(
            &dir.join("config.toml"),
            &format!(
                "version = 2\n\
                 root = \"{d}/root\"\n\
                 state = \"{d}/state\"\n\
                 disabled_plugins = [\n  \
                   \"io.containerd.grpc.v1.cri\",\n  \
                   \"io.containerd.snapshotter.v1.aufs\",\n  \
                   \"io.containerd.snapshotter.v1.btrfs\",\n  \
                   \"io.containerd.snapshotter.v1.devmapper\",\n  \
                   \"io.containerd.snapshotter.v1.zfs\",\n\
                 ]\n\
                 [grpc]\n  address = \"{d}/c.sock\"\n\
                 [ttrpc]\n  address = \"{d}/c.ttrpc\"\n\
                 [debug]\n  address = \"{d}/d.sock\"\n\
                 [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{d}/opt\"\n"
            ),
        );
        let log = fs::File::create(dir.join("containerd.log")).expect("create containerd.log");
        let mut c = Command::new("containerd");
        c.arg("--config")
            .arg(dir.join("config.toml"))
            .env("TMPDIR", dir.join("tmp"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup containerd.log"))
            .stderr(log);
        let child = c
            .spawn()
            .unwrap_or_else(|e| panic!("spawn containerd: {e}"));
        let mut ctd = Containerd {
            env,
            dir,
            runtime,
            daemon: Some(child),
            ids: Default::default(),
        };
        let up = crate::poll(Duration::from_secs(30), || {
            if let Some(Ok(Some(st))) = ctd.daemon.as_mut().map(|c| c.try_wait()) {
                panic!("containerd exited ({st}):\n{}", ctd.log());
            }
            (ctd.dir.join("c.sock").exists() && ctd.ctr(&["version"]).code == 0).then_some(())
        });
        assert!(up.is_some(), "containerd did not come up:\n{}", ctd.log());
        let archive = ctd.dir.join("busybox.tar");
        busybox_archive(&archive);
        ctd.ctr(&["images", "import", path_str(&archive)])
            .expect_success();
        ctd
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// `<scratch>/ctd`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The gRPC socket.
    pub fn address(&self) -> PathBuf {
        self.dir.join("c.sock")
    }

    /// The runtime's `--root` as the shim passes it: `--runc-root` plus
    /// the namespace.
    pub fn runtime_root(&self) -> PathBuf {
        self.dir.join("runc").join(NAMESPACE)
    }

    /// Where `ctr` makes the stdio fifos (`--fifo-dir`), instead of
    /// `/run/containerd/fifo`.
    pub fn fifo_dir(&self) -> PathBuf {
        self.dir.join("fifo")
    }

    /// `ctr -a SOCK -n hindtest` with `TMPDIR` under the test dir; add
    /// args.
    pub fn ctr_cmd(&self) -> Command {
        let mut c = Command::new("ctr");
        c.env("TMPDIR", self.dir.join("tmp"))
            .env_remove("CONTAINERD_ADDRESS")
            .env_remove("CONTAINERD_NAMESPACE")
            .env_remove("CONTAINERD_SNAPSHOTTER")
            .arg("-a")
            .arg(self.address())
            .args(["-n", NAMESPACE]);
        c
    }

    /// `ctr ARGS` to completion, empty stdin.
    pub fn ctr(&self, args: &[&str]) -> Output {
        let mut c = self.ctr_cmd();
        c.args(args);
        process::run(c, b"", crate::default_timeout())
    }

    /// Starts `ctr ARGS` on a new pty of `rows` x `cols` (for `-t`).
    pub fn spawn_pty(&self, args: &[&str], rows: u16, cols: u16) -> PtyRunning {
        let mut c = self.ctr_cmd();
        c.args(args);
        PtyRunning::spawn(c, rows, cols, crate::default_timeout())
    }

    /// The flags of `ctr run` for container `id`: the runtime under test
    /// (`--runc-binary`), its root, the fifo dir, and the cgroup
    /// `<cgroup parent>/<id>`.
    pub fn run_flags(&self, id: &str) -> Vec<String> {
        self.env.watch_state_dir(self.runtime_root());
        self.ids.borrow_mut().push(id.to_string());
        vec![
            "--runc-binary".into(),
            path_str(&self.runtime).into(),
            "--runc-root".into(),
            path_str(&self.dir.join("runc")).into(),
            "--fifo-dir".into(),
            path_str(&self.fifo_dir()).into(),
            "--cgroup".into(),
            self.cgroup_path(id),
        ]
    }

    /// `<cgroup parent>/<id>`, the cgroup [`Containerd::run_flags`] asks
    /// for.
    pub fn cgroup_path(&self, id: &str) -> String {
        format!("{}/{id}", self.env.cgroup_parent())
    }

    /// `ctr run <run_flags> FLAGS IMAGE ID CMD...`.
    pub fn run_container(&self, flags: &[&str], id: &str, cmd: &[&str]) -> Output {
        let mut c = self.ctr_cmd();
        c.arg("run")
            .args(self.run_flags(id))
            .args(flags)
            .args([IMAGE, id])
            .args(cmd);
        process::run(c, b"", crate::default_timeout())
    }

    /// `ctr task exec --fifo-dir DIR --exec-id EXEC FLAGS ID CMD...`.
    pub fn exec(&self, id: &str, exec_id: &str, flags: &[&str], cmd: &[&str]) -> Output {
        let mut c = self.ctr_cmd();
        c.args(["task", "exec", "--fifo-dir"])
            .arg(self.fifo_dir())
            .args(["--exec-id", exec_id])
            .args(flags)
            .arg(id)
            .args(cmd);
        process::run(c, b"", crate::default_timeout())
    }

    /// The task of `id` as `ctr task ls` shows it: (pid, status), e.g.
    /// `(1234, "RUNNING")`; `None` if there is no task.
    #[track_caller]
    pub fn task(&self, id: &str) -> Option<(i32, String)> {
        self.try_task(id).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Containerd::task`], with a failing `ctr` as a message.
    fn try_task(&self, id: &str) -> Result<Option<(i32, String)>, String> {
        let out = self.ctr(&["task", "ls"]);
        if out.code != 0 || out.timed_out {
            return Err(format!("ctr task ls failed:\n{out}"));
        }
        Ok(out.stdout.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[0] == id).then(|| (f[1].parse().unwrap_or(0), f[2].to_string()))
        }))
    }

    /// Waits up to 20 s for the task of `id` to have `status`.
    pub fn wait_task_status(&self, id: &str, status: &str) -> bool {
        crate::poll(Duration::from_secs(20), || {
            self.task(id).filter(|(_, s)| s == status).map(|_| ())
        })
        .is_some()
    }

    /// The shim's socket for container `id`: containerd 1.6 puts it at
    /// `/run/containerd/s/<sha256 of "<grpc address>/<ns>/<id>">`.
    pub fn shim_socket(&self, id: &str) -> PathBuf {
        let key = format!("{}/{NAMESPACE}/{id}", path_str(&self.address()));
        Path::new("/run/containerd/s").join(format!("{:x}", Sha256::digest(key.as_bytes())))
    }

    /// Removes everything, stops containerd, and returns what was left.
    fn teardown(&mut self) -> Vec<String> {
        let Some(mut daemon) = self.daemon.take() else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        let ls = self.ctr(&["containers", "ls", "-q"]);
        for id in ls.stdout.split_whitespace() {
            problems.push(format!("containerd container left: {id}"));
            self.ctr(&["task", "kill", "-s", "SIGKILL", id]);
            crate::poll(Duration::from_secs(10), || match self.try_task(id) {
                Ok(Some((_, s))) if s != "STOPPED" => None,
                _ => Some(()),
            });
            self.ctr(&["task", "delete", "--force", id]);
            self.ctr(&["containers", "rm", id]);
        }
        let _ = kill(Pid::from_raw(daemon.id() as i32), Signal::SIGTERM);
        let stopped = crate::poll(Duration::from_secs(10), || daemon.try_wait().ok().flatten());
        if stopped.is_none() {
            problems.push("containerd did not stop on SIGTERM".to_string());
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
        // Shims name the daemon's socket on their command line.
        wait_helpers_gone(&self.dir, "containerd shim", &mut problems);
        for id in self.ids.borrow().iter() {
            let s = self.shim_socket(id);
            if s.exists() {
                problems.push(format!("shim socket of {id} left: {}", s.display()));
                let _ = fs::remove_file(&s);
            }
        }
        if self.runtime_root().exists() {
            let listed = try_runtime_containers(Some(&self.runtime_root())).unwrap_or_else(|e| {
                problems.push(e);
                Vec::new()
            });
            for c in listed {
                problems.push(format!(
                    "runtime state left in {}: {} ({})",
                    self.runtime_root().display(),
                    c.id,
                    c.status
                ));
            }
        }
        for m in clean::mounts_under(&self.dir) {
            problems.push(format!("containerd left a mount at {}", m.display()));
        }
        problems
    }

    /// Removes the test's containers, stops containerd and panics if
    /// anything was left behind (containers, shims, runtime state, mounts).
    #[track_caller]
    pub fn finish(mut self) {
        let problems = self.teardown();
        assert!(
            problems.is_empty(),
            "containerd left things behind:\n  {}\ncontainerd log:\n{}",
            problems.join("\n  "),
            self.log()
        );
    }
}

impl Drop for Containerd<'_> {
    fn drop(&mut self) {
        let problems = self.teardown();
        if !problems.is_empty() && !std::thread::panicking() {
            panic!(
                "containerd left things behind:\n  {}",
                problems.join("\n  ")
            );
        }
    }
}
