/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Global addressing (docs/clustermesh.md): a cluster whose IPv4 pod pool
 * (one prefix) maps onto its global CIDR by offset. Stateless, both ends:
 * a pod's packet to a pod of another cluster leaves the node with the
 * pod's global address as source (from_container, before the tunnel);
 * a packet from the overlay to this cluster's global range gets the pod
 * address as destination (from_overlay, before delivery). Conntrack sees
 * pod addresses on this node's side and global addresses on the peer's,
 * so replies match; the source identity still comes from the VNI. */
#pragma once

#include "pkt.h"

/* STABLE (v1): weft_global, array[1]. */
struct global_config {
	__be32 global; /* global CIDR base */
	__be32 pool;   /* pod pool base */
	__be32 mask;   /* the pool's netmask */
	__u32 cluster_id;
	__u32 enabled;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct global_config);
	__uint(max_entries, 1);
	__uint(pinning, PIN);
} weft_global SEC(".maps");

static __always_inline struct global_config *get_global(void)
{
	__u32 zero = 0;
	struct global_config *g = bpf_map_lookup_elem(&weft_global, &zero);

	return g && g->enabled ? g : NULL;
}

/* global_snat4 gives a local pod's packet to peer (an identity of another
 * cluster) the pod's global source address; -1: the rewrite failed. */
static __always_inline int global_snat4(struct __sk_buff *skb, struct pkt *p, __u32 peer)
{
	struct global_config *g = get_global();
	__u32 cid = peer >> 16;

	if (!g || cid == 0 || cid > 255 || cid == g->cluster_id || (p->saddr & g->mask) != g->pool)
		return 0;
	return nat4(skb, p, 1, g->global | (p->saddr & ~g->mask), p->sport);
}

/* global_dnat4 turns a destination in this cluster's global range into
 * the pod address; -1: the rewrite failed. */
static __always_inline int global_dnat4(struct __sk_buff *skb, struct pkt *p)
{
	struct global_config *g = get_global();

	if (!g || (p->daddr & g->mask) != g->global)
		return 0;
	return nat4(skb, p, 0, g->pool | (p->daddr & ~g->mask), p->dport);
}
