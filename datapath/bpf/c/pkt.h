/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Packet parsing, address rewriting and flow reporting for tc programs. */
#pragma once

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include "maps.h"

#define ICMP_ECHOREPLY 0
#define PACKET_HOST 0
#define ICMP_ECHO 8

#define IP_OFF ETH_HLEN
#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define IP_SRC_OFF (ETH_HLEN + offsetof(struct iphdr, saddr))
#define IP_DST_OFF (ETH_HLEN + offsetof(struct iphdr, daddr))

/* pkt is the parsed view of an IPv4 packet; addresses and ports stay in
 * network order. */
struct pkt {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u32 l4_off;
	__u8 proto;
	__u8 has_ports; /* TCP/UDP (not a later fragment) */
};

/* parse_ipv4 returns 1 for IPv4, 0 for another ethertype, -1 for a
 * malformed packet. */
static __always_inline int parse_ipv4(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;

	if ((void *)(eth + 1) > end)
		return -1;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	if ((void *)(ip + 1) > end || ip->ihl < 5)
		return -1;
	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	p->proto = ip->protocol;
	p->l4_off = ETH_HLEN + ip->ihl * 4;
	p->sport = 0;
	p->dport = 0;
	p->has_ports = 0;
	if (ip->frag_off & bpf_htons(0x1fff))
		return 1; /* later fragment: no L4 header */

	switch (p->proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP: {
		__be16 *ports = data + (p->l4_off & 0x7f);
		if ((void *)(ports + 2) > end)
			return -1;
		p->sport = ports[0];
		p->dport = ports[1];
		p->has_ports = 1;
		break;
	}
	case IPPROTO_ICMP: {
		/* type, code, checksum, echo id, echo sequence */
		__u8 icmp[8];
		if (bpf_skb_load_bytes(skb, p->l4_off, icmp, sizeof(icmp)))
			return -1;
		if (icmp[0] == ICMP_ECHO || icmp[0] == ICMP_ECHOREPLY) {
			__builtin_memcpy(&p->sport, &icmp[4], 2);
			p->dport = p->sport;
		}
		break;
	}
	}
	return 1;
}

static __always_inline void addr4_put(__u8 *dst, __be32 a)
{
	__builtin_memcpy(dst, &a, 4);
}

static __always_inline __be32 addr4_get(const __u8 *src)
{
	__be32 a;
	__builtin_memcpy(&a, src, 4);
	return a;
}

/* nat4 rewrites the source (is_src) or destination address and port of p,
 * fixing the IP and L4 checksums. */
static __always_inline int nat4(struct __sk_buff *skb, struct pkt *p, int is_src,
				__be32 addr, __be16 port)
{
	__be32 old_addr = is_src ? p->saddr : p->daddr;
	__be16 old_port = is_src ? p->sport : p->dport;
	__u32 csum_off = 0;
	__u64 l4_flags = 0;

	if (p->proto == IPPROTO_TCP) {
		csum_off = p->l4_off + offsetof(struct tcphdr, check);
	} else if (p->proto == IPPROTO_UDP) {
		csum_off = p->l4_off + offsetof(struct udphdr, check);
		l4_flags = BPF_F_MARK_MANGLED_0;
	}

	if (old_addr != addr) {
		if (csum_off &&
		    bpf_l4_csum_replace(skb, csum_off, old_addr, addr,
					BPF_F_PSEUDO_HDR | l4_flags | sizeof(addr)))
			return -1;
		if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_addr, addr, sizeof(addr)))
			return -1;
		if (bpf_skb_store_bytes(skb, is_src ? IP_SRC_OFF : IP_DST_OFF, &addr,
					sizeof(addr), 0))
			return -1;
	}
	if (p->has_ports && old_port != port) {
		if (bpf_l4_csum_replace(skb, csum_off, old_port, port,
					l4_flags | sizeof(port)))
			return -1;
		if (bpf_skb_store_bytes(skb, p->l4_off + (is_src ? 0 : 2), &port,
					sizeof(port), 0))
			return -1;
	}
	if (is_src) {
		p->saddr = addr;
		p->sport = port;
	} else {
		p->daddr = addr;
		p->dport = port;
	}
	return 0;
}

