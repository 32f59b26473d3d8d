"""Issue 17, goal 1: the metrics endpoint cannot hurt the server.

Each attack of the issue on `--metrics`, from 127.0.0.1, one after the
other on one server, while two polite clients at 127.0.0.2 run beside it:
an UPCASE client (a round trip of a small TEXT frame on one connection,
and a fresh connection with one request, every 0.1 s) and a scraper (a
`GET /metrics` every 0.1 s, answered = a whole 200 within 5 s). Their
baseline is the same before any attack, in the same run. Beside each
attack: the server's threads, descriptors (/proc/PID/fd) and RSS.

  huge_content_length   GET /metrics announcing 1 TiB, then 2^64-1 (tiny_http
                        aborted the process on the first, killed /metrics on
                        the second)
  half_sent_620         620 connections each holding a half-sent request,
                        re-opened when the server closes them
  body_never_arrives    one POST announcing a body that never comes
  pipelined_4000        4,000 scrapes pipelined on one connection, never read
  headers_41mib         41 MiB of small request headers on one connection
  sigterm_open_request  SIGTERM while a half-sent request and one whose body
                        never comes are open: seconds until the process
                        exits (last: it ends the server)

Goals: the process survives; polite scrapes and fresh UPCASE connections
are all served during every attack; no thread per metrics connection;
at most 68 more descriptors (the endpoint's 64 connections and one being
refused, the polite clients' 3); RSS grows
by at most 16 MiB under the header flood; the process exits within 5 s
of one SIGTERM.

    python3 benches/hostile/metrics_attack.py [--addr 127.0.0.1:PORT --pid PID --metrics-addr 127.0.0.1:PORT] [--json]

Without --addr it starts `upcase serve --metrics 127.0.0.1:0` itself.
--only runs some of the attacks (against a server the first one would end).
Bounded: each attack lasts --attack s (default 6), the script at most --cap s.
"""

import os
import select
import signal
import socket
import threading
import time

import common

SCRAPE = b"GET /metrics HTTP/1.1\r\nHost: metrics\r\n\r\n"
HALF_SENT = b"GET /metrics HTTP/1.1\r\nHost: metrics\r\n"
# Descriptors an attack on the endpoint may add: its 64 connections and one
# being refused, and the polite clients' three sockets.
EXTRA_DESCRIPTORS = 64 + 1 + 3


def scrape(addr, timeout=5.0):
    """One polite scrape from 127.0.0.2: seconds until a whole 200 answer
    (as long as its Content-Length says) has arrived, or None."""
    start = time.monotonic()
    deadline = start + timeout
    sock = None
    try:
        sock = common.connect_from(common.CLIENT, addr, timeout)
        sock.sendall(SCRAPE)
        answer, length = b"", None
        while length is None or len(answer) < length:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                return None
            answer += chunk
            head, blank, _ = answer.partition(b"\r\n\r\n")
            if blank and length is None:
                if not head.startswith(b"HTTP/1.1 200"):
                    return None
                fields = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
                if not fields:
                    return None
                length = len(head) + 4 + int(fields[0].split(b":")[1])
        return time.monotonic() - start
    except OSError:
        return None
    finally:
        if sock is not None:
            sock.close()


def answer_to(addr, request, timeout=5.0):
    """Send `request` from 127.0.0.1 on a fresh connection; the status line
    of what comes back, or why nothing does."""
    sock = None
    try:
        sock = common.connect_from(common.ATTACKER, addr, timeout)
        try:
            sock.sendall(request)
        except OSError:
            pass
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n")[0].decode(errors="replace") or "closed without an answer"
    except OSError as error:
        return f"{type(error).__name__}: {error}"[:60]
    finally:
        if sock is not None:
            sock.close()


