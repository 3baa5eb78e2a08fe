//! `seedbank`: run a Seedbank node (`seedbank daemon`) and drive it from the shell.
//!
//! Every subcommand but `daemon` is a client of the local daemon's control API, found
//! through `<data dir>/api.addr` and authorised by `<data dir>/api.token`.

mod cli;
mod client;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", output::one_line(&error));
            ExitCode::FAILURE
        }
    }
}
