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

use bytes::BytesMut;

use upper::{UnicodeUpper, push_ascii_upper, push_if_ascii_upper};

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

/// Input that is not UTF-8, reported by [`CaseMode::UnicodeStrict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid UTF-8 at byte {offset} of the message")]
pub struct InvalidUtf8 {
    /// Offset in the whole message (all chunks since the last
    /// [`Upcaser::finish`]) of the first byte of the invalid sequence: the
    /// length of the message's longest valid prefix.
    pub offset: u64,
}

/// A streaming upper-caser. Feed chunks with [`Upcaser::push`], end a
/// message or stream with [`Upcaser::finish`].
#[derive(Debug, Clone)]
pub struct Upcaser {
    mode: CaseMode,
    carry: [u8; 4],
    carry_len: usize,
    /// Bytes pushed since the message began, carried bytes included.
    consumed: u64,
    /// Strict mode's error, kept so that a failed message stays failed.
    failed: Option<InvalidUtf8>,
    /// The Unicode mappings, with their cache.
    unicode: UnicodeUpper,
}

impl Upcaser {
    /// A transform at the start of a message.
    pub fn new(mode: CaseMode) -> Upcaser {
        Upcaser {
            mode,
            carry: [0; 4],
            carry_len: 0,
            consumed: 0,
            failed: None,
            unicode: UnicodeUpper::default(),
        }
    }

    /// The mode.
    pub fn mode(&self) -> CaseMode {
        self.mode
    }

    /// The bytes of an incomplete code point held for the next chunk.
    pub fn carried(&self) -> &[u8] {
        &self.carry[..self.carry_len]
    }

    /// Whether no message is in progress: nothing pushed since the last
    /// [`Upcaser::finish`] (or since creation).
    pub fn is_at_message_start(&self) -> bool {
        self.consumed == 0
    }

    /// The most bytes the next `push` of `input_len` bytes (or a `finish`,
    /// with 0) can write; reserve this much to never reallocate.
    pub fn max_output_len(&self, input_len: usize) -> usize {
        MAX_EXPANSION * (input_len + self.carry_len)
    }

    /// Upper-case `input`, appending to `out` everything that is complete.
    ///
    /// # Errors
    /// In strict mode, [`InvalidUtf8`] as soon as the message so far can no
    /// longer be the start of valid UTF-8. Nothing from the failing call is
    /// written to `out`, and every later call returns the same error.
    pub fn push(&mut self, input: &[u8], out: &mut BytesMut) -> Result<(), InvalidUtf8> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        if self.mode == CaseMode::Ascii {
            push_ascii_upper(input, out);
            self.consumed += input.len() as u64;
            return Ok(());
        }
        let out_len_before = out.len();
        let result = self.push_unicode(input, out);
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
    pub fn finish(&mut self, out: &mut BytesMut) -> Result<(), InvalidUtf8> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        if self.carry_len > 0 {
            let offset = self.consumed - self.carry_len as u64;
            match self.mode {
                CaseMode::UnicodeStrict => {
                    let error = InvalidUtf8 { offset };
                    self.failed = Some(error);
                    return Err(error);
                }
                CaseMode::UnicodeLossless | CaseMode::Ascii => {
                    out.extend_from_slice(&self.carry[..self.carry_len]);
                }
            }
        }
        self.carry_len = 0;
        self.consumed = 0;
        Ok(())
    }

    fn push_unicode(&mut self, mut input: &[u8], out: &mut BytesMut) -> Result<(), InvalidUtf8> {
        if self.carry_len > 0 {
            input = self.complete_carry(input, out)?;
        }
        // ASCII needs no validation: try it first. Then one validation pass.
        if push_if_ascii_upper(input, out) {
            self.consumed += input.len() as u64;
            return Ok(());
        }
        if let Ok(text) = std::str::from_utf8(input) {
            self.unicode.push(text, out);
            self.consumed += input.len() as u64;
            return Ok(());
        }
        let mut position = 0;
        for chunk in input.utf8_chunks() {
            self.unicode.push(chunk.valid(), out);
            position += chunk.valid().len();
            let invalid = chunk.invalid();
            if invalid.is_empty() {
                continue;
            }
            let at_end = position + invalid.len() == input.len();
            if at_end && is_incomplete(invalid) {
                self.carry[..invalid.len()].copy_from_slice(invalid);
                self.carry_len = invalid.len();
            } else {
                self.invalid_bytes(invalid, self.consumed + position as u64, out)?;
            }
            position += invalid.len();
        }
        self.consumed += input.len() as u64;
        Ok(())
    }

    /// Feed bytes to the held partial code point until it completes or
    /// breaks; return the input that is left.
    fn complete_carry<'a>(
        &mut self,
        input: &'a [u8],
        out: &mut BytesMut,
    ) -> Result<&'a [u8], InvalidUtf8> {
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
                self.unicode.push(code_point, out);
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
                    self.invalid_bytes(&joined[..invalid_len], carry_offset, out)?;
                    Ok(&input[from_input..])
                }
            },
        }
    }

    fn invalid_bytes(
        &mut self,
        invalid: &[u8],
        offset: u64,
        out: &mut BytesMut,
    ) -> Result<(), InvalidUtf8> {
        match self.mode {
            CaseMode::UnicodeStrict => Err(InvalidUtf8 { offset }),
            CaseMode::UnicodeLossless | CaseMode::Ascii => {
                out.extend_from_slice(invalid);
                Ok(())
            }
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
    let mut out = BytesMut::with_capacity(upcaser.max_output_len(input.len()));
    upcaser.push(input, &mut out)?;
    upcaser.finish(&mut out)?;
    Ok(out)
}

mod upper;

#[cfg(test)]
mod tests;
