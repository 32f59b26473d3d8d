//! A line client over `std::net`, driven by the sans-IO
//! [`ClientConnection`]: what a client of your own needs, in the shape
//! `upcase conform --client` tests (README.md, "Testing a client").
//!
//! ```text
//! cargo run --example conn_client -- [--bytes] [--max-frame N] [--timeout SECS] HOST:PORT
//! ```
//!
//! Each stdin line is one request (TEXT, or BYTES with `--bytes`); each
//! reply is printed on its own line, an ERROR the connection survives as
//! `ERROR <code>` (SPEC.md §6.6). `exit` or the end of stdin ends the
//! session with BYE. Exit status 0 after a normal end, 1 on a failure.

use std::io::{self, BufRead, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use upcase::conn::{ClientConfig, ClientConnection, ClientEvent};
use upcase::wire::FrameType;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run(&args)
}

/// Parse `args` and run the session; the exit status.
pub fn run(args: &[String]) -> ExitCode {
    match parse(args).and_then(|(bytes, config, addr)| session(bytes, config, &addr)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("conn_client: {error}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> Result<(bool, ClientConfig, String), String> {
    let usage = "usage: conn_client [--bytes] [--max-frame N] [--timeout SECS] HOST:PORT";
    let mut config = ClientConfig {
        // SPEC.md §2.4: a raw server's echo must not pass for replies.
        probe: true,
        reply_timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    };
    let mut bytes = false;
    let mut args = args.iter();
    let mut addr = None;
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value; {usage}"))
        };
        match arg.as_str() {
            "--bytes" => bytes = true,
            "--max-frame" => {
                config.max_fragment_len =
                    value()?.parse().map_err(|e| format!("--max-frame: {e}"))?
            }
            "--timeout" => {
                let secs: f64 = value()?.parse().map_err(|e| format!("--timeout: {e}"))?;
                config.reply_timeout =
                    Duration::try_from_secs_f64(secs).map_err(|e| format!("--timeout: {e}"))?;
            }
            _ => addr = Some(arg.clone()),
        }
    }
    Ok((bytes, config, addr.ok_or(usage)?))
}

fn session(bytes: bool, config: ClientConfig, addr: &str) -> Result<(), String> {
    let timeout = config.reply_timeout;
    let mut stream =
        TcpStream::connect(addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut conn = ClientConnection::new(Instant::now(), config);
    for line in io::stdin().lock().split(b'\n') {
        let mut line = line.map_err(|e| e.to_string())?;
        if line.ends_with(b"\r") {
            line.pop();
        }
        if line == b"exit" {
            break;
        }
        let queued = if bytes {
            conn.send_bytes(&line)
        } else {
            let text = String::from_utf8(line).map_err(|_| "a line is not UTF-8; use --bytes")?;
            conn.send_text(&text)
        };
        queued.map_err(|e| e.to_string())?;
        let mut reply = Vec::new();
        let printed = drive(&mut conn, &mut stream, |event| match event {
            ClientEvent::Reply { frame, last, .. } => {
                reply.extend_from_slice(&frame.data);
                last.then(|| Ok(String::from_utf8_lossy(&reply).into_owned()))
            }
            ClientEvent::Error { error, .. } => Some(Ok(format!("ERROR {}", error.code.0))),
            ClientEvent::ServerBye { .. } => {
                Some(Err("the server said BYE before answering".into()))
            }
            ClientEvent::ConnectionLost { error, .. } => Some(Err(error.to_string())),
        })?;
        println!("{printed}");
    }
    // A server BYE after the last reply may have closed it already (§5.4).
    if !conn.is_closed() {
        conn.bye().map_err(|e| e.to_string())?;
    }
    drive(&mut conn, &mut stream, |event| match event {
        ClientEvent::Reply { frame, .. } if frame.frame_type == FrameType::Bye => Some(Ok(())),
        // SPEC.md §5.4: a server BYE that leaves nothing but our BYE
        // unanswered is a normal end.
        ClientEvent::ServerBye { unanswered, .. } if unanswered.len() <= 1 => Some(Ok(())),
        ClientEvent::ConnectionLost { error, .. } => Some(Err(error.to_string())),
        other => Some(Err(format!("unexpected {other:?} at BYE"))),
    })
}

/// Write, read and tick the connection until `on_event` decides.
fn drive<T>(
    conn: &mut ClientConnection,
    stream: &mut TcpStream,
    mut on_event: impl FnMut(ClientEvent) -> Option<Result<T, String>>,
) -> Result<T, String> {
    let mut buffer = [0; 64 * 1024];
    loop {
        while let Some(event) = conn.poll_event() {
            if let Some(result) = on_event(event) {
                return result;
            }
        }
        if conn.is_closed() {
            return Err("the connection is closed".into());
        }
        while !conn.pending_output().is_empty() {
            let sent = stream
                .write(conn.pending_output())
                .map_err(|e| e.to_string())?;
            conn.mark_sent(Instant::now(), sent)
                .map_err(|e| e.to_string())?;
        }
        let now = Instant::now();
        let wait = conn.poll_timeout().map_or(Duration::from_secs(1), |at| {
            at.saturating_duration_since(now)
        });
        if wait.is_zero() {
            conn.handle_timeout(now);
            continue;
        }
        stream
            .set_read_timeout(Some(wait))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buffer) {
            Ok(0) => conn.handle_eof(Instant::now()),
            Ok(read) => conn.handle_input(Instant::now(), &buffer[..read]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                conn.handle_timeout(Instant::now());
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => conn.handle_eof(Instant::now()),
            Err(e) => return Err(e.to_string()),
        }
    }
}
