//! How much of its loop one connection may use in one turn (SPEC.md §11,
//! "CPU"), counted in *work units* rather than in bytes read.
//!
//! Why not bytes: the same megabyte costs the loop very different amounts
//! of time. 64 KiB TEXT frames of ASCII are the cheapest input; empty
//! frames of an unknown type cost about 40 times as much per byte (each is
//! a frame to decode and an ERROR to write and log), 1-byte fragments 3
//! times, and U+0390 or ill-formed raw input 13 times (issue 17). A turn of
//! sixteen 64 KiB reads was a millisecond of ASCII but 80 ms of unknown
//! frames, during which every other connection of the loop waited. So a
//! turn is charged for what it did: each read call, each byte read, each
//! byte of output produced, each frame and each ERROR; and reads are sized
//! so that one read cannot overshoot the turn by much: a connection whose
//! last read cost many units per byte reads fewer bytes next time.
//!
//! The weights are the costs measured on the release build with `-q` (a
//! byte of ASCII in and out is about 1 ns; a frame about 100 ns; an ERROR
//! about 100 ns more; a read call about 1 µs), in units of a byte. Input whose
//! bytes cost more than their count through the transform is still
//! undercounted: U+0390 and mixed scripts by 2–3 times, ill-formed raw input
//! by 20 times (at main 0ea38e6: a turn of it is about 2 ms).

use crate::conn::ConnectionStats;
use crate::wire::FrameType;

/// Work units one connection may use in a turn, by default: about 64 KiB of
/// ASCII TEXT in (and its 64 KiB reply), 720 empty PINGs, or 280 empty
/// unknown-type frames and their ERRORs: about 0.1 ms on this machine. Half
/// of it cost bulk transfers a measurable share of their speed (one more
/// trip around the loop for every 32 KiB); the sixteen 64 KiB reads of
/// before were up to 80 ms of the loop.
pub const DEFAULT_WORK_PER_TURN: usize = 128 * 1024;

/// What a read call costs beyond its bytes (the system call, the loop).
const READ_WORK: usize = 1024;
/// What a frame costs beyond its bytes (decoding, a reply header, counters).
const FRAME_WORK: usize = 96;
/// What an ERROR costs beyond its frame and its bytes: its message, its
/// event and, at most a few times a second (the log is throttled), a
/// WARN line.
const ERROR_WORK: usize = 256;

/// The smallest read a connection is given while its turn has units left:
/// reading less would spend the turn on read calls.
const MIN_READ: usize = 512;

/// What one read of a connection did, from its core's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Work {
    /// Bytes read.
    pub(crate) bytes_in: usize,
    /// Bytes of output produced (replies, ERRORs).
    pub(crate) bytes_out: usize,
    /// Complete frames processed.
    pub(crate) frames: u64,
    /// ERRORs produced.
    pub(crate) errors: u64,
}

impl Work {
    /// What a read of `bytes_in` bytes did to a core whose counters went
    /// from `before` to `after`, and whose pending output grew by
    /// `bytes_out`.
    pub(crate) fn between(
        before: &ConnectionStats,
        after: &ConnectionStats,
        bytes_in: usize,
        bytes_out: usize,
    ) -> Work {
        let errors = |stats: &ConnectionStats| stats.frames_out_by_type.get(FrameType::Error);
        Work {
            bytes_in,
            bytes_out,
            frames: after.frames_in.saturating_sub(before.frames_in),
            errors: errors(after).saturating_sub(errors(before)),
        }
    }

    /// Its cost in work units.
    pub(crate) fn units(&self) -> usize {
        let per_frame = self.frames.saturating_mul(FRAME_WORK as u64);
        let per_error = self.errors.saturating_mul(ERROR_WORK as u64);
        READ_WORK
            .saturating_add(self.bytes_in)
            .saturating_add(self.bytes_out)
            .saturating_add(
                usize::try_from(per_frame.saturating_add(per_error)).unwrap_or(usize::MAX),
            )
    }
}

/// One connection's turn: the units it has left.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Turn {
    left: usize,
}

impl Turn {
    /// A turn of `units` work units.
    pub(crate) fn new(units: usize) -> Turn {
        Turn { left: units }
    }

    /// Whether the turn is used up: the loop serves the others first.
    pub(crate) fn is_spent(&self) -> bool {
        self.left == 0
    }

    /// Charge what a read did.
    pub(crate) fn charge(&mut self, work: &Work) {
        self.left = self.left.saturating_sub(work.units());
    }

    /// How many of `wanted` bytes to read next, for a connection that
    /// costs `cost` per byte: what the rest of the turn pays for, but at
    /// least [`MIN_READ`].
    pub(crate) fn read_size(&self, wanted: usize, cost: CostPerByte) -> usize {
        let affordable = self.left.saturating_sub(READ_WORK) * CostPerByte::SCALE / cost.0;
        wanted.min(affordable.max(MIN_READ))
    }
}

/// A connection's work units per byte read, as its reads showed, in
/// sixteenths (fixed point: at least one unit per byte).
///
/// It rises at once to what a read cost and falls only halfway to it, so
/// a client that alternates cheap and expensive input is sized as an
/// expensive one, while one whose input turns cheap doubles its reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CostPerByte(usize);

