//! The command line, as clap types. Flag names follow Docker's.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use protocol::record::{LogOptions, RestartPolicy};

use crate::units;

fn parse_restart(s: &str) -> Result<RestartPolicy, String> {
    match s.split_once(':') {
        None if s == "no" => Ok(RestartPolicy::No),
        None if s == "always" || s == "unless-stopped" => Ok(RestartPolicy::Always),
        None if s == "on-failure" => Ok(RestartPolicy::OnFailure { max_retries: 0 }),
        Some(("on-failure", n)) => n
            .parse()
            .map(|max_retries| RestartPolicy::OnFailure { max_retries })
            .map_err(|_| format!("invalid retry count {n:?}")),
        _ => Err("use no, on-failure[:N], always or unless-stopped".into()),
    }
}

fn parse_log_opt(s: &str) -> Result<(String, u64), String> {
    match s.split_once('=') {
        Some(("max-size", v)) => units::parse_size(v)
            .and_then(|n| {
                if n > 0 {
                    Ok(n as u64)
                } else {
                    Err("must be positive".into())
                }
            })
            .map(|n| ("max-size".into(), n)),
        Some(("max-file", v)) => match v.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(("max-file".into(), n)),
            _ => Err(format!("invalid max-file {v:?}")),
        },
        _ => Err("supported: max-size=SIZE, max-file=N".into()),
    }
}

