"""Issue 17, goal 3 (CPU fairness): can one connection buy the event loop?

One attacker connection from 127.0.0.1 sends one pattern as fast as it can
(reading and discarding every reply, so that backpressure does not slow
it), while a well-behaved client at 127.0.0.2 times round trips of a small
TEXT frame every 5 ms over one connection. Before each attack the same
client is timed alone for --baseline s: that is the pattern's baseline, in
the same run. Patterns:

    ascii       64 KiB TEXT frames of ASCII (the reference for CPU per MiB)
    unknown     empty frames of the unknown type 0x07 (each gets an ERROR)
    pong        empty PONG frames (a client may not send them: ERROR each)
    ping        empty PING frames (each gets its PONG: what unknown and
                pong should cost)
    u0390       64 KiB TEXT frames of U+0390 (2 bytes in, 6 out)
    mixed       64 KiB TEXT frames mixing Latin, Greek, Cyrillic, CJK, ß, ΐ
    fragments   TEXT fragments of 1 byte each (MORE set: one open message)
    raw_invalid raw mode (no preface), ill-formed UTF-8 (lone continuation
                bytes, overlongs, surrogates, truncated sequences)

Goal: for every pattern, the client's p99 under attack ≤ 3× its baseline.
Also printed: the server's CPU per MiB of attack input, relative to ascii.

A server started by the script (no --addr) runs with `--threads 1`, so the
attacker and the client share one event loop (with several, the kernel
may put them on different loops, which hides the unfairness); add `-q`
with --serve-args to see the cost without the WARN line per ERROR:

    python3 benches/hostile/cpu_fairness.py [--patterns unknown,pong] [--json]
    python3 benches/hostile/cpu_fairness.py --serve-args '--threads 1 -q'
    python3 benches/hostile/cpu_fairness.py --addr 127.0.0.1:PORT --pid PID

Bounded: --baseline + --attack s per pattern, the whole script at most
--cap s; the attacker is a child process, killed at the end.
"""

import multiprocessing
import threading
import time

import common

PING, PONG, UNKNOWN = 0x03, 0x04, 0x07
MORE = 0x01


