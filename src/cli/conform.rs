//! `upcase conform`.

use std::process::ExitCode;

/// Arguments of `upcase conform`.
#[derive(clap::Args)]
pub struct ConformArgs {}

/// Run `upcase conform`.
pub fn run(_args: ConformArgs) -> ExitCode {
    eprintln!("upcase conform: not built yet");
    ExitCode::FAILURE
}
