/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Weft's tc programs: from-container and to-container (host-side veth
 * ingress and egress), from-overlay and to-overlay (VXLAN device ingress
 * and egress), from-netdev and to-netdev (underlay ingress and egress,
 * masquerading in masq.h). The socket load balancer lives in
 * sock.h. */

#include "lb.h"
#include "masq.h"
#include "global.h"
#include "sock.h"
#include "proxy.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* proxy_dir is the direction of the proxy a flow of entry ce goes to. */
static __always_inline __u8 proxy_dir(struct ct_entry *ce)
{
	return ce->flags & CT_F_PROXY_EGRESS ? DIR_EGRESS : DIR_INGRESS;
}

/* deliver4 hands p to the local endpoint ep once its ingress policy allows
 * a new flow (recorded with e), rewriting L2 for the pod and redirecting
 * into its netns. A flow the policy redirects goes to the node's L7 proxy
 * instead (ce: the flow's conntrack entry, NULL when new). */
static __always_inline int deliver4(struct __sk_buff *skb, struct pkt *p, struct endpoint_info *ep,
				    int state, struct ct_entry *e, struct ct_entry *ce)
{
	int is_new = state == CT_NEW;

	if (is_new) {
		int v = policy_verdict(ep, e->src_identity, p, DIR_INGRESS);

		if (!v)
			return drop(skb, p, e->src_identity, ep->identity, REASON_POLICY_DENIED,
				    OBS_TO_ENDPOINT);
		e->dst_identity = ep->identity;
		e->reply_ifindex = ep->ifindex;
		if (v == POLICY_REDIRECT) {
			e->flags |= CT_F_PROXY;
			ct_create4(p, e);
			return to_proxy(skb, p, e->src_identity, ep->identity, DIR_INGRESS, 1);
		}
		ct_create4(p, e);
	} else if (state == CT_ESTABLISHED && ce && (ce->flags & CT_F_PROXY)) {
		return to_proxy(skb, p, e->src_identity, ce->dst_identity, proxy_dir(ce), 0);
	} else if (state == CT_REPLY && ce && (ce->flags & CT_F_PROXY_UPSTREAM)) {
		return proxy_reply(skb, p, e->src_identity, ce->src_identity);
	}
	/* mac and node_mac are adjacent: destination then source MAC. */
	if (bpf_skb_store_bytes(skb, 0, ep->mac, 12, 0))
		return drop(skb, p, e->src_identity, ep->identity, REASON_REDIRECT_FAILED,
			    OBS_TO_ENDPOINT);
	report(skb, p, e->src_identity, ep->identity, REASON_FORWARDED, OBS_TO_ENDPOINT, is_new);
	return bpf_redirect_peer(ep->ifindex, 0);
}

/* fib4 looks up the route of p; on success it fills the egress device and
 * next hop of e and returns 1. */
static __always_inline int fib4(struct __sk_buff *skb, struct pkt *p, struct ct_entry *e)
{
	struct bpf_fib_lookup fib = {};
	long rc;

	fib.family = WEFT_AF_INET;
	fib.ifindex = skb->ifindex;
	fib.l4_protocol = p->proto;
	fib.ipv4_src = p->saddr;
	fib.ipv4_dst = p->daddr;
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return 0;
	e->ifindex = fib.ifindex;
	e->nexthop_family = WEFT_AF_INET;
	addr4_put(e->nexthop, fib.ipv4_dst);
	return 1;
}

/* to_neigh4 sends p out of the FIB result recorded in e, the neighbour
 * table filling in the MACs. */
static __always_inline int to_neigh4(struct __sk_buff *skb, struct pkt *p, struct ct_entry *e,
				     __u32 src_id, __u32 dst_id, int is_new)
{
	struct bpf_redir_neigh nh = { .nh_family = WEFT_AF_INET };

	nh.ipv4_nh = addr4_get(e->nexthop);
	report(skb, p, src_id, dst_id, REASON_FORWARDED, OBS_TO_NETDEV, is_new);
	return bpf_redirect_neigh(e->ifindex, &nh, sizeof(nh), 0);
}

/* to_stack4 leaves p to the host stack (local sockets, masquerading to the
 * world, destinations the FIB cannot resolve). */
static __always_inline int to_stack4(struct __sk_buff *skb, struct pkt *p, __u32 src_id,
				     __u32 dst_id, int is_new)
{
	report(skb, p, src_id, dst_id, REASON_FORWARDED, OBS_TO_STACK, is_new);
	return TC_ACT_OK;
}

/* to_tunnel4 sends p to node remote (network order) over the overlay, the
 * VNI carrying the source identity. */