impl CostPerByte {
    const SCALE: usize = 16;

    /// Learn from a read that did `work`.
    pub(crate) fn learn(&mut self, work: &Work) {
        if let Some(per_byte) = work
            .units()
            .saturating_mul(Self::SCALE)
            .checked_div(work.bytes_in)
        {
            let per_byte = per_byte.max(Self::SCALE);
            self.0 = if per_byte >= self.0 {
                per_byte
            } else {
                (self.0 + per_byte) / 2
            };
        }
    }
}

impl Default for CostPerByte {
    /// Before its first read a connection is assumed to cost 8 units a
    /// byte (between ASCII's 2 and unknown-type frames' 11), so
    /// that its first read cannot be many turns' worth of work.
    fn default() -> CostPerByte {
        CostPerByte(8 * CostPerByte::SCALE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes_in: usize, bytes_out: usize, frames: u64, errors: u64) -> Work {
        Work {
            bytes_in,
            bytes_out,
            frames,
            errors,
        }
    }

    #[test]
    fn a_read_costs_its_call_bytes_frames_and_errors() {
        assert_eq!(read(0, 0, 0, 0).units(), READ_WORK);
        assert_eq!(read(100, 300, 0, 0).units(), READ_WORK + 400);
        assert_eq!(
            read(420, 0, 10, 10).units(),
            READ_WORK + 420 + 10 * FRAME_WORK + 10 * ERROR_WORK
        );
    }

    #[test]
    fn the_errors_and_frames_of_a_read_come_from_the_core_counters() {
        let mut before = ConnectionStats {
            frames_in: 5,
            ..ConnectionStats::default()
        };
        before.frames_out_by_type.add(FrameType::Error);
        let mut after = before;
        after.frames_in = 8;
        after.frames_out_by_type.add(FrameType::Error);
        after.frames_out_by_type.add(FrameType::Pong);
        assert_eq!(
            Work::between(&before, &after, 126, 200),
            read(126, 200, 3, 1)
        );
    }

    #[test]
    fn a_turn_is_spent_by_work_not_by_bytes() {
        // The same 4,200 bytes: as one ASCII frame it leaves most of a
        // 16 KiB turn; as 100 unknown-type frames with their ERRORs it
        // spends it.
        let mut ascii = Turn::new(16 * 1024);
        ascii.charge(&read(4200, 4200, 1, 0));
        assert!(!ascii.is_spent());
        let mut unknown = Turn::new(16 * 1024);
        unknown.charge(&read(4200, 3000, 100, 100));
        assert!(unknown.is_spent());
    }

    #[test]
    fn an_expensive_connection_reads_less_at_a_time() {
        let turn = Turn::new(64 * 1024 + READ_WORK);
        let mut cost = CostPerByte::default();
        assert_eq!(turn.read_size(1 << 20, cost), 8 * 1024);
        // ASCII echoed: 2 units a byte (the read call aside); the reads
        // grow to that over a few.
        let ascii = read(64 * 1024, 64 * 1024 - READ_WORK, 0, 0);
        cost.learn(&ascii);
        assert_eq!(turn.read_size(1 << 20, cost), 64 * 1024 / 5);
        for _ in 0..10 {
            cost.learn(&ascii);
        }
        assert_eq!(turn.read_size(1 << 20, cost), 32 * 1024);
        // Unknown-type frames: 42 bytes in, about 70 out, an ERROR each.
        cost.learn(&read(4200, 7000, 100, 100));
        let size = turn.read_size(1 << 20, cost);
        assert!(size < 8 * 1024, "{size}");
        // Never less than the floor while units are left, nor more than wanted.
        assert_eq!(Turn::new(READ_WORK).read_size(1 << 20, cost), MIN_READ);
        assert_eq!(turn.read_size(100, CostPerByte::default()), 100);
    }

    #[test]
    fn the_cost_rises_at_once_and_falls_halfway() {
        let mut cost = CostPerByte(2 * CostPerByte::SCALE);
        // 10,000 bytes in: 30 units a byte, then 2.
        let expensive = read(10_000, 300_000 - READ_WORK - 10_000, 0, 0);
        let cheap = read(10_000, 20_000 - READ_WORK - 10_000, 0, 0);
        cost.learn(&expensive);
        assert_eq!(cost, CostPerByte(30 * CostPerByte::SCALE));
        cost.learn(&cheap);
        assert_eq!(cost, CostPerByte(16 * CostPerByte::SCALE));
        cost.learn(&cheap);
        assert_eq!(cost, CostPerByte(9 * CostPerByte::SCALE));
    }

    #[test]
    fn a_read_of_nothing_teaches_nothing() {
        let mut cost = CostPerByte::default();
        cost.learn(&read(0, 0, 0, 0));
        assert_eq!(cost, CostPerByte::default());
        // Cheap reads cost at least a unit per byte.
        for _ in 0..10 {
            cost.learn(&read(1 << 20, 0, 0, 0));
        }
        assert_eq!(cost, CostPerByte(CostPerByte::SCALE));
    }
}
