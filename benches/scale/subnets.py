#!/usr/bin/env python3
"""A dnsperf -B query file with many distinct client subnets, fast (a million in a few seconds).

  benches/scale/subnets.py --count 1000000 [--seed 1] [--name www.gslb.example] OUT

Writes COUNT queries for NAME, each with its own EDNS Client Subnet (RFC 7871): half IPv4 /24s
and half IPv6 /48s, all distinct, in random order, each asked as A or AAAA at random. The
format is dnsperf's -B: every DNS message prefixed by its 2-byte big-endian length; the
messages are those of benches/load/dnswire.py's query() (EDNS0, UDP size 1232, ECS with
SCOPE 0 and the address truncated to the prefix's bytes).

  IPv4: /24s of 1.0.0.0-223.255.255.255 without private, shared, loopback, link-local,
        documentation, benchmarking and other special ranges (the list of
        benches/load/queries.py).
  IPv6: /48s inside the five RIRs' blocks (2001:200::/23 upwards, 2400::/12, 2600::/12,
        2800::/12, 2a00::/12, 2c00::/12); never 2001::/23 (IETF), 2001:db8::/32
        (documentation) or 2002::/16 (6to4).

benches/load/queries.py ecs does much the same with the ipaddress module (and /56s too); at a
million subnets that takes tens of seconds, this takes a few. Deterministic for a given seed.
"""

import argparse
import os
import random
import struct
import sys

sys.dont_write_bytecode = True         # no __pycache__ in benches/load/
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "load"))
import dnswire  # noqa: E402
import queries  # noqa: E402  (V4_EXCLUDED)

# /24 index = address >> 8. The draw is 1.0.0.0 .. 223.255.255.0.
V4_FIRST, V4_END = 0x010000, 0xE00000
V4_EXCLUDED_24 = [(int(n.network_address) >> 8, int(n.broadcast_address) >> 8)
                  for n in queries.V4_EXCLUDED]

# IPv6 /48 = 16-bit top + 32 more bits. (first top, last top, weight), as queries.V6_BLOCKS.
V6_BLOCKS = [(0x2001, 0x2001, 3), (0x2400, 0x240F, 2), (0x2600, 0x260F, 2),
             (0x2800, 0x280F, 1), (0x2A00, 0x2A0F, 2), (0x2C00, 0x2C0F, 1)]


def v4_excluded(i24):
    return any(lo <= i24 <= hi for lo, hi in V4_EXCLUDED_24)


def v6_excluded(i48):
    top, nxt = i48 >> 32, (i48 >> 16) & 0xFFFF
    # 2001::/23: 2001:0000-2001:01ff; 2001:db8::/32; 2002::/16 is outside the blocks anyway
    return top == 0x2001 and (nxt < 0x0200 or nxt == 0x0DB8)


def draw_v4(rng, count):
    """`count` distinct public /24 indices."""
    out = set()
    while len(out) < count:
        for i in rng.sample(range(V4_FIRST, V4_END), min(V4_END - V4_FIRST, 2 * (count - len(out)))):
            if not v4_excluded(i):
                out.add(i)
                if len(out) == count:
                    break
    return sorted(out)


def draw_v6(rng, count):
    """`count` distinct /48 indices (48-bit integers) in the RIR blocks."""
    tops = []
    for lo, hi, weight in V6_BLOCKS:
        tops += [t for t in range(lo, hi + 1) for _ in range(weight)]
    out = set()
    while len(out) < count:
        i48 = (rng.choice(tops) << 32) | rng.getrandbits(32)
        if not v6_excluded(i48):
            out.add(i48)
    return sorted(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--name", default="www.gslb.example")
    ap.add_argument("out")
    a = ap.parse_args()

    rng = random.Random(a.seed)
    n4 = a.count // 2
    subnets = [(4, i) for i in draw_v4(rng, n4)] + [(6, i) for i in draw_v6(rng, a.count - n4)]
    rng.shuffle(subnets)

    # Every message is the same but for the ECS option and the QTYPE: build the fixed parts
    # once from dnswire's own query(), then splice (ECS option last in the OPT RDATA).
    qname = dnswire.encode_name(a.name)
    header = struct.pack(">HHHHHH", 0, 0, 1, 0, 0, 1)
    qtypes = {t: struct.pack(">HH", dnswire.QTYPE[t], 1) for t in ("A", "AAAA")}

    def opt(option):
        return b"\0" + struct.pack(">HHIH", dnswire.OPT, dnswire.UDP_SIZE, 0, len(option)) + option

    # ECS option: code 8, length, FAMILY, SOURCE PREFIX-LENGTH, SCOPE 0, address bytes
    ecs4_head = struct.pack(">HHHBB", dnswire.ECS_CODE, 4 + 3, 1, 24, 0)
    ecs6_head = struct.pack(">HHHBB", dnswire.ECS_CODE, 4 + 6, 2, 48, 0)
    opt4_head = opt(ecs4_head + b"\0" * 3)[:-3]   # everything but the address bytes
    opt6_head = opt(ecs6_head + b"\0" * 6)[:-6]

    out = bytearray()
    v4 = a_queries = 0
    rand = rng.random
    for family, index in subnets:
        qtype = "A" if rand() < 0.5 else "AAAA"
        a_queries += qtype == "A"
        if family == 4:
            v4 += 1
            tail = opt4_head + index.to_bytes(3, "big")
        else:
            tail = opt6_head + index.to_bytes(6, "big")
        msg = header + qname + qtypes[qtype] + tail
        out += struct.pack(">H", len(msg)) + msg
    with open(a.out, "wb") as f:
        f.write(out)

    # Spot check: the first message equals what dnswire.query() builds for it.
    family, index = subnets[0]
    import ipaddress
    net = (ipaddress.IPv4Network((index << 8, 24)) if family == 4
           else ipaddress.IPv6Network((index << 80, 48)))
    first_len = struct.unpack(">H", out[:2])[0]
    first = bytes(out[2 : 2 + first_len])
    qt = "A" if first[12 + len(qname) : 14 + len(qname)] == b"\0\x01" else "AAAA"
    assert first == dnswire.query(a.name, qt, ecs=net), "generated message differs from dnswire.query()"

    print(f"{a.out}: {len(subnets)} queries for {a.name}, {v4} IPv4 /24 and {len(subnets) - v4} "
          f"IPv6 /48 client subnets (all distinct), {a_queries} A and {len(subnets) - a_queries} "
          f"AAAA, {len(out) / 1e6:.1f} MB (seed {a.seed})")


if __name__ == "__main__":
    main()