static __always_inline int to_tunnel4(struct __sk_buff *skb, struct pkt *p, struct config *cfg,
				      __be32 remote, __u32 src_id, __u32 dst_id, int is_new)
{
	struct bpf_tunnel_key key = {};

	key.remote_ipv4 = bpf_ntohl(remote);
	key.tunnel_id = src_id;
	key.tunnel_ttl = 64;
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX))
		return drop(skb, p, src_id, dst_id, REASON_REDIRECT_FAILED, OBS_TO_OVERLAY);
	report(skb, p, src_id, dst_id, REASON_FORWARDED, OBS_TO_OVERLAY, is_new);
	set_mark(skb, (skb->mark & ~MARK_MASK) | MARK_TUNNEL_KEYED);
	return bpf_redirect(cfg->tunnel_ifindex, 0);
}

static __always_inline int from_container4(struct __sk_buff *skb, struct pkt *p_, int *pstate);

SEC("tc")
int from_container(struct __sk_buff *skb)
{
	struct pkt p = {};
	int state = -1, ret;

	ret = from_container4(skb, &p, &state);
	/* A new flow the socket load balancer translated was reported with
	 * its frontend (emit reads weft_lb_xlate): once it is forwarded, the
	 * record is spent, so that a later direct connection from the same
	 * pod to the same backend is not taken for load-balanced. */
	if (state == CT_NEW && ret != TC_ACT_SHOT && p.has_ports) {
		struct lb_xlate_key xk = { .client = p.saddr, .backend = p.daddr,
					   .port = p.dport, .proto = p.proto };

		bpf_map_delete_elem(&weft_lb_xlate, &xk);
	}
	return ret;
}

