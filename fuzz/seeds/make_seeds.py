#!/usr/bin/env python3
"""Write the named seed corpus of every fuzz target into fuzz/corpus/<target>/.

Each target reads its input through `arbitrary` 1.x, whose byte format this
script writes by hand:

* integers: fixed width, little-endian;
* bool: one byte, low bit;
* enum: a u32 (LE) choosing variant i of n where (x * n) >> 32 == i;
* Option<T>: a bool, then T if true;
* Vec<T>: each element preceded by a byte 1, then a byte 0 (or end of input);
* &[u8] as the last field: every remaining byte, as is.

Check what a seed decodes to with `cargo fuzz fmt <target> corpus/<target>/<seed>`.
Run from anywhere: `python3 fuzz/seeds/make_seeds.py`.
"""

import pathlib
import struct

CORPUS = pathlib.Path(__file__).resolve().parent.parent / "corpus"
PREFACE = bytes([0xC0]) + b"UPCASE" + bytes([1])
TEXT, BYTES, PING, PONG, BYE, ERROR = 1, 2, 3, 4, 5, 6
MORE = 0x01


def u8(value):
    return struct.pack("<B", value)


def u16(value):
    return struct.pack("<H", value)


def u32(value):
    return struct.pack("<I", value)


def variant(index, count):
    """The u32 that makes a derived `Arbitrary` enum pick variant `index` of `count`."""
    x = ((2 * index + 1) << 32) // (2 * count)
    assert (x * count) >> 32 == index
    return u32(x)


def boolean(value):
    return u8(1 if value else 0)


def vec(items):
    return b"".join(b"\x01" + item for item in items) + b"\x00"


def byte_vec(data):
    return vec([bytes([b]) for b in data])


def option(item):
    return b"\x00" if item is None else b"\x01" + item


def address_field(ip_octets=bytes(16), port=0):
    """An `Address` as arbitrary reads it: Ipv6Addr from a u128 (LE), then the port."""
    return int.from_bytes(ip_octets, "big").to_bytes(16, "little") + u16(port)


def ipv4_mapped(a, b, c, d):
    return bytes(10) + b"\xff\xff" + bytes([a, b, c, d])


def frame(frame_type, data=b"", flags=0, src=bytes(18), dst=bytes(18), length=None):
    """A frame on the wire (42-byte header, then data)."""
    length = len(data) if length is None else length
    return src + dst + bytes([frame_type, flags]) + struct.pack(">I", length) + data


def write(target, name, data):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)


def frame_decode():
    unlimited = u32(0xFFFFFFFF)
    write("frame_decode", "text_hello", unlimited + frame(TEXT, b"hello"))
    write(
        "frame_decode",
        "two_frames_then_partial",
        unlimited + frame(BYTES, b"abc", MORE) + frame(BYE) + frame(PING, b"p")[:20],
    )
    write("frame_decode", "over_limit_header", u32(4) + frame(TEXT, b"12345")[:42])
    write("frame_decode", "empty", unlimited)


def frame_roundtrip():
    client = address_field(ipv4_mapped(127, 0, 0, 1), 50000)
    server = address_field(ipv4_mapped(127, 0, 0, 1), 9999)
    unspecified = address_field()

    def seed(name, src, dst, frame_type, flags, cuts, data):
        body = src + dst + u8(frame_type) + u8(flags) + vec([u16(c) for c in cuts]) + data
        write("frame_roundtrip", name, body)

    seed("text_hello_unaddressed", unspecified, unspecified, TEXT, 0, [], b"hello")
    seed("bytes_more_addressed_split", client, server, BYTES, MORE, [3, 41, 43], b"\x00\xffab")
    seed("unknown_type_reserved_flags", unspecified, server, 0x7F, 0xFE, [0], b"?")
    seed("error_frame", server, client, ERROR, 0, [42], b"\x00\x05unknown type")


def transform():
    strict, lossless, ascii_only = (variant(i, 3) for i in range(3))

    def seed(name, mode, cuts, data):
        write("transform", name, mode + vec([u16(c) for c in cuts]) + data)

    seed("strict_text_hello", strict, [2], b"hello")
    seed("fragmented_split_codepoint", strict, [1, 3, 6], "ßΐ😀".encode())
    seed("strict_incomplete_end", strict, [], "aé".encode()[:-1])
    seed("lossless_invalid_utf8", lossless, [2, 5], b"ab\xff\xe2\x82 \xf0\x9f\x98")
    seed("lossless_expanding", lossless, [1], "ﬃŉΐ".encode())
    seed("ascii_bytes", ascii_only, [4], b"abc\xc3\xa9xyz")


