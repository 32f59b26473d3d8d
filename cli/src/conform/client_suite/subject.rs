//! The client under test: a child process in its own process group, fed
//! its requests on stdin, its stdout and stderr kept up to a bound, killed
//! with its whole group when its case's deadline passes.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How much of the client's stdout is kept; the rest is read and dropped,
/// so a client that floods it neither blocks nor eats memory.
const STDOUT_KEPT: usize = 1 << 20;

/// How much of the client's stderr is kept for the report.
const STDERR_KEPT: usize = 16 * 1024;

/// One run of the client under test.
pub struct Subject {
    child: Child,
    stdout: Captured,
    stderr: Captured,
}

/// How the run ended.
pub struct Ended {
    /// The exit status; `None` when it was killed at the deadline.
    pub status: Option<ExitStatus>,
    /// Its stdout (at most [`STDOUT_KEPT`] bytes).
    pub stdout: Vec<u8>,
    /// Its stderr (at most [`STDERR_KEPT`] bytes).
    pub stderr: Vec<u8>,
}

impl Subject {
    /// Start `argv` (the client's command, its arguments, then the case's)
    /// and write `stdin` to it, then end its input.
    ///
    /// # Errors
    /// When the command cannot be started (not found, not executable).
    pub fn start(argv: Vec<String>, stdin: Vec<u8>) -> std::io::Result<Subject> {
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()?;
        let mut input = child.stdin.take().expect("stdin is piped");
        // A client that stops reading its stdin (or exits) must not block
        // the suite: the writer runs apart and its errors mean nothing.
        thread::spawn(move || {
            let _ = input.write_all(&stdin);
        });
        let stdout = Captured::spawn(child.stdout.take().expect("piped"), STDOUT_KEPT);
        let stderr = Captured::spawn(child.stderr.take().expect("piped"), STDERR_KEPT);
        Ok(Subject {
            child,
            stdout,
            stderr,
        })
    }

    /// Whether the client has exited (before it connected, say).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Wait for the client to exit until `deadline`; past it, kill its
    /// whole process group. Its output is what it wrote by then.
    pub fn finish(mut self, deadline: Instant) -> Ended {
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                _ => break None,
            }
        };
        // Children it left behind go too, at the deadline or not.
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::KILL,
        );
        if status.is_none() {
            let _ = self.child.wait();
        }
        // The pipes close once the group is gone; wait a moment for the
        // readers to take the last bytes, never for long.
        let settle = Instant::now() + Duration::from_millis(500);
        Ended {
            status,
            stdout: self.stdout.take(settle),
            stderr: self.stderr.take(settle),
        }
    }
}

/// A pipe read to its end on its own thread, the first `keep` bytes kept.
struct Captured {
    bytes: Arc<Mutex<Vec<u8>>>,
    done: Arc<Mutex<bool>>,
}

impl Captured {
    fn spawn(mut pipe: impl Read + Send + 'static, keep: usize) -> Captured {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(Mutex::new(false));
        let (kept, finished) = (Arc::clone(&bytes), Arc::clone(&done));
        thread::spawn(move || {
            let mut chunk = [0; 8192];
            while let Ok(read @ 1..) = pipe.read(&mut chunk) {
                let mut kept = kept.lock().expect("no panic holds it");
                let room = keep.saturating_sub(kept.len()).min(read);
                kept.extend_from_slice(&chunk[..room]);
            }
            *finished.lock().expect("no panic holds it") = true;
        });
        Captured { bytes, done }
    }

    fn take(&self, until: Instant) -> Vec<u8> {
        while !*self.done.lock().expect("no panic holds it") && Instant::now() < until {
            thread::sleep(Duration::from_millis(2));
        }
        std::mem::take(&mut *self.bytes.lock().expect("no panic holds it"))
    }
}
