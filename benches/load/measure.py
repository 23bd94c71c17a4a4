#!/usr/bin/env python3
"""Measurements for benches/load.sh. Each subcommand appends one JSON object per line to the
results file (--results) and prints a short summary line; benches/load/report.py turns the
results into Markdown tables.

  dnsperf   one dnsperf run against a server: throughput, lost queries, latency (average and
            percentiles from dnsperf -v's per-query latencies), server CPU time per answered
            query (utime+stime of the server process, all threads, from /proc/PID/stat before
            and after), dnsperf's own CPU (rusage of the child) and the whole machine's busy
            time less dnsperf's (/proc/stat: the server plus softirq work wherever it ran)
  expect    the VIP a steered answer must carry for a client subnet: the database location of
            the subnet (mmdblookup) and the nearest region of zones/gslb.example.toml
  wait      poll a freshly launched server every ~10 ms until www.gslb.example answers the
            expected VIP for a subnet; records the time since launch
  mem       VmRSS and VmHWM of a process (/proc/PID/status)
  agree     ask both servers the same ECS queries and count differing first addresses
  reload    the DB-reload check: dnsperf at a fixed rate while the database file is replaced
            by rename (and, for gslbd, SIGHUP is sent); records lost queries and reload time
  signed    the DNSSEC check of benches/dnssec.sh: the queries of a "SUBNET TYPE" list asked
            with and without the DO bit; every DO answer must carry an RRSIG over its addresses
            and no other answer any RRSIG (exit status 1 otherwise)
"""

import argparse
import array
import ipaddress
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnswire  # noqa: E402

STEERED = "www.gslb.example"
TICK = os.sysconf("SC_CLK_TCK")


# --- /proc ---------------------------------------------------------------------------------

