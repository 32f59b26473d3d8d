#!/usr/bin/env bash
# Hostile-load benchmarks of issues 9 and 17: each script attacks a fresh
# `upcase serve` (default settings, a free port) from 127.0.0.1 while a
# well-behaved client at 127.0.0.2 measures what it still gets, beside a
# baseline measured in the same run.
#
#   benches/hostile/run.sh                      # build, then every script
#   benches/hostile/run.sh scale udp_flood      # some of them
#   UPCASE=/tmp/old/upcase benches/hostile/run.sh   # another binary, no build
#   SERVE_ARGS="--max-connections 16000" benches/hostile/run.sh scale
#
# Each script caps its own run time and `timeout` caps it again; the server
# is killed after each script and on any exit. Results (one JSON object per
# script) go to target/hostile/results.jsonl, the server's log to
# target/hostile/NAME.err; the table is printed at the end. About 6 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=target/hostile
RESULTS=$OUT/results.jsonl
if [ -z "${UPCASE:-}" ]; then
    cargo build --release --quiet -p upcase-cli --bin upcase
    UPCASE=target/release/upcase
fi
SCRIPTS=("$@")
[ ${#SCRIPTS[@]} -gt 0 ] || SCRIPTS=(fair_slots never_reading udp_flood scale metrics_attack)
mkdir -p "$OUT"
: > "$RESULTS"

server_pid=""
stop_server() {
    if [ -n "$server_pid" ]; then
        kill -9 "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap stop_server EXIT INT TERM

echo "binary: $UPCASE ${SERVE_ARGS:+(serve $SERVE_ARGS)}; $(nproc) cores, shared: numbers are noisy" >&2
for name in "${SCRIPTS[@]}"; do
    # metrics_attack attacks the metrics endpoint: serve it, and say where.
    extra=()
    [ "$name" = metrics_attack ] && extra=(--metrics 127.0.0.1:0)
    # shellcheck disable=SC2086 # SERVE_ARGS is a list of words
    "$UPCASE" serve --listen 127.0.0.1:0 ${SERVE_ARGS:-} "${extra[@]}" > "$OUT/$name.out" 2> "$OUT/$name.err" &
    server_pid=$!
    addr=""
    for _ in $(seq 100); do
        # upcase listening on tcp 127.0.0.1:PORT, udp 127.0.0.1:PORT
        addr=$(sed -n '1s/^.*listening on tcp \([0-9.]*:[0-9]*\).*/\1/p' "$OUT/$name.out")
        [ -n "$addr" ] && break
        kill -0 "$server_pid" 2>/dev/null || { echo "run.sh: the server exited: $(cat "$OUT/$name.err")" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$addr" ] || { echo "run.sh: the server printed no listening line within 10 s" >&2; exit 1; }
    script_args=(--addr "$addr" --pid "$server_pid")
    if [ ${#extra[@]} -gt 0 ]; then
        # upcase metrics on http://127.0.0.1:PORT/metrics (the second line)
        metrics=$(sed -n '2s|^upcase metrics on http://\([0-9.]*:[0-9]*\)/metrics$|\1|p' "$OUT/$name.out")
        [ -n "$metrics" ] || { echo "run.sh: the server printed no metrics line" >&2; exit 1; }
        script_args+=(--metrics-addr "$metrics")
    fi
    echo "== $name against $addr (pid $server_pid), $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    if timeout -k 5 200 python3 "benches/hostile/$name.py" "${script_args[@]}" --json > "$OUT/$name.json"; then
        :
    else
        echo "run.sh: $name failed (exit $?)" >&2
    fi
    log_bytes=$(stat -c %s "$OUT/$name.err")
    stop_server
    [ -s "$OUT/$name.json" ] && python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r["server_log_bytes"]=int(sys.argv[2]); print(json.dumps(r))' "$OUT/$name.json" "$log_bytes" >> "$RESULTS"
    sleep 2  # let TIME_WAIT and the load settle a little
done

python3 - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print(f"\n{'script':<14} {'goal':<52} {'measured':>12} {'baseline':>12}  target")
missed = 0
for row in rows:
    for g in row["goals"]:
        fmt = lambda v: "—" if v is None else (f"{v:,.2f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v))
        verdict = "met" if g["met"] else "MISSED"
        missed += not g["met"]
        print(f"{row['script']:<14} {g['goal']:<52} {fmt(g['measured']):>12} {fmt(g['baseline']):>12}  {g['target']} {verdict}")
    print(f"{'':<14} server log: {row['server_log_bytes']:,} bytes; {row['load']}")
print(f"\n{missed} goals missed; details in {sys.argv[1]}")
PY
