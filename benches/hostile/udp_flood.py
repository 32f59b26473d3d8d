"""Issue 9, goal 3 (safe UDP): a flood from one address, a client at
another, and the amplification of small datagrams.

1. Amplification: each small datagram of a fixed list (malformed framed
   ones, a bare preface, text that grows when upper-cased) is sent from
   127.0.0.2; the reply's size over the request's is its factor. The
   baseline is a well-formed framed TEXT request.
2. Flood: 4 sockets at 127.0.0.1, one process each, send 64-byte raw
   requests as fast as they can and never read. A client at 127.0.0.2 sends
   numbered 64-byte raw requests at --rate a second; a request without its
   reply within 1 s is lost. The baseline is the same client before the
   flood, in the same run.

Goals: worst factor ≤ 3; under the flood the client loses ≤ 2 % with p50 ≤ 10 ms.

    python3 benches/hostile/udp_flood.py [--addr 127.0.0.1:PORT --pid PID] [--json]

Bounded: baseline 5 s, flood --flood s (default 10), the script at most --cap s.
"""

import multiprocessing
import select
import socket
import struct
import threading
import time

import common

REPLY_TIMEOUT = 1.0
LINE = b"the quick brown fox jumps over the lazy dog, again and again and again\n"


def probes():
    """Small datagrams whose replies could outgrow them: (name, datagram)."""
    pre = common.PREFACE
    header = lambda t, flags, n: bytes(36) + struct.pack(">BBI", t, flags, n)
    return [
        ("baseline: framed TEXT 'hello'", pre + common.frame(common.TEXT, b"hello")),
        ("bad version c0 55 50 43 41 53 45 ff", pre[:7] + b"\xff"),
        ("bare preface", pre),
        ("preface + 1 byte", pre + b"\x00"),
        ("preface + short header (41 B)", pre + bytes(41)),
        ("header, length ≠ data", pre + header(common.TEXT, 0, 1000)),
        ("header, reserved flag", pre + header(common.TEXT, 0x80, 0)),
        ("header, length over the limit", pre + header(common.TEXT, 0, 0xFFFFFFFF)),
        ("unknown type 0x7f", pre + header(0x7F, 0, 0)),
        ("TEXT invalid UTF-8", pre + common.frame(common.TEXT, b"\xff")),
        ("TEXT MORE set", pre + common.frame(common.TEXT, b"a", flags=1)),
        ("raw 'ΐ' (2 B → 6 B)", "ΐ".encode()),
        ("raw 'ΐΐΐΐ'", "ΐ".encode() * 4),
        ("framed TEXT 'ΐ' ×8", pre + common.frame(common.TEXT, "ΐ".encode() * 8)),
    ]


def amplification(server):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((common.CLIENT, 0))
    sock.connect(server.addr)
    rows = []
    try:
        for name, datagram in probes():
            sock.send(datagram)
            ready, _, _ = select.select([sock], [], [], 0.5)
            reply = sock.recv(65536) if ready else b""
            rows.append((name, len(datagram), len(reply), round(len(reply) / len(datagram), 2)))
    finally:
        sock.close()
    return rows


def flood(addr, stop_at, sent):
    """One flooding socket at 127.0.0.1: send until `stop_at`, never read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((common.ATTACKER, 0))
    sock.connect(addr)
    datagram = LINE[:63] + b"\n"
    count = 0
    while time.monotonic() < stop_at:
        for _ in range(256):
            try:
                sock.send(datagram)
                count += 1
            except OSError:
                pass  # ECONNREFUSED from an earlier ICMP, or a full buffer
        sent.value = count


def client_run(server, seconds, rate):
    """Numbered requests at `rate` a second for `seconds` from 127.0.0.2;
    replies are matched by number. Returns loss and latency."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((common.CLIENT, 0))
    sock.connect(server.addr)
    sent_at, latencies, wrong = {}, [], 0
    done = threading.Event()

    def send():
        interval = 1.0 / rate
        start = time.monotonic()
        seq = 0
        while time.monotonic() - start < seconds:
            sent_at[seq] = time.monotonic()
            sock.send(b"%08d " % seq + LINE[: 64 - 9])
            seq += 1
            time.sleep(max(0.0, start + seq * interval - time.monotonic()))
        done.set()

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    expected_tail = LINE[: 64 - 9].upper()
    last_sent = None
    while True:
        if done.is_set() and last_sent is None:
            last_sent = time.monotonic()
        if last_sent is not None and time.monotonic() - last_sent > REPLY_TIMEOUT:
            break
        ready, _, _ = select.select([sock], [], [], 0.05)
        if not ready:
            continue
        try:
            reply = sock.recv(65536)
        except OSError:
            continue
        received = time.monotonic()
        try:
            seq = int(reply[:8])
        except ValueError:
            wrong += 1
            continue
        sent = sent_at.get(seq)
        if sent is None or reply[9:] != expected_tail:
            wrong += 1
            continue
        if received - sent <= REPLY_TIMEOUT:
            latencies.append(received - sent)
    sender.join()
    sock.close()
    requests = len(sent_at)
    lost = requests - len(latencies)
    return {
        "requests": requests,
        "loss_pct": round(100.0 * lost / max(requests, 1), 2),
        "p50_ms": common.ms(common.quantile(latencies, 0.5)),
        "p99_ms": common.ms(common.quantile(latencies, 0.99)),
        "wrong": wrong,
    }


def main():
    p = common.parser(__doc__.split("\n")[0])
    p.add_argument("--flooders", type=int, default=4)
    p.add_argument("--flood", type=float, default=10.0, help="seconds of flood")
    p.add_argument("--rate", type=float, default=200.0, help="client requests a second")
    p.add_argument("--cap", type=float, default=60.0)
    args = p.parse_args()
    common.cap_runtime(args.cap)
    server = common.Server(args)
    flooders = []
    try:
        rows = amplification(server)
        baseline = client_run(server, 5.0, args.rate)
        counts = [multiprocessing.Value("q", 0, lock=False) for _ in range(args.flooders)]
        stop_at = time.monotonic() + args.flood + 1
        for count in counts:
            process = multiprocessing.Process(target=flood, args=(server.addr, stop_at, count), daemon=True)
            process.start()
            flooders.append(process)
        time.sleep(0.5)
        attacked = client_run(server, args.flood - 0.5, args.rate)
        flood_seconds = args.flood
        worst = max(rows[1:], key=lambda row: row[3])
        result = {
            "flood_datagrams_per_s": round(sum(c.value for c in counts) / flood_seconds),
            "client_requests": [baseline["requests"], attacked["requests"]],
            "client_wrong_replies": [baseline["wrong"], attacked["wrong"]],
            "client_p99_ms": [baseline["p99_ms"], attacked["p99_ms"]],
            "worst_datagram": f"{worst[0]}: {worst[1]} B → {worst[2]} B",
            "amplification": {name: f"{n_in} B → {n_out} B ({factor}×)" for name, n_in, n_out, factor in rows},
        }
        p50_ok = attacked["p50_ms"] is not None and attacked["p50_ms"] <= 10
        goals = [
            ("worst amplification factor", worst[3], rows[0][3], "≤3×", worst[3] <= 3),
            ("client loss % under flood", attacked["loss_pct"], baseline["loss_pct"], "≤2 %",
             attacked["loss_pct"] <= 2),
            ("client p50 ms under flood", attacked["p50_ms"], baseline["p50_ms"], "≤10 ms", p50_ok),
        ]
        common.finish(args, "udp_flood", result, goals)
    finally:
        for process in flooders:
            process.kill()
            process.join()
        server.close()


if __name__ == "__main__":
    main()
