#!/usr/bin/env bash
# XDP benchmark (issue 20): gslbd answering from AF_XDP sockets (`listen_xdp`, feature `xdp`)
# against gslbd in socket mode and gdnsd 3, over a veth pair between two network namespaces made
# for the run (198.18.0.1/30 client side, 198.18.0.2/30 server side: the benchmarking range; no
# other network is touched, nothing is routed out). One server at a time runs in the server
# namespace, with one answering thread (gslbd: workers = 1 and one XDP queue, the veth has one;
# gdnsd: udp_threads = 1); dnsperf runs in the client namespace with -c 2 -T 1.
#
#   benches/xdp.sh                 about 5 minutes with the defaults
#   DURATION=5 benches/xdp.sh      short runs, to check that it works
#   ROUNDS=3 benches/xdp.sh        every server three times, alternating; medians reported
#   benches/xdp.sh --no-build      use target/release/gslbd as it is (built with --features xdp)
#
# Scenarios, each against every server, once at saturation (dnsperf -q OUTSTANDING) and once at
# a fixed RATE (-Q), the same query files as benches/load.sh:
#   static  static.gslb.example A, EDNS0, no ECS
#   ecs     www.gslb.example A/AAAA, each query with its own ECS option, cycling through
#           ECS_SUBNETS distinct client subnets
# Reported per run: queries/s, p99 latency (dnsperf -v's per-query latencies), server CPU per
# answer (utime+stime of the server process from /proc/PID/stat), and machine CPU per answer
# (all busy CPU time from /proc/stat less dnsperf's own; saturation runs only: at a fixed rate
# dnsperf's pacing costs it more than the server uses, and the difference is noise). On a veth
# pair a process's CPU time holds kernel work done for the other side: sending a reply runs the
# client's receive path in softirq (the server pays for dnsperf's socket wake-ups), sending a
# query runs the server's receive path or XDP program (dnsperf pays). So the server figure
# swaps the server's receive path for the client's, and the machine figure is everything but
# dnsperf's own time (which still holds the server's receive path). Neither is what the server
# would cost behind a real NIC; both are shown, with the ratios XDP / sockets and XDP / gdnsd.
#
# Output: Markdown tables on stdout and beside RESULTS (.md), raw numbers in RESULTS (default
# benches/data/xdp-results.jsonl; benches/data/ is git-ignored).
# Environment (defaults): DURATION=20 (s per dnsperf run), RATE=20000, OUTSTANDING=100,
# ECS_SUBNETS=20000, ROUNDS=1, RESULTS=benches/data/xdp-results.jsonl, KEEP_WORK=1 keeps the
# temp dir (configs, logs).
# Needs: root (namespaces, XDP), iproute2, dnsperf 2.x, gdnsd 3, dig, python3 >= 3.11, cargo;
# the missing Debian packages are installed with apt-get. Every step is bounded (dnsperf -l,
# start-up deadlines); the namespaces, and every process started here, go on exit.
set -euo pipefail

export PYTHONDONTWRITEBYTECODE=1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
LOAD=$HERE/load

DURATION=${DURATION:-20}
RATE=${RATE:-20000}
OUTSTANDING=${OUTSTANDING:-100}
ECS_SUBNETS=${ECS_SUBNETS:-20000}
ROUNDS=${ROUNDS:-1}
RESULTS=${RESULTS:-$ROOT/benches/data/xdp-results.jsonl}
GSLBD=${GSLBD:-$ROOT/target/release/gslbd}
SAMPLE_DB=$ROOT/geodata/sample-city.mmdb
CLIENT_IP=198.18.0.1
SERVER_IP=198.18.0.2
PROBE_SUBNET=81.2.3.0/24 # London: eu-west
EXPECT=192.0.2.20

BUILD=1
for arg in "$@"; do
  case $arg in
    --no-build) BUILD=0 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done
for v in DURATION RATE OUTSTANDING ECS_SUBNETS ROUNDS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "$v must be a positive whole number" >&2; exit 2; }
done
[[ $(id -u) == 0 ]] || { echo "benches/xdp.sh needs root (network namespaces, XDP)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gslbd-xdp.XXXXXX")
RES=$WORK/results.jsonl
: >"$RES"
# Namespace and interface names of this run (interface names: at most 15 bytes).
NS_C=gslbd-bench-c$$
NS_S=gslbd-bench-s$$
VETH_C=gxbc$$
VETH_S=gxbs$$

