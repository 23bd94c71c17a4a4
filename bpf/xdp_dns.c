// SPDX-License-Identifier: MIT OR Apache-2.0
//
// gslbd's XDP program (cargo feature `xdp`, `listen_xdp` in gslbd.toml): hands the UDP
// datagrams gslbd answers to the AF_XDP socket of the receive queue they arrived on, and
// everything else to the kernel unchanged.
//
// Redirected, exactly: an Ethernet frame to a unicast MAC, without VLAN tag, carrying
//   - IPv4 without options (IHL 5) that is not a fragment (MF clear, offset 0), or
//   - IPv6 whose next header is UDP (no extension headers),
// with UDP to an (address, port) pair in `listen_addrs`. The loader (src/dns/xdp) fills that
// map from gslbd's bound `listen` addresses: the address as 16 bytes (IPv4 as ::ffff:a.b.c.d),
// the port in network order. A wildcard listen address (0.0.0.0 or ::) is the key
// ::ffff:0.0.0.0 or :: with its port and matches any destination address of its family.
//
// Everything else returns XDP_PASS: ARP, ICMP, TCP, other ports and addresses, fragments,
// IP options, extension headers, multicast and broadcast. A queue without a socket in `xsks`
// passes too (bpf_redirect_map's fallback), so the kernel's sockets answer what no AF_XDP
// socket takes. gslbd checks every header again before answering.
//
// Built by bpf/build.sh into bpf/xdp_dns.o, which is committed and embedded in the binary;
// `bpf/build.sh --check` fails when the object is not this source's.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* Largest RX queue index + 1 and most listen addresses; the loader checks both. */
#define MAX_QUEUES 256
#define MAX_LISTEN 256

/* A listen address: 16 address bytes (IPv4 mapped), port in network order, zero padding. */
struct listen_key {
	__u8 addr[16];
	__u16 port;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_LISTEN);
	__type(key, struct listen_key);
	__type(value, __u8);
} listen_addrs SEC(".maps");

/* RX queue index -> AF_XDP socket. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

/* Whether `key`, or else the wildcard of its family (its address zeroed: ::ffff:0.0.0.0 for
 * IPv4, :: for IPv6) with the same port, is one of ours. */
static __always_inline int listening(struct listen_key *key, int v4)
{
	if (bpf_map_lookup_elem(&listen_addrs, key))
		return 1;
	if (v4)
		__builtin_memset(&key->addr[12], 0, 4);
	else
		__builtin_memset(key->addr, 0, 16);
	return bpf_map_lookup_elem(&listen_addrs, key) != 0;
}

SEC("xdp")
int xdp_dns(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct udphdr *udp;
	struct listen_key key = { 0 };
	int v4;

	if ((void *)(eth + 1) > end || (eth->h_dest[0] & 1))
		return XDP_PASS; /* runt, or multicast / broadcast */
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl != 5 ||
		    ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x3fff)))
			return XDP_PASS;
		udp = (void *)(ip + 1);
		key.addr[10] = 0xff;
		key.addr[11] = 0xff;
		__builtin_memcpy(&key.addr[12], &ip->daddr, 4);
		v4 = 1;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP)
			return XDP_PASS;
		udp = (void *)(ip6 + 1);
		__builtin_memcpy(key.addr, &ip6->daddr, 16);
		v4 = 0;
	} else {
		return XDP_PASS;
	}
	if ((void *)(udp + 1) > end)
		return XDP_PASS;
	key.port = udp->dest;
	if (!listening(&key, v4))
		return XDP_PASS;
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

/* The project's licence. It uses no GPL-only helper, so the kernel asks for no GPL one. */
char _license[] SEC("license") = "MIT OR Apache-2.0";
