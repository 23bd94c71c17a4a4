//! The Ethernet, IP and UDP headers of an AF_XDP frame: reading a query's in place, and turning
//! the same frame into the reply's. Pure byte work, no I/O.
//!
//! The XDP program already picked these frames, but its checks are repeated here: nothing in a
//! frame is trusted. Taken: Ethernet II without VLAN tag, then IPv4 with a 20-byte header that
//! is not a fragment, or IPv6 whose next header is UDP, then UDP whose length fits the IP
//! payload. Incoming UDP checksums are not verified: a frame from a local sender (a veth peer,
//! a VM) may carry a partial checksum that its NIC was to finish, and the kernel would accept
//! those. Replies always carry a full UDP checksum (IPv4 too), since nothing below computes it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;

/// Ethernet header: destination MAC, source MAC, EtherType.
pub const ETH_LEN: usize = 14;
/// An IPv4 header without options.
pub const IPV4_LEN: usize = 20;
/// The fixed IPv6 header.
pub const IPV6_LEN: usize = 40;
/// The UDP header.
pub const UDP_LEN: usize = 8;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const PROTO_UDP: u8 = 17;
/// TTL and hop limit of replies: Linux's default for sockets.
const TTL: u8 = 64;

/// A query frame's addressing, as read by [`parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    /// The client: source address and port.
    pub src: SocketAddr,
    /// Where it was sent: one of our listen addresses.
    pub dst: SocketAddr,
    /// Ethernet, IP and UDP headers: the DNS message starts here.
    pub header_len: usize,
    /// The DNS message's length (the UDP payload, Ethernet padding excluded).
    pub payload_len: usize,
}

impl Datagram {
    /// Where the DNS message is in the frame.
    pub fn payload(&self) -> Range<usize> {
        self.header_len..self.header_len + self.payload_len
    }

