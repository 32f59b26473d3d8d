"""Issue 9, goal 1 (fair slots): can one address keep another out?

An attacker at 127.0.0.1 opens and holds up to 18,000 connections that
send nothing, and re-opens every one the server closes. Meanwhile a client
at 127.0.0.2 opens fresh connections, one request each (a framed TEXT
frame, served = the right reply within --request-timeout). The baseline is
the same client before the attack, in the same run.

Goal: at least 95 % of the fresh connections served under attack.

    python3 benches/hostile/fair_slots.py [--addr 127.0.0.1:PORT --pid PID] [--json]

Bounded: ramp-up at most --ramp s, measurement --measure s, the whole
script at most --cap s; the attacker is a child process, killed at the end.
"""

import multiprocessing
import select
import socket
import time

import common


def hold(addr, target, stop_at, held, reopened, refused):
    """The attacker: keep `target` silent connections open until `stop_at`,
    re-opening any that the server closes. Shares its counts through
    multiprocessing Values."""
    common.raise_fd_limit()
    poller = select.epoll()
    socks = {}  # fd -> (socket, connected?)
    window = 256

    def open_one():
        sock = common.tcp_socket_from(common.ATTACKER)
        sock.setblocking(False)
        try:
            sock.connect_ex(addr)
        except OSError:
            sock.close()
            refused.value += 1
            return False
        socks[sock.fileno()] = (sock, False)
        poller.register(sock.fileno(), select.EPOLLOUT)
        return True

    def drop(fd):
        sock, _ = socks.pop(fd)
        poller.unregister(fd)
        sock.close()

    connecting = 0
    while time.monotonic() < stop_at:
        while connecting < window and len(socks) < target:
            if not open_one():
                break
            connecting += 1
        for fd, events in poller.poll(0.05):
            sock, connected = socks[fd]
            if not connected:
                connecting -= 1
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    refused.value += 1
                    drop(fd)
                    continue
                socks[fd] = (sock, True)
                poller.modify(fd, select.EPOLLIN)
                continue
            # Readable: a BUSY or IDLE_TIMEOUT error, a preface, or the close.
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                reopened.value += 1
                drop(fd)
        held.value = len(socks) - connecting


def main():
    p = common.parser(__doc__.split("\n")[0])
    p.add_argument("--connections", type=int, default=18_000)
    p.add_argument("--ramp", type=float, default=20.0, help="seconds to open the attack connections")
    p.add_argument("--measure", type=float, default=20.0, help="seconds of fresh connections under attack")
    p.add_argument("--request-timeout", type=float, default=2.0)
    p.add_argument("--cap", type=float, default=90.0)
    args = p.parse_args()
    common.raise_fd_limit()
    common.cap_runtime(args.cap)
    server = common.Server(args)
    attacker = None
    try:
        baseline = fresh_requests(server, 3.0, args.request_timeout)
        held = multiprocessing.Value("q", 0, lock=False)
        reopened = multiprocessing.Value("q", 0, lock=False)
        refused = multiprocessing.Value("q", 0, lock=False)
        stop_at = time.monotonic() + args.ramp + args.measure + 5
        attacker = multiprocessing.Process(
            target=hold, args=(server.addr, args.connections, stop_at, held, reopened, refused), daemon=True
        )
        attacker.start()
        ramp_end = time.monotonic() + args.ramp
        while time.monotonic() < ramp_end and held.value < args.connections:
            time.sleep(0.2)
        held_at_start = held.value
        reopened_at_start = reopened.value
        attacked = fresh_requests(server, args.measure, args.request_timeout)
        result = {
            "attack_connections_held_at_start": held_at_start,
            "attack_connections_held_at_end": held.value,
            "attack_reopened_during_measure": reopened.value - reopened_at_start,
            "attack_connects_failed": refused.value,
            "server_threads": server.threads(),
            "server_rss_mib": round(server.status_kib("VmRSS") / 1024, 1),
            "baseline_requests": baseline["tried"],
            "attacked_requests": attacked["tried"],
            "attacked_failures": attacked["why"],
        }
        goals = [
            ("% of fresh 127.0.0.2 connections served", attacked["served_pct"], baseline["served_pct"], "≥95 %",
             attacked["served_pct"] >= 95),
            ("p50 ms of a served fresh connection", attacked["p50_ms"], baseline["p50_ms"], "(no target)", True),
        ]
        common.finish(args, "fair_slots", result, goals)
    finally:
        if attacker is not None:
            attacker.kill()
            attacker.join()
        server.close()


def fresh_requests(server, seconds, timeout):
    """Fresh connections from 127.0.0.2, one request each, one after the
    other for `seconds`: the share served and their latency."""
    tried, served, latencies, why = 0, 0, [], {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.monotonic()
        problem = common.one_request(server, timeout)
        tried += 1
        if problem is None:
            served += 1
            latencies.append(time.monotonic() - start)
        else:
            why[problem] = why.get(problem, 0) + 1
        # About 100 fresh connections a second: a client, not a second flood.
        time.sleep(0.01)
    return {
        "tried": tried,
        "served_pct": round(100.0 * served / max(tried, 1), 1),
        "p50_ms": common.ms(common.quantile(latencies, 0.5)),
        "why": why,
    }


if __name__ == "__main__":
    main()
