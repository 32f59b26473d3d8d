//! `upcase bench`: load-test any UPCASE/1 server and check every reply.

use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::output;

use clap::ValueEnum;
use upcase_cli::loadgen::{
    self, Config, Expect, Limit, PayloadType, RequestMode, UdpOptions, Workload,
};

/// Arguments of `upcase bench`.
#[derive(clap::Args)]
#[command(
    after_help = "Every reply is compared with the upper case computed by the \
    client itself; any wrong reply or failed connection makes the exit code 1.\n\
    With --udp, each request is one datagram whose payload starts with an \
    8-digit request number; requests unanswered within --udp-timeout are \
    counted as lost, and more than --max-loss percent lost makes the exit code 1.\n\
    Clients are shared among a few event-loop threads (--threads), so \
    --clients 15000 needs 15,000 descriptors, not threads; the soft open-file \
    limit is raised to the hard limit at start.\n\
    Each reply has a deadline of --timeout from the moment it is owed (bytes \
    trickled in do not extend it), replies are held to what their request \
    can produce (SPEC.md §3.4, §11), and a timed run ends by --duration plus \
    one --timeout whatever the server does. Ctrl-C stops the run and prints \
    (and with --json writes) what was measured so far; exit status 130.\n\
    Exit status: 0 every reply right, 1 the server failed, 2 bad usage or \
    no connection at all.\n\
    Example: upcase bench 127.0.0.1:7777 --clients 64 --duration 5\n\
    Example: upcase bench --udp 127.0.0.1:7777 --clients 16 --pipeline 4"
)]
pub struct BenchArgs {
    /// The server, HOST:PORT.
    addr: String,
    /// Concurrent connections (UDP: sockets).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    clients: u32,
    /// Event-loop threads the clients are shared among [default: one per
    /// core].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    threads: Option<u32>,
    /// Seconds to send requests for [default: 5].
    #[arg(long, conflicts_with = "requests")]
    duration: Option<f64>,
    /// Total requests, shared among the clients (instead of --duration).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,
    /// Payload bytes per request (raw mode: a line, the newline included).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// How requests travel.
    #[arg(long, value_enum, default_value_t = Mode::Raw)]
    mode: Mode,
    /// What requests carry: text (ASCII and multi-byte) or bytes.
    #[arg(long = "type", value_enum, default_value_t = Kind::Text)]
    kind: Kind,
    /// Requests in flight per connection (UDP: datagrams per client).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pipeline: u32,
    /// Seconds to wait for a connection, or for a reply from the moment it
    /// is owed (TCP).
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// The server is a plain echo (a baseline to compare with): expect each
    /// request back unchanged instead of upper-cased.
    #[arg(long)]
    echo: bool,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Send each request as one UDP datagram (to the same port number)
    /// instead of using TCP connections.
    #[arg(long)]
    udp: bool,
    /// UDP: seconds a request waits for its reply before it counts as lost.
    #[arg(long, default_value_t = 1.0, requires = "udp")]
    udp_timeout: f64,
    /// UDP: fail when more than this percentage of requests is lost.
    #[arg(long, default_value_t = 1.0, requires = "udp")]
    max_loss: f64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    /// Lines on a plain byte stream.
    Raw,
    /// UPCASE/1 frames after the preface.
    Framed,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// TEXT: ASCII and multi-byte text, Unicode upper case.
    Text,
    /// BYTES: ASCII upper case.
    Bytes,
}

