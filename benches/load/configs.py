#!/usr/bin/env python3
"""Server configurations for benches/load.sh, written into its temp dir.

  configs.py gslbd --example gslbd.toml --out DIR/gslbd.toml --port P --admin-port A
                   --zones ZONES_DIR --geodata DB --state-file FILE
      A copy of the example config with only these changed: the DNS listen address
      (127.0.0.1:P), [admin] listen (127.0.0.1:A), [admin] watch = false, zones and geodata
      (absolute paths), [health] state_file, [log] level = "warn" (--log-level), and with
      --token the [admin] token. Fails if the example no
      longer has one of these keys.

  configs.py gdnsd --template benches/load/gdnsd/config.in --zone benches/load/gdnsd/gslb.example.zone
                   --dir DIR --port P --geodata DB
      DIR/etc/config from the template (@PORT@, @RUN_DIR@, @STATE_DIR@, @GEOIP_DB@ and
      @THREADS@ = the number of CPUs filled in),
      DIR/etc/zones/gslb.example, and the empty run and state dirs gdnsd needs.

  configs.py dnssec --zone-file ZONE.toml --gslbd GSLBD [--algorithm ALG]
      Signs a zone file (a copy: the file is changed): one combined signing key (CSK: flags
      257, `gslbd dnssec keygen --ksk`) for the file's origin, written next to it, and a
      `[dnssec]` table with that key appended. Prints the key's file stem. Fails if the file
      already has a [dnssec] table.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib


def toml_str(s):
    return json.dumps(s)  # a JSON string is a valid TOML basic string


def gslbd(a):
    # (section, key) -> new value; "" is the top level
    want = {
        ("", "listen"): f'[{toml_str(f"127.0.0.1:{a.port}")}]',
        ("", "zones"): toml_str(os.path.abspath(a.zones)),
        ("", "geodata"): toml_str(os.path.abspath(a.geodata)),
        ("log", "level"): toml_str(a.log_level),
        ("health", "state_file"): toml_str(os.path.abspath(a.state_file)),
        ("admin", "listen"): toml_str(f"127.0.0.1:{a.admin_port}"),
        ("admin", "watch"): "false",
    }
    if a.token:
        want[("admin", "token")] = toml_str(a.token)
    done = set()
    section = ""
    out = []
    with open(a.example) as f:
        for line in f:
            m = re.match(r"\s*\[([^\[\]]+)\]\s*(#.*)?$", line)
            if m:
                section = m.group(1).strip()
            m = re.match(r"(\s*)([A-Za-z_]+)(\s*=\s*)", line)
            if m and (section, m.group(2)) in want:
                key = (section, m.group(2))
                line = f"{m.group(1)}{m.group(2)}{m.group(3)}{want[key]}   # load benchmark\n"
                done.add(key)
            out.append(line)
    missing = set(want) - done
    if missing:
        sys.exit(f"{a.example}: keys not found: {sorted(missing)}")
    with open(a.out, "w") as f:
        f.write(f"# Written by benches/load/configs.py from {os.path.abspath(a.example)}\n")
        f.writelines(out)


def gdnsd(a):
    etc = os.path.join(a.dir, "etc")
    os.makedirs(os.path.join(etc, "zones"), exist_ok=True)
    for sub in ("run", "state"):
        os.makedirs(os.path.join(a.dir, sub), exist_ok=True)
    values = {
        "PORT": str(a.port),
        "RUN_DIR": os.path.abspath(os.path.join(a.dir, "run")),
        "STATE_DIR": os.path.abspath(os.path.join(a.dir, "state")),
        "GEOIP_DB": os.path.abspath(a.geodata),
        "THREADS": str(os.cpu_count() or 1),
    }
    with open(a.template) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace(f"@{k}@", v)
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        sys.exit(f"{a.template}: unknown placeholders {left}")
    with open(os.path.join(etc, "config"), "w") as f:
        f.write(text)
    with open(a.zone) as src, open(os.path.join(etc, "zones", "gslb.example"), "w") as dst:
        dst.write(src.read())


def dnssec(a):
    with open(a.zone_file, "rb") as f:
        zone = tomllib.load(f)
    if "dnssec" in zone:
        sys.exit(f"{a.zone_file}: already has a [dnssec] table")
    out = subprocess.run(
        [a.gslbd, "dnssec", "keygen", "--ksk", "--zone", zone["origin"], "--algorithm", a.algorithm,
         "--dir", os.path.dirname(os.path.abspath(a.zone_file))],
        capture_output=True, text=True, check=True).stdout
    stem = os.path.basename(out.strip().splitlines()[-1])
    with open(a.zone_file, "a") as f:
        f.write(f"\n# Appended by benches/load/configs.py: one CSK, written next to this file\n"
                f"[dnssec]\nkeys = [{toml_str(stem)}]\n")
    print(stem)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gslbd")
    for k in ("--example", "--out", "--zones", "--geodata", "--state-file"):
        g.add_argument(k, required=True)
    g.add_argument("--port", type=int, required=True)
    g.add_argument("--admin-port", type=int, required=True)
    g.add_argument("--log-level", default="warn")
    g.add_argument("--token", help="the admin API token (default: the example's)")
    g.set_defaults(fn=gslbd)
    d = sub.add_parser("gdnsd")
    for k in ("--template", "--zone", "--dir", "--geodata"):
        d.add_argument(k, required=True)
    d.add_argument("--port", type=int, required=True)
    d.set_defaults(fn=gdnsd)
    s = sub.add_parser("dnssec")
    s.add_argument("--zone-file", required=True)
    s.add_argument("--gslbd", required=True, help="the gslbd binary (for dnssec keygen)")
    s.add_argument("--algorithm", default="ecdsap256sha256", choices=("ecdsap256sha256", "ed25519"))
    s.set_defaults(fn=dnssec)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