def datagram():
    unicode, ascii_only = variant(0, 2), variant(1, 2)
    limit = u32(1 << 20)

    def seed(name, case, max_len, data, mode=0):
        write("datagram", name, variant(mode, 3) + case + max_len + data)

    seed("raw_hello", unicode, limit, b"hello, world\n")
    seed("raw_invalid_utf8", unicode, limit, b"caf\xc3\xa9 \xff\xe2\x82")
    seed("raw_ascii", ascii_only, limit, "straße".encode())
    seed("framed_text_hello", unicode, limit, PREFACE + frame(TEXT, b"hello"))
    seed("framed_ping", unicode, limit, PREFACE + frame(PING, b"\x00\x01"))
    seed("framed_bad_version", unicode, limit, PREFACE[:7] + b"\x02" + frame(TEXT, b"x"))
    seed("framed_length_mismatch", unicode, limit, PREFACE + frame(TEXT, b"abc", length=2))
    seed("framed_more_flag", unicode, limit, PREFACE + frame(TEXT, b"abc", MORE))
    seed("framed_too_large", unicode, u32(2), PREFACE + frame(BYTES, b"abc"))
    seed("framed_short", unicode, limit, PREFACE + b"\x00" * 10)
    seed("raw_only_preface", unicode, limit, PREFACE + frame(TEXT, b"x"), mode=1)
    seed("framed_only_raw", unicode, limit, b"hello", mode=2)


# server_connection: Input { config: ServerOpsConfig, ops: Vec<Op> }.
AUTO, RAW, FRAMED = 0, 1, 2
OP_INPUT, OP_PREFACE, OP_FRAME, OP_TEXT, OP_ADVANCE = 0, 1, 2, 3, 4
OP_FIRE, OP_EOF, OP_SHUTDOWN, OP_SEND, OP_SEND_ALL = 5, 6, 7, 8, 9
OPS = 10
K_TEXT, K_BYTES, K_PING, K_BYE, K_PONG, K_ERROR, K_CODE, K_RESERVED = range(8)
KINDS = 8


def config(
    mode=AUTO,
    ascii_case=False,
    max_frame_len=0xFFFF,
    max_pending=0xFFFF,
    idle_ms=1000,
    linger_ms=10,
    busy=False,
    report=False,
):
    return (
        variant(mode, 3)
        + variant(1 if ascii_case else 0, 2)
        + u16(max_frame_len)
        + u16(max_pending)
        + u16(idle_ms)
        + u8(linger_ms)
        + boolean(busy)
        + boolean(report)
    )


def op_input(data):
    return variant(OP_INPUT, OPS) + byte_vec(data)


def op_preface(byte=0):
    return variant(OP_PREFACE, OPS) + u8(byte)


def op_frame(kind, data=b"", more=False, addresses=0, deliver_now=None, kind_arg=None):
    kind_bytes = variant(kind, KINDS) + (u8(kind_arg) if kind_arg is not None else b"")
    return (
        variant(OP_FRAME, OPS)
        + kind_bytes
        + boolean(more)
        + u8(addresses)
        + byte_vec(data)
        + option(None if deliver_now is None else u16(deliver_now))
    )


def op_text(letters, cuts, leave_open=False, addresses=0):
    return (
        variant(OP_TEXT, OPS)
        + byte_vec(letters)
        + vec([u16(c) for c in cuts])
        + boolean(leave_open)
        + u8(addresses)
    )


def op(kind, arg=b""):
    return variant(kind, OPS) + arg


def server_connection():
    def seed(name, cfg, ops):
        write("server_connection", name, cfg + vec(ops))

    seed("preface_then_bye", config(), [op_preface(), op_frame(K_BYE), op(OP_SEND_ALL)])
    seed(
        "text_hello",
        config(),
        [op_preface(), op_frame(K_TEXT, b"hello", addresses=3), op(OP_SEND_ALL), op(OP_EOF)],
    )
    # Letters 9, 10, 19 are ß, ΐ, 😀 in server_ops::LETTERS; the cuts split them.
    seed(
        "fragmented_split_codepoint",
        config(),
        [op_preface(), op_text([0, 9, 10, 19], [2, 4, 7]), op(OP_SEND_ALL)],
    )
    seed(
        "ping_between_fragments",
        config(),
        [
            op_preface(),
            op_frame(K_BYTES, b"ab", more=True),
            op_frame(K_PING, b"\x01\x02"),
            op_frame(K_BYTES, b"cd"),
            op(OP_SEND, u16(50)),
            op(OP_SEND_ALL),
        ],
    )
    seed("raw_hello", config(), [op_input(b"hello\n"), op(OP_SEND_ALL), op(OP_EOF)])
    seed(
        "raw_invalid_utf8",
        config(mode=RAW),
        [op_input(b"caf\xc3"), op_input(b"\xa9 \xff\xe2\x82"), op(OP_EOF)],
    )
    seed("raw_ascii_mode", config(ascii_case=True), [op_input("straße".encode()), op(OP_EOF)])
    seed(
        "backpressure",
        config(max_pending=60),
        [op_preface()]
        + [op_frame(K_BYTES, b"abcdefgh") for _ in range(4)]
        + [op(OP_SEND, u16(30)), op(OP_SEND_ALL), op(OP_SEND_ALL)],
    )
    seed("idle_timeout", config(idle_ms=5), [op_preface(), op(OP_ADVANCE, u16(6)), op(OP_FIRE)])
    seed(
        "shutdown_mid_message",
        config(),
        [op_preface(), op_frame(K_TEXT, b"ab", more=True), op(OP_SHUTDOWN), op(OP_SEND_ALL)],
    )
    seed(
        "oversized_frame",
        config(max_frame_len=4),
        [op_preface(), op_frame(K_TEXT, b"abc"), op_frame(K_TEXT, b"abcde")],
    )
    seed("bad_version", config(), [op_preface(0xE2), op(OP_SEND_ALL)])
    seed(
        "unknown_type_then_invalid_text",
        config(),
        [op_preface(), op_frame(K_CODE, b"?", kind_arg=0x42), op_frame(K_TEXT, b"\xff")],
    )
    seed(
        "frame_split_across_ops",
        config(),
        [op_preface(), op_frame(K_TEXT, b"split", deliver_now=20), op(OP_ADVANCE, u16(3)), op(OP_EOF)],
    )
    seed("framed_only_rejects_raw", config(mode=FRAMED), [op_input(b"hello")])
    seed("busy_framed", config(busy=True), [op_preface()])


