//! The command line, as clap types. Flag names follow Docker's.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::units;

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
    Run(RunArgs),
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
    /// Working directory inside the container (created if missing).
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// User inside the container: NAME|UID[:GROUP|GID].
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Container host name (default: the first 12 digits of the id).
    #[arg(long, short = 'h')]
    pub hostname: Option<String>,
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
    /// Parent cgroup of the container's cgroup.
    #[arg(
        long,
        env = "HIND_CGROUP_PARENT",
        default_value = "/hind",
        value_name = "PATH"
    )]
    pub cgroup_parent: String,
    /// Image: a root filesystem directory, a tar of one, or / (the host).
    pub image: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}
