//! `upcase serve`.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::ValueEnum;
use log::{error, info, warn};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use upcase::conn::{RawCase, ServerConfig, ServerMode};
use upcase::net::{DEFAULT_LISTEN, Server, UdpRateLimit};

/// Arguments of `upcase serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on, IPv4 or [IPv6]; repeat for several; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    listen: Vec<SocketAddr>,
    /// Which clients to accept: auto-detect, raw byte streams only, or framed only.
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    mode: Mode,
    /// Raw mode upper-cases ASCII letters only (byte-exact with the Python tutorial server).
    #[arg(long)]
    raw_ascii: bool,
    /// Connections served at once; more get ERROR(BUSY) or are closed.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    max_connections: usize,
    /// Largest frame data accepted, in bytes.
    #[arg(long, default_value_t = upcase::wire::DEFAULT_MAX_DATA_LEN, value_name = "BYTES")]
    max_frame: u32,
    /// Seconds a connection may stay without a complete frame (or a raw byte).
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    idle_timeout: u64,
    /// Seconds to wait for a client to close after BYE, an error or shutdown.
    #[arg(long, default_value_t = 2, value_name = "SECS")]
    linger: u64,
    /// Serve TCP only: do not answer UDP datagrams on the same port.
    #[arg(long)]
    no_udp: bool,
    /// UDP datagrams a second each source address may send (an IPv6 source is its /64); 0: no limit.
    #[arg(long, default_value_t = UdpRateLimit::default().per_second, value_name = "N")]
    udp_rate: u32,
    /// UDP datagrams a source may send at once after a quiet spell (the bucket of --udp-rate).
    #[arg(long, default_value_t = UdpRateLimit::default().burst, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    udp_burst: u32,
    /// Length of the kernel's queue of connections not yet accepted.
    #[arg(long, default_value_t = 128, value_name = "N")]
    backlog: i32,
    /// Also log every message received (RUST_LOG overrides).
    #[arg(short, long, conflicts_with = "quiet")]
    verbose: bool,
    /// Log errors only (RUST_LOG overrides).
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Auto,
    Raw,
    Framed,
}

/// How long shutdown may take beyond the linger time before the server
/// stops waiting for its connections.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(2);

/// Run `upcase serve`: bind, print the listening line, serve until SIGINT or
/// SIGTERM, then shut down gracefully (a second signal exits at once).
pub fn run(args: ServeArgs) -> ExitCode {
    let level = match (args.verbose, args.quiet) {
        (true, _) => "debug",
        (_, true) => "error",
        _ => "info",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();

    let config = ServerConfig {
        mode: match args.mode {
            Mode::Auto => ServerMode::Auto,
            Mode::Raw => ServerMode::Raw,
            Mode::Framed => ServerMode::Framed,
        },
        raw_case: if args.raw_ascii {
            RawCase::Ascii
        } else {
            RawCase::Unicode
        },
        max_data_len: args.max_frame,
        idle_timeout: Duration::from_secs(args.idle_timeout),
        linger: Duration::from_secs(args.linger),
        report_messages: args.verbose,
        ..ServerConfig::default()
    };
    let linger = config.linger;
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(error) => {
            error!("cannot install signal handlers: {error}");
            return ExitCode::FAILURE;
        }
    };
    let builder = args.listen.iter().fold(
        Server::builder()
            .config(config)
            .max_connections(args.max_connections)
            .backlog(args.backlog)
            .udp(!args.no_udp)
            .udp_rate_limit(UdpRateLimit {
                per_second: args.udp_rate,
                burst: args.udp_burst,
            }),
        |builder, &addr| builder.listen(addr),
    );
    let server = match builder.bind() {
        Ok(server) => server,
        Err(error) => {
            error!("{error}; pick another address with --listen (port 0 picks a free port)");
            return ExitCode::FAILURE;
        }
    };
    let line = server.listening_line();
    let handle = match server.spawn() {
        Ok(handle) => handle,
        Err(error) => {
            error!("cannot start the server: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        warn!("cannot print the listening line: stdout is closed");
    }

    let first = signals.forever().next();
    info!(
        "signal {}: shutting down (send it again to exit at once)",
        first.unwrap_or_default()
    );
    handle.begin_shutdown();
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            eprintln!("second signal: exiting without waiting for connections");
            std::process::exit(130);
        }
    });
    if !handle.wait(Some(linger + SHUTDOWN_SLACK)) {
        warn!(
            "{} connections still open after shutdown; exiting anyway",
            handle.live_connections()
        );
    }
    ExitCode::SUCCESS
}