class Polite(threading.Thread):
    """The two polite clients, every 0.1 s until stopped: an UPCASE round
    trip on one connection, a fresh UPCASE connection, a scrape."""

    def __init__(self, server, metrics_addr):
        super().__init__(daemon=True)
        self.server, self.metrics_addr = server, metrics_addr
        self.stop = threading.Event()
        self.round_trips, self.round_trip_failures = [], 0
        self.fresh_tried, self.fresh_served = 0, 0
        self.scrapes, self.scrapes_failed = [], 0

    def run(self):
        client = None
        while not self.stop.is_set():
            try:
                if client is None:
                    client = common.WellBehaved(self.server, 5.0)
                self.round_trips.append(client.round_trip(5.0))
            except OSError:
                self.round_trip_failures += 1
                if client is not None:
                    client.close()
                client = None
            self.fresh_tried += 1
            self.fresh_served += common.one_request(self.server, 5.0) is None
            took = scrape(self.metrics_addr)
            if took is None:
                self.scrapes_failed += 1
            else:
                self.scrapes.append(took)
            self.stop.wait(0.1)
        if client is not None:
            client.close()

    def finish(self):
        self.stop.set()
        self.join()
        scrapes = len(self.scrapes) + self.scrapes_failed
        return {
            "upcase_p50_ms": common.ms(common.quantile(self.round_trips, 0.5)),
            "upcase_p99_ms": common.ms(common.quantile(self.round_trips, 0.99)),
            "upcase_failures": self.round_trip_failures,
            "fresh_served_pct": round(100 * self.fresh_served / max(1, self.fresh_tried), 1),
            "fresh_tried": self.fresh_tried,
            "scrapes_answered_pct": round(100 * len(self.scrapes) / max(1, scrapes), 1),
            "scrapes_tried": scrapes,
            "scrape_p99_ms": common.ms(common.quantile(self.scrapes, 0.99)),
        }


def descriptors(server):
    try:
        return len(os.listdir(f"/proc/{server.pid}/fd"))
    except OSError:
        return None


