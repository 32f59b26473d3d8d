//! The streaming upper-case transform (SPEC.md §5.1, §5.2, §7).
//!
//! An [`Upcaser`] takes input in chunks of any size and writes upper case as
//! soon as it can. Bytes of a code point that is still incomplete at the end
//! of a chunk are carried (at most 3 bytes) until the next chunk completes or
//! breaks them: never emitted early, never dropped. So the output never
//! depends on how the input was split.
//!
//! Three modes:
//!
//! | mode | used for | invalid UTF-8 |
//! |------|----------|---------------|
//! | [`CaseMode::UnicodeStrict`]   | TEXT frames | an error at the first byte that makes the input invalid |
//! | [`CaseMode::UnicodeLossless`] | raw mode    | copied unchanged, split the way [`std::str::Utf8Chunks`] splits |
//! | [`CaseMode::Ascii`]           | BYTES frames, the raw ASCII option | not a concept: a–z → A–Z, nothing else changes |
//!
//! The Unicode mapping is `char::to_uppercase` of the toolchain's std
//! (Unicode 17.0.0 for Rust 1.95): the full default mapping, no tailoring.
//! It is applied through tables that build.rs generates from that very
//! function, in one pass that also validates (`upper`); the tests in
//! `exhaustive` compare every scalar value with std, in every context the
//! fast paths tell apart.

use std::convert::Infallible;

use bytes::BytesMut;

use upper::{push_ascii_upper, push_upper_prefix, push_upper_str};

/// The most bytes one input byte can become: U+0390 (ΐ, 2 bytes) upper-cases
/// to three 2-byte code points (6 bytes). Checked over every `char` in the tests.
pub const MAX_EXPANSION: usize = 3;

/// Which upper-case rules an [`Upcaser`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum CaseMode {
    /// Unicode upper case of valid UTF-8; invalid input is an error (TEXT).
    UnicodeStrict,
    /// Unicode upper case; invalid bytes pass through unchanged (raw mode).
    UnicodeLossless,
    /// ASCII letters only, like Python's `bytes.upper()` (BYTES, raw ASCII option).
    Ascii,
}

/// The modes that cannot fail, for a [`LosslessUpcaser`]: every input has an
/// upper case, so its methods return no `Result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum LosslessMode {
    /// [`CaseMode::UnicodeLossless`].
    Unicode,
    /// [`CaseMode::Ascii`].
    Ascii,
}

impl From<LosslessMode> for CaseMode {
    fn from(mode: LosslessMode) -> CaseMode {
        match mode {
            LosslessMode::Unicode => CaseMode::UnicodeLossless,
            LosslessMode::Ascii => CaseMode::Ascii,
        }
    }
}

/// Input that is not UTF-8, reported by [`CaseMode::UnicodeStrict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid UTF-8 at byte {offset} of the message")]
pub struct InvalidUtf8 {
    /// Offset in the whole message (all chunks since the last
    /// [`Upcaser::finish`]) of the first byte of the invalid sequence: the
    /// length of the message's longest valid prefix.
    pub offset: u64,
}

/// A byte buffer the transform appends to: [`BytesMut`] or `Vec<u8>`.
/// (Output that is always text has its own function, [`upcase_str`].)
///
/// Sealed: the transform writes in place (upper-casing a copied run,
/// truncating a failed call), so it needs more than [`std::io::Write`].
pub trait Output: output::Buffer {}

impl Output for BytesMut {}
impl Output for Vec<u8> {}

mod output {
    use bytes::BytesMut;

    /// What the transform needs of an [`Output`](super::Output): a growable
    /// byte buffer it may rewrite in place.
    pub trait Buffer {
        fn len(&self) -> usize;
        fn truncate(&mut self, len: usize);
        fn reserve(&mut self, additional: usize);
        fn extend_from_slice(&mut self, bytes: &[u8]);
        fn as_mut_slice(&mut self) -> &mut [u8];
        /// Append `additional` zero bytes and return them.
        fn grow_zeroed(&mut self, additional: usize) -> &mut [u8];
    }

