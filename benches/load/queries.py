#!/usr/bin/env python3
"""Query files for the load benchmark, in dnsperf's -B format (each DNS message prefixed with
its 2-byte big-endian length, so every query can carry its own EDNS Client Subnet option).

  queries.py single NAME TYPE OUT [--do]     one query (EDNS0, udp 1232, no ECS); dnsperf cycles it
  queries.py ecs --count N --seed S OUT [--list LIST] [--do]
        N queries for www.gslb.example, each with a distinct client subnet: about half IPv4 /24s
        drawn from public unicast space (1.0.0.0-223.255.255.255 without private, shared,
        loopback, link-local, documentation, benchmarking and other special ranges), half IPv6
        /48s or /56s inside the five RIRs' blocks (2001:200::/23.., 2400::/12, 2600::/12,
        2800::/12, 2a00::/12, 2c00::/12; without 2001:db8::/32, Teredo and 6to4), each asked as
        A or AAAA at random. Deterministic for a given seed. --list writes "SUBNET TYPE" lines.
        --do sets the DNSSEC OK bit in every query (dnsperf refuses -D with -B, whose messages
        are sent as written), so the same seed with and without --do gives the same queries
        but for that bit.
  queries.py csv-list CSV OUT
        "SUBNET TYPE" lines for the networks of a `gslbd geodata build` CSV (the sample
        database's source): the first /24 (IPv4) or /48 (IPv6) of each network, as A and AAAA.
"""

import argparse
import ipaddress
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnswire  # noqa: E402

STEERED = "www.gslb.example"

# IPv4 ranges that are not public unicast (RFC 6890 and friends); 224/3 is outside the draw.
V4_EXCLUDED = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
)]

# IPv6: (first 16 bits low, high, weight); the rest of the address is random. 2001: starts at
# 2001:200:: (below that: Teredo, benchmarking, ORCHID and other IETF assignments).
V6_BLOCKS = [
    (0x2001, 0x2001, 3),   # 2001::/16 RIR allocations
    (0x2400, 0x240F, 2),   # APNIC
    (0x2600, 0x260F, 2),   # ARIN
    (0x2800, 0x280F, 1),   # LACNIC
    (0x2A00, 0x2A0F, 2),   # RIPE NCC
    (0x2C00, 0x2C0F, 1),   # AFRINIC
]
V6_EXCLUDED = [ipaddress.ip_network(n) for n in ("2001::/23", "2001:db8::/32", "2002::/16")]


def random_v4(rng):
    while True:
        # a /24 index between 1.0.0.0 and 223.255.255.0
        net = ipaddress.IPv4Network((rng.randrange(0x010000, 0xE00000) << 8, 24))
        if not any(net.subnet_of(x) for x in V4_EXCLUDED):
            return net


def random_v6(rng):
    lows, highs, weights = zip(*V6_BLOCKS)
    while True:
        i = rng.choices(range(len(V6_BLOCKS)), weights=weights)[0]
        top = rng.randint(lows[i], highs[i])
        plen = rng.choice((48, 56))
        bits = (top << 112) | (rng.getrandbits(112) & ~((1 << (128 - plen)) - 1) & ((1 << 112) - 1))
        net = ipaddress.IPv6Network((bits, plen))
        if not any(net.subnet_of(x) for x in V6_EXCLUDED):
            return net


def subnets(count, seed):
    """`count` distinct (network, qtype) pairs, deterministic for `seed`."""
    rng = random.Random(seed)
    seen = set()
    out = []
    while len(out) < count:
        net = random_v4(rng) if rng.random() < 0.5 else random_v6(rng)
        if net in seen:
            continue
        seen.add(net)
        out.append((net, "A" if rng.random() < 0.5 else "AAAA"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("single")
    s.add_argument("name")
    s.add_argument("qtype", choices=sorted(dnswire.QTYPE))
    s.add_argument("out")
    s.add_argument("--do", action="store_true", help="set the DNSSEC OK bit")
    e = sub.add_parser("ecs")
    e.add_argument("--count", type=int, required=True)
    e.add_argument("--seed", type=int, required=True)
    e.add_argument("--list")
    e.add_argument("--do", action="store_true", help="set the DNSSEC OK bit")
    e.add_argument("out")
    c = sub.add_parser("csv-list")
    c.add_argument("csv")
    c.add_argument("out")
    a = ap.parse_args()

    if a.cmd == "csv-list":
        import csv
        with open(a.csv, newline="") as f, open(a.out, "w") as out:
            for row in csv.DictReader(f):
                net = ipaddress.ip_network(row["network"])
                first = next(net.subnets(new_prefix=max(net.prefixlen, 24 if net.version == 4 else 48)))
                for qtype in ("A", "AAAA"):
                    out.write(f"{first} {qtype}\n")
        return
    if a.cmd == "single":
        with open(a.out, "wb") as f:
            f.write(dnswire.tcp_framed(dnswire.query(a.name, a.qtype, dnssec_ok=a.do)))
        return
    pairs = subnets(a.count, a.seed)
    with open(a.out, "wb") as f:
        for net, qtype in pairs:
            f.write(dnswire.tcp_framed(dnswire.query(STEERED, qtype, ecs=net, dnssec_ok=a.do)))
    if a.list:
        with open(a.list, "w") as f:
            for net, qtype in pairs:
                f.write(f"{net} {qtype}\n")
    v4 = sum(1 for n, _ in pairs if n.version == 4)
    print(f"{a.out}: {len(pairs)} queries, {v4} IPv4 and {len(pairs) - v4} IPv6 client subnets "
          f"(seed {a.seed}){', DO bit set' if a.do else ''}")


if __name__ == "__main__":
    main()
