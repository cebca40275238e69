/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Socket load balancer for ClusterIP services: connect4 and sendmsg4
 * rewrite the destination to a backend before any packet exists, recvmsg4
 * restores the frontend as the source of UDP replies. */
#pragma once

#include "lb.h"

static __always_inline void sock_drop4(struct bpf_sock_addr *ctx, __u8 reason)
{
	struct flow_event *ev;

	count(reason, 0, DIR_EGRESS);
	ev = bpf_ringbuf_reserve(&weft_flows, sizeof(*ev), 0);
	if (!ev)
		return;
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->time = bpf_ktime_get_ns();
	addr4_put(ev->daddr, ctx->user_ip4);
	ev->dport = (__be16)ctx->user_port;
	ev->proto = ctx->protocol;
	ev->family = WEFT_AF_INET;
	ev->verdict = VERDICT_DROPPED;
	ev->reason = reason;
	ev->obs_point = OBS_SOCK;
	bpf_ringbuf_submit(ev, 0);
}

/* sock_remember_xlate4 records that a local pod's socket was sent to
 * backend:port for the frontend it asked for (weft_lb_xlate), when the
 * socket's namespace is a known pod's. */
static __always_inline void sock_remember_xlate4(struct bpf_sock_addr *ctx, __u32 service_id,
						 __be32 backend, __be16 port)
{
	__u64 netns = bpf_get_netns_cookie(ctx);
	__be32 *client = bpf_map_lookup_elem(&weft_netns_pods, &netns);
	struct lb_xlate_key xk = {};
	struct lb_xlate x = {};

	if (!client)
		return;
	xk.client = *client;
	xk.backend = backend;
	xk.port = port;
	xk.proto = ctx->protocol;
	x.frontend = ctx->user_ip4;
	x.port = (__be16)ctx->user_port;
	x.service_id = service_id;
	bpf_map_update_elem(&weft_lb_xlate, &xk, &x, BPF_ANY);
}

/* sock_xlate4 returns 1 to let the call proceed, 0 to refuse it (EPERM). */
static __always_inline int sock_xlate4(struct bpf_sock_addr *ctx, int remember)
{
	struct lb_service_key k = { .family = WEFT_AF_INET };
	struct lb_affinity_key ak = {};
	struct lb_service_value *svc;
	struct lb_backend *b = NULL;
	__u64 cookie;
	__u32 id;

	addr4_put(k.addr, ctx->user_ip4);
	k.port = (__be16)ctx->user_port;
	k.proto = ctx->protocol;
	svc = bpf_map_lookup_elem(&weft_lb_services, &k);
	if (!svc || !(svc->flags & SVC_F_SOCK))
		return 1;

	ak.service_id = svc->id;
	cookie = bpf_get_netns_cookie(ctx);
	__builtin_memcpy(ak.client, &cookie, sizeof(cookie));
	id = lb_select(svc, &ak, bpf_get_prandom_u32(), &b);
	if (!id || !b) {
		sock_drop4(ctx, REASON_NO_BACKEND);
		return 0;
	}
	if (remember) {
		struct sock_revnat_key rk = { .cookie = bpf_get_socket_cookie(ctx) };
		struct lb_revnat fe = { .port = k.port, .family = WEFT_AF_INET };

		__builtin_memcpy(rk.addr, b->addr, sizeof(rk.addr));
		rk.port = b->port;
		rk.family = WEFT_AF_INET;
		addr4_put(fe.addr, ctx->user_ip4);
		bpf_map_update_elem(&weft_sock_revnat, &rk, &fe, BPF_ANY);
	}
	sock_remember_xlate4(ctx, svc->id, addr4_get(b->addr), b->port);
	ctx->user_ip4 = addr4_get(b->addr);
	ctx->user_port = b->port;
	count(REASON_FORWARDED, 0, DIR_EGRESS);
	return 1;
}

SEC("cgroup/connect4")
int sock_connect4(struct bpf_sock_addr *ctx)
{
	return sock_xlate4(ctx, ctx->protocol == IPPROTO_UDP);
}

SEC("cgroup/sendmsg4")
int sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock_xlate4(ctx, 1);
}

SEC("cgroup/recvmsg4")
int sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	struct sock_revnat_key rk = { .cookie = bpf_get_socket_cookie(ctx) };
	struct lb_revnat *fe;

	addr4_put(rk.addr, ctx->user_ip4);
	rk.port = (__be16)ctx->user_port;
	rk.family = WEFT_AF_INET;
	fe = bpf_map_lookup_elem(&weft_sock_revnat, &rk);
	if (fe) {
		ctx->user_ip4 = addr4_get(fe->addr);
		ctx->user_port = fe->port;
	}
	return 1;
}
