#!/usr/bin/env python3
"""A small UPCASE/1 client that follows the `upcase conform --client`
contract, with switchable bugs (`--bug NAME`, repeatable) so that
tests/conform_client.rs can check that each client case catches one.

    client.py [--bug NAME]... [--bytes] [--max-frame N] [--timeout SECS] [--udp] HOST:PORT

One request at a time: each stdin line is sent (in fragments of at most
--max-frame bytes, default 65,536, SPEC.md §3.4) and its reply printed
before the next line is read; with --udp, each line is one datagram (the
preface and one frame, SPEC.md §8.2). Exit 0 after a normal end, 1 on a
failure.
"""

import argparse
import ipaddress
import socket
import struct
import sys

PREFACE = b"\xc0UPCASE\x01"
TEXT, BYTES, PING, PONG, BYE, ERROR = 1, 2, 3, 4, 5, 6
KNOWN = {TEXT, BYTES, PING, PONG, BYE, ERROR}
NO_FRAME = {2, 8, 9}  # UNSUPPORTED_VERSION, IDLE_TIMEOUT, BUSY (§6.6)
FATAL = {1, 2, 3, 4, 7, 8, 9}
LIMIT = 1 << 20

BUGS = {
    "no-preface", "no-preface-check", "magic-only", "no-probe", "unknown-code-fatal",
    "ignore-reserved", "accept-ping", "accept-more-on-control", "skip-unknown-type",
    "short-error-skipped", "swap-addresses", "ipv4-compatible", "never-clear-more",
    "no-reply-timeout", "no-fragmenting", "limit-is-request-length", "limit-after-data",
    "no-type-check", "no-more-check", "no-utf8-check", "bytes-length-unchecked",
    "skip-until-bye", "sends-error-on-failure", "exit-zero-on-failure", "bye-data-is-fault",
    "server-bye-is-normal", "idle-timeout-is-a-reply", "no-bye", "ping-after-bye",
    "short-timeout", "one-read-preface", "one-read-frame", "no-join", "reject-reply-addresses",
    "udp-no-preface", "udp-no-preface-check", "udp-error-is-fatal",
}


class Failure(Exception):
    """The server broke the protocol or the connection was lost."""


class ServerBye(Exception):
    """The server said BYE."""


def addr18(host, port, compat=False):
    ip = ipaddress.ip_address(host)
    if ip.version == 4:
        ip = ipaddress.IPv6Address((b"\0" * 12 if compat else b"\0" * 10 + b"\xff\xff") + ip.packed)
    return ip.packed + struct.pack(">H", port)


class Conn:
    def __init__(self, args):
        self.args = args
        self.bugs = set(args.bug)
        host, port = args.addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=args.timeout)
        timeout = args.timeout
        if "short-timeout" in self.bugs:
            timeout = 0.3
        self.sock.settimeout(None if "no-reply-timeout" in self.bugs else timeout)
        self.buf = b""
        self.src = self.dst = b"\0" * 18
        if "swap-addresses" in self.bugs:
            self.src = addr18(*self.sock.getpeername()[:2])
            self.dst = addr18(*self.sock.getsockname()[:2])
        elif "ipv4-compatible" in self.bugs:
            self.src = addr18(*self.sock.getsockname()[:2], compat=True)
        elif "reject-reply-addresses" in self.bugs:
            self.src = addr18(*self.sock.getsockname()[:2])
            self.dst = addr18(*self.sock.getpeername()[:2])

    def has(self, bug):
        return bug in self.bugs

    def send_frame(self, ftype, data=b"", more=False, src=None, dst=None):
        header = (src or self.src) + (dst or self.dst)
        header += struct.pack(">BBI", ftype, 1 if more else 0, len(data))
        self.sock.sendall(header + data)

    def recv(self, n):
        try:
            while len(self.buf) < n:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise Failure("the server closed the connection")
                self.buf += chunk
                if self.has("one-read-frame") and len(self.buf) < n:
                    raise Failure("short read")
        except (socket.timeout, TimeoutError):
            raise Failure("no answer within the timeout")
        except ConnectionError as error:
            raise Failure(str(error))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def start(self):
        if not self.has("no-preface"):
            self.sock.sendall(PREFACE)
        if not self.has("no-probe"):
            self.send_frame(PING, src=b"\0" * 18, dst=b"\0" * 18)
        if self.has("one-read-preface"):
            first = self.sock.recv(8)
            if len(first) < 8:
                raise Failure("short preface")
            self.buf = first[8:]
            preface = first[:8]
        else:
            preface = self.recv(8)
        if not self.has("no-preface-check"):
            if preface[:7] != PREFACE[:7] or (preface[7] != 1 and not self.has("magic-only")):
                raise Failure("bad preface")
        if not self.has("no-probe"):
            ftype, _, data = self.frame(0)
            if ftype != PONG:
                raise Failure("the probe got no PONG: a raw server?")

    def frame(self, limit):
        """The next frame; `limit` is the most data its reply may carry."""
        while True:
            header = self.recv(42)
            ftype, flags, length = struct.unpack(">BBI", header[36:42])
            if self.has("reject-reply-addresses") and header[18:36] != self.src:
                raise Failure("reply to another address")
            if flags & 0xFE and not self.has("ignore-reserved"):
                self.fail("reserved flag bits")
            if flags & 1 and ftype not in (TEXT, BYTES) and not self.has("accept-more-on-control"):
                self.fail("MORE on a control frame")
            if ftype == PING and self.has("accept-ping"):
                self.recv(length)
                continue
            if ftype not in KNOWN and self.has("skip-unknown-type"):
                self.recv(length)
                continue
            if ftype == PING or ftype not in KNOWN:
                self.fail(f"the server sent type {ftype}")
            frame_limit = LIMIT if ftype in (ERROR, BYE) else limit
            if self.has("limit-after-data"):
                data = self.recv(length)
                if length > frame_limit:
                    raise Failure("frame over the limit")
            else:
                if length > frame_limit:
                    raise Failure("frame over the limit")
                data = self.recv(length)
            return ftype, flags, data

    def fail(self, message):
        if self.has("sends-error-on-failure"):
            try:
                self.send_frame(ERROR, struct.pack(">H", 1) + b"you broke it")
            except OSError:
                pass
        raise Failure(message)

    def request(self, ftype, data):
        """Send one request, return its reply's data or ('ERROR', code)."""
        size = len(data) if self.has("no-fragmenting") else self.args.max_frame
        pieces = [data[i:i + size] for i in range(0, len(data), size)] or [b""]
        out = []
        for index, piece in enumerate(pieces):
            more = index + 1 < len(pieces) or self.has("never-clear-more")
            self.send_frame(ftype, piece, more)
            if ftype == TEXT:
                limit = len(piece) if self.has("limit-is-request-length") else 3 * (len(piece) + 3)
            else:
                limit = LIMIT if self.has("bytes-length-unchecked") else len(piece)
            got = self.reply(ftype, more, limit)
            if isinstance(got, tuple):
                return got
            if self.has("no-join"):
                print(got.decode("utf-8", "replace"), flush=True)
            out.append(got)
        return b"".join(out)

    def reply(self, ftype, more, limit):
        rtype, flags, data = self.frame(limit)
        if rtype == ERROR:
            if len(data) < 2:
                if self.has("short-error-skipped"):
                    return self.reply(ftype, more, limit)
                self.fail("short ERROR")
            code = struct.unpack(">H", data[:2])[0]
            if code in NO_FRAME and not self.has("idle-timeout-is-a-reply"):
                raise Failure(f"server error {code}")
            if code in FATAL and code not in NO_FRAME:
                raise Failure(f"server error {code}")
            if code not in FATAL and code not in (5, 6) and self.has("unknown-code-fatal"):
                self.fail(f"unknown code {code}")
            return ("ERROR", code)
        if rtype == BYE:
            raise ServerBye()
        if rtype != ftype and not self.has("no-type-check"):
            self.fail("wrong reply type")
        if bool(flags & 1) != more and not self.has("no-more-check"):
            self.fail("MORE not mirrored")
        if rtype == TEXT and not self.has("no-utf8-check"):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                self.fail("TEXT reply not UTF-8")
        return data

    def bye(self):
        if self.has("no-bye"):
            return
        self.send_frame(BYE)
        if self.has("ping-after-bye"):
            self.send_frame(PING)
        while True:
            rtype, _, data = self.frame(LIMIT)
            if rtype == BYE:
                if data and self.has("bye-data-is-fault"):
                    raise Failure("BYE with data")
                return
            if not self.has("skip-until-bye"):
                self.fail("expected BYE")


