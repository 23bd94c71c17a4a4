#!/usr/bin/env python3
"""The report of benches/dnssec.sh: Markdown tables from the results of benches/load/measure.py
(JSON lines: the dnsperf runs, the start-up of the signed example zone, the DNSSEC check) and
of benches/scale.py (RESULTS=...: start-up and reloads of the generated zones, unsigned and
signed), and the whole as one JSON file.

  dnssec_report.py --results RES.jsonl --meta META.json --scale SCALE.json [--scale ...]
                   --json OUT.json [--markdown OUT.md]

CPU per query: the median over the rounds of each scenario; the ratio signed/unsigned is that
of the medians (and, for the record, the spread of the ratios of the pairs, run back to back).
Checks, exit status 1 when one fails: every DO run's average response is larger than the
unsigned run of its pair by at least MIN_RRSIG_BYTES (else the answers were not signed), and
every run answered NOERROR only.
"""

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import mib, ms, num, us  # noqa: E402  (number formats of benches/load.sh)

# An RRSIG over an A RRset signed by gslb.example.: 10 bytes of RR header (the owner compressed
# to 2), 18 of fixed RDATA, the signer's name (14) and a 64-byte ECDSA P-256 or Ed25519
# signature: 106 bytes. Less than this much growth means no signature in the answers.
MIN_RRSIG_BYTES = 90

# (unsigned scenario, signed scenario, what)
PAIRS = [
    ("ecs", "ecs-do", "steered with ECS: `www.gslb.example` A/AAAA, {subnets:,} client subnets"),
    ("static", "static-do", "static: `static.gslb.example` A (two addresses)"),
]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def runs(records, scenario):
    return sorted((r for r in records if r.get("kind") == "dnsperf" and r.get("scenario") == scenario),
                  key=lambda r: r.get("round", 0))


def spread(values, fmt):
    values = [v for v in values if v is not None]
    return f"{fmt(min(values))}–{fmt(max(values))}" if values else "-"


def cpu_table(records, meta, problems):
    """One row per scenario (DO off, DO on) and a ratio row per pair; returns (lines, verdicts)."""
    out = ["| queries | DO | runs | CPU µs/q, median (min–max) | qps, median | response bytes | "
           "p99 ms, median | lost / sent |",
           "|---|---|--:|--:|--:|--:|--:|--:|"]
    summary = {}
    for plain, signed, what in PAIRS:
        what = what.format(subnets=meta["ecs_subnets"])
        med = {}
        for scen, do in ((plain, "no"), (signed, "**yes**")):
            rs = runs(records, scen)
            if not rs:
                problems.append(f"no dnsperf runs of {scen}")
                continue
            cpu = [r.get("server_cpu_us_per_query") for r in rs]
            med[scen] = {"cpu": median(cpu), "qps": median(r.get("qps") for r in rs),
                         "resp": median(r.get("resp_size") for r in rs),
                         "p99": median(r.get("p99_latency_s") for r in rs)}
            lost = sum(r.get("lost", 0) for r in rs)
            sent = sum(r.get("sent", 0) for r in rs)
            out.append(f"| {what} | {do} | {len(rs)} | {us(med[scen]['cpu'])} ({spread(cpu, us)}) | "
                       f"{num(med[scen]['qps'])} | {num(med[scen]['resp'])} | {ms(med[scen]['p99'])} | "
                       f"{lost:,} / {sent:,} |")
            for r in rs:
                bad = {k: v for k, v in r.get("rcodes", {}).items() if k != "NOERROR"}
                if bad:
                    problems.append(f"{scen} round {r.get('round')}: response codes {bad}")
        if plain not in med or signed not in med:
            continue
        a, b = med[signed], med[plain]
        # the pairs, run back to back: signed CPU over the unsigned CPU of the same round
        by_round = {r.get("round"): r for r in runs(records, plain)}
        pair_ratios = []
        for r in runs(records, signed):
            p = by_round.get(r.get("round"))
            if p and r.get("server_cpu_us_per_query") and p.get("server_cpu_us_per_query"):
                pair_ratios.append(r["server_cpu_us_per_query"] / p["server_cpu_us_per_query"])
            if p and (r.get("resp_size") or 0) < (p.get("resp_size") or 0) + MIN_RRSIG_BYTES:
                problems.append(f"{signed} round {r.get('round')}: average response {r.get('resp_size')} "
                                f"bytes vs {p.get('resp_size')} without DO: the DO answers carry no RRSIG")
        ratio = a["cpu"] / b["cpu"] if a["cpu"] and b["cpu"] else None
        pr = spread(pair_ratios, lambda v: f"{v:.2f}")
        out.append(f"| **signed / unsigned** | | | **×{ratio:.2f}** (pairs {pr}) | "
                   f"×{a['qps'] / b['qps']:.2f} | +{a['resp'] - b['resp']:.0f} | "
                   f"×{a['p99'] / b['p99']:.2f} | |" if ratio else "| **signed / unsigned** | | | - | | | | |")
        summary[plain] = {"unsigned_cpu_us": b["cpu"], "signed_cpu_us": a["cpu"], "ratio": ratio,
                          "pair_ratios": pair_ratios}
    return out, summary


