//! The upper-case mappings themselves, for whole runs of input, organised
//! around the shapes real text has: long ASCII runs, long runs of code
//! points that are their own upper case (CJK, digits, punctuation), and
//! small alphabets whose few letters repeat.

use super::output::Buffer;

/// Append the ASCII upper case of `input` (Python's `bytes.upper()`).
pub fn push_ascii_upper(input: &[u8], out: &mut impl Buffer) {
    for (upper, byte) in out.grow_zeroed(input.len()).iter_mut().zip(input) {
        *upper = byte.to_ascii_uppercase();
    }
}

/// If `input` is all ASCII, append its upper case and return true;
/// otherwise append nothing and return false. Instead of validating first,
/// one pass the compiler vectorises upper-cases while OR-ing every byte (a–z
/// never occur inside a multi-byte UTF-8 sequence). It writes into zeroed
/// room: std writes uninitialised memory in a single pass, which
/// `forbid(unsafe_code)` rules out, and a `memset` is cheaper than a copy.
pub fn push_if_ascii_upper(input: &[u8], out: &mut impl Buffer) -> bool {
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

/// How many recently mapped code points [`UnicodeUpper`] remembers.
const CACHE_SLOTS: usize = 64;

/// One remembered mapping: a code point and its upper case in UTF-8.
#[derive(Debug, Clone, Copy)]
struct CachedMapping {
    /// The code point, or `u32::MAX` for an empty slot.
    code_point: u32,
    /// The upper case's length in bytes (up to 3 code points).
    len: u8,
    upper: [u8; 12],
}

/// Unicode upper case of valid text, remembering the mappings it looked up.
///
/// `char::to_uppercase` searches a table of some 1,500 ranges and hands the
/// result out one code point at a time; text in a cased script repeats a
/// few dozen letters, so a small direct-mapped cache of encoded mappings
/// makes that lookup once per letter instead of once per occurrence. The
/// cache is allocated on first use, so ASCII-only messages never pay for it.
#[derive(Debug, Clone, Default)]
pub struct UnicodeUpper {
    cache: Option<Box<[CachedMapping; CACHE_SLOTS]>>,
}

/// An empty cache slot.
const EMPTY_SLOT: CachedMapping = CachedMapping {
    code_point: u32::MAX,
    len: 0,
    upper: [0; 12],
};

impl UnicodeUpper {
    /// Append the Unicode upper case of `text`.
    ///
    /// Most mappings keep a code point's UTF-8 length (a → A, é → É, η → Η,
    /// ß → SS), so the text is copied whole, its ASCII upper-cased in bulk,
    /// and the other code points that change are overwritten in place. At
    /// the first mapping that changes the length (ΐ → 3 code points, ɐ,
    /// ⱥ) the rest is appended instead.
    pub fn push(&mut self, text: &str, out: &mut impl Buffer) {
        let bytes = text.as_bytes();
        let start = out.len();
        push_ascii_upper(bytes, out);
        let mut index = 0;
        while index < bytes.len() {
            if bytes[index].is_ascii() {
                index += 1;
                continue;
            }
            let (width, change) = self.change_at(text, index);
            match change {
                Some(upper) if upper.len() == width => {
                    out.as_mut_slice()[start + index..start + index + width].copy_from_slice(upper);
                }
                Some(_) => {
                    out.truncate(start + index);
                    return self.append(&text[index..], out);
                }
                None => {}
            }
            index += width;
        }
    }

    /// Append the upper case of `text` code point by code point. Code points
    /// that do not change are copied as one run up to the next one that does.
    fn append(&mut self, text: &str, out: &mut impl Buffer) {
        let bytes = text.as_bytes();
        out.reserve(bytes.len());
        let mut unchanged_from = 0;
        let mut index = 0;
        while index < bytes.len() {
            if bytes[index].is_ascii() {
                let run = bytes[index..].iter().take_while(|b| b.is_ascii()).count();
                out.extend_from_slice(&bytes[unchanged_from..index]);
                push_ascii_upper(&bytes[index..index + run], out);
                index += run;
                unchanged_from = index;
                continue;
            }
            let (width, change) = self.change_at(text, index);
            if let Some(upper) = change {
                out.extend_from_slice(&bytes[unchanged_from..index]);
                out.extend_from_slice(upper);
                unchanged_from = index + width;
            }
            index += width;
        }
        out.extend_from_slice(&bytes[unchanged_from..]);
    }

    /// The UTF-8 width of the non-ASCII code point at `index`, and its
    /// upper case if that differs from it.
    fn change_at(&mut self, text: &str, index: usize) -> (usize, Option<&[u8]>) {
        let c = text[index..]
            .chars()
            .next()
            .expect("index is on a char boundary");
        let width = c.len_utf8();
        if !may_change_case(c) {
            return (width, None);
        }
        let mapping = self.mapping(c);
        let upper = &mapping.upper[..usize::from(mapping.len)];
        (width, (!upper.is_empty()).then_some(upper))
    }

    /// The cached mapping of `c` (one that [`may_change_case`] lets
    /// through); `len` 0 means `c` is its own upper case after all.
    fn mapping(&mut self, c: char) -> &CachedMapping {
        let code_point = u32::from(c);
        let cache = self
            .cache
            .get_or_insert_with(|| Box::new([EMPTY_SLOT; CACHE_SLOTS]));
        let slot = &mut cache[code_point as usize % CACHE_SLOTS];
        if slot.code_point != code_point {
            *slot = CachedMapping {
                code_point,
                len: 0,
                upper: [0; 12],
            };
            let upper = c.to_uppercase();
            if !(upper.len() == 1 && upper.clone().next() == Some(c)) {
                let mut len = 0;
                for u in upper {
                    len += u.encode_utf8(&mut slot.upper[len..]).len();
                }
                slot.len = len as u8;
            }
        }
        slot
    }
}

/// Whether `c` can have an upper case other than itself: a cheap filter in
/// front of the case-mapping table. Lowercase code points (a bitset lookup)
/// and the titlecase ones, which all sit in U+01C5..=U+1FFC, are the only
/// ones that change; the CJK, Yi, Lisu, Vai and Hangul blocks
/// (U+3000..=U+A63F, U+AC00..=U+D7FF) have no case at all, so the commonest
/// non-Latin text skips even the bitset. The tests check this for every
/// `char`.
pub fn may_change_case(c: char) -> bool {
    if ('\u{3000}'..='\u{a63f}').contains(&c) || ('\u{ac00}'..='\u{d7ff}').contains(&c) {
        return false;
    }
    c.is_lowercase() || ('\u{1c5}'..='\u{1ffc}').contains(&c)
}
