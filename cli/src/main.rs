//! The `upcase` command: `serve`, `client`, `conform`, `bench`, and its own
//! `completions` and `man` pages.

mod commands;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// UPCASE/1: send text, get it back in upper case.
#[derive(Parser)]
#[command(
    name = "upcase",
    version,
    about,
    propagate_version = true,
    after_help = commands::output::EXIT_CODES
)]
struct Command {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Run the server (TCP raw and framed, and UDP).
    Serve(commands::serve::ServeArgs),
    /// Talk to a server interactively, or line by line from a pipe.
    Client(commands::client::ClientArgs),
    /// Check any UPCASE server against SPEC.md.
    Conform(commands::conform::ConformArgs),
    /// Load-test any UPCASE server.
    Bench(commands::bench::BenchArgs),
    /// Print a shell's completion script, e.g. `upcase completions bash >
    /// ~/.local/share/bash-completion/completions/upcase`.
    Completions(commands::completions::CompletionsArgs),
    /// Print the manual page (`upcase man | man -l -`), or write one per
    /// subcommand with --dir.
    Man(commands::man::ManArgs),
}

fn main() -> ExitCode {
    match Command::parse().action {
        Action::Serve(args) => commands::serve::run(args),
        Action::Client(args) => commands::client::run(args),
        Action::Conform(args) => commands::conform::run(args),
        Action::Bench(args) => commands::bench::run(args),
        Action::Completions(args) => commands::completions::run(args, Command::command()),
        Action::Man(args) => commands::man::run(args, Command::command()),
    }
}
