/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet rewriting for the verdicts of nodeport.h: address and port
 * translation with checksum updates, forwarding out of an interface, and
 * the ICMP port unreachable that refuses a flow without a backend. TC uses
 * the skb helpers (they keep skb->csum and CHECKSUM_PARTIAL right); XDP
 * writes in place with csum.h.
 */
#ifndef WEIR_NAT_H
#define WEIR_NAT_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include "common.h"
#include "csum.h"
#include "parse.h"
#include "nodeport.h"

#define IP_SADDR_OFF (ETH_HLEN + offsetof(struct iphdr, saddr))
#define IP_DADDR_OFF (ETH_HLEN + offsetof(struct iphdr, daddr))
#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))

static __always_inline int tc_rewrite_addr(struct __sk_buff *skb, const struct pkt4 *p, __u32 off,
					   __be32 from, __be32 to)
{
	__u64 l4f = BPF_F_PSEUDO_HDR | sizeof(to);

	if (from == to)
		return 0;
	if (p->t.proto == IPPROTO_UDP)
		l4f |= BPF_F_MARK_MANGLED_0;
	if (bpf_l4_csum_replace(skb, p->csum_off, from, to, l4f) ||
	    bpf_l3_csum_replace(skb, IP_CSUM_OFF, from, to, sizeof(to)))
		return -1;
	return bpf_skb_store_bytes(skb, off, &to, sizeof(to), 0);
}

static __always_inline int tc_rewrite_port(struct __sk_buff *skb, const struct pkt4 *p, __u32 off,
					   __be16 from, __be16 to)
{
	__u64 l4f = sizeof(to);

	if (from == to)
		return 0;
	if (p->t.proto == IPPROTO_UDP)
		l4f |= BPF_F_MARK_MANGLED_0;
	if (bpf_l4_csum_replace(skb, p->csum_off, from, to, l4f))
		return -1;
	return bpf_skb_store_bytes(skb, off, &to, sizeof(to), 0);
}

/* tc_nat4 rewrites the packet's tuple p->t to the one in n. */
static __always_inline int tc_nat4(struct __sk_buff *skb, const struct pkt4 *p,
				   const struct ct4_entry *n)
{
	if (tc_rewrite_addr(skb, p, IP_SADDR_OFF, p->t.saddr, n->nat_saddr) ||
	    tc_rewrite_addr(skb, p, IP_DADDR_OFF, p->t.daddr, n->nat_daddr) ||
	    tc_rewrite_port(skb, p, p->l4_off, p->t.sport, n->nat_sport) ||
	    tc_rewrite_port(skb, p, p->l4_off + 2, p->t.dport, n->nat_dport))
		return -1;
	return 0;
}

#define IP_TTL_OFF (ETH_HLEN + offsetof(struct iphdr, ttl))

/*
 * tc_dec_ttl decrements the TTL of a packet BPF forwards itself, as the
 * stack would; it fails when the TTL would expire (the caller drops).
 * TTL and protocol share one 16-bit word of the header checksum.
 */
static __always_inline int tc_dec_ttl(struct __sk_buff *skb)
{
	__be16 word, next;

	if (bpf_skb_load_bytes(skb, IP_TTL_OFF, &word, sizeof(word)))
		return -1;
	if ((bpf_ntohs(word) >> 8) <= 1)
		return -1;
	next = bpf_htons(bpf_ntohs(word) - 0x100);
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, word, next, sizeof(next)))
		return -1;
	return bpf_skb_store_bytes(skb, IP_TTL_OFF, &next, sizeof(next), 0);
}

/* tc_forward sends a rewritten packet where the FIB lookup said. */
static __always_inline int tc_forward(struct __sk_buff *skb, const struct np_result *r)
{
	if (r->fib_rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return bpf_redirect_neigh(r->fib.ifindex, NULL, 0, 0);
	if (bpf_skb_store_bytes(skb, 0, r->fib.dmac, ETH_ALEN, 0) ||
	    bpf_skb_store_bytes(skb, ETH_ALEN, r->fib.smac, ETH_ALEN, 0))
		return TC_ACT_SHOT;
	return bpf_redirect(r->fib.ifindex, 0);
}

/* linux/icmp.h pulls in libc headers; the two constants and the header. */
#define ICMP_DEST_UNREACH 3
#define ICMP_PORT_UNREACH 3

struct icmp4hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 unused;
};

/* The ICMP error: its header and the start of the offending datagram. */
struct icmp_unreach {
	struct icmp4hdr icmp;
	struct iphdr orig;
	__u8 orig_l4[8];
};

