"""Issue 17, goal 4 (fair slots against many addresses): can connections
from many addresses push out an active client?

Each scenario starts its own `upcase serve --max-connections 1000` (with
the PROXY protocol on for `proxy64`). An *active* client sends a small TEXT
request every 0.2 s over one connection for the whole scenario (baseline:
the same client before the attack), and *polite newcomers* open a fresh
connection with one request every 0.2 s (baseline: the same, before).
Scenarios:

    distinct   20,000 connections that send nothing, each from its own
               address (127.1.0.0 up), opened as fast as the script can;
               every one the server closes is closed and not reopened
    rate       the same, 300 new connections a second for --rate-seconds
    proxy64    20,000 connections from a trusted PROXY peer (127.0.0.1),
               each with a v2 header claiming its own address in one IPv6
               /64 (2001:db8::/64), then nothing; the active client and
               the newcomers come through the same peer, claiming
               addresses of other /64s

Goals, in every scenario: the active client is never evicted (no ERROR,
no close; every request answered), and ≥ 95 % of the newcomers are served.

    python3 benches/hostile/many_addresses.py [--scenarios distinct,rate] [--json]

The script always starts its own servers (--upcase, --serve-args are
added to each). Bounded: every scenario has its own time limit, the whole
script at most --cap s; the attacker is a child process, killed at the end.
"""

import argparse
import ipaddress
import multiprocessing
import select
import socket
import struct
import time

import common

TRUSTED_PEER = "127.0.0.1"
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(source, destination="2001:db8:ffff::1", source_port=1000, destination_port=9999):
    """A PROXY v2 header (PROXY command, TCP over IPv6)."""
    addresses = (
        ipaddress.IPv6Address(source).packed
        + ipaddress.IPv6Address(destination).packed
        + struct.pack(">HH", source_port, destination_port)
    )
    return V2_SIGNATURE + bytes([0x21, 0x21]) + struct.pack(">H", len(addresses)) + addresses


def attacker_source(n):
    """The nth attacker address: 127.1.0.0 and up (127.0.0.0/8 has room)."""
    return str(ipaddress.IPv4Address("127.1.0.0") + n)


def attack(addr, total, per_second, deadline, proxied, opened, closed_by_server):
    """Open `total` connections (at most `per_second` a second, 0: as fast
    as possible), each from its own address or, `proxied`, from the trusted
    peer with a header claiming its own address in 2001:db8::/64; send
    nothing more; close each the server closes. Until `deadline`."""
    common.raise_fd_limit()
    poller = select.epoll()
    socks, connecting = {}, set()
    started = time.monotonic()
    n = 0
    window = 256
    try:
        while time.monotonic() < deadline:
            while n < total and len(connecting) < window:
                if per_second and n >= per_second * (time.monotonic() - started):
                    break
                source = TRUSTED_PEER if proxied else attacker_source(n)
                sock = common.tcp_socket_from(source)
                sock.setblocking(False)
                sock.connect_ex(addr)
                socks[sock.fileno()] = (sock, n)
                connecting.add(sock.fileno())
                poller.register(sock.fileno(), select.EPOLLOUT)
                n += 1
            for fd, _ in poller.poll(0.01):
                sock, number = socks[fd]
                if fd in connecting:
                    connecting.discard(fd)
                    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        poller.unregister(fd)
                        del socks[fd]
                        sock.close()
                        continue
                    opened.value += 1
                    if proxied:
                        try:
                            sock.send(proxy_v2(str(ipaddress.IPv6Address("2001:db8::1") + number)))
                        except OSError:
                            pass
                    poller.modify(fd, select.EPOLLIN)
                    continue
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    closed_by_server.value += 1
                    poller.unregister(fd)
                    del socks[fd]
                    sock.close()
    finally:
        for sock, _ in socks.values():
            sock.close()
        poller.close()


class ProxiedClient(common.WellBehaved):
    """A framed client that comes through the trusted peer, claiming `claim`."""

    def __init__(self, server, claim, timeout=5.0):
        self.sock = common.connect_from(TRUSTED_PEER, server.addr, timeout)
        self.sock.sendall(proxy_v2(claim) + common.PREFACE)
        self.preface_seen = False
        self.expected = self.REQUEST.decode().upper().encode()


class Clients:
    """The active client and the newcomers of one scenario."""

    def __init__(self, server, proxied, timeout):
        self.server, self.proxied, self.timeout = server, proxied, timeout
        self.newcomers = 0
        self.active = self.connect("2001:db8:1::1")

    def connect(self, claim):
        if self.proxied:
            return ProxiedClient(self.server, claim, self.timeout)
        return common.WellBehaved(self.server, self.timeout)

    def newcomer(self):
        """One fresh connection, one request: None when served, else why not."""
        self.newcomers += 1
        client = None
        try:
            client = self.connect(f"2001:db8:2::{self.newcomers:x}")
            client.round_trip(self.timeout)
            return None
        except TimeoutError:
            return "timeout"
        except (ConnectionError, OSError) as error:
            return str(error)[:60]
        finally:
            if client is not None:
                client.close()

    def run(self, seconds, until=None):
        """Every 0.2 s for `seconds` (or while `until()`), one request of
        the active client and one newcomer. Their latencies and failures."""
        active, fresh, active_failures, fresh_failures = [], [], {}, {}
        end = time.monotonic() + seconds
        while time.monotonic() < end and (until is None or until()):
            tick = time.monotonic()
            try:
                active.append(self.active.round_trip(self.timeout))
            except (TimeoutError, ConnectionError, OSError) as error:
                why = str(error)[:60] or type(error).__name__
                active_failures[why] = active_failures.get(why, 0) + 1
                self.active.close()
                self.active = self.connect("2001:db8:1::1")
            start = time.monotonic()
            problem = self.newcomer()
            if problem is None:
                fresh.append(time.monotonic() - start)
            else:
                fresh_failures[problem] = fresh_failures.get(problem, 0) + 1
            time.sleep(max(0.0, 0.2 - (time.monotonic() - tick)))
        return active, fresh, active_failures, fresh_failures


