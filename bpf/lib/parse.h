/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsing over a [data, data_end) range with direct packet access,
 * shared by TC and XDP: Ethernet, IPv4 (options allowed), TCP or UDP.
 */
#ifndef WEIR_PARSE_H
#define WEIR_PARSE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include "common.h"
#include "nodeport_maps.h"

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

enum parse_rc {
	PARSE_OK,
	PARSE_SKIP,	 /* not IPv4 TCP or UDP: not ours */
	PARSE_MALFORMED, /* IPv4 whose headers are truncated or inconsistent */
	PARSE_FRAGMENT,	 /* an IPv4 fragment: ports unknown or unreliable */
};

/* One parsed IPv4 TCP/UDP packet: its tuple and where its fields are. */
struct pkt4 {
	struct ct4_key t;
	__u32 l4_off;	/* from the start of the frame */
	__u32 csum_off; /* the L4 checksum, from the start of the frame */
	__u16 tot_len;	/* IPv4 total length */
	__u8 ihl;
	__u8 tcp_flags; /* byte 13 of the TCP header (FIN 0x01, SYN 0x02, RST 0x04); 0 for UDP */
};

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04

static __always_inline enum parse_rc parse4(void *data, void *data_end, struct pkt4 *p)
{
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 hlen;

	if ((void *)(eth + 1) > data_end)
		return PARSE_SKIP;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return PARSE_SKIP;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return PARSE_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return PARSE_MALFORMED;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return PARSE_SKIP;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return PARSE_FRAGMENT;
	hlen = ip->ihl * 4;
	p->ihl = ip->ihl;
	p->tot_len = bpf_ntohs(ip->tot_len);
	p->t.saddr = ip->saddr;
	p->t.daddr = ip->daddr;
	p->t.proto = ip->protocol;
	p->t.pad[0] = p->t.pad[1] = p->t.pad[2] = 0;
	p->l4_off = ETH_HLEN + hlen;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *th = data + ETH_HLEN + hlen;

		if ((void *)(th + 1) > data_end || p->tot_len < hlen + sizeof(*th) || th->doff < 5)
			return PARSE_MALFORMED;
		p->t.sport = th->source;
		p->t.dport = th->dest;
		p->csum_off = p->l4_off + offsetof(struct tcphdr, check);
		p->tcp_flags = ((__u8 *)th)[13];
	} else {
		struct udphdr *uh = data + ETH_HLEN + hlen;

		if ((void *)(uh + 1) > data_end || p->tot_len < hlen + sizeof(*uh))
			return PARSE_MALFORMED;
		p->t.sport = uh->source;
		p->t.dport = uh->dest;
		p->csum_off = p->l4_off + offsetof(struct udphdr, check);
		p->tcp_flags = 0;
	}
	return PARSE_OK;
}

#endif /* WEIR_PARSE_H */