/* set_mark writes skb->mark whole: the verifier refuses narrower stores
 * the compiler would otherwise emit. */
static __always_inline void set_mark(struct __sk_buff *skb, __u32 mark)
{
	*(volatile __u32 *)&skb->mark = mark;
}

static __always_inline struct config *get_config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&weft_config, &zero);
}

/* count adds one packet of len bytes to the decision's counter, by
 * reason and direction (DIR_INGRESS towards the node's endpoint, as
 * flow.DirectionOf says for the observation point). */
static __always_inline void count(__u32 reason, __u32 len, __u32 dir)
{
	__u32 key = dir * REASON_MAX + reason;
	struct metric *m = bpf_map_lookup_elem(&weft_traffic, &key);
	if (m) {
		m->packets++;
		m->bytes += len;
	}
}

/* emit writes the flow event of a decision: every drop, the first packet
 * of a new flow, and every forwarded packet when the node traces all. */
static __always_inline void emit(struct __sk_buff *skb, struct pkt *p, __u32 src_id,
				 __u32 dst_id, __u8 reason, __u8 obs, int is_new)
{
	struct config *cfg;
	struct flow_event *ev;

	if (reason == REASON_FORWARDED && !is_new) {
		cfg = get_config();
		if (!cfg || !(cfg->flags & CFG_F_TRACE_ALL))
			return;
	}
	ev = bpf_ringbuf_reserve(&weft_flows, sizeof(*ev), 0);
	if (!ev)
		return;
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->time = bpf_ktime_get_ns();
	addr4_put(ev->saddr, p->saddr);
	addr4_put(ev->daddr, p->daddr);
	ev->sport = p->sport;
	ev->dport = p->dport;
	ev->src_identity = src_id;
	ev->dst_identity = dst_id;
	ev->ifindex = skb->ifindex;
	ev->proto = p->proto;
	ev->family = WEFT_AF_INET;
	ev->verdict = reason == REASON_FORWARDED ? VERDICT_FORWARDED : VERDICT_DROPPED;
	ev->reason = reason;
	ev->obs_point = obs;
	if (p->proto == IPPROTO_TCP && p->has_ports)
		bpf_skb_load_bytes(skb, p->l4_off + 13, &ev->tcp_flags, 1);
	if (p->has_ports) {
		struct lb_xlate_key xk = { .client = p->saddr, .backend = p->daddr,
					   .port = p->dport, .proto = p->proto };
		struct lb_xlate *x = bpf_map_lookup_elem(&weft_lb_xlate, &xk);

		if (x) {
			ev->service_id = x->service_id;
			ev->frontend = x->frontend;
			ev->frontend_port = x->port;
		}
	}
	bpf_ringbuf_submit(ev, 0);
}

/* report counts the decision (once per packet, where it is final) and
 * emits its flow event. */
static __always_inline void report(struct __sk_buff *skb, struct pkt *p, __u32 src_id,
				   __u32 dst_id, __u8 reason, __u8 obs, int is_new)
{
	int in = obs == OBS_TO_ENDPOINT || obs == OBS_FROM_OVERLAY || obs == OBS_FROM_NETDEV ||
		 obs == OBS_TO_PROXY;

	count(reason, skb->len, in ? DIR_INGRESS : DIR_EGRESS);
	emit(skb, p, src_id, dst_id, reason, obs, is_new);
}

/* trace emits a forwarded new flow where it enters Weft (from-endpoint,
 * from-overlay, from-netdev) without counting it: the packet is counted
 * where it leaves (to-endpoint, to-overlay, ...). Established packets are
 * not traced there, trace-all or not: their entry point is implied by
 * the exit point. */
static __always_inline void trace_new(struct __sk_buff *skb, struct pkt *p, __u32 src_id,
				      __u32 dst_id, __u8 obs)
{
	emit(skb, p, src_id, dst_id, REASON_FORWARDED, obs, 1);
}

static __always_inline int drop(struct __sk_buff *skb, struct pkt *p, __u32 src_id,
				__u32 dst_id, __u8 reason, __u8 obs)
{
	report(skb, p, src_id, dst_id, reason, obs, 1);
	return TC_ACT_SHOT;
}
