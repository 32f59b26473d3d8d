//! `upcase serve`.

use std::process::ExitCode;

/// Arguments of `upcase serve`.
#[derive(clap::Args)]
pub struct ServeArgs {}

/// Run `upcase serve`.
pub fn run(_args: ServeArgs) -> ExitCode {
    eprintln!("upcase serve: not built yet");
    ExitCode::FAILURE
}
