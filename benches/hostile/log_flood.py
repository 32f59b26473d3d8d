"""Issue 17, goal 2 (logging can neither flood nor block): floods of
input that each write a log line, and a stderr that nobody reads.

Each case starts a fresh `upcase serve --metrics 127.0.0.1:0` (default log
level unless the case says otherwise) with its stderr in a file, or in a
pipe this script never reads. A well-behaved client at 127.0.0.2 times
round trips of a small TEXT frame on one connection, first alone (the
baseline, in the same run) and then during the attack; during the attack a
fresh connection from 127.0.0.2 also makes one request every 0.5 s. The
attackers, at 127.0.0.1, run in processes of their own:

- unknown-type: one connection pipelining empty frames of type 0x7f
  (each answered by ERROR(UNKNOWN_TYPE); the replies are read);
- pong: the same with PONG frames (ERROR(UNEXPECTED_TYPE));
- connect-churn: two processes connecting and closing (RST) at once;
- untrusted-proxy: the same against `--proxy-protocol --trusted-proxy
  127.0.0.2/32` (the client sends a PROXY v1 header first);
- unread-pipe: the unknown-type flood, stderr a pipe nobody reads;
- unread-pipe -v: `-v` (a line per message) and 64-byte TEXT frames
  pipelined as fast as the server takes them, stderr unread;
- text-64k: 64 KiB ASCII TEXT frames, for the CPU a MiB costs when it
  writes no log (a reference, no goal).

Measured over the attack (--attack s, default 6): log bytes written, the
client's p50/p99 beside its baseline, fresh clients served, the server's
CPU per MiB of attack input, and the log lines the server dropped
(`upcase_log_lines_dropped_total`, "—" where the binary has no such metric).

Goals: unknown-type keeps the client's p99 ≤ 3× its baseline and writes ≤ 1
MiB of log; pong, connect-churn and untrusted-proxy write ≤ 1 MiB; with
stderr unread every fresh client is served.

    python3 benches/hostile/log_flood.py [--upcase PATH] [--case NAME ...] [--json]

It starts its own servers (it needs their stderr), so it takes no --addr.
Bounded: each case about --baseline + --attack + 2 s, the script at most --cap s.
"""

import multiprocessing
import os
import re
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.request

import common

UNKNOWN_TYPE, PONG = 0x7F, 0x04
PROXY_HEADER = b"PROXY TCP4 127.0.0.2 127.0.0.1 40000 9999\r\n"
ROUND_TRIP_TIMEOUT = 2.0
FRESH_EVERY = 0.5
LOG_BOUND = 1 << 20
DROPPED = re.compile(rb"^upcase_log_lines_dropped_total (\d+)", re.M)


