//! `upcase serve`.

mod log_queue;

use std::io::{self, IsTerminal, Write};
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use log::{error, info, warn};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use upcase::conn::{RawCase, ServerConfig, ServerMode};
use upcase::net::{
    Cidr, DEFAULT_LISTEN, DEFAULT_MAX_CONNECTIONS, DEFAULT_WORK_PER_TURN, Server, UdpRateLimit,
    connections_for_descriptors, raise_descriptor_limit,
};
use upcase_cli::metrics::{Limits, MetricsEndpoint};

use log_queue::LogQueue;

/// Arguments of `upcase serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on: IPv4, [IPv6] or a host name (every address it
    /// names), and a port; repeat for several; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN, value_parser = parse_listen)]
    listen: Vec<ListenAddrs>,
    /// Listen on 127.0.0.1:PORT (shorthand for --listen).
    #[arg(long, value_name = "PORT", conflicts_with = "listen")]
    port: Option<u16>,
    /// Which clients to accept: auto-detect, raw byte streams only, or framed only.
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    mode: Mode,
    /// Raw mode upper-cases ASCII letters only (byte-exact with the Python tutorial server).
    #[arg(long)]
    raw_ascii: bool,
    /// Connections served at once (lowered to fit the descriptor limit). When
    /// full, a newcomer evicts a connection that never completed a frame,
    /// else the longest idle, of a group (IPv4 address, IPv6 /64) holding
    /// more than its own; else ERROR(BUSY) or close.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS, value_name = "N")]
    max_connections: usize,
    /// Event loops (threads) serving TCP [default: one per core].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Buffered input and output allowed over all connections beyond a
    /// 16 KiB reserve each; past it, those connections stop reading.
    #[arg(long, default_value = "256M", value_name = "SIZE", value_parser = parse_size)]
    memory_budget: usize,
    /// Bytes one connection may buffer before it stops reading (at least one
    /// maximum-size frame).
    #[arg(long, default_value = "2M", value_name = "SIZE", value_parser = parse_size)]
    max_buffer: usize,
    /// Work one connection may cause in a turn before its event loop serves
    /// the others: a unit per byte read or written, more per frame, ERROR
    /// and read call (SPEC.md §11, "CPU"). Smaller shares the loop finer (0
    /// counts as 1).
    #[arg(long, default_value_t = DEFAULT_WORK_PER_TURN, value_name = "UNITS")]
    work_per_turn: usize,
    /// Seconds output may wait with no byte taken by the client before the
    /// connection is closed (the idle timeout if shorter).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    send_timeout: u64,
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
    /// Length of the kernel's queue of connections not yet accepted (per loop).
    #[arg(long, default_value_t = 1024, value_name = "N")]
    backlog: i32,
    /// Expect HAProxy's PROXY protocol header (v1 or v2) on every TCP
    /// connection, from a --trusted-proxy peer, and use its client address
    /// (see README, "Running behind a load balancer").
    #[arg(long, requires = "trusted_proxy")]
    proxy_protocol: bool,
    /// A peer allowed to send a PROXY header: a network (10.0.0.0/8) or an
    /// address; repeat for several. Other peers are closed.
    #[arg(long, value_name = "CIDR", requires = "proxy_protocol")]
    trusted_proxy: Vec<Cidr>,
    /// Serve Prometheus metrics at http://ADDR/metrics (off by default).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Also log every message received (RUST_LOG overrides).
    #[arg(short, long, conflicts_with = "quiet")]
    verbose: bool,
    /// Log errors only (RUST_LOG overrides).
    #[arg(short, long)]
    quiet: bool,
    /// Log lines that may wait for stderr, in bytes; past it lines are
    /// dropped and counted, so a stderr nobody reads never stalls serving.
    #[arg(long, default_value = "1M", value_name = "SIZE", value_parser = parse_size)]
    log_queue: usize,
}

impl ServeArgs {
    /// Every address to listen on, from --port or --listen.
    fn listen_addrs(&self) -> Vec<SocketAddr> {
        match self.port {
            Some(port) => vec![SocketAddr::from((Ipv4Addr::LOCALHOST, port))],
            None => self
                .listen
                .iter()
                .flat_map(|addrs| addrs.0.clone())
                .collect(),
        }
    }
}

/// What one --listen names: one address, or every address of a host name.
#[derive(Clone, Debug)]
struct ListenAddrs(Vec<SocketAddr>);

