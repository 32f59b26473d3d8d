//! The upper-case mapping itself, in one pass over the input that also
//! validates it (SPEC.md §5.1, §5.2): `push_upper_prefix` maps the longest
//! valid prefix and says how long it was, and the caller deals with what
//! follows (an invalid or incomplete sequence). Real text comes in a few
//! shapes, and each has its loop:
//!
//! * **ASCII text** (English): the single vectorised pass that upper-cases
//!   while OR-ing the bytes, in 16 KiB blocks, while they are all ASCII.
//! * **Runs whose upper case is their ASCII upper case**: ASCII, and code
//!   points whose whole 64-code-point block has no case (CJK, kana, Hangul,
//!   Thai, Devanagari, emoji, punctuation). They are scanned by the kind of
//!   their lead byte: ASCII 32 and 8 bytes at a time; 3-byte sequences five
//!   at a time by branch-free range checks where whole 4,096-code-point
//!   stretches have no case (CJK, kana, most Hangul, full-width
//!   punctuation), else four, two or one at a time by a 1,024-entry table
//!   indexed by the first two bytes; 4-byte ones (emoji) one at a time. A
//!   run is then copied as it is, or written by the ASCII pass when it may
//!   hold ASCII letters (`to_ascii_uppercase` leaves every byte of a
//!   multi-byte sequence alone).
//! * **Cased text** (Latin with accents, Greek, Cyrillic, Armenian,
//!   Georgian...), code point by code point in windows of 1 KiB: ASCII
//!   eight bytes at a time (SWAR), 2-byte letters two at a time by direct
//!   lookup in a table of every code point below U+0800, the rest by the
//!   page of their block. Each mapping is written as one 8-byte word that
//!   holds its UTF-8 and its length.
//!
//! The tables come from `char::to_uppercase` at build time (build.rs), so
//! they are the toolchain's mapping (Unicode 17.0.0 for Rust 1.95); the
//! tests in exhaustive.rs compare every scalar value with std.

use super::output::Buffer;

include!(concat!(env!("OUT_DIR"), "/case_tables.rs"));

/// Input bytes per window of cased text: the output room for a window is
/// zeroed up front, so it stays small and in cache.
const WINDOW: usize = 1024;

/// Room a window keeps free for one step: two mappings of up to 7 bytes,
/// each written as a whole 8-byte word. A window whose text grows (ΐ
/// becomes 6 bytes) ends when its room, as large as its input, runs out.
const STEP_ROOM: usize = 16;

/// Append the ASCII upper case of `input` (Python's `bytes.upper()`). It
/// writes into zeroed room: std writes uninitialised memory in a single
/// pass, which `forbid(unsafe_code)` rules out, and a `memset` is cheaper
/// than a copy.
pub fn push_ascii_upper(input: &[u8], out: &mut impl Buffer) {
    for (upper, byte) in out.grow_zeroed(input.len()).iter_mut().zip(input) {
        *upper = byte.to_ascii_uppercase();
    }
}

/// Append the Unicode upper case of `text`.
pub fn push_upper_str(text: &str, out: &mut impl Buffer) {
    let taken = push_upper_prefix(text.as_bytes(), out);
    debug_assert_eq!(taken, text.len(), "text is valid UTF-8");
}

/// Append the Unicode upper case of the longest prefix of `input` that is
/// complete, valid UTF-8, and return that prefix's length: what
/// `std::str::from_utf8` would call `valid_up_to`.
pub fn push_upper_prefix(input: &[u8], out: &mut impl Buffer) -> usize {
    let mut done = push_leading_ascii(input, out);
    // Each step's first call is skipped at the end of the input: a
    // message of ASCII, or one that ends with a run, costs no more calls.
    while done < input.len() {
        let run = unchanged_run(&input[done..]);
        let unchanged = &input[done..done + run.len];
        if run.ascii_letters {
            push_ascii_upper(unchanged, out);
        } else {
            out.extend_from_slice(unchanged);
        }
        done += run.len;
        if done == input.len() {
            break;
        }
        let mapped = push_cased_window(&input[done..], out);
        if mapped == 0 {
            break;
        }
        done += mapped;
    }
    done
}

/// Bytes of ASCII text per call of [`push_if_ascii_upper`]: large enough
/// that the call costs nothing, small enough that a block found not to be
/// ASCII wastes little.
const ASCII_BLOCK: usize = 16 * 1024;

