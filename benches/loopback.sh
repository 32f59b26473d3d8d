#!/usr/bin/env bash
# Loopback benchmark: `upcase serve` against its ceiling (a plain echo server
# with the same threading model, examples/plain_echo.rs) and against the
# tutorial's Python server, all measured by `upcase bench` in one run.
#
#   benches/loopback.sh            # 5 s per measurement, about 2 minutes
#   DURATION=2 benches/loopback.sh
#
# Prints a table (ours beside the echo, the ratio, the target) and keeps the
# raw JSON reports in target/loopback/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
TUTORIAL=${TUTORIAL:-tests/interop/tutorial_server.py}
UPCASE=target/release/upcase
ECHO=target/release/examples/plain_echo
OUT=target/loopback
RESULTS=$OUT/results.jsonl

# 1,000 clients need about 2,000 descriptors in this shell's children.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
    ulimit -n 4096 || { echo "loopback.sh: cannot raise the open-file limit to 4096 (ulimit -Hn is $(ulimit -Hn))" >&2; exit 1; }
fi

cargo build --release --quiet --bin upcase --example plain_echo
mkdir -p "$OUT"
: > "$RESULTS"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# start NAME CMD...: start a server, wait for its first line, print
# "PID ADDR" (the first 127.0.0.1:PORT on that line, or "listening on PORT").
start() {
    local name=$1; shift
    "$@" > "$OUT/$name.out" 2> "$OUT/$name.err" &
    local pid=$!
    pids+=("$pid")
    local addr=""
    for _ in $(seq 100); do
        addr=$(grep -o -m1 '127\.0\.0\.1:[0-9]*' "$OUT/$name.out" 2>/dev/null || true)
        if [ -z "$addr" ]; then
            local port
            port=$(sed -n '1s/^listening on \([0-9]*\).*/\1/p' "$OUT/$name.out" 2>/dev/null || true)
            [ -n "$port" ] && addr=127.0.0.1:$port
        fi
        [ -n "$addr" ] && break
        kill -0 "$pid" 2>/dev/null || { echo "loopback.sh: $name exited: $(cat "$OUT/$name.err")" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$addr" ] || { echo "loopback.sh: $name printed no address within 10 s" >&2; exit 1; }
    echo "$pid $addr"
}

# run CASE SERVER PID ADDR [bench args...]: one measurement, appended to
# $RESULTS with the server's resident memory sampled halfway through.
run() {
    local case=$1 server=$2 pid=$3 addr=$4; shift 4
    echo "  $case: $server ..." >&2
    "$UPCASE" bench "$addr" --json --duration "$DURATION" "$@" > "$OUT/bench.json" &
    local bench=$!
    sleep "$(echo "$DURATION / 2 + 1" | bc -l)"
    local rss
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    wait "$bench" || true
    printf '{"case":"%s","server":"%s","rss_kb":%s,"report":%s}\n' \
        "$case" "$server" "${rss:-0}" "$(cat "$OUT/bench.json")" >> "$RESULTS"
}

# The tutorial server serves one client and exits: a fresh one per run.
run_tutorial() {
    local case=$1; shift
    if [ ! -f "$TUTORIAL" ]; then
        echo "  $case: tutorial server $TUTORIAL not found, skipped" >&2
        return
    fi
    local pid addr
    read -r pid addr < <(start tutorial python3 "$TUTORIAL" 127.0.0.1 0)
    run "$case" tutorial "$pid" "$addr" "$@"
    kill "$pid" 2>/dev/null || true
}

read -r ours_pid ours_addr < <(start ours "$UPCASE" serve --listen 127.0.0.1:0 --quiet)
read -r echo_pid echo_addr < <(start echo "$ECHO" --listen 127.0.0.1:0)
pids+=("$ours_pid" "$echo_pid")
echo "ours: $ours_addr (pid $ours_pid), echo: $echo_addr (pid $echo_pid), $DURATION s per run" >&2

run    "raw 64 B, 1 client"          ours "$ours_pid" "$ours_addr" --size 64
run    "raw 64 B, 1 client"          echo "$echo_pid" "$echo_addr" --size 64 --echo
run_tutorial "raw 64 B, 1 client"                                  --size 64
run    "raw 64 B, 64 clients"        ours "$ours_pid" "$ours_addr" --size 64 --clients 64
run    "raw 64 B, 64 clients"        echo "$echo_pid" "$echo_addr" --size 64 --clients 64 --echo
run    "framed 64 B, 1 client"       ours "$ours_pid" "$ours_addr" --size 64 --mode framed
run    "framed 64 B, 1 client"       echo "$echo_pid" "$echo_addr" --size 64 --echo
run    "framed 64 B, 64 clients"     ours "$ours_pid" "$ours_addr" --size 64 --mode framed --clients 64
run    "framed 64 B, 64 clients"     echo "$echo_pid" "$echo_addr" --size 64 --clients 64 --echo
run    "bulk 64 KiB, 1 client"       ours "$ours_pid" "$ours_addr" --size 65536 --type bytes --pipeline 4
run    "bulk 64 KiB, 1 client"       echo "$echo_pid" "$echo_addr" --size 65536 --type bytes --pipeline 4 --echo
run_tutorial "bulk 64 KiB, 1 client"                               --size 65536 --type bytes --pipeline 4
run    "1000 connections, 64 B"      ours "$ours_pid" "$ours_addr" --size 64 --clients 1000
run    "1000 connections, 64 B"      echo "$echo_pid" "$echo_addr" --size 64 --clients 1000 --echo

python3 - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
by = {}
for row in rows:
    by.setdefault(row["case"], {})[row["server"]] = row
print()
print(f"{'case':<26} {'ours':>12} {'echo':>12} {'ratio':>6}  {'target':<13} {'p99 µs ours/echo':>18} {'tutorial':>12}  notes")
failed = False
for case, servers in by.items():
    bulk = case.startswith("bulk")
    metric, unit, target = ("mb_per_s", "MB/s", 0.8) if bulk else ("requests_per_s", "req/s", 0.9)
    ours, echo, tut = servers.get("ours"), servers.get("echo"), servers.get("tutorial")
    fmt = lambda r: f"{r['report'][metric]:,.0f}" if r else "—"
    ratio = ours["report"][metric] / echo["report"][metric] if ours and echo and echo["report"][metric] else 0
    verdict = f"≥{target} {'met' if ratio >= target else 'MISSED'}"
    p99 = f"{ours['report']['latency_us']['p99']:.0f}/{echo['report']['latency_us']['p99']:.0f}"
    notes = []
    for name, row in servers.items():
        r = row["report"]
        if not r["ok"]:
            failed = True
            notes.append(f"{name} FAILED ({r['wrong_replies']} wrong, {r['failed_connections']} failed conns: "
                         f"{r['errors'][0]['message'] if r['errors'] else ''})")
        if r["clients"] >= 1000:
            notes.append(f"{name}: {r['connected']}/{r['clients']} connected, RSS {row['rss_kb']/1024:.0f} MiB")
    print(f"{case:<26} {fmt(ours):>12} {fmt(echo):>12} {ratio:>6.2f}  {verdict:<13} {p99:>18} {fmt(tut):>12}  {unit}; {'; '.join(notes)}")
print("\n(framed rows compare ours framed with the echo's raw round trips of the same size)")
sys.exit(1 if failed else 0)
PY