/*
 * tc_reject4 turns the packet into an ICMP port unreachable from the
 * frontend to the client and sends it back out the uplink: the client's
 * connect() or send fails at once, as with kube-proxy's REJECT. Only an
 * option-less IPv4 header is quoted; anything else fails (the caller
 * drops it).
 */
static __always_inline int tc_reject4(struct __sk_buff *skb, const struct pkt4 *p)
{
	struct ethhdr eth;
	struct iphdr ip = {};
	struct icmp_unreach u = {};
	__u8 mac[ETH_ALEN];
	__s64 c;

	if (p->ihl != 5)
		return -1;
	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) ||
	    bpf_skb_load_bytes(skb, ETH_HLEN, &u.orig, sizeof(u.orig) + sizeof(u.orig_l4)))
		return -1;
	__builtin_memcpy(mac, eth.h_dest, ETH_ALEN);
	__builtin_memcpy(eth.h_dest, eth.h_source, ETH_ALEN);
	__builtin_memcpy(eth.h_source, mac, ETH_ALEN);

	ip.version = 4;
	ip.ihl = 5;
	ip.tos = 0xc0; /* internetwork control, as the kernel sends ICMP errors */
	ip.tot_len = bpf_htons(sizeof(ip) + sizeof(u));
	ip.ttl = 64;
	ip.protocol = IPPROTO_ICMP;
	ip.saddr = p->t.daddr;
	ip.daddr = p->t.saddr;
	c = bpf_csum_diff(NULL, 0, (__be32 *)&ip, sizeof(ip), 0);
	if (c < 0)
		return -1;
	ip.check = csum_fold64(c);

	u.icmp.type = ICMP_DEST_UNREACH;
	u.icmp.code = ICMP_PORT_UNREACH;
	c = bpf_csum_diff(NULL, 0, (__be32 *)&u, sizeof(u), 0);
	if (c < 0)
		return -1;
	u.icmp.checksum = csum_fold64(c);

	if (bpf_skb_change_tail(skb, sizeof(eth) + sizeof(ip) + sizeof(u), 0) ||
	    bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN, &ip, sizeof(ip), 0) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(ip), &u, sizeof(u), 0))
		return -1;
	return 0;
}

/* xdp_dec_ttl is tc_dec_ttl for XDP, in place. */
static __always_inline int xdp_dec_ttl(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	__u16 *word = (__u16 *)&ip->ttl;
	__u16 old;

	if ((void *)(ip + 1) > data_end || ip->ttl <= 1)
		return -1;
	old = *word;
	ip->ttl--;
	ip->check = csum_replace16(ip->check, old, *word);
	return 0;
}

/* xdp_nat4 rewrites the packet's tuple p->t to the one in n, in place. */
static __always_inline int xdp_nat4(struct xdp_md *ctx, const struct pkt4 *p,
				    const struct ct4_entry *n)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	__u16 *ports, *l4sum;
	__u32 off = p->l4_off;
	bool udp0;

	if ((void *)(ip + 1) > data_end || off > ETH_HLEN + 60)
		return -1;
	ports = data + off;
	if ((void *)(ports + 2) > data_end)
		return -1;
	off = p->csum_off;
	if (off > ETH_HLEN + 60 + 16)
		return -1;
	l4sum = data + off;
	if ((void *)(l4sum + 1) > data_end)
		return -1;
	udp0 = p->t.proto == IPPROTO_UDP && *l4sum == 0;

	if (n->nat_saddr != p->t.saddr) {
		ip->check = csum_replace32(ip->check, p->t.saddr, n->nat_saddr);
		if (!udp0)
			*l4sum = csum_replace32(*l4sum, p->t.saddr, n->nat_saddr);
		ip->saddr = n->nat_saddr;
	}
	if (n->nat_daddr != p->t.daddr) {
		ip->check = csum_replace32(ip->check, p->t.daddr, n->nat_daddr);
		if (!udp0)
			*l4sum = csum_replace32(*l4sum, p->t.daddr, n->nat_daddr);
		ip->daddr = n->nat_daddr;
	}
	if (n->nat_sport != p->t.sport) {
		if (!udp0)
			*l4sum = csum_replace16(*l4sum, p->t.sport, n->nat_sport);
		ports[0] = n->nat_sport;
	}
	if (n->nat_dport != p->t.dport) {
		if (!udp0)
			*l4sum = csum_replace16(*l4sum, p->t.dport, n->nat_dport);
		ports[1] = n->nat_dport;
	}
	if (p->t.proto == IPPROTO_UDP && !udp0 && *l4sum == 0)
		*l4sum = 0xffff;
	return 0;
}

#endif /* WEIR_NAT_H */