/// Upper-case the leading whole blocks of `input` that are ASCII, in the
/// single pass of [`push_if_ascii_upper`] (the general path scans a run
/// before it writes it: a third slower on English), and return their
/// length. Only tried when the first 32 bytes are ASCII, so that other
/// text does not pay for a pass that fails.
fn push_leading_ascii(input: &[u8], out: &mut impl Buffer) -> usize {
    if !input[..input.len().min(32)].is_ascii() {
        return 0;
    }
    let mut done = 0;
    for block in input.chunks(ASCII_BLOCK) {
        if !push_if_ascii_upper(block, out) {
            break;
        }
        done += block.len();
    }
    done
}

/// If `input` is all ASCII, append its upper case and return true;
/// otherwise append nothing and return false. Instead of validating first,
/// one pass the compiler vectorises upper-cases while OR-ing every byte (a–z
/// never occur inside a multi-byte UTF-8 sequence).
fn push_if_ascii_upper(input: &[u8], out: &mut impl Buffer) -> bool {
    let start = out.len();
    let mut any_high_bit = 0u8;
    for (upper, byte) in out.grow_zeroed(input.len()).iter_mut().zip(input) {
        any_high_bit |= *byte;
        *upper = byte.to_ascii_uppercase();
    }
    if any_high_bit.is_ascii() {
        true
    } else {
        out.truncate(start);
        false
    }
}

/// The prefix of `bytes` made of ASCII and of valid sequences whose block
/// has no case: the part whose upper case is its ASCII upper case. Each
/// kind of sequence has its loop, so that a run of one kind takes no
/// branch per code point on which kind comes next.
struct UnchangedRun {
    len: usize,
    /// Whether it may hold an ASCII lower-case letter; if not, it is its
    /// own upper case and is copied as it is.
    ascii_letters: bool,
}

fn unchanged_run(bytes: &[u8]) -> UnchangedRun {
    let mut index = 0;
    let mut ascii_letters = false;
    while let Some(&lead) = bytes.get(index) {
        let start = index;
        match lead {
            0x00..=0x7f => {
                // 32 bytes at a time (vectorised), then 8, then one.
                while let Some(block) = bytes.get(index..index + 32) {
                    if !block.iter().fold(0, |any, byte| any | byte).is_ascii() {
                        break;
                    }
                    index += 32;
                }
                while let Some(word) = word_at(bytes, index) {
                    if word & 0x8080_8080_8080_8080 != 0 {
                        break;
                    }
                    index += 8;
                }
                ascii_letters |= index > start;
                while let Some(&byte) = bytes.get(index).filter(|byte| byte.is_ascii()) {
                    ascii_letters |= byte.is_ascii_lowercase();
                    index += 1;
                }
            }
            0xe0..=0xef => {
                // Five at a time where the blocks are ones known in
                // advance, then four, two and one by the table.
                while let (Some(block), Some(next)) = (
                    bytes.get(index..index + 16),
                    bytes.get(index + 1..index + 17),
                ) {
                    if !five_common_caseless(
                        block.try_into().expect("16 bytes"),
                        next.try_into().expect("16 bytes"),
                    ) {
                        break;
                    }
                    index += 15;
                }
                while let (Some(first), Some(second)) =
                    (word_at(bytes, index), word_at(bytes, index + 6))
                {
                    if !(two_unchanged_3byte_sequences(first)
                        && two_unchanged_3byte_sequences(second))
                    {
                        break;
                    }
                    index += 12;
                }
                while let Some(word) = word_at(bytes, index) {
                    if !two_unchanged_3byte_sequences(word) {
                        break;
                    }
                    index += 6;
                }
                if let Some(three) = bytes.get(index..index + 3) {
                    let word =
                        u64::from(three[0]) | u64::from(three[1]) << 8 | u64::from(three[2]) << 16;
                    if unchanged_3byte_sequence(word) {
                        index += 3;
                    }
                }
            }
            0xf0..=0xf4 => {
                while let Some((code_point, 4)) = decode(bytes, index) {
                    if block_page(code_point) != 0 {
                        break;
                    }
                    index += 4;
                }
            }
            _ => {
                if let Some((code_point, width)) = decode(bytes, index)
                    && block_page(code_point) == 0
                {
                    index += width;
                }
            }
        }
        if index == start {
            break;
        }
    }
    UnchangedRun {
        len: index,
        ascii_letters,
    }
}