static __always_inline int from_container4(struct __sk_buff *skb, struct pkt *p_, int *pstate)
{
	struct ct_entry *ce = NULL, e = {};
	struct endpoint_info *src = NULL, *dst;
	struct ipcache_value *info;
	struct config *cfg;
	struct pkt p = {};
	__u32 src_id, dst_id;
	int r, state, revnatted = 0;

	r = parse_ipv4(skb, &p);
	if (r == 0)
		return TC_ACT_OK; /* ARP, IPv6: the host stack decides */
	if (r < 0)
		return drop(skb, &p, 0, 0, REASON_INVALID_PACKET, OBS_FROM_ENDPOINT);
	cfg = get_config();
	if (!cfg)
		return TC_ACT_SHOT;

	state = ct_lookup4(&p, &ce);
	*pstate = state;
	if (state == CT_NEW)
		*p_ = p; /* only new flows spend a translation record */
	if (state == CT_ESTABLISHED && ce && ce->src_ifindex == skb->ifindex) {
		src_id = ce->src_identity;
	} else if (state == CT_REPLY && ce && ce->reply_ifindex == skb->ifindex) {
		src_id = ce->dst_identity;
	} else {
		src = endpoint4(p.saddr);
		if (!src || src->ifindex != skb->ifindex) /* unknown or spoofed source */
			return drop(skb, &p, 0, 0, REASON_UNKNOWN_SOURCE, OBS_FROM_ENDPOINT);
		src_id = src->identity;
	}
	if (state == CT_ESTABLISHED && ce && (ce->flags & CT_F_PROXY))
		return to_proxy(skb, &p, src_id, ce->dst_identity, proxy_dir(ce), 0);
	if (state == CT_REPLY && ce && (ce->flags & CT_F_PROXY_UPSTREAM))
		return proxy_reply(skb, &p, src_id, ce->src_identity);

	if (state != CT_NEW && ce) {
		/* The flow's peer across the overlay: where an established flow
		 * goes and where replies return (a NodePort flow arrives from
		 * the frontend's node, which reverse-NATs the reply). */
		if (ce->tunnel_family == WEFT_AF_INET && cfg->tunnel_ifindex) {
			__u32 peer = state == CT_REPLY ? ce->src_identity : ce->dst_identity;

			if (global_snat4(skb, &p, peer))
				return drop(skb, &p, src_id, peer, REASON_NAT_FAILED, OBS_FROM_ENDPOINT);
			return to_tunnel4(skb, &p, cfg, addr4_get(ce->tunnel_endpoint), src_id, peer, 0);
		}
		if (ce->nexthop_family == WEFT_AF_INET &&
		    (state == CT_ESTABLISHED) == !(ce->flags & CT_F_REPLY_FIB))
			return to_neigh4(skb, &p, ce, src_id,
					 state == CT_REPLY ? ce->src_identity : ce->dst_identity, 0);
		if (state == CT_REPLY && ce->rev_nat) {
			if (revnat4(skb, &p, ce->rev_nat))
				return drop(skb, &p, src_id, 0, REASON_NAT_FAILED,
					    OBS_FROM_ENDPOINT);
			revnatted = 1;
		}
	}

	e.src_identity = src_id;
	e.src_ifindex = skb->ifindex;
	dst = endpoint4(p.daddr);
	info = dst ? NULL : ipcache4(p.daddr);
	dst_id = dst ? dst->identity : info ? info->identity : IDENTITY_WORLD;
	if (state == CT_NEW) {
		int v = src ? policy_verdict(src, dst_id, &p, DIR_EGRESS) : 0;

		if (!v)
			return drop(skb, &p, src_id, dst_id, REASON_POLICY_DENIED,
				    OBS_FROM_ENDPOINT);
		trace_new(skb, &p, src_id, dst_id, OBS_FROM_ENDPOINT);
		if (v == POLICY_REDIRECT) {
			/* The egress proxy opens its own connection to the
			 * destination; this flow ends at the proxy. */
			e.dst_identity = dst_id;
			e.flags = CT_F_PROXY | CT_F_PROXY_EGRESS;
			ct_create4(&p, &e);
			return to_proxy(skb, &p, src_id, dst_id, DIR_EGRESS, 1);
		}
	}
	if (dst)
		return deliver4(skb, &p, dst, state, &e, ce);
	e.dst_identity = dst_id;

	if (cfg->mode == MODE_TUNNEL && info && info->tunnel_family == WEFT_AF_INET) {
		if (state == CT_NEW) {
			e.tunnel_family = WEFT_AF_INET;
			__builtin_memcpy(e.tunnel_endpoint, info->tunnel_endpoint, 16);
			ct_create4(&p, &e);
		}
		if (global_snat4(skb, &p, dst_id))
			return drop(skb, &p, src_id, dst_id, REASON_NAT_FAILED, OBS_FROM_ENDPOINT);
		return to_tunnel4(skb, &p, cfg, addr4_get(info->tunnel_endpoint), src_id, dst_id,
				  state == CT_NEW);
	}
	/* Cluster destinations (remote pods and nodes in native mode) and
	 * reverse-NATed replies skip the host stack: FIB + neighbour. */
	if ((revnatted || (info && dst_id != IDENTITY_WORLD)) && fib4(skb, &p, &e)) {
		if (state == CT_NEW) {
			ct_create4(&p, &e);
		} else if (state == CT_REPLY && ce && ce->reply_ifindex && !revnatted) {
			/* Remember the route of replies of a locally delivered flow. */
			ce->ifindex = e.ifindex;
			__builtin_memcpy(ce->nexthop, e.nexthop, 16);
			ce->flags |= CT_F_REPLY_FIB;
			ce->nexthop_family = WEFT_AF_INET;
		}
		return to_neigh4(skb, &p, &e, src_id, dst_id, state == CT_NEW);
	}
	if (state == CT_NEW) {
		e.nexthop_family = 0;
		ct_create4(&p, &e);
	}
	return to_stack4(skb, &p, src_id, dst_id, state == CT_NEW);
}

SEC("tc")
int from_overlay(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {};
	struct ct_entry *ce = NULL, e = {};
	struct endpoint_info *ep;
	struct pkt p = {};
	int r;

	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0))
		return TC_ACT_OK;
	r = parse_ipv4(skb, &p);
	if (r == 0)
		return TC_ACT_OK;
	if (r < 0)
		return drop(skb, &p, key.tunnel_id, 0, REASON_INVALID_PACKET, OBS_FROM_OVERLAY);
	if (global_dnat4(skb, &p))
		return drop(skb, &p, key.tunnel_id, 0, REASON_NAT_FAILED, OBS_FROM_OVERLAY);
	ep = endpoint4(p.daddr);
	if (!ep) {
		/* A reply of a NodePort flow this node sent to a remote backend. */
		if (ct_lookup4(&p, &ce) == CT_REPLY && ce && ce->rev_nat) {
			struct ipcache_value *info;
			struct config *cfg;

			if (revnat4(skb, &p, ce->rev_nat))
				return drop(skb, &p, key.tunnel_id, 0, REASON_NAT_FAILED,
					    OBS_FROM_OVERLAY);
			info = ipcache4(p.daddr);
			cfg = get_config();
			if (cfg && cfg->mode == MODE_TUNNEL && info &&
			    info->tunnel_family == WEFT_AF_INET) /* a pod client */
				return to_tunnel4(skb, &p, cfg, addr4_get(info->tunnel_endpoint),
						  key.tunnel_id, info->identity, 0);
			if (fib4(skb, &p, &e))
				return to_neigh4(skb, &p, &e, key.tunnel_id, ce->src_identity, 0);
			return to_stack4(skb, &p, key.tunnel_id, ce->src_identity, 0);
		}
		/* For the host: the inner frame's MACs were the sender's. */
		bpf_skb_change_type(skb, PACKET_HOST);
		return TC_ACT_OK;
	}
	e.src_identity = key.tunnel_id;
	e.tunnel_family = WEFT_AF_INET;
	addr4_put(e.tunnel_endpoint, bpf_htonl(key.remote_ipv4));
	r = ct_lookup4(&p, &ce);
	if (r == CT_NEW)
		trace_new(skb, &p, key.tunnel_id, ep->identity, OBS_FROM_OVERLAY);
	return deliver4(skb, &p, ep, r, &e, ce);
}

