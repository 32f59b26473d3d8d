//! `upcase conform --client -- CMD [ARGS…]`: the client suite's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use upcase_cli::conform::client_suite::{self, ClientOptions, Flag};

/// The arguments only `--client` uses.
#[derive(clap::Args)]
pub struct ClientSuiteArgs {
    /// With --client: the optional flags the client supports, which enable
    /// their cases (the others are skipped, saying why).
    #[arg(long, value_delimiter = ',', value_name = "FLAG", value_enum)]
    supports: Vec<FlagArg>,
    /// With --client: the client's command and arguments, after `--`.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

/// `--supports`' values.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FlagArg {
    /// `--bytes`: send lines as BYTES.
    Bytes,
    /// `--max-frame N`: the fragment size.
    MaxFrame,
    /// `--timeout SECS`: the reply timeout.
    Timeout,
    /// `--udp`: each line one datagram.
    Udp,
}

impl From<FlagArg> for Flag {
    fn from(flag: FlagArg) -> Flag {
        match flag {
            FlagArg::Bytes => Flag::Bytes,
            FlagArg::MaxFrame => Flag::MaxFrame,
            FlagArg::Timeout => Flag::Timeout,
            FlagArg::Udp => Flag::Udp,
        }
    }
}

/// Run the client suite: exit 0 when every case passed, 1 on a failure, 2
/// on bad usage (a filter that matches nothing, no command).
pub fn run(
    args: &ClientSuiteArgs,
    filters: Vec<String>,
    list: bool,
    verbose: bool,
    [junit, json, html]: [&Option<PathBuf>; 3],
) -> ExitCode {
    let options = ClientOptions {
        command: args.command.clone(),
        filters,
        supports: args.supports.iter().map(|&f| f.into()).collect(),
    };
    let cases = match client_suite::select(&options) {
        Ok(cases) => cases,
        Err(message) => {
            eprintln!("upcase conform: {message}");
            return super::output::exit(super::output::USAGE);
        }
    };
    if list {
        for case in &cases {
            let needs: Vec<String> = case
                .needs
                .iter()
                .map(|f| format!("needs --supports {}", f.name()))
                .collect();
            super::conform::print_listed(case.name, &needs, case.description);
        }
        println!("{} cases", cases.len());
        return ExitCode::SUCCESS;
    }
    if options.command.is_empty() {
        eprintln!(
            "upcase conform: --client needs the client's command after `--`, e.g. `upcase conform --client -- upcase client`"
        );
        return super::output::exit(super::output::USAGE);
    }
    let say = super::conform::progress([junit, json, html]);
    say(format!(
        "upcase conform --client -- {}",
        options.command.join(" ").escape_debug()
    ));
    let report = client_suite::run_with(&options, |result| {
        say(result.render(&upcase_cli::conform::unicode_version(), verbose));
    });
    let report = match report {
        Ok(report) => report,
        Err(message) => {
            eprintln!("upcase conform: {message}");
            return super::output::exit(super::output::USAGE);
        }
    };
    super::conform::finish(&report, junit, json, html, say)
}