/// Run `upcase bench`: exit 0 when every reply was right, 1 when the server
/// failed, 2 on bad usage or when no client could connect, 130 on Ctrl-C
/// (after printing what was measured).
pub fn run(args: BenchArgs) -> ExitCode {
    let stop = Arc::new(AtomicBool::new(false));
    // The first Ctrl-C stops the run and prints; a second one exits at once.
    let interrupt = signal_hook::consts::SIGINT;
    let handled = signal_hook::flag::register_conditional_shutdown(
        interrupt,
        i32::from(output::INTERRUPTED),
        stop.clone(),
    )
    .and_then(|_| signal_hook::flag::register(interrupt, stop.clone()));
    if let Err(error) = handled {
        eprintln!("upcase bench: cannot handle Ctrl-C ({error}): it will end the run unreported");
    }
    let report = match config(&args, stop).and_then(|config| loadgen::run(&config)) {
        Ok(report) => report,
        Err(message) => {
            eprintln!("upcase bench: {message}");
            return output::exit(output::USAGE);
        }
    };
    if args.json {
        output::println(serde_json::to_string(&report).expect("a report serializes"));
    } else {
        output::println(report.to_string().trim_end());
    }
    if report.interrupted {
        output::exit(output::INTERRUPTED)
    } else if report.ok {
        ExitCode::SUCCESS
    } else if report.connected == 0 {
        output::exit(output::USAGE)
    } else {
        output::exit(output::PEER_FAILED)
    }
}

fn config(args: &BenchArgs, stop: Arc<AtomicBool>) -> Result<Config, String> {
    let addr = args
        .addr
        .to_socket_addrs()
        .map_err(|error| {
            format!(
                "cannot resolve {:?} (expected HOST:PORT): {error}",
                args.addr
            )
        })?
        .next()
        .ok_or_else(|| format!("{:?} resolves to no address", args.addr))?;
    let limit = match (args.duration, args.requests) {
        (_, Some(requests)) => Limit::Requests(requests),
        (Some(seconds), None) => Limit::Duration(super::seconds("--duration", seconds)?),
        (None, None) => Limit::Duration(Duration::from_secs(5)),
    };
    let mode = match args.mode {
        Mode::Raw => RequestMode::Raw,
        Mode::Framed => RequestMode::Framed,
    };
    let kind = match args.kind {
        Kind::Text => PayloadType::Text,
        Kind::Bytes => PayloadType::Bytes,
    };
    let expect = if args.echo {
        Expect::Echo
    } else {
        Expect::Upper
    };
    let workload = Workload::new(mode, kind, args.size, expect)?;
    let clients = args.clients as usize;
    fit_file_limit(clients)?;
    let threads = match args.threads {
        Some(threads) => threads as usize,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    Ok(Config {
        addr,
        target: args.addr.clone(),
        clients,
        threads,
        pipeline: args.pipeline as usize,
        limit,
        workload,
        timeout: super::seconds("--timeout", args.timeout)?,
        udp: udp_options(args)?,
        progress: !args.json,
        stop,
    })
}

fn udp_options(args: &BenchArgs) -> Result<Option<UdpOptions>, String> {
    if !args.udp {
        return Ok(None);
    }
    if !(0.0..=100.0).contains(&args.max_loss) {
        return Err(format!(
            "--max-loss is a percentage from 0 to 100, not {}",
            args.max_loss
        ));
    }
    Ok(Some(UdpOptions {
        reply_timeout: super::seconds("--udp-timeout", args.udp_timeout)?,
        max_loss_percent: args.max_loss,
    }))
}

/// Each client holds one socket, one descriptor: raise the soft limit on
/// open files to the hard limit (saying so on stderr), then fail early with
/// the fix if that is still too few, instead of halfway through the
/// connections.
fn fit_file_limit(clients: usize) -> Result<(), String> {
    let needed = clients as u64 + 32;
    let limit = match upcase::net::raise_descriptor_limit() {
        Ok((before, after)) => {
            if after > before {
                eprintln!("upcase bench: raised the open-file limit from {before} to {after}");
            }
            after
        }
        Err(error) => {
            eprintln!("upcase bench: cannot raise the open-file limit: {error}");
            return Ok(());
        }
    };
    if needed > limit {
        return Err(format!(
            "{clients} clients need about {needed} open files but the limit is {limit}: \
             raise the hard limit with `ulimit -Hn {needed}` as root, or use fewer --clients"
        ));
    }
    Ok(())
}
