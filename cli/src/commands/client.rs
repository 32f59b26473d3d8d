//! `upcase client`.

use std::collections::VecDeque;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use upcase::net::{Client, ClientError, DEFAULT_LISTEN, UdpClient, connect_stream};
use upcase::wire::{FrameRepr, FrameType};

/// Arguments of `upcase client`.
#[derive(clap::Args)]
pub struct ClientArgs {
    /// The server's address.
    #[arg(default_value = DEFAULT_LISTEN)]
    addr: String,
    /// Speak raw bytes (for raw-only servers such as the Python tutorial's or `nc -l`):
    /// each line is sent with its newline, the reply is read up to a newline.
    #[arg(long, conflicts_with = "bytes")]
    raw: bool,
    /// Send BYTES frames (ASCII upper case, any bytes) instead of TEXT.
    #[arg(long)]
    bytes: bool,
    /// Use UDP: one datagram per line (framed, or raw with --raw), one reply each.
    #[arg(long)]
    udp: bool,
    /// Seconds to wait for the connection and for each reply.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    timeout: f64,
}

/// The prompt shown when stdin is a terminal (the tutorial's).
const PROMPT: &str = "--->: ";

/// The line that ends the session, as in the tutorial.
const EXIT: &[u8] = b"exit";

/// Requests sent ahead of their replies when reading from a pipe.
const WINDOW: usize = 64;

/// Request bytes sent ahead of their replies. Replies are at most 3× longer,
/// which stays under the server's output bound: neither side can end up
/// writing while the other waits for it to read.
const WINDOW_BYTES: usize = 64 * 1024;

