//! `upcase client`.

use std::collections::VecDeque;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::output;
use upcase::conn::ClientConfig;
use upcase::net::{Answer, Client, ClientError, DEFAULT_LISTEN, UdpClient, connect_stream};
use upcase::wire::{ErrorPayload, FrameRepr, FrameType, encode_framed_datagram};

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
    /// Seconds to wait for the connection, and for each reply from the
    /// moment it is owed (a deadline: a server trickling bytes does not
    /// extend it).
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    timeout: f64,
    /// The longest frame data to send, for a server with a receive limit
    /// under 65,536 (`serve --max-frame N`): longer lines go as fragments.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_frame: Option<u32>,
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

/// Run `upcase client`: exit 0 when every line was answered, 1 when the
/// server failed, 2 on bad usage or no server (see `upcase help`).
pub fn run(args: ClientArgs) -> ExitCode {
    let timeout = match super::seconds("--timeout", args.timeout) {
        Ok(timeout) => timeout,
        Err(message) => {
            eprintln!("upcase client: {message}");
            return output::exit(output::USAGE);
        }
    };
    let interactive = io::stdin().is_terminal();
    let mut answered = 0;
    let result = if args.udp {
        run_udp(&args, timeout, interactive)
    } else if args.raw {
        run_raw(&args.addr, timeout, interactive, &mut answered)
    } else {
        run_framed(&args, timeout, interactive, &mut answered)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The message may carry the server's text (an ERROR, a BYE reason).
            eprintln!(
                "upcase client: {}",
                output::escaped(error.to_string().as_bytes())
            );
            if let ClientError::Timeout { timeout } = &error {
                eprintln!(
                    "upcase client: the reply to line {} was not whole within {:.1} s of being owed (a deadline: bytes trickled in do not extend it)",
                    answered + 1,
                    timeout.as_secs_f64()
                );
            }
            if let Some(hint) = advice(&error, &args, answered > 0) {
                eprintln!("hint: {hint}");
            }
            let nobody = matches!(
                error,
                ClientError::Refused { .. }
                    | ClientError::ConnectTimeout { .. }
                    | ClientError::Resolve { .. }
            );
            output::exit(if nobody {
                output::USAGE
            } else {
                output::PEER_FAILED
            })
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
            write!(stdout, "{PROMPT}")
                .and_then(|()| stdout.flush())
                .map_err(output::quiet_if_closed)?;
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

/// Framed mode; `answered` counts the lines the server has replied to.
fn run_framed(
    args: &ClientArgs,
    timeout: Duration,
    interactive: bool,
    answered: &mut usize,
) -> Result<(), ClientError> {
    // The §2.4 probe, so that a raw server's echo is not taken for replies.
    let config = ClientConfig {
        reply_timeout: timeout,
        probe: true,
        max_fragment_len: args
            .max_frame
            .unwrap_or(upcase::conn::DEFAULT_MAX_FRAGMENT_LEN),
        ..ClientConfig::default()
    };
    let mut client = Client::connect_with(args.addr.as_str(), timeout, config)?;
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
            print_answer(client.receive_answer()?)?;
            *answered += 1;
            in_flight_bytes -= in_flight.pop_front().unwrap_or_default();
        }
    }
    while in_flight.pop_front().is_some() {
        print_answer(client.receive_answer()?)?;
        *answered += 1;
    }
    client.bye()
}

/// A reply's data, or `ERROR <code>` for an ERROR the connection survives
/// (its message on stderr): SPEC.md §6.6 counts it as the reply, whatever
/// the code, and the session goes on.
fn print_answer(answer: Answer) -> io::Result<()> {
    match answer {
        Answer::Data(data) => print_reply(&data),
        Answer::Error(error) => print_reply(&error_line(&error)),
    }
}

/// The line an ERROR reply prints, `ERROR <code>`; its message goes to stderr.
fn error_line(error: &ErrorPayload) -> Vec<u8> {
    eprintln!(
        "upcase client: server error {}: {}",
        error.code,
        error.message.escape_debug()
    );
    format!("ERROR {}", error.code.0).into_bytes()
}

/// UDP: each line is one datagram — raw (with its newline) or one frame —
/// and its reply is printed. No session, so nothing to say goodbye to.
///
/// UDP may duplicate a datagram, and a reply may come after its request
/// was given up: a datagram equal to a reply printed lately, and not what
/// this line's request should get, is counted as a duplicate or late reply
/// (said on stderr at the end), never printed as the next answer.
fn run_udp(args: &ClientArgs, timeout: Duration, interactive: bool) -> Result<(), ClientError> {
    let mut client = UdpClient::connect(args.addr.as_str(), timeout)?;
    let mut lines = Lines {
        stdin: io::stdin().lock(),
        interactive,
    };
    let mut replies = UdpReplies::default();
    while let Some(mut line) = lines.next()? {
        let expected = expected_reply(&line, args.bytes);
        let frame_type = if args.bytes {
            FrameType::Bytes
        } else {
            FrameType::Text
        };
        let (datagram, raw) = if args.raw {
            line.push(b'\n');
            (line, true)
        } else {
            let frame = FrameRepr::new(frame_type, line);
            (encode_framed_datagram(&frame).to_vec(), false)
        };
        let reply = replies.exchange(&mut client, &datagram, &expected, timeout, |reply| {
            if raw {
                Ok(reply.strip_suffix(b"\n").unwrap_or(&reply).to_vec())
            } else {
                match UdpClient::reply_frame(&reply, frame_type) {
                    Ok(frame) => Ok(frame.data.to_vec()),
                    // Each datagram stands alone (SPEC.md §8.2): an ERROR
                    // is its reply, and the next line goes on.
                    Err(ClientError::Server { code, message }) => {
                        Ok(error_line(&ErrorPayload::new(code, message)))
                    }
                    Err(error) => Err(error),
                }
            }
        })?;
        print_reply(&reply)?;
    }
    replies.report();
    Ok(())
}

