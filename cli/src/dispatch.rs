//! The one dispatcher: matches the parsed [`Command`] and hands its arguments to the
//! command module that carries it out, with what that command needs: nothing
//! (`completions`, `man`), the data dir (`daemon`, `config`) or a client of the running
//! daemon (every other command). No command's work is done here, and no command module
//! calls back into it.

use anyhow::Result;
use clap::CommandFactory;
use seedbank_node::DataDir;
use seedbank_protocol::preserve_api::{FollowRequest, PinRequest};

use crate::cli::{Cli, Command};
use crate::client::DaemonClient;
use crate::exit::Exit;
use crate::{
    artifact_cmd, denylist_cmd, fetch_cmd, hf_cmd, local_cmd, mirror_cmd, names_cmd, node_cmd,
    preserve_cmd,
};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<Exit> {
    // These need neither a daemon nor a data dir.
    match &cli.command {
        Command::Completions { shell } => return local_cmd::completions(Cli::command(), *shell),
        Command::Man => return local_cmd::man_page(Cli::command()),
        _ => {}
    }
    let data_dir = DataDir::resolve(cli.data_dir.as_deref())?;
    let json = cli.json;
    let quiet = cli.quiet;
    match cli.command {
        Command::Daemon(args) => {
            return local_cmd::daemon(data_dir, args.settings.into(), args.test_clock, json)
        }
        Command::Config(args) => return local_cmd::config(&data_dir, args.into(), json),
        _ => {}
    }
    let client = &DaemonClient::connect(data_dir.root())?;
    match cli.command {
        Command::Daemon(_) | Command::Config(_) | Command::Completions { .. } | Command::Man => {
            unreachable!("handled above")
        }
        Command::Add(args) => artifact_cmd::add(client, json, quiet, args),
        Command::Ls => artifact_cmd::ls(client, json),
        Command::Show { artifact } => artifact_cmd::show(client, json, &artifact),
        Command::Export(args) => artifact_cmd::export(client, json, quiet, args),
        Command::Unpin { artifact } => artifact_cmd::unpin(client, json, &artifact),
        Command::Rm { artifact, force } => artifact_cmd::rm(client, json, &artifact, force),
        Command::Gc { dry_run } => artifact_cmd::gc(client, json, dry_run),
        Command::Verify => artifact_cmd::verify(client, json, quiet),
        Command::Fetch(args) => fetch_cmd::fetch(client, json, quiet, args),
        Command::Jobs => fetch_cmd::jobs(client, json),
        Command::Status => node_cmd::status(client, json),
        Command::Peers => node_cmd::peers(client, json),
        Command::Providers { artifact } => node_cmd::providers(client, json, &artifact),
        Command::Pin {
            artifact,
            replicas,
            reason,
        } => {
            let request = PinRequest { replicas, reason };
            preserve_cmd::pin(client, json, quiet, &artifact, &request)
        }
        Command::Health { refresh } => preserve_cmd::health(client, json, refresh),
        Command::Follow { target, replicas } => {
            let request = FollowRequest { target, replicas };
            preserve_cmd::follow(client, json, &request)
        }
        Command::Unfollow { target } => preserve_cmd::unfollow(client, json, &target),
        Command::Following => preserve_cmd::following(client, json),
        Command::Collection(command) => preserve_cmd::collection(client, json, quiet, command),
        Command::Key(command) => names_cmd::key(client, json, command),
        Command::Trust(command) => names_cmd::trust(client, json, command),
        Command::Publish(args) => names_cmd::publish(client, json, quiet, args),
        Command::LsRemote { publisher } => names_cmd::ls_remote(client, json, publisher),
        Command::Search { words, limit } => names_cmd::search(client, json, &words, limit),
        Command::Resolve { name } => names_cmd::resolve(client, json, name),
        Command::History { name } => names_cmd::history(client, json, name),
        Command::Denylist(command) => denylist_cmd::run(client, json, quiet, command),
        Command::MirrorHf(args) => {
            let own_gateway = std::fs::read_to_string(data_dir.hf_endpoint()).ok();
            mirror_cmd::mirror(client, json, quiet, args, own_gateway)
        }
        Command::ImportHf(args) => hf_cmd::import(client, json, quiet, args),
    }
}