    /// IP and UDP header bytes a reply adds to its DNS message (what counts against the MTU).
    pub fn ip_overhead(&self) -> usize {
        self.header_len - ETH_LEN
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Reads the headers of `frame` (the bytes received, no more): the datagram's addresses and
/// where its payload is, or `None` when it is not a UDP datagram this path takes.
pub fn parse(frame: &[u8]) -> Option<Datagram> {
    match u16_at(frame, 12)? {
        ETHERTYPE_IPV4 => {
            let ip = frame.get(ETH_LEN..ETH_LEN + IPV4_LEN)?;
            // Version 4, IHL 5 (no options), UDP, neither MF nor a fragment offset.
            if ip[0] != 0x45 || ip[9] != PROTO_UDP || u16_at(ip, 6)? & 0x3fff != 0 {
                return None;
            }
            let total = usize::from(u16_at(ip, 2)?);
            if total < IPV4_LEN + UDP_LEN || ETH_LEN + total > frame.len() {
                return None;
            }
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            udp(
                frame,
                ETH_LEN + IPV4_LEN,
                total - IPV4_LEN,
                src.into(),
                dst.into(),
            )
        }
        ETHERTYPE_IPV6 => {
            let ip = frame.get(ETH_LEN..ETH_LEN + IPV6_LEN)?;
            if ip[0] >> 4 != 6 || ip[6] != PROTO_UDP {
                return None;
            }
            let payload = usize::from(u16_at(ip, 4)?);
            if ETH_LEN + IPV6_LEN + payload > frame.len() {
                return None;
            }
            let mut src = [0u8; 16];
            src.copy_from_slice(&ip[8..24]);
            let mut dst = [0u8; 16];
            dst.copy_from_slice(&ip[24..40]);
            udp(
                frame,
                ETH_LEN + IPV6_LEN,
                payload,
                Ipv6Addr::from(src).into(),
                Ipv6Addr::from(dst).into(),
            )
        }
        _ => None,
    }
}

/// The UDP header at `at`, inside an IP payload of `ip_payload` bytes.
fn udp(frame: &[u8], at: usize, ip_payload: usize, src: IpAddr, dst: IpAddr) -> Option<Datagram> {
    let sport = u16_at(frame, at)?;
    let dport = u16_at(frame, at + 2)?;
    let len = usize::from(u16_at(frame, at + 4)?);
    if len < UDP_LEN || len > ip_payload {
        return None;
    }
    Some(Datagram {
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        header_len: at + UDP_LEN,
        payload_len: len - UDP_LEN,
    })
}

/// Turns the headers of the query frame `frame`, read as `q`, into those of its reply, whose DNS
/// message of `payload_len` bytes is already in place at `q.header_len`: MACs, addresses and
/// ports swapped, lengths set, a fresh IPv4 header (DF, TTL 64, its checksum) or IPv6 header
/// (hop limit 64), and the UDP checksum. Returns the reply frame's length.
///
/// `frame` must hold at least `q.header_len + payload_len` bytes, and the query's family must be
/// `q`'s (both true of a frame `parse` read).
pub fn reply(frame: &mut [u8], q: &Datagram, payload_len: usize) -> usize {
    let end = q.header_len + payload_len;
    let udp_len = UDP_LEN + payload_len;
    // Ethernet: back to where it came from.
    let (dst_mac, rest) = frame.split_at_mut(6);
    dst_mac.swap_with_slice(&mut rest[..6]);
    let udp_at = q.header_len - UDP_LEN;
    let pseudo = match (q.src.ip(), q.dst.ip()) {
        (IpAddr::V4(client), IpAddr::V4(us)) => {
            let ip = &mut frame[ETH_LEN..ETH_LEN + IPV4_LEN];
            ip[0] = 0x45;
            ip[1] = 0; // DSCP and ECN
            ip[2..4].copy_from_slice(&((IPV4_LEN + udp_len) as u16).to_be_bytes());
            ip[4..6].copy_from_slice(&[0, 0]); // ID: any value will do with DF (RFC 6864)
            ip[6..8].copy_from_slice(&[0x40, 0]); // DF, offset 0
            ip[8] = TTL;
            ip[9] = PROTO_UDP;
            ip[10..12].copy_from_slice(&[0, 0]);
            ip[12..16].copy_from_slice(&us.octets());
            ip[16..20].copy_from_slice(&client.octets());
            let sum = fold(add(ip, 0));
            ip[10..12].copy_from_slice(&(!sum).to_be_bytes());
            add(&ip[12..20], 0)
        }
        _ => {
            let (client, us) = (v6(q.src.ip()), v6(q.dst.ip()));
            let ip = &mut frame[ETH_LEN..ETH_LEN + IPV6_LEN];
            ip[0..4].copy_from_slice(&[0x60, 0, 0, 0]); // version 6, traffic class and flow 0
            ip[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
            ip[6] = PROTO_UDP;
            ip[7] = TTL;
            ip[8..24].copy_from_slice(&us.octets());
            ip[24..40].copy_from_slice(&client.octets());
            add(&ip[8..40], 0)
        }
    };
    let udp = &mut frame[udp_at..end];
    udp[0..2].copy_from_slice(&q.dst.port().to_be_bytes());
    udp[2..4].copy_from_slice(&q.src.port().to_be_bytes());
    udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    udp[6..8].copy_from_slice(&[0, 0]);
    // Pseudo-header: the addresses (summed above), protocol and UDP length; then the datagram.
    let sum = fold(add(udp, pseudo + u64::from(PROTO_UDP) + udp_len as u64));
    // A computed 0 is sent as all ones: 0 means "no checksum" (RFC 768), not allowed in IPv6.
    let check = match !sum {
        0 => 0xffff,
        c => c,
    };
    udp[6..8].copy_from_slice(&check.to_be_bytes());
    end
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => a.to_ipv6_mapped(),
    }
}

/// Adds `bytes` as big-endian 16-bit words (an odd last byte padded with zero) to `sum`.
fn add(bytes: &[u8], mut sum: u64) -> u64 {
    let mut words = bytes.chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// Folds a sum of 16-bit words into their one's complement sum.
fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
    const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

    /// A query frame as a client's kernel sends it (checksums left zero: they are not read).
    fn query(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&OUR_MAC);
        f.extend_from_slice(&CLIENT_MAC);
        let udp_len = (UDP_LEN + payload.len()) as u16;
        match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
                f.extend_from_slice(&[0x45, 0x10]);
                f.extend_from_slice(&(udp_len + IPV4_LEN as u16).to_be_bytes());
                f.extend_from_slice(&[0x12, 0x34, 0x40, 0, 57, PROTO_UDP, 0, 0]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
                f.extend_from_slice(&[0x60, 0x0a, 0xbc, 0xde]);
                f.extend_from_slice(&udp_len.to_be_bytes());
                f.extend_from_slice(&[PROTO_UDP, 55]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
            }
            _ => unreachable!("one family"),
        }
        f.extend_from_slice(&src.port().to_be_bytes());
        f.extend_from_slice(&dst.port().to_be_bytes());
        f.extend_from_slice(&udp_len.to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        f
    }

    /// Checks a reply frame as a receiving stack would: IPv4 header checksum, UDP checksum over
    /// the pseudo-header, lengths. Returns (source, destination, payload).
    fn check(frame: &[u8]) -> (SocketAddr, SocketAddr, Vec<u8>) {
        assert_eq!(&frame[0..6], &CLIENT_MAC);
        assert_eq!(&frame[6..12], &OUR_MAC);
        let d = parse(frame).expect("the reply parses");
        let udp = &frame[d.header_len - UDP_LEN..d.header_len + d.payload_len];
        let pseudo = match (d.src.ip(), d.dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(t)) => {
                let ip = &frame[ETH_LEN..ETH_LEN + IPV4_LEN];
                assert_eq!(fold(add(ip, 0)), 0xffff, "IPv4 header checksum");
                assert_eq!(usize::from(u16_at(ip, 2).unwrap()), frame.len() - ETH_LEN);
                assert_eq!(ip[8], 64);
                add(&s.octets(), add(&t.octets(), 0))
            }
            (IpAddr::V6(s), IpAddr::V6(t)) => {
                let ip = &frame[ETH_LEN..ETH_LEN + IPV6_LEN];
                assert_eq!(usize::from(u16_at(ip, 4).unwrap()), udp.len());
                assert_eq!(&ip[0..4], &[0x60, 0, 0, 0]);
                add(&s.octets(), add(&t.octets(), 0))
            }
            _ => panic!("mixed families"),
        };
        assert_ne!(u16_at(udp, 6), Some(0), "a UDP checksum is always sent");
        let sum = fold(add(udp, pseudo + u64::from(PROTO_UDP) + udp.len() as u64));
        assert_eq!(sum, 0xffff, "UDP checksum");
        (d.src, d.dst, frame[d.payload()].to_vec())
    }

    fn answer_in_place(frame: &mut Vec<u8>, answer: &[u8]) -> usize {
        let q = parse(frame).unwrap();
        frame.resize(q.header_len + answer.len(), 0);
        frame[q.header_len..].copy_from_slice(answer);
        reply(frame, &q, answer.len())
    }

    #[test]
    fn an_ipv4_query_is_read_and_its_frame_becomes_a_checksummed_reply() {
        let client: SocketAddr = "198.18.0.1:40000".parse().unwrap();
        let us: SocketAddr = "198.18.0.2:53".parse().unwrap();
        let mut f = query(client, us, b"query bytes");
        let q = parse(&f).unwrap();
        assert_eq!((q.src, q.dst), (client, us));
        assert_eq!(q.header_len, 42);
        assert_eq!(&f[q.payload()], b"query bytes");
        assert_eq!(q.ip_overhead(), 28);
        // Odd and even lengths: the checksum pads the last byte.
        for answer in [&b"an answer"[..], b"an answer!", &[0xff; 1201]] {
            let n = answer_in_place(&mut f, answer);
            assert_eq!(n, 42 + answer.len());
            assert_eq!(check(&f[..n]), (us, client, answer.to_vec()));
            // The reply's headers describe the way back: the query frame again, reversed.
            f = query(client, us, b"query bytes");
        }
    }

    #[test]
    fn an_ipv6_query_is_read_and_answered_with_the_mandatory_checksum() {
        let client: SocketAddr = "[2001:2::1]:5353".parse().unwrap();
        let us: SocketAddr = "[2001:2::2]:53".parse().unwrap();
        let mut f = query(client, us, b"q6");
        let q = parse(&f).unwrap();
        assert_eq!(
            (q.src, q.dst, q.header_len, q.ip_overhead()),
            (client, us, 62, 48)
        );
        for answer in [&b"x"[..], b"xy", &[0u8; 0], &[0xab; 1232]] {
            let n = answer_in_place(&mut f, answer);
            assert_eq!(check(&f[..n]), (us, client, answer.to_vec()));
            f = query(client, us, b"q6");
        }
    }

    #[test]
    fn a_computed_zero_checksum_goes_out_as_all_ones() {
        let client: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let us: SocketAddr = "10.0.0.2:2".parse().unwrap();
        // Find a two-byte payload whose datagram sums to 0xffff, so that the checksum is 0.
        let mut found = false;
        for v in 0..=u16::MAX {
            let mut f = query(client, us, b"..");
            let n = answer_in_place(&mut f, &v.to_be_bytes());
            if u16_at(&f, n - 4) == Some(0xffff) {
                check(&f[..n]);
                found = true;
                break;
            }
        }
        assert!(found, "some payload sums to a zero checksum");
    }

    #[test]
    fn ethernet_padding_after_the_datagram_is_not_payload() {
        let client: SocketAddr = "198.18.0.1:40000".parse().unwrap();
        let us: SocketAddr = "198.18.0.2:53".parse().unwrap();
        let mut f = query(client, us, b"tiny");
        f.resize(60, 0xee); // the minimum Ethernet frame
        assert_eq!(&f[parse(&f).unwrap().payload()], b"tiny");
    }

    #[test]
    fn frames_the_path_does_not_take_are_refused() {
        let client: SocketAddr = "198.18.0.1:40000".parse().unwrap();
        let us: SocketAddr = "198.18.0.2:53".parse().unwrap();
        let good = query(client, us, b"some dns message");
        assert!(parse(&good).is_some());
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut v = good.clone();
            f(&mut v);
            parse(&v)
        };
        assert_eq!(
            with(&|v| v[12..14].copy_from_slice(&[0x81, 0])),
            None,
            "VLAN tag"
        );
        assert_eq!(
            with(&|v| v[12..14].copy_from_slice(&[0x08, 0x06])),
            None,
            "ARP"
        );
        assert_eq!(with(&|v| v[14] = 0x46), None, "IP options");
        assert_eq!(with(&|v| v[14] = 0x65), None, "version 6 in an IPv4 frame");
        assert_eq!(with(&|v| v[23] = 6), None, "TCP");
        assert_eq!(with(&|v| v[20] = 0x60), None, "more fragments");
        assert_eq!(with(&|v| v[21] = 1), None, "a later fragment");
        assert_eq!(with(&|v| v[17] = 0xff), None, "IP length beyond the frame");
        assert_eq!(
            with(&|v| v[16..18].copy_from_slice(&[0, 27])),
            None,
            "IP length below UDP"
        );
        assert_eq!(
            with(&|v| v[38..40].copy_from_slice(&[0, 7])),
            None,
            "UDP length below 8"
        );
        assert_eq!(with(&|v| v[39] += 1), None, "UDP length beyond IP");
        assert_eq!(with(&|v| v.truncate(40)), None, "cut in the UDP header");
        assert_eq!(
            with(&|v| v.truncate(13)),
            None,
            "cut in the Ethernet header"
        );
        let v6 = query(
            "[2001:2::1]:5353".parse().unwrap(),
            "[2001:2::2]:53".parse().unwrap(),
            b"m",
        );
        assert!(parse(&v6).is_some());
        let mut hop_by_hop = v6.clone();
        hop_by_hop[20] = 0;
        assert_eq!(parse(&hop_by_hop), None, "an extension header");
        let mut long = v6.clone();
        long[19] += 1;
        assert_eq!(parse(&long), None, "IPv6 payload beyond the frame");
        for cut in 0..v6.len() - 1 {
            assert_eq!(parse(&v6[..cut]), None, "IPv6 cut at {cut}");
        }
    }

    #[test]
    fn no_frame_panics_the_parser() {
        // Every length of every prefix of a few frames, and every byte of them flipped.
        let frames = [
            query(
                "198.18.0.1:1".parse().unwrap(),
                "198.18.0.2:53".parse().unwrap(),
                &[7; 30],
            ),
            query(
                "[2001:2::1]:1".parse().unwrap(),
                "[2001:2::2]:53".parse().unwrap(),
                &[9; 30],
            ),
        ];
        for f in &frames {
            for i in 0..f.len() {
                for b in [0u8, 0x45, 0x60, 0xff] {
                    let mut v = f.clone();
                    v[i] = b;
                    if let Some(d) = parse(&v) {
                        assert!(d.payload().end <= v.len());
                    }
                }
            }
        }
    }
}