    impl Buffer for BytesMut {
        fn len(&self) -> usize {
            BytesMut::len(self)
        }
        fn truncate(&mut self, len: usize) {
            BytesMut::truncate(self, len);
        }
        fn reserve(&mut self, additional: usize) {
            BytesMut::reserve(self, additional);
        }
        fn extend_from_slice(&mut self, bytes: &[u8]) {
            BytesMut::extend_from_slice(self, bytes);
        }
        fn as_mut_slice(&mut self) -> &mut [u8] {
            self
        }
        fn grow_zeroed(&mut self, additional: usize) -> &mut [u8] {
            let start = BytesMut::len(self);
            self.resize(start + additional, 0);
            &mut self[start..]
        }
    }

    impl Buffer for Vec<u8> {
        fn len(&self) -> usize {
            Vec::len(self)
        }
        fn truncate(&mut self, len: usize) {
            Vec::truncate(self, len);
        }
        fn reserve(&mut self, additional: usize) {
            Vec::reserve(self, additional);
        }
        fn extend_from_slice(&mut self, bytes: &[u8]) {
            Vec::extend_from_slice(self, bytes);
        }
        fn as_mut_slice(&mut self) -> &mut [u8] {
            self
        }
        fn grow_zeroed(&mut self, additional: usize) -> &mut [u8] {
            let start = Vec::len(self);
            self.resize(start + additional, 0);
            &mut self[start..]
        }
    }
}

use output::Buffer;

/// A streaming upper-caser in any [`CaseMode`]. Feed chunks with
/// [`Upcaser::push`], end a message or stream with [`Upcaser::finish`].
///
/// Both return a `Result` because strict mode can fail; when the mode is known
/// to be lossless, a [`LosslessUpcaser`] says so in its type.
#[derive(Debug, Clone)]
pub struct Upcaser {
    mode: CaseMode,
    stream: Stream,
    /// Strict mode's error, kept so that a failed message stays failed.
    failed: Option<InvalidUtf8>,
}

impl Upcaser {
    /// A transform at the start of a message.
    pub fn new(mode: CaseMode) -> Upcaser {
        Upcaser {
            mode,
            stream: Stream::new(mode == CaseMode::Ascii),
            failed: None,
        }
    }

    /// The mode.
    pub fn mode(&self) -> CaseMode {
        self.mode
    }

    /// The bytes of an incomplete code point held for the next chunk.
    pub fn carried(&self) -> &[u8] {
        self.stream.carried()
    }

    /// Whether no message is in progress: nothing pushed since the last
    /// [`Upcaser::finish`] (or since creation).
    pub fn is_at_message_start(&self) -> bool {
        self.stream.consumed == 0
    }

    /// The most bytes the next `push` of `input_len` bytes (or a `finish`,
    /// with 0) can write; reserve this much to never reallocate. `None` when
    /// that does not fit in a `usize`.
    pub fn max_output_len(&self, input_len: usize) -> Option<usize> {
        self.stream.max_output_len(input_len)
    }

    /// Upper-case `input`, appending to `out` everything that is complete.
    ///
    /// # Errors
    /// In strict mode, [`InvalidUtf8`] as soon as the message so far can no
    /// longer be the start of valid UTF-8. Nothing from the failing call is
    /// written to `out`, and every later call returns the same error.
    pub fn push(&mut self, input: &[u8], out: &mut impl Output) -> Result<(), InvalidUtf8> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        if self.mode != CaseMode::UnicodeStrict {
            let Ok(()) = self.stream.push::<Keep>(input, out);
            return Ok(());
        }
        let out_len_before = out.len();
        let result = self.stream.push::<Reject>(input, out);
        if let Err(error) = result {
            out.truncate(out_len_before);
            self.failed = Some(error);
        }
        result
    }

    /// End the message or stream: held bytes are copied unchanged (lossless)
    /// or are an error (strict). On success the transform is ready for a new
    /// message.
    ///
    /// # Errors
    /// In strict mode, [`InvalidUtf8`] when the input ended inside a code point.
    pub fn finish(&mut self, out: &mut impl Output) -> Result<(), InvalidUtf8> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        if self.mode != CaseMode::UnicodeStrict {
            let Ok(()) = self.stream.finish::<Keep>(out);
            return Ok(());
        }
        let result = self.stream.finish::<Reject>(out);
        if let Err(error) = result {
            self.failed = Some(error);
        }
        result
    }
}

