#!/usr/bin/env bash
# What `serve --metrics` costs: round trips against three `upcase serve`
# instances started the same way, one with `--metrics` ("with") and two
# without ("without", and "control"), each driven by its own `upcase bench`
# at the same time, so that whatever else loads the machine hits all alike
# (taking turns was tried first: on this shared machine the load changed
# more between two turns than the metrics cost).
#
# Prints, per case, the median round trips per second of each side, and the
# server's CPU time per round trip: each server's user + system time
# (/proc/PID/stat) read around every run, summed over all runs of a side,
# divided by the requests answered. The control is a second server without
# metrics: how far control/without is from 1 is how far two identical
# servers differ in this run, i.e. the resolution of with/without.
# Target: with/without at most 3 % more CPU per round trip and at least
# 0.97 of the round trips (when control/without is closer to 1 than that).
# The metrics side is scraped at the end, to show it counted.
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
read -r control_pid control_addr < <(start control)
read -r metered_pid metered_addr metrics_addr < <(start metered --metrics 127.0.0.1:0)
pids+=("$plain_pid" "$control_pid" "$metered_pid")
echo "without: $plain_addr, control: $control_addr, with: $metered_addr (metrics at $metrics_addr); $ROUNDS rounds of $DURATION s" >&2
echo "load before: $(uptime)" >&2

# run CASE [bench args...]: every side at once, appended to $RESULTS.
run() {
    local case=$1; shift
    local sides=(without control with) side
    local -A pid_of=([without]=$plain_pid [control]=$control_pid [with]=$metered_pid)
    local -A addr_of=([without]=$plain_addr [control]=$control_addr [with]=$metered_addr)
    local -A before benches
    for side in "${sides[@]}"; do before[$side]=$(cpu_ticks "${pid_of[$side]}"); done
    for side in "${sides[@]}"; do
        "$UPCASE" bench "${addr_of[$side]}" --json --duration "$DURATION" "$@" > "$OUT/$side.json" &
        benches[$side]=$!
    done
    for side in "${sides[@]}"; do wait "${benches[$side]}"; done
    for side in "${sides[@]}"; do
        printf '{"case":"%s","side":"%s","cpu_us":%s,"report":%s}\n' "$case" "$side" \
            "$(( ($(cpu_ticks "${pid_of[$side]}") - before[$side]) * TICK_US ))" "$(cat "$OUT/$side.json")" >> "$RESULTS"
    done
}

for round in $(seq "$ROUNDS"); do
    echo "round $round of $ROUNDS" >&2
    for case in "framed 64 B, 1 client" "framed 64 B, 64 clients" "raw 64 B, 64 clients"; do
        case $case in
            "framed 64 B, 1 client") args=(--size 64 --mode framed) ;;
            "framed 64 B, 64 clients") args=(--size 64 --mode framed --clients 64) ;;
            "raw 64 B, 64 clients") args=(--size 64 --clients 64) ;;
        esac
        run "$case" "${args[@]}"
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
print(f"{'case':<24} {'req/s: without':>14} {'control':>8} {'with':>8} {'ctl/w/o':>8} {'with/w/o':>9}"
      f"   {'CPU µs/req: without':>19} {'control':>7} {'with':>6} {'ctl/w/o':>8} {'with/w/o':>9}")
for case, sides in cases.items():
    rps = {side: statistics.median(sides[side]["rps"]) for side in sides}
    cpu = {side: sides[side]["cpu_us"] / sides[side]["requests"] for side in sides}
    print(f"{case:<24} {rps['without']:>14,.0f} {rps['control']:>8,.0f} {rps['with']:>8,.0f}"
          f" {rps['control'] / rps['without']:>8.3f} {rps['with'] / rps['without']:>9.3f}"
          f"   {cpu['without']:>19.2f} {cpu['control']:>7.2f} {cpu['with']:>6.2f}"
          f" {cpu['control'] / cpu['without']:>8.3f} {cpu['with'] / cpu['without']:>9.3f}")
    for side in ("without", "control", "with"):
        print(f"{'':<24} runs (req/s) {side}: {', '.join(f'{x:,.0f}' for x in sides[side]['rps'])}")
print("\n(req/s: median of the runs; CPU µs/req: the server's user + system time over all runs of a side,"
      " divided by the requests answered. control/without shows how far two identical servers differ;"
      " target: with/without CPU ≤ 1.03 and req/s ≥ 0.97, read against that)")
PY