def cpu_seconds(pid):
    """utime + stime of a process, all its threads (live and exited), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15 (proc(5))
    return (int(fields[11]) + int(fields[12])) / TICK


def memory_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0])
    return out


def machine_busy_seconds():
    """CPU time of the whole machine spent not idle (user, nice, system, irq, softirq, steal:
    /proc/stat's first line), in seconds. Unlike a process's own time this includes the
    softirq work done on its behalf in other contexts (packets crossing a veth pair)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


def udp_drops():
    """Kernel UDP receive-buffer and send-buffer errors (all sockets; on loopback these are
    the packets dropped because a socket's buffer was full)."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    counters = dict(zip(rows[0][1:], map(int, rows[1][1:])))
    return counters.get("RcvbufErrors", 0) + counters.get("SndbufErrors", 0)


def append(results, record):
    with open(results, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


# --- dnsperf -------------------------------------------------------------------------------

STAT_PATTERNS = {
    "sent": r"Queries sent:\s+(\d+)",
    "completed": r"Queries completed:\s+(\d+)",
    "lost": r"Queries lost:\s+(\d+)",
    "interrupted": r"Queries interrupted:\s+(\d+)",
    "run_time_s": r"Run time \(s\):\s+([\d.]+)",
    "qps": r"Queries per second:\s+([\d.]+)",
    "avg_latency_s": r"Average Latency \(s\):\s+([\d.]+)",
    "max_latency_s": r"Average Latency \(s\):.*max ([\d.]+)",
    "req_size": r"Average packet size:\s+request (\d+)",
    "resp_size": r"Average packet size:.*response (\d+)",
}


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def dnsperf_command(a, duration):
    cmd = ["dnsperf", "-B", "-d", a.file, "-s", a.address, "-p", str(a.port),
           "-c", str(a.clients), "-q", str(a.outstanding), "-t", str(a.timeout),
           "-l", str(duration), "-v"]
    if a.threads:
        cmd += ["-T", str(a.threads)]
    if a.rate:
        cmd += ["-Q", str(a.rate)]
    if a.passes:
        cmd += ["-n", str(a.passes)]
    return cmd


def run_dnsperf(a, duration, during=None):
    """Runs dnsperf to completion, measuring the server's CPU around it. `during(proc)` is
    called right after dnsperf starts (the reload check uses it) and returns extra fields."""
    out_path = os.path.join(a.work, f"dnsperf-{os.getpid()}-{time.monotonic_ns()}.out")
    cmd = dnsperf_command(a, duration)
    cpu0 = cpu_seconds(a.pid)
    busy0 = machine_busy_seconds()
    drops0 = udp_drops()
    t0 = time.monotonic()
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        extra = {}
        try:
            if during:
                extra = during(proc) or {}
        finally:
            _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    cpu1 = cpu_seconds(a.pid)
    busy1 = machine_busy_seconds()
    drops1 = udp_drops()
    code = os.waitstatus_to_exitcode(status)

    # dnsperf -v prints one line per query: "> RCODE <query> LATENCY", or "> T <query>" for a
    # timeout. Everything else is the summary.
    latencies = array.array("d")
    summary = []
    rcodes = {}
    timeouts = 0
    with open(out_path, "rb") as f:
        for raw in f:
            if raw.startswith(b"> "):
                parts = raw.split()
                if parts[1] == b"T":
                    timeouts += 1
                    continue
                rc = parts[1].decode()
                rcodes[rc] = rcodes.get(rc, 0) + 1
                try:
                    latencies.append(float(parts[-1]))
                except ValueError:
                    pass
            else:
                summary.append(raw.decode(errors="replace"))
    text = "".join(summary)
    if a.keep_output:
        with open(out_path + ".summary", "w") as f:
            f.write(text)
    os.unlink(out_path)
    if code != 0 or "Statistics:" not in text:
        sys.stderr.write(text[-3000:])
        raise SystemExit(f"dnsperf failed (exit {code}): {' '.join(cmd)}")

    rec = {"kind": "dnsperf", "cmd": " ".join(cmd), "wall_s": round(wall, 3)}
    for key, pat in STAT_PATTERNS.items():
        m = re.search(pat, text)
        if m:
            rec[key] = float(m.group(1)) if "." in m.group(1) else int(m.group(1))
    lat = sorted(latencies)
    for name, p in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9)):
        v = percentile(lat, p)
        rec[f"{name}_latency_s"] = v
    rec["rcodes"] = rcodes
    rec["timeouts"] = timeouts
    rec["kernel_udp_buffer_drops"] = drops1 - drops0
    completed = rec.get("completed", 0)
    rec["server_cpu_s"] = round(cpu1 - cpu0, 3)
    rec["server_cpu_us_per_query"] = (cpu1 - cpu0) * 1e6 / completed if completed else None
    client_cpu = usage.ru_utime + usage.ru_stime
    rec["dnsperf_cpu_s"] = round(client_cpu, 3)
    rec["dnsperf_cpu_us_per_query"] = client_cpu * 1e6 / completed if completed else None
    rec["server_cpu_share"] = round((cpu1 - cpu0) / rec.get("run_time_s", wall), 3)
    # Everything the machine did but dnsperf's own process time: the server, and the kernel's
    # packet work in softirq wherever it ran (an upper bound of the server's cost).
    rec["machine_busy_s"] = round(busy1 - busy0, 3)
    rec["machine_cpu_us_per_query_minus_dnsperf"] = (
        (busy1 - busy0 - client_cpu) * 1e6 / completed if completed else None)
    rec.update(extra)
    return rec


def fmt_ms(v):
    return "-" if v is None else f"{v * 1000:.3f}"


def summary_line(rec):
    return (f"{rec['server']:6} {rec.get('scenario', ''):14} {rec.get('mode', ''):6} "
            f"qps {rec.get('qps', 0):>9.0f}  completed {rec.get('completed', 0):>8}  "
            f"lost {rec.get('lost', 0):>4} (kernel drops {rec['kernel_udp_buffer_drops']})  avg {fmt_ms(rec.get('avg_latency_s'))} ms  "
            f"p99 {fmt_ms(rec.get('p99_latency_s'))} ms  server CPU "
            f"{rec['server_cpu_us_per_query'] or 0:.2f} us/q ({rec['server_cpu_share'] * 100:.0f}% "
            f"of a core)  dnsperf {rec['dnsperf_cpu_us_per_query'] or 0:.2f} us/q")


def cmd_dnsperf(a):
    rec = run_dnsperf(a, a.duration)
    rec.update({"server": a.server, "db": a.db, "scenario": a.scenario, "mode": a.mode,
                "rate": a.rate or None})
    if a.round is not None:
        rec["round"] = a.round
    append(a.results, rec)
    print("   " + summary_line(rec), flush=True)


# --- expected answers ----------------------------------------------------------------------

def load_zone(path):
    with open(path, "rb") as f:
        zone = tomllib.load(f)
    regions = {}
    for name, r in zone["regions"].items():
        v4 = [v for v in r["vips"] if ipaddress.ip_address(v).version == 4]
        v6 = [v for v in r["vips"] if ipaddress.ip_address(v).version == 6]
        regions[name] = {"location": r["location"], "A": v4, "AAAA": v6}
    default = zone.get("geo", {}).get("default", {}).get("regions") or zone["services"]["www"]["regions"]
    return regions, default


def great_circle_km(a, b):
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


def db_location(db, addr):
    """(lat, lon, country) of an address according to the database, None fields if unknown."""
    def field(*path):
        p = subprocess.run(["mmdblookup", "--file", db, "--ip", str(addr), *path],
                           capture_output=True, text=True, timeout=30)
        m = re.search(r'^\s*"?([^"<]*?)"?\s*<', p.stdout, re.M)
        return m.group(1) if p.returncode == 0 and m else None
    lat, lon = field("location", "latitude"), field("location", "longitude")
    country = field("country", "iso_code") or field("registered_country", "iso_code")
    return (float(lat) if lat else None, float(lon) if lon else None, country)


def region_order(regions, default, loc):
    if loc[0] is None:
        return [(r, None) for r in default]
    d = [(name, great_circle_km(loc, r["location"])) for name, r in regions.items()]
    return sorted(d, key=lambda x: x[1])


def expected(zone_path, db, subnet, qtype):
    regions, default = load_zone(zone_path)
    net = ipaddress.ip_network(subnet)
    loc = db_location(db, net.network_address)
    order = region_order(regions, default, loc)
    return regions[order[0][0]][qtype][0], order[0][0], loc


def cmd_expect(a):
    ip, region, loc = expected(a.zone, a.geodata, a.subnet, a.qtype)
    print(ip)
    print(f"   expected answer for {a.subnet} {a.qtype}: {ip} ({region}; database location {loc})",
          file=sys.stderr)


# --- start-up time -------------------------------------------------------------------------

def cmd_wait(a):
    """Poll with 10 ms timeouts until the expected answer arrives. Started before the server:
    it creates LAUNCH_FILE.ready once it runs, and load.sh then starts the server and writes
    "LAUNCH_NS PID" to LAUNCH_FILE (LAUNCH_NS: wall clock in ns right before the launch), so
    neither the poller's nor the shell's start-up counts."""
    open(a.launch_file + ".ready", "w").close()
    client = dnswire.Client(a.port)
    net = ipaddress.ip_network(a.subnet)
    deadline = time.monotonic() + a.timeout
    launch = None
    polls = 0
    last = None
    while time.monotonic() < deadline:
        if launch is None and os.path.exists(a.launch_file):
            with open(a.launch_file) as f:
                since_ns, pid = map(int, f.read().split())
            launch = (since_ns, pid)
        if launch is not None and not os.path.exists(f"/proc/{launch[1]}"):
            raise SystemExit(f"{a.server} (pid {launch[1]}) exited during start-up")
        polls += 1
        r = client.ask(STEERED, a.qtype, ecs=net, timeout=a.interval, tries=1)
        if r is None:
            continue
        last = r
        if not any(addr == a.expect for _, _, addr in r["answers"]):
            continue
        done_ns = time.time_ns()
        while launch is None and time.monotonic() < deadline:  # the shell is about to write it
            time.sleep(0.001)
            if os.path.exists(a.launch_file):
                with open(a.launch_file) as f:
                    launch = tuple(map(int, f.read().split()))
        elapsed = (done_ns - launch[0]) / 1e9
        rec = {"kind": "startup", "server": a.server, "db": a.db, "startup_s": elapsed,
               "polls": polls, "subnet": a.subnet, "answer": a.expect, "ecs_scope": r["ecs_scope"]}
        rec.update({f"startup_{k}": v for k, v in memory_kib(launch[1]).items()})
        append(a.results, rec)
        print(f"   {a.server}: first correct answer ({a.expect} for {a.subnet}, ECS scope "
              f"/{r['ecs_scope']}) {elapsed:.3f} s after launch", flush=True)
        return
    raise SystemExit(f"{a.server}: no correct answer within {a.timeout} s (last answer: {last})")


# --- memory --------------------------------------------------------------------------------

def cmd_mem(a):
    m = memory_kib(a.pid)
    append(a.results, {"kind": "memory", "server": a.server, "db": a.db, "when": a.when, **m})
    print(f"   {a.server}: {a.when}: VmRSS {m['VmRSS'] / 1024:.1f} MiB, VmHWM {m['VmHWM'] / 1024:.1f} MiB",
          flush=True)


# --- answer agreement ----------------------------------------------------------------------

def cmd_agree(a):
    regions, default = load_zone(a.zone)
    vip_region = {ip: name for name, r in regions.items() for ip in r["A"] + r["AAAA"]}
    pairs = []
    for path in a.list:
        with open(path) as f:
            pairs += [line.split() for line in f if line.strip()][: a.count]
    ga, gd = dnswire.Client(a.gslbd_port), dnswire.Client(a.gdnsd_port)
    mismatches, scope_diff, unanswered = [], [], 0
    dist = {"gslbd": {}, "gdnsd": {}}
    for subnet, qtype in pairs:
        net = ipaddress.ip_network(subnet)
        r1 = ga.ask(STEERED, qtype, ecs=net)
        r2 = gd.ask(STEERED, qtype, ecs=net)
        if r1 is None or r2 is None:
            unanswered += 1
            continue
        f1 = r1["answers"][0][2] if r1["answers"] else None
        f2 = r2["answers"][0][2] if r2["answers"] else None
        for srv, first in (("gslbd", f1), ("gdnsd", f2)):
            reg = vip_region.get(first, str(first))
            dist[srv][reg] = dist[srv].get(reg, 0) + 1
        if r1["ecs_scope"] != r2["ecs_scope"]:
            scope_diff.append(f"{subnet} {qtype}: gslbd {f1} /{r1['ecs_scope']}, gdnsd {f2} /{r2['ecs_scope']}")
        if f1 != f2:
            mismatches.append((subnet, qtype, f1, r1["ecs_scope"], f2, r2["ecs_scope"]))
    compared = len(pairs) - unanswered
    print(f"   compared {compared} subnets ({unanswered} unanswered): {len(mismatches)} differ in "
          f"the first address, {len(scope_diff)} in the ECS scope")
    for srv in ("gslbd", "gdnsd"):
        print(f"   {srv} answers by region: " +
              ", ".join(f"{k} {v}" for k, v in sorted(dist[srv].items())))
    shown = []
    for subnet, qtype, f1, s1, f2, s2 in mismatches[:20]:
        net = ipaddress.ip_network(subnet)
        loc = db_location(a.geodata, net.network_address)
        order = region_order(regions, default, loc)
        near = ", ".join(f"{n} {d:.0f} km" if d is not None else n for n, d in order[:2])
        line = (f"{subnet:24} {qtype:4}  gslbd {f1} /{s1}  gdnsd {f2} /{s2}  "
                f"db: {loc[0]},{loc[1]} {loc[2]}  nearest: {near}")
        shown.append(line)
        print("     " + line)
    if scope_diff:
        print("   first ECS scope differences:")
        for line in scope_diff[:5]:
            print("     " + line)
    append(a.results, {"kind": "agreement", "db": a.db, "compared": compared,
                       "unanswered": unanswered, "differ": len(mismatches),
                       "scope_differ": len(scope_diff), "regions": dist, "first_mismatches": shown,
                       "first_scope_differences": scope_diff[:20]})


# --- DB reload under load --------------------------------------------------------------------

def gslbd_reloads(admin_port):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    m = re.search(r'^gslbd_config_reloads_total\{result="ok"\}\s+(\d+)', text, re.M)
    return int(m.group(1)) if m else 0


def gdnsd_db_loads(log):
    with open(log, errors="replace") as f:
        return f.read().count("runtime db updated")


def cmd_reload(a):
    def during(proc):
        time.sleep(a.after)
        before = gslbd_reloads(a.admin_port) if a.server == "gslbd" else gdnsd_db_loads(a.log)
        # A new file next to the configured one, renamed over it: the running server keeps
        # its mapping of the old file.
        tmp = a.geodata + ".new"
        shutil.copyfile(a.geodata, tmp)
        t0 = time.monotonic()
        os.rename(tmp, a.geodata)
        if a.server == "gslbd":
            os.kill(a.pid, signal.SIGHUP)
        done = None
        # (waitid with WNOWAIT: whether dnsperf has ended, without reaping it; run_dnsperf
        # collects its exit status and CPU usage with wait4 afterwards)
        while time.monotonic() - t0 < a.duration and os.waitid(
                os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            now = gslbd_reloads(a.admin_port) if a.server == "gslbd" else gdnsd_db_loads(a.log)
            if now > before:
                done = time.monotonic() - t0
                break
            time.sleep(0.02)
        return {"reload_s": done, "reload_at_s": a.after}

    rec = run_dnsperf(a, a.duration, during=during)
    rec.update({"kind": "reload", "server": a.server, "db": a.db, "scenario": "ecs", "mode": "reload",
                "rate": a.rate})
    rec.update({f"after_{k}": v for k, v in memory_kib(a.pid).items()})
    append(a.results, rec)
    how = "rename + SIGHUP" if a.server == "gslbd" else "rename (gdnsd watches the file)"
    took = f"reloaded {rec['reload_s']:.2f} s after the rename" if rec["reload_s"] is not None \
        else "NO RELOAD SEEN before dnsperf ended"
    print(f"   {a.server}: DB replaced ({how}) {a.after:.0f} s into a {a.duration} s run at "
          f"{a.rate} qps: {took}; sent {rec.get('sent')}, lost {rec.get('lost')}, "
          f"max latency {fmt_ms(rec.get('max_latency_s'))} ms", flush=True)


# --- DNSSEC: RRSIGs with DO, none without -----------------------------------------------------

def cmd_signed(a):
    """Asks www with each subnet of the list, A or AAAA as listed, once with DO and once
    without: with DO the answer section must hold the addresses and an RRSIG covering their
    type, without DO no RRSIG at all."""
    with open(a.list) as f:
        pairs = [line.split() for line in f if line.strip()][: a.count]
    client = dnswire.Client(a.port)
    bad, unanswered, signed = [], 0, 0
    for subnet, qtype in pairs:
        net = ipaddress.ip_network(subnet)
        for do in (True, False):
            r = client.ask(STEERED, qtype, ecs=net, dnssec_ok=do)
            if r is None or r["rcode"] != 0:
                unanswered += 1
                continue
            types = {t for t, _, _ in r["answers"]}
            if do and (types != {qtype} or qtype not in r["rrsigs"]):
                bad.append(f"{subnet} {qtype} +DO: answers {r['answers']}, RRSIGs over {r['rrsigs']}")
            elif not do and r["rrsigs"]:
                bad.append(f"{subnet} {qtype} (no DO): RRSIGs over {r['rrsigs']}")
            elif do:
                signed += 1
    client.close()
    append(a.results, {"kind": "signed-check", "asked": len(pairs), "signed": signed,
                       "unanswered": unanswered, "bad": bad[:20], "bad_count": len(bad)})
    print(f"   {len(pairs)} subnets asked with and without DO: {signed} DO answers carry an RRSIG "
          f"over their addresses; {len(bad)} wrong, {unanswered} unanswered", flush=True)
    for line in bad[:10]:
        print("     " + line)
    if bad or unanswered:
        raise SystemExit("DNSSEC check failed: DO answers without RRSIGs (or RRSIGs without DO)")


# --- command line --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p, pid=True):
        p.add_argument("--results", required=True)
        p.add_argument("--server", choices=("gslbd", "gslbd-xdp", "gdnsd"))
        p.add_argument("--db", default="sample")
        if pid:
            p.add_argument("--pid", type=int, required=True)

    def perf(p):
        p.add_argument("--work", required=True, help="scratch dir for dnsperf output")
        p.add_argument("--address", default="127.0.0.1", help="the server's address (dnsperf -s)")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--file", required=True, help="query file in dnsperf -B format")
        p.add_argument("--duration", type=int, required=True)
        p.add_argument("--rate", type=int, default=0, help="dnsperf -Q; 0 = as fast as it can")
        p.add_argument("--passes", type=int, default=0, help="dnsperf -n; 0 = no limit")
        p.add_argument("--clients", type=int, default=4)
        p.add_argument("--threads", type=int, default=0, help="dnsperf -T; 0 = its default")
        p.add_argument("--outstanding", type=int, default=200)
        p.add_argument("--timeout", type=int, default=2)
        p.add_argument("--keep-output", action="store_true")

    p = sub.add_parser("dnsperf")
    common(p)
    perf(p)
    p.add_argument("--scenario", required=True)
    p.add_argument("--mode", required=True)
    p.add_argument("--round", type=int, help="which of repeated runs this is (recorded)")
    p.set_defaults(fn=cmd_dnsperf)

    p = sub.add_parser("expect")
    p.add_argument("--zone", required=True)
    p.add_argument("--geodata", required=True)
    p.add_argument("--subnet", required=True)
    p.add_argument("--qtype", default="A")
    p.set_defaults(fn=cmd_expect)

    p = sub.add_parser("wait")
    common(p, pid=False)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--launch-file", required=True)
    p.add_argument("--subnet", required=True)
    p.add_argument("--qtype", default="A")
    p.add_argument("--expect", required=True)
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--timeout", type=float, default=120)
    p.set_defaults(fn=cmd_wait)

    p = sub.add_parser("mem")
    common(p)
    p.add_argument("--when", required=True)
    p.set_defaults(fn=cmd_mem)

    p = sub.add_parser("agree")
    common(p, pid=False)
    p.add_argument("--zone", required=True)
    p.add_argument("--geodata", required=True)
    p.add_argument("--list", required=True, action="append", help="SUBNET TYPE lines; repeatable")
    p.add_argument("--count", type=int, default=2000, help="at most this many from each list")
    p.add_argument("--gslbd-port", type=int, required=True)
    p.add_argument("--gdnsd-port", type=int, required=True)
    p.set_defaults(fn=cmd_agree)

    p = sub.add_parser("reload")
    common(p)
    perf(p)
    p.add_argument("--geodata", required=True, help="the database path the server was configured with")
    p.add_argument("--after", type=float, default=3.0, help="seconds into the run to replace the DB")
    p.add_argument("--admin-port", type=int, help="gslbd: admin port (reload counter in /metrics)")
    p.add_argument("--log", help="gdnsd: its stderr log (counts 'runtime db updated')")
    p.set_defaults(fn=cmd_reload)

    p = sub.add_parser("signed")
    p.add_argument("--results", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--list", required=True, help="SUBNET TYPE lines (queries.py ecs --list)")
    p.add_argument("--count", type=int, default=1000, help="at most this many of the list")
    p.set_defaults(fn=cmd_signed)

    a = ap.parse_args()
    if getattr(a, "cmd", None) == "agree":
        a.server = None
    a.fn(a)


if __name__ == "__main__":
    main()
