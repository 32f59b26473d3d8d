//! The `upcase` command: `serve`, `client`, `conform`, `bench`.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// UPCASE/1: send text, get it back in upper case.
#[derive(Parser)]
#[command(name = "upcase", version, about)]
struct Command {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Run the server (TCP raw and framed, and UDP).
    Serve(cli::serve::ServeArgs),
    /// Talk to a server interactively, or line by line from a pipe.
    Client(cli::client::ClientArgs),
    /// Check any UPCASE server against SPEC.md.
    Conform(cli::conform::ConformArgs),
    /// Load-test any UPCASE server.
    Bench(cli::bench::BenchArgs),
}

fn main() -> ExitCode {
    match Command::parse().action {
        Action::Serve(args) => cli::serve::run(args),
        Action::Client(args) => cli::client::run(args),
        Action::Conform(args) => cli::conform::run(args),
        Action::Bench(args) => cli::bench::run(args),
    }
}
