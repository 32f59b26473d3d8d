//! The conformance suite for UPCASE/1 clients (`upcase conform --client --
//! CMD [ARGS…]`): what Autobahn's `fuzzingserver` is to WebSocket clients.
//!
//! ```text
//!   ClientOptions ──▶ for each case: bind 127.0.0.1:0, start CMD ARGS… [case flags] HOST:PORT,
//!                     write its stdin, play the case's script as the server (Peer),
//!                     wait for the exit ──▶ CaseResult (the server suite's types)
//! ```
//!
//! # The contract (README.md, IMPLEMENTING.md "Testing a client")
//!
//! * the suite appends its server's `HOST:PORT` as the last argument;
//! * it writes the case's requests on the client's stdin as UTF-8 lines,
//!   one TEXT request each (BYTES with `--bytes`), then ends stdin; `exit`
//!   or the end of stdin ends the session (with BYE);
//! * the client prints each reply's text on stdout, one line per reply, and
//!   `ERROR <code>` (decimal) for an ERROR that replaced a reply and that
//!   the connection survived (SPEC.md §6.6);
//! * it exits 0 after a normal end, non-zero when it detected a protocol
//!   failure or lost the connection (a fatal ERROR, a close, a timeout, a
//!   server BYE that left requests unanswered).
//!
//! Optional flags ([`Flag`]) get their own cases, skipped unless the
//! client is said to support them (`--supports bytes,max-frame,timeout,udp`).
//!
//! # What a case checks
//!
//! What the client sends (the [`Peer`] checks every frame: the preface, the
//! fragment size, no ERROR, nothing after BYE; scripts check more), what
//! it prints, how it exits, and that it closes on a failure. Each case's
//! description starts with the SPEC.md §2.5 checklist items it checks.
//! Every case has a deadline; past it the client's whole process group is
//! killed, and its stdout and stderr are kept (bounded) for the report.
//! A SHOULD rule (C3, the probe) gives a warning, not a failure.

mod cases;
mod datagram_peer;
mod peer;
mod subject;

use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};

pub use datagram_peer::DatagramPeer;
pub use peer::Peer;
use subject::{Ended, Subject};

use super::case::{CheckResult, Failure};
use super::report::{CaseOutcome, CaseResult, SuiteReport};
use super::show;
use super::wire_log::WireEvent;

/// A case's wire log: lines starting `→ ` are what the scripted server
/// sent, `← ` what it received, the rest notes (SPEC-side verdicts, the
/// client's exit and output).
pub struct Log {
    started: Instant,
    events: Vec<WireEvent>,
}

impl Log {
    fn new(started: Instant) -> Log {
        Log {
            started,
            events: Vec::new(),
        }
    }

    /// Add a line, timed from the case's start.
    pub fn push(&mut self, line: impl AsRef<str>) {
        let at = self.started.elapsed().as_secs_f64() * 1000.0;
        self.events
            .push(WireEvent::new(at, "client", line.as_ref()));
    }
}

/// An optional flag of the contract a client may support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `--bytes`: its lines go as BYTES requests.
    Bytes,
    /// `--max-frame N`: no data frame over N bytes (SPEC.md §3.4).
    MaxFrame,
    /// `--timeout SECS`: its reply timeout (SPEC.md §2.4, C16).
    Timeout,
    /// `--udp`: each line one datagram (SPEC.md §8, C17).
    Udp,
}

impl Flag {
    /// As `--supports` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Flag::Bytes => "bytes",
            Flag::MaxFrame => "max-frame",
            Flag::Timeout => "timeout",
            Flag::Udp => "udp",
        }
    }

    /// Every flag.
    pub const ALL: [Flag; 4] = [Flag::Bytes, Flag::MaxFrame, Flag::Timeout, Flag::Udp];
}

/// How to run the client suite.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The client's command and its own arguments.
    pub command: Vec<String>,
    /// Name prefixes to select cases; empty selects every case.
    pub filters: Vec<String>,
    /// The optional flags the client supports.
    pub supports: Vec<Flag>,
}

