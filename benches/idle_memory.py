"""What one idle connection costs `upcase serve` in memory.

Usage: cargo build --release && python3 benches/idle_memory.py [N]
Starts target/release/upcase serve on a free port, reads its VmRSS, opens N
(default 1000) connections that send nothing, reads VmRSS again, then has
half of them send the framed preface and reads it a third time.
"""
import os
import resource
import socket
import subprocess
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT = (N * 2 + 256, N * 2 + 256)


def raise_fd_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, LIMIT)


raise_fd_limit()
server = subprocess.Popen(
    [os.path.join(ROOT, "target/release/upcase"), "serve", "--listen", "127.0.0.1:0", "-q"],
    stdout=subprocess.PIPE,
    preexec_fn=raise_fd_limit,
)
line = server.stdout.readline().decode()
port = int(line.split("tcp 127.0.0.1:")[1].split(",")[0])


def rss_kib():
    with open(f"/proc/{server.pid}/status") as status:
        for field in status:
            if field.startswith("VmRSS"):
                return int(field.split()[1])


try:
    time.sleep(0.5)
    before = rss_kib()
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(N)]
    time.sleep(2)
    idle = rss_kib()
    for s in sockets[: N // 2]:
        s.sendall(b"\xc0UPCASE\x01")
    time.sleep(2)
    framed = rss_kib()
    print(f"server RSS: {before} KiB alone, {idle} KiB with {N} idle connections "
          f"({(idle - before) / N:.1f} KiB each), {framed} KiB after {N // 2} sent the preface")
finally:
    server.terminate()
    server.wait(timeout=10)
