"""What every hostile-load script shares: the server under test, its
memory and CPU from /proc, UPCASE/1 frames, a hard cap on run time, and
the summary line.

A script either attaches to a running server (`--addr 127.0.0.1:PORT --pid
PID`, as run.sh does) or starts its own (`--upcase PATH`, default
target/release/upcase) and kills it when it ends, whatever happens.
Python 3 standard library only; every address is in 127.0.0.0/8.
"""

import argparse
import json
import os
import resource
import select
import shlex
import signal
import socket
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ATTACKER = "127.0.0.1"
CLIENT = "127.0.0.2"

PREFACE = b"\xc0UPCASE\x01"
HEADER_LEN = 42
TEXT, BYTES, ERROR = 1, 2, 6
ERROR_NAMES = {1: "MALFORMED", 3: "FRAME_TOO_LARGE", 8: "IDLE_TIMEOUT", 9: "BUSY"}
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


class OutOfTime(Exception):
    """The script's own time cap ran out."""


def raise_fd_limit():
    """Raise the soft limit on open files to the hard limit (20,000 here):
    the attacks hold thousands of sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cap_runtime(seconds):
    """Raise OutOfTime in the main thread after `seconds`, so that `finally`
    blocks still kill what the script started."""

    def expire(_signo, _frame):
        raise OutOfTime(f"the script's {seconds} s cap ran out")

    def terminated(_signo, _frame):
        raise OutOfTime("terminated")

    signal.signal(signal.SIGALRM, expire)
    signal.alarm(int(seconds))
    # SIGTERM (from run.sh's `timeout`) also ends the script through `finally`.
    signal.signal(signal.SIGTERM, terminated)


def parser(description):
    """The arguments every script takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--addr", help="a running server, 127.0.0.1:PORT (needs --pid)")
    p.add_argument("--pid", type=int, help="its process id, for /proc")
    p.add_argument(
        "--upcase",
        default=os.path.join(ROOT, "target/release/upcase"),
        help="start this binary with `serve --listen 127.0.0.1:0` (when --addr is not given)",
    )
    p.add_argument(
        "--serve-args", default="", help="more arguments for the server it starts, e.g. '--max-connections 16000'"
    )
    p.add_argument("--json", action="store_true", help="print only the result as one JSON object")
    return p


