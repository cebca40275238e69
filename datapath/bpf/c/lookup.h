/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Lookups in the ipcache, endpoint, policy and conntrack maps. */
#pragma once

#include "pkt.h"

static __always_inline struct endpoint_info *endpoint4(__be32 addr)
{
	struct endpoint_key k = { .family = WEFT_AF_INET };
	addr4_put(k.addr, addr);
	return bpf_map_lookup_elem(&weft_endpoints, &k);
}

static __always_inline struct ipcache_value *ipcache4(__be32 addr)
{
	struct ipcache_key k = { .prefixlen = 32 + 32, .family = WEFT_AF_INET };
	addr4_put(k.addr, addr);
	return bpf_map_lookup_elem(&weft_ipcache, &k);
}

static __always_inline __u32 identity4(__be32 addr)
{
	struct ipcache_value *v = ipcache4(addr);
	return v ? v->identity : IDENTITY_WORLD;
}

/* policy_verdict returns the verdict for a new flow of endpoint ep with a
 * peer identity: 0 denied, POLICY_ALLOW, or POLICY_REDIRECT (allowed only
 * through the L7 proxy). Deny entries win over allow entries, an allow
 * entry over a redirect (an L3/L4 allow admits every request), and an
 * endpoint without policy in that direction allows everything. */
#define POLICY_ALLOW 1
#define POLICY_REDIRECT 2
static __always_inline int policy_verdict(struct endpoint_info *ep, __u32 peer, struct pkt *p,
					  __u8 dir)
{
	__u16 enforced = dir == DIR_INGRESS ? EP_F_POLICY_INGRESS : EP_F_POLICY_EGRESS;
	struct policy_key k = { .endpoint_id = ep->id, .direction = dir };
	struct policy_value *v;
	int allowed = 0, redirect = 0;

	if (!(ep->flags & enforced))
		return POLICY_ALLOW;

#pragma unroll
	for (int i = 0; i < 6; i++) {
		k.identity = i < 3 ? peer : 0;
		switch (i % 3) {
		case 0:
			k.dport = p->dport;
			k.proto = p->proto;
			break;
		case 1:
			k.dport = 0;
			k.proto = p->proto;
			break;
		default:
			k.dport = 0;
			k.proto = 0;
		}
		if (i % 3 == 0 && !p->has_ports)
			continue;
		v = bpf_map_lookup_elem(&weft_policy, &k);
		if (!v)
			continue;
		if (v->verdict == VERDICT_DENY)
			return 0;
		if (v->verdict == VERDICT_ALLOW)
			allowed = 1;
		if (v->verdict == VERDICT_REDIRECT)
			redirect = 1;
	}
	if (allowed)
		return POLICY_ALLOW;
	return redirect ? POLICY_REDIRECT : 0;
}

/* policy_allows: the flow is allowed without the proxy. */
static __always_inline int policy_allows(struct endpoint_info *ep, __u32 peer, struct pkt *p,
					 __u8 dir)
{
	return policy_verdict(ep, peer, p, dir) == POLICY_ALLOW;
}

static __always_inline void ct_key4(struct ct_key *k, struct pkt *p, int reverse)
{
	__builtin_memset(k, 0, sizeof(*k));
	addr4_put(k->saddr, reverse ? p->daddr : p->saddr);
	addr4_put(k->daddr, reverse ? p->saddr : p->daddr);
	k->sport = reverse ? p->dport : p->sport;
	k->dport = reverse ? p->sport : p->dport;
	k->proto = p->proto;
	k->family = WEFT_AF_INET;
}

#define CT_NEW 0
#define CT_ESTABLISHED 1
#define CT_REPLY 2

/* ct_lookup4 classifies p; on a hit *entry points to the flow's entry. */
static __always_inline int ct_lookup4(struct pkt *p, struct ct_entry **entry)
{
	struct ct_key k;
	struct ct_entry *e;
	__u64 now;
	int state = CT_ESTABLISHED;

	ct_key4(&k, p, 0);
	e = bpf_map_lookup_elem(&weft_ct, &k);
	if (!e) {
		ct_key4(&k, p, 1);
		e = bpf_map_lookup_elem(&weft_ct, &k);
		if (!e)
			return CT_NEW;
		state = CT_REPLY;
		if (!(e->flags & CT_F_SEEN_REPLY))
			e->flags |= CT_F_SEEN_REPLY;
	}
	now = bpf_ktime_get_ns();
	if (now - e->last_seen > 1000000000ULL)
		e->last_seen = now;
	*entry = e;
	return state;
}

/* ct_create4 records the new flow p with e (identities, reverse NAT,
 * overlay peer, FIB result) filled by the caller. */
static __always_inline void ct_create4(struct pkt *p, struct ct_entry *e)
{
	struct ct_key k;

	e->last_seen = bpf_ktime_get_ns();
	ct_key4(&k, p, 0);
	bpf_map_update_elem(&weft_ct, &k, e, BPF_ANY);
}

/* revnat4 rewrites the source of a reply to the service frontend. */
static __always_inline int revnat4(struct __sk_buff *skb, struct pkt *p, __u32 rev_nat)
{
	struct lb_revnat *r = bpf_map_lookup_elem(&weft_lb_revnat, &rev_nat);
	if (!r)
		return 0;
	return nat4(skb, p, 1, addr4_get(r->addr), r->port);
}
