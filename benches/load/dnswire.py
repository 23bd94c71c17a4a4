"""Minimal DNS wire helpers for the load benchmark (no third-party modules).

Builds queries with an EDNS0 OPT record and, optionally, an EDNS Client Subnet option
(RFC 7871) and the DNSSEC OK bit (RFC 3225), and parses the few parts of an answer the
benchmark looks at: rcode, the A/AAAA addresses of the answer section, their TTL, the RRSIGs
of the answer section and the ECS scope of the OPT record.
"""

import ipaddress
import socket
import struct

QTYPE = {"A": 1, "AAAA": 28}
QTYPE_NAME = {v: k for k, v in QTYPE.items()}
OPT = 41
RRSIG = 46
DO_BIT = 0x8000       # in the OPT record's TTL field: EXTENDED-RCODE, VERSION, DO, Z
ECS_CODE = 8          # RFC 7871 option code
UDP_SIZE = 1232       # advertised EDNS UDP payload size (the DNS Flag Day 2020 value)


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def ecs_option(network):
    """The ECS option for an ipaddress network: FAMILY, SOURCE PREFIX-LENGTH, SCOPE 0 and the
    address truncated to the bytes the prefix needs (RFC 7871 section 6); the network address
    has no bits set past the prefix."""
    family = 1 if network.version == 4 else 2
    plen = network.prefixlen
    addr = network.network_address.packed[: (plen + 7) // 8]
    body = struct.pack(">HBB", family, plen, 0) + addr
    return struct.pack(">HH", ECS_CODE, len(body)) + body


def query(name, qtype, ecs=None, edns=True, qid=0, rd=False, dnssec_ok=False):
    """One DNS query message. qtype is "A"/"AAAA" or a number; ecs an ipaddress network;
    dnssec_ok sets the DO bit (and implies EDNS0)."""
    qt = QTYPE[qtype] if isinstance(qtype, str) else qtype
    flags = 0x0100 if rd else 0
    edns = edns or ecs is not None or dnssec_ok
    header = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 1 if edns else 0)
    msg = header + encode_name(name) + struct.pack(">HH", qt, 1)
    if edns:
        options = ecs_option(ecs) if ecs is not None else b""
        # root name, TYPE OPT, CLASS = UDP payload size, TTL = ext-rcode/version/flags (DO)
        ttl = DO_BIT if dnssec_ok else 0
        msg += b"\0" + struct.pack(">HHIH", OPT, UDP_SIZE, ttl, len(options)) + options
    return msg


def tcp_framed(msg):
    """dnsperf -B input format: the message prefixed by its 2-byte big-endian length."""
    return struct.pack(">H", len(msg)) + msg


def _skip_name(buf, off):
    while True:
        n = buf[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n


def parse_response(buf):
    """Returns dict(id, rcode, answers=[(type, ttl, address str)], rrsigs=[type covered] of
    the answer section, ecs_scope or None, ecs_source or None)."""
    qid, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", buf[:12])
    off = 12
    for _ in range(qd):
        off = _skip_name(buf, off) + 4
    answers = []
    rrsigs = []
    scope = source = None
    rcode = flags & 0xF
    for section, count in (("an", an), ("ns", ns), ("ar", ar)):
        for _ in range(count):
            off = _skip_name(buf, off)
            rtype, rclass, ttl, rdlen = struct.unpack(">HHIH", buf[off : off + 10])
            off += 10
            rdata = buf[off : off + rdlen]
            off += rdlen
            if section == "an" and rtype == 1 and rdlen == 4:
                answers.append(("A", ttl, str(ipaddress.IPv4Address(rdata))))
            elif section == "an" and rtype == 28 and rdlen == 16:
                answers.append(("AAAA", ttl, str(ipaddress.IPv6Address(rdata))))
            elif section == "an" and rtype == RRSIG and rdlen >= 2:
                covered = struct.unpack(">H", rdata[:2])[0]
                rrsigs.append(QTYPE_NAME.get(covered, covered))
            elif rtype == OPT:
                rcode |= (ttl >> 24) << 4          # extended rcode
                o = 0
                while o + 4 <= len(rdata):
                    code, olen = struct.unpack(">HH", rdata[o : o + 4])
                    if code == ECS_CODE and olen >= 4:
                        _fam, source, scope = struct.unpack(">HBB", rdata[o + 4 : o + 8])
                    o += 4 + olen
    return {"id": qid, "rcode": rcode, "answers": answers, "rrsigs": rrsigs, "ecs_scope": scope,
            "ecs_source": source}


class Client:
    """A connected UDP socket to one server on 127.0.0.1 with a running query id."""

    def __init__(self, port, host="127.0.0.1"):
        self.addr = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(self.addr)
        self.qid = 1

    def ask(self, name, qtype, ecs=None, timeout=1.0, tries=3, dnssec_ok=False):
        """Send one query and wait for its answer; None after `tries` timeouts. A refused
        port (server not listening yet) counts as a timeout after sleeping `timeout`."""
        import time

        for _ in range(tries):
            self.qid = (self.qid + 1) & 0xFFFF
            msg = query(name, qtype, ecs=ecs, qid=self.qid, dnssec_ok=dnssec_ok)
            self.sock.settimeout(timeout)
            deadline = time.monotonic() + timeout
            try:
                self.sock.send(msg)
                while True:
                    data = self.sock.recv(4096)
                    if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == self.qid:
                        return parse_response(data)
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise socket.timeout
                    self.sock.settimeout(left)
            except socket.timeout:
                continue
            except ConnectionRefusedError:
                time.sleep(max(0.0, deadline - time.monotonic()))
                continue
        return None

    def close(self):
        self.sock.close()