class Server:
    """The server under test: attached to, or started and later killed
    (with `extra` arguments after --serve-args, its stderr to `stderr`)."""

    def __init__(self, args, extra=(), stderr=subprocess.DEVNULL):
        self.process = None
        if args.addr:
            if not args.pid:
                sys.exit("--addr needs --pid (the scripts read the server's /proc)")
            host, port = args.addr.rsplit(":", 1)
            self.host, self.port, self.pid = host, int(port), args.pid
            return
        self.process = subprocess.Popen(
            [args.upcase, "serve", "--listen", "127.0.0.1:0", *shlex.split(args.serve_args), *extra],
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        line = self.process.stdout.readline().decode()
        self.host, self.port = parse_listening_line(line)
        self.pid = self.process.pid

    @property
    def addr(self):
        return (self.host, self.port)

    def alive(self):
        return os.path.exists(f"/proc/{self.pid}")

    def status_kib(self, field):
        """VmRSS, VmHWM… from /proc/PID/status, in KiB."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def cpu_seconds(self):
        """User + system CPU time so far, from /proc/PID/stat."""
        with open(f"/proc/{self.pid}/stat") as stat:
            # The command name may hold spaces: fields count from after ')'.
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def threads(self):
        return self.status_kib("Threads")

    def close(self):
        if self.process is None:
            return
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()


def parse_listening_line(line):
    """`upcase listening on tcp 127.0.0.1:PORT, udp 127.0.0.1:PORT` → host, port."""
    if "listening on " not in line:
        raise SystemExit(f"the server printed no listening line, but {line!r}")
    first = line.split("listening on ", 1)[1].split(",")[0].split()[-1]
    host, port = first.rsplit(":", 1)
    return host, int(port)


def frame(frame_type, data, flags=0):
    """One frame with unspecified (all-zero) addresses."""
    return bytes(36) + struct.pack(">BBI", frame_type, flags, len(data)) + data


def read_frame(sock, deadline):
    """Read one frame from a blocking socket: (type, data). Raises
    TimeoutError after `deadline` and ConnectionError when the server closes."""
    header = read_exact(sock, HEADER_LEN, deadline)
    frame_type, _flags, length = struct.unpack(">BBI", header[36:])
    return frame_type, read_exact(sock, length, deadline)


def read_exact(sock, n, deadline):
    chunks, got = [], 0
    while got < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no reply in time")
        sock.settimeout(left)
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def error_code(data):
    return struct.unpack(">H", data[:2])[0] if len(data) >= 2 else None


class WellBehaved:
    """A framed client bound to 127.0.0.2 that times round trips of one
    small TEXT frame over one connection (after `header`, e.g. a PROXY
    header, when given)."""

    REQUEST = "well-behaved client, straße ΐ ".encode()

    def __init__(self, server, timeout=5.0, header=b""):
        self.sock = connect_from(CLIENT, server.addr, timeout)
        self.sock.sendall(header + PREFACE)
        self.preface_seen = False
        self.expected = self.REQUEST.decode().upper().encode()

    def round_trip(self, timeout=5.0):
        """Seconds for one request and its right reply."""
        start = time.monotonic()
        deadline = start + timeout
        self.sock.sendall(frame(TEXT, self.REQUEST))
        if not self.preface_seen:
            if read_exact(self.sock, len(PREFACE), deadline) != PREFACE:
                raise ConnectionError("no UPCASE/1 preface")
            self.preface_seen = True
        frame_type, data = read_frame(self.sock, deadline)
        if frame_type == ERROR:
            code = error_code(data)
            raise ConnectionError(f"ERROR {ERROR_NAMES.get(code, code)}")
        if frame_type != TEXT or data != self.expected:
            raise ConnectionError(f"wrong reply: type {frame_type}, {data[:40]!r}")
        return time.monotonic() - start

    def close(self):
        self.sock.close()


def tcp_socket_from(source):
    """A TCP socket bound to address `source` with its port left to connect():
    bind() alone would take a port for this socket only, and runs out near
    14,600 connections; IP_BIND_ADDRESS_NO_PORT lets connect() share ports
    among different destinations, as an unbound socket does."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((source, 0))
    return sock


def connect_from(source, addr, timeout):
    sock = tcp_socket_from(source)
    sock.settimeout(timeout)
    try:
        sock.connect(addr)
    except BaseException:
        sock.close()
        raise
    return sock


def one_request(server, timeout, header=b""):
    """A fresh connection from 127.0.0.2 with one framed request (after
    `header`): None when served right, else why not."""
    client = None
    try:
        client = WellBehaved(server, timeout, header)
        client.round_trip(timeout)
        return None
    except TimeoutError:
        return "timeout"
    except ConnectionError as error:
        return str(error)[:60]
    except OSError as error:
        return f"{type(error).__name__}: {error}"[:60]
    finally:
        if client is not None:
            client.close()


def open_many(addr, count, source, deadline, window=256):
    """Open `count` non-blocking connections from `source`, at most `window`
    handshakes at a time; stop at `deadline`. Returns (sockets, failures)."""
    poller = select.epoll()
    connecting, connected, failures = {}, [], 0
    try:
        while len(connected) < count and time.monotonic() < deadline:
            while len(connecting) < window and len(connected) + len(connecting) < count:
                sock = tcp_socket_from(source)
                sock.setblocking(False)
                sock.connect_ex(addr)
                connecting[sock.fileno()] = sock
                poller.register(sock.fileno(), select.EPOLLOUT)
            for fd, _ in poller.poll(0.05):
                sock = connecting.pop(fd)
                poller.unregister(fd)
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    failures += 1
                    sock.close()
                else:
                    connected.append(sock)
    finally:
        for sock in connecting.values():
            sock.close()
        poller.close()
    return connected, failures


def quantile(values, q):
    """The q-quantile (nearest rank) of `values`, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))]


def ms(seconds):
    return None if seconds is None else round(seconds * 1000, 2)


def load_line():
    with open("/proc/loadavg") as loadavg:
        return "load average " + " ".join(loadavg.read().split()[:3])


def finish(args, name, result, goals):
    """Print the result: a table of `goals` (label, measured, baseline,
    target, met) and a summary line, or one JSON object with --json."""
    result = {"script": name, **result, "goals": [
        {"goal": label, "measured": measured, "baseline": baseline, "target": target, "met": met}
        for label, measured, baseline, target, met in goals
    ], "load": load_line()}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{name}: {result['load']} (2 shared cores: numbers are noisy)")
    print(f"  {'goal':<44} {'measured':>14} {'baseline':>14}  target")
    for g in result["goals"]:
        verdict = "met" if g["met"] else "MISSED"
        print(f"  {g['goal']:<44} {fmt(g['measured']):>14} {fmt(g['baseline']):>14}  {g['target']} {verdict}")
    for key, value in result.items():
        if key not in ("script", "goals", "load"):
            print(f"  {key}: {value}")
    met = sum(g["met"] for g in result["goals"])
    print(f"SUMMARY {name}: {met}/{len(result['goals'])} goals met")


def fmt(value):
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)