/// What a line's reply should be, by the oracle SPEC.md §5.1/§5.2 give:
/// Unicode upper case for text, ASCII upper case for bytes (a guess for a
/// raw server in ASCII mode; it only serves to tell a duplicate apart).
fn expected_reply(line: &[u8], bytes: bool) -> Vec<u8> {
    match std::str::from_utf8(line) {
        Ok(text) if !bytes => text.to_uppercase().into_bytes(),
        _ => line.to_ascii_uppercase(),
    }
}

/// How many of the last replies printed a duplicate is looked for among:
/// a copy comes soon after its original, and the memory stays bounded
/// however long the input.
const RECENT_REPLIES: usize = 64;

/// The replies printed lately over UDP, to recognise duplicates.
#[derive(Default)]
struct UdpReplies {
    printed: VecDeque<Vec<u8>>,
    duplicates: u64,
}

impl UdpReplies {
    /// Send `datagram`; its reply (as `data` takes it from a datagram): the
    /// first that is the expected reply, or not a copy of a reply already
    /// printed, within one deadline from the send, however many copies come.
    fn exchange(
        &mut self,
        client: &mut UdpClient,
        datagram: &[u8],
        expected: &[u8],
        timeout: Duration,
        data: impl Fn(Vec<u8>) -> Result<Vec<u8>, ClientError>,
    ) -> Result<Vec<u8>, ClientError> {
        let deadline = Instant::now() + timeout;
        client.send(datagram)?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = data(client.receive_within(left)?)?;
            if reply == expected || !self.printed.contains(&reply) {
                if self.printed.len() == RECENT_REPLIES {
                    self.printed.pop_front();
                }
                self.printed.push_back(reply.clone());
                return Ok(reply);
            }
            self.duplicates += 1;
        }
    }

    fn report(&self) {
        if self.duplicates > 0 {
            eprintln!(
                "upcase client: ignored {} duplicate or late reply datagram(s) (UDP may duplicate datagrams)",
                self.duplicates
            );
        }
    }
}

/// Print one reply; a closed stdout ends the client quietly.
fn print_reply(reply: &[u8]) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(&output::reply_for_stdout(reply))
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush())
        .map_err(output::quiet_if_closed)
}

/// Raw mode, as the tutorial's client: send each line with its newline,
/// print what comes back up to a newline. The end is a plain close.
/// `answered` counts the lines answered.
fn run_raw(
    addr: &str,
    timeout: Duration,
    interactive: bool,
    answered: &mut usize,
) -> Result<(), ClientError> {
    let mut stream = connect_stream(addr, timeout)?;
    stream.set_write_timeout(Some(timeout))?;
    let mut lines = Lines {
        stdin: io::stdin().lock(),
        interactive,
    };
    let mut received = RawReplies::default();
    while let Some(mut line) = lines.next()? {
        line.push(b'\n');
        stream.write_all(&line).map_err(timeout_error(timeout))?;
        let deadline = Instant::now() + timeout;
        let limit = raw_reply_limit(line.len());
        let reply = received
            .read_line(&mut stream, deadline, limit)
            .map_err(timeout_error(timeout))?;
        print_reply(&reply)?;
        *answered += 1;
    }
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

/// The most a raw reply to a line of `len` bytes can hold: each byte
/// becomes at most 3 (SPEC.md §11).
fn raw_reply_limit(len: usize) -> usize {
    len.saturating_mul(3)
}

/// Bytes received on a raw connection: what came after the last line.
#[derive(Default)]
struct RawReplies {
    received: Vec<u8>,
    /// The first `scanned` bytes of `received` hold no newline.
    scanned: usize,
}

impl RawReplies {
    /// The next line of `stream` without its newline, by `deadline`, at most
    /// `limit` bytes: each byte is looked at once.
    fn read_line(
        &mut self,
        stream: &mut TcpStream,
        deadline: Instant,
        limit: usize,
    ) -> io::Result<Vec<u8>> {
        let mut chunk = [0; 4096];
        loop {
            if let Some(at) = self.received[self.scanned..]
                .iter()
                .position(|&b| b == b'\n')
            {
                let mut line: Vec<u8> = self.received.drain(..=self.scanned + at).collect();
                self.scanned = 0;
                line.pop();
                return Ok(line);
            }
            self.scanned = self.received.len();
            if self.received.len() > limit {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the server sent {} bytes without a newline, more than the {limit} the line can produce (3 × its length, SPEC.md §11): is it a raw UPCASE server?",
                        self.received.len()
                    ),
                ));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            stream.set_read_timeout(Some(left))?;
            match stream.read(&mut chunk)? {
                0 if self.received.is_empty() => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection before answering",
                    ));
                }
                0 => {
                    self.scanned = 0;
                    return Ok(std::mem::take(&mut self.received));
                }
                read => self.received.extend_from_slice(&chunk[..read]),
            }
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
