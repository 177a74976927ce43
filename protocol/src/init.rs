//! What the shim tells `hind-init` over the inherited init socket, and what
//! init answers. The shim turns an OCI `config.json` into an [`InitConfig`]
//! (a flat, already validated form: bincode cannot carry the spec's optional
//! fields directly), so init never parses JSON or guesses defaults.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// fd number at which `hind-init` finds its socket to the shim, unless
/// [`INIT_SOCKET_ENV`] names another.
pub const INIT_SOCKET_FD: i32 = 3;
/// Environment variable of hind-init holding its socket's fd number when
/// preserved fds occupy 3 and up.
pub const INIT_SOCKET_ENV: &str = "_HIND_INIT_FD";

/// Bundle annotations by which `hind run` asks for an overlay root that
/// init mounts inside the container's own mount namespace (docs/design.md).
pub const ANN_OVERLAY_LOWER: &str = "run.hind.overlay.lowerdir";
pub const ANN_OVERLAY_UPPER: &str = "run.hind.overlay.upperdir";
pub const ANN_OVERLAY_WORK: &str = "run.hind.overlay.workdir";
/// `"true"`: mount with `volatile` (no syncs of the upper layer, which is
/// unusable after a crash): for `--rm` containers, whose upper dir is
/// thrown away anyway. Without it, unmounting the overlay at exit syncs
/// the whole filesystem under the upper dir.
pub const ANN_OVERLAY_VOLATILE: &str = "run.hind.overlay.volatile";
/// The `--group-add` gids alone (comma-separated), also contained in
/// `process.user.additionalGids`: `exec -u USER` gives them to USER on top
/// of USER's own groups, as Docker does.
pub const ANN_GROUP_ADD: &str = "run.hind.group-add";
/// Mount destinations (a JSON array of strings) whose source, an empty
/// volume dir, init fills with the image's content at that destination
/// before mounting it (Docker's copy-up of a new volume).
pub const ANN_VOLUME_COPY_UP: &str = "run.hind.volume.copy-up";

/// An overlay root filesystem that init mounts inside the container's own
/// mount namespace, so it vanishes with the container and never shows up in
/// (or leaks into) the host's mount table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Overlay {
    /// Lower dirs, top first.
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub volatile: bool,
}

/// One mount inside the container, destination relative to the new root.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Mount {
    pub destination: PathBuf,
    pub kind: String,
    pub source: PathBuf,
    /// `MS_*` flags from the OCI options (nix `MsFlags` bits).
    pub flags: u64,
    /// Propagation flags applied after the mount (`MS_PRIVATE`, ...), if any.
    pub propagation: u64,
    /// Options the kernel parses itself (`mode=755`, `size=64m`, ...).
    pub data: String,
    /// A volume bind: if `source` is an empty dir, copy the image's content
    /// at `destination` into it first (annotation `run.hind.volume.copy-up`).
    pub copy_up: bool,
}

/// A device node created in the container's `/dev`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Device {
    pub path: PathBuf,
    /// `c`, `b`, `u` or `p` as in the OCI spec.
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rlimit {
    /// `RLIMIT_*` resource number.
    pub resource: u32,
    pub soft: u64,
    pub hard: u64,
}

/// The container process and its identity.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Process {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub terminal: bool,
    /// Initial window size (rows, cols) for the pty.
    pub console_size: Option<(u16, u16)>,
    pub no_new_privileges: bool,
    pub rlimits: Vec<Rlimit>,
    pub oom_score_adj: Option<i32>,
    /// Capability numbers per set; `None` leaves the sets as inherited.
    pub capabilities: Option<Capabilities>,
    /// The seccomp filter, compiled by the shim from the spec's
    /// `linux.seccomp`; `None` runs unconfined. Init loads it as late as
    /// it can (docs/design.md, "Seccomp").
    pub seccomp: Option<SeccompFilter>,
    /// Die with the parent (PR_SET_PDEATHSIG): a shim's containers go with
    /// their shim. Off for `hind-runc`, whose caller outlives the short
    /// `create` that starts init and supervises the container itself.
    pub kill_with_parent: bool,
    /// fds 3 .. 3+N that the command inherits as they are (`--preserve-fds`);
    /// init's own socket then sits at 3+N (see [`INIT_SOCKET_ENV`]).
    pub preserve_fds: u32,
    /// AppArmor profile to exec the command under (host has AppArmor).
    pub apparmor_profile: Option<String>,
    /// SELinux label to exec the command under (host has SELinux).
    pub selinux_label: Option<String>,
}

