/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Service load balancing: backend selection with session affinity, shared
 * by tc DNAT and the socket hooks. */
#pragma once

#include "lookup.h"

/* lb_select picks a backend of svc: the affine one while it is fresh and
 * still exists, else slot hash % count. It returns the backend id, 0 when
 * the service has no backend. */
static __always_inline __u32 lb_select(struct lb_service_value *svc, struct lb_affinity_key *ak,
				       __u32 hash, struct lb_backend **be)
{
	struct lb_affinity_value *av;
	struct lb_slot_key sk;
	struct lb_backend *b;
	__u64 now = bpf_ktime_get_ns();
	__u32 *id;

	if (svc->flags & SVC_F_AFFINITY) {
		av = bpf_map_lookup_elem(&weft_lb_affinity, ak);
		if (av && now - av->last_used <= (__u64)svc->affinity_timeout * 1000000000ULL) {
			b = bpf_map_lookup_elem(&weft_lb_backends, &av->backend_id);
			if (b) {
				av->last_used = now;
				*be = b;
				return av->backend_id;
			}
		}
	}
	if (svc->count == 0)
		return 0;
	sk.service_id = svc->id;
	sk.slot = hash % svc->count + 1;
	id = bpf_map_lookup_elem(&weft_lb_slots, &sk);
	if (!id)
		return 0;
	b = bpf_map_lookup_elem(&weft_lb_backends, id);
	if (!b)
		return 0;
	if (svc->flags & SVC_F_AFFINITY) {
		struct lb_affinity_value v = { .last_used = now, .backend_id = *id };
		bpf_map_update_elem(&weft_lb_affinity, ak, &v, BPF_ANY);
	}
	*be = b;
	return *id;
}

/* lb4_dnat translates a packet to a tc service frontend (NodePort,
 * ExternalIP, LoadBalancer) to a backend, keeping the choice per flow in a
 * CT_F_SERVICE conntrack entry keyed by the original tuple. It returns 0
 * when p is not for a service, 1 when translated (*rev_nat set) and a
 * negative drop reason otherwise. */
static __always_inline int lb4_dnat(struct __sk_buff *skb, struct pkt *p, __u32 *rev_nat)
{
	struct lb_service_key k = { .port = p->dport, .proto = p->proto, .family = WEFT_AF_INET };
	struct lb_service_value *svc;
	struct lb_backend *b = NULL;
	struct ct_entry *ce;
	struct ct_key ck;
	__u32 id = 0;

	if (!p->has_ports)
		return 0;
	addr4_put(k.addr, p->daddr);
	svc = bpf_map_lookup_elem(&weft_lb_services, &k);
	if (!svc || !(svc->flags & SVC_F_TC))
		return 0;

	ct_key4(&ck, p, 0);
	ce = bpf_map_lookup_elem(&weft_ct, &ck);
	if (ce && (ce->flags & CT_F_SERVICE) && ce->rev_nat == svc->id) {
		id = ce->backend_id;
		b = bpf_map_lookup_elem(&weft_lb_backends, &id);
	}
	if (!b) {
		struct lb_affinity_key ak = { .service_id = svc->id, .family = WEFT_AF_INET };
		struct ct_entry e = {};

		addr4_put(ak.client, p->saddr);
		id = lb_select(svc, &ak, bpf_get_hash_recalc(skb), &b);
		if (!id || !b)
			return -REASON_NO_BACKEND;
		e.last_seen = bpf_ktime_get_ns();
		e.backend_id = id;
		e.rev_nat = svc->id;
		e.flags = CT_F_SERVICE;
		bpf_map_update_elem(&weft_ct, &ck, &e, BPF_ANY);
	}
	*rev_nat = svc->id;
	if (nat4(skb, p, 0, addr4_get(b->addr), b->port))
		return -REASON_NAT_FAILED;
	return 1;
}
