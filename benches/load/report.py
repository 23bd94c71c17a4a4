#!/usr/bin/env python3
"""Markdown tables (stdout) and one JSON file from the results of benches/load.sh.

  report.py --results results.jsonl --meta meta.json --json OUT.json [--markdown OUT.md]

results.jsonl has one object per measurement (written by measure.py); meta.json describes the
run (versions, settings, machine). OUT.json gets {"meta": ..., "records": [...]}.
"""

import argparse
import json

SCENARIOS = [
    ("static", "static: `static.gslb.example A`, no ECS"),
    ("www", "steered, no ECS: `www.gslb.example A`"),
    ("ecs", "steered, ECS: `www.gslb.example` A/AAAA, distinct client subnets"),
]


def ms(v):
    return "-" if v is None else f"{v * 1000:.3f}"


def num(v, fmt="{:,.0f}"):
    return "-" if v is None else fmt.format(v)


def us(v):
    return "-" if v is None else f"{v:.2f}"


def ratio(a, b, fmt="{:.2f}"):
    if a is None or b is None or b == 0:
        return "-"
    return fmt.format(a / b)


def find(records, **kw):
    for r in records:
        if all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


def lost(r):
    if r is None:
        return "-"
    return f"{r.get('lost', 0):,} / {r.get('sent', 0):,}"


