//! SPEC.md §8.2, §8.4, §8.5: framed datagrams that are answered — each type's
//! reply, the address swap and fill-in, and replies near the size limit.

use bytes::Bytes;

use super::{addr, frame};
use crate::conform::case::{Case, CheckResult, Needs};
use crate::conform::client::Ctx;
use crate::conform::oracle::{self, VALID};
use upcase::wire::{Address, ErrorCode, Flags, FrameRepr, FrameType};

pub const CASES: &[Case] = &[
    Case {
        name: "udp/8.2/text-upper-cased",
        description: "preface + TEXT (empty, and valid UTF-8 of every class) gets preface + TEXT with its upper case",
        unicode_dependent: false,
        needs: Needs::FramedDatagrams,
        check: text_round_trip,
    },
    Case {
        name: "udp/8.2/bytes-ascii-upper-cased",
        description: "preface + BYTES (all 256 byte values, UTF-8 text) gets preface + BYTES with only a–z upper-cased",
        unicode_dependent: false,
        needs: Needs::FramedDatagrams,
        check: bytes_round_trip,
    },
    Case {
        name: "udp/8.2/ping-pong",
        description: "preface + PING (with any bytes, or empty) gets preface + PONG with the same data",
        unicode_dependent: false,
        needs: Needs::FramedDatagrams,
        check: ping_pong,
    },
    Case {
        name: "udp/8.2/bye-answered",
        description: "preface + BYE (with a reason, UTF-8 or not) gets preface + BYE with empty data",
        unicode_dependent: false,
        needs: Needs::FramedDatagrams,
        check: bye,
    },
    Case {
        name: "udp/8.5/unspecified-filled-in",
        description: "unspecified addresses are filled in: source = the address the suite sent to, destination = the suite's socket address",
        unicode_dependent: false,
        needs: Needs::FramedDatagrams,
        check: filled_in,
    },
    Case {
        name: "udp/8.5/explicit-swapped",
        description: "specified addresses are swapped as they are (one side unspecified: only that side filled in)",
        unicode_dependent: false,
        needs: Needs::FramedDatagrams,
        check: swapped,
    },
    Case {
        name: "udp/8.4/text-reply-at-limit-sent",
        description: "a TEXT whose upper case is 65,457 bytes and a BYTES of 65,457 bytes (a 65,507-byte reply) are answered",
        unicode_dependent: false,
        needs: Needs::FramedDatagrams,
        check: at_limit,
    },
    Case {
        name: "udp/8.4/text-reply-too-large",
        description: "a TEXT whose upper case is 65,458 bytes gets preface + ERROR(FRAME_TOO_LARGE), addressed as its reply",
        unicode_dependent: false,
        needs: Needs::FramedDatagrams,
        check: too_large,
    },
];

/// The most data a framed reply datagram can carry (SPEC.md §8.4).
const MAX_REPLY_DATA: usize = 65_457;

/// Send `request` on a socket of its own and require the §8.2 reply.
fn round_trip(
    ctx: &mut Ctx,
    request: &FrameRepr,
    reply_type: FrameType,
    data: &[u8],
    what: &str,
) -> CheckResult {
    let socket = ctx.datagram()?;
    let expected = socket.reply_to(request, reply_type, Bytes::copy_from_slice(data));
    socket.expect_frame(request, &expected, what)
}

fn text_round_trip(ctx: &mut Ctx) -> CheckResult {
    round_trip(
        ctx,
        &frame(FrameType::Text, false, b""),
        FrameType::Text,
        b"",
        "an empty TEXT",
    )?;
    let max = ctx.options.max_frame as usize;
    for sample in VALID {
        // In pieces within a small `--max-frame`, each a datagram of its own.
        for piece in super::pieces(FrameType::Text, sample.bytes, max) {
            let request = frame(FrameType::Text, false, piece);
            let what = format!("TEXT ({})", sample.name);
            round_trip(
                ctx,
                &request,
                FrameType::Text,
                &oracle::text_upper(piece),
                &what,
            )?;
        }
    }
    Ok(())
}

fn bytes_round_trip(ctx: &mut Ctx) -> CheckResult {
    let every: Vec<u8> = (0..=255).collect();
    let utf8 = "stra\u{df}e \u{e9}t\u{e9} \u{3c3}".as_bytes();
    let max = ctx.options.max_frame as usize;
    for (data, what) in [
        (&every[..], "BYTES 00..ff"),
        (utf8, "BYTES holding UTF-8 text"),
    ] {
        for piece in super::pieces(FrameType::Bytes, data, max) {
            let request = frame(FrameType::Bytes, false, piece);
            round_trip(
                ctx,
                &request,
                FrameType::Bytes,
                &oracle::ascii_upper(piece),
                what,
            )?;
        }
    }
    Ok(())
}