def frame_flood(addr, frame, stop_at, sent):
    """Pipeline `frame` on one connection until `stop_at`, reading (and
    discarding) the replies on a thread so the server never waits for us."""
    sock = common.connect_from(common.ATTACKER, addr, 5.0)
    sock.sendall(common.PREFACE)

    def drain():
        try:
            while sock.recv(1 << 20):
                pass
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    batch = frame * max(1, (64 << 10) // len(frame))
    total = 0
    sock.settimeout(1.0)
    while time.monotonic() < stop_at:
        try:
            sock.sendall(batch)
            total += len(batch)
        except TimeoutError:
            continue
        except OSError:
            break
        sent.value = total
    sock.close()


def churn(addr, stop_at, sent):
    """Connect and reset at once (SO_LINGER 0: no TIME_WAIT) until `stop_at`."""
    linger = struct.pack("ii", 1, 0)  # l_onoff 1, l_linger 0
    count = 0
    while time.monotonic() < stop_at:
        sock = common.tcp_socket_from(common.ATTACKER)
        sock.settimeout(1.0)
        try:
            sock.connect(addr)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            count += 1
        except OSError:
            pass
        finally:
            sock.close()
        sent.value = count


CASES = {
    "unknown-type": dict(attack=(frame_flood, common.frame(UNKNOWN_TYPE, b"")), procs=1),
    "pong": dict(attack=(frame_flood, common.frame(PONG, b"")), procs=1),
    "connect-churn": dict(attack=(churn,), procs=2),
    "untrusted-proxy": dict(
        attack=(churn,), procs=2, serve=["--proxy-protocol", "--trusted-proxy", "127.0.0.2/32"], header=PROXY_HEADER
    ),
    "unread-pipe": dict(attack=(frame_flood, common.frame(UNKNOWN_TYPE, b"")), procs=1, pipe=True),
    "unread-pipe -v": dict(attack=(frame_flood, common.frame(common.TEXT, b"x" * 64)), procs=1, pipe=True, serve=["-v"]),
    "text-64k": dict(attack=(frame_flood, common.frame(common.TEXT, b"a" * (64 << 10))), procs=1),
}


class Polite:
    """The well-behaved client: one connection, re-opened if it fails."""

    def __init__(self, server, header):
        self.server, self.header, self.client = server, header, None

    def measure(self, seconds, fresh=False):
        """Round trips for `seconds` (and a fresh one-request connection
        every FRESH_EVERY s when `fresh`): latencies, failures, fresh served, fresh tried."""
        latencies, failures, served, tried = [], 0, 0, 0
        end = time.monotonic() + seconds
        next_fresh = time.monotonic()
        while time.monotonic() < end:
            if fresh and time.monotonic() >= next_fresh:
                tried += 1
                served += common.one_request(self.server, ROUND_TRIP_TIMEOUT, self.header) is None
                next_fresh += FRESH_EVERY
            try:
                if self.client is None:
                    self.client = common.WellBehaved(self.server, ROUND_TRIP_TIMEOUT, self.header)
                latencies.append(self.client.round_trip(ROUND_TRIP_TIMEOUT))
            except (OSError, ConnectionError):
                failures += 1
                self.close()
            time.sleep(0.002)
        return latencies, failures, served, tried

    def close(self):
        if self.client is not None:
            self.client.close()
            self.client = None


def scrape_dropped(metrics_addr):
    try:
        with urllib.request.urlopen(f"http://{metrics_addr}/metrics", timeout=5) as response:
            found = DROPPED.search(response.read())
    except OSError:
        return None
    return int(found.group(1)) if found else None


def run_case(args, name):
    case = CASES[name]
    log = None if case.get("pipe") else tempfile.TemporaryFile(dir=args.log_dir)
    extra = [*case.get("serve", []), "--metrics", "127.0.0.1:0"]
    server = common.Server(args, extra, stderr=subprocess.PIPE if log is None else log)
    polite = Polite(server, case.get("header", b""))
    attackers = []
    try:
        # upcase metrics on http://ADDR/metrics
        metrics_addr = server.process.stdout.readline().decode().split("http://")[-1].split("/")[0]
        baseline, base_failures, _, _ = polite.measure(args.baseline)
        counts = [multiprocessing.Value("q", 0, lock=False) for _ in range(case["procs"])]
        log_at_start = os.fstat(log.fileno()).st_size if log else None
        cpu_at_start = server.cpu_seconds()
        started = time.monotonic()
        stop_at = started + args.attack
        function, *attack_args = case["attack"]
        for count in counts:
            process = multiprocessing.Process(
                target=function, args=(server.addr, *attack_args, stop_at, count), daemon=True
            )
            process.start()
            attackers.append(process)
        attacked, failures, served, tried = polite.measure(max(0.0, stop_at - time.monotonic()), fresh=True)
        elapsed = time.monotonic() - started
        cpu = server.cpu_seconds() - cpu_at_start
        log_bytes = os.fstat(log.fileno()).st_size - log_at_start if log else None
        for process in attackers:
            process.join(timeout=3)
        sent = sum(count.value for count in counts)
        frames = case["attack"][0] is frame_flood
        attack_mib = sent / (1 << 20) if frames else None
        return {
            "case": name,
            "log_bytes": log_bytes,
            "p50_ms": [common.ms(common.quantile(attacked, 0.5)), common.ms(common.quantile(baseline, 0.5))],
            "p99_ms": [common.ms(common.quantile(attacked, 0.99)), common.ms(common.quantile(baseline, 0.99))],
            "round_trips": [len(attacked), len(baseline)],
            "client_failures": [failures, base_failures],
            "fresh_served": [served, tried],
            "attack": f"{attack_mib:,.1f} MiB" if frames else f"{sent:,} connects",
            "attack_per_s": round(sent / elapsed) if not frames else None,
            "cpu_s": round(cpu, 2),
            "cpu_ms_per_mib": round(1000 * cpu / attack_mib, 1) if frames and attack_mib else None,
            "log_lines_dropped": scrape_dropped(metrics_addr),
        }
    finally:
        for process in attackers:
            process.kill()
            process.join()
        polite.close()
        server.close()
        if log is not None:
            log.close()
        elif server.process.stderr is not None:
            server.process.stderr.close()


def goals_of(rows):
    by = {row["case"]: row for row in rows}
    goals = []
    if "unknown-type" in by:
        row = by["unknown-type"]
        p99, base = row["p99_ms"]
        goals.append(("unknown-type: client p99 ms", p99, base, "≤3× baseline", p99 is not None and p99 <= 3 * base))
    for name in ("unknown-type", "pong", "connect-churn", "untrusted-proxy"):
        if name in by:
            log_bytes = by[name]["log_bytes"]
            goals.append((f"{name}: log bytes in the attack", log_bytes, None,
                          "≤1 MiB", log_bytes <= LOG_BOUND))
    for name in ("unread-pipe", "unread-pipe -v"):
        if name in by:
            served, tried = by[name]["fresh_served"]
            goals.append((f"{name}: fresh clients served", f"{served} of {tried}", None, "all",
                          tried > 0 and served == tried))
    return goals


def main():
    p = common.parser(__doc__.split("\n")[0])
    p.add_argument("--case", action="append", choices=list(CASES), help="run only these (repeatable)")
    p.add_argument("--baseline", type=float, default=3.0, help="seconds of baseline per case")
    p.add_argument("--attack", type=float, default=6.0, help="seconds of attack per case")
    p.add_argument("--log-dir", default=None, help="where the servers' logs go (deleted after)")
    p.add_argument("--cap", type=float, default=150.0)
    args = p.parse_args()
    if args.addr:
        raise SystemExit("log_flood.py starts its own servers (it needs their stderr): drop --addr")
    common.cap_runtime(args.cap)
    rows = [run_case(args, name) for name in args.case or CASES]
    if not args.json:
        print(f"{'case':<16} {'log bytes':>12} {'p50 ms':>14} {'p99 ms':>15} {'fresh':>8} "
              f"{'attack':>16} {'CPU ms/MiB':>10} {'dropped':>9}")
        for r in rows:
            pair = lambda v: f"{common.fmt(v[0])} / {common.fmt(v[1])}"
            print(f"{r['case']:<16} {common.fmt(r['log_bytes']):>12} {pair(r['p50_ms']):>14} "
                  f"{pair(r['p99_ms']):>15} {r['fresh_served'][0]:>3} of {r['fresh_served'][1]:<2} "
                  f"{r['attack']:>16} {common.fmt(r['cpu_ms_per_mib']):>10} {common.fmt(r['log_lines_dropped']):>9}")
    # The table above shows the cases; --json carries them instead.
    common.finish(args, "log_flood", {"cases": rows} if args.json else {}, goals_of(rows))


if __name__ == "__main__":
    main()