/// A streaming upper-caser in a mode that cannot fail (raw mode, BYTES):
/// [`Upcaser`] without the `Result`.
#[derive(Debug, Clone)]
pub struct LosslessUpcaser {
    mode: LosslessMode,
    stream: Stream,
}

impl LosslessUpcaser {
    /// A transform at the start of a message.
    pub fn new(mode: LosslessMode) -> LosslessUpcaser {
        LosslessUpcaser {
            mode,
            stream: Stream::new(mode == LosslessMode::Ascii),
        }
    }

    /// The mode.
    pub fn mode(&self) -> LosslessMode {
        self.mode
    }

    /// The bytes of an incomplete code point held for the next chunk.
    pub fn carried(&self) -> &[u8] {
        self.stream.carried()
    }

    /// See [`Upcaser::max_output_len`].
    pub fn max_output_len(&self, input_len: usize) -> Option<usize> {
        self.stream.max_output_len(input_len)
    }

    /// Upper-case `input`, appending to `out` everything that is complete;
    /// invalid UTF-8 is copied unchanged.
    pub fn push(&mut self, input: &[u8], out: &mut impl Output) {
        let Ok(()) = self.stream.push::<Keep>(input, out);
    }

    /// End the message or stream: held bytes are copied unchanged, and the
    /// transform is ready for a new message.
    pub fn finish(&mut self, out: &mut impl Output) {
        let Ok(()) = self.stream.finish::<Keep>(out);
    }
}

/// What a mode does with bytes that are not UTF-8: the one difference between
/// strict and lossless, kept in the type so that lossless cannot fail.
trait InvalidBytes {
    /// `InvalidUtf8` or `Infallible`.
    type Error;
    /// Handle the maximal invalid subpart `invalid`, which starts at `offset`
    /// of the message.
    fn handle(invalid: &[u8], offset: u64, out: &mut impl Buffer) -> Result<(), Self::Error>;
}

/// Strict: invalid bytes are an error.
struct Reject;

impl InvalidBytes for Reject {
    type Error = InvalidUtf8;
    fn handle(_: &[u8], offset: u64, _: &mut impl Buffer) -> Result<(), InvalidUtf8> {
        Err(InvalidUtf8 { offset })
    }
}

/// Lossless: invalid bytes are copied unchanged.
struct Keep;

impl InvalidBytes for Keep {
    type Error = Infallible;
    fn handle(invalid: &[u8], _: u64, out: &mut impl Buffer) -> Result<(), Infallible> {
        out.extend_from_slice(invalid);
        Ok(())
    }
}

/// The streaming state every mode shares.
#[derive(Debug, Clone)]
struct Stream {
    /// ASCII rules (no code points, so nothing is ever carried).
    ascii: bool,
    carry: [u8; 4],
    carry_len: usize,
    /// Bytes pushed since the message began, carried bytes included.
    consumed: u64,
}

impl Stream {
    fn new(ascii: bool) -> Stream {
        Stream {
            ascii,
            carry: [0; 4],
            carry_len: 0,
            consumed: 0,
        }
    }

    fn carried(&self) -> &[u8] {
        &self.carry[..self.carry_len]
    }

    fn max_output_len(&self, input_len: usize) -> Option<usize> {
        input_len
            .checked_add(self.carry_len)?
            .checked_mul(MAX_EXPANSION)
    }

    fn push<P: InvalidBytes>(
        &mut self,
        input: &[u8],
        out: &mut impl Buffer,
    ) -> Result<(), P::Error> {
        if self.ascii {
            push_ascii_upper(input, out);
            self.consumed += input.len() as u64;
            return Ok(());
        }
        self.push_unicode::<P>(input, out)
    }

    fn finish<P: InvalidBytes>(&mut self, out: &mut impl Buffer) -> Result<(), P::Error> {
        if self.carry_len > 0 {
            let offset = self.consumed - self.carry_len as u64;
            P::handle(&self.carry[..self.carry_len], offset, out)?;
        }
        self.carry_len = 0;
        self.consumed = 0;
        Ok(())
    }

