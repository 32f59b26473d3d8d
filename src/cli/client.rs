//! `upcase client`.

use std::process::ExitCode;

/// Arguments of `upcase client`.
#[derive(clap::Args)]
pub struct ClientArgs {}

/// Run `upcase client`.
pub fn run(_args: ClientArgs) -> ExitCode {
    eprintln!("upcase client: not built yet");
    ExitCode::FAILURE
}