def chunk_of_frames(one, size=64 * 1024):
    """`one` repeated to about `size` bytes: one sendall of many frames."""
    return one * max(1, size // len(one))


def text_of(pattern, size=64 * 1024):
    """`pattern` (a str) repeated to about `size` UTF-8 bytes, cut only
    between code points."""
    encoded = pattern.encode()
    return encoded * max(1, size // len(encoded))


def raw_invalid(size=64 * 1024):
    """Ill-formed UTF-8 of every kind, as raw bytes."""
    bad = (
        b"\x80\xbf"            # lone continuation bytes
        b"\xc0\xaf\xe0\x80\xaf"  # overlong '/'
        b"\xed\xa0\x80"        # a surrogate
        b"\xf4\x90\x80\x80"    # past U+10FFFF
        b"\xce"                # a truncated sequence before ASCII
        b"a\xe2\x82"           # another, before ASCII
        b"b\xff\xfe"           # never valid
    )
    return bad * (size // len(bad))


PATTERNS = {
    "ascii": (True, lambda: common.frame(common.TEXT, b"abcdefgh" * 8192)),
    "unknown": (True, lambda: chunk_of_frames(common.frame(UNKNOWN, b""))),
    "pong": (True, lambda: chunk_of_frames(common.frame(PONG, b""))),
    "ping": (True, lambda: chunk_of_frames(common.frame(PING, b""))),
    "u0390": (True, lambda: common.frame(common.TEXT, text_of("ΐ"))),
    "mixed": (True, lambda: common.frame(common.TEXT, text_of("aΣяß中ΐ€ǅ"))),
    "fragments": (True, lambda: chunk_of_frames(common.frame(common.TEXT, b"a", flags=MORE))),
    "raw_invalid": (False, raw_invalid),
}


def attack(addr, framed, chunk, stop_at, sent):
    """The attacker: send `chunk` again and again until `stop_at`, reading
    and discarding whatever comes back; `sent` counts the bytes."""
    sock = common.connect_from(common.ATTACKER, addr, 5.0)
    sock.settimeout(None)
    if framed:
        sock.sendall(common.PREFACE)

    def drain():
        try:
            while sock.recv(1 << 20):
                pass
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    total = 0
    try:
        while time.monotonic() < stop_at:
            sock.sendall(chunk)
            total += len(chunk)
            sent.value = total
    except OSError:
        pass
    finally:
        sock.close()


def round_trips(client, seconds, timeout):
    """Round trips every 5 ms for `seconds`: their latencies, and failures."""
    latencies, failures = [], {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            latencies.append(client.round_trip(timeout))
        except (TimeoutError, ConnectionError, OSError) as error:
            why = str(error)[:60]
            failures[why] = failures.get(why, 0) + 1
            client.close()
            client = common.WellBehaved(client.server, timeout)
        time.sleep(0.005)
    return client, latencies, failures


class Client(common.WellBehaved):
    def __init__(self, server, timeout=5.0):
        super().__init__(server, timeout)
        self.server = server


def main():
    p = common.parser(__doc__.split("\n")[0])
    p.add_argument("--patterns", default=",".join(PATTERNS), help="comma-separated, from: " + ", ".join(PATTERNS))
    p.add_argument("--baseline", type=float, default=3.0, help="seconds of the client alone before each attack")
    p.add_argument("--attack", type=float, default=6.0, help="seconds of each attack")
    p.add_argument("--request-timeout", type=float, default=5.0)
    p.add_argument("--cap", type=float, default=170.0)
    args = p.parse_args()
    if not args.addr and not args.serve_args:
        args.serve_args = "--threads 1"
    patterns = [name for name in args.patterns.split(",") if name]
    for name in patterns:
        if name not in PATTERNS:
            p.error(f"unknown pattern {name!r}; choose from {', '.join(PATTERNS)}")
    common.cap_runtime(args.cap)
    server = common.Server(args)
    attacker = None
    rows, goals = {}, []
    try:
        client = Client(server, args.request_timeout)
        for name in patterns:
            framed, build = PATTERNS[name]
            client, alone, _ = round_trips(client, args.baseline, args.request_timeout)
            sent = multiprocessing.Value("q", 0, lock=False)
            cpu_before = server.cpu_seconds()
            started = time.monotonic()
            attacker = multiprocessing.Process(
                target=attack,
                args=(server.addr, framed, build(), started + args.attack + 0.5, sent),
                daemon=True,
            )
            attacker.start()
            time.sleep(0.3)  # let the attack get going
            sent_at_start = sent.value
            client, attacked, failures = round_trips(client, args.attack - 0.3, args.request_timeout)
            mib = (sent.value - sent_at_start) / (1 << 20)
            cpu = server.cpu_seconds() - cpu_before
            attacker.kill()
            attacker.join()
            attacker = None
            base_p99 = common.quantile(alone, 0.99)
            p99 = common.quantile(attacked, 0.99)
            rows[name] = {
                "p50_ms": common.ms(common.quantile(attacked, 0.5)),
                "baseline_p50_ms": common.ms(common.quantile(alone, 0.5)),
                "p90_ms": common.ms(common.quantile(attacked, 0.9)),
                "baseline_p90_ms": common.ms(common.quantile(alone, 0.9)),
                "round_trips": len(attacked),
                "failures": failures,
                "attack_mib_sent": round(mib, 1),
                "server_cpu_s": round(cpu, 2),
                "cpu_ms_per_mib": round(1000 * cpu / mib, 2) if mib else None,
            }
            met = p99 is not None and base_p99 is not None and p99 <= 3 * base_p99 and not failures
            goals.append((f"p99 ms beside {name}", common.ms(p99), common.ms(base_p99), "≤3× baseline", met))
            time.sleep(0.5)  # let the loop drain what the attacker left
        client.close()
        reference = rows.get("ascii", {}).get("cpu_ms_per_mib")
        for row in rows.values():
            if reference and row["cpu_ms_per_mib"]:
                row["cpu_per_mib_vs_ascii"] = round(row["cpu_ms_per_mib"] / reference, 1)
        common.finish(args, "cpu_fairness", {"serve_args": args.serve_args, "patterns": rows}, goals)
    finally:
        if attacker is not None:
            attacker.kill()
            attacker.join()
        server.close()


if __name__ == "__main__":
    main()