impl RunArgs {
    pub fn log_options(&self) -> LogOptions {
        let mut o = LogOptions {
            max_size: None,
            max_file: 1,
        };
        for (k, v) in &self.log_opt {
            match k.as_str() {
                "max-size" => o.max_size = Some(*v),
                _ => o.max_file = *v as u32,
            }
        }
        o
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "hind",
    version,
    about = "HIND Is Not Docker: a daemonless container engine",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// State root: images, containers, logs.
    #[arg(long, global = true, env = "HIND_ROOT", default_value = protocol::paths::DEFAULT_ROOT)]
    pub root: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in a new container.
    Run(Box<RunArgs>),
    /// List containers.
    Ps(PsArgs),
    /// Print a container's logs.
    Logs(LogsArgs),
    /// Stop running containers: the stop signal, then SIGKILL.
    Stop(StopArgs),
    /// Start stopped containers.
    Start(StartArgs),
    /// Stop and start containers.
    Restart(StopArgs),
    /// Send a signal to running containers.
    Kill(KillArgs),
    /// Wait for containers to exit and print their exit codes.
    Wait(Containers),
    /// Remove containers.
    Rm(RmArgs),
    /// Show containers as JSON.
    Inspect(InspectArgs),
    /// Attach to a running container's stdio.
    Attach(AttachArgs),
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Pull an image from a registry.
    Pull(PullArgs),
    /// List images.
    Images(ImagesArgs),
    /// Remove images.
    Rmi(RmiArgs),
    /// Give an image another name.
    Tag(TagArgs),
    /// Load images from a docker-save or OCI archive.
    Load(LoadArgs),
    /// Save images to an OCI archive.
    Save(SaveArgs),
    /// Make an image from a root filesystem tar.
    Import(ImportArgs),
    /// Make an image from a container's changes.
    Commit(CommitArgs),
    /// Write a container's filesystem as a tar.
    Export(ExportArgs),
    /// Copy files between a container and the host.
    Cp(CpArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// List a container's published ports.
    Port(PortArgs),
    /// Release a removed container's network (run by the shim for --rm).
    #[command(hide = true)]
    NetRelease(NetReleaseArgs),
    /// Release a removed container's disk quota (run by the shim for --rm).
    #[command(hide = true)]
    QuotaRelease(QuotaReleaseArgs),
    /// Store credentials for a registry.
    Login(LoginArgs),
    /// Forget the credentials for a registry.
    Logout(LogoutArgs),
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images.
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Remove images.
    Rm(RmiArgs),
    /// Remove unused images, layers and blobs.
    Prune(ImagePruneArgs),
    /// Pull an image from a registry.
    Pull(PullArgs),
    /// Give an image another name.
    Tag(TagArgs),
    /// Load images from a docker-save or OCI archive.
    Load(LoadArgs),
    /// Save images to an OCI archive.
    Save(SaveArgs),
    /// Make an image from a root filesystem tar.
    Import(ImportArgs),
    /// Show images as JSON.
    Inspect(ImageInspectArgs),
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Platform of a multi-platform image (os/arch[/variant]).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// No progress output.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// NAME[:TAG] or NAME@DIGEST.
    pub reference: String,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    #[command(flatten)]
    pub list: ListArgs,
    /// Show all images (accepted for Docker compatibility).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Only images of this repository (NAME or NAME:TAG).
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Remove the image even if a container uses it (its tags go; the
    /// content stays until the container is gone).
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Archive to read (default: stdin).
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// No progress output.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// File to write (default: stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Commit message.
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Root filesystem tar (gzip or zstd too), or - for stdin.
    pub file: String,
    /// Name the image.
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Commit message.
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Author.
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    pub container: String,
    /// Name the image.
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// File to write (default: stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    pub container: String,
}

/// `hind cp [-a] [-L] CONTAINER:SRC_PATH DEST_PATH|-` or
/// `hind cp [-a] [-L] SRC_PATH|- CONTAINER:DEST_PATH`.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode: keep the source's uid/gid (and set-id bits and file
    /// capabilities); without it the copies belong to root in the
    /// container and to the calling user on the host.
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Follow SRC_PATH if it is a symlink (links inside a copied directory
    /// stay links).
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Print nothing (hind never prints progress; accepted for Docker
    /// compatibility).
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// CONTAINER:PATH, a host path, or - to read a tar from stdin.
    #[arg(value_name = "SRC_PATH")]
    pub src: String,
    /// CONTAINER:PATH, a host path, or - to write a tar to stdout.
    #[arg(value_name = "DEST_PATH")]
    pub dest: String,
}

#[derive(Debug, Args)]
pub struct ImagePruneArgs {
    /// Remove every image no container uses, not only untagged ones.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not ask (hind never asks; accepted for Docker compatibility).
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ImageInspectArgs {
    /// `json` or a template such as `{{.Id}}`.
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// Registry host (default: docker.io).
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry host (default: docker.io).
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep stdin open and forward it.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Start it and return at once.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Set an environment variable (K=V, or K to copy this shell's value).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// User inside the container: NAME|UID[:GROUP|GID].
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Give the process all capabilities.
    #[arg(long)]
    pub privileged: bool,
    pub container: String,
    /// Command and arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct Containers {
    /// Names, ids or unique id prefixes.
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers, not only running ones.
    #[arg(short = 'a', long)]
    pub all: bool,
    #[command(flatten)]
    pub list: ListArgs,
}

/// The output flags every list command shares.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print ids only.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Do not shorten ids (nor, in ps, commands).
    #[arg(long)]
    pub no_trunc: bool,
    /// `json` or a Go-style template such as `{{.ID}}`.
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new output until the container ends.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines (or `all`).
    #[arg(short = 'n', long, value_name = "N")]
    pub tail: Option<String>,
    /// Only lines since TIME (RFC 3339, a unix time, or a duration like 10m).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Prefix each line with its time.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before SIGKILL.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    pub time: u32,
    /// Signal to send first (default: the container's stop signal, SIGTERM).
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    #[command(flatten)]
    pub containers: Containers,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach to the container's output and wait for it.
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach stdin too.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[command(flatten)]
    pub containers: Containers,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send (name or number).
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    #[command(flatten)]
    pub containers: Containers,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill a running container first.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove the container's anonymous volumes too.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[command(flatten)]
    pub containers: Containers,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// `json` or a template such as `{{.State.ExitCode}}`.
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[command(flatten)]
    pub containers: Containers,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not attach stdin.
    #[arg(long)]
    pub no_stdin: bool,
    pub container: String,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help (`-h` is --hostname, as in Docker).
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the container's id.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep stdin open and forward it to the container.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Name the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (K=V, or K to copy this shell's value).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Read environment variables from a file (K=V lines; -e wins).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Bind a host path or a volume: HOST_PATH|NAME:CTR_PATH[:ro|rw][,z],
    /// or CTR_PATH for an anonymous volume.
    #[arg(short = 'v', long = "volume", value_name = "SRC:DEST[:MODE]")]
    pub volume: Vec<String>,
    /// Mount the volumes and binds of another container at the same
    /// paths (`:ro` or `:rw` overrides their modes).
    #[arg(long = "volumes-from", value_name = "CONTAINER[:ro|:rw]")]
    pub volumes_from: Vec<String>,
    /// Mount: type=bind|volume|tmpfs,source=..,target=..[,readonly]...
    #[arg(long = "mount", value_name = "OPTS")]
    pub mount: Vec<String>,
    /// Mount a tmpfs: PATH[:size=64m,mode=1777,...].
    #[arg(long = "tmpfs", value_name = "PATH[:OPTS]")]
    pub tmpfs: Vec<String>,
    /// Mount the container's root read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Working directory inside the container (created if missing).
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// User inside the container: NAME|UID[:GROUP|GID].
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Container host name (default: the first 12 digits of the id).
    #[arg(long, short = 'h')]
    pub hostname: Option<String>,
    /// Network: bridge, none, host, container:ID or a network's name.
    #[arg(long, alias = "net", env = "HIND_NETWORK", default_value = "bridge")]
    pub network: String,
    /// Publish a port: [HOST_IP:][HOST_PORT:]PORT[/tcp|udp].
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    pub publish: Vec<String>,
    /// Publish every exposed port to a random host port.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port (for -P): PORT[/PROTO].
    #[arg(long, value_name = "PORT")]
    pub expose: Vec<String>,
    /// The container's IPv4 address in its network.
    #[arg(long, value_name = "IP")]
    pub ip: Option<String>,
    /// DNS server (replaces the host's).
    #[arg(long, value_name = "IP")]
    pub dns: Vec<String>,
    /// DNS search domain.
    #[arg(long, value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// resolv.conf option.
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "OPT")]
    pub dns_option: Vec<String>,
    /// Add a line to /etc/hosts: NAME:IP.
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_host: Vec<String>,
    /// Another name for the container on a user-defined network.
    #[arg(long = "network-alias", value_name = "ALIAS")]
    pub network_alias: Vec<String>,
    /// Memory limit (e.g. 64m, 1g).
    #[arg(short = 'm', long, value_parser = units::parse_memory, value_name = "BYTES")]
    pub memory: Option<i64>,
    /// Number of CPUs (e.g. 0.5).
    #[arg(long, value_parser = units::parse_cpus)]
    pub cpus: Option<f64>,
    /// CFS quota in microseconds per period.
    #[arg(long, value_name = "US", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds.
    #[arg(long, value_name = "US", value_parser = clap::value_parser!(u64).range(1000..=1_000_000))]
    pub cpu_period: Option<u64>,
    /// CPUs the container may run on (e.g. 0-1,3).
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Maximum number of processes (-1: unlimited).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Run on a directory image directly, read-write, without an overlay.
    #[arg(long)]
    pub no_overlay: bool,
    /// Add a capability to the default set (NAME or CAP_NAME, or ALL).
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability from the default set (NAME or CAP_NAME, or ALL).
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// All capabilities and devices, no masked or read-only kernel paths.
    #[arg(long)]
    pub privileged: bool,
    /// Give the container a host device (perms: some of rwm, default rwm).
    #[arg(long = "device", value_name = "HOST_PATH[:CONTAINER_PATH][:PERMS]")]
    pub device: Vec<String>,
    /// Allow devices in the container's device cgroup ("c 1:3 rwm",
    /// "b 7:* r"; numbers or *, perms some of rwm).
    #[arg(long = "device-cgroup-rule", value_name = "RULE")]
    pub device_cgroup_rule: Vec<String>,
    /// One more supplementary group for the process: a name in the image's
    /// /etc/group or a number.
    #[arg(long = "group-add", value_name = "GROUP")]
    pub group_add: Vec<String>,
    /// Security options: seccomp=unconfined, seccomp=PROFILE.json (Docker's
    /// profile format), no-new-privileges[=true|false].
    #[arg(long = "security-opt", value_name = "OPT", value_parser = crate::seccomp::parse_security_opt)]
    pub security_opt: Vec<crate::seccomp::SecurityOpt>,
    /// Restart policy: no, on-failure[:N], always, unless-stopped.
    #[arg(long, value_parser = parse_restart, default_value = "no")]
    pub restart: RestartPolicy,
    /// Log options: max-size=SIZE, max-file=N.
    #[arg(long = "log-opt", value_name = "K=V", value_parser = parse_log_opt)]
    pub log_opt: Vec<(String, u64)>,
    /// Storage options: size=SIZE, a disk quota on the container's
    /// writable layer (needs project quotas on the state root's xfs or ext4).
    #[arg(long = "storage-opt", value_name = "K=V", value_parser = crate::quota::parse_storage_opt)]
    pub storage_opt: Vec<crate::quota::SizeLimit>,
    /// Parent cgroup of the container's cgroup.
    #[arg(
        long,
        env = "HIND_CGROUP_PARENT",
        default_value = "/hind",
        value_name = "PATH"
    )]
    pub cgroup_parent: String,
    /// Override the image's entrypoint.
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Signal `stop` sends (default: the image's, else SIGTERM).
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Pull the image: missing (default), always or never.
    #[arg(long, default_value = "missing", value_parser = ["missing", "always", "never"])]
    pub pull: String,
    /// Platform to pull, for a multi-platform image.
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// Image: a reference (busybox, host:5000/app:1), an image id, a root
    /// filesystem directory or tar, or / (the host).
    pub image: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// List networks.
    Ls(NetworkLsArgs),
    /// Create a bridge network.
    Create(NetworkCreateArgs),
    /// Remove networks.
    Rm(NetworkRmArgs),
    /// Show networks as JSON.
    Inspect(NetworkRmArgs),
    /// Remove every network no container uses, and stale leases.
    Prune(NetworkPruneArgs),
}

#[derive(Debug, Args)]
pub struct NetworkLsArgs {
    #[command(flatten)]
    pub list: ListArgs,
}

#[derive(Debug, Args)]
pub struct NetworkCreateArgs {
    /// Driver (only `bridge`).
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR form (default: a free /16).
    #[arg(long)]
    pub subnet: Option<String>,
    pub name: String,
}

#[derive(Debug, Args)]
pub struct NetworkRmArgs {
    #[arg(required = true)]
    pub networks: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NetworkPruneArgs {
    /// Do not ask (hind never asks; accepted for Docker compatibility).
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume.
    Create(VolumeCreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls(VolumeLsArgs),
    /// Show volumes as JSON.
    Inspect(VolumeInspectArgs),
    /// Remove volumes no container uses.
    #[command(alias = "remove")]
    Rm(VolumeRmArgs),
    /// Remove every volume no container uses.
    Prune(VolumePruneArgs),
}

#[derive(Debug, Args)]
pub struct VolumeCreateArgs {
    /// Driver (only `local`).
    #[arg(short = 'd', long, default_value = "local")]
    pub driver: String,
    /// Set a label: K=V.
    #[arg(long, value_name = "K=V")]
    pub label: Vec<String>,
    /// Name (default: 64 random hex digits).
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct VolumeLsArgs {
    #[command(flatten)]
    pub list: ListArgs,
}

#[derive(Debug, Args)]
pub struct VolumeInspectArgs {
    /// `json` or a template such as `{{.Mountpoint}}`.
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "VOLUME")]
    pub volumes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumeRmArgs {
    /// No error for a missing volume (a volume in use is still kept).
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true, value_name = "VOLUME")]
    pub volumes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumePruneArgs {
    /// Do not ask (hind never asks; accepted for Docker compatibility).
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Every unused volume, not only anonymous ones.
    #[arg(short = 'a', long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    pub container: String,
    /// Only this port: PORT[/PROTO].
    pub port: Option<String>,
}

#[derive(Debug, Args)]
pub struct NetReleaseArgs {
    pub id: String,
}

#[derive(Debug, Args)]
pub struct QuotaReleaseArgs {
    pub id: String,
    /// The project id the container's upper dir had.
    pub project: u32,
}