/// An address with a port, or a host name with a port resolved to every
/// address it names (as `client` resolves one).
fn parse_listen(text: &str) -> Result<ListenAddrs, String> {
    if let Ok(addr) = text.parse() {
        return Ok(ListenAddrs(vec![addr]));
    }
    if !text.contains(':') {
        return Err(format!(
            "{text:?} has no port: write HOST:PORT (e.g. localhost:9999), or use --port {text}"
        ));
    }
    let mut addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|error| format!("cannot resolve {text:?}: {error}"))?
        .collect();
    addrs.dedup();
    if addrs.is_empty() {
        return Err(format!("{text:?} names no address"));
    }
    Ok(ListenAddrs(addrs))
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Auto,
    Raw,
    Framed,
}

/// A size in bytes: a number with an optional binary suffix K, M or G
/// (`KiB`, `MiB`, `GiB` and lower case also accepted).
fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(split);
    let number: usize = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size: write e.g. 65536, 64K, 256M or 1G"))?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        _ => return Err(format!("unknown size suffix {suffix:?}: use K, M or G")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text} is too large"))
}

/// How long shutdown may take beyond the linger time before the server
/// stops waiting for its connections.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(2);

/// How long an exit waits for queued log lines to reach stderr.
const LOG_DRAIN: Duration = Duration::from_secs(2);

/// How long the second signal's exit waits for its own log line.
const SECOND_SIGNAL_LOG_DRAIN: Duration = Duration::from_millis(100);

