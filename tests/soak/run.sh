#!/usr/bin/env bash
# Soak test of gslbd: steady dnsperf load, a checker that verifies every answer against the
# ground truth of flapping fake health endpoints (including windows where every region is down),
# zone reloads every 30 s, and RSS sampling. Everything runs on 127.0.0.1 and stops by itself.
#
#   tests/soak/run.sh                      # 600 s
#   DURATION=60 tests/soak/run.sh          # a quick check
#   DURATION=600 tests/soak/run.sh 2>&1 | tee tests/soak/last-run.txt
#
# Environment: DURATION (seconds, default 600), QPS (dnsperf rate, default 2000),
# KEEP_WORK=1 keeps the temp dir (config, gslbd.log, truth.jsonl, violations.jsonl, dnsperf.out).
# Exit status: 0 pass, 1 a check failed, 2 the test could not run.
# The checks and the detection window are described in tests/soak/soak.py.
set -euo pipefail

DURATION=${DURATION:-600}
QPS=${QPS:-2000}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

if ! [[ $DURATION =~ ^[0-9]+$ ]] || ((DURATION < 40)); then
  echo "DURATION must be a whole number of seconds, at least 40" >&2
  exit 2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gslbd-soak.XXXXXX")
DRIVER_PID=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # The driver stops gslbd and dnsperf itself; if it is still running, ask it, then insist.
  if [[ -n $DRIVER_PID ]] && kill -0 "$DRIVER_PID" 2>/dev/null; then
    kill -TERM "$DRIVER_PID" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$DRIVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DRIVER_PID" 2>/dev/null || true
  fi
  # Anything the driver started that is still there (it records each pid), by pid only, and
  # only if that pid is still the program it started.
  if [[ -f $WORK/pids ]]; then
    while read -r what pid; do
      if [[ -e /proc/$pid ]] && [[ $(basename "$(readlink "/proc/$pid/exe" 2>/dev/null || true)") == "$what" ]]; then
        echo "cleanup: stopping leftover $what (pid $pid)" >&2
        kill -TERM "$pid" 2>/dev/null || true
        sleep 1
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done <"$WORK/pids"
  fi
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

echo "== gslbd soak test: DURATION=${DURATION}s QPS=${QPS}, $(date -Is), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. what it needs
if ! command -v dnsperf >/dev/null 2>&1; then
  echo "== installing dnsperf"
  if ! { timeout 300 apt-get update && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y dnsperf; } >"$WORK/apt.log" 2>&1; then
    tail -n 30 "$WORK/apt.log" >&2
    echo "could not install dnsperf" >&2
    exit 2
  fi
fi
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 2; }
echo "== $(dnsperf -h 2>&1 | grep -m1 Version || echo 'dnsperf (version unknown)'), $(python3 --version)"

echo "== building gslbd (cargo build --release)"
t0=$(date +%s)
if ! (cd "$ROOT" && timeout 2400 cargo build --release --bin gslbd) >"$WORK/build.log" 2>&1; then
  tail -n 40 "$WORK/build.log" >&2
  echo "build failed" >&2
  exit 2
fi
echo "== built in $(($(date +%s) - t0))s: $ROOT/target/release/gslbd ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && git diff --quiet HEAD -- src Cargo.toml 2>/dev/null || echo ', with uncommitted changes in src'))"

# 2-4. config, fakes, gslbd, dnsperf, checker, reloads, RSS, summary: the driver does it all
# (the fakes and the checker share one clock there). It is bounded: DURATION plus start-up
# (at most 30 s) and the wind-down; `timeout` is the backstop.
set +e
timeout --kill-after=15 $((DURATION + 180)) \
  python3 -u "$HERE/soak.py" --root "$ROOT" --work "$WORK" --duration "$DURATION" --qps "$QPS" &
DRIVER_PID=$!
wait "$DRIVER_PID"
rc=$?
set -e
DRIVER_PID=""
if ((rc == 124 || rc == 137)); then
  echo "soak driver overran its time limit" >&2
  rc=2
fi
echo "== generated config (gslbd.toml and the zone as last written):"
sed 's/^token = .*/token = "<random>"/' "$WORK/gslbd.toml" 2>/dev/null | sed 's/^/   /' || true
sed 's/^/   /' "$WORK/zones/gslb.example.toml" 2>/dev/null || true
echo "== exit $rc"
exit "$rc"