/// What a case does and expects, made when it runs.
pub struct Plan {
    /// Arguments put before the address (optional flags).
    pub args: Vec<String>,
    /// The lines written on stdin.
    pub stdin: Vec<String>,
    /// The lines the client must print.
    pub stdout: Vec<String>,
    /// A line it may print after those (a fatal ERROR's `ERROR <code>`).
    pub may_also_print: Option<String>,
    /// Whether it must exit 0.
    pub success: bool,
    /// The largest data frame it may send.
    pub max_frame: u32,
    /// How long the whole case may take.
    pub deadline: Duration,
    /// The server's side.
    pub script: Script,
    /// The rule is a SHOULD: a difference is a warning.
    pub should_only: bool,
}

impl Plan {
    /// A case with stdin `stdin` that must print `stdout` and exit as
    /// `success` says, the server playing `script`.
    pub fn new(
        stdin: &[&str],
        stdout: &[&str],
        success: bool,
        script: impl FnOnce(&mut Peer) -> CheckResult + 'static,
    ) -> Plan {
        Plan {
            args: Vec::new(),
            stdin: stdin.iter().map(|s| s.to_string()).collect(),
            stdout: stdout.iter().map(|s| s.to_string()).collect(),
            may_also_print: None,
            success,
            max_frame: DEFAULT_FRAGMENT_LIMIT,
            deadline: CASE_DEADLINE,
            script: Script::Stream(Box::new(script)),
            should_only: false,
        }
    }

    /// A UDP case: the client runs with `--udp`, the server plays `script`.
    pub fn udp(
        stdin: &[&str],
        stdout: &[&str],
        success: bool,
        script: impl FnOnce(&mut DatagramPeer) -> CheckResult + 'static,
    ) -> Plan {
        let mut plan = Plan::new(stdin, stdout, success, |_: &mut Peer| Ok(()));
        plan.args = vec!["--udp".into()];
        plan.script = Script::Datagrams(Box::new(script));
        plan
    }
}

/// The time left until `deadline`, never zero (a zero read timeout means
/// "wait forever"): past it, `Failure` saying the client sent `nothing`.
fn time_left(deadline: Instant, nothing: &str) -> Result<Duration, Failure> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Failure::new(format!(
            "the client sent {nothing} before the case's deadline"
        )));
    }
    Ok(left)
}

/// What the scripted server plays.
pub enum Script {
    /// A TCP server: one connection.
    Stream(Box<dyn FnOnce(&mut Peer) -> CheckResult>),
    /// A UDP server (the client runs with `--udp`).
    Datagrams(Box<dyn FnOnce(&mut DatagramPeer) -> CheckResult>),
}

/// SPEC.md §3.4: no client data frame over this without being told the limit.
pub const DEFAULT_FRAGMENT_LIMIT: u32 = 65_536;

/// How long a case may take, unless it says otherwise: far more than a
/// correct client needs on a loaded machine.
pub const CASE_DEADLINE: Duration = Duration::from_secs(15);

/// One client case.
pub struct ClientCase {
    /// `client/section/slug`, e.g. `client/6.6/unknown-code-is-a-reply`.
    pub name: &'static str,
    /// The checklist items (SPEC.md §2.5) and the rule, in one line.
    pub description: &'static str,
    /// Optional flags it needs; skipped unless the client supports them.
    pub needs: &'static [Flag],
    /// Its plan, given the flags the client supports.
    pub plan: fn(&[Flag]) -> Plan,
}

impl ClientCase {
    /// The SPEC.md section it checks.
    pub fn section(&self) -> &'static str {
        self.name.split('/').nth(1).unwrap_or_default()
    }
}

/// Every client case, in section order.
pub fn all_cases() -> Vec<&'static ClientCase> {
    cases::all()
}

