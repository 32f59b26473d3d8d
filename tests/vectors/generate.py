#!/usr/bin/env python3
"""Generate the UPCASE/1 test vectors: frames.json, transform.json, transcripts.json.

This is an independent model of the protocol, written from the design
(protocol.md) and the team's decisions (decisions.md), not from the Rust code:
the frame layout, the UTF-8 maximal-subpart decoder (Unicode "U+FFFD
substitution of maximal subparts", W3C Encoding Standard), the strict /
lossless / ASCII upper-case rules, and the server's reply rules. Python 3.11,
standard library only.

    python3 tests/vectors/generate.py           # (re)write the JSON files
    python3 tests/vectors/generate.py --check   # exit 1 if they differ from what this produces

Unicode upper case comes from Python's str.upper() (Unicode 14.0.0 in Python
3.11), while the reference implementation uses Rust's std (Unicode 17.0.0).
No vector may contain one of the 55 code points on which the two differ
(SPEC.md §10, VERSION_DIFFERENCES below).
"""

import ipaddress
import json
import struct
import sys
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
GENERATOR = "tests/vectors/generate.py"

# ---------------------------------------------------------------------------
# Unicode: the code points vectors may use, and the strict rules.

# The code points whose upper case differs between Python 3.11 (Unicode 14.0.0) and Rust 1.95
# (Unicode 17.0.0): the exhaustive comparison in SPEC.md §10. In each, 17.0.0 maps the code
# point and 14.0.0 leaves it unchanged. No vector may contain one of them.
VERSION_DIFFERENCES = [
    (0x019B, 0x019B), (0x0264, 0x0264), (0x1C8A, 0x1C8A), (0xA7CD, 0xA7CD), (0xA7CF, 0xA7CF),
    (0xA7D3, 0xA7D3), (0xA7D5, 0xA7D5), (0xA7DB, 0xA7DB), (0x10D70, 0x10D85), (0x16EBB, 0x16ED3),
]
assert sum(hi - lo + 1 for lo, hi in VERSION_DIFFERENCES) == 55


def check_stable(text):
    for ch in text:
        cp = ord(ch)
        if any(lo <= cp <= hi for lo, hi in VERSION_DIFFERENCES):
            raise SystemExit(f"U+{cp:04X} upper-cases differently in Unicode "
                             f"{unicodedata.unidata_version} and 17.0.0 (SPEC.md §10); "
                             "choose another code point")


def upper(text):
    """Full default upper case of valid text (Python's str.upper)."""
    check_stable(text)
    result = text.upper()
    check_stable(result)
    return result


# Second-byte ranges per lead byte (Unicode Table 3-7, W3C Encoding "UTF-8 decoder").
def _lead_info(lead):
    """Return (continuations needed, (lo, hi) of the first continuation) or None."""
    if 0xC2 <= lead <= 0xDF:
        return 1, (0x80, 0xBF)
    if lead == 0xE0:
        return 2, (0xA0, 0xBF)
    if 0xE1 <= lead <= 0xEC or lead in (0xEE, 0xEF):
        return 2, (0x80, 0xBF)
    if lead == 0xED:
        return 2, (0x80, 0x9F)
    if lead == 0xF0:
        return 3, (0x90, 0xBF)
    if 0xF1 <= lead <= 0xF3:
        return 3, (0x80, 0xBF)
    if lead == 0xF4:
        return 3, (0x80, 0x8F)
    return None


def utf8_pieces(data):
    """Split bytes into ("valid" | "invalid" | "incomplete", bytes) pieces.

    "invalid" pieces are maximal subparts; "incomplete" is a maximal subpart
    that reaches the end of the input (a valid prefix lacking continuation
    bytes), and can only be the last piece. Adjacent valid bytes are merged.
    """
    pieces = []
    valid_start = 0
    i = 0
    n = len(data)
    while i < n:
        lead = data[i]
        if lead < 0x80:
            i += 1
            continue
        info = _lead_info(lead)
        kind = None
        j = i + 1
        if info is None:
            kind = "invalid"
        else:
            need, (lo, hi) = info
            for k in range(need):
                if j >= n:
                    kind = "incomplete"
                    break
                if not (lo <= data[j] <= hi if k == 0 else 0x80 <= data[j] <= 0xBF):
                    kind = "invalid"
                    break
                j += 1
        if kind is None:
            i = j
            continue
        if valid_start < i:
            pieces.append(("valid", data[valid_start:i]))
        pieces.append((kind, data[i:j]))
        i = valid_start = j
    if valid_start < n:
        pieces.append(("valid", data[valid_start:]))
    return pieces


def self_check_decoder(data):
    """Cross-check utf8_pieces against CPython's codec (which also follows maximal subparts)."""
    pieces = utf8_pieces(data)
    replaced = data.decode("utf-8", errors="replace")
    mine = "".join(p.decode("utf-8") if k == "valid" else "\ufffd" for k, p in pieces)
    assert mine == replaced, (data, pieces)
    try:
        data.decode("utf-8")
        assert all(k == "valid" for k, _ in pieces)
    except UnicodeDecodeError as e:
        assert valid_up_to(data) == e.start, (data, e)


def valid_up_to(data):
    offset = 0
    for kind, piece in utf8_pieces(data):
        if kind != "valid":
            return offset
        offset += len(piece)
    return None


def has_invalid(data):
    """Whether `data` can no longer be the prefix of any valid UTF-8 string."""
    return any(kind == "invalid" for kind, _ in utf8_pieces(data))


def lossless(data):
    out = bytearray()
    for kind, piece in utf8_pieces(data):
        out += upper(piece.decode("utf-8")).encode("utf-8") if kind == "valid" else piece
    return bytes(out)


def ascii_upper(data):
    return bytes(data).upper()


class StrictMessage:
    """A TEXT message received in fragments: the strict, fail-fast rules."""

    def __init__(self):
        self.data = b""
        self.answered = 0  # bytes of `data` whose upper case was already produced

    def push(self, fragment, last):
        """Return ("ok", reply bytes) or ("error", offset)."""
        self.data += fragment
        if has_invalid(self.data) or (last and valid_up_to(self.data) is not None):
            return "error", valid_up_to(self.data)
        pieces = utf8_pieces(self.data)
        complete = len(self.data) - sum(len(p) for k, p in pieces if k == "incomplete")
        reply = upper(self.data[self.answered:complete].decode("utf-8")).encode("utf-8")
        self.answered = complete
        return "ok", reply


# ---------------------------------------------------------------------------
# Wire format.

PREFACE_MAGIC = b"\xc0UPCASE"
PREFACE = PREFACE_MAGIC + b"\x01"
HEADER_LEN = 42
TEXT, BYTES, PING, PONG, BYE, ERROR = 1, 2, 3, 4, 5, 6
TYPE_NAMES = {TEXT: "TEXT", BYTES: "BYTES", PING: "PING", PONG: "PONG", BYE: "BYE", ERROR: "ERROR"}
MORE = 0x01
MALFORMED, UNSUPPORTED_VERSION, FRAME_TOO_LARGE, INVALID_UTF8 = 1, 2, 3, 4
UNKNOWN_TYPE, UNEXPECTED_TYPE, TYPE_MISMATCH = 5, 6, 7
FATAL = {MALFORMED, UNSUPPORTED_VERSION, FRAME_TOO_LARGE, INVALID_UTF8, TYPE_MISMATCH}
UNSPECIFIED = bytes(18)