fn ping_pong(ctx: &mut Ctx) -> CheckResult {
    for data in [&b"ping \xff\xc3 me"[..], b""] {
        let request = frame(FrameType::Ping, false, data);
        round_trip(ctx, &request, FrameType::Pong, data, "PING")?;
    }
    Ok(())
}

fn bye(ctx: &mut Ctx) -> CheckResult {
    for reason in [&b"done"[..], b"\xff not UTF-8"] {
        let request = frame(FrameType::Bye, false, reason);
        round_trip(ctx, &request, FrameType::Bye, b"", "BYE with a reason")?;
    }
    Ok(())
}

fn filled_in(ctx: &mut Ctx) -> CheckResult {
    let socket = ctx.datagram()?;
    let request = frame(FrameType::Text, false, b"hi"); // SPEC.md §12.10
    let expected = FrameRepr {
        src: socket.server,
        dst: socket.client,
        frame_type: FrameType::Text,
        flags: Flags::default(),
        data: Bytes::from_static(b"HI"),
    };
    socket.expect_frame(&request, &expected, "TEXT with unspecified addresses")
}

fn swapped(ctx: &mut Ctx) -> CheckResult {
    let a = addr("[2001:db8::1]:1234");
    let b = addr("198.51.100.7:80");
    let zero_ip = addr("[::]:7");
    let pairs = [
        (a, b, "explicit addresses"),
        (a, Address::UNSPECIFIED, "an unspecified destination"),
        (Address::UNSPECIFIED, b, "an unspecified source"),
        (zero_ip, b, "source :: port 7 (specified)"),
    ];
    for (src, dst, what) in pairs {
        let socket = ctx.datagram()?;
        let request = FrameRepr {
            src,
            dst,
            ..frame(FrameType::Text, false, b"swap")
        };
        let expected = socket.reply_to(&request, FrameType::Text, &b"SWAP"[..]);
        socket.expect_frame(&request, &expected, &format!("TEXT with {what}"))?;
    }
    Ok(())
}

/// TEXT data whose upper case is `reply_len` bytes (`ΐ` grows 2 → 6).
fn growing(reply_len: usize) -> Vec<u8> {
    let mut data = "\u{390}".repeat(reply_len / 6).into_bytes();
    data.resize(data.len() + reply_len % 6, b'a');
    data
}

/// Whether the server takes a frame of `len` data bytes; notes it if not.
fn fits(ctx: &Ctx, len: usize) -> bool {
    len <= ctx.options.max_frame as usize
}

fn at_limit(ctx: &mut Ctx) -> CheckResult {
    let data = growing(MAX_REPLY_DATA);
    if !fits(ctx, MAX_REPLY_DATA) {
        return Err(crate::conform::Failure::cannot_run(format!(
            "needs a server whose receive limit (--max-frame) is at least {MAX_REPLY_DATA} bytes; it is {}",
            ctx.options.max_frame
        )));
    }
    let request = frame(FrameType::Text, false, &data);
    let what = format!(
        "TEXT of {} bytes whose upper case is {MAX_REPLY_DATA}",
        data.len()
    );
    round_trip(
        ctx,
        &request,
        FrameType::Text,
        &oracle::text_upper(&data),
        &what,
    )?;
    let data = vec![b'a'; MAX_REPLY_DATA];
    let request = frame(FrameType::Bytes, false, &data);
    let what = format!("BYTES of {MAX_REPLY_DATA} bytes (a 65,507-byte datagram)");
    round_trip(
        ctx,
        &request,
        FrameType::Bytes,
        &oracle::ascii_upper(&data),
        &what,
    )
}

fn too_large(ctx: &mut Ctx) -> CheckResult {
    let data = growing(MAX_REPLY_DATA + 1);
    if !fits(ctx, data.len()) {
        return Err(crate::conform::Failure::cannot_run(format!(
            "needs a server whose receive limit (--max-frame) is at least {} bytes; it is {}",
            data.len(),
            ctx.options.max_frame
        )));
    }
    let socket = ctx.datagram()?;
    let src = addr("[2001:db8::3]:33");
    let request = FrameRepr {
        src,
        ..frame(FrameType::Text, false, &data)
    };
    let what = format!(
        "TEXT of {} bytes whose upper case is {} bytes",
        data.len(),
        MAX_REPLY_DATA + 1
    );
    socket.expect_error_reply(
        &crate::conform::Dgram::framed(&request),
        (request.src, request.dst),
        ErrorCode::FRAME_TOO_LARGE,
        &what,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn growing_text_reaches_the_asked_size() {
        for len in [super::MAX_REPLY_DATA, super::MAX_REPLY_DATA + 1] {
            assert_eq!(super::oracle::text_upper(&super::growing(len)).len(), len);
        }
    }
}
