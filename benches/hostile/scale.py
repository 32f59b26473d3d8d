"""Issue 9, goal 4 (scale): 15,000 connections at once.

From 127.0.0.1 (at most 256 handshakes in flight): the time to connect
all; the server's RSS per connection once they are connected and silent;
the time until every one has sent the preface and a small TEXT frame and
has its right reply; the RSS per connection once they are idle again; and
the server's CPU over 10 s with all of them idle (utime + stime from
/proc/PID/stat). The baseline, in the same run: the same for 1,000
connections, and the idle CPU with no connection.

Goals: connect ≤ 5 s, answer ≤ 5 s, ≤ 4 KiB RSS per idle connection (the
worse of silent, over all connected, and after one request, over those
answered; met only if all were answered), idle CPU ≤ 1 % of a core.

    python3 benches/hostile/scale.py [--addr 127.0.0.1:PORT --pid PID] [--json]

Bounded: each phase has its own deadline, the script at most --cap s.
"""

import select
import time

import common

REQUEST = "scale, straße".encode()
EXPECTED = common.frame(common.TEXT, REQUEST.decode().upper().encode())


def main():
    p = common.parser(__doc__.split("\n")[0])
    p.add_argument("--connections", type=int, default=15_000)
    p.add_argument("--baseline-connections", type=int, default=1000)
    p.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU measured")
    p.add_argument("--cap", type=float, default=150.0)
    args = p.parse_args()
    common.raise_fd_limit()
    common.cap_runtime(args.cap)
    server = common.Server(args)
    try:
        time.sleep(0.5)
        cpu_empty = idle_cpu(server, min(args.idle, 5.0))
        small = phase(server, args.baseline_connections, 0.0)
        time.sleep(1.0)
        big = phase(server, args.connections, args.idle)
        per_conn = max(big["silent_kib_per_conn"], big["idle_kib_per_conn"])
        result = {
            "connected": [small["connected"], big["connected"]],
            "answered": [small["answered"], big["answered"]],
            "not_answered": big["why"],
            "silent_kib_per_conn": [small["silent_kib_per_conn"], big["silent_kib_per_conn"]],
            "idle_kib_per_conn": [small["idle_kib_per_conn"], big["idle_kib_per_conn"]],
            "server_threads_with_all_open": big["threads"],
            "server_rss_mib_with_all_open": big["rss_mib"],
        }
        all_connected = big["connected"] == args.connections
        all_answered = big["answered"] == args.connections
        goals = [
            (f"s to connect {args.connections:,} (baseline {args.baseline_connections:,})",
             big["connect_s"], small["connect_s"], "≤5 s", all_connected and big["connect_s"] <= 5),
            ("s to answer all", big["answer_s"], small["answer_s"], "≤5 s", all_answered and big["answer_s"] <= 5),
            ("KiB RSS per idle connection", per_conn, max(small["silent_kib_per_conn"], small["idle_kib_per_conn"]),
             "≤4 KiB", all_answered and per_conn <= 4),
            (f"idle CPU % over {args.idle:g} s (baseline: none open)", big["idle_cpu_pct"], cpu_empty, "≤1 %",
             big["idle_cpu_pct"] is not None and big["idle_cpu_pct"] <= 1),
        ]
        common.finish(args, "scale", result, goals)
    finally:
        server.close()


def idle_cpu(server, seconds):
    """Percent of one core the server used over `seconds`."""
    before = server.cpu_seconds()
    time.sleep(seconds)
    return round(100.0 * (server.cpu_seconds() - before) / seconds, 2)


def phase(server, count, idle_seconds):
    """Connect `count`, measure, one request each, measure, close all."""
    rss_empty = server.status_kib("VmRSS")
    start = time.monotonic()
    socks, failures = common.open_many(server.addr, count, common.ATTACKER, start + 30)
    connect_s = round(time.monotonic() - start, 2)
    try:
        time.sleep(2.0)  # let the server accept and settle
        rss_silent = server.status_kib("VmRSS")
        threads = server.threads()
        start = time.monotonic()
        answered, why = request_all(socks, start + 30)
        answer_s = round(time.monotonic() - start, 2)
        time.sleep(1.0)
        rss_idle = server.status_kib("VmRSS")
        cpu = idle_cpu(server, idle_seconds) if idle_seconds else None
        # Per connection the server still holds: those it answered (a
        # server at its limit closes the others).
        per = lambda rss, held: round((rss - rss_empty) / max(held, 1), 2)
        return {
            "connected": len(socks),
            "connect_failures": failures,
            "connect_s": connect_s,
            "answered": answered,
            "answer_s": answer_s,
            "why": why,
            "silent_kib_per_conn": per(rss_silent, len(socks)),
            "idle_kib_per_conn": per(rss_idle, answered),
            "idle_cpu_pct": cpu,
            "threads": threads,
            "rss_mib": round(rss_silent / 1024, 1),
        }
    finally:
        for sock in socks:
            sock.close()


def request_all(socks, deadline):
    """Send the preface and one TEXT frame on every socket, then read until
    each has its whole reply (or the deadline). Returns (answered, {why: n})."""
    request = common.PREFACE + common.frame(common.TEXT, REQUEST)
    want = len(common.PREFACE) + len(EXPECTED)
    poller = select.epoll()
    got, why = {}, {}
    by_fd = {sock.fileno(): sock for sock in socks}
    for sock in socks:
        try:
            sock.send(request)  # small enough for an empty socket buffer
            got[sock.fileno()] = b""
            poller.register(sock.fileno(), select.EPOLLIN)
        except OSError as error:
            why[type(error).__name__] = why.get(type(error).__name__, 0) + 1
    answered = 0
    try:
        while got and time.monotonic() < deadline:
            for fd, _ in poller.poll(0.1):
                try:
                    data = by_fd[fd].recv(65536)
                except OSError as error:
                    data, reason = b"", type(error).__name__
                else:
                    reason = "closed"
                buffer = got[fd] + data
                if data and len(buffer) < want:
                    got[fd] = buffer
                    continue
                del got[fd]
                poller.unregister(fd)
                if buffer[:8] == common.PREFACE and buffer[8 + 36 :] == EXPECTED[36:]:
                    answered += 1
                else:
                    if len(buffer) >= 8 + common.HEADER_LEN and buffer[8 + 36] == common.ERROR:
                        code = common.error_code(buffer[8 + common.HEADER_LEN :])
                        reason = f"ERROR {common.ERROR_NAMES.get(code, code)}"
                    why[reason] = why.get(reason, 0) + 1
    finally:
        poller.close()
    if got:
        why["no reply in time"] = len(got)
    return answered, why


if __name__ == "__main__":
    main()
