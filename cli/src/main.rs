//! `seedbank`: run a Seedbank node (`seedbank daemon`) and drive it from the shell.
//!
//! Every subcommand but `daemon`, `config`, `completions` and `man` is a client of the
//! local daemon's control API, found through `<data dir>/api.addr` and authorised by
//! `<data dir>/api.token`. How the command ends (exit codes, `--json` errors) is decided
//! here, from the table in [`exit`].
//!
//! The modules stand in layers; each imports only from those below it:
//! - [`dispatch`], the one place that matches the parsed command line;
//! - the command modules (`*_cmd`), one per group of subcommands: none imports the
//!   dispatcher or another command module; what one needs besides (`exporting`,
//!   `hf_cache`) sits below them;
//! - [`cli`], the clap tree, over [`args`], the arguments the command modules read;
//! - [`client`] (the daemon's API), [`progress`], [`render`] and [`output`], through
//!   which every result is printed, and [`exit`].

mod args;
mod artifact_cmd;
mod cli;
mod client;
mod denylist_cmd;
mod dispatch;
mod exit;
mod exporting;
mod fetch_cmd;
mod hf_cache;
mod hf_cmd;
mod local_cmd;
mod mirror_cmd;
mod names_cmd;
mod node_cmd;
mod output;
mod preserve_cmd;
mod progress;
mod render;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

use crate::exit::{failure_of, is_broken_pipe, json_error, Exit, Failure};
use crate::output::outln;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    let json = cli.json;
    match dispatch::run(cli) {
        Ok(exit) => exit.into(),
        Err(error) if is_broken_pipe(&error) => Exit::Ok.into(),
        Err(error) => {
            let failure = failure_of(&error);
            let message = output::one_line(&error);
            if json {
                outln!("{}", json_error(failure, &message));
            }
            eprintln!("error: {message}");
            failure.exit().into()
        }
    }
}

/// Reports a command line clap refused (exit code 2), as JSON too when `--json` was
/// given; `--help` and `--version` print as usual.
fn usage_error(error: clap::Error) -> ExitCode {
    let informational = matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    );
    if !informational && std::env::args_os().any(|arg| arg == "--json") {
        let text = error.to_string();
        outln!("{}", json_error(Failure::Usage, &first_paragraph(&text)));
    }
    let _ = error.print();
    if informational {
        Exit::Ok.into()
    } else {
        Failure::Usage.exit().into()
    }
}

/// Clap's message without its `error: ` label and usage lines, on one line.
fn first_paragraph(text: &str) -> String {
    let text = text.strip_prefix("error: ").unwrap_or(text);
    let paragraph: Vec<&str> = text
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    paragraph.join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_messages_fold_to_one_line() {
        let text = "error: the following required arguments were not provided:\n  <ARTIFACT>\n\nUsage: seedbank show <ARTIFACT>\n";
        assert_eq!(
            super::first_paragraph(text),
            "the following required arguments were not provided: <ARTIFACT>"
        );
    }
}
