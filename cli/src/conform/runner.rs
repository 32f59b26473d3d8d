//! `upcase conform --server-cmd 'CMD … {addr}'`: conform starts the server
//! itself (BoGo's runner model), so that it can test what a suite that only
//! connects cannot: graceful shutdown (SIGTERM), a restart on the same port
//! with connections in TIME_WAIT, a process that dies during a case, and
//! every option set in one command.
//!
//! ```text
//!   for each option set (default, idle, limit, framed-only, raw-only, raw-ascii):
//!     pick a free port ──▶ sh -c "exec CMD {addr}=127.0.0.1:PORT FLAGS…"
//!     wait until it accepts (30 s) ──▶ run that set's cases
//!     a case after which the process is gone fails with its exit status
//!     and stderr tail, and the server is started again for the next case
//!   then the runner cases (SIGTERM, restart), each with a server of its own
//! ```
//!
//! **The flag vocabulary.** The command must take `{addr}` (replaced with
//! `127.0.0.1:PORT`; the server listens there on TCP and UDP) and these
//! flags, appended after it, which are `upcase serve`'s: `--idle-timeout 1`,
//! `--max-connections 4`, `--mode framed`, `--mode raw`, `--raw-ascii`. A
//! server that spells them otherwise is run through a small wrapper script.
//!
//! **Signals.** SIGTERM goes to the process started (`exec` makes that the
//! server itself, not the shell); at the end, and when anything fails, the
//! whole process group gets SIGKILL.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, kill_process_group};

use super::case::{Case, CheckResult, Failure, Needs};
use super::client::{Conn, Ctx};
use super::report::{CaseOutcome, CaseResult, SuiteReport};
use super::{Options, Transport, all_cases, run_case, show, unicode_version};
use upcase::conn::ServerMode;
use upcase::wire::{ErrorCode, Flags, FrameRepr, FrameType};

/// The idle timeout the idle option set starts the server with.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(1);

/// The connection limit the limit option set starts the server with (the
/// one IMPLEMENTING.md suggests).
pub const MAX_CONNECTIONS: usize = 4;

/// How long a started server has to accept a connection.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// How long, after a case failed, the runner waits to see whether the
/// server process is exiting (a failure caused by its death is reported so).
const DYING_WITHIN: Duration = Duration::from_millis(500);

/// How many lines of the server's stderr a report keeps.
const STDERR_LINES: usize = 20;

/// How long a server has to exit after SIGTERM: SPEC.md §5.4 lets it
/// bound its shutdown (`upcase serve`: the linger plus 2 s).
const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// Why the runner could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The command did not start or never accepted a connection.
    #[error("the server command {command:?} {what}{}", tail_suffix(.stderr_tail))]
    NotStarted {
        /// The command, as run.
        command: String,
        /// What happened.
        what: String,
        /// The end of its stderr.
        stderr_tail: String,
    },
    /// No free port.
    #[error("no free port on 127.0.0.1: {0}")]
    NoPort(std::io::Error),
}

fn tail_suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; the end of its stderr:\n{tail}")
    }
}

/// One option set: the flags the server is started with, what the suite
/// is told, and which cases run in it.
struct OptionSet {
    flags: &'static [&'static str],
    tell: fn(&mut Options),
    runs: fn(&Case) -> bool,
}

fn option_sets() -> [OptionSet; 6] {
    [
        OptionSet {
            flags: &[],
            tell: |_| {},
            runs: |case| {
                !matches!(
                    case.needs,
                    Needs::IdleTimeout
                        | Needs::MaxConnections
                        | Needs::ServerMode(_)
                        | Needs::RawAscii
                )
            },
        },
        OptionSet {
            flags: &["--idle-timeout", "1"],
            tell: |options| options.idle_timeout = Some(IDLE_TIMEOUT),
            runs: |case| case.needs == Needs::IdleTimeout,
        },
        OptionSet {
            flags: &["--max-connections", "4"],
            tell: |options| options.max_connections = Some(MAX_CONNECTIONS),
            runs: |case| case.needs == Needs::MaxConnections,
        },
        OptionSet {
            flags: &["--mode", "framed"],
            tell: |options| options.server_mode = ServerMode::Framed,
            runs: |case| case.needs == Needs::ServerMode(ServerMode::Framed),
        },
        OptionSet {
            flags: &["--mode", "raw"],
            tell: |options| options.server_mode = ServerMode::Raw,
            runs: |case| case.needs == Needs::ServerMode(ServerMode::Raw),
        },
        OptionSet {
            flags: &["--raw-ascii"],
            tell: |options| options.raw_ascii = true,
            runs: |case| case.needs == Needs::RawAscii,
        },
    ]
}