/* to_container runs on the egress of each endpoint's host-side veth. It
 * sees only what the host stack sends to the pod (the host's own traffic,
 * packets the kernel forwarded): what Weft redirects skips it. It enforces
 * the pod's ingress policy on new flows, the peer identity coming from the
 * ipcache, except for the local host. */
SEC("tc")
int to_container(struct __sk_buff *skb)
{
	struct ct_entry *ce = NULL, e = {};
	struct endpoint_info *ep;
	struct pkt p = {};
	int state;

	if (parse_ipv4(skb, &p) <= 0)
		return TC_ACT_OK;
	ep = endpoint4(p.daddr);
	if (!ep || ep->ifindex != skb->ifindex)
		return TC_ACT_OK;
	state = ct_lookup4(&p, &ce);
	if (state != CT_NEW) {
		report(skb, &p, ce ? ce->src_identity : 0, ep->identity, REASON_FORWARDED,
		       OBS_TO_ENDPOINT, 0);
		return TC_ACT_OK;
	}
	e.src_identity = identity4(p.saddr);
	/* The local host is always allowed, as Cilium does by default
	 * (allow-localhost): health checks and probes come from it. */
	if (e.src_identity != IDENTITY_HOST && !policy_allows(ep, e.src_identity, &p, DIR_INGRESS))
		return drop(skb, &p, e.src_identity, ep->identity, REASON_POLICY_DENIED,
			    OBS_TO_ENDPOINT);
	e.dst_identity = ep->identity;
	e.reply_ifindex = ep->ifindex;
	if (is_proxy_upstream(skb))
		e.flags |= CT_F_PROXY_UPSTREAM;
	ct_create4(&p, &e);
	report(skb, &p, e.src_identity, ep->identity, REASON_FORWARDED, OBS_TO_ENDPOINT, 1);
	return TC_ACT_OK;
}

/* to_overlay runs on the VXLAN device's egress. Packets from_container
 * redirected carry their tunnel key already (and a mark saying so: the key
 * of a transmit cannot be read back); the host's own packets to
 * remote pods (routed to the device) get one from the ipcache, with the
 * remote-node identity as VNI. */
SEC("tc")
int to_overlay(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {};
	struct ipcache_value *info;
	struct pkt p = {};

	if ((skb->mark & MARK_MASK) == MARK_TUNNEL_KEYED) {
		set_mark(skb, skb->mark & ~MARK_MASK);
		return TC_ACT_OK; /* keyed by from_container */
	}
	if (parse_ipv4(skb, &p) <= 0)
		return TC_ACT_SHOT;
	info = ipcache4(p.daddr);
	if (!info || info->tunnel_family != WEFT_AF_INET)
		return drop(skb, &p, IDENTITY_HOST, info ? info->identity : IDENTITY_WORLD,
			    REASON_NO_TUNNEL_ENDPOINT, OBS_TO_OVERLAY);
	__builtin_memset(&key, 0, sizeof(key));
	key.remote_ipv4 = bpf_ntohl(addr4_get(info->tunnel_endpoint));
	key.tunnel_id = IDENTITY_REMOTE_NODE;
	if (is_proxy_upstream(skb)) {
		/* The egress proxy, for a local endpoint: its identity. */
		struct endpoint_info *src = endpoint4(p.saddr);

		if (src) {
			key.tunnel_id = src->identity;
			proxy_upstream_ct(&p, src->identity, info->identity);
		}
	}
	key.tunnel_ttl = 64;
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX))
		return drop(skb, &p, IDENTITY_HOST, info->identity, REASON_REDIRECT_FAILED,
			    OBS_TO_OVERLAY);
	report(skb, &p, IDENTITY_HOST, info->identity, REASON_FORWARDED, OBS_TO_OVERLAY, 0);
	return TC_ACT_OK;
}

