//! `upcase serve`'s log output: formatted lines wait in a bounded queue for
//! one writer thread, and a line that finds the queue full is dropped and
//! counted, never waited for.
//!
//! Why: the event loops log. A write to stderr blocks when stderr is a pipe
//! nobody reads, a slow terminal or a stalled log shipper, and a loop
//! blocked in `write` serves no one (issue 17: 0 of 10 new clients served).
//! Handing the line over costs the loop a lock and a copy; the writer thread
//! alone waits for stderr. The queue is bounded in bytes (`--log-queue`), so
//! a stderr that never drains costs lines, not memory; the lines dropped are
//! counted for the metrics (`upcase_log_lines_dropped_total`) and reported
//! at exit when stderr takes them.
//!
//! env_logger still filters and formats: it writes each record whole, with
//! one `write` of a [`QueueWriter`] (its `Target::Pipe`).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// The queue and its writer thread. Cloning it gives another handle to
/// the same queue.
#[derive(Debug, Clone)]
pub struct LogQueue {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when a line is queued and when a batch has been written.
    changed: Condvar,
    /// Bytes of lines that may wait at once.
    capacity: usize,
    /// Lines dropped: the queue was full, or writing them failed.
    dropped: Arc<AtomicU64>,
}

#[derive(Debug, Default)]
struct State {
    lines: VecDeque<Vec<u8>>,
    /// Bytes of `lines`.
    queued_bytes: usize,
    /// Lines queued or being written, not yet written.
    unwritten: usize,
}

impl LogQueue {
    /// Start the writer thread, writing lines to `out`; at most `capacity`
    /// bytes of lines wait for it (a longer line is always dropped).
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn start(capacity: usize, out: impl Write + Send + 'static) -> io::Result<LogQueue> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            capacity,
            dropped: Arc::new(AtomicU64::new(0)),
        });
        let writer = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("log writer".into())
            .spawn(move || writer.write_forever(out))?;
        Ok(LogQueue { shared })
    }

    /// The writer to log through: each `write` queues one line, or drops it.
    pub fn writer(&self) -> QueueWriter {
        QueueWriter {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The count of lines dropped, shared (for the metrics).
    pub fn dropped_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.shared.dropped)
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Relaxed)
    }

    /// Wait until every line queued so far has been written, or until
    /// `deadline`: whether they were. A writer stuck on a stderr nobody
    /// reads never finishes, so exits wait with a deadline.
    pub fn wait_written(&self, deadline: Instant) -> bool {
        let mut state = self.shared.lock();
        while state.unwritten > 0 {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queue `line`, or drop and count it when it does not fit.
    fn push(&self, line: &[u8]) {
        let mut state = self.lock();
        if state.queued_bytes + line.len() > self.capacity {
            drop(state);
            self.dropped.fetch_add(1, Relaxed);
            return;
        }
        state.queued_bytes += line.len();
        state.unwritten += 1;
        state.lines.push_back(line.to_vec());
        drop(state);
        self.changed.notify_all();
    }

    /// The writer thread: take every queued line at once and write them
    /// with the lock released, so loggers wait for no write.
    fn write_forever(&self, mut out: impl Write) {
        loop {
            let batch = {
                let mut state = self.lock();
                while state.lines.is_empty() {
                    state = self
                        .changed
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                state.queued_bytes = 0;
                std::mem::take(&mut state.lines)
            };
            let failed = batch
                .iter()
                .filter(|line| out.write_all(line).is_err())
                .count();
            let _ = out.flush();
            self.dropped.fetch_add(failed as u64, Relaxed);
            self.lock().unwritten -= batch.len();
            self.changed.notify_all();
        }
    }
}

/// What env_logger writes to: one `write` per record, queued or dropped,
/// never blocking on the output.
#[derive(Debug)]
pub struct QueueWriter {
    shared: Arc<Shared>,
}

impl Write for QueueWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.shared.push(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    const DEADLINE: Duration = Duration::from_secs(30);

    /// An output that takes nothing until released, then keeps every line.
    struct Gate {
        open: mpsc::SyncSender<()>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    struct GatedOutput {
        open: Option<mpsc::Receiver<()>>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for GatedOutput {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if let Some(open) = self.open.take() {
                open.recv().expect("the test opens the gate");
            }
            self.written.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn gated() -> (Gate, GatedOutput) {
        let (open, opened) = mpsc::sync_channel(1);
        let written = Arc::new(Mutex::new(Vec::new()));
        let gate = Gate {
            open,
            written: Arc::clone(&written),
        };
        let output = GatedOutput {
            open: Some(opened),
            written,
        };
        (gate, output)
    }

    fn deadline() -> Instant {
        Instant::now() + DEADLINE
    }

    #[test]
    fn lines_are_written_in_order() {
        let (gate, output) = gated();
        gate.open.send(()).unwrap();
        let queue = LogQueue::start(1024, output).unwrap();
        let mut writer = queue.writer();
        for line in ["one\n", "two\n", "three\n"] {
            writer.write_all(line.as_bytes()).unwrap();
        }
        assert!(queue.wait_written(deadline()));
        assert_eq!(&*gate.written.lock().unwrap(), b"one\ntwo\nthree\n");
        assert_eq!(queue.dropped(), 0);
    }

    #[test]
    fn a_stuck_output_costs_lines_not_waiting() {
        let (gate, output) = gated();
        let queue = LogQueue::start(10, output).unwrap();
        let mut writer = queue.writer();
        // The writer thread takes the first line and blocks writing it;
        // then 10 bytes fit and the rest is dropped, each write at once.
        writer.write_all(b"first\n").unwrap();
        let taken = Instant::now() + DEADLINE;
        while queue.shared.lock().queued_bytes > 0 {
            assert!(
                Instant::now() < taken,
                "the writer never took the first line"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        for line in [
            &b"12345\n"[..],
            b"678\n",
            b"9\n",
            b"too long for the queue\n",
        ] {
            writer.write_all(line).unwrap();
        }
        assert_eq!(queue.dropped(), 2, "\"9\" and the long line did not fit");
        assert_eq!(queue.dropped_counter().load(Relaxed), 2);
        assert!(
            !queue.wait_written(Instant::now() + Duration::from_millis(50)),
            "nothing is written while the output is stuck"
        );
        gate.open.send(()).unwrap();
        assert!(queue.wait_written(deadline()));
        assert_eq!(&*gate.written.lock().unwrap(), b"first\n12345\n678\n");
    }

    #[test]
    fn lines_the_output_refuses_count_as_dropped() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let queue = LogQueue::start(1024, Closed).unwrap();
        let mut writer = queue.writer();
        writer.write_all(b"lost\n").unwrap();
        writer.write_all(b"lost too\n").unwrap();
        assert!(queue.wait_written(deadline()));
        assert_eq!(queue.dropped(), 2);
    }
}