def udp_session(args, bugs):
    """SPEC §8: one datagram per line, one reply datagram each."""
    host, port = args.addr.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(None if "no-reply-timeout" in bugs else args.timeout)
    ftype = BYTES if args.bytes else TEXT
    for line in sys.stdin.buffer:
        line = line.rstrip(b"\r\n")
        if line == b"exit":
            break
        header = b"\0" * 36 + struct.pack(">BBI", ftype, 0, len(line))
        preface = b"" if "udp-no-preface" in bugs else PREFACE
        sock.sendto(preface + header + line, (host, int(port)))
        try:
            reply = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            raise Failure("no reply datagram")
        if reply[:8] != PREFACE and "udp-no-preface-check" not in bugs:
            raise Failure("the reply datagram has no preface")
        if len(reply) < 50:
            print(reply.decode("utf-8", "replace"), flush=True)
            continue
        rtype, flags, length = struct.unpack(">BBI", reply[44:50])
        data = reply[50:]
        if flags or len(data) != length:
            raise Failure("malformed reply datagram")
        if rtype == ERROR:
            if len(data) < 2 or "udp-error-is-fatal" in bugs:
                raise Failure("ERROR reply")
            print(f"ERROR {struct.unpack('>H', data[:2])[0]}", flush=True)
            continue
        if rtype != ftype and "no-type-check" not in bugs:
            raise Failure("wrong reply type")
        print(data.decode("utf-8", "replace"), flush=True)
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bug", action="append", default=[], choices=sorted(BUGS))
    parser.add_argument("--bytes", action="store_true")
    parser.add_argument("--max-frame", type=int, default=65536)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--udp", action="store_true")
    parser.add_argument("addr")
    args = parser.parse_args()
    failed = 0 if "exit-zero-on-failure" in args.bug else 1
    try:
        if args.udp:
            return udp_session(args, set(args.bug))
        conn = Conn(args)
        conn.start()
        for line in sys.stdin.buffer:
            line = line.rstrip(b"\r\n")
            if line == b"exit":
                break
            try:
                got = conn.request(BYTES if args.bytes else TEXT, line)
            except ServerBye:
                if conn.has("server-bye-is-normal"):
                    return 0
                raise Failure("the server said BYE with a request waiting")
            if isinstance(got, tuple):
                print(f"ERROR {got[1]}", flush=True)
            elif not conn.has("no-join"):
                print(got.decode("utf-8", "replace"), flush=True)
        try:
            conn.bye()
        except ServerBye:
            pass
        return 0
    except (Failure, OSError) as error:
        print(f"client.py: {error}", file=sys.stderr)
        return failed


if __name__ == "__main__":
    sys.exit(main())