def scale_rows(scale):
    """The rows of one scale.py run (settings, results)."""
    st = scale["settings"]
    per_name = "all" if not st["SERVICE_REGIONS"] else str(st["SERVICE_REGIONS"])
    rows = []
    for r in scale["results"]:
        rl = r["reloads_s"]
        reloads = (f"{statistics.median(rl) * 1000:,.0f} ms ({min(rl) * 1000:,.0f}–{max(rl) * 1000:,.0f})"
                   if rl else "-")
        start = r["mem_start"]["VmRSS"] if r.get("mem_start") else None
        if r["first_answer_s"] is not None:
            first = f"{r['first_answer_s'] * 1000:,.0f} ms"
        else:
            first = f"**did not start**: {r['aborted']}"
        rows.append(
            f"| {r['names']:,} × {per_name} of {st['REGIONS']:,} | {'**yes**' if r['signed'] else 'no'} | "
            f"{r['steered_rrsets'] if r['signed'] else 0:,} | {first} | "
            f"{'-' if r['compiled_ms'] is None else format(r['compiled_ms'], ',') + ' ms'} | "
            f"{reloads} | {mib(start)} / {mib(r.get('peak_kib'))} |")
    return rows


def signing_rate(scales):
    """From a run where both the unsigned and the signed zone started: the extra compile time
    and memory per steered RRset signed at load. None when there is no such run."""
    for sc in scales:
        res = sc["results"]
        plain = next((r for r in res if not r["signed"] and r["compiled_ms"]), None)
        signed = next((r for r in res if r["signed"] and r["compiled_ms"] and r.get("mem_start")), None)
        if plain and signed and plain.get("mem_start"):
            n = signed["steered_rrsets"]
            return {"rrsets": n,
                    "ms_per_1000": (signed["compiled_ms"] - plain["compiled_ms"]) / n * 1000,
                    "kib_each": (signed["mem_start"]["VmRSS"] - plain["mem_start"]["VmRSS"]) / n}
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--scale", action="append", default=[])
    ap.add_argument("--json", required=True)
    ap.add_argument("--markdown")
    a = ap.parse_args()
    with open(a.meta) as f:
        meta = json.load(f)
    with open(a.results) as f:
        records = [json.loads(line) for line in f if line.strip()]
    scales = []
    for path in a.scale:
        with open(path) as f:
            scales.append(json.load(f))

    problems = []
    md = []
    db = os.path.basename(meta["db"])
    md.append(f"DNSSEC cost, gslbd {meta['gslbd_version']}, {meta['date']}, {meta['cores']} cores, "
              f"load average before {meta['loadavg']}; dnsperf {meta['dnsperf_version']} over UDP on "
              f"127.0.0.1, saturation `-c {meta['clients']} -q {meta['outstanding']}`, "
              f"{meta['duration']} s per run. One gslbd process serves the example zone signed with "
              f"one {meta['algorithm']} CSK, database {db}; the same queries are sent without and with "
              f"the DO bit, alternately ({meta['pairs']} rounds of ecs, ecs + DO, static, static + DO). "
              f"CPU µs/q = server utime+stime over queries answered, median of the rounds.")
    md.append("")
    table, summary = cpu_table(records, meta, problems)
    md += table
    md.append("")
    ecs = summary.get("ecs")
    verdict = None
    if ecs and ecs["ratio"]:
        verdict = ecs["ratio"] <= meta["target"]
        md.append(f"Target (issue 19): a DO=1 steered ECS answer costs at most ×{meta['target']} the "
                  f"unsigned one: {ecs['signed_cpu_us']:.2f} vs {ecs['unsigned_cpu_us']:.2f} µs = "
                  f"×{ecs['ratio']:.2f}: **{'PASS' if verdict else 'FAIL'}**.")
        md.append("")
    check = next((r for r in records if r.get("kind") == "signed-check"), None)
    start = next((r for r in records if r.get("kind") == "startup"), None)
    if check or start:
        bits = []
        if check:
            bits.append(f"{check['signed']:,} of {check['asked']:,} ECS queries of the file asked with "
                        f"DO carried an RRSIG over their addresses, none without DO")
        if start:
            bits.append(f"the signed example zone answered correctly {start['startup_s'] * 1000:.0f} ms "
                        f"after launch")
        md.append("Checks: " + "; ".join(bits) + ".")
        md.append("")

    if scales:
        st = scales[0]["settings"]
        md.append(f"Start-up (launch → first correct steered answer) and reload (`POST /v1/reload`, "
                  f"answered when done; {st['RELOADS']} each) of benches/scale.py's zone, "
                  f"{st['NAMES']:,} steered names over {st['REGIONS']:,} regions, database "
                  f"{os.path.basename(st['DB'])}, unsigned and signed "
                  f"(one {st['DNSSEC_ALGORITHM']} CSK; gslbd signs at load every static RRset, each "
                  f"name's denial NSEC and each region's VIP set per family for every name, up "
                  f"to `cache_size` (100 000) of them: the steered RRsets column; the rest are "
                  f"signed on first use). A server is stopped when its VmRSS passes "
                  f"{st['MAX_RSS_MIB']:,} MiB or it has not answered within {st['START_TIMEOUT']} s.")
        md.append("")
        md.append("| names × regions each | signed | steered RRsets signed at load | launch → first answer | "
                  "zones compiled | reload, median (min–max) | VmRSS after start / peak MiB |")
        md.append("|---|---|--:|--:|--:|--:|--:|")
        for sc in scales:
            md += scale_rows(sc)
        md.append("")
        rate = signing_rate(scales)
        if rate:
            md.append(f"Signing at load costs about {rate['ms_per_1000']:.1f} ms of compile time per "
                      f"1 000 steered RRsets and {rate['kib_each']:.2f} KiB of memory per RRset (signed "
                      f"vs unsigned {rate['rrsets']:,}-RRset zone; the static RRsets and denial "
                      f"NSECs signed with them are counted in).")
            for sc in scales:
                for r in sc["results"]:
                    if r["signed"] and r["first_answer_s"] is None:
                        n = r["steered_rrsets"]
                        md.append(f"At that rate the {n:,} RRsets of the {r['names']:,}-name zone over "
                                  f"all regions would take about {n * rate['ms_per_1000'] / 1e6:,.0f} s "
                                  f"and {n * rate['kib_each'] / 1024 / 1024:,.1f} GiB to sign at load "
                                  f"(and again at each reload).")
            md.append("")

    text = "\n".join(md) + "\n"
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text)
    with open(a.json, "w") as f:
        json.dump({"meta": meta, "records": records, "scale": scales, "summary": summary,
                   "target_met": verdict, "problems": problems}, f, indent=1, sort_keys=True)
    if problems:
        for p in problems:
            print(f"PROBLEM: {p}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
