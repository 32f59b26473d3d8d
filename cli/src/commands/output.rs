//! What the three client tools (`client`, `conform`, `bench`) share about
//! their output: one table of exit codes, a closed stdout that ends them
//! quietly, `-` for stdout, and peer text made safe for a terminal.

use std::fmt::Display;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

/// Exit status 1: the peer failed (a wrong or late reply, a broken
/// protocol, a failed case).
pub const PEER_FAILED: u8 = 1;
/// Exit status 2: bad usage, or nothing to talk to (no server there).
pub const USAGE: u8 = 2;
/// Exit status 130: interrupted (Ctrl-C) after printing what was measured.
pub const INTERRUPTED: u8 = 130;
/// Exit status 141, as a shell reports a process killed by SIGPIPE: stdout
/// was closed (`upcase conform --list | head -1`).
const STDOUT_CLOSED: i32 = 141;

/// The exit-code table `upcase help` and README.md show.
pub const EXIT_CODES: &str = "\
Exit status of client, conform and bench:
  0    ok: every reply (or case) was right
  1    the peer failed: a wrong, late or missing reply, a failed case
  2    bad usage, or nothing to talk to (no server at the address)
  130  bench only: interrupted by Ctrl-C (the partial report is printed)
  141  stdout was closed (e.g. piped into `head`): the tool stops quietly";

/// `code` as an [`ExitCode`].
pub fn exit(code: u8) -> ExitCode {
    ExitCode::from(code)
}

/// End the process quietly when `error` says stdout was closed; otherwise
/// hand it back.
pub fn quiet_if_closed(error: io::Error) -> io::Error {
    if error.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(STDOUT_CLOSED);
    }
    error
}

/// Print `text` and a newline on stdout; a closed stdout ends the process
/// quietly (status 141), another error is reported on stderr once.
pub fn println(text: impl Display) {
    let mut stdout = io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        let error = quiet_if_closed(error);
        eprintln!("upcase: cannot write to stdout: {error}");
        std::process::exit(i32::from(USAGE));
    }
}

/// Write a report to `path` (creating the directories it names), or to
/// stdout when it is `-`.
///
/// # Errors
/// The file's error, as a message naming it.
pub fn write_report(path: &Path, text: &str) -> Result<(), String> {
    if path == Path::new("-") {
        println(text.trim_end_matches('\n'));
        return Ok(());
    }
    let written = match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        // The directories it names are made first.
        Some(dir) => std::fs::create_dir_all(dir).and_then(|()| std::fs::write(path, text)),
        None => std::fs::write(path, text),
    };
    written.map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// Bytes a peer sent, escaped as the server's logs escape client text
/// (control and bidi characters as `\x1b`, `\u{202e}`): safe on a terminal.
pub fn escaped(bytes: &[u8]) -> String {
    upcase::net::escape_for_log(bytes)
}

/// Bytes a server sent as the client prints a reply: as they are on a
/// pipe or file (the product), escaped on a terminal, where escape
/// sequences would move the cursor or retitle the window.
pub fn reply_for_stdout(bytes: &[u8]) -> Vec<u8> {
    if io::stdout().is_terminal() {
        escaped(bytes).into_bytes()
    } else {
        bytes.to_vec()
    }
}
