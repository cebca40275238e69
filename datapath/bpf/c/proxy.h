/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Redirection to the node's L7 proxy. A policy entry with the verdict
 * VERDICT_REDIRECT admits a new TCP flow only through the proxy: the
 * packet keeps its addresses, is assigned to the proxy's transparent
 * listener (bpf_sk_assign; later packets to the connection the listener
 * accepted) and handed to the host stack with MARK_PROXY, which a policy
 * routing rule the agent installs delivers locally (ip rule fwmark
 * 0x5800/0xff00 lookup 2004; local 0.0.0.0/0 dev lo table 2004). The
 * accepted connection's local address is the original destination. The
 * flow's conntrack entry carries CT_F_PROXY, so its later packets take
 * the same way and its replies (from the proxy) pass as replies.
 *
 * No listener (the agent has not written weft_proxy, or the proxy is down
 * or restarting): the packet is dropped with REASON_PROXY_UNAVAILABLE, so
 * redirected flows fail closed and nothing else is affected. */
#pragma once

#include "lookup.h"

/* weft_proxy, array[1]: the ports of the proxy's listeners on 127.0.0.1
 * (host order), 0: none. Written by the agent once it listens. UDP flows
 * (DNS, egress only) go to the DNS listener, TCP flows to the HTTP
 * listener of their direction. */
struct proxy_config {
	__u16 ingress_port;
	__u16 egress_port;
	__u16 dns_port;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct proxy_config);
	__uint(max_entries, 1);
	__uint(pinning, PIN);
} weft_proxy SEC(".maps");

/* proxy_assign assigns skb to the socket of its connection with the proxy,
 * or for a new connection to the listener of direction dir. It returns 0,
 * or -1 when there is none. */
static __always_inline int proxy_assign(struct __sk_buff *skb, struct pkt *p, __u8 dir)
{
	struct bpf_sock_tuple t = {};
	struct proxy_config *pc;
	struct bpf_sock *sk;
	__u32 zero = 0;
	long r;

	if (!p->has_ports)
		return -1;
	if (p->proto == IPPROTO_UDP) {
		/* Every datagram to the DNS listener (no per-flow socket). */
		pc = bpf_map_lookup_elem(&weft_proxy, &zero);
		if (!pc || !pc->dns_port || dir != DIR_EGRESS)
			return -1;
		t.ipv4.saddr = p->saddr;
		t.ipv4.sport = p->sport;
		t.ipv4.daddr = bpf_htonl(0x7f000001);
		t.ipv4.dport = bpf_htons(pc->dns_port);
		sk = bpf_sk_lookup_udp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
		if (!sk)
			return -1;
		r = bpf_sk_assign(skb, sk, 0);
		bpf_sk_release(sk);
		return r ? -1 : 0;
	}
	if (p->proto != IPPROTO_TCP)
		return -1;
	t.ipv4.saddr = p->saddr;
	t.ipv4.daddr = p->daddr;
	t.ipv4.sport = p->sport;
	t.ipv4.dport = p->dport;
	sk = bpf_skc_lookup_tcp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (sk) {
		/* A socket of this very connection (the proxy accepted it); a
		 * listener on the original port is not the proxy. */
		if (sk->state != BPF_TCP_LISTEN)
			goto assign;
		bpf_sk_release(sk);
	}
	pc = bpf_map_lookup_elem(&weft_proxy, &zero);
	if (!pc)
		return -1;
	t.ipv4.daddr = bpf_htonl(0x7f000001);
	t.ipv4.dport = bpf_htons(dir == DIR_INGRESS ? pc->ingress_port : pc->egress_port);
	if (!t.ipv4.dport)
		return -1;
	sk = bpf_skc_lookup_tcp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return -1;
	if (sk->state != BPF_TCP_LISTEN) {
		bpf_sk_release(sk);
		return -1;
	}
assign:
	r = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	return r ? -1 : 0;
}

/* The egress proxy's connection to the destination is opened from the
 * client's address with mark MARK_PROXY_UPSTREAM (SO_MARK), so the
 * destination's datapath sees the client's identity: where it leaves the
 * node (to_container, to_overlay, to_netdev) its conntrack entry gets
 * CT_F_PROXY_UPSTREAM (and the overlay's VNI the client's identity), and
 * its replies, which would otherwise be delivered to the client, are
 * handed to the host stack for the proxy's socket (proxy_reply). */
static __always_inline int is_proxy_upstream(struct __sk_buff *skb)
{
	return (skb->mark & MARK_MASK) == MARK_PROXY_UPSTREAM;
}

/* proxy_upstream_ct records a new upstream flow of the egress proxy. */
static __always_inline void proxy_upstream_ct(struct pkt *p, __u32 src_id, __u32 dst_id)
{
	struct ct_entry *ce = NULL, e = {};

	if (ct_lookup4(p, &ce) != CT_NEW)
		return;
	e.src_identity = src_id;
	e.dst_identity = dst_id;
	e.flags = CT_F_PROXY_UPSTREAM;
	ct_create4(p, &e);
}

/* proxy_reply hands a reply of the egress proxy's upstream connection to
 * the host stack, where policy routing delivers it to the proxy's socket. */
static __always_inline int proxy_reply(struct __sk_buff *skb, struct pkt *p, __u32 src_id,
				       __u32 dst_id)
{
	set_mark(skb, (skb->mark & ~MARK_MASK) | MARK_PROXY);
	bpf_skb_change_type(skb, PACKET_HOST);
	report(skb, p, src_id, dst_id, REASON_FORWARDED, OBS_TO_PROXY, 0);
	return TC_ACT_OK;
}

/* to_proxy hands p (a packet of a flow whose policy redirects it in
 * direction dir) to the proxy, or drops it when the proxy is not there. */
static __always_inline int to_proxy(struct __sk_buff *skb, struct pkt *p, __u32 src_id,
				    __u32 dst_id, __u8 dir, int is_new)
{
	if (proxy_assign(skb, p, dir))
		return drop(skb, p, src_id, dst_id, REASON_PROXY_UNAVAILABLE, OBS_TO_PROXY);
	set_mark(skb, (skb->mark & ~MARK_MASK) | MARK_PROXY);
	/* Frames from the overlay carry the sender's MACs. */
	bpf_skb_change_type(skb, PACKET_HOST);
	report(skb, p, src_id, dst_id, REASON_FORWARDED, OBS_TO_PROXY, is_new);
	return TC_ACT_OK;
}