    fn push_unicode<P: InvalidBytes>(
        &mut self,
        mut input: &[u8],
        out: &mut impl Buffer,
    ) -> Result<(), P::Error> {
        if self.carry_len > 0 {
            input = self.complete_carry::<P>(input, out)?;
        }
        // Validation and mapping in one pass, up to each invalid sequence.
        let mut position = 0;
        loop {
            position += push_upper_prefix(&input[position..], out);
            let Some(chunk) = input[position..].utf8_chunks().next() else {
                break;
            };
            debug_assert!(chunk.valid().is_empty(), "the prefix took every valid byte");
            let invalid = chunk.invalid();
            let at_end = position + invalid.len() == input.len();
            if at_end && is_incomplete(invalid) {
                self.carry[..invalid.len()].copy_from_slice(invalid);
                self.carry_len = invalid.len();
            } else {
                P::handle(invalid, self.consumed + position as u64, out)?;
            }
            position += invalid.len();
        }
        self.consumed += input.len() as u64;
        Ok(())
    }

    /// Feed bytes to the held partial code point until it completes or
    /// breaks; return the input that is left.
    fn complete_carry<'a, P: InvalidBytes>(
        &mut self,
        input: &'a [u8],
        out: &mut impl Buffer,
    ) -> Result<&'a [u8], P::Error> {
        let held = self.carry_len;
        let width = utf8_width(self.carry[0]);
        let take = (width - held).min(input.len());
        let mut joined = [0u8; 4];
        joined[..held].copy_from_slice(&self.carry[..held]);
        joined[held..held + take].copy_from_slice(&input[..take]);
        let joined = &joined[..held + take];
        let carry_offset = self.consumed - held as u64;
        match std::str::from_utf8(joined) {
            Ok(code_point) => {
                push_upper_str(code_point, out);
                self.carry_len = 0;
                self.consumed += take as u64;
                Ok(&input[take..])
            }
            Err(error) => match error.error_len() {
                None => {
                    self.carry[..joined.len()].copy_from_slice(joined);
                    self.carry_len = joined.len();
                    self.consumed += take as u64;
                    Ok(&input[take..])
                }
                Some(invalid_len) => {
                    // The maximal invalid subpart: the held bytes and any
                    // input bytes that still extended them validly.
                    self.carry_len = 0;
                    let from_input = invalid_len - held;
                    self.consumed += from_input as u64;
                    P::handle(&joined[..invalid_len], carry_offset, out)?;
                    Ok(&input[from_input..])
                }
            },
        }
    }
}

/// Whether `bytes` (a maximal invalid subpart) is a valid prefix that only
/// lacks its continuation bytes, as opposed to being invalid outright.
fn is_incomplete(bytes: &[u8]) -> bool {
    matches!(std::str::from_utf8(bytes), Err(e) if e.error_len().is_none())
}

/// The length of the UTF-8 sequence a lead byte starts (1 for anything that
/// cannot lead a multi-byte sequence).
fn utf8_width(lead: u8) -> usize {
    match lead {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    }
}

/// Upper-case a whole input in one call: [`Upcaser::push`] then
/// [`Upcaser::finish`].
///
/// # Errors
/// [`InvalidUtf8`] in strict mode when `input` is not UTF-8.
pub fn upcase_all(mode: CaseMode, input: &[u8]) -> Result<BytesMut, InvalidUtf8> {
    let mut upcaser = Upcaser::new(mode);
    let mut out = BytesMut::new();
    if let Some(bound) = upcaser.max_output_len(input.len()) {
        out.reserve(bound);
    }
    upcaser.push(input, &mut out)?;
    upcaser.finish(&mut out)?;
    Ok(out)
}

/// Upper-case a whole input in a mode that cannot fail.
pub fn upcase_lossless(mode: LosslessMode, input: &[u8]) -> BytesMut {
    let mut upcaser = LosslessUpcaser::new(mode);
    let mut out = BytesMut::new();
    if let Some(bound) = upcaser.max_output_len(input.len()) {
        out.reserve(bound);
    }
    upcaser.push(input, &mut out);
    upcaser.finish(&mut out);
    out
}

/// The Unicode upper case of `text`, as text: what `str::to_uppercase`
/// returns, through this crate's faster mapping.
pub fn upcase_str(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    push_upper_str(text, &mut out);
    String::from_utf8(out).expect("the upper case of text is text")
}

mod upper;

#[cfg(test)]
mod case_filter;
#[cfg(test)]
mod exhaustive;
#[cfg(test)]
mod reported_state;
#[cfg(test)]
mod tests;