/// Whether the first 15 bytes of `block` are five 3-byte sequences in the
/// commonest caseless ranges: U+3000..U+9FFF (leads E3..E9: CJK, kana),
/// most Hangul (EB, EC: U+B000..U+CFFF) and U+FF00..U+FF3F (EF BC:
/// full-width punctuation). Each of the 16 steps is the same branch-free
/// arithmetic, which the compiler turns into SSE2 compares of all 16
/// bytes at once; the exhaustive tests check every code point through it.
/// (Adding U+0800..U+0FFF and the rest of Hangul made Chinese 50 %
/// slower; checking only the five lead bytes is not vectorised, and was
/// 2-3 times slower.) `next` is `block` one byte on.
#[inline]
fn five_common_caseless(block: &[u8; 16], next: &[u8; 16]) -> bool {
    const LEAD: [u8; 16] = [
        0xff, 0, 0, 0xff, 0, 0, 0xff, 0, 0, 0xff, 0, 0, 0xff, 0, 0, 0,
    ];
    const CONT: [u8; 16] = [
        0, 0xff, 0xff, 0, 0xff, 0xff, 0, 0xff, 0xff, 0, 0xff, 0xff, 0, 0xff, 0xff, 0,
    ];
    let mut bad = 0u8;
    for i in 0..16 {
        let (byte, after) = (block[i], next[i]);
        let lead_ok = (byte.wrapping_sub(0xe3) <= 6)
            | (byte.wrapping_sub(0xeb) <= 1)
            | ((byte == 0xef) & (after == 0xbc));
        let cont_ok = byte & 0xc0 == 0x80;
        bad |=
            LEAD[i] & !(lead_ok as u8).wrapping_neg() | CONT[i] & !(cont_ok as u8).wrapping_neg();
    }
    bad == 0
}

/// Whether the first six bytes of `word` (little-endian) are two 3-byte
/// sequences that are valid and their own upper case.
#[inline]
fn two_unchanged_3byte_sequences(word: u64) -> bool {
    const MASK: u64 = 0x0000_c0c0_f0c0_c0f0;
    const SHAPE: u64 = 0x0000_8080_e080_80e0;
    word & MASK == SHAPE && unchanged_3byte_block(word) & unchanged_3byte_block(word >> 24)
}

/// Whether the first three bytes of `word` (little-endian) are a 3-byte
/// sequence that is valid and its own upper case.
#[inline]
fn unchanged_3byte_sequence(word: u64) -> bool {
    word & 0xc0_c0f0 == 0x80_80e0 && unchanged_3byte_block(word)
}

/// `UNCHANGED_3BYTE` for the lead and second byte at the bottom of `word`.
#[inline]
fn unchanged_3byte_block(word: u64) -> bool {
    UNCHANGED_3BYTE[((word & 0x0f) << 6 | (word >> 8 & 0x3f)) as usize]
}

/// Map one window (up to [`WINDOW`] bytes, ending on a code point) of
/// `bytes` code point by code point; return how many bytes it took, 0 when
/// `bytes` is empty or does not start with a valid, complete sequence.
fn push_cased_window(bytes: &[u8], out: &mut impl Buffer) -> usize {
    let end = bytes.len().min(WINDOW);
    let start = out.len();
    let room = out.grow_zeroed(end + STEP_ROOM);
    let mut index = 0;
    let mut written = 0;
    while index < end && written + STEP_ROOM <= room.len() {
        let lead = bytes[index];
        if lead.is_ascii() {
            // Up to eight ASCII bytes at once; what follows them is
            // written over by the next step or cut off.
            if let Some(word) = word_at(bytes, index) {
                let ascii = ((word & 0x8080_8080_8080_8080).trailing_zeros() / 8) as usize;
                room[written..written + 8].copy_from_slice(&ascii_upper_word(word).to_le_bytes());
                index += ascii;
                written += ascii;
                continue;
            }
            room[written] = lead.to_ascii_uppercase();
            index += 1;
            written += 1;
            continue;
        }
        if let Some(four) = bytes.get(index..index + 4) {
            // Two 2-byte letters (Latin, Greek, Cyrillic, Armenian...),
            // neither overlong: a lookup each.
            let pair = u32::from_le_bytes(four.try_into().expect("four bytes"));
            if pair & 0xc0e0_c0e0 == 0x80c0_80c0 && pair & 0x1e != 0 && pair & 0x1e_0000 != 0 {
                let first = upper_below_0800(pair);
                let second = upper_below_0800(pair >> 16);
                room[written..written + 8].copy_from_slice(&first.to_le_bytes());
                written += (first >> 56) as usize;
                room[written..written + 8].copy_from_slice(&second.to_le_bytes());
                written += (second >> 56) as usize;
                index += 4;
                continue;
            }
        }
        if (0xc2..0xe0).contains(&lead) {
            // Two bytes (Latin, Greek, Cyrillic, Armenian...): one lookup.
            let Some(&second) = bytes.get(index + 1).filter(|&&b| b & 0xc0 == 0x80) else {
                break;
            };
            let upper =
                UPPER_BELOW_0800[usize::from(lead & 0x1f) << 6 | usize::from(second & 0x3f)];
            room[written..written + 8].copy_from_slice(&upper.to_le_bytes());
            written += (upper >> 56) as usize;
            index += 2;
            continue;
        }
        // Three or four bytes: a caseless one ends the window (the run
        // loops are faster on it; the window never starts on one).
        let Some((code_point, width)) = decode(bytes, index) else {
            break;
        };
        let page = block_page(code_point);
        if page == 0 {
            break;
        }
        // UTF-8 in the low bytes, the length in the top byte.
        let upper = PAGES[usize::from(page) - 1][code_point as usize & 63];
        room[written..written + 8].copy_from_slice(&upper.to_le_bytes());
        written += (upper >> 56) as usize;
        index += width;
    }
    out.truncate(start + written);
    index
}

