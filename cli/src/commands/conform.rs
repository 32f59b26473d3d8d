//! `upcase conform`: run the conformance suite against any UPCASE/1 server.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use super::output;

mod managed;
use upcase::conn::ServerMode;
use upcase::net::UdpClient;
use upcase::wire::{FrameRepr, FrameType, encode_framed_datagram};
use upcase_cli::conform::{self, Options, Progress};

/// Arguments of `upcase conform`.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  upcase conform 127.0.0.1:9999                  every TCP case (raw and framed)
  upcase conform 127.0.0.1:9999 --udp            every UDP case (SPEC.md §8)
  upcase conform 127.0.0.1:9999 framed/5.1 -v    §5.1 only, with a wire log
  upcase conform 127.0.0.1:9999 --list           the cases and what they need
  upcase conform 127.0.0.1:9999 --unicode 14.0 --html report.html
                                                 a server on Unicode 14.0; an HTML report
  # a server started with `serve --max-connections 4 --mode framed`:
  upcase conform 127.0.0.1:9999 --max-connections 4 --server-mode framed
  # a client: conform plays the server and appends its HOST:PORT to the command
  upcase conform --client --supports bytes,max-frame,timeout,udp -- upcase client

Each case has a deadline (shown by --list) and each reply one of --timeout
from the moment it is owed; frames are held to the receive limits of SPEC.md
§3.4. A server that is not UPCASE/1 (HTTP, silent, an echo) is said so after
the first case, and the rest is skipped.

Exit status: 0 all passed, 1 a case failed, 2 bad usage (a filter that
matches nothing) or no server. --json, --junit and --html take - for stdout.")]
pub struct ConformArgs {
    /// The server to test, HOST:PORT (not needed with --list).
    #[arg(value_name = "ADDR", required_unless_present_any = ["list", "client", "server_cmd"])]
    addr: Option<String>,
    /// Run only cases whose name starts with one of these (e.g. `framed/5.1`, `raw/`).
    #[arg(value_name = "FILTER")]
    filters: Vec<String>,
    /// Seconds each reply may take from the moment it is owed (a deadline,
    /// not restarted by each byte).
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    timeout: f64,
    /// List the cases (name, tags, description) and exit.
    #[arg(long)]
    list: bool,
    /// Also write a JUnit XML report to PATH (`-`: stdout).
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,
    /// Also write a JSON report to PATH (`-`: stdout).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Also write a self-contained HTML report to PATH (summary table, then
    /// each case's section, rule, outcome, expected vs actual and wire log;
    /// `-`: stdout).
    #[arg(long, value_name = "PATH")]
    html: Option<PathBuf>,
    /// Print a wire log (what was sent and received) under each case.
    #[arg(long, short)]
    verbose: bool,
    /// Run the UDP cases (only those) instead of the TCP ones: datagrams to
    /// ADDR's UDP port (SPEC.md §8). Run the suite twice to test both.
    #[arg(long)]
    udp: bool,
    /// The server's idle timeout in seconds, when it was started with a short
    /// one: enables the idle-timeout cases.
    #[arg(long, value_name = "SECS")]
    idle_timeout: Option<f64>,
    /// The server's limit on a frame's data length in bytes (for FRAME_TOO_LARGE).
    #[arg(long, value_name = "N", default_value_t = upcase::wire::DEFAULT_MAX_DATA_LEN)]
    max_frame: u32,
    /// The server runs ASCII-only raw mode (`serve --raw-ascii`): run the ASCII
    /// raw case instead of the Unicode raw ones.
    #[arg(long)]
    raw_ascii: bool,
    /// The mode the server was started in (`serve --mode`): `raw` skips the
    /// framed cases, `framed` the raw ones, and each runs its own §2.2/§8.1 cases.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = ServerModeArg::Auto)]
    server_mode: ServerModeArg,
    /// The server's connection limit (`serve --max-connections N`): enables
    /// the BUSY case, which opens N connections and then one more.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_connections: Option<u32>,
    /// The Unicode version the server's case mapping follows (e.g. `14.0`
    /// for Python 3.11), when not the suite's: the Unicode-dependent cases
    /// are skipped, and a clean run "conforms to UPCASE/1 with Unicode X.Y"
    /// (SPEC.md §10).
    #[arg(long, value_name = "X.Y", value_parser = unicode_version)]
    unicode: Option<String>,
    /// Test a client instead of a server: conform plays a scripted server,
    /// case by case, and runs the command after `--` against it.
    #[arg(long)]
    client: bool,
    #[command(flatten)]
    client_args: super::conform_client::ClientSuiteArgs,
    /// Start the server under test with this shell command, `{addr}` in it
    /// replaced by 127.0.0.1:PORT, once per option set (the flags
    /// `--idle-timeout 1`, `--max-connections 4`, `--mode framed|raw`,
    /// `--raw-ascii` appended), and also test SIGTERM and a restart on the
    /// same port. ADDR is not given then. See README, "conform --server-cmd".
    #[arg(long, value_name = "CMD", conflicts_with = "udp")]
    server_cmd: Option<String>,
}