/// Run `upcase client`.
pub fn run(args: ClientArgs) -> ExitCode {
    let timeout = match super::seconds("--timeout", args.timeout) {
        Ok(timeout) => timeout,
        Err(message) => {
            eprintln!("upcase client: {message}");
            return ExitCode::FAILURE;
        }
    };
    let interactive = io::stdin().is_terminal();
    let mut answered = false;
    let result = if args.udp {
        run_udp(&args, timeout, interactive)
    } else if args.raw {
        run_raw(&args.addr, timeout, interactive)
    } else {
        run_framed(&args, timeout, interactive, &mut answered)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("upcase client: {error}");
            if let Some(hint) = advice(&error, &args, answered) {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

/// What to try next, in this command's terms (the library's messages name
/// no command or option). `answered`: a framed server has replied before.
fn advice(error: &ClientError, args: &ClientArgs, answered: bool) -> Option<&'static str> {
    if !args.raw && !args.udp && !answered && raw_only_server(error) {
        return Some("for a raw-only server (the Python tutorial's, `nc -l`) use --raw");
    }
    match error {
        ClientError::Refused { .. } => Some("start a server with `upcase serve`"),
        ClientError::NoDatagramReply { .. } => {
            Some("`upcase serve` answers UDP on its TCP port unless it was started with --no-udp")
        }
        _ => None,
    }
}

/// Whether `error`, met before any framed reply, is how a raw-only server
/// meets our preface (SPEC.md §2): silence (`nc -l`), a close or a reset
/// (the Python tutorial's `decode()` raises on the preface's 0xC0 and its
/// process ends), or bytes that are no UPCASE/1 preface or frame (a raw
/// server upper-casing what it got).
fn raw_only_server(error: &ClientError) -> bool {
    match error {
        ClientError::Timeout { .. } | ClientError::Closed | ClientError::Protocol(_) => true,
        ClientError::Io(e) => matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}

/// Lines of stdin without their line ending, with the prompt before each
/// when `interactive`; `exit` ends them like end of input does.
struct Lines {
    stdin: io::StdinLock<'static>,
    interactive: bool,
}

impl Lines {
    fn next(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        if self.interactive {
            let mut stdout = io::stdout();
            write!(stdout, "{PROMPT}")?;
            stdout.flush()?;
        }
        let mut line = Vec::new();
        if self.stdin.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        if line.ends_with(b"\n") {
            line.pop();
            if line.ends_with(b"\r") {
                line.pop();
            }
        }
        Ok((line != EXIT).then_some(line))
    }
}

/// Framed mode; `answered` turns true with the server's first reply.
fn run_framed(
    args: &ClientArgs,
    timeout: Duration,
    interactive: bool,
    answered: &mut bool,
) -> Result<(), ClientError> {
    let mut client = Client::connect(args.addr.as_str(), timeout)?;
    let mut lines = Lines {
        stdin: io::stdin().lock(),
        interactive,
    };
    // A terminal waits for each reply; a pipe keeps a bounded window in flight.
    let window = if interactive { 1 } else { WINDOW };
    let mut in_flight: VecDeque<usize> = VecDeque::new();
    let mut in_flight_bytes = 0;
    let mut number = 0;
    while let Some(line) = lines.next()? {
        number += 1;
        let len = line.len();
        if args.bytes {
            client.send_bytes(&line)?;
        } else if let Ok(text) = std::str::from_utf8(&line) {
            client.send_text(text)?;
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line {number} is not UTF-8; use --bytes to send any bytes"),
            )
            .into());
        }
        in_flight.push_back(len);
        in_flight_bytes += len;
        while in_flight.len() >= window || (in_flight.len() > 1 && in_flight_bytes > WINDOW_BYTES) {
            print_reply(&client.receive()?)?;
            *answered = true;
            in_flight_bytes -= in_flight.pop_front().unwrap_or_default();
        }
    }
    while in_flight.pop_front().is_some() {
        print_reply(&client.receive()?)?;
        *answered = true;
    }
    client.bye()
}

/// UDP: each line is one datagram — raw (with its newline) or one frame —
/// and its reply is printed. No session, so nothing to say goodbye to.
fn run_udp(args: &ClientArgs, timeout: Duration, interactive: bool) -> Result<(), ClientError> {
    let mut client = UdpClient::connect(args.addr.as_str(), timeout)?;
    let mut lines = Lines {
        stdin: io::stdin().lock(),
        interactive,
    };
    while let Some(mut line) = lines.next()? {
        let reply = if args.raw {
            line.push(b'\n');
            let mut reply = client.exchange(&line)?;
            if reply.ends_with(b"\n") {
                reply.pop();
            }
            reply
        } else {
            let frame_type = if args.bytes {
                FrameType::Bytes
            } else {
                FrameType::Text
            };
            client
                .request(&FrameRepr::new(frame_type, line))?
                .data
                .to_vec()
        };
        print_reply(&reply)?;
    }
    Ok(())
}

fn print_reply(reply: &[u8]) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(reply)?;
    stdout.write_all(b"\n")?;
    stdout.flush()
}

/// Raw mode, as the tutorial's client: send each line with its newline,
/// print what comes back up to a newline. The end is a plain close.
fn run_raw(addr: &str, timeout: Duration, interactive: bool) -> Result<(), ClientError> {
    let mut stream = connect_stream(addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut lines = Lines {
        stdin: io::stdin().lock(),
        interactive,
    };
    let mut received = Vec::new();
    while let Some(mut line) = lines.next()? {
        line.push(b'\n');
        stream.write_all(&line).map_err(timeout_error(timeout))?;
        let reply = read_line(&mut stream, &mut received).map_err(timeout_error(timeout))?;
        print_reply(&reply)?;
    }
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

/// The next line of `stream` without its newline; `received` keeps bytes
/// that arrived after it.
fn read_line(stream: &mut TcpStream, received: &mut Vec<u8>) -> io::Result<Vec<u8>> {
    let mut chunk = [0; 4096];
    loop {
        if let Some(end) = received.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = received.drain(..=end).collect();
            line.pop();
            return Ok(line);
        }
        match stream.read(&mut chunk)? {
            0 if received.is_empty() => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection before answering",
                ));
            }
            0 => return Ok(std::mem::take(received)),
            read => received.extend_from_slice(&chunk[..read]),
        }
    }
}

/// Socket timeouts surface as `WouldBlock`; say what they mean.
fn timeout_error(timeout: Duration) -> impl Fn(io::Error) -> ClientError {
    move |error| match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Timeout { timeout },
        _ => ClientError::Io(error),
    }
}