def addr(text):
    """18 wire bytes for "a.b.c.d:port", "[v6]:port" or "unspecified"."""
    if text == "unspecified":
        return UNSPECIFIED
    host, port = text.rsplit(":", 1)
    ip = ipaddress.ip_address(host.strip("[]"))
    if ip.version == 4:
        ip = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + ip.packed)
    return ip.packed + struct.pack(">H", int(port))


def addr_text(raw):
    """Text form of 18 address bytes: "[ip]:port" (RFC 5952, IPv4-mapped dotted) or "unspecified"."""
    if raw == UNSPECIFIED:
        return "unspecified"
    ip = ipaddress.IPv6Address(raw[:16])
    port = struct.unpack(">H", raw[16:])[0]
    if ip.ipv4_mapped is not None:
        host = f"::ffff:{ip.ipv4_mapped}"
    else:
        host = ip.compressed  # RFC 5952: lower case, longest zero run compressed
    return f"[{host}]:{port}"


def frame(ftype, data=b"", src="unspecified", dst="unspecified", flags=0, length=None):
    src_b = src if isinstance(src, bytes) else addr(src)
    dst_b = dst if isinstance(dst, bytes) else addr(dst)
    n = len(data) if length is None else length
    return src_b + dst_b + bytes([ftype, flags]) + struct.pack(">I", n) + data


def error_data(code, message):
    return struct.pack(">H", code) + message.encode("utf-8")


def type_name(code):
    return TYPE_NAMES.get(code, "UNKNOWN")


# ---------------------------------------------------------------------------
# frames.json

def frames_json():
    v4_client, v4_server = "127.0.0.1:50000", "127.0.0.1:9999"
    v6_a, v6_b = "[2001:db8::1]:443", "[fe80::1:2:3:4]:65535"
    cases = [
        ("text-hi-more", TEXT, b"hi", v4_client, v4_server, MORE),
        ("text-empty", TEXT, b"", "unspecified", "unspecified", 0),
        ("text-utf8", TEXT, "straße ΐ €".encode(), v4_client, "unspecified", 0),
        ("bytes-binary", BYTES, bytes(range(256)), "unspecified", v4_server, 0),
        ("bytes-more-empty", BYTES, b"", v6_a, v6_b, MORE),
        ("ping", PING, b"\x00\x01\x02", v6_b, v6_a, 0),
        ("pong", PONG, b"abc", v4_server, v4_client, 0),
        ("bye-empty", BYE, b"", v4_client, v4_server, 0),
        ("bye-reason", BYE, b"done", "unspecified", "unspecified", 0),
        ("error-invalid-utf8", ERROR, error_data(4, "invalid UTF-8 at byte 3 of the message"),
         v4_server, v4_client, 0),
        ("error-code-only", ERROR, struct.pack(">H", 9), v4_server, v4_client, 0),
        ("unknown-type-0x00", 0x00, b"x", "unspecified", "unspecified", 0),
        ("unknown-type-0x07", 0x07, b"", v4_client, v4_server, 0),
        ("unknown-type-0xff-more", 0xFF, b"zz", v4_client, v4_server, MORE),
        ("reserved-flag-0x02", TEXT, b"a", v4_client, v4_server, 0x02),
        ("reserved-flags-0xff", BYTES, b"a", v4_client, v4_server, 0xFF),
        ("reserved-flag-0x80-on-ping", PING, b"", v4_client, v4_server, 0x80),
        ("ipv6-unspecified-ip-nonzero-port", TEXT, b"p", "[::]:7", "[::1]:0", 0),
        ("ipv4-zero-ip-mapped", TEXT, b"q", "0.0.0.0:0", "255.255.255.255:1", 0),
        ("large-ish-data-over-u16", BYTES, bytes((i * 7 + 3) % 256 for i in range(65537)), v6_a, v4_server, 0),
    ]
    frames = []
    for name, ftype, data, src, dst, flags in cases:
        raw = frame(ftype, data, src, dst, flags)
        frames.append({
            "name": name,
            "hex": raw.hex(),
            "src": addr_text(raw[0:18]),
            "dst": addr_text(raw[18:36]),
            "type": ftype,
            "type_name": type_name(ftype),
            "flags": flags,
            "more": bool(flags & MORE),
            "data_hex": data.hex(),
        })
    errors = []
    hi = frame(TEXT, b"hi", v4_client, v4_server)
    for cut in (0, 1, 17, 18, 36, 37, 41, 42, 43):
        errors.append({"name": f"truncated-to-{cut}", "hex": hi[:cut].hex(),
                       "limit": 1048576, "result": "need_more"})
    for limit, length in ((1048576, 1048577), (16, 17), (0, 1), (1048576, 0xFFFFFFFF)):
        header = frame(BYTES, b"", v4_client, v4_server, length=length)
        errors.append({"name": f"length-{length}-over-limit-{limit}", "hex": header.hex(),
                       "limit": limit, "result": "frame_too_large"})
    at_limit = frame(BYTES, b"", length=16)
    errors.append({"name": "length-at-limit-header-only", "hex": at_limit.hex(),
                   "limit": 16, "result": "need_more"})
    return {
        "description": "UPCASE/1 frames: every field at its offset, and what a decoder says "
                       "about truncated or over-limit input. See README.md.",
        "frames": frames,
        "decode_errors": errors,
    }


# ---------------------------------------------------------------------------
# transform.json