/// `--unicode`'s value: `X.Y` or `X.Y.Z` (numbers), kept as `X.Y`.
fn unicode_version(value: &str) -> Result<String, String> {
    let parts: Vec<&str> = value.split('.').collect();
    let numbers = parts
        .iter()
        .all(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    if !numbers || !(2..=3).contains(&parts.len()) {
        return Err(format!(
            "expected a Unicode version such as 14.0 or 15.1.0, not {value:?}"
        ));
    }
    let number = |p: &str| p.parse::<u16>().unwrap_or_default();
    Ok(format!("{}.{}", number(parts[0]), number(parts[1])))
}

/// `--server-mode`'s values.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ServerModeArg {
    /// Raw and framed on one port, told apart by the preface (the default).
    Auto,
    /// Raw only.
    Raw,
    /// Framed only.
    Framed,
}

/// Run `upcase conform`: exit 0 when every case passed, 1 on a failure,
/// 2 on bad usage (a filter that matches nothing) or no server.
pub fn run(args: ConformArgs) -> ExitCode {
    if args.client {
        // `--client framed/…`: the first filter lands where ADDR would.
        let mut filters = args.filters.clone();
        filters.extend(args.addr.iter().cloned());
        return super::conform_client::run(
            &args.client_args,
            filters,
            args.list,
            args.verbose,
            [&args.junit, &args.json, &args.html],
        );
    }
    if args.list {
        // `--list framed/5.1`: a case name, never HOST:PORT, holds a '/'.
        let mut filters = args.filters.clone();
        filters.extend(args.addr.iter().filter(|a| a.contains('/')).cloned());
        return match settings(&args, Options::new(([127, 0, 0, 1], 0).into())) {
            Ok(options) => list(&filters, &options),
            Err(message) => usage(&message),
        };
    }
    if let Some(command) = &args.server_cmd {
        return managed::run(&args, command);
    }
    let options = match options(&args) {
        Ok(options) => options,
        Err(message) => return usage(&message),
    };
    if let Err(error) = conform::select(&options) {
        return usage(&error);
    }
    if options.udp
        && let Err(message) = reach_udp(&options)
    {
        eprintln!("upcase conform: {message}");
        return output::exit(output::USAGE);
    }
    let server_unicode = match &options.unicode {
        Some(version) if *version != conform::unicode_version() => {
            format!(
                " (the server's: Unicode {version}, so the Unicode-dependent cases are skipped)"
            )
        }
        _ => String::new(),
    };
    let say = progress([&args.junit, &args.json, &args.html]);
    // Printed with the first result: a missing server is only the message.
    let mut header = Some(format!(
        "upcase conform {} — expected case mapping: Unicode {}{server_unicode}",
        options.addr,
        conform::unicode_version()
    ));
    let unicode = conform::unicode_version();
    let report = conform::run_with(&options, |progress| {
        if let Some(header) = header.take() {
            say(header);
        }
        match progress {
            Progress::Case(result) => say(result.render(&unicode, args.verbose)),
            Progress::Verdict(early) => say(format!("early verdict: {}", early.verdict)),
        }
    });
    let report = match report {
        Ok(report) => report,
        Err(error @ conform::SelectError::NoServer { .. }) => {
            eprintln!("upcase conform: {error} — {START_ONE}");
            return output::exit(output::USAGE);
        }
        Err(error) => return usage(&error),
    };
    if let Some(header) = header {
        say(header);
    }
    finish(&report, &args.junit, &args.json, &args.html, say)
}

/// How to print a line of progress: on stdout, or on stderr when a report
/// goes to stdout (`-`).
pub(super) fn progress(reports: [&Option<PathBuf>; 3]) -> impl Fn(String) + Copy {
    let to_stdout = reports
        .iter()
        .any(|path| path.as_deref() == Some(std::path::Path::new("-")));
    move |text: String| {
        if to_stdout {
            eprintln!("{text}");
        } else {
            output::println(text);
        }
    }
}

