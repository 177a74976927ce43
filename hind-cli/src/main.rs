//! `hind`: parses the command line and hands each command to its module.
//! Errors are printed here, once, as one line with their causes, and
//! mapped to Docker's exit codes (125 for hind's own failures).

mod attach;
mod bundle;
mod cli;
mod container;
mod image;
mod run;
mod shim;
mod units;

use clap::Parser;
use protocol::paths::Layout;
use protocol::EXIT_ENGINE;

fn exit_code(e: &anyhow::Error) -> i32 {
    e.downcast_ref::<attach::Error>()
        .map(attach::Error::exit_code)
        .unwrap_or(EXIT_ENGINE)
}

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            if !e.use_stderr() {
                let _ = e.print();
                std::process::exit(0);
            }
            // clap's message is several lines; the first says it all.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("hind: {}", first.trim_start_matches("error: "));
            std::process::exit(EXIT_ENGINE);
        }
    };
    let layout = Layout::new(&cli.root);
    let result = if !nix::unistd::geteuid().is_root() {
        Err(anyhow::anyhow!(
            "hind needs root (rootless mode is not supported yet)"
        ))
    } else {
        match cli.command {
            cli::Command::Run(a) => run::run(&layout, a),
            #[allow(unreachable_patterns)]
            _ => Err(anyhow::anyhow!("not implemented yet")),
        }
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("hind: {e:#}");
            std::process::exit(exit_code(&e));
        }
    }
}