SCENARIOS = {
    # name: (total connections, per second, proxied)
    "distinct": (20_000, 0, False),
    "rate": (None, 300, False),
    "proxy64": (20_000, 0, True),
}


def run_scenario(args, name):
    total, per_second, proxied = SCENARIOS[name]
    if total is None:
        total = int(per_second * args.rate_seconds)
    serve_args = f"--max-connections {args.max_connections} --no-udp {args.serve_args}"
    if proxied:
        serve_args += f" --proxy-protocol --trusted-proxy {TRUSTED_PEER}"
    server_args = argparse.Namespace(addr=None, pid=None, upcase=args.upcase, serve_args=serve_args)
    server = common.Server(server_args)
    attacker = None
    try:
        clients = Clients(server, proxied, args.request_timeout)
        base_active, base_fresh, base_active_failures, base_fresh_failures = clients.run(args.baseline)
        opened = multiprocessing.Value("q", 0, lock=False)
        closed = multiprocessing.Value("q", 0, lock=False)
        limit = args.attack_seconds + (args.rate_seconds if per_second else 0)
        started = time.monotonic()
        attacker = multiprocessing.Process(
            target=attack,
            args=(server.addr, total, per_second, started + limit + 5, proxied, opened, closed),
            daemon=True,
        )
        attacker.start()
        # Until every attack connection is open, then --settle s more.
        attacked = clients.run(limit, until=lambda: opened.value < total)
        opened_in = time.monotonic() - started
        settled = clients.run(args.settle)
        active, fresh = attacked[0] + settled[0], attacked[1] + settled[1]
        active_failures = {**attacked[2]}
        for why, count in settled[2].items():
            active_failures[why] = active_failures.get(why, 0) + count
        fresh_failures = {**attacked[3]}
        for why, count in settled[3].items():
            fresh_failures[why] = fresh_failures.get(why, 0) + count
        clients.active.close()
        tried = len(fresh) + sum(fresh_failures.values())
        served_pct = round(100.0 * len(fresh) / max(tried, 1), 1)
        base_tried = len(base_fresh) + sum(base_fresh_failures.values())
        base_served_pct = round(100.0 * len(base_fresh) / max(base_tried, 1), 1)
        row = {
            "attack_connections_opened": opened.value,
            "attack_opened_in_s": round(opened_in, 1),
            "attack_closed_by_server": closed.value,
            "active_requests": len(active) + sum(active_failures.values()),
            "active_failures": active_failures,
            "active_p50_ms": common.ms(common.quantile(active, 0.5)),
            "active_baseline_p50_ms": common.ms(common.quantile(base_active, 0.5)),
            "newcomers_tried": tried,
            "newcomer_failures": fresh_failures,
        }
        goals = [
            (f"{name}: active client's failed requests", sum(active_failures.values()),
             sum(base_active_failures.values()), "0", not active_failures and opened.value >= total),
            (f"{name}: % of newcomers served", served_pct, base_served_pct, "≥95 %", served_pct >= 95),
            (f"{name}: active client's p99 ms", common.ms(common.quantile(active, 0.99)),
             common.ms(common.quantile(base_active, 0.99)), "(no target)", True),
        ]
        return row, goals
    finally:
        if attacker is not None:
            attacker.kill()
            attacker.join()
        server.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--upcase", default=common.ROOT + "/target/release/upcase")
    p.add_argument("--serve-args", default="", help="more arguments for each server")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="from: " + ", ".join(SCENARIOS))
    p.add_argument("--max-connections", type=int, default=1000)
    p.add_argument("--baseline", type=float, default=3.0, help="seconds of the clients alone")
    p.add_argument("--attack-seconds", type=float, default=30.0, help="most seconds to open 20,000 connections")
    p.add_argument("--rate-seconds", type=float, default=20.0, help="seconds of the 300 a second attack")
    p.add_argument("--settle", type=float, default=3.0, help="seconds measured after the last attack connection")
    p.add_argument("--request-timeout", type=float, default=2.0)
    p.add_argument("--cap", type=float, default=190.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    scenarios = [name for name in args.scenarios.split(",") if name]
    for name in scenarios:
        if name not in SCENARIOS:
            p.error(f"unknown scenario {name!r}")
    common.raise_fd_limit()
    common.cap_runtime(args.cap)
    rows, goals = {}, []
    for name in scenarios:
        rows[name], scenario_goals = run_scenario(args, name)
        goals.extend(scenario_goals)
        time.sleep(1)  # let TIME_WAIT and the load settle a little
    common.finish(args, "many_addresses", {"max_connections": args.max_connections, "scenarios": rows}, goals)


if __name__ == "__main__":
    main()