/// The cases whose name starts with a filter (all without filters).
///
/// # Errors
/// The first filter that matches no case.
pub fn select(options: &ClientOptions) -> Result<Vec<&'static ClientCase>, String> {
    let all = all_cases();
    let matches = |name: &str, filter: &String| name.starts_with(filter.as_str());
    if let Some(filter) = options
        .filters
        .iter()
        .find(|f| !all.iter().any(|case| matches(case.name, f)))
    {
        return Err(format!(
            "no client case name starts with {filter:?}; see `upcase conform --client --list`"
        ));
    }
    Ok(all
        .into_iter()
        .filter(|case| {
            options.filters.is_empty() || options.filters.iter().any(|f| matches(case.name, f))
        })
        .collect())
}

/// Run the selected cases one after the other, calling `on_result` as each ends.
///
/// # Errors
/// As [`select`].
pub fn run_with(
    options: &ClientOptions,
    mut on_result: impl FnMut(&CaseResult),
) -> Result<SuiteReport, String> {
    let cases = select(options)?;
    let started = Instant::now();
    let results = cases
        .into_iter()
        .map(|case| {
            let result = run_case(case, options);
            on_result(&result);
            result
        })
        .collect();
    Ok(SuiteReport {
        addr: options.command.join(" "),
        unicode_version: super::unicode_version(),
        server_unicode: super::unicode_version(),
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        results,
        refusing_after: None,
        early_verdict: None,
    })
}

/// Run one case against a fresh process of the client.
pub fn run_case(case: &ClientCase, options: &ClientOptions) -> CaseResult {
    let started = Instant::now();
    let mut log = Log::new(started);
    let mut warnings = Vec::new();
    let outcome = match case.needs.iter().find(|f| !options.supports.contains(f)) {
        Some(flag) => CaseOutcome::Skipped {
            reason: format!(
                "needs the optional --{0} flag; pass --supports {0} if the client has it",
                flag.name()
            ),
        },
        None => {
            let plan = (case.plan)(&options.supports);
            let should_only = plan.should_only;
            match play(plan, options, &mut log) {
                Ok(()) => CaseOutcome::Passed,
                Err(failure) if should_only => {
                    warnings.push(format!("SHOULD: {failure}"));
                    CaseOutcome::Passed
                }
                Err(failure) => CaseOutcome::Failed(failure),
            }
        }
    };
    CaseResult {
        name: case.name.to_string(),
        description: case.description.to_string(),
        section: case.section().to_string(),
        unicode_dependent: false,
        outcome,
        warnings,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        wire_log: log.events,
    }
}

/// Start the client, play the script, judge what it sent, printed and exited with.
fn play(plan: Plan, options: &ClientOptions, log: &mut Log) -> CheckResult {
    let deadline = Instant::now() + plan.deadline;
    let server = Server::bind(plan.script)?;
    let mut argv = options.command.clone();
    argv.extend(plan.args.iter().cloned());
    argv.push(server.addr()?.to_string());
    let stdin: String = plan.stdin.iter().map(|l| format!("{l}\n")).collect();
    log.push(format!("client: {}", argv.join(" ").escape_debug()));
    log.push(format!("stdin: {} lines", plan.stdin.len()));
    let mut subject = Subject::start(argv, stdin.into_bytes())
        .map_err(|e| Failure::new(format!("cannot start the client: {e}")))?;
    let scripted = match server {
        Server::Tcp(listener, script) => {
            accept(&listener, &mut subject, deadline).and_then(|stream| {
                let mut peer = Peer::new(stream, deadline, plan.max_frame, Log::new(log.started))
                    .map_err(|e| {
                    Failure::new(format!("the accepted connection failed: {e}"))
                })?;
                let result = script(&mut peer);
                log.events.append(&mut peer.log.events);
                result
            })
        }
        Server::Udp(socket, script) => {
            let mut peer = DatagramPeer::new(socket, deadline, Log::new(log.started));
            let result = script(&mut peer);
            log.events.append(&mut peer.log.events);
            result
        }
    };
    let ended = subject.finish(deadline);
    log_ended(&ended, log);
    scripted?;
    judge(
        &ended,
        &plan.stdout,
        plan.may_also_print.as_deref(),
        plan.success,
        plan.deadline,
    )
}