/// A server process the runner started.
struct Managed {
    child: Child,
    pid: Pid,
    command: String,
    stderr: Arc<Mutex<VecDeque<String>>>,
    exited: Option<ExitStatus>,
}

impl Managed {
    /// Start `template` with `{addr}` replaced and `flags` appended, and
    /// wait until it accepts connections.
    fn start(template: &str, addr: SocketAddr, flags: &[&str]) -> Result<Managed, RunnerError> {
        let mut command = template.replace("{addr}", &addr.to_string());
        for flag in flags {
            command.push(' ');
            command.push_str(flag);
        }
        let not_started = |what: String, stderr_tail: String| RunnerError::NotStarted {
            command: command.clone(),
            what,
            stderr_tail,
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("exec {command}"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| not_started(format!("could not be started: {e}"), String::new()))?;
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(pipe) = child.stderr.take() {
            let lines = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut lines = lines.lock().unwrap_or_else(|e| e.into_inner());
                    if lines.len() == STDERR_LINES {
                        lines.pop_front();
                    }
                    lines.push_back(upcase::net::escape_for_log(line.as_bytes()));
                }
            });
        }
        let mut server = Managed {
            pid: Pid::from_child(&child),
            child,
            command: command.clone(),
            stderr,
            exited: None,
        };
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = server.exit_status() {
                return Err(not_started(
                    format!("exited ({status}) before accepting a connection on {addr}"),
                    server.stderr_tail(),
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                return Err(not_started(
                    format!(
                        "accepted no connection on {addr} within {} s",
                        READY_WITHIN.as_secs()
                    ),
                    server.stderr_tail(),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its exit status, once it has exited.
    fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Wait at most `within` for it to exit.
    fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.exit_status()
    }

    /// SIGTERM to the process started (the server, through `exec`).
    fn terminate(&self) {
        let _ = kill_process(self.pid, Signal::TERM);
    }

    /// The last lines of its stderr, escaped.
    fn stderr_tail(&self) -> String {
        let lines = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .map(|line| format!("    {line}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Why a result must say the server died, if it did.
    fn death_notice(&mut self) -> Option<String> {
        let status = self.exit_status()?;
        Some(format!(
            "the server process ({}) exited during the case: {status}{}",
            self.command,
            tail_suffix(&self.stderr_tail())
        ))
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        let _ = kill_process_group(self.pid, Signal::KILL);
        let _ = self.child.wait();
    }
}

/// A free port on 127.0.0.1 (for TCP and UDP both, as the server listens on both).
fn free_addr() -> Result<SocketAddr, RunnerError> {
    for _ in 0..20 {
        let tcp = TcpListener::bind("127.0.0.1:0").map_err(RunnerError::NoPort)?;
        let addr = tcp.local_addr().map_err(RunnerError::NoPort)?;
        if std::net::UdpSocket::bind(addr).is_ok() {
            return Ok(addr);
        }
    }
    Err(RunnerError::NoPort(std::io::ErrorKind::AddrInUse.into()))
}

/// Run every case of `base`'s selection (TCP and UDP) against servers
/// started from `template`, each option set against a server started with
/// its flags, then the runner cases; `on_case` sees each result.
///
/// # Errors
/// [`RunnerError`] when a server cannot be started.
pub fn run_managed(
    template: &str,
    base: &Options,
    mut on_case: impl FnMut(&CaseResult),
) -> Result<SuiteReport, RunnerError> {
    let started = Instant::now();
    let selected = |case: &Case| {
        base.filters.is_empty()
            || base
                .filters
                .iter()
                .any(|f| case.name.starts_with(f.as_str()))
    };
    let mut results = Vec::new();
    let mut first_addr = None;
    for set in option_sets() {
        let cases: Vec<&Case> = all_cases()
            .into_iter()
            .filter(|case| selected(case) && (set.runs)(case))
            .collect();
        if cases.is_empty() {
            continue;
        }
        let addr = free_addr()?;
        first_addr.get_or_insert(addr);
        let mut options = base.clone();
        options.addr = addr;
        (set.tell)(&mut options);
        let mut server = Managed::start(template, addr, set.flags)?;
        for case in cases {
            options.udp = case.transport() == Transport::Udp;
            let mut result = run_case(case, &options);
            if result.failed() {
                // A server that is dying may take a moment to be gone.
                server.wait_exit(DYING_WITHIN);
            }
            if let Some(notice) = server.death_notice() {
                result.outcome = CaseOutcome::Failed(match result.outcome {
                    CaseOutcome::Failed(failure) => Failure {
                        message: format!("{}; {notice}", failure.message),
                        ..failure
                    },
                    _ => Failure::new(notice),
                });
                server = Managed::start(template, addr, set.flags)?;
            }
            on_case(&result);
            results.push(result);
        }
    }
    for case in RUNNER_CASES.iter().filter(|case| selected(&case.case)) {
        let result = run_runner_case(case, template, base)?;
        on_case(&result);
        results.push(result);
    }
    Ok(SuiteReport {
        addr: first_addr.map_or_else(|| template.to_string(), |addr| addr.to_string()),
        unicode_version: unicode_version(),
        server_unicode: base.unicode.clone().unwrap_or_else(unicode_version),
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        early_verdict: None,
        // The runner starts each server for its cases: one that refuses
        // connections fails them, and is not told apart as serving one.
        refusing_after: None,
        results,
    })
}

/// A case that needs the server's process: a [`Case`] for its name and
/// description (its `check` is unused), and the check that gets the process.
struct RunnerCase {
    case: Case,
    check: fn(&mut Ctx, &mut Managed, &str) -> CheckResult,
}

fn unused(_: &mut Ctx) -> CheckResult {
    Err(Failure::new("a runner case runs through run_runner_case"))
}

const RUNNER_CASES: &[RunnerCase] = &[
    RunnerCase {
        case: Case {
            name: "framed/5.4/shutdown-answers-then-bye",
            description: "SIGTERM while 20 pipelined requests and a partial frame wait: every complete frame is answered in order, then BYE from the server (source local, destination peer), and the process exits (runner only)",
            unicode_dependent: false,
            needs: Needs::Nothing,
            check: unused,
        },
        check: shutdown_answers_then_bye,
    },
    RunnerCase {
        case: Case {
            name: "framed/9.2/restart-on-the-same-port",
            description: "a server that closed connections first at shutdown (so they sit in TIME_WAIT on its port) starts again on the same port at once and serves (SO_REUSEADDR; runner only)",
            unicode_dependent: false,
            needs: Needs::Nothing,
            check: unused,
        },
        check: restart_on_the_same_port,
    },
];

fn run_runner_case(
    runner_case: &RunnerCase,
    template: &str,
    base: &Options,
) -> Result<CaseResult, RunnerError> {
    let started = Instant::now();
    let addr = free_addr()?;
    let mut options = base.clone();
    options.addr = addr;
    options.udp = false;
    let mut server = Managed::start(template, addr, &[])?;
    let deadline = started + runner_case.case.deadline(&options) + EXIT_WITHIN;
    let mut ctx = Ctx::new(&options, deadline);
    let checked = (runner_case.check)(&mut ctx, &mut server, template);
    let aftermath = ctx.finish();
    let outcome = match checked {
        Ok(()) => CaseOutcome::Passed,
        Err(failure) => CaseOutcome::Failed(failure),
    };
    let case = &runner_case.case;
    Ok(CaseResult {
        name: case.name.to_string(),
        description: case.description.to_string(),
        section: case.section().to_string(),
        unicode_dependent: false,
        outcome,
        warnings: aftermath.warnings,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        wire_log: aftermath.log,
    })
}

/// How many requests wait when the shutdown case sends SIGTERM.
const PIPELINED: usize = 20;

fn shutdown_answers_then_bye(ctx: &mut Ctx, server: &mut Managed, _: &str) -> CheckResult {
    let mut conn = ctx.framed()?;
    let requests: Vec<FrameRepr> = (1..=PIPELINED)
        .map(|n| FrameRepr::new(FrameType::Text, format!("request {n}").into_bytes()))
        .collect();
    conn.send_all(&requests)?;
    // Half a frame behind them: discarded at shutdown, never answered.
    let partial = FrameRepr::new(FrameType::Text, &b"never whole"[..]).to_bytes();
    conn.write(&partial[..partial.len() / 2])?;
    let reply = |conn: &Conn, request: &FrameRepr| {
        let upper = request.data.to_ascii_uppercase();
        conn.reply_to(request, FrameType::Text, false, upper)
    };
    conn.expect(&reply(&conn, &requests[0]), "request 1, before SIGTERM")?;
    conn.note("(SIGTERM to the server: the other requests have arrived)");
    server.terminate();
    for (n, request) in requests.iter().enumerate().skip(1) {
        let what = format!(
            "request {} of {PIPELINED}, received before SIGTERM (SPEC.md §5.4: every complete frame read is answered)",
            n + 1
        );
        conn.expect(&reply(&conn, request), &what)?;
    }
    expect_server_bye(&mut conn)?;
    conn.shutdown_write();
    conn.expect_eof("the server's BYE and the client's close")?;
    exited_after_sigterm(server)
}

/// The server's own BYE (SPEC.md §5.4): flags 00, source local,
/// destination peer, any data (not normative).
fn expect_server_bye(conn: &mut Conn) -> CheckResult {
    let frame = conn.recv_frame("BYE from the server after the replies (SPEC.md §5.4)")?;
    let is_bye = frame.frame_type == FrameType::Bye
        && frame.flags == Flags::default()
        && frame.src == conn.server
        && frame.dst == conn.client;
    if is_bye {
        return Ok(());
    }
    let busy = frame.frame_type == FrameType::Error
        && upcase::wire::ErrorPayload::parse(&frame.data).is_ok_and(|p| p.code == ErrorCode::BUSY);
    Err(Failure::mismatch(
        if busy {
            "ERROR(BUSY) instead of the server's BYE at shutdown"
        } else {
            "wrong frame where the server's BYE belongs (SPEC.md §5.4)"
        },
        format!("BYE flags=00 src={} dst={}", conn.server, conn.client),
        show::frame(&frame),
    ))
}

fn exited_after_sigterm(server: &mut Managed) -> CheckResult {
    match server.wait_exit(EXIT_WITHIN) {
        Some(_) => Ok(()),
        None => Err(Failure::new(format!(
            "the server had not exited {} s after SIGTERM (SPEC.md §5.4 lets it bound its shutdown, not ignore it){}",
            EXIT_WITHIN.as_secs(),
            tail_suffix(&server.stderr_tail())
        ))),
    }
}

fn restart_on_the_same_port(ctx: &mut Ctx, server: &mut Managed, template: &str) -> CheckResult {
    let mut conn = ctx.framed()?;
    let ping = FrameRepr::new(FrameType::Ping, &b"before the restart"[..]);
    conn.send(&ping)?;
    let pong = conn.reply_to(&ping, FrameType::Pong, false, ping.data.clone());
    conn.expect(&pong, "a PING before the restart")?;
    conn.note("(SIGTERM; the client keeps the connection open, so the server closes first and its port holds a TIME_WAIT)");
    server.terminate();
    expect_server_bye(&mut conn)?;
    conn.set_timeout(EXIT_WITHIN);
    conn.expect_eof("the server's BYE, the client keeping the connection open")?;
    exited_after_sigterm(server)?;
    // The client's close moves the server's side to TIME_WAIT.
    drop(conn);
    let addr = ctx.options.addr;
    *server = Managed::start(template, addr, &[]).map_err(|e| {
        Failure::new(format!(
            "the server could not start again on {addr} right after serving (set SO_REUSEADDR on the listening socket, as the tutorial learnt): {e}"
        ))
    })?;
    let mut again = ctx.framed()?;
    let ping = FrameRepr::new(FrameType::Ping, &b"after the restart"[..]);
    again.send(&ping)?;
    let pong = again.reply_to(&ping, FrameType::Pong, false, ping.data.clone());
    again.expect(&pong, "a PING after the restart")
}
