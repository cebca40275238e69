/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Masquerading: pod traffic that leaves the node for an address outside
 * the cluster (not in the ipcache as a cluster endpoint or node, not in
 * weft_nomasq) gets the node's address and a port of the node's masquerade
 * range on the underlay's egress (to_netdev); replies are translated back
 * on its ingress (from_netdev) and delivered to the pod. */
#pragma once

#include "lookup.h"

/* The masquerade ports: above Linux's default ephemeral range
 * (32768-60999), so the node's own connections never take them. */
#define MASQ_PORT_MIN 61000
#define MASQ_PORT_COUNT 4536 /* 61000-65535 */
#define MASQ_TRIES 16

/* Node-local CIDR identities (policy.CIDRIdentityBase | n): addresses a
 * CIDR policy names, outside the cluster like the world. */
#define IDENTITY_CIDR_BASE (1u << 24)

struct masq_config {
	__be32 node_ip;
	__u32 enabled;
};

/* Forward: the pod's flow -> its masquerade port. */
struct snat_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct snat_value {
	__be16 port;
	__u16 pad;
};

/* Reverse: a reply's remote end and the masquerade port -> the pod. */
struct snat_rev_key {
	__be32 raddr;
	__be16 rport; /* 0 for ICMP echo */
	__be16 port;
	__u8 proto;
	__u8 pad[3];
};

struct snat_rev_value {
	__be32 addr;
	__be16 port;
	__u16 pad;
};

/* Ranges never masqueraded: the cluster's pod pool and the agent's
 * --non-masquerade-cidrs (prefixlen counts address bits). */
struct nomasq_key {
	__u32 prefixlen;
	__be32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct masq_config);
	__uint(max_entries, 1);
	__uint(pinning, PIN);
} weft_masq_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct snat_key);
	__type(value, struct snat_value);
	__uint(max_entries, 65536);
	__uint(pinning, PIN);
} weft_snat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct snat_rev_key);
	__type(value, struct snat_rev_value);
	__uint(max_entries, 65536);
	__uint(pinning, PIN);
} weft_snat_rev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct nomasq_key);
	__type(value, __u8);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, PIN);
} weft_nomasq SEC(".maps");

static __always_inline struct masq_config *get_masq_config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&weft_masq_config, &zero);
}

/* icmp_echo reports an ICMP echo request (want 8) or reply (want 0). */
static __always_inline int icmp_echo(struct __sk_buff *skb, struct pkt *p, __u8 want)
{
	__u8 type;

	if (p->proto != IPPROTO_ICMP || bpf_skb_load_bytes(skb, p->l4_off, &type, 1))
		return 0;
	return type == want;
}

/* icmp_set_id rewrites an echo's identifier, fixing the ICMP checksum. */
static __always_inline int icmp_set_id(struct __sk_buff *skb, struct pkt *p, __be16 id)
{
	__be16 old = p->sport;

	if (bpf_l4_csum_replace(skb, p->l4_off + 2, old, id, sizeof(id)))
		return -1;
	if (bpf_skb_store_bytes(skb, p->l4_off + 4, &id, sizeof(id), 0))
		return -1;
	p->sport = p->dport = id;
	return 0;
}

/* masq_port returns the masquerade port of p's flow, taking a free one
 * (per remote end) for a new flow; 0 when every try collided. */
static __always_inline __be16 masq_port(struct pkt *p, __be16 rport)
{
	struct snat_key k = { .saddr = p->saddr, .daddr = p->daddr, .sport = p->sport,
			      .dport = p->dport, .proto = p->proto };
	struct snat_value *v = bpf_map_lookup_elem(&weft_snat, &k);
	struct snat_rev_value rv = { .addr = p->saddr, .port = p->sport };
	__u32 start = bpf_get_prandom_u32();
	int i;

	if (v)
		return v->port;
	for (i = 0; i < MASQ_TRIES; i++) {
		struct snat_rev_key rk = { .raddr = p->daddr, .rport = rport, .proto = p->proto };
		struct snat_value nv = {};

		rk.port = bpf_htons(MASQ_PORT_MIN + (start + i * 2741) % MASQ_PORT_COUNT);
		if (bpf_map_update_elem(&weft_snat_rev, &rk, &rv, BPF_NOEXIST))
			continue;
		nv.port = rk.port;
		bpf_map_update_elem(&weft_snat, &k, &nv, BPF_ANY);
		return rk.port;
	}
	return 0;
}

/* masq_egress masquerades p when it is a local pod's packet for outside
 * the cluster. It returns 0 (done or not ours) or a drop reason. */
static __always_inline int masq_egress(struct __sk_buff *skb, struct pkt *p)
{
	struct masq_config *mc = get_masq_config();
	struct nomasq_key nk = { .prefixlen = 32 };
	struct ipcache_value *info;
	int echo;
	__be16 port;

	if (!mc || !mc->enabled || p->saddr == mc->node_ip || !endpoint4(p->saddr))
		return 0;
	info = ipcache4(p->daddr);
	if (info && info->identity != IDENTITY_WORLD && !(info->identity & IDENTITY_CIDR_BASE))
		return 0; /* a pod or node of the cluster or of a connected one */
	nk.addr = p->daddr;
	if (bpf_map_lookup_elem(&weft_nomasq, &nk))
		return 0;
	echo = icmp_echo(skb, p, ICMP_ECHO);
	if (!p->has_ports && !echo)
		return 0; /* fragments and other ICMP leave unchanged */
	port = masq_port(p, echo ? 0 : p->dport);
	if (!port)
		return REASON_NAT_FAILED;
	if (echo) {
		if (nat4(skb, p, 1, mc->node_ip, p->sport) || icmp_set_id(skb, p, port))
			return REASON_NAT_FAILED;
		return 0;
	}
	if (nat4(skb, p, 1, mc->node_ip, port))
		return REASON_NAT_FAILED;
	return 0;
}

/* masq_ingress translates a reply to a masqueraded flow back to its pod;
 * it returns 1 when it did, 0 when p is not one, -1 on failure. */
static __always_inline int masq_ingress(struct __sk_buff *skb, struct pkt *p)
{
	struct masq_config *mc = get_masq_config();
	struct snat_rev_key rk = { .raddr = p->saddr, .rport = p->sport, .port = p->dport, .proto = p->proto };
	struct snat_rev_value *rv;
	int echo;

	if (!mc || !mc->enabled || p->daddr != mc->node_ip)
		return 0;
	echo = icmp_echo(skb, p, ICMP_ECHOREPLY);
	if (!p->has_ports && !echo)
		return 0;
	if (echo)
		rk.rport = 0;
	if (bpf_ntohs(rk.port) < MASQ_PORT_MIN)
		return 0;
	rv = bpf_map_lookup_elem(&weft_snat_rev, &rk);
	if (!rv)
		return 0;
	if (echo) {
		if (nat4(skb, p, 0, rv->addr, p->dport) || icmp_set_id(skb, p, rv->port))
			return -1;
		return 1;
	}
	if (nat4(skb, p, 0, rv->addr, rv->port))
		return -1;
	return 1;
}
