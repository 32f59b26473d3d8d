//! `upcase conform`: run the conformance suite against any UPCASE/1 server.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use upcase::conform::{self, Options};

/// Arguments of `upcase conform`.
#[derive(clap::Args)]
pub struct ConformArgs {
    /// The server to test, HOST:PORT.
    #[arg(value_name = "ADDR")]
    addr: String,
    /// Run only cases whose name starts with one of these (e.g. `framed/5.1`, `raw/`).
    #[arg(value_name = "FILTER")]
    filters: Vec<String>,
    /// Seconds any single read waits for the server.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    timeout: f64,
    /// List the cases (name, tags, description) and exit.
    #[arg(long)]
    list: bool,
    /// Also write a JUnit XML report to PATH.
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,
    /// Also write a JSON report to PATH.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Print a wire log (what was sent and received) under each case.
    #[arg(long, short)]
    verbose: bool,
    /// Run the UDP cases (only those) instead of the TCP ones.
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
}

/// Run `upcase conform`: exit 0 when every case passed, 1 on a failure or a
/// filter that matches nothing, 2 on bad usage or no server.
pub fn run(args: ConformArgs) -> ExitCode {
    if args.list {
        return list(&args.filters);
    }
    let options = match options(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("upcase conform: {message}");
            return ExitCode::from(2);
        }
    };
    if let Err(error) = conform::select(&options) {
        eprintln!("upcase conform: {error}");
        return ExitCode::FAILURE;
    }
    if let Err(message) = reach(&options) {
        eprintln!("upcase conform: {message}");
        return ExitCode::from(2);
    }
    println!(
        "upcase conform {} — expected case mapping: Unicode {}",
        options.addr,
        conform::unicode_version()
    );
    let unicode = conform::unicode_version();
    let report = conform::run_with(&options, |result| {
        println!("{}", result.render(&unicode, args.verbose));
    });
    let report = match report {
        Ok(report) => report,
        Err(error) => {
            eprintln!("upcase conform: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("{} ({:.2} s)", report.summary(), report.elapsed_ms / 1000.0);
    for (path, text) in [
        (&args.junit, report.to_junit()),
        (&args.json, report.to_json()),
    ] {
        if let Some(path) = path
            && let Err(error) = std::fs::write(path, text)
        {
            eprintln!("upcase conform: cannot write {}: {error}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn list(filters: &[String]) -> ExitCode {
    let cases: Vec<_> = conform::all_cases()
        .into_iter()
        .filter(|case| {
            filters.is_empty() || filters.iter().any(|f| case.name.starts_with(f.as_str()))
        })
        .collect();
    if cases.is_empty() {
        eprintln!("upcase conform: no case name starts with {filters:?}");
        return ExitCode::FAILURE;
    }
    for case in &cases {
        let tags = case.tags();
        let tags = if tags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", tags.join(", "))
        };
        println!("{}{tags}\n    {}", case.name, case.description);
    }
    println!("{} cases", cases.len());
    ExitCode::SUCCESS
}

fn seconds(value: f64, flag: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{flag} must be a positive number of seconds, not {value}"))
}

fn options(args: &ConformArgs) -> Result<Options, String> {
    let addr: SocketAddr = args
        .addr
        .to_socket_addrs()
        .map_err(|e| {
            format!(
                "cannot resolve {:?} (expected HOST:PORT, e.g. 127.0.0.1:9999): {e}",
                args.addr
            )
        })?
        .next()
        .ok_or_else(|| format!("{:?} resolves to no address", args.addr))?;
    let mut options = Options::new(addr);
    options.filters = args.filters.clone();
    options.timeout = seconds(args.timeout, "--timeout")?;
    options.udp = args.udp;
    options.idle_timeout = args
        .idle_timeout
        .map(|s| seconds(s, "--idle-timeout"))
        .transpose()?;
    options.max_frame = args.max_frame;
    options.raw_ascii = args.raw_ascii;
    Ok(options)
}

/// Check once that something listens at the address, so that a missing
/// server is one clear message instead of every case failing.
fn reach(options: &Options) -> Result<(), String> {
    let hint = "start one with `cargo run --release -- serve`";
    if options.udp {
        let bind: SocketAddr = if options.addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .expect("a literal address");
        return UdpSocket::bind(bind)
            .and_then(|socket| socket.connect(options.addr))
            .map_err(|e| format!("no server at {} ({e}) — {hint}", options.addr));
    }
    TcpStream::connect_timeout(&options.addr, options.timeout)
        .map(drop)
        .map_err(|e| format!("no server at {} ({e}) — {hint}", options.addr))
}