/// The scripted server's socket on 127.0.0.1, with the script it plays.
enum Server {
    Tcp(TcpListener, Box<dyn FnOnce(&mut Peer) -> CheckResult>),
    Udp(UdpSocket, Box<dyn FnOnce(&mut DatagramPeer) -> CheckResult>),
}

impl Server {
    fn bind(script: Script) -> Result<Server, Failure> {
        let cannot = |e: std::io::Error| Failure::new(format!("cannot listen on 127.0.0.1: {e}"));
        Ok(match script {
            Script::Stream(script) => {
                let listener = TcpListener::bind("127.0.0.1:0").map_err(cannot)?;
                listener.set_nonblocking(true).map_err(cannot)?;
                Server::Tcp(listener, script)
            }
            Script::Datagrams(script) => {
                Server::Udp(UdpSocket::bind("127.0.0.1:0").map_err(cannot)?, script)
            }
        })
    }

    fn addr(&self) -> Result<std::net::SocketAddr, Failure> {
        match self {
            Server::Tcp(listener, _) => listener.local_addr(),
            Server::Udp(socket, _) => socket.local_addr(),
        }
        .map_err(|e| Failure::new(e.to_string()))
    }
}

/// The client's connection, waiting at most until `deadline`.
fn accept(
    listener: &TcpListener,
    subject: &mut Subject,
    deadline: Instant,
) -> Result<std::net::TcpStream, Failure> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream
                    .set_nonblocking(false)
                    .map_err(|e| Failure::new(e.to_string()))?;
                return Ok(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(Failure::new(format!("accept failed: {e}"))),
        }
        if subject.has_exited() {
            return Err(Failure::new(
                "the client exited without connecting to the address given as its last argument",
            ));
        }
        if Instant::now() >= deadline {
            return Err(Failure::new(
                "the client did not connect to the address given as its last argument",
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn log_ended(ended: &Ended, log: &mut Log) {
    let status = match ended.status {
        Some(status) => status.to_string(),
        None => "killed at the case's deadline".into(),
    };
    log.push(format!("client {status}"));
    for (name, bytes) in [("stdout", &ended.stdout), ("stderr", &ended.stderr)] {
        for line in String::from_utf8_lossy(bytes).lines().take(20) {
            log.push(format!("client {name}: {}", line.escape_debug()));
        }
    }
}

/// Compare the exit and the printed lines with what the case requires.
fn judge(
    ended: &Ended,
    stdout: &[String],
    may_also_print: Option<&str>,
    success: bool,
    deadline: Duration,
) -> CheckResult {
    let Some(status) = ended.status else {
        return Err(Failure::new(format!(
            "the client did not exit within the case's {} s; it was killed",
            deadline.as_secs()
        )));
    };
    if status.success() != success {
        let expected = if success {
            "exit status 0 (a normal end)"
        } else {
            "a non-zero exit status (a failure)"
        };
        return Err(Failure::mismatch("wrong exit status", expected, status));
    }
    let printed = String::from_utf8_lossy(&ended.stdout);
    let lines: Vec<&str> = printed.lines().collect();
    let exact = lines == stdout;
    let with_extra = may_also_print.is_some_and(|extra| {
        lines.len() == stdout.len() + 1
            && lines[..stdout.len()] == *stdout
            && lines[stdout.len()] == extra
    });
    if !exact && !with_extra {
        let show_lines = |lines: &[&str]| {
            format!(
                "{:?}",
                lines
                    .iter()
                    .map(|l| show::data(l.as_bytes()))
                    .collect::<Vec<_>>()
            )
        };
        let wanted: Vec<&str> = stdout.iter().map(String::as_str).collect();
        let mut expected = show_lines(&wanted);
        if let Some(extra) = may_also_print {
            expected.push_str(&format!(" (then {extra:?}, optionally)"));
        }
        return Err(Failure::mismatch(
            "wrong lines on stdout",
            expected,
            show_lines(&lines),
        ));
    }
    Ok(())
}
