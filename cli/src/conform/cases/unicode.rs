//! SPEC.md §10: the Unicode version. The only cases marked
//! `unicode_dependent`: they send code points whose upper case changed
//! between Unicode 14.0 (Python 3.11) and 17.0 (SPEC.md's version), so an
//! implementation on another version fails exactly these. Every other
//! case's samples use code points whose mapping is the same in 14.0 and 17.0.
//!
//! The code points are grouped by the version that first mapped them (the
//! table of SPEC.md §10): 16.0 gave U+019B, U+0264, U+1C8A, U+A7CD, U+A7DB
//! and Garay (U+10D70…) their upper case, 17.0 gave U+A7D3, U+A7D5,
//! U+A7CF and Beria Erfe (U+16EBB…) theirs. So a server on Unicode 16.0
//! (`--unicode 16.0`) skips only the 17.0 cases, one on 14.0 or 15.x both
//! ([`answers_differ`]); case mappings never change once made (Unicode's
//! stability policy), so a later version skips none.

use super::round_trip_pieces;
use crate::conform::case::{Case, CheckResult, Needs};
use crate::conform::client::Ctx;
use crate::conform::oracle;
use upcase::wire::FrameType;

pub const CASES: &[Case] = &[
    Case {
        name: "framed/10/unicode-16-mappings",
        description: "code points first mapped in Unicode 16.0 (U+019B, U+0264, U+1C8A, U+A7CD, U+A7DB, U+10D70) are upper-cased in TEXT",
        unicode_dependent: true,
        needs: Needs::Nothing,
        check: framed_16,
    },
    Case {
        name: "framed/10/unicode-17-mappings",
        description: "code points first mapped in Unicode 17.0 (U+A7D3, U+A7D5, U+A7CF, U+16EBB) are upper-cased in TEXT",
        unicode_dependent: true,
        needs: Needs::Nothing,
        check: framed_17,
    },
    Case {
        name: "raw/10/unicode-16-mappings",
        description: "the code points first mapped in Unicode 16.0 are upper-cased in raw mode",
        unicode_dependent: true,
        needs: Needs::UnicodeRaw,
        check: raw_16,
    },
    Case {
        name: "raw/10/unicode-17-mappings",
        description: "the code points first mapped in Unicode 17.0 are upper-cased in raw mode",
        unicode_dependent: true,
        needs: Needs::UnicodeRaw,
        check: raw_17,
    },
];

/// Lower-case letters first given an upper case by Unicode 16.0.
pub(super) const MAPPED_IN_16: &str = "\u{19b}\u{264}\u{1c8a}\u{a7cd}\u{a7db}\u{10d70}";

/// Lower-case letters first given an upper case by Unicode 17.0.
pub(super) const MAPPED_IN_17: &str = "\u{a7d3}\u{a7d5}\u{a7cf}\u{16ebb}";

/// Which version's new mappings a Unicode-dependent case checks, by the
/// `unicode-NN-mappings` at the end of its name.
fn mapped_in(case_name: &str) -> Option<(u32, u32)> {
    let major = case_name
        .rsplit('/')
        .next()?
        .strip_prefix("unicode-")?
        .strip_suffix("-mappings")?
        .parse()
        .ok()?;
    Some((major, 0))
}

/// Whether a server on Unicode `claimed` (`X.Y`) answers the
/// Unicode-dependent case `case_name` differently from this build's
/// oracle: it does when its version is older than the one that first
/// mapped the case's code points (or cannot be read).
pub fn answers_differ(case_name: &str, claimed: &str) -> bool {
    let version = claimed
        .split('.')
        .map(str::parse::<u32>)
        .collect::<Vec<_>>();
    let (Some(since), [Ok(major), Ok(minor), ..]) = (mapped_in(case_name), version.as_slice())
    else {
        return true;
    };
    (*major, *minor) < since
}

fn framed(ctx: &mut Ctx, sample: &str, version: &str) -> CheckResult {
    let mut conn = ctx.framed()?;
    round_trip_pieces(
        &mut conn,
        FrameType::Text,
        sample.as_bytes(),
        ctx.options.max_frame,
        &format!("TEXT with code points first mapped in Unicode {version}"),
    )
}

fn raw(ctx: &mut Ctx, sample: &str) -> CheckResult {
    let mut conn = ctx.connect()?;
    conn.write(sample.as_bytes())?;
    conn.expect_raw(&oracle::text_upper(sample.as_bytes()), "raw reply")
}

fn framed_16(ctx: &mut Ctx) -> CheckResult {
    framed(ctx, MAPPED_IN_16, "16.0")
}

fn framed_17(ctx: &mut Ctx) -> CheckResult {
    framed(ctx, MAPPED_IN_17, "17.0")
}

fn raw_16(ctx: &mut Ctx) -> CheckResult {
    raw(ctx, MAPPED_IN_16)
}

fn raw_17(ctx: &mut Ctx) -> CheckResult {
    raw(ctx, MAPPED_IN_17)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_oracle_maps_every_newer_code_point() {
        for c in super::MAPPED_IN_16
            .chars()
            .chain(super::MAPPED_IN_17.chars())
        {
            assert!(
                !c.to_uppercase().eq([c]),
                "U+{:04X} has no upper case in this std",
                c as u32
            );
        }
    }

    #[test]
    fn a_version_skips_the_cases_mapped_after_it() {
        let (v16, v17) = (
            "framed/10/unicode-16-mappings",
            "udp/10/unicode-17-mappings",
        );
        for (claimed, differ16, differ17) in [
            ("14.0", true, true),
            ("15.1", true, true),
            ("16.0", false, true),
            ("17.0", false, false),
            ("18.0", false, false),
        ] {
            assert_eq!(super::answers_differ(v16, claimed), differ16, "{claimed}");
            assert_eq!(super::answers_differ(v17, claimed), differ17, "{claimed}");
        }
        assert!(super::answers_differ(v16, "sixteen"));
        assert!(super::answers_differ("framed/10/other", "16.0"));
    }
}
