#!/usr/bin/env python3
"""Issue 19: `upcase conform`, `bench` and `client` against malicious
servers, each attack beside the same command against a well-behaved
`upcase serve` (the baseline, measured in the same run).

For every row: the tool's wall time, its peak RSS (/usr/bin/time's %M,
the "Maximum resident set size" of -v), its exit status, and what it
said last. The
goals: RSS ≤ 64 MiB over the baseline, a trickle ends within its deadline
+ 1 s, http.server or a silent listener is judged within 10 s.

    python3 benches/hostile/tools_under_attack.py                  # target/release/upcase
    python3 benches/hostile/tools_under_attack.py --upcase /tmp/old/upcase --cap 20

Every tool run is capped (--cap seconds, killed past it, and an address
space of 1 GiB, so an old binary that grows without bound is stopped
instead of eating the machine's memory: its allocation fails and it
aborts, status 134). Python 3 standard library only;
every socket on 127.0.0.1. Prints one table; --json writes the rows.
"""

import argparse
import http.server
import json
import os
import resource
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREFACE = b"\xc0UPCASE\x01"
HEADER_LEN = 42
TEXT, ERROR = 1, 6
ADDRESS_SPACE = 1 << 30


def header(frame_type, length):
    """A frame header with unspecified addresses (SPEC.md §3.1)."""
    unspecified = bytes(18)
    return unspecified + unspecified + bytes([frame_type, 0]) + struct.pack(">I", length)


class Listener:
    """A TCP listener on 127.0.0.1 whose every connection runs `handle`."""

    def __init__(self, handle, accept=True):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.stop = threading.Event()
        if accept:
            threading.Thread(target=self._accept, args=(handle,), daemon=True).start()

    def _accept(self, handle):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(handle, conn), daemon=True).start()

    def _run(self, handle, conn):
        try:
            conn.settimeout(60)
            handle(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()


def read_some(conn):
    data = conn.recv(65536)
    if not data:
        raise OSError("closed")
    return data


def endless(conn, stop, first):
    conn.sendall(first)
    chunk = b"A" * 65536
    while not stop.is_set():
        conn.sendall(chunk)


def huge_header(conn, stop):
    """The server's preface, then a TEXT header announcing 0xFFFFFFF0 bytes, then data."""
    read_some(conn)
    endless(conn, stop, PREFACE + header(TEXT, 0xFFFFFFF0))


def endless_line(conn, stop):
    """Bytes without a newline, without end."""
    read_some(conn)
    endless(conn, stop, b"")


def silent(conn, stop):
    while not stop.is_set():
        read_some(conn)


def trickle_from(upstream, gap, prefix=b""):
    """Relay to a real server, its replies sent one byte every `gap` s
    (after `prefix`, sent at once)."""

    def handle(conn, stop):
        real = socket.create_connection(upstream)
        threading.Thread(target=pump, args=(conn, real, stop), daemon=True).start()
        conn.sendall(prefix)
        while not stop.is_set():
            data = real.recv(65536)
            if not data:
                return
            for byte in data:
                if stop.is_set():
                    return
                conn.sendall(bytes([byte]))
                time.sleep(gap)

    return handle


def pump(src, dst, stop):
    try:
        while not stop.is_set():
            data = src.recv(65536)
            if not data:
                return
            dst.sendall(data)
    except OSError:
        pass


def trickled_error(conn, stop):
    """A valid ERROR of 1 MB, one byte a second."""
    read_some(conn)
    message = b"x" * 1_000_000
    frame = PREFACE + header(ERROR, 2 + len(message)) + struct.pack(">H", 5) + message
    for byte in frame:
        if stop.is_set():
            return
        conn.sendall(bytes([byte]))
        time.sleep(1)


def escapes_error(conn, stop):
    """To each request an ERROR whose message retitles the window and clears the screen."""
    data = b""
    while len(data) < len(PREFACE) + HEADER_LEN:
        data += read_some(conn)
    message = b"\x1b]0;owned\x07\x1b[2Jfake output"
    conn.sendall(PREFACE + header(ERROR, 2 + len(message)) + struct.pack(">H", 5) + message)
    time.sleep(1)


class HttpServer:
    """`python3 -m http.server` in a thread."""

    def __init__(self):
        handler = http.server.SimpleHTTPRequestHandler
        handler.log_message = lambda *args: None
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.addr = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class DuplicatingUdp:
    """Each datagram forwarded to a real server's UDP port; each reply sent twice."""

    def __init__(self, upstream):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.upstream = upstream
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        real = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        real.settimeout(2)
        while True:
            try:
                data, peer = self.sock.recvfrom(65536)
                real.sendto(data, self.upstream)
                reply, _ = real.recvfrom(65536)
            except OSError:
                continue
            self.sock.sendto(reply, peer)
            self.sock.sendto(reply, peer)

    def close(self):
        self.sock.close()


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run_tool(upcase, args, stdin, cap):
    """Run `upcase ARGS`: (wall s, peak RSS MiB, status, last line, killed)."""
    started = time.monotonic()
    measured = "/tmp/tools_under_attack.%d.time" % os.getpid()
    proc = subprocess.Popen(
        ["/usr/bin/time", "-o", measured, "-f", "%M"] + [upcase] + args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=limit_memory,
    )
    out = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)
    reader.start()
    try:
        proc.stdin.write(stdin)
        proc.stdin.close()
    except OSError:
        pass
    killed = False
    try:
        proc.wait(cap)
    except subprocess.TimeoutExpired:
        # Kill the tool, not /usr/bin/time, so that time still reports.
        subprocess.run(["pkill", "-KILL", "-P", str(proc.pid)], check=False)
        killed = True
        proc.wait()
    wall = time.monotonic() - started
    reader.join(5)
    with open(measured) as report:
        numbers = report.read().split()
    os.unlink(measured)
    rss_kib = int(numbers[-1]) if numbers and numbers[-1].isdigit() else 0
    text = out[0].decode("utf-8", "replace") if out else ""
    lines = [line for line in text.splitlines() if line.strip()]
    last = lines[-1][:110] if lines else ""
    code = proc.returncode
    raw_escape = "\x1b" in text
    return {
        "wall_s": round(wall, 2),
        "rss_mib": round(rss_kib / 1024, 1),
        "status": "killed at cap" if killed else code,
        "raw_escape_in_output": raw_escape,
        "last_line": last,
    }