/// The summary, the verdict, the report files and the exit status: 0 when
/// every case passed, 1 on a failure, 2 when a report cannot be written
/// (the server suite's and the client suite's); `say` prints a line.
pub(super) fn finish(
    report: &conform::SuiteReport,
    junit: &Option<PathBuf>,
    json: &Option<PathBuf>,
    html: &Option<PathBuf>,
    say: impl Fn(String),
) -> ExitCode {
    say(format!(
        "{} ({:.2} s)",
        report.summary(),
        report.elapsed_ms / 1000.0
    ));
    say(report.verdict());
    if let Some(note) = report.refusal_note() {
        say(note);
    }
    for (path, text) in [
        (junit, report.to_junit()),
        (json, report.to_json()),
        (html, report.to_html()),
    ] {
        if let Some(path) = path
            && let Err(message) = output::write_report(path, &text)
        {
            eprintln!("upcase conform: {message}");
            return output::exit(output::USAGE);
        }
    }
    if report.all_passed() {
        ExitCode::SUCCESS
    } else {
        output::exit(output::PEER_FAILED)
    }
}

fn usage(message: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("upcase conform: {message}");
    output::exit(output::USAGE)
}

fn list(filters: &[String], options: &Options) -> ExitCode {
    let cases: Vec<_> = conform::all_cases()
        .into_iter()
        .filter(|case| {
            filters.is_empty() || filters.iter().any(|f| case.name.starts_with(f.as_str()))
        })
        .collect();
    if cases.is_empty() {
        return usage(&format!("no case name starts with {filters:?}"));
    }
    for case in &cases {
        print_listed(case.name, &case.tags(options), case.description);
    }
    output::println(format_args!("{} cases", cases.len()));
    ExitCode::SUCCESS
}

/// One case of `--list`: its name, its tags in brackets, its description.
pub(super) fn print_listed(name: &str, tags: &[String], description: &str) {
    let tags = if tags.is_empty() {
        String::new()
    } else {
        format!(" [{}]", tags.join(", "))
    };
    output::println(format_args!("{name}{tags}\n    {description}"));
}

fn options(args: &ConformArgs) -> Result<Options, String> {
    let given = args.addr.as_deref().unwrap_or_default();
    let addr: SocketAddr = given
        .to_socket_addrs()
        .map_err(|e| {
            format!(
                "cannot resolve {:?} (expected HOST:PORT, e.g. 127.0.0.1:9999): {e}",
                given
            )
        })?
        .next()
        .ok_or_else(|| format!("{given:?} resolves to no address"))?;
    settings(args, Options::new(addr))
}

/// `options` with what the arguments say besides the address.
fn settings(args: &ConformArgs, mut options: Options) -> Result<Options, String> {
    options.filters = args.filters.clone();
    options.timeout = super::seconds("--timeout", args.timeout)?;
    options.udp = args.udp;
    options.idle_timeout = args
        .idle_timeout
        .map(|s| super::seconds("--idle-timeout", s))
        .transpose()?;
    options.max_frame = args.max_frame;
    options.raw_ascii = args.raw_ascii;
    options.server_mode = match args.server_mode {
        ServerModeArg::Auto => ServerMode::Auto,
        ServerModeArg::Raw => ServerMode::Raw,
        ServerModeArg::Framed => ServerMode::Framed,
    };
    options.max_connections = args.max_connections.map(|n| n as usize);
    options.unicode = args.unicode.clone();
    Ok(options)
}

/// What the message for a missing server suggests.
const START_ONE: &str = "start one with `cargo run --release -- serve`";

/// Check once that something answers UDP at the address, so that a missing
/// server is one clear message instead of every case failing. (TCP needs no
/// probe: the first case's connection is the check, see
/// [`conform::SelectError::NoServer`].)
fn reach_udp(options: &Options) -> Result<(), String> {
    // A PING datagram gets an answer from any UPCASE server: PONG when
    // framed, the bytes back when raw-only. Silence means nobody is there.
    let ping = encode_framed_datagram(&FrameRepr::new(FrameType::Ping, &b"conform"[..]));
    UdpClient::connect(options.addr, options.timeout)
        .and_then(|mut client| client.exchange(&ping))
        .map(drop)
        .map_err(|e| format!("no UDP server at {} ({e}) — {START_ONE}", options.addr))
}
