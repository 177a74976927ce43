//! `hind`: parses the command line and hands each command to its module.
//! Errors are printed here, once, as one line with their causes, and
//! mapped to Docker's exit codes (125 for hind's own failures).

mod attach;
mod bundle;
mod cli;
mod client;
mod container;
mod cp;
mod device;
mod envfile;
mod format;
mod image;
mod inspect;
mod lifecycle;
mod logs;
mod net;
mod quota;
mod run;
mod seccomp;
mod shim;
mod store;
mod units;
mod volume;

use clap::Parser;
use protocol::paths::Layout;
use protocol::EXIT_ENGINE;

/// `run` fails with 125 (or the container's 126/127), as Docker's does;
/// the other commands fail with 1.
fn exit_code(e: &anyhow::Error, run: bool) -> i32 {
    match e.downcast_ref::<attach::Error>() {
        Some(a) => a.exit_code(),
        None if run => EXIT_ENGINE,
        None => 1,
    }
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
    let is_run = matches!(cli.command, cli::Command::Run(_) | cli::Command::Exec(_));
    let result = if !nix::unistd::geteuid().is_root() {
        Err(anyhow::anyhow!(
            "hind needs root (rootless mode is not supported yet)"
        ))
    } else {
        match cli.command {
            cli::Command::Run(a) => run::run(&layout, *a),
            cli::Command::Ps(a) => lifecycle::ps(&layout, a),
            cli::Command::Logs(a) => logs::logs(&layout, a),
            cli::Command::Stop(a) => lifecycle::stop(&layout, a),
            cli::Command::Start(a) => lifecycle::start(&layout, a),
            cli::Command::Restart(a) => lifecycle::restart(&layout, a),
            cli::Command::Kill(a) => lifecycle::kill(&layout, a),
            cli::Command::Wait(a) => lifecycle::wait(&layout, a),
            cli::Command::Rm(a) => lifecycle::rm(&layout, a),
            cli::Command::Inspect(a) => lifecycle::inspect(&layout, a),
            cli::Command::Attach(a) => lifecycle::attach(&layout, a),
            cli::Command::Exec(a) => lifecycle::exec(&layout, a),
            cli::Command::Pull(a) | cli::Command::Image(cli::ImageCommand::Pull(a)) => {
                image::pull::pull_cmd(&layout, a)
            }
            cli::Command::Images(a) | cli::Command::Image(cli::ImageCommand::Ls(a)) => {
                image::commands::images(&layout, a)
            }
            cli::Command::Rmi(a) | cli::Command::Image(cli::ImageCommand::Rm(a)) => {
                image::commands::rmi(&layout, a)
            }
            cli::Command::Tag(a) | cli::Command::Image(cli::ImageCommand::Tag(a)) => {
                image::commands::tag(&layout, a)
            }
            cli::Command::Load(a) | cli::Command::Image(cli::ImageCommand::Load(a)) => {
                image::archive::load(&layout, a)
            }
            cli::Command::Save(a) | cli::Command::Image(cli::ImageCommand::Save(a)) => {
                image::archive::save(&layout, a)
            }
            cli::Command::Import(a) | cli::Command::Image(cli::ImageCommand::Import(a)) => {
                image::archive::import(&layout, a)
            }
            cli::Command::Image(cli::ImageCommand::Prune(a)) => image::commands::prune(&layout, a),
            cli::Command::Image(cli::ImageCommand::Inspect(a)) => {
                image::commands::inspect(&layout, a)
            }
            cli::Command::Commit(a) => image::archive::commit(&layout, a),
            cli::Command::Export(a) => image::archive::export(&layout, a),
            cli::Command::Cp(a) => cp::cp(&layout, a),
            cli::Command::Network(c) => net::commands::network(&layout, c),
            cli::Command::Volume(c) => volume::commands::volume(&layout, c),
            cli::Command::Port(a) => net::commands::port(&layout, a),
            cli::Command::NetRelease(a) => net::commands::net_release(&layout, a),
            cli::Command::QuotaRelease(a) => quota::release_cmd(&layout, a),
            cli::Command::Login(a) => image::registry::login(&layout, a),
            cli::Command::Logout(a) => image::registry::logout(&layout, a),
        }
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("hind: {e:#}");
            std::process::exit(exit_code(&e, is_run));
        }
    }
}