# --- processes: every one this script starts is recorded as NAME:PID and stopped by PID ------
STARTED=()

# alive, stop_pid, stop, free_ports, install_missing, gslbd_under_test
source "$HERE/lib/common.sh"

cleanup() {
  local rc=$? entry
  trap - EXIT INT TERM
  for entry in ${STARTED[@]+"${STARTED[@]}"}; do
    stop_pid "${entry%%:*}" "${entry#*:}"
  done
  ip netns del "$NS_C" 2>/dev/null || true
  ip netns del "$NS_S" 2>/dev/null || true
  if [[ ${KEEP_WORK:-0} == 1 || $rc != 0 ]]; then
    echo "work dir kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

in_client() { ip netns exec "$NS_C" "$@"; }

# --- 1. what it needs -------------------------------------------------------------------------
LOADAVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== gslbd XDP benchmark: $(date -Is), $(nproc) cores, kernel $(uname -r), load average $LOADAVG_BEFORE"
if awk '{exit !($1 > 0.5)}' /proc/loadavg; then
  echo "   note: the machine is busy (load average $LOADAVG_BEFORE); the numbers will be noisy"
fi
PATH=$PATH:/usr/sbin
need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v dnsperf >/dev/null 2>&1 || need+=(dnsperf)
command -v gdnsd >/dev/null 2>&1 || need+=(gdnsd)
command -v dig >/dev/null 2>&1 || need+=(dnsutils)
install_missing ${need[@]+"${need[@]}"}
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "python3 >= 3.11 is needed" >&2; exit 2; }
DNSPERF_VERSION=$( (dnsperf -h 2>&1 || true) | sed -n 's/^Version //p' | head -n 1)
GDNSD_VERSION=$( (gdnsd -h 2>&1 || true) | sed -n 's/^gdnsd version \([^ ]*\).*/\1/p' | head -n 1)

gslbd_under_test "$BUILD" --features xdp
echo "== gslbd $GSLBD_VERSION, gdnsd $GDNSD_VERSION, dnsperf $DNSPERF_VERSION"
echo "== work dir $WORK; DURATION=${DURATION}s RATE=$RATE OUTSTANDING=$OUTSTANDING ROUNDS=$ROUNDS"

# --- 2. namespaces, veth pair, query files ----------------------------------------------------
ip netns add "$NS_C"
ip netns add "$NS_S"
ip -n "$NS_C" link add "$VETH_C" type veth peer name "$VETH_S" netns "$NS_S"
ip -n "$NS_C" addr add "$CLIENT_IP/30" dev "$VETH_C"
ip -n "$NS_S" addr add "$SERVER_IP/30" dev "$VETH_S"
for pair in "$NS_C:$VETH_C" "$NS_S:$VETH_S"; do
  ip -n "${pair%%:*}" link set lo up
  ip -n "${pair%%:*}" link set "${pair#*:}" up
done
echo "== namespaces $NS_C ($CLIENT_IP, $VETH_C) and $NS_S ($SERVER_IP, $VETH_S)"

Q=$WORK/queries
mkdir -p "$Q"
python3 "$LOAD/queries.py" single static.gslb.example A "$Q/static.bin"
python3 "$LOAD/queries.py" ecs --count "$ECS_SUBNETS" --seed 1 "$Q/ecs.bin" | sed 's/^/   /'

# --- servers ----------------------------------------------------------------------------------
# Each start sets PID (the server's), and waits until it answers the steered probe correctly.

# wait_answer NAME LOG: dig from the client namespace until www with ECS gives $EXPECT (30 s).
wait_answer() {
  local name=$1 log=$2 got
  for _ in $(seq 1 300); do
    got=$(in_client dig @"$SERVER_IP" www.gslb.example A +subnet="$PROBE_SUBNET" +short +time=1 +tries=1 2>/dev/null || true)
    [[ $got == "$EXPECT" ]] && return 0
    alive "$PID" || break
    sleep 0.1
  done
  tail -n 20 "$log" >&2
  echo "$name does not answer $EXPECT for $PROBE_SUBNET (got: ${got:-nothing})" >&2
  exit 1
}