/// Run `upcase serve`: bind, print the listening line, serve until SIGINT or
/// SIGTERM, then shut down gracefully (a second signal exits at once).
pub fn run(args: ServeArgs) -> ExitCode {
    let log = match start_logging(&args) {
        Ok(log) => log,
        Err(error) => {
            eprintln!("upcase serve: cannot start the log writer: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = serve(args, &log);
    finish_logging(&log);
    code
}

/// Log through a [`LogQueue`] to stderr, filtered and formatted by
/// env_logger as `RUST_LOG`, `-v` or `-q` say.
fn start_logging(args: &ServeArgs) -> io::Result<LogQueue> {
    let level = match (args.verbose, args.quiet) {
        (true, _) => "debug",
        (_, true) => "error",
        _ => "info",
    };
    let log = LogQueue::start(args.log_queue, io::stderr())?;
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level));
    builder.target(env_logger::Target::Pipe(Box::new(log.writer())));
    // env_logger colours a pipe target never by default; keep the colours
    // a terminal had, unless RUST_LOG_STYLE or NO_COLOR says otherwise.
    let plain =
        std::env::var_os("RUST_LOG_STYLE").is_some() || std::env::var_os("NO_COLOR").is_some();
    if !plain && io::stderr().is_terminal() {
        builder.write_style(env_logger::WriteStyle::Always);
    }
    builder.init();
    Ok(log)
}

/// Give queued lines a moment to reach stderr, then say how many were
/// dropped, if any were and stderr takes the line.
fn finish_logging(log: &LogQueue) {
    let deadline = Instant::now() + LOG_DRAIN;
    if log.wait_written(deadline) && log.dropped() > 0 {
        warn!(
            "{} log lines were dropped: stderr did not take them as fast as they came \
             (read it faster, or raise --log-queue)",
            log.dropped()
        );
        log.wait_written(deadline);
    }
}

/// Serve until the signals say stop (see [`run`]), logging through `log`.
fn serve(args: ServeArgs, log: &LogQueue) -> ExitCode {
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
        send_timeout: Duration::from_secs(args.send_timeout),
        linger: Duration::from_secs(args.linger),
        report_messages: args.verbose,
        ..ServerConfig::default()
    };
    let linger = config.linger;
    let max_connections = fit_max_connections(&args);
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(error) => {
            error!("cannot install signal handlers: {error}");
            return ExitCode::FAILURE;
        }
    };
    let builder = match args.threads {
        Some(threads) => Server::builder().threads(threads.into()),
        None => Server::builder(),
    };
    let builder = args.listen_addrs().into_iter().fold(
        builder
            .config(config)
            .max_connections(max_connections)
            .memory_budget(args.memory_budget)
            .max_buffer(args.max_buffer)
            .work_per_turn(args.work_per_turn)
            .backlog(args.backlog)
            .udp(!args.no_udp)
            .udp_rate_limit(UdpRateLimit {
                per_second: args.udp_rate,
                burst: args.udp_burst,
            })
            .metrics(args.metrics.is_some()),
        |builder, addr| builder.listen(addr),
    );
    let builder = if args.proxy_protocol {
        builder.proxy_protocol(args.trusted_proxy.clone())
    } else {
        builder
    };
    let server = match builder.bind() {
        Ok(server) => server,
        Err(error) => {
            error!("{error}; pick another address with --listen (port 0 picks a free port)");
            return ExitCode::FAILURE;
        }
    };
    let mut lines = vec![listening_line(server.local_addrs(), server.udp_addrs())];
    if let Some(metrics) = server.metrics() {
        metrics.count_log_lines_dropped(log.dropped_counter());
    }
    // Kept until the process exits: dropping it stops answering scrapes.
    let _metrics = match (args.metrics, server.metrics()) {
        (Some(addr), Some(metrics)) => match MetricsEndpoint::start(addr, Arc::clone(metrics)) {
            Ok(endpoint) => {
                lines.push(format!(
                    "upcase metrics on http://{}/metrics",
                    endpoint.local_addr()
                ));
                Some(endpoint)
            }
            Err(error) => {
                error!("{error}; pick another address with --metrics (port 0 picks a free port)");
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    let handle = match server.spawn() {
        Ok(handle) => handle,
        Err(error) => {
            error!("cannot start the server: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "{}", lines.join("\n"))
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
    let second_signal_log = log.clone();
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            warn!("second signal: exiting without waiting for connections");
            second_signal_log.wait_written(Instant::now() + SECOND_SIGNAL_LOG_DRAIN);
            // The shell's convention for death by a signal: 128 + its number.
            std::process::exit(128 + signal);
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

/// Raise the descriptor limit and lower `--max-connections` to what it
/// allows, logging both (as Redis does with `maxclients`). With
/// `--metrics`, the endpoint's descriptors are set aside first, so that
/// however many metrics peers arrive the UPCASE connections keep theirs.
fn fit_max_connections(args: &ServeArgs) -> usize {
    let descriptors = match raise_descriptor_limit() {
        Ok((before, after)) => {
            if after > before {
                info!("raised the descriptor limit from {before} to {after}");
            }
            after
        }
        Err(error) => {
            warn!("cannot read or raise the descriptor limit: {error}");
            return args.max_connections;
        }
    };
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    let metrics = args.metrics.map_or(0, |_| Limits::default().descriptors());
    let fit = connections_for_descriptors(
        descriptors.saturating_sub(metrics),
        threads,
        args.listen_addrs().len(),
    );
    if args.max_connections > fit {
        warn!(
            "--max-connections {} lowered to {fit}: the process may open {descriptors} \
             descriptors (raise the hard limit, e.g. ulimit -Hn, to serve more)",
            args.max_connections
        );
        fit
    } else {
        info!(
            "serving up to {} connections (the process may open {descriptors} descriptors)",
            args.max_connections
        );
        args.max_connections
    }
}

/// The line `upcase serve` prints first, naming every socket listened on:
/// `upcase listening on tcp 127.0.0.1:9999, udp 127.0.0.1:9999`. Scripts
/// find the port by splitting after `listening on ` at `, ` and then at
/// the first space, so this format is a contract.
fn listening_line(tcp: &[SocketAddr], udp: &[SocketAddr]) -> String {
    let tcp = tcp.iter().map(|addr| format!("tcp {addr}"));
    let udp = udp.iter().map(|addr| format!("udp {addr}"));
    let sockets: Vec<String> = tcp.chain(udp).collect();
    format!("upcase listening on {}", sockets.join(", "))
}

#[cfg(test)]
mod tests {
    use super::{parse_listen, parse_size};

    #[test]
    fn listen_takes_addresses_and_host_names() {
        let one = parse_listen("127.0.0.1:9998").unwrap();
        assert_eq!(one.0, ["127.0.0.1:9998".parse().unwrap()]);
        let v6 = parse_listen("[::1]:9998").unwrap();
        assert_eq!(v6.0, ["[::1]:9998".parse().unwrap()]);
        let named = parse_listen("localhost:9998").unwrap();
        assert!(!named.0.is_empty());
        assert!(
            named
                .0
                .iter()
                .all(|addr| addr.ip().is_loopback() && addr.port() == 9998),
            "{:?}",
            named.0
        );
    }

    #[test]
    fn listen_without_a_port_says_how_to_write_one() {
        let error = parse_listen("localhost").unwrap_err();
        assert!(
            error.contains("HOST:PORT") && error.contains("--port"),
            "{error}"
        );
        assert!(parse_listen("9999").unwrap_err().contains("--port 9999"));
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2m"), Ok(2 << 20));
    }

    #[test]
    fn bad_sizes_say_how_to_write_one() {
        assert!(parse_size("lots").unwrap_err().contains("256M"));
        assert!(parse_size("3T").unwrap_err().contains("K, M or G"));
        assert!(parse_size("99999999999999999999G").is_err());
    }
}
