//! The command line of `hind-runc`, flag for flag what runc's callers pass
//! (containerd's runc shim through go-runc, podman through conmon), and the
//! log they read back: with `--log FILE --log-format json` every message is
//! a `{"level":...,"msg":...,"time":...}` line, and containerd shows the
//! last error line to its user. Errors also go to stderr, one line each,
//! and make the exit status 1, as with runc.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::{container, ops};

#[derive(Parser)]
#[command(
    name = "hind-runc",
    about = "Run OCI bundles with hind (a runc-compatible command line)",
    version = concat!("version ", env!("CARGO_PKG_VERSION"), "\nspec: 1.0.2"),
    disable_help_subcommand = true
)]
struct Cli {
    /// Where container state is kept.
    #[arg(long, global = true, default_value = "/run/hind-runc")]
    root: PathBuf,
    /// Also write messages to this file.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Log each step.
    #[arg(long, global = true)]
    debug: bool,
    /// Read cgroupsPath as systemd's "slice:prefix:name".
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Accepted for compatibility; checkpointing is not supported.
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
    /// Accepted for compatibility ("auto", "true", "false"; `spec
    /// --rootless` gives the same template).
    #[arg(long, global = true, hide = true, num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Create a container from a bundle, its process waiting for `start`.
    Create(CreateArgs),
    /// Run the created container's process.
    Start { id: String },
    /// Print a container's state as JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to a container's init, or with --all
    /// to every process of it.
    Kill {
        #[arg(short, long)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Remove a stopped (or with --force, any) container.
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Create and start a container; wait for it unless --detach.
    Run(RunArgs),
    /// Run one more process in a running container.
    Exec(ops::ExecArgs),
    /// List a container's processes.
    Ps {
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
        /// Arguments for ps(1) in table format (default -ef).
        #[arg(last = true)]
        ps_args: Vec<String>,
    },
    /// List containers.
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Change a running container's resource limits.
    Update(ops::UpdateArgs),
    /// Print what this runtime supports, as JSON (OCI features.md).
    Features,
    /// Write a template config.json.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
    },
}

#[derive(Args)]
pub struct CreateArgs {
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// A unix socket to send the pty master to (process.terminal).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Accepted for compatibility: hind always uses pivot_root.
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted for compatibility: hind makes no session keyring.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass fds 3 .. 3+N on to the container's process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container after it exits (runc's --keep).
    #[arg(long)]
    pub keep: bool,
}

/// What every command gets: the global flags.
pub struct Global {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
}

/// The logger: text or JSON lines to `--log`, errors and warnings to
/// stderr as well.
struct Logger {
    file: Option<Mutex<fs::File>>,
    json: bool,
    level: log::LevelFilter,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let level = r.level().as_str().to_lowercase();
        let msg = r.args().to_string();
        if r.level() <= log::Level::Warn {
            eprintln!(
                "hind-runc: {}{msg}",
                if r.level() == log::Level::Warn {
                    "warning: "
                } else {
                    ""
                }
            );
        }
        if let Some(f) = &self.file {
            let time = protocol::time::now();
            let line = if self.json {
                serde_json::json!({ "level": level, "msg": msg, "time": time }).to_string()
            } else {
                format!("time=\"{time}\" level={level} msg={msg:?}")
            };
            if let Ok(mut f) = f.lock() {
                let _ = writeln!(f, "{line}");
            }
        }
    }

    fn flush(&self) {}
}

fn init_logger(path: Option<&Path>, json: bool, debug: bool) {
    let file = path.and_then(|p| {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| eprintln!("hind-runc: open log {}: {e}", p.display()))
            .ok()
    });
    let level = if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    };
    let logger = Box::leak(Box::new(Logger {
        file: file.map(Mutex::new),
        json,
        level,
    }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}

pub fn main() -> i32 {
    let _ = nix::sys::prctl::set_name(c"hind-runc");
    let cli = Cli::parse();
    init_logger(
        cli.log.as_deref(),
        cli.log_format == LogFormat::Json,
        cli.debug,
    );
    let g = Global {
        root: cli.root,
        systemd_cgroup: cli.systemd_cgroup,
    };
    let result: anyhow::Result<i32> = match cli.command {
        Command::Create(a) => container::create(&g, &a).map(|()| 0).map_err(Into::into),
        Command::Start { id } => container::start(&g, &id).map(|()| 0).map_err(Into::into),
        Command::State { id } => container::state(&g, &id).map(|()| 0).map_err(Into::into),
        Command::Kill { all, id, signal } => container::kill(&g, &id, signal.as_deref(), all)
            .map(|()| 0)
            .map_err(Into::into),
        Command::Delete { force, id } => container::delete(&g, &id, force)
            .map(|()| 0)
            .map_err(Into::into),
        Command::Run(a) => container::run(&g, &a).map_err(Into::into),
        // runc's exit status for an exec that failed before the process
        // ran (callers tell it from the process's own 1).
        Command::Exec(a) => match ops::exec(&g, &a) {
            Ok(code) => Ok(code),
            Err(e) => {
                log::error!("{}", hind_init::chain(&e));
                return 255;
            }
        },
        Command::Ps {
            format,
            id,
            ps_args,
        } => ops::ps(&g, &id, &format, &ps_args)
            .map(|()| 0)
            .map_err(Into::into),
        Command::List { format, quiet } => ops::list(&g, &format, quiet)
            .map(|()| 0)
            .map_err(Into::into),
        Command::Pause { id } => ops::pause(&g, &id, true).map(|()| 0).map_err(Into::into),
        Command::Resume { id } => ops::pause(&g, &id, false).map(|()| 0).map_err(Into::into),
        Command::Update(a) => ops::update(&g, &a).map(|()| 0).map_err(Into::into),
        Command::Features => {
            println!("{:#}", super::features::features());
            Ok(0)
        }
        Command::Spec { bundle, .. } => container::write_spec(&bundle)
            .map(|()| 0)
            .map_err(Into::into),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            log::error!("{}", hind_init::chain(e.as_ref()));
            1
        }
    }
}