def start_serve(upcase):
    proc = subprocess.Popen(
        [upcase, "serve", "--listen", "127.0.0.1:0", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline()
    addr = line.strip().removeprefix("upcase listening on ").split(", ")[0]
    addr = addr.removeprefix("tcp ")
    host, port = addr.rsplit(":", 1)
    return proc, addr, (host, int(port))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upcase", default=os.path.join(ROOT, "target/release/upcase"))
    parser.add_argument("--cap", type=float, default=40.0, help="seconds before a tool is killed")
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    serve, good, upstream = start_serve(args.upcase)
    made = []

    def listener(handle, accept=True):
        made.append(Listener(handle, accept))
        return made[-1].addr

    http_server = HttpServer()
    udp = DuplicatingUdp(upstream)
    line = b"a line of forty bytes, to take a while.\n"
    # (tool, attack, args with {} for the address, stdin, deadline note)
    rows = [
        ("conform", "baseline: upcase serve", ["conform", good], b""),
        ("conform", "header of 0xFFFFFFF0 bytes, then data", ["conform", listener(huge_header), "framed/5.1"], b""),
        ("conform", "raw reply without end", ["conform", listener(endless_line), "raw/2.1"], b""),
        ("conform", "right reply, 1 byte every 1.5 s", ["conform", listener(trickle_from(upstream, 1.5)), "framed/5.1/ascii"], b""),
        ("conform", "accepts, says nothing (whole suite)", ["conform", listener(silent)], b""),
        ("conform", "python http.server (whole suite)", ["conform", http_server.addr], b""),
        ("conform", "listener that never accepts (whole suite)", ["conform", listener(None, accept=False)], b""),
        ("bench", "baseline: upcase serve", ["bench", good, "--duration", "2", "--timeout", "2"], b""),
        ("bench", "raw line without end", ["bench", listener(endless_line), "--duration", "2", "--timeout", "2"], b""),
        ("bench", "raw reply, 1 byte/s", ["bench", listener(trickle_from(upstream, 1)), "--duration", "2", "--timeout", "2"], b""),
        ("bench", "framed reply, 1 byte/s", ["bench", listener(trickle_from(upstream, 1)), "--mode", "framed", "--duration", "2", "--timeout", "2"], b""),
        ("bench", "1 MiB header, then 1 byte/s", ["bench", listener(trickle_from(upstream, 1, PREFACE + header(TEXT, 1 << 20))), "--mode", "framed", "--duration", "2", "--timeout", "2"], b""),
        ("bench", "python http.server", ["bench", http_server.addr, "--duration", "2", "--timeout", "2"], b""),
        ("client", "baseline: upcase serve", ["client", "--timeout", "2", good], line),
        ("client", "valid 1 MB ERROR, 1 byte/s", ["client", "--timeout", "2", listener(trickled_error)], line),
        ("client", "right reply, 1 byte/s", ["client", "--timeout", "2", listener(trickle_from(upstream, 1))], line),
        ("client", "--raw, no newline ever", ["client", "--raw", "--timeout", "2", listener(endless_line)], line),
        ("client", "ERROR text with escapes", ["client", "--timeout", "2", listener(escapes_error)], line),
        ("client", "--udp, every reply twice", ["client", "--udp", udp.addr], b"one\ntwo\nthree\n"),
    ]
    results = []
    try:
        print(f"{args.upcase}; uptime: {os.popen('uptime').read().strip()}")
        print(f"{'tool':8} {'attack':42} {'wall s':>7} {'RSS MiB':>8} {'exit':>13}  last line")
        for tool, attack, tool_args, stdin in rows:
            result = run_tool(args.upcase, tool_args, stdin, args.cap)
            result.update(tool=tool, attack=attack)
            results.append(result)
            escape = " [RAW ESCAPE]" if result["raw_escape_in_output"] else ""
            print(
                f"{tool:8} {attack:42} {result['wall_s']:7.2f} {result['rss_mib']:8.1f} "
                f"{str(result['status']):>13}  {result['last_line']}{escape}",
                flush=True,
            )
    finally:
        for made_listener in made:
            made_listener.close()
        http_server.close()
        udp.close()
        serve.kill()
        serve.wait()
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)


if __name__ == "__main__":
    sys.exit(main())