start_gslbd() {
  local mode=$1 dir=$WORK/$1
  mkdir -p "$dir"
  {
    echo "listen = [\"$SERVER_IP:53\"]"
    [[ $mode == gslbd-xdp ]] && echo "listen_xdp = { interface = \"$VETH_S\", queues = [0] }"
    echo "zones = \"$ROOT/zones\""
    echo "geodata = \"$SAMPLE_DB\""
    printf '[dns]\nworkers = 1\n[log]\nformat = "json"\n[admin]\nlisten = "%s:8053"\nwatch = false\n' "$SERVER_IP"
  } >"$dir/gslbd.toml"
  ip netns exec "$NS_S" "$GSLBD" serve -c "$dir/gslbd.toml" >"$dir/gslbd.log" 2>&1 &
  PID=$!
  STARTED+=("gslbd:$PID")
  if [[ $mode == gslbd-xdp ]]; then
    for _ in $(seq 1 300); do grep -q "XDP listening" "$dir/gslbd.log" && break; alive "$PID" || break; sleep 0.1; done
    grep -q "XDP listening" "$dir/gslbd.log" || { tail -n 20 "$dir/gslbd.log" >&2; echo "no XDP" >&2; exit 1; }
    echo "   XDP attached to $VETH_S: $(grep -o '"mode":"[a-z]*"' "$dir/gslbd.log" | head -n 1)"
  fi
  wait_answer "$mode" "$dir/gslbd.log"
}

start_gdnsd() {
  local dir=$WORK/gdnsd
  rm -rf "$dir"
  mkdir -p "$dir"
  python3 "$LOAD/configs.py" gdnsd --template "$LOAD/gdnsd/config.in" \
    --zone "$LOAD/gdnsd/gslb.example.zone" --dir "$dir" --port 53 --geodata "$SAMPLE_DB"
  # Our address instead of loopback, one UDP and one TCP thread like gslbd's one worker.
  sed -i -e "s/listen => \[ 127\.0\.0\.1:53 \]/listen => [ $SERVER_IP:53 ]/" \
    -e 's/udp_threads => [0-9]*/udp_threads => 1/' -e 's/tcp_threads => [0-9]*/tcp_threads => 1/' \
    "$dir/etc/config"
  grep -q "listen => \[ $SERVER_IP:53 \]" "$dir/etc/config" || { echo "gdnsd config: listen not set" >&2; exit 1; }
  ip netns exec "$NS_S" gdnsd -c "$dir/etc" start >"$dir/gdnsd.log" 2>&1 &
  PID=$!
  STARTED+=("gdnsd:$PID")
  wait_answer gdnsd "$dir/gdnsd.log"
}

# perf SERVER SCENARIO MODE ROUND [measure.py options]: one dnsperf run from the client namespace.
perf() {
  local srv=$1 scen=$2 mode=$3 round=$4
  shift 4
  in_client python3 "$LOAD/measure.py" dnsperf --results "$RES" --work "$WORK" \
    --server "${srv/-socket/}" --pid "$PID" --address "$SERVER_IP" --port 53 \
    --scenario "$scen" --mode "$mode" --round "$round" --clients 2 --threads 1 \
    --outstanding "$OUTSTANDING" --duration "$DURATION" "$@"
}

# xdp_counters: the AF_XDP counters of the running gslbd, one line.
xdp_counters() {
  in_client python3 - "$SERVER_IP" <<'EOF'
import sys, urllib.request
text = urllib.request.urlopen(f"http://{sys.argv[1]}:8053/metrics", timeout=5).read().decode()
print("   " + ", ".join(l for l in text.splitlines() if l.startswith("gslbd_xdp_packets_total")))
EOF
}

