//! `upcase conform --server-cmd CMD`: the suite starts the server itself
//! (see `upcase_cli::conform::run_managed` for the flag vocabulary).

use std::process::ExitCode;

use super::super::output;
use super::{ConformArgs, settings, usage};
use upcase_cli::conform::{self, Options};

/// Run every option set against servers started from `command`.
pub fn run(args: &ConformArgs, command: &str) -> ExitCode {
    if !command.contains("{addr}") {
        return usage(&format!(
            "--server-cmd {command:?} has no {{addr}}: conform replaces it with the address the server must listen on, e.g. --server-cmd 'upcase serve --listen {{addr}}'"
        ));
    }
    let mut base = match settings(args, Options::new(([127, 0, 0, 1], 0).into())) {
        Ok(options) => options,
        Err(message) => return usage(&message),
    };
    // No ADDR with --server-cmd: the first word after the options is a filter.
    base.filters.extend(args.addr.iter().cloned());
    let unicode = conform::unicode_version();
    let say = super::progress([&args.junit, &args.json, &args.html]);
    say(format!(
        "upcase conform --server-cmd {command:?} — expected case mapping: Unicode {unicode}; option sets: default, --idle-timeout {}, --max-connections {}, --mode framed, --mode raw, --raw-ascii",
        conform::IDLE_TIMEOUT.as_secs(),
        conform::MAX_CONNECTIONS
    ));
    let report = conform::run_managed(command, &base, |result| {
        say(result.render(&unicode, args.verbose));
    });
    match report {
        Ok(report) => super::finish(&report, &args.junit, &args.json, &args.html, say),
        Err(error) => {
            eprintln!("upcase conform: {error}");
            output::exit(output::USAGE)
        }
    }
}
