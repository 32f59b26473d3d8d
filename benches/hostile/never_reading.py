"""Issue 9, goal 2 (bounded memory): clients that send and never read.

1,000 connections from 127.0.0.1 send the preface, then pipeline TEXT
frames of 1 MiB of `ΐ` (2 bytes in, 6 out) as fast as the server takes
them, and never read a byte; a connection the server closes is re-opened.
Meanwhile a well-behaved client at 127.0.0.2 times round trips of a small
TEXT frame on one connection (re-connecting if it fails). The server's
memory comes from /proc/PID/status: VmRSS sampled every 0.25 s, and VmHWM
(its peak) at the end. The baseline is the same client and the same RSS
before the attack, in the same run.

Goals: peak RSS ≤ 512 MiB; the client's p99 ≤ 100 ms.

    python3 benches/hostile/never_reading.py [--addr 127.0.0.1:PORT --pid PID] [--json]

Bounded: the attack lasts --attack s (default 30), the script at most --cap s.
"""

import multiprocessing
import select
import socket
import threading
import time

import common

FRAME = common.frame(common.TEXT, "ΐ".encode() * (1 << 19))  # 1 MiB of data


def flood(addr, count, stop_at, sent_mib, closed):
    """The attacker: `count` connections writing FRAME after FRAME, never
    reading, until `stop_at`."""
    common.raise_fd_limit()
    poller = select.epoll()
    socks = {}  # fd -> [socket, bytes of the stream written so far]
    total = 0

    def open_more():
        fresh, _ = common.open_many(addr, count - len(socks), common.ATTACKER, time.monotonic() + 2)
        for sock in fresh:
            socks[sock.fileno()] = [sock, 0]
            poller.register(sock.fileno(), select.EPOLLOUT)

    stream = memoryview(common.PREFACE + FRAME)
    frame_at = len(common.PREFACE)
    while time.monotonic() < stop_at:
        if len(socks) < count:
            open_more()
        for fd, _ in poller.poll(0.1):
            entry = socks[fd]
            sock, written = entry
            try:
                while True:
                    # After the preface the stream is FRAME repeated.
                    at = written if written < len(stream) else frame_at + (written - frame_at) % len(FRAME)
                    n = sock.send(stream[at:])
                    written += n
                    total += n
            except BlockingIOError:
                entry[1] = written
            except OSError:
                closed.value += 1
                poller.unregister(fd)
                del socks[fd]
                sock.close()
        sent_mib.value = total >> 20


def main():
    p = common.parser(__doc__.split("\n")[0])
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--attack", type=float, default=30.0, help="seconds of attack")
    p.add_argument("--cap", type=float, default=90.0)
    args = p.parse_args()
    common.raise_fd_limit()
    common.cap_runtime(args.cap)
    server = common.Server(args)
    attacker = None
    sampler_stop = threading.Event()
    try:
        rss_before = server.status_kib("VmRSS")
        baseline = round_trips(server, 3.0)
        sent_mib = multiprocessing.Value("q", 0, lock=False)
        closed = multiprocessing.Value("q", 0, lock=False)
        attack_end = time.monotonic() + args.attack
        attacker = multiprocessing.Process(
            target=flood, args=(server.addr, args.connections, attack_end, sent_mib, closed), daemon=True
        )
        attacker.start()
        peak = {"rss": 0}

        def sample():
            while not sampler_stop.is_set() and server.alive():
                peak["rss"] = max(peak["rss"], server.status_kib("VmRSS"))
                sampler_stop.wait(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # The first seconds only build the pressure up.
        time.sleep(min(5.0, args.attack / 4))
        attacked = round_trips(server, attack_end - time.monotonic())
        rss_end = server.status_kib("VmRSS")
        hwm = server.status_kib("VmHWM")
        sampler_stop.set()
        sampler.join()
        peak_mib = round(max(peak["rss"], hwm) / 1024, 1)
        result = {
            "rss_at_end_mib": round(rss_end / 1024, 1),
            "vm_hwm_mib": round(hwm / 1024, 1),
            "attack_sent_mib": sent_mib.value,
            "attack_connections_closed_by_server": closed.value,
            "client_round_trips": [baseline["count"], attacked["count"]],
            "client_failures": attacked["failures"],
            "client_p50_ms": [baseline["p50_ms"], attacked["p50_ms"]],
        }
        goals = [
            ("server peak RSS, MiB", peak_mib, round(rss_before / 1024, 1), "≤512 MiB", peak_mib <= 512),
            ("well-behaved client p99, ms", attacked["p99_ms"], baseline["p99_ms"], "≤100 ms",
             attacked["p99_ms"] is not None and attacked["p99_ms"] <= 100 and not attacked["failures"]),
        ]
        common.finish(args, "never_reading", result, goals)
    finally:
        sampler_stop.set()
        if attacker is not None:
            attacker.kill()
            attacker.join()
        server.close()


def round_trips(server, seconds, timeout=5.0):
    """Round trips of one small TEXT frame, one every 10 ms for `seconds`.
    A failed one counts with the time it took (at least the timeout) and the
    client re-connects."""
    latencies, failures, client = [], 0, None
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.monotonic()
        try:
            if client is None:
                client = common.WellBehaved(server, timeout)
            latencies.append(client.round_trip(timeout))
        except OSError:
            failures += 1
            latencies.append(max(time.monotonic() - start, timeout))
            if client is not None:
                client.close()
            client = None
        time.sleep(0.01)
    if client is not None:
        client.close()
    return {
        "count": len(latencies),
        "failures": failures,
        "p50_ms": common.ms(common.quantile(latencies, 0.5)),
        "p99_ms": common.ms(common.quantile(latencies, 0.99)),
    }


if __name__ == "__main__":
    main()