# --- 3. runs ----------------------------------------------------------------------------------
echo "== runs: ${DURATION}s each; saturation = -c 2 -T 1 -q $OUTSTANDING, fixed = -Q $RATE"
for round in $(seq 1 "$ROUNDS"); do
  # Alternate the order between rounds, so that a drift of the machine does not favour one.
  servers=(gslbd-socket gslbd-xdp gdnsd)
  ((round % 2 == 0)) && servers=(gdnsd gslbd-xdp gslbd-socket)
  for srv in "${servers[@]}"; do
    echo "-- round $round: $srv"
    if [[ $srv == gdnsd ]]; then start_gdnsd; else start_gslbd "$srv"; fi
    for scen in static ecs; do
      perf "$srv" "$scen" sat "$round" --file "$Q/$scen.bin"
      perf "$srv" "$scen" fixed "$round" --file "$Q/$scen.bin" --rate "$RATE"
    done
    if [[ $srv == gslbd-xdp ]]; then xdp_counters; fi
    stop "${srv%%-*}" "$PID"
    if ip -n "$NS_S" link show "$VETH_S" | grep -q prog/xdp; then
      echo "XDP program still attached after $srv stopped" >&2
      exit 1
    fi
  done
done

# --- 4. report --------------------------------------------------------------------------------
mkdir -p "$(dirname "$RESULTS")"
cp "$RES" "$RESULTS"
echo
echo "== results (medians of $ROUNDS round(s)); raw: $RESULTS"
python3 - "$RES" "$GSLBD_VERSION" "$GDNSD_VERSION" "$DNSPERF_VERSION" "$(nproc)" "$(uname -r)" "$RATE" >"$WORK/report.md" <<'EOF'
import json, statistics, sys

path, gslbd, gdnsd, dnsperf, cores, kernel, rate = sys.argv[1:]
recs = [json.loads(l) for l in open(path)]
SERVERS = [("gslbd", "gslbd, sockets"), ("gslbd-xdp", "gslbd, XDP"), ("gdnsd", "gdnsd 3")]
FIELDS = ["qps", "p99_latency_s", "server_cpu_us_per_query", "machine_cpu_us_per_query_minus_dnsperf", "lost"]

def med(srv, scen, mode, field):
    vals = [r.get(field) for r in recs
            if r["server"] == srv and r["scenario"] == scen and r["mode"] == mode and r.get(field) is not None]
    return statistics.median(vals) if vals else None

def f(v, fmt):
    return "-" if v is None else fmt.format(v)

def ratio(a, b):
    return "-" if a is None or not b else f"{a / b:.2f}"

print(f"gslbd {gslbd}, gdnsd {gdnsd}, dnsperf {dnsperf}; {cores} cores, kernel {kernel}; "
      "veth pair between two network namespaces, one answering thread per server, dnsperf -c 2 -T 1.")
for scen, title in [("static", "static: `static.gslb.example A`, no ECS"),
                    ("ecs", "steered, ECS: `www.gslb.example` A/AAAA, a distinct client subnet per query")]:
    for mode, what in [("sat", "saturation"), ("fixed", f"fixed rate, {int(rate):,} queries/s")]:
        print(f"\n{title}; {what}\n")
        print("| server | queries/s | p99 latency ms | server CPU µs/answer | machine CPU µs/answer (less dnsperf) | lost |")
        print("|---|---:|---:|---:|---:|---:|")
        for srv, name in SERVERS:
            q, p99, cpu, mach, lost = (med(srv, scen, mode, k) for k in FIELDS)
            if mode == "fixed":
                mach = None  # dnsperf's own pacing CPU dwarfs the rest: the difference is noise
            print(f"| {name} | {f(q, '{:,.0f}')} | {f(p99 and p99 * 1000, '{:.3f}')} | {f(cpu, '{:.2f}')} | {f(mach, '{:.2f}')} | {f(lost, '{:.0f}')} |")
        x = {k: med("gslbd-xdp", scen, mode, k) for k in FIELDS}
        for srv, name in [("gslbd", "gslbd sockets"), ("gdnsd", "gdnsd")]:
            o = {k: med(srv, scen, mode, k) for k in FIELDS}
            if mode == "fixed":
                o["machine_cpu_us_per_query_minus_dnsperf"] = None
            print(f"| XDP / {name} | {ratio(x['qps'], o['qps'])} | {ratio(x['p99_latency_s'], o['p99_latency_s'])} "
                  f"| {ratio(x['server_cpu_us_per_query'], o['server_cpu_us_per_query'])} "
                  f"| {ratio(x['machine_cpu_us_per_query_minus_dnsperf'], o['machine_cpu_us_per_query_minus_dnsperf'])} | |")
EOF
cp "$WORK/report.md" "${RESULTS%.jsonl}.md"
cat "$WORK/report.md"