def load_table(records, db, scenarios, meta):
    """One row per scenario and server plus a ratio row: saturation and fixed-rate figures."""
    rate = meta["rate"]
    out = [
        f"| scenario | server | max qps | lost / sent | avg ms | p99 ms | CPU µs/q | "
        f"{rate // 1000}k qps: avg ms | p99 ms | CPU µs/q | lost |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for key, title in scenarios:
        rows = {}
        for srv in ("gslbd", "gdnsd"):
            s = find(records, kind="dnsperf", db=db, scenario=key, mode="sat", server=srv)
            f = find(records, kind="dnsperf", db=db, scenario=key, mode="fixed", server=srv)
            rows[srv] = (s, f)
            if s is None and f is None:
                continue
            g = lambda r, k: None if r is None else r.get(k)  # noqa: E731
            out.append(
                f"| {key} | {srv} | {num(g(s, 'qps'))} | {lost(s)} | {ms(g(s, 'avg_latency_s'))} | "
                f"{ms(g(s, 'p99_latency_s'))} | {us(g(s, 'server_cpu_us_per_query'))} | "
                f"{ms(g(f, 'avg_latency_s'))} | {ms(g(f, 'p99_latency_s'))} | "
                f"{us(g(f, 'server_cpu_us_per_query'))} | {num(g(f, 'lost'), '{:,}')} |")
        (s1, f1), (s2, f2) = rows["gslbd"], rows["gdnsd"]
        if s1 and s2:
            g = lambda r, k: None if r is None else r.get(k)  # noqa: E731
            out.append(
                f"| {key} | **gslbd/gdnsd** | {ratio(g(s1, 'qps'), g(s2, 'qps'))} | | "
                f"{ratio(g(s1, 'avg_latency_s'), g(s2, 'avg_latency_s'))} | "
                f"{ratio(g(s1, 'p99_latency_s'), g(s2, 'p99_latency_s'))} | "
                f"{ratio(g(s1, 'server_cpu_us_per_query'), g(s2, 'server_cpu_us_per_query'))} | "
                f"{ratio(g(f1, 'avg_latency_s'), g(f2, 'avg_latency_s'))} | "
                f"{ratio(g(f1, 'p99_latency_s'), g(f2, 'p99_latency_s'))} | "
                f"{ratio(g(f1, 'server_cpu_us_per_query'), g(f2, 'server_cpu_us_per_query'))} | |")
    return out


def client_table(records, db):
    """dnsperf's own CPU and the kernel's UDP buffer drops, for the record."""
    out = ["| run | server | dnsperf CPU µs/q | server CPU (share of one core) | kernel UDP drops | response bytes |",
           "|---|---|--:|--:|--:|--:|"]
    for r in records:
        if r.get("kind") != "dnsperf" or r.get("db") != db:
            continue
        out.append(f"| {db} {r['scenario']} {r['mode']} | {r['server']} | {us(r.get('dnsperf_cpu_us_per_query'))} | "
                   f"{r.get('server_cpu_share', 0) * 100:.0f}% | {r.get('kernel_udp_buffer_drops', '-')} | "
                   f"{r.get('resp_size', '-')} |")
    return out


def mib(kib):
    return "-" if kib is None else f"{kib / 1024:.1f}"


def real_table(records, meta):
    out = ["| server | start → first correct answer | RSS after start MiB | peak (HWM) MiB | "
           f"RSS after {meta['big_subnets'] // 1000}k subnets MiB | peak MiB | "
           f"CPU µs/q ({meta['big_subnets'] // 1000}k subnets) | qps |",
           "|---|--:|--:|--:|--:|--:|--:|--:|"]
    vals = {}
    for srv in ("gslbd", "gdnsd"):
        st = find(records, kind="startup", db="real", server=srv)
        m0 = find(records, kind="memory", db="real", server=srv, when="after start-up")
        m1 = find(records, kind="memory", db="real", server=srv, when=f"after {meta['big_subnets']} subnets")
        big = find(records, kind="dnsperf", db="real", scenario="ecs-big", server=srv)
        if not (st or m0 or big):
            continue
        g = lambda r, k: None if r is None else r.get(k)  # noqa: E731
        vals[srv] = [g(st, "startup_s"), g(m0, "VmRSS"), g(m0, "VmHWM"), g(m1, "VmRSS"), g(m1, "VmHWM"),
                     g(big, "server_cpu_us_per_query"), g(big, "qps")]
        v = vals[srv]
        out.append(f"| {srv} | {num(v[0], '{:.3f} s')} | {mib(v[1])} | {mib(v[2])} | {mib(v[3])} | "
                   f"{mib(v[4])} | {us(v[5])} | {num(v[6])} |")
    if len(vals) == 2:
        a, b = vals["gslbd"], vals["gdnsd"]
        out.append("| **gslbd/gdnsd** | " + " | ".join(ratio(x, y) for x, y in zip(a, b)) + " |")
    return out


def reload_table(records):
    out = ["| server | how | reload done after | sent | lost | max latency ms | RSS after MiB | peak MiB |",
           "|---|---|--:|--:|--:|--:|--:|--:|"]
    for srv, how in (("gslbd", "new file renamed over the old + SIGHUP"),
                     ("gdnsd", "new file renamed over the old (watched)")):
        r = find(records, kind="reload", server=srv)
        if r is None:
            continue
        done = "not seen" if r.get("reload_s") is None else f"{r['reload_s']:.2f} s"
        out.append(f"| {srv} | {how} | {done} | {r.get('sent', 0):,} | {r.get('lost', 0):,} | "
                   f"{ms(r.get('max_latency_s'))} | {mib(r.get('after_VmRSS'))} | {mib(r.get('after_VmHWM'))} |")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--markdown")
    a = ap.parse_args()
    with open(a.meta) as f:
        meta = json.load(f)
    records = []
    with open(a.results) as f:
        for line in f:
            if line.strip():
                records.append(json.loads(line))
    with open(a.json, "w") as f:
        json.dump({"meta": meta, "records": records}, f, indent=1, sort_keys=True)

    md = []
    md.append(f"Side-by-side load test, gslbd {meta['gslbd_version']} vs gdnsd {meta['gdnsd_version']}, "
              f"{meta['date']}, {meta['cores']} cores, load average before {meta['loadavg']}; "
              f"dnsperf {meta['dnsperf_version']} over UDP on 127.0.0.1, {meta['duration']} s per run, "
              f"saturation `-c {meta['clients']} -q {meta['outstanding']}`, fixed rate `-Q {meta['rate']}`. "
              f"Both servers with one UDP thread per core (gslbd `workers = 0`, gdnsd `udp_threads = {meta['cores']}`), "
              f"both running while each is measured; each scenario runs against gslbd, then gdnsd. "
              f"CPU µs/q = server utime+stime over queries answered; latency percentiles from dnsperf -v. "
              f"The ECS file has {meta['ecs_subnets']:,} distinct client subnets (IPv4 /24, IPv6 /48 and /56; "
              f"A and AAAA).")
    md.append("")
    md.append("Lost = queries dnsperf got no answer for within 2 s; the kernel's UDP buffer drops "
              "(receive or send buffer full) are in the details below. At saturation dnsperf and the "
              "server share the cores, so \"max qps\" is the pair's limit; at the fixed rate the CPU "
              "per query includes a wake-up per packet or two.")
    md.append("")
    has_sample = any(r.get("db") == "sample" and r.get("kind") == "dnsperf" for r in records)
    if has_sample:
        md.append("**Sample database** (`geodata/sample-city.mmdb`):")
        md.append("")
        md += load_table(records, "sample", SCENARIOS, meta)
        md.append("")
    if any(r.get("db") == "real" for r in records):
        md.append(f"**GeoLite2-City** ({meta.get('real_db_size_mb', '?')} MB), steered with ECS:")
        md.append("")
        md += load_table(records, "real", [("ecs", "")], meta)
        md.append("")
        md.append(f"Start-up, memory and CPU per query through {meta['big_subnets']:,} distinct subnets "
                  f"(one pass at saturation):")
        md.append("")
        md += real_table(records, meta)
        md.append("")
        md.append(f"Database replaced during a {meta['reload_duration']} s run at a fixed "
                  f"{meta['reload_rate']:,} qps (ECS queries), 3 s in. gdnsd reloads by itself, after 5 s "
                  f"without further changes to the file and another 7 s of quiescence before the swap:")
        md.append("")
        md += reload_table(records)
        md.append("")
    for ag in (r for r in records if r.get("kind") == "agreement"):
        name = "GeoLite2-City" if ag["db"] == "real" else "sample database"
        md.append(f"Answer agreement ({name}): {ag['compared']:,} client subnets asked of both, "
                  f"{ag['differ']} differ in the address, {ag['scope_differ']} in the ECS scope.")
        if ag["first_mismatches"]:
            md.append("")
            md.append("```text")
            md += ag["first_mismatches"]
            md.append("```")
        md.append("")
    md.append("<details><summary>dnsperf CPU, server CPU share, kernel drops, response sizes</summary>")
    md.append("")
    for db in ("sample", "real"):
        if any(r.get("db") == db and r.get("kind") == "dnsperf" for r in records):
            rows = client_table(records, db)
            md += rows if not any(line.startswith("| run ") for line in md) else rows[2:]
    md.append("")
    md.append("</details>")
    text = "\n".join(md) + "\n"
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