def exited(server):
    """Whether the server's process has ended (a zombie counts: its parent
    has not waited for it yet)."""
    try:
        with open(f"/proc/{server.pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


class Sampler(threading.Thread):
    """The server's peak threads, descriptors and RSS, every 0.1 s."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server = server
        self.stop = threading.Event()
        self.threads = self.fds = self.rss_kib = 0

    def run(self):
        while not self.stop.is_set() and not exited(self.server):
            try:
                self.threads = max(self.threads, self.server.threads())
                self.fds = max(self.fds, descriptors(self.server) or 0)
                self.rss_kib = max(self.rss_kib, self.server.status_kib("VmRSS"))
            except OSError:
                return
            self.stop.wait(0.1)

    def finish(self):
        self.stop.set()
        self.join()
        return {"peak_threads": self.threads, "peak_fds": self.fds, "peak_rss_mib": round(self.rss_kib / 1024, 1)}


def huge_content_length(maddr, seconds):
    statuses = []
    for length in (1 << 40, (1 << 64) - 1):
        request = f"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\nbody".encode()
        statuses.append(answer_to(maddr, request))
    time.sleep(seconds)
    return {"answers": statuses}


def half_sent(maddr, seconds, count=620):
    """`count` half-sent requests held open, each re-opened when the server
    closes it."""
    poller = select.epoll()
    socks = {}
    refused = reopened = 0

    def open_some(n):
        fresh, failures = common.open_many(maddr, n, common.ATTACKER, time.monotonic() + 2)
        for sock in fresh:
            try:
                sock.send(HALF_SENT)
            except OSError:
                sock.close()
                continue
            socks[sock.fileno()] = sock
            poller.register(sock.fileno(), select.EPOLLIN)
        return failures

    end = time.monotonic() + seconds
    try:
        open_some(count)
        while time.monotonic() < end:
            for fd, _ in poller.poll(0.05):
                sock = socks.pop(fd)
                poller.unregister(fd)
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                refused += data.startswith(b"HTTP/1.1 503")
                sock.close()
                reopened += 1
            if len(socks) < count:
                open_some(count - len(socks))
    finally:
        for sock in socks.values():
            sock.close()
        poller.close()
    return {"held_at_end": len(socks), "closed_by_server_and_reopened": reopened, "of_them_503": refused}


def body_never_arrives(maddr, seconds):
    sock = common.connect_from(common.ATTACKER, maddr, 5.0)
    try:
        sock.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        sock.settimeout(seconds)
        start = time.monotonic()
        try:
            first = sock.recv(4096).split(b"\r\n")[0].decode(errors="replace")
        except OSError:
            first = "no answer"
        answered_after = time.monotonic() - start
        time.sleep(max(0.0, seconds - answered_after))
        return {"answer": first, "answered_after_s": round(answered_after, 3)}
    finally:
        sock.close()


def pipelined(maddr, seconds, count=4000):
    sock = common.connect_from(common.ATTACKER, maddr, 5.0)
    try:
        sock.setblocking(False)
        data, sent = SCRAPE * count, 0
        end = time.monotonic() + seconds
        while time.monotonic() < end and sent < len(data):
            try:
                sent += sock.send(data[sent:])
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                break
        time.sleep(max(0.0, end - time.monotonic()))
        return {"pipelined_bytes_taken": sent, "of_requests": count}
    finally:
        sock.close()


def header_flood(maddr, seconds, server, mib=41):
    rss_before = server.status_kib("VmRSS")
    sock = common.connect_from(common.ATTACKER, maddr, 5.0)
    header = b"X-A: b\r\n" * 8192
    sent, total = 0, mib << 20
    try:
        sock.sendall(b"GET /metrics HTTP/1.1\r\n")
        sock.settimeout(seconds)
        end = time.monotonic() + seconds
        while sent < total and time.monotonic() < end:
            try:
                sock.sendall(header)
                sent += len(header)
            except OSError:
                break
        try:
            sock.settimeout(1.0)
            answer = sock.recv(4096).split(b"\r\n")[0].decode(errors="replace")
        except OSError as error:
            answer = f"{type(error).__name__}"
    finally:
        sock.close()
    time.sleep(1.0)
    return {
        "header_bytes_taken_mib": round(sent / (1 << 20), 2),
        "answer": answer,
        "rss_before_mib": round(rss_before / 1024, 1),
        "rss_after_mib": round(server.status_kib("VmRSS") / 1024, 1),
    }


def sigterm_open_request(maddr, server, limit=15.0):
    """SIGTERM while two requests are open, one half-sent and one whose
    announced body never comes: seconds until the process exits, or None
    after `limit`."""
    socks = [common.connect_from(common.ATTACKER, maddr, 5.0) for _ in range(2)]
    try:
        socks[0].sendall(HALF_SENT)
        socks[1].sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        time.sleep(0.5)
        start = time.monotonic()
        os.kill(server.pid, signal.SIGTERM)
        while time.monotonic() - start < limit:
            if exited(server):
                return round(time.monotonic() - start, 3)
            time.sleep(0.01)
        return None
    finally:
        for sock in socks:
            sock.close()


def main():
    p = common.parser(__doc__.split("\n")[0])
    p.add_argument("--metrics-addr", help="the running server's metrics address, 127.0.0.1:PORT (with --addr)")
    p.add_argument("--attack", type=float, default=6.0, help="seconds of each attack")
    p.add_argument("--cap", type=float, default=150.0)
    p.add_argument("--only", help="some of the attacks, comma-separated (e.g. half_sent_620,pipelined_4000)")
    args = p.parse_args()
    common.raise_fd_limit()
    common.cap_runtime(args.cap)
    if args.addr:
        if not args.metrics_addr:
            raise SystemExit("--addr needs --metrics-addr (start the server with --metrics 127.0.0.1:0)")
    else:
        args.serve_args += " --metrics 127.0.0.1:0"
    server = common.Server(args)
    try:
        if args.metrics_addr:
            host, port = args.metrics_addr.rsplit(":", 1)
        else:
            line = server.process.stdout.readline().decode()
            # upcase metrics on http://127.0.0.1:PORT/metrics
            host, port = line.split("http://", 1)[1].split("/", 1)[0].rsplit(":", 1)
        maddr = (host, int(port))
        run(args, server, maddr)
    finally:
        server.close()


def run(args, server, maddr):
    fds_before, threads_before = descriptors(server), server.threads()
    phases = {}

    def phase(name, attack):
        polite, sampler = Polite(server, maddr), Sampler(server)
        polite.start()
        sampler.start()
        try:
            detail = attack()
        finally:
            numbers = {**polite.finish(), **sampler.finish()}
        numbers["alive"] = not exited(server)
        phases[name] = {**numbers, **detail}
        return phases[name]

    baseline = phase("baseline", lambda: time.sleep(3.0) or {})
    seconds = args.attack
    attacks = [
        ("huge_content_length", lambda: huge_content_length(maddr, 2.0)),
        ("half_sent_620", lambda: half_sent(maddr, seconds)),
        ("body_never_arrives", lambda: body_never_arrives(maddr, seconds)),
        ("pipelined_4000", lambda: pipelined(maddr, seconds)),
        ("headers_41mib", lambda: header_flood(maddr, seconds, server)),
    ]
    if args.only:
        wanted = args.only.split(",")
        unknown = set(wanted) - {name for name, _ in attacks} - {"sigterm_open_request"}
        if unknown:
            raise SystemExit(f"no attack named {', '.join(sorted(unknown))}")
        attacks = [(name, attack) for name, attack in attacks if name in wanted]
    for name, attack in attacks:
        if exited(server):
            phases[name] = {"alive": False}
            continue
        phase(name, attack)
    signalled = not args.only or "sigterm_open_request" in args.only.split(",")
    exit_s = None if exited(server) or not signalled else sigterm_open_request(maddr, server)

    alive = all(p.get("alive") for p in phases.values())
    goals = [("process alive after every attack", "yes" if alive else "no", "yes", "yes", alive)]
    for name, _ in attacks:
        p = phases[name]
        goals.append((f"{name}: scrapes answered, %", p.get("scrapes_answered_pct"), baseline["scrapes_answered_pct"],
                      "100 %", p.get("scrapes_answered_pct") == 100.0))
        goals.append((f"{name}: fresh UPCASE served, %", p.get("fresh_served_pct"), baseline["fresh_served_pct"],
                      "100 %", p.get("fresh_served_pct") == 100.0))
    if "half_sent_620" in phases:
        half = phases["half_sent_620"]
        goals.append(("half_sent_620: server threads", half.get("peak_threads"), threads_before, "no more",
                      half.get("peak_threads") is not None and half["peak_threads"] <= threads_before))
        goals.append(("half_sent_620: server descriptors", half.get("peak_fds"), fds_before,
                      f"≤ +{EXTRA_DESCRIPTORS}",
                      half.get("peak_fds") is not None and half["peak_fds"] <= fds_before + EXTRA_DESCRIPTORS))
    if "headers_41mib" in phases:
        flood = phases["headers_41mib"]
        growth = None if "rss_before_mib" not in flood else round(flood["peak_rss_mib"] - flood["rss_before_mib"], 1)
        goals.append(("headers_41mib: RSS growth, MiB", growth, 0.0, "≤ 16 MiB",
                      growth is not None and growth <= 16))
    if signalled:
        goals.append(("sigterm_open_request: exit after one SIGTERM, s", exit_s, None, "≤ 5 s",
                      exit_s is not None and exit_s <= 5))
    result = {
        "phases": phases,
        "server_threads_before": threads_before,
        "server_fds_before": fds_before,
    }
    common.finish(args, "metrics_attack", result, goals)


if __name__ == "__main__":
    main()