/// An OCI hook: a program run with the container's state on stdin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Hook {
    pub path: PathBuf,
    /// argv, `args[0]` included (the spec's `args`); empty means `[path]`.
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// Seconds after which the hook is killed and counts as failed.
    pub timeout: Option<u32>,
}

/// The hooks init runs itself, inside the container's namespaces, each
/// with `state` (OCI state JSON) on stdin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct InitHooks {
    /// After the mounts, before pivot_root (paths resolve on the host).
    pub create_container: Vec<Hook>,
    /// After the start, right before the user's command (paths resolve in
    /// the container).
    pub start_container: Vec<Hook>,
    /// The state createContainer hooks read (status "creating").
    pub create_state: String,
    /// The state startContainer hooks read (status "created").
    pub start_state: String,
}

/// A classic BPF seccomp program, ready for seccomp(2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SeccompFilter {
    /// `struct sock_filter`s (code u16, jt u8, jf u8, k u32), 8 bytes
    /// each in native byte order: the shim and init run on one machine.
    #[serde(with = "serde_bytes")]
    pub program: Vec<u8>,
    /// `SECCOMP_FILTER_FLAG_*` bits for seccomp(2).
    pub flags: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Capabilities {
    pub bounding: Vec<u8>,
    pub effective: Vec<u8>,
    pub permitted: Vec<u8>,
    pub inheritable: Vec<u8>,
    pub ambient: Vec<u8>,
}

/// Everything init needs to turn itself into the container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct InitConfig {
    pub id: String,
    pub process: Process,
    /// The directory that becomes `/` (absolute).
    pub rootfs: PathBuf,
    pub rootfs_readonly: bool,
    /// When set, `rootfs` is first made an overlay mount of these dirs.
    pub overlay: Option<Overlay>,
    /// Propagation of `/` inside the container (`MS_PRIVATE` by default).
    pub rootfs_propagation: u64,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub mounts: Vec<Mount>,
    pub devices: Vec<Device>,
    pub masked_paths: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    pub sysctl: Vec<(String, String)>,
    /// Bring `lo` up: the container has its own, fresh network namespace.
    pub loopback_up: bool,
    /// Files to write `0` into, first thing, to join the container's
    /// cgroup (each v1 hierarchy's `tasks`): the shim has created the
    /// cgroup and applied its limits already. Empty when the shim moved
    /// init in itself.
    pub cgroup_join: Vec<PathBuf>,
    /// Unshare the cgroup namespace here rather than at clone time: init is
    /// in its cgroup by then, so that cgroup becomes the namespace's root
    /// and `/proc/self/cgroup` inside reads `/`.
    pub new_cgroup_ns: bool,
    pub hooks: InitHooks,
}

/// What the setns helper (`hind-init` started for `hind exec`) needs to
/// join a running container and start one more process in it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ExecConfig {
    /// The container's init, whose namespaces are joined.
    pub init_pid: i32,
    /// Namespace names under /proc/PID/ns to join (`ipc`, `uts`, `net`,
    /// `pid`, `cgroup`, `mnt`), in that order.
    pub namespaces: Vec<String>,
    /// The container's cgroup dirs, one per hierarchy, joined first.
    pub cgroups: Vec<PathBuf>,
    pub process: Process,
    /// `-u` as typed, resolved in the container's /etc/passwd and
    /// /etc/group once its mount namespace is joined. When set,
    /// `process.additional_gids` holds only the container's `--group-add`
    /// gids; the user's own groups come first.
    pub user: Option<String>,
}

/// Shim -> init.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToInit {
    Config(Box<InitConfig>),
    /// Be the setns helper for one `hind exec`.
    Exec(Box<ExecConfig>),
    /// Exec the user's command now.
    Start,
    /// Sent with a listening unix socket (SCM_RIGHTS) by `hind-runc create`,
    /// which exits after this: wait for one connection on it (`hind-runc
    /// start`) and go on with [`ToInit::Start`] over that connection.
    Detach,
}

/// Init -> shim. A successful exec is seen by the shim as EOF on the socket
/// (init's end is close-on-exec).
#[derive(Debug, Serialize, Deserialize)]
pub enum FromInit {
    /// From the setns helper: the pid (in the shim's namespace) of the
    /// process it forked inside the container, now the shim's child.
    /// Always the first frame: that process writes nothing before it.
    ExecPid(i32),
    /// Sent together with the pty master fd (SCM_RIGHTS).
    PtyMaster,
    /// Everything up to the exec is done; waiting for [`ToInit::Start`].
    Created,
    /// A step failed; init exits with `exit_code` right after.
    Failed { message: String, exit_code: i32 },
}
