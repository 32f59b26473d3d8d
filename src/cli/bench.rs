//! `upcase bench`.

use std::process::ExitCode;

/// Arguments of `upcase bench`.
#[derive(clap::Args)]
pub struct BenchArgs {}

/// Run `upcase bench`.
pub fn run(_args: BenchArgs) -> ExitCode {
    eprintln!("upcase bench: not built yet");
    ExitCode::FAILURE
}