def split_patterns(data):
    n = len(data)
    patterns = [("whole", [])]
    if n >= 2:
        patterns.append(("every-byte", list(range(1, n))))
        patterns.append(("halves", [n // 2]))
    if n >= 1:
        patterns.append(("empty-chunks", [0, n // 2, n // 2, n]))
    # Splits just after the first byte of each multi-byte code point or invalid piece.
    inside = []
    offset = 0
    for kind, piece in utf8_pieces(data):
        if kind == "valid":
            position = offset
            for ch in piece.decode("utf-8"):
                width = len(ch.encode("utf-8"))
                if width > 1:
                    inside.append(position + 1)
                position += width
        elif len(piece) > 1:
            inside.append(offset + 1)
        offset += len(piece)
    if inside and inside != list(range(1, n)):
        patterns.append(("inside-code-points", inside))
    return patterns


def chunks(data, splits):
    bounds = [0] + splits + [len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def strict_result(data, splits):
    """{"output_hex"} or {"error": {"invalid_utf8_offset", "at_chunk"}}; at_chunk == number of
    chunks means the error is reported when the message ends (finish)."""
    parts = chunks(data, splits)
    seen = b""
    for index, part in enumerate(parts):
        seen += part
        if has_invalid(seen):
            return {"error": {"invalid_utf8_offset": valid_up_to(seen), "at_chunk": index}}
    offset = valid_up_to(data)
    if offset is not None:
        return {"error": {"invalid_utf8_offset": offset, "at_chunk": len(parts)}}
    return {"output_hex": upper(data.decode("utf-8")).encode("utf-8").hex()}


def stress_inputs():
    """(name, bytes, modes) for the UTF-8 decoder stress classes and the case-mapping specials."""
    all_modes = ("unicode-strict", "unicode-lossless", "ascii")
    uni = ("unicode-strict", "unicode-lossless")
    cases = []
    for b in range(0x80, 0xC0):
        cases.append((f"continuation-{b:02X}-alone", bytes([b]), uni))
    for b in range(0xC0, 0xFE):
        cases.append((f"lonely-start-{b:02X}-space", bytes([b, 0x20]), uni))
    for name, seq in (("2-byte-e-acute", "é"), ("3-byte-euro", "€"), ("4-byte-emoji", "😀")):
        full = seq.encode()
        for missing in range(1, len(full)):
            cut = full[:len(full) - missing]
            cases.append((f"truncated-{name}-missing-{missing}-at-end", b"ab" + cut, uni))
            cases.append((f"truncated-{name}-missing-{missing}-then-ascii", b"ab" + cut + b"cd", uni))
    all_truncated = b"".join("é€😀".encode()[i:j] for i, j in ((0, 1), (2, 4), (5, 8)))
    cases.append(("all-truncated-concatenated", all_truncated, uni))
    overlongs = [
        ("overlong-nul-2", "c080"), ("overlong-nul-3", "e08080"), ("overlong-nul-4", "f0808080"),
        ("overlong-nul-5", "f880808080"), ("overlong-nul-6", "fc8080808080"),
        ("overlong-slash-2", "c0af"), ("overlong-slash-3", "e080af"), ("overlong-slash-4", "f08080af"),
        ("overlong-max-2", "c1bf"), ("overlong-max-3", "e09fbf"), ("overlong-max-4", "f08fbfbf"),
    ]
    for name, h in overlongs:
        cases.append((name, bytes.fromhex(h), uni))
    for name, h in (("surrogate-d800", "eda080"), ("surrogate-dfff", "edbfbf"),
                    ("surrogate-pair-d800-dc00", "eda080edb080"), ("surrogate-pair-dbff-dfff", "edafbfedbfbf")):
        cases.append((name, b"x" + bytes.fromhex(h) + b"y", uni))
    for name, h in (("5-byte-form", "f888808080"), ("6-byte-form", "fc8480808080"),
                    ("above-10ffff-f4-90", "f4908080"), ("f5-lead", "f5808080"),
                    ("fe", "fe"), ("ff", "ff"), ("fe-fe-ff-ff", "fefeffff")):
        cases.append((name, bytes.fromhex(h), uni))
    nonchars = [chr(c) for c in range(0xFDD0, 0xFDF0)] + ["\ufffe", "\uffff", "\U0001fffe", "\U0010ffff"]
    cases.append(("noncharacters-are-valid", "a".join(nonchars).encode(), all_modes))
    for cp in (0x7F, 0x80, 0x7FF, 0x800, 0xFFFF, 0x10000, 0x10FFFF):
        cases.append((f"boundary-U+{cp:04X}", ("a" + chr(cp) + "z").encode(), all_modes))
    specials = [
        ("sharp-s", "ß"), ("iota-dialytika-tonos-U+0390", "ΐ"), ("upsilon-dialytika-tonos-U+03B0", "ΰ"),
        ("n-apostrophe-U+0149", "ŉ"), ("ffi-ligature-U+FB03", "ﬃ"), ("dotless-i-U+0131", "ı"),
        ("long-s-U+017F", "ſ"), ("titlecase-dz-U+01C5", "ǅ"), ("a-stroke-U+2C65-shrinks", "ⱥ"),
        ("turned-a-U+0250-expands", "ɐ"), ("ypogegrammeni-U+0345", "\u0345"),
    ]
    for name, ch in specials:
        cases.append((name, ("x" + ch + "y" + ch).encode(), all_modes))
    cases.append(("mixed-text", "Straße, ΐ ΰ ŉ ﬃ ı ſ ǅ ⱥ ɐ — Привет 中文 😀!".encode(), all_modes))
    cases.append(("ascii-only", bytes(range(0x20, 0x7F)), all_modes))
    cases.append(("empty", b"", all_modes))
    cases.append(("mixed-damage", b"ok \xc3\xa9\xff\xe2\x82 \xed\xa0\x80 \xf0\x9f\x98 end\xe2", all_modes))
    cases.append(("held-bytes-broken-by-next-chunk", b"\xf0\x90a", uni))
    return cases


# Bytes that exercise every branch of the second-byte table: ASCII, continuation bytes at
# the edges of the special ranges, and the leads with restricted second bytes.
COMBINATION_BYTES = bytes.fromhex("41 80 a0 bf c2 e0 ed f0 f4")


def combination_inputs():
    """Every 3-byte string over COMBINATION_BYTES, and every 4-byte sequence prefix plus one of
    them, each pushed one byte at a time: the streaming carry in all its states. The 3-byte
    prefixes `e0 a0` and `ed 80` plus one byte are among the 3-byte strings already; each
    input appears once, so that vector names stay unique."""
    inputs = [bytes([a, b, c]) for a in COMBINATION_BYTES for b in COMBINATION_BYTES
              for c in COMBINATION_BYTES]
    for prefix in (b"\xf0\xa0\x80", b"\xf4\x80\x80", b"\xe0\xa0", b"\xed\x80"):
        inputs += [prefix + bytes([x]) for x in COMBINATION_BYTES]
    return list(dict.fromkeys(inputs))


def transform_json():
    vectors = []
    for data in combination_inputs():
        self_check_decoder(data)
        splits = list(range(1, len(data)))
        vectors.append({"name": f"combination-{data.hex()}/unicode-strict/every-byte",
                        "mode": "unicode-strict", "input_hex": data.hex(), "splits": splits,
                        **strict_result(data, splits)})
        vectors.append({"name": f"combination-{data.hex()}/unicode-lossless/every-byte",
                        "mode": "unicode-lossless", "input_hex": data.hex(), "splits": splits,
                        "output_hex": lossless(data).hex()})
    for name, data, modes in stress_inputs():
        self_check_decoder(data)
        for mode in modes:
            for pattern, splits in split_patterns(data):
                vector = {"name": f"{name}/{mode}/{pattern}", "mode": mode,
                          "input_hex": data.hex(), "splits": splits}
                if mode == "unicode-strict":
                    vector.update(strict_result(data, splits))
                elif mode == "unicode-lossless":
                    vector["output_hex"] = lossless(data).hex()
                else:
                    vector["output_hex"] = ascii_upper(data).hex()
                vectors.append(vector)
    return {
        "description": "UPCASE/1 upper-case transform: input pushed in chunks cut at `splits`, "
                       "then the end of the message. See README.md.",
        "vectors": vectors,
    }


# ---------------------------------------------------------------------------
# transcripts.json: a model of the server side of one TCP connection.

class ServerModel:
    def __init__(self, mode, raw_case, max_frame, local, peer):
        self.mode = mode
        self.raw_case = raw_case
        self.max_frame = max_frame
        self.local = addr(local)
        self.peer = addr(peer)
        self.phase = "raw" if mode == "raw" else "sniffing"
        self.buffer = b""  # unprocessed input (sniffing, framed) or held partial code point (raw)
        self.open = None  # (type, StrictMessage or None) of an open fragmented message
        self.ending = False  # stopped reading: BYE, fatal ERROR, or EOF
        self.errors = []

    def reply_addresses(self, src, dst):
        return (dst if dst != UNSPECIFIED else self.local, src if src != UNSPECIFIED else self.peer)

    def input(self, data):
        if self.ending:
            return b""
        self.buffer += data
        out = b""
        if self.phase == "sniffing":
            out += self.sniff()
        if self.phase == "raw":
            out += self.raw(final=False)
        elif self.phase == "framed":
            out += self.frames()
        return out

    def eof(self):
        if self.ending:
            return b""
        out = b""
        if self.phase == "sniffing":
            if self.mode == "framed":
                self.ending = True
                return b""
            self.phase = "raw"
        if self.phase == "raw":
            out += self.raw(final=True)
        # Framed: complete frames were answered on input; a partial frame is dropped.
        self.ending = True
        return out

    def sniff(self):
        n = min(len(self.buffer), len(PREFACE_MAGIC))
        if self.buffer[:n] != PREFACE_MAGIC[:n]:
            if self.mode == "framed":
                self.ending = True  # not a framed client: close without reply
                self.buffer = b""
            else:
                self.phase = "raw"
            return b""
        if len(self.buffer) < len(PREFACE):
            return b""
        version = self.buffer[7]
        self.buffer = self.buffer[8:]
        self.phase = "framed"
        out = PREFACE
        if version != 1:
            out += self.error((self.local, self.peer), UNSUPPORTED_VERSION,
                              f"unsupported version {version}; this server speaks version 1")
        return out

    def raw(self, final):
        data, self.buffer = self.buffer, b""
        if self.raw_case == "ascii":
            return ascii_upper(data)
        pieces = utf8_pieces(data)
        if not final and pieces and pieces[-1][0] == "incomplete":
            self.buffer = pieces[-1][1]
            data = data[:len(data) - len(self.buffer)]
        return lossless(data)

    def error(self, addresses, code, message):
        self.errors.append({"code": code})
        if code in FATAL:
            self.ending = True
            self.buffer = b""
        return frame(ERROR, error_data(code, message), addresses[0], addresses[1])

    def frames(self):
        out = b""
        while not self.ending and len(self.buffer) >= HEADER_LEN:
            src, dst = self.buffer[0:18], self.buffer[18:36]
            ftype, flags = self.buffer[36], self.buffer[37]
            (length,) = struct.unpack(">I", self.buffer[38:42])
            addresses = self.reply_addresses(src, dst)
            if length > self.max_frame:
                out += self.error(addresses, FRAME_TOO_LARGE,
                                  f"frame length {length} exceeds the limit of {self.max_frame} bytes")
                break
            if len(self.buffer) < HEADER_LEN + length:
                break
            data = self.buffer[HEADER_LEN:HEADER_LEN + length]
            self.buffer = self.buffer[HEADER_LEN + length:]
            out += self.one_frame(addresses, ftype, flags, data)
        return out

    def one_frame(self, addresses, ftype, flags, data):
        more = bool(flags & MORE)
        if flags & ~MORE & 0xFF:
            return self.error(addresses, MALFORMED, "reserved flag bits set")
        if more and ftype not in (TEXT, BYTES):
            return self.error(addresses, MALFORMED, "MORE set on a frame that is not TEXT or BYTES")
        if ftype not in TYPE_NAMES:
            return self.error(addresses, UNKNOWN_TYPE, f"unknown frame type 0x{ftype:02x}")
        if ftype in (PONG, ERROR):
            return self.error(addresses, UNEXPECTED_TYPE, f"a client may not send {type_name(ftype)} frames")
        if ftype == PING:
            return frame(PONG, data, *addresses)
        if ftype == BYE:
            self.open = None
            self.ending = True
            self.buffer = b""
            return frame(BYE, b"", *addresses)
        if self.open is not None and self.open[0] != ftype:
            open_type = self.open[0]
            self.open = None
            return self.error(addresses, TYPE_MISMATCH,
                              f"a {type_name(ftype)} frame arrived while a {type_name(open_type)} message is open")
        if self.open is None:
            self.open = (ftype, StrictMessage() if ftype == TEXT else None)
        message = self.open[1]
        self.open = self.open if more else None
        if ftype == BYTES:
            return frame(BYTES, ascii_upper(data), *addresses, flags=flags)
        status, value = message.push(data, last=not more)
        if status == "error":
            self.open = None
            return self.error(addresses, INVALID_UTF8, f"invalid UTF-8 at byte {value} of the message")
        return frame(TEXT, value, *addresses, flags=flags)


LOCAL, PEER = "127.0.0.1:9999", "127.0.0.1:50000"
C2S = {"src": PEER, "dst": LOCAL}  # a client that fills in both addresses


def t(ftype, data=b"", flags=0, src="unspecified", dst="unspecified", length=None):
    return frame(ftype, data, src, dst, flags, length)


def transcripts_cases():
    """(name, server overrides, steps); a step is bytes or "eof"."""
    P = PREFACE
    cases = [
        ("preface-exchange-then-eof", {}, [P, "eof"]),
        ("preface-byte-by-byte", {}, [P[i:i + 1] for i in range(8)] + ["eof"]),
        ("text-hello", {}, [P + t(TEXT, b"hello"), "eof"]),
        ("text-hello-addressed", {}, [P + t(TEXT, b"hello", **C2S), "eof"]),
        ("text-empty", {}, [P + t(TEXT), "eof"]),
        ("text-expanding-and-shrinking", {}, [P + t(TEXT, "straße ΐ ŉ ﬃ ı ſ ǅ ⱥ ɐ".encode()), "eof"]),
        ("text-fragmented-code-point-split", {},
         [P + t(TEXT, b"ab\xe2", MORE), t(TEXT, b"\x82", MORE), t(TEXT, b"\xacd"), "eof"]),
        ("text-fragmented-empty-fragments", {},
         [P + t(TEXT, b"", MORE) + t(TEXT, b"x", MORE) + t(TEXT, b""), "eof"]),
        ("text-fragmented-four-byte-over-three-fragments", {},
         [P + t(TEXT, b"\xf0", MORE) + t(TEXT, b"\x9f\x98", MORE) + t(TEXT, b"\x80!"), "eof"]),
        ("text-fragment-per-byte", {},
         [P + b"".join(t(TEXT, bytes([b]), MORE) for b in "aΐß€😀".encode()) + t(TEXT), "eof"]),
        ("bytes", {}, [P + t(BYTES, b"hello \xff\x00 \xc3\x9f world"), "eof"]),
        ("bytes-fragmented", {}, [P + t(BYTES, b"ab", MORE) + t(BYTES, b"", MORE) + t(BYTES, b"cd"), "eof"]),
        ("ping-pong", {}, [P + t(PING, b"\x00ping\xff", **C2S), "eof"]),
        ("ping-between-fragments", {},
         [P + t(TEXT, b"one \xc3", MORE) + t(PING, b"p") + t(TEXT, b"\xa9 two"), "eof"]),
        ("bye", {}, [P + t(BYE), t(TEXT, b"ignored after bye")]),
        ("bye-with-reason-then-eof", {}, [P + t(BYE, b"goodbye", **C2S), "eof"]),
        ("bye-with-invalid-utf8-reason", {}, [P + t(BYE, b"\xff\xfe")]),
        ("bye-while-message-open", {}, [P + t(TEXT, b"half", MORE) + t(BYE) + t(TEXT, b"rest")]),
        ("malformed-reserved-flag", {}, [P + t(TEXT, b"a", 0x02) + t(TEXT, b"not answered")]),
        ("malformed-reserved-flag-with-more", {}, [P + t(BYTES, b"a", 0x81)]),
        ("malformed-more-on-ping", {}, [P + t(PING, b"x", MORE)]),
        ("malformed-more-on-unknown-type", {}, [P + t(0x07, b"x", MORE)]),
        ("malformed-reserved-flag-on-unknown-type", {}, [P + t(0x40, b"", 0x04)]),
        ("malformed-more-on-pong-before-unexpected-type", {}, [P + t(PONG, b"x", MORE)]),
        ("malformed-more-on-bye", {}, [P + t(BYE, b"", MORE) + t(TEXT, b"not answered")]),
        ("malformed-reserved-flag-while-message-open", {}, [P + t(TEXT, b"ab", MORE) + t(TEXT, b"c", 0x10)]),
        ("frame-too-large-checked-before-reserved-flags", {"max_frame": 4},
         [P + t(TEXT, flags=0xFE, length=5)]),
        ("type-mismatch-checked-before-invalid-utf8", {}, [P + t(BYTES, b"ab", MORE) + t(TEXT, b"\xff")]),
        ("unsupported-version-2", {}, [PREFACE_MAGIC + b"\x02" + t(TEXT, b"not answered")]),
        ("unsupported-version-0-then-eof", {}, [PREFACE_MAGIC + b"\x00", "eof"]),
        ("frame-too-large-header-only", {"max_frame": 16},
         [P + t(TEXT, b"ok", **C2S), t(TEXT, length=17, src="10.1.2.3:4000")]),
        ("frame-at-limit-is-answered", {"max_frame": 16}, [P + t(BYTES, b"0123456789abcdef"), "eof"]),
        ("frame-too-large-default-limit", {}, [P + t(BYTES, length=1048577)]),
        ("invalid-utf8-single-frame", {}, [P + t(TEXT, b"abc\xffdef")]),
        ("invalid-utf8-fail-fast-in-middle-fragment", {},
         [P + t(TEXT, b"abc", MORE), t(TEXT, b"d\xe2\x28", MORE), t(TEXT, b"never")]),
        ("invalid-utf8-carried-bytes-broken-by-next-fragment", {},
         [P + t(TEXT, b"ab\xe2\x82", MORE), t(TEXT, b"x")]),
        ("invalid-utf8-incomplete-last-fragment", {},
         [P + t(TEXT, b"caf", MORE), t(TEXT, b"\xc3")]),
        ("invalid-utf8-surrogate", {}, [P + t(TEXT, b"\xed\xa0\x80")]),
        ("invalid-utf8-overlong-nul", {}, [P + t(TEXT, b"a\xc0\x80")]),
        ("unknown-type-then-text", {}, [P + t(0x07, b"?") + t(0x00) + t(0xFF, b"zz") + t(TEXT, b"still here"), "eof"]),
        ("unknown-type-between-fragments", {}, [P + t(TEXT, b"a\xc3", MORE) + t(0x80, b"") + t(TEXT, b"\xa9"), "eof"]),
        ("unexpected-pong-and-error", {},
         [P + t(PONG, b"x") + t(ERROR, error_data(1, "client error")) + t(TEXT, b"ok"), "eof"]),
        ("type-mismatch-bytes-in-text", {}, [P + t(TEXT, b"ab", MORE) + t(BYTES, b"cd")]),
        ("type-mismatch-text-in-bytes", {}, [P + t(BYTES, b"ab", MORE) + t(TEXT, b"cd", MORE)]),
        ("address-swap", {},
         [P + t(TEXT, b"a", src="10.0.0.2:1234", dst="10.0.0.1:80")
          + t(TEXT, b"b", src="[2001:db8::2]:5", dst="[2001:db8::1]:6"), "eof"]),
        ("address-fill-in", {},
         [P + t(TEXT, b"both", ) + t(TEXT, b"src", src="10.0.0.2:1234")
          + t(TEXT, b"dst", dst="10.0.0.1:80"), "eof"]),
        ("address-fill-in-is-per-address", {},
         [P + t(PING, b"ip unspecified, port set", src="[::]:1", dst="0.0.0.0:0"), "eof"]),
        ("ipv6-connection-fill-in", {"local": "[2001:db8::1]:9999", "peer": "[2001:db8::2]:50000"},
         [P + t(TEXT, b"v6") + t(PING, b"", src="[2001:db8::2]:50000"), "eof"]),
        ("pipelined-frames-in-one-write", {},
         [P + t(TEXT, b"one") + t(BYTES, b"two") + t(PING, b"3") + t(TEXT, b"four"), "eof"]),
        ("frame-split-across-writes", {},
         ["split", P + t(TEXT, "héllo".encode(), **C2S), [3, 8, 9, 30, 49, 50, 51]]),
        ("eof-mid-frame", {}, [P + t(TEXT, b"answered") + t(TEXT, b"lost")[:45], "eof"]),
        ("eof-mid-header", {}, [P + t(TEXT, b"answered") + t(TEXT)[:10], "eof"]),
        ("fatal-error-discards-pipelined-frames", {},
         [P + t(TEXT, b"\xff") + t(TEXT, b"not answered"), t(PING), "eof"]),
        ("eof-immediately", {}, ["eof"]),
        ("eof-after-magic-without-version", {}, [PREFACE_MAGIC, "eof"]),
        ("raw-hello", {}, [b"hello\n", "eof"]),
        ("raw-invalid-byte-and-held-code-point", {},
         [b"caf\xc3", b"\xa9 \xff ok \xe2\x82", b"\xac\n", "eof"]),
        ("raw-ends-inside-code-point", {}, [b"stra\xc3\x9fe \xf0\x9f\x98", "eof"]),
        # Reads ending in bytes that can never become a code point (a surrogate's
        # ed a0, an overlong's e0 80, f4 90 over U+10FFFF, f0 8f): nothing is held,
        # each comes back in the same step. CPython's incremental decoder holds ed a0.
        ("raw-ill-formed-end-of-read-not-held", {},
         [b"ok \xed\xa0", b"\x80 \xe0\x80", b" \xf4\x90", b" \xf0\x8f", "eof"]),
        ("raw-expanding", {}, [b"\xce", b"\x90" + " ß ŉ ⱥ ɐ\n".encode(), "eof"]),
        ("raw-ascii-option", {"raw_case": "ascii"}, [b"stra\xc3\x9fe \xff abc", b"xyz\xe2\x82", "eof"]),
        ("raw-ascii-option-lone-c0", {"raw_case": "ascii"}, [b"\xc0UPx", "eof"]),
        ("raw-lone-c0-then-text", {}, [b"\xc0hello", "eof"]),
        ("raw-lone-c0-alone-then-text", {}, [b"\xc0", b"hi", "eof"]),
        ("raw-preface-prefix-then-mismatch", {}, [b"\xc0UP", b"x", "eof"]),
        ("raw-partial-preface-then-eof", {}, [b"\xc0UPCAS", "eof"]),
        ("raw-only-mode-treats-preface-as-raw", {"mode": "raw"}, [P + b"abc", "eof"]),
        ("framed-only-mode-closes-raw-client", {"mode": "framed"}, [b"hello"]),
        ("framed-only-mode-serves-framed-client", {"mode": "framed"}, [P + t(TEXT, b"hi"), "eof"]),
        # Connections that stay open: nothing ends them (no EOF, BYE or fatal ERROR).
        ("open-after-preface", {}, [P]),
        ("open-after-text", {}, [P + t(TEXT, b"hello")]),
        ("open-inside-a-message", {}, [P + t(TEXT, b"ab\xc3", MORE)]),
        ("open-after-non-fatal-errors", {}, [P + t(0x07, b"?") + t(PONG) + t(TEXT, b"still open")]),
        ("open-with-an-incomplete-frame", {}, [P + t(TEXT, b"x") + t(TEXT, b"half")[:44]]),
        ("open-in-raw-mode", {}, [b"raw ", b"stays open \xe2\x82"]),
    ]
    return cases


def transcripts_json():
    vectors = []
    for name, overrides, steps in transcripts_cases():
        server = {"mode": "auto", "raw_case": "unicode", "max_frame": 1048576, "local": LOCAL, "peer": PEER}
        server.update(overrides)
        if steps and steps[0] == "split":
            _, whole, cuts = steps
            bounds = [0] + cuts + [len(whole)]
            steps = [whole[a:b] for a, b in zip(bounds, bounds[1:])] + ["eof"]
        model = ServerModel(**server)
        out_steps, total = [], b""
        for step in steps:
            if step == "eof":
                reply = model.eof()
                out_steps.append({"eof": True, "server_hex": reply.hex()})
            else:
                reply = model.input(step)
                out_steps.append({"client_hex": step.hex(), "server_hex": reply.hex()})
            total += reply
        vectors.append({
            "name": name,
            "server": server,
            "steps": out_steps,
            "server_hex": total.hex(),
            "errors": model.errors,
            "closes": model.ending,
        })
    return {
        "description": "UPCASE/1 server transcripts: bytes a client sends (and its EOF), and every "
                       "byte the server sends back. See README.md.",
        "vectors": vectors,
    }


# ---------------------------------------------------------------------------
# client.json: what a conforming client reports for a server's byte stream
# (SPEC §2.4, §2.5, §3.4, §5.4, §6.6).

IDLE_TIMEOUT, BUSY = 8, 9
NO_FRAME = {UNSUPPORTED_VERSION, IDLE_TIMEOUT, BUSY}
CLIENT_LIMIT = 1048576  # the client's limit on ERROR and BYE (§3.4)


class ClientFailure(Exception):
    def __init__(self, reason, code=None, request=None):
        self.reason, self.code, self.request = reason, code, request


class ClientModel:
    """A client that sent `requests` (each frame one request, in order) and
    reads the server's bytes. Events follow the SPEC's client rules."""

    def __init__(self, requests):
        self.waiting = [(i, ftype, flags & MORE, len(data)) for i, (ftype, flags, data) in enumerate(requests)]
        self.buf = b""
        self.preface = False
        self.events = []
        self.closed = False

    def feed(self, data):
        if self.closed:
            return
        self.buf += data
        try:
            self.decode()
        except ClientFailure as failure:
            self.fail(failure.reason, failure.code, failure.request)

    def eof(self):
        if not self.closed:
            self.fail("closed")

    def fail(self, reason, code=None, request=None):
        unanswered = [w[0] for w in self.waiting if w[0] != request]
        self.events.append({"failure": reason, "code": code, "request": request, "unanswered": unanswered})
        self.closed = True

    def decode(self):
        if not self.preface:
            head = self.buf[:8]
            if head != PREFACE[:len(head)]:
                if head[:7] == PREFACE_MAGIC and len(head) == 8:
                    raise ClientFailure("unsupported-version")
                raise ClientFailure("bad-preface")
            if len(head) < 8:
                return
            self.preface, self.buf = True, self.buf[8:]
        while not self.closed and len(self.buf) >= HEADER_LEN:
            ftype, flags = self.buf[36], self.buf[37]
            length = struct.unpack(">I", self.buf[38:42])[0]
            limit = self.header_limit(ftype, flags, length)
            if length > limit:
                raise ClientFailure("over-limit")
            if len(self.buf) < HEADER_LEN + length:
                return
            data = self.buf[HEADER_LEN:HEADER_LEN + length]
            self.buf = self.buf[HEADER_LEN + length:]
            self.frame(ftype, flags, data)

    def header_limit(self, ftype, flags, length):
        """§3.3 flags, then §2.4: the reply must fit the oldest waiting request."""
        if flags & 0xFE or (flags & MORE and ftype not in (TEXT, BYTES)):
            raise ClientFailure("bad-flags")
        if ftype in (ERROR, BYE):
            return CLIENT_LIMIT
        if not self.waiting:
            raise ClientFailure("unexpected-frame")
        _, rtype, more, n = self.waiting[0]
        expected = PONG if rtype == PING else rtype
        if ftype != expected:
            raise ClientFailure("unexpected-frame")
        if (flags & MORE) != more:
            raise ClientFailure("more-mismatch")
        return 3 * (n + 3) if rtype == TEXT else n

    def frame(self, ftype, flags, data):
        if ftype == ERROR:
            if len(data) < 2:
                raise ClientFailure("short-error")
            code = struct.unpack(">H", data[:2])[0]
            if code in NO_FRAME:
                raise ClientFailure("server-error", code)
            if not self.waiting:
                raise ClientFailure("unexpected-frame")
            request = self.waiting.pop(0)[0]
            if code in FATAL:
                raise ClientFailure("server-error", code, request)
            # Not fatal, or a code this client does not know (§6.6).
            self.events.append({"error": request, "code": code})
            return
        if ftype == BYE and not (self.waiting and self.waiting[0][1] == BYE):
            self.events.append({"server_bye": True, "unanswered": [w[0] for w in self.waiting]})
            self.waiting, self.closed = [], True
            return
        if ftype == TEXT:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                raise ClientFailure("text-not-utf8")
        request = self.waiting.pop(0)[0]
        self.events.append({"reply": request, "type": ftype, "data_hex": data.hex()})
        if ftype == BYE:
            self.closed = True


def e(code, message=""):
    return t(ERROR, error_data(code, message), src=LOCAL, dst=PEER)


def client_cases():
    """(name, requests, server bytes, eof after them)."""
    P = PREFACE
    a, b = (TEXT, 0, b"a"), (TEXT, 0, b"b")
    bye = (BYE, 0, b"")
    return [
        ("reply", [(TEXT, 0, b"hello")], P + t(TEXT, b"HELLO", src=LOCAL, dst=PEER), False),
        ("replies-to-pipelined-requests", [(TEXT, 0, "straße".encode()), (BYTES, 0, b"ok\xff"), (PING, 0, b"\x00p")],
         P + t(TEXT, b"STRASSE") + t(BYTES, b"OK\xff") + t(PONG, b"\x00p"), False),
        ("replies-to-fragments-empty-ones-among-them",
         [(TEXT, MORE, b"a\xe2"), (TEXT, MORE, b"\x82"), (TEXT, 0, b"\xac")],
         P + t(TEXT, b"A", MORE) + t(TEXT, b"", MORE) + t(TEXT, "€".encode()), False),
        ("reply-of-three-times-n-plus-nine-accepted", [(TEXT, 0, b"ab")], P + t(TEXT, b"A" * 15), False),
        ("reply-addresses-not-checked", [a],
         P + t(TEXT, b"A", src="[2001:db8::1]:7", dst="10.9.8.7:6"), False),
        ("no-reply-yet-stays-open", [a], P, False),
        ("bye-answered", [a, bye], P + t(TEXT, b"A") + t(BYE), False),
        ("bye-answered-with-data", [bye], P + t(BYE, b"server shutting down"), False),
        ("server-bye-leaves-requests-unanswered", [a, b],
         P + t(TEXT, b"A") + t(BYE, b"server shutting down", src=LOCAL, dst=PEER), False),
        ("server-bye-before-replies-to-frames-ahead-of-client-bye", [a, bye],
         P + t(BYE, b"server shutting down"), False),
        ("unknown-error-code-is-a-reply", [a, b], P + e(77, "new") + t(TEXT, b"B"), False),
        ("non-fatal-error-codes-are-replies", [a, b, (TEXT, 0, b"c")],
         P + e(UNKNOWN_TYPE) + e(UNEXPECTED_TYPE, "") + t(TEXT, b"C"), False),
        ("unknown-error-code-then-close", [a, b], P + e(77, "fatal after all"), True),
        ("fatal-error-answers-its-request", [a, b], P + e(INVALID_UTF8, "x") + t(TEXT, b"B"), False),
        ("idle-timeout-answers-no-request", [a], P + e(IDLE_TIMEOUT, "no complete frame within 300 s"), False),
        ("busy-answers-no-request", [a], P + e(BUSY, "server is at its connection limit of 1; try again later"), False),
        ("unsupported-version-answers-no-request", [a], P + e(UNSUPPORTED_VERSION), False),
        ("short-error", [a], P + t(ERROR, b"\x00") + t(TEXT, b"A"), False),
        ("empty-error", [a], P + t(ERROR), False),
        ("wrong-magic", [a], b"\xc0UPCASF\x01" + t(TEXT, b"A"), False),
        ("wrong-version", [a], PREFACE_MAGIC + b"\x02" + t(TEXT, b"A"), False),
        ("extra-reply-after-the-last", [a], P + t(TEXT, b"A") + t(TEXT, b"extra"), False),
        ("reserved-flag-bit", [a], P + t(TEXT, b"A", 0x02), False),
        ("more-on-pong", [(PING, 0, b"")], P + t(PONG, b"", MORE), False),
        ("more-on-error", [a], P + t(ERROR, error_data(UNEXPECTED_TYPE, ""), flags=MORE), False),
        ("ping-from-server", [a], P + t(PING) + t(TEXT, b"A"), False),
        ("unknown-type-from-server", [a], P + t(0x07) + t(TEXT, b"A"), False),
        ("wrong-reply-type", [a], P + t(BYTES, b"A"), False),
        ("more-not-mirrored", [a], P + t(TEXT, b"A", MORE), False),
        ("reply-with-nothing-waiting", [], P + t(TEXT, b"A"), False),
        ("text-reply-not-utf8", [a], P + t(TEXT, b"A\xff"), False),
        ("text-reply-over-limit-from-header-alone", [(TEXT, 0, b"ab")], P + t(TEXT, length=16), False),
        ("bytes-reply-longer-than-request", [(BYTES, 0, b"ab")], P + t(BYTES, b"ABC"), False),
        ("close-with-reply-due", [a], P, True),
        ("close-mid-frame", [a], P + t(TEXT, b"A")[:20], True),
        ("close-before-preface", [a], b"", True),
    ]


def client_json():
    vectors = []
    for name, requests, stream, eof in client_cases():
        model = ClientModel(requests)
        model.feed(stream)
        if eof:
            model.eof()
        vectors.append({
            "name": name,
            "requests": [{"type": ftype, "flags": flags, "data_hex": data.hex()} for ftype, flags, data in requests],
            "server_hex": stream.hex(),
            "eof": eof,
            "events": model.events,
            "closes": model.closed,
        })
    return {
        "description": "UPCASE/1 client vectors: the requests a client sent, the server's byte stream "
                       "(and whether it then closes), and what a conforming client reports, however the "
                       "stream is split into reads. See README.md.",
        "vectors": vectors,
    }


# ---------------------------------------------------------------------------
# datagram.json: a model of the server's answer to one UDP datagram (SPEC §8).

MAX_UDP_PAYLOAD = 65507


def datagram_error(datagram, addresses, code, message):
    """Preface + ERROR, its message cut so the reply stays within 3 × the
    datagram (§8.4); None when not even the code fits."""
    limit = 3 * len(datagram)
    text = message.encode("utf-8")
    if 8 + HEADER_LEN + 2 + len(text) > limit:
        if limit < 8 + HEADER_LEN + 2:
            return None
        text = text[:limit - (8 + HEADER_LEN + 2)]
        while valid_up_to(text) is not None:
            text = text[:-1]
    return PREFACE + frame(ERROR, struct.pack(">H", code) + text, addresses[0], addresses[1])


def datagram_reply(datagram, mode, raw_case, max_frame, local, peer):
    """The reply datagram, or None for no reply."""
    framed = mode != "raw" and len(datagram) >= 8 and datagram[:7] == PREFACE_MAGIC
    if not framed:
        if mode == "framed":
            return None
        out = ascii_upper(datagram) if raw_case == "ascii" else lossless(datagram)
        return out if len(out) <= MAX_UDP_PAYLOAD else None
    local_b, peer_b = addr(local), addr(peer)
    if datagram[7] != 1:
        return datagram_error(datagram, (local_b, peer_b), UNSUPPORTED_VERSION,
                              f"unsupported version {datagram[7]}; this server speaks version 1")
    rest = datagram[8:]
    if len(rest) < HEADER_LEN:
        return datagram_error(datagram, (local_b, peer_b), MALFORMED, "datagram ends inside the frame header")
    src, dst = rest[0:18], rest[18:36]
    ftype, flags = rest[36], rest[37]
    (length,) = struct.unpack(">I", rest[38:42])
    data = rest[HEADER_LEN:]
    addresses = (dst if dst != UNSPECIFIED else local_b, src if src != UNSPECIFIED else peer_b)
    def error(code, message):
        return datagram_error(datagram, addresses, code, message)
    if length > max_frame:
        return error(FRAME_TOO_LARGE, f"frame length {length} exceeds the limit of {max_frame} bytes")
    if length != len(data):
        return error(MALFORMED, f"frame length {length} does not match the {len(data)} data bytes in the datagram")
    if flags & 0xFE:
        return error(MALFORMED, "reserved flag bits set")
    if flags & MORE and ftype not in (TEXT, BYTES):
        return error(MALFORMED, "MORE set on a frame that is not TEXT or BYTES")
    if ftype not in TYPE_NAMES:
        return error(UNKNOWN_TYPE, f"unknown frame type 0x{ftype:02x}")
    if ftype in (PONG, ERROR):
        return error(UNEXPECTED_TYPE, f"a client may not send {type_name(ftype)} frames")
    if flags & MORE:
        return error(MALFORMED, "MORE set on a frame in a datagram")
    if ftype == TEXT:
        bad = valid_up_to(data)
        if bad is not None:
            return error(INVALID_UTF8, f"invalid UTF-8 at byte {bad} of the message")
        out = upper(data.decode("utf-8")).encode("utf-8")
        if 8 + HEADER_LEN + len(out) > MAX_UDP_PAYLOAD:
            return error(FRAME_TOO_LARGE, f"the upper case of this {length}-byte TEXT is {len(out)} bytes, "
                                          f"over the {MAX_UDP_PAYLOAD - 8 - HEADER_LEN} a reply datagram can carry")
        return PREFACE + frame(TEXT, out, *addresses)
    if ftype == BYTES:
        return PREFACE + frame(BYTES, ascii_upper(data), *addresses)
    if ftype == PING:
        return PREFACE + frame(PONG, data, *addresses)
    return PREFACE + frame(BYE, b"", *addresses)


def datagram_cases():
    """(name, server overrides, datagram)."""
    P = PREFACE
    big = "ΐ".encode() * 11000  # 22,000 bytes whose upper case is 66,000
    return [
        ("raw-hello", {}, b"hello\n"),
        ("raw-empty", {}, b""),
        ("raw-invalid-and-incomplete-copied", {}, b"caf\xc3\xa9 \xff ok \xe2\x82"),
        ("raw-ascii-option", {"raw_case": "ascii"}, "straße abc".encode()),
        ("raw-magic-without-version-is-raw", {}, PREFACE_MAGIC),
        ("raw-only-server-echoes-a-preface", {"mode": "raw"}, P + t(TEXT, b"hi")),
        ("framed-only-server-drops-raw", {"mode": "framed"}, b"hello"),
        ("text", {}, P + t(TEXT, "straße".encode())),
        ("text-addressed", {}, P + t(TEXT, b"hi", **C2S)),
        ("text-empty", {}, P + t(TEXT)),
        ("bytes", {}, P + t(BYTES, b"ab\xff")),
        ("ping", {}, P + t(PING, b"\x00p", src="[2001:db8::2]:5")),
        ("bye", {}, P + t(BYE, b"reason")),
        ("unsupported-version-message-cut", {}, PREFACE_MAGIC + b"\x02" + b"0123456789"),
        ("unsupported-version-no-reply-for-8-bytes", {}, PREFACE_MAGIC + b"\xff"),
        ("bare-preface-no-reply", {}, P),
        ("header-short-message-cut", {}, P + bytes(21)),
        ("header-short-whole-message", {}, P + bytes(41)),
        ("frame-too-large", {"max_frame": 4}, P + t(TEXT, b"hello", **C2S)),
        ("length-mismatch-short", {}, P + t(TEXT, b"abc", length=4)),
        ("length-mismatch-long", {}, P + t(TEXT, b"abc", length=2)),
        ("reserved-flag", {}, P + t(TEXT, b"a", 0x02)),
        ("more-on-ping", {}, P + t(PING, b"", MORE)),
        ("unknown-type", {}, P + t(0x07, b"?")),
        ("unexpected-pong", {}, P + t(PONG)),
        ("more-in-a-datagram", {}, P + t(TEXT, b"half", MORE)),
        ("invalid-utf8", {}, P + t(TEXT, b"ab\xffc")),
        ("incomplete-utf8-at-end", {}, P + t(TEXT, b"caf\xc3")),
        ("text-reply-too-large-for-a-datagram", {}, P + t(TEXT, big)),
    ]


def datagram_json():
    vectors = []
    for name, overrides, datagram in datagram_cases():
        server = {"mode": "auto", "raw_case": "unicode", "max_frame": 1048576, "local": LOCAL, "peer": PEER}
        server.update(overrides)
        reply = datagram_reply(datagram, **server)
        assert reply is None or len(reply) <= 3 * max(len(datagram), 1), f"{name}: over 3 × the datagram"
        vectors.append({
            "name": name,
            "server": server,
            "datagram_hex": datagram.hex(),
            "reply_hex": None if reply is None else reply.hex(),
        })
    return {
        "description": "UPCASE/1 UDP: one datagram to the server and its reply datagram (null: none). "
                       "See README.md.",
        "vectors": vectors,
    }


# ---------------------------------------------------------------------------
# Output.

def render(payload):
    """JSON with a header, one vector per line (stable, diff-friendly)."""
    header = {"generator": GENERATOR, "unicode_version_of_generator": unicodedata.unidata_version}
    lines = ["{"]
    items = list(header.items()) + list(payload.items())
    for index, (key, value) in enumerate(items):
        comma = "," if index + 1 < len(items) else ""
        if isinstance(value, list):
            lines.append(f"  {json.dumps(key)}: [")
            for i, item in enumerate(value):
                sep = "," if i + 1 < len(value) else ""
                lines.append("    " + json.dumps(item, ensure_ascii=False) + sep)
            lines.append(f"  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


FILES = {"frames.json": frames_json, "transform.json": transform_json, "transcripts.json": transcripts_json,
         "client.json": client_json, "datagram.json": datagram_json}


def main(argv):
    check = "--check" in argv[1:]
    stale = []
    for filename, build in FILES.items():
        content = build()
        for key, value in content.items():
            if isinstance(value, list):
                names = [vector["name"] for vector in value]
                repeated = sorted({name for name in names if names.count(name) > 1})
                assert not repeated, f"{filename} {key}: names not unique: {repeated[:5]}"
        text = render(content)
        path = HERE / filename
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(filename)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run `python3 {GENERATOR}` and commit the result "
              f"(generator Unicode {unicodedata.unidata_version})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