# client_connection: Input { config: ClientOpsConfig, ops: Vec<ClientOp> }.
C_TEXT, C_BYTES, C_PING, C_BYE, C_SERVER_READS, C_CLIENT_READS, C_INJECT, C_ADVANCE, C_EOF = range(9)
C_OPS = 9
# Letters 3, 4, 7, 8 are ß, ΐ, 中, 😀 in client_ops::LETTERS.
L_A, L_SHARP_S, L_IOTA, L_HAN, L_EMOJI = 0, 3, 4, 7, 8


def client_config(max_data_len=255, max_fragment_len=255, max_in_flight=255, timeout_ms=255):
    """ClientOpsConfig; the fragment limit and timeout are stored minus one."""
    return u8(max_data_len) + u8(max_fragment_len) + u8(max_in_flight) + u8(timeout_ms)


def c_op(kind, arg=b""):
    return variant(kind, C_OPS) + arg


def client_connection():
    def seed(name, cfg, ops):
        write("client_connection", name, cfg + vec(ops))

    everything = [c_op(C_SERVER_READS, u16(0xFFFF)), c_op(C_CLIENT_READS, u16(0xFFFF))]
    seed(
        "text_ping_bytes_bye",
        client_config(),
        [
            c_op(C_TEXT, byte_vec([L_A, L_SHARP_S])),
            c_op(C_PING, byte_vec(b"p")),
            c_op(C_BYTES, byte_vec(b"ab\xff")),
            c_op(C_BYE),
        ]
        + everything,
    )
    # SPEC.md §3.4: a TEXT reply three times its request, over a 0-byte limit.
    seed("tripled_reply", client_config(max_data_len=0), [c_op(C_TEXT, byte_vec([L_IOTA] * 40))] + everything)
    seed(
        "fragments_cut_inside_code_points",
        client_config(max_fragment_len=0, max_in_flight=3),
        [c_op(C_TEXT, byte_vec([L_HAN, L_EMOJI, L_A]))] + everything * 8,
    )
    seed(
        "replies_delivered_byte_by_byte",
        client_config(max_fragment_len=3),
        [c_op(C_TEXT, byte_vec([L_A] * 10)), c_op(C_SERVER_READS, u16(0xFFFF))]
        + [c_op(C_CLIENT_READS, u16(1))] * 200,
    )
    seed(
        "silent_server_times_out",
        client_config(timeout_ms=9),
        [c_op(C_PING, byte_vec(b"x")), c_op(C_SERVER_READS, u16(0xFFFF)), c_op(C_ADVANCE, u16(11))],
    )
    seed(
        "fatal_error_then_garbage",
        client_config(),
        [
            c_op(C_TEXT, byte_vec([L_A])),
            c_op(C_INJECT, byte_vec(frame(ERROR, b"\x00\x04bad"))),
            c_op(C_INJECT, byte_vec(b"\xff" * 50)),
            c_op(C_CLIENT_READS, u16(0xFFFF)),
        ],
    )
    seed(
        "server_closes_early",
        client_config(),
        [c_op(C_BYTES, byte_vec(b"abc")), c_op(C_CLIENT_READS, u16(0xFFFF)), c_op(C_EOF)],
    )


if __name__ == "__main__":
    frame_decode()
    frame_roundtrip()
    transform()
    datagram()
    server_connection()
    client_connection()
