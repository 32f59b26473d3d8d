#!/usr/bin/env bash
# What `serve --metrics` costs: round trips against two `upcase serve`
# instances started the same way, one with `--metrics` and one without,
# measured by `upcase bench` in one run, taking turns (A B, then B A, …) so
# that a change of load on the machine hits both alike.
#
# Prints, per case, the median round trips per second of each side and
# their ratio, and the server's CPU time per round trip: each server's
# user + system time (/proc/PID/stat) read around every run, summed over
# all runs of a side, divided by the requests answered. Throughput on a
# shared 2-core machine swings by 2× from run to run; CPU per round trip is
# what the metrics cost the server, and far less disturbed by other load.
# Target: at most 3 % more CPU per round trip, at least 0.97 of the round
# trips. The metrics side is scraped at the end, to show it counted.
#
#   benches/metrics_cost.sh             # 5 rounds of 4 s per case and side
#   ROUNDS=3 DURATION=2 benches/metrics_cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-4}
UPCASE=target/release/upcase
OUT=target/metrics_cost
RESULTS=$OUT/results.jsonl
TICK_US=$((1000000 / $(getconf CLK_TCK)))

cargo build --release --quiet --bin upcase
mkdir -p "$OUT"
: > "$RESULTS"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# start NAME ARGS...: start `upcase serve`, wait for its output, print
# "PID TCP_ADDR [METRICS_ADDR]".
start() {
    local name=$1; shift
    "$UPCASE" serve --listen 127.0.0.1:0 --quiet "$@" > "$OUT/$name.out" 2> "$OUT/$name.err" &
    local pid=$!
    pids+=("$pid")
    local want=1
    [[ " $* " == *" --metrics "* ]] && want=2
    for _ in $(seq 100); do
        [ "$(wc -l < "$OUT/$name.out")" -ge "$want" ] && break
        kill -0 "$pid" 2>/dev/null || { echo "metrics_cost.sh: $name exited: $(cat "$OUT/$name.err")" >&2; exit 1; }
        sleep 0.1
    done
    local tcp metrics
    tcp=$(sed -n '1s/^upcase listening on tcp \([^,]*\).*/\1/p' "$OUT/$name.out")
    metrics=$(sed -n '2s|^upcase metrics on http://\(.*\)/metrics$|\1|p' "$OUT/$name.out")
    [ -n "$tcp" ] || { echo "metrics_cost.sh: $name printed no address" >&2; exit 1; }
    echo "$pid $tcp $metrics"
}

# cpu_ticks PID: the process's user + system CPU time, in clock ticks.
cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}

read -r plain_pid plain_addr < <(start plain)
read -r metered_pid metered_addr metrics_addr < <(start metered --metrics 127.0.0.1:0)
pids+=("$plain_pid" "$metered_pid")
echo "without: $plain_addr, with: $metered_addr (metrics at $metrics_addr); $ROUNDS rounds of $DURATION s" >&2
echo "load before: $(uptime)" >&2

# run CASE SIDE PID ADDR [bench args...]: one measurement, appended to $RESULTS.
run() {
    local case=$1 side=$2 pid=$3 addr=$4; shift 4
    local before after
    before=$(cpu_ticks "$pid")
    "$UPCASE" bench "$addr" --json --duration "$DURATION" "$@" > "$OUT/bench.json"
    after=$(cpu_ticks "$pid")
    printf '{"case":"%s","side":"%s","cpu_us":%s,"report":%s}\n' \
        "$case" "$side" "$(( (after - before) * TICK_US ))" "$(cat "$OUT/bench.json")" >> "$RESULTS"
}

for round in $(seq "$ROUNDS"); do
    echo "round $round of $ROUNDS" >&2
    for case in "framed 64 B, 1 client" "framed 64 B, 64 clients" "raw 64 B, 64 clients"; do
        case $case in
            "framed 64 B, 1 client") args=(--size 64 --mode framed) ;;
            "framed 64 B, 64 clients") args=(--size 64 --mode framed --clients 64) ;;
            "raw 64 B, 64 clients") args=(--size 64 --clients 64) ;;
        esac
        # Which side goes first alternates from round to round.
        if [ $((round % 2)) -eq 1 ]; then
            run "$case" without "$plain_pid" "$plain_addr" "${args[@]}"
            run "$case" with "$metered_pid" "$metered_addr" "${args[@]}"
        else
            run "$case" with "$metered_pid" "$metered_addr" "${args[@]}"
            run "$case" without "$plain_pid" "$plain_addr" "${args[@]}"
        fi
    done
done
echo "load after: $(uptime)" >&2

scrape=$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' "http://$metrics_addr/metrics")
echo "scrape of the metered server: $(echo "$scrape" | grep '^upcase_frames_received_total{type="TEXT"}')" >&2

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
cases = {}
for row in rows:
    assert row["report"]["ok"], f"{row['case']} {row['side']} failed: {row['report']['errors'][:1]}"
    side = cases.setdefault(row["case"], {}).setdefault(row["side"], {"rps": [], "cpu_us": 0, "requests": 0})
    side["rps"].append(row["report"]["requests_per_s"])
    side["cpu_us"] += row["cpu_us"]
    side["requests"] += row["report"]["requests"]
print()
print(f"{'case':<24} {'req/s without':>13} {'with':>9} {'ratio':>6}   {'CPU µs/req without':>18} {'with':>6} {'ratio':>6}")
for case, sides in cases.items():
    w, m = sides["without"], sides["with"]
    rps_w, rps_m = statistics.median(w["rps"]), statistics.median(m["rps"])
    cpu_w, cpu_m = w["cpu_us"] / w["requests"], m["cpu_us"] / m["requests"]
    print(f"{case:<24} {rps_w:>13,.0f} {rps_m:>9,.0f} {rps_m / rps_w:>6.3f}   {cpu_w:>18.2f} {cpu_m:>6.2f} {cpu_m / cpu_w:>6.3f}")
    print(f"{'':<24} runs (req/s) without: {', '.join(f'{x:,.0f}' for x in w['rps'])}; with: {', '.join(f'{x:,.0f}' for x in m['rps'])}")
print("\n(req/s: median of the runs; CPU µs/req: the server's user + system time over all runs of a side,"
      " divided by the requests answered. Target: with/without CPU ≤ 1.03, req/s ≥ 0.97)")
PY
