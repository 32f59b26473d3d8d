#!/usr/bin/env bash
# Loopback benchmark: `upcase serve` against its ceiling (a plain echo server
# with the same threading model, examples/plain_echo.rs) and against the
# tutorial's Python server, all measured by `upcase bench` in one run; then
# the same two servers over UDP (`upcase bench --udp`, one datagram per
# request, on the same port numbers).
#
#   benches/loopback.sh            # 5 s per measurement, about 2 minutes
#   DURATION=2 benches/loopback.sh
#   REPEAT=3 benches/loopback.sh   # every row 3 times, ours and echo alternating
#   SERVER=/tmp/other/upcase benches/loopback.sh   # measure another server binary
#   SERVE_ARGS="--udp-rate 0" benches/loopback.sh  # more arguments for ours
#
# The UDP rows measure speed from one source address: a server whose
# per-source rate limit (`--udp-rate`, 10,000 a second by default) is below
# the rate reached measures its limit instead (each dropped request stalls
# its client for --udp-timeout); pass `--udp-rate 0` to measure speed.
#
# With REPEAT, the table shows the median of the per-repetition ratios (each
# ours/echo pair runs back to back) and their range.
#
# Prints a table (ours beside the echo, the ratio, the target) and keeps the
# raw JSON reports in target/loopback/results.jsonl. `uptime` before and
# after goes to stderr: the numbers mean little on a loaded machine.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
TUTORIAL=${TUTORIAL:-tests/interop/tutorial_server.py}
UPCASE=target/release/upcase
SERVER=${SERVER:-$UPCASE}
REPEAT=${REPEAT:-1}
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
        addr=$(grep -o -m1 '127\.0\.0\.1:[0-9]*' "$OUT/$name.out" 2>/dev/null | head -n1 || true)
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
    printf '{"case":"%s","server":"%s","rep":%s,"rss_kb":%s,"report":%s}\n' \
        "$case" "$server" "$rep" "${rss:-0}" "$(cat "$OUT/bench.json")" >> "$RESULTS"
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

# shellcheck disable=SC2086 # SERVE_ARGS is a list of words
read -r ours_pid ours_addr < <(start ours "$SERVER" serve --listen 127.0.0.1:0 --quiet ${SERVE_ARGS:-})
read -r echo_pid echo_addr < <(start echo "$ECHO" --listen 127.0.0.1:0 --udp)
pids+=("$ours_pid" "$echo_pid")
echo "ours: $SERVER ${SERVE_ARGS:-} at $ours_addr (pid $ours_pid), echo: $echo_addr (pid $echo_pid), $DURATION s per run, $REPEAT repetitions" >&2
echo "load before: $(uptime)" >&2

for rep in $(seq "$REPEAT"); do
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
    # UDP: one datagram per request; the echo returns each datagram unchanged,
    # which for framed rows is a well-formed reply of the same size.
    run    "udp raw 64 B, 1 client"      ours "$ours_pid" "$ours_addr" --udp --size 64
    run    "udp raw 64 B, 1 client"      echo "$echo_pid" "$echo_addr" --udp --size 64 --echo
    run    "udp raw 64 B, 16 clients"    ours "$ours_pid" "$ours_addr" --udp --size 64 --clients 16
    run    "udp raw 64 B, 16 clients"    echo "$echo_pid" "$echo_addr" --udp --size 64 --clients 16 --echo
    run    "udp framed 64 B, 1 client"   ours "$ours_pid" "$ours_addr" --udp --size 64 --mode framed
    run    "udp framed 64 B, 1 client"   echo "$echo_pid" "$echo_addr" --udp --size 64 --mode framed --echo
    run    "udp framed 64 B, 16 clients" ours "$ours_pid" "$ours_addr" --udp --size 64 --mode framed --clients 16
    run    "udp framed 64 B, 16 clients" echo "$echo_pid" "$echo_addr" --udp --size 64 --mode framed --clients 16 --echo
done
echo "load after: $(uptime)" >&2

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
by = {}
for row in rows:
    by.setdefault(row["case"], {}).setdefault(row["server"], {})[row.get("rep", 1)] = row
print()
print(f"{'case':<28} {'ours':>12} {'echo':>12} {'ratio':>6} {'range':>11}  {'target':<13} {'p99 µs ours/echo':>18} {'tutorial':>12}  notes")
failed = False
for case, servers in by.items():
    bulk = case.startswith("bulk")
    udp = case.startswith("udp")
    metric, unit, target = ("mb_per_s", "MB/s", 0.8) if bulk else ("requests_per_s", "req/s", 0.9)
    ours, echo, tut = servers.get("ours", {}), servers.get("echo", {}), servers.get("tutorial", {})
    median = lambda reps, f: statistics.median(f(r) for r in reps.values()) if reps else None
    value = lambda r: r["report"][metric]
    fmt = lambda v: "—" if v is None else f"{v:,.0f}"
    # One ratio per repetition: ours and the echo measured back to back.
    ratios = [value(ours[rep]) / value(echo[rep]) for rep in ours if rep in echo and value(echo[rep])]
    ratio = statistics.median(ratios) if ratios else 0
    spread = f"{min(ratios):.2f}–{max(ratios):.2f}" if len(ratios) > 1 else ""
    # No UDP target was set; the ratio to the echo is shown all the same.
    verdict = "none set" if udp else f"≥{target} {'met' if ratio >= target else 'MISSED'}"
    p99 = lambda reps: median(reps, lambda r: r["report"]["latency_us"]["p99"])
    p99s = f"{fmt(p99(ours))}/{fmt(p99(echo))}"
    notes = []
    for name, reps in servers.items():
        for row in reps.values():
            r = row["report"]
            if not r["ok"]:
                failed = True
                notes.append(f"{name} FAILED ({r['wrong_replies']} wrong, {r['failed_connections']} failed conns, "
                             f"{r.get('loss_percent', 0):.2f} % lost: {r['errors'][0]['message'] if r['errors'] else ''})")
        last = list(reps.values())[-1]
        r = last["report"]
        if udp:
            notes.append(f"{name}: {sum(x['report']['lost'] for x in reps.values())} lost, "
                         f"{sum(x['report']['late_replies'] for x in reps.values())} late")
        if r["clients"] >= 1000:
            notes.append(f"{name}: {r['connected']}/{r['clients']} connected, RSS {last['rss_kb']/1024:.0f} MiB")
    print(f"{case:<28} {fmt(median(ours, value)):>12} {fmt(median(echo, value)):>12} {ratio:>6.2f} {spread:>11}  "
          f"{verdict:<13} {p99s:>18} {fmt(median(tut, value)):>12}  {unit}; {'; '.join(notes)}")
print("\n(medians over the repetitions; TCP framed rows compare ours framed with the echo's raw round trips of the same size;"
      " UDP framed rows compare with the echo returning the framed datagram unchanged)")
sys.exit(1 if failed else 0)
PY