SEC("tc")
int from_netdev(struct __sk_buff *skb)
{
	struct ct_entry *ce = NULL, e = {};
	struct ipcache_value *info;
	struct endpoint_info *ep;
	struct config *cfg;
	struct pkt p = {};
	__u32 rev_nat = 0;
	int r;

	if (parse_ipv4(skb, &p) <= 0)
		return TC_ACT_OK; /* not ours to judge: the host's traffic */
	cfg = get_config();
	if (cfg && p.proto == IPPROTO_UDP && p.dport == bpf_htons(cfg->tunnel_port))
		return TC_ACT_OK; /* overlay traffic, seen again on the VXLAN device */

	/* A reply to a masqueraded flow goes back to its pod. */
	r = masq_ingress(skb, &p);
	if (r < 0)
		return drop(skb, &p, identity4(p.saddr), 0, REASON_NAT_FAILED, OBS_FROM_NETDEV);
	/* Pod addresses are never tc frontends: traffic to a pod skips the
	 * service lookup. */
	ep = endpoint4(p.daddr);
	if (r == 1 && !ep)
		return TC_ACT_OK;
	r = 0;
	if (!ep) {
		r = lb4_dnat(skb, &p, &rev_nat);
		if (r < 0)
			return drop(skb, &p, identity4(p.saddr), 0, -r, OBS_FROM_NETDEV);
		if (r == 1)
			ep = endpoint4(p.daddr);
	}
	if (ep) {
		int state = ct_lookup4(&p, &ce);

		/* Known flows skip the ipcache: conntrack has the identity. */
		if (state == CT_ESTABLISHED && ce)
			e.src_identity = ce->src_identity;
		else if (state == CT_REPLY && ce && ce->dst_identity)
			e.src_identity = ce->dst_identity;
		else
			e.src_identity = identity4(p.saddr);
		e.rev_nat = rev_nat;
		if (state == CT_NEW)
			trace_new(skb, &p, e.src_identity, ep->identity, OBS_FROM_NETDEV);
		return deliver4(skb, &p, ep, state, &e, ce);
	}
	if (r == 1 && cfg && cfg->tunnel_ifindex) {
		/* DNATed to a backend on another node: over the overlay (in
		 * native mode too), where the reply comes back to be
		 * reverse-NATed by from_overlay; no SNAT needed. */
		int state = ct_lookup4(&p, &ce);

		if (state != CT_NEW && ce && ce->tunnel_family == WEFT_AF_INET)
			return to_tunnel4(skb, &p, cfg, addr4_get(ce->tunnel_endpoint),
					  ce->src_identity, ce->dst_identity, 0);
		info = ipcache4(p.daddr);
		if (info && info->tunnel_family == WEFT_AF_INET) {
			e.src_identity = identity4(p.saddr);
			e.dst_identity = info->identity;
			e.rev_nat = rev_nat;
			e.tunnel_family = WEFT_AF_INET;
			__builtin_memcpy(e.tunnel_endpoint, info->tunnel_endpoint, 16);
			ct_create4(&p, &e);
			return to_tunnel4(skb, &p, cfg, addr4_get(info->tunnel_endpoint),
					  e.src_identity, info->identity, 1);
		}
	}
	return TC_ACT_OK;
}

/* to_netdev runs on the underlay's egress: local pods' packets for
 * outside the cluster are masqueraded to the node's address. */
SEC("tc")
int to_netdev(struct __sk_buff *skb)
{
	struct pkt p = {};
	int reason;

	if (parse_ipv4(skb, &p) <= 0)
		return TC_ACT_OK;
	if (is_proxy_upstream(skb)) {
		/* The egress proxy, for a local endpoint, before masquerading. */
		struct endpoint_info *src = endpoint4(p.saddr);

		if (src)
			proxy_upstream_ct(&p, src->identity, identity4(p.daddr));
	}
	reason = masq_egress(skb, &p);
	if (reason)
		return drop(skb, &p, identity4(p.saddr), IDENTITY_WORLD, reason, OBS_TO_NETDEV);
	return TC_ACT_OK;
}

/* Types only Go reads: referenced here so they appear in BTF for bpf2go. */
const struct flow_event *unused_flow_event __attribute__((unused));
const struct masq_config *unused_masq_config __attribute__((unused));
const struct nomasq_key *unused_nomasq_key __attribute__((unused));