/// `word` with its ASCII bytes upper-cased, all eight at once: an ASCII
/// byte's high bit is set by adding 0x80 - b'a' to its low seven bits when
/// it is at least `a`, and by adding 0x80 - b'z' - 1 when it is past `z`
/// (no sum carries into the next byte); other bytes are left alone.
#[inline]
pub fn ascii_upper_word(word: u64) -> u64 {
    const EACH: u64 = 0x0101_0101_0101_0101;
    let low_bits = word & (EACH * 0x7f);
    let at_least_a = low_bits + EACH * u64::from(0x80 - b'a');
    let past_z = low_bits + EACH * u64::from(0x80 - b'z' - 1);
    let lower = at_least_a & !past_z & !word & (EACH * 0x80);
    word - (lower >> 2)
}

/// `UPPER_BELOW_0800` for the 2-byte sequence at the bottom of `word`
/// (little-endian).
#[inline]
fn upper_below_0800(word: u32) -> u64 {
    UPPER_BELOW_0800[((word & 0x1f) << 6 | (word >> 8 & 0x3f)) as usize]
}

/// The case page of the 64-code-point block of `code_point` (0: no case).
#[inline]
pub fn block_page(code_point: u32) -> u8 {
    BLOCK_PAGE[(code_point >> 6) as usize]
}

/// The eight bytes at `index` as a little-endian word, if there are eight.
#[inline]
fn word_at(bytes: &[u8], index: usize) -> Option<u64> {
    let eight = bytes.get(index..index + 8)?;
    Some(u64::from_le_bytes(eight.try_into().expect("eight bytes")))
}

/// The non-ASCII code point that starts at `index` and its width, if a
/// complete, valid UTF-8 sequence starts there: no overlong form, no
/// surrogate, nothing past U+10FFFF.
#[inline(always)]
fn decode(bytes: &[u8], index: usize) -> Option<(u32, usize)> {
    let word = match bytes.get(index..index + 4) {
        Some(four) => u32::from_le_bytes(four.try_into().expect("four bytes")),
        None => {
            // A missing byte reads as 0, which is no continuation byte.
            let mut four = [0u8; 4];
            let available = bytes.len() - index;
            four[..available].copy_from_slice(&bytes[index..]);
            u32::from_le_bytes(four)
        }
    };
    let payload = |byte: u32| word >> (8 * byte) & 0x3f;
    let (code_point, width) = match word as u8 {
        0xc2..=0xdf if word & 0xc000 == 0x8000 => ((word & 0x1f) << 6 | payload(1), 2),
        0xe0..=0xef if word & 0xc0_c000 == 0x80_8000 => {
            let code_point = (word & 0x0f) << 12 | payload(1) << 6 | payload(2);
            if code_point < 0x800 || (0xd800..=0xdfff).contains(&code_point) {
                return None;
            }
            (code_point, 3)
        }
        0xf0..=0xf4 if word & 0xc0c0_c000 == 0x8080_8000 => {
            let code_point = (word & 0x07) << 18 | payload(1) << 12 | payload(2) << 6 | payload(3);
            if !(0x1_0000..=0x10_ffff).contains(&code_point) {
                return None;
            }
            (code_point, 4)
        }
        _ => return None,
    };
    Some((code_point, width))
}
