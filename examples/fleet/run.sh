#!/usr/bin/env bash
# A fleet on one machine, in one command: etcd and three gslbd instances (ns1, ns2, ns3) on
# loopback, serving the shipped example zones, with a tiny health endpoint for eu-west that the
# demo fails for some vantage points only. Ctrl-C stops everything.
#
#   examples/fleet/run.sh
#
# Then, in another shell (the script prints these too):
#   curl -s http://127.0.0.1:8061/v1/cluster | python3 -m json.tool      # the fleet view
#   dig @127.0.0.1 -p 5361 www.gslb.example A +subnet=81.2.3.0/24 +short  # ns1; 5362 ns2, 5363 ns3
#   touch /tmp/gslbd-fleet-demo/fail-ns1                                  # eu-west down for ns1 only
#   touch /tmp/gslbd-fleet-demo/fail-ns2                                  # … and ns2: a majority
#   cargo run --features cluster -- override gslb.example/eu-west drain --config /tmp/gslbd-fleet-demo/ns3/gslbd.toml
#
# Needs etcd (Debian etcd-server) and protoc (protobuf-compiler) to build the `cluster` feature;
# both are installed with apt when missing. Only loopback addresses are used.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=/tmp/gslbd-fleet-demo
rm -rf "$WORK" && mkdir -p "$WORK"

need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v protoc >/dev/null || need+=(protobuf-compiler)
if [ ${#need[@]} -gt 0 ]; then
  sudo=(); [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
fi
(cd "$ROOT" && cargo build --release --features cluster -q)
BIN=$ROOT/target/release/gslbd

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

etcd --name demo --data-dir "$WORK/etcd" \
  --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
  --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
  --initial-cluster demo=http://127.0.0.1:23800 --log-level error >"$WORK/etcd.log" 2>&1 &
pids+=($!)

# eu-west's health endpoint: 503 to an instance whose file fail-<instance> exists, else 200.
python3 - "$WORK" >"$WORK/endpoint.log" 2>&1 <<'PY' &
import http.server, os, sys
work = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        who = self.headers.get("X-Gslbd-Instance", "")
        down = os.path.exists(os.path.join(work, f"fail-{who}"))
        self.send_response(503 if down else 200)
        self.end_headers()
        self.wfile.write(b"down\n" if down else b"ok\n")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", 18090), H).serve_forever()
PY
pids+=($!)

for i in 1 2 3; do
  d=$WORK/ns$i && mkdir -p "$d/zones"
  # The example zone, with a probe on eu-west (every 1 s, down after 2 failures).
  sed 's|^\[regions.eu-west\]$|[regions.eu-west]\nprobe = { url = "http://127.0.0.1:18090/health", interval = 1, timeout = 0.5, rise = 2, fall = 2 }|' \
    "$ROOT/zones/gslb.example.toml" >"$d/zones/gslb.example.toml"
  cp "$ROOT/zones/gslb.example.zone" "$d/zones/"
  cat >"$d/gslbd.toml" <<TOML
listen = ["127.0.0.1:536$i"]
zones = "zones"
geodata = "$ROOT/geodata/sample-city.mmdb"
[admin]
listen = "127.0.0.1:806$i"
token = "fleet-demo-token-change-me"
[cluster]
endpoints = ["http://127.0.0.1:23790"]
instance = "ns$i"
prefix = "/gslbd-demo"
down = "majority"
lease_ttl = 5
TOML
  "$BIN" serve --config "$d/gslbd.toml" >"$d/gslbd.log" 2>&1 &
  pids+=($!)
done

sleep 2
cat <<TXT
A fleet of three is running (logs and configs in $WORK):
  ns1 DNS 127.0.0.1:5361  admin http://127.0.0.1:8061/   (status page, /v1/cluster, /metrics)
  ns2 DNS 127.0.0.1:5362  admin http://127.0.0.1:8062/
  ns3 DNS 127.0.0.1:5363  admin http://127.0.0.1:8063/
  etcd http://127.0.0.1:23790 (prefix /gslbd-demo)

Try:
  for p in 5361 5362 5363; do dig @127.0.0.1 -p \$p www.gslb.example A +subnet=81.2.3.0/24 +short; done
  touch $WORK/fail-ns1       # eu-west fails for ns1 only: every instance still answers it
  touch $WORK/fail-ns2       # and for ns2: a majority, every instance moves London to us-east
  rm $WORK/fail-ns*          # back
  $BIN override gslb.example/eu-west drain --config $WORK/ns3/gslbd.toml   # all three drain
  $BIN override gslb.example/eu-west auto --config $WORK/ns1/gslbd.toml

Ctrl-C stops everything.
TXT
wait
