/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map layouts shared by every Weft program and the Go loader.
 *
 * STABLE (v1): maps are pinned under /sys/fs/bpf/weft/<node> and survive
 * agent restarts, so changing a layout below breaks upgrades. Add a field
 * only in padding, or bump the map name (foo_v2) and migrate.
 *
 * Addresses are 16 bytes everywhere with a family field: an IPv4 address
 * occupies the first 4 bytes (network order), the rest is zero, so IPv6 can
 * follow without new layouts.
 */
#pragma once

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define WEFT_AF_INET 2
#define WEFT_AF_INET6 10

/* Reserved identities (DESIGN.md "Identities"). */
#define IDENTITY_HOST 1
#define IDENTITY_WORLD 2
#define IDENTITY_REMOTE_NODE 6

/* STABLE (v1) ipcache: LPM trie, prefix -> identity and tunnel endpoint.
 * prefixlen counts the 32 bits of family+pad, then the address bits. */
struct ipcache_key {
	__u32 prefixlen;
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];
};

struct ipcache_value {
	__u32 identity;
	__u8 tunnel_family; /* 0: no tunnel endpoint (local or world) */
	__u8 flags;
	__u16 pad;
	__u8 tunnel_endpoint[16];
};

/* STABLE (v1) endpoints: local pod ip -> delivery information. */
struct endpoint_key {
	__u8 addr[16];
	__u8 family;
	__u8 pad[3];
};

#define EP_F_POLICY_INGRESS 1 /* ingress policy enforced (default deny) */
#define EP_F_POLICY_EGRESS 2  /* egress policy enforced (default deny) */

struct endpoint_info {
	__u32 ifindex;  /* host-side veth */
	__u32 identity; /* security identity of the pod */
	__u16 id;       /* endpoint id, policy key */
	__u16 flags;    /* EP_F_* */
	__u8 mac[6];      /* pod MAC: destination of delivered frames */
	__u8 node_mac[6]; /* host-side veth MAC: their source */
};

/* STABLE (v1) policy: one hash for all endpoints. identity 0, dport 0 and
 * proto 0 are wildcards. */
#define DIR_INGRESS 0
#define DIR_EGRESS 1

struct policy_key {
	__u32 identity;
	__u16 endpoint_id;
	__be16 dport;
	__u8 proto;
	__u8 direction;
	__u8 pad[2];
};

#define VERDICT_ALLOW 1
#define VERDICT_DENY 2
#define VERDICT_REDIRECT 3 /* allowed through the node's L7 proxy (proxy.h) */

struct policy_value {
	__u8 verdict;
	__u8 pad[3];
};

/* STABLE (v1) LB: services (frontend -> id, backend count), slots (id,
 * slot -> backend id), backends (id -> address), reverse NAT (id ->
 * frontend). */
#define SVC_F_SOCK 1     /* translated by the socket hooks (ClusterIP) */
#define SVC_F_TC 2       /* translated by tc DNAT (NodePort, ExternalIP, LB) */
#define SVC_F_AFFINITY 4 /* ClientIP session affinity */

struct lb_service_key {
	__u8 addr[16];
	__be16 port;
	__u8 proto;
	__u8 family;
};

struct lb_service_value {
	__u32 id;
	__u16 count; /* backends in slots 1..count */
	__u16 flags; /* SVC_F_* */
	__u32 affinity_timeout; /* seconds */
};

struct lb_slot_key {
	__u32 service_id;
	__u32 slot;
};

struct lb_backend {
	__u8 addr[16];
	__be16 port;
	__u8 proto;
	__u8 family;
};

struct lb_revnat {
	__u8 addr[16];
	__be16 port;
	__u8 family;
	__u8 pad;
};

struct lb_affinity_key {
	__u32 service_id;
	__u8 family; /* 0: client is a netns cookie (socket LB) */
	__u8 pad[3];
	__u8 client[16];
};

struct lb_affinity_value {
	__u64 last_used; /* ktime ns */
	__u32 backend_id;
	__u32 pad;
};

/* STABLE (v1) socket reverse NAT for unconnected UDP (recvmsg4). */
struct sock_revnat_key {
	__u64 cookie;
	__u8 addr[16];
	__be16 port;
	__u8 family;
	__u8 pad[5];
};

/* Socket load balancing as the packets' datapath sees it: the agent maps
 * each local pod's network namespace (its cookie) to the pod's address;
 * sock_xlate4 records every translation by client address, backend and
 * protocol, so the tc programs can say which of the flows they report were
 * load-balanced, and from which frontend. */
struct lb_xlate_key {
	__be32 client;
	__be32 backend;
	__be16 port; /* backend port */
	__u8 proto;
	__u8 pad;
};

struct lb_xlate {
	__be32 frontend;
	__be16 port; /* frontend port */
	__u16 pad;
	__u32 service_id;
};

/* STABLE (v1) conntrack: one entry per direction-less flow, keyed by the
 * tuple of its first packet (after DNAT), looked up as-is (established) and
 * reversed (reply). ICMP echo uses the echo id as both ports. */
struct ct_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u8 pad[2];
};

#define CT_F_SEEN_REPLY 1
#define CT_F_SERVICE 2 /* pre-DNAT entry: backend_id holds the choice */
#define CT_F_PROXY 8 /* the flow goes to the node's L7 proxy (proxy.h) */
#define CT_F_PROXY_EGRESS 16 /* ... its egress listener */
#define CT_F_PROXY_UPSTREAM 32 /* the egress proxy's own connection, opened from
				* the client's address: replies go to the proxy */
#define CT_F_REPLY_FIB 4 /* ifindex/nexthop route replies (the flow itself
			   * was delivered locally, so they are free) */

struct ct_entry {
	__u64 last_seen; /* ktime ns, refreshed at most once a second */
	__u32 src_identity;
	__u32 dst_identity;
	__u32 backend_id; /* CT_F_SERVICE entries */
	__u32 rev_nat;    /* service id to reverse-NAT replies with, 0: none */
	__u8 flags;
	__u8 tunnel_family;  /* peer node across the overlay, 0: none */
	__u8 nexthop_family; /* FIB result for the flow's direction, 0: none */
	__u8 pad;
	__u32 ifindex; /* egress device of the FIB result */
	/* Host-side veths the flow's packets (src) and replies (reply) enter
	 * from, 0: not local. A packet on its flow's device skips the
	 * endpoint lookup: conntrack already vouches for its source. */
	__u32 src_ifindex;
	__u32 reply_ifindex;
	/* The node on the other side of the overlay: where the flow goes
	 * (created by from_container, from_netdev) or came from (created by
	 * from_overlay); packets of the flow and its replies use it. */
	__u8 tunnel_endpoint[16];
	__u8 nexthop[16];
};

/* STABLE (v1) node configuration, array of one. */
#define MODE_TUNNEL 1
#define MODE_NATIVE 2
#define CFG_F_TRACE_ALL 1 /* a flow event for every forwarded packet */

struct config {
	__u32 mode;
	__u32 tunnel_ifindex; /* VXLAN device, both modes (service traffic) */
	__u32 flags;
	__u16 tunnel_port; /* UDP port of the overlay, host order */
	__u16 pad;
};

/* STABLE (v1) flow events (ring buffer) and metrics (per-CPU, by reason). */
#define VERDICT_FORWARDED 1
#define VERDICT_DROPPED 2

#define REASON_FORWARDED 0
#define REASON_POLICY_DENIED 1
#define REASON_NO_BACKEND 2
#define REASON_INVALID_PACKET 3
#define REASON_UNKNOWN_SOURCE 4
#define REASON_REDIRECT_FAILED 5
#define REASON_NAT_FAILED 6
#define REASON_NO_TUNNEL_ENDPOINT 7
#define REASON_PROXY_UNAVAILABLE 8
#define REASON_MAX 16

#define OBS_TO_ENDPOINT 1
#define OBS_TO_OVERLAY 2
#define OBS_TO_STACK 3
#define OBS_FROM_OVERLAY 4
#define OBS_FROM_NETDEV 5
#define OBS_FROM_ENDPOINT 6
#define OBS_SOCK 7
#define OBS_TO_NETDEV 8
#define OBS_TO_PROXY 9

struct flow_event {
	__u64 time; /* ktime ns */
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u32 src_identity;
	__u32 dst_identity;
	__u32 ifindex;
	__u8 proto;
	__u8 family;
	__u8 verdict;
	__u8 reason;
	__u8 obs_point;
	__u8 tcp_flags; /* TCP header flags byte (FIN 0x01 ... CWR 0x80), 0 otherwise */
	__u8 pad[2];
	/* Set when the socket load balancer sent this flow to daddr:dport:
	 * the service's id and the frontend the client asked for. */
	__u32 service_id;
	__be32 frontend;
	__be16 frontend_port;
	__u8 pad2[6];
};

struct metric {
	__u64 packets;
	__u64 bytes;
};

/* skb->mark bits Weft owns: 0x0000ff00 (Cilium's magic range; not used
 * by kube-proxy's 0x4000/0x8000 since Weft replaces it). */
#define MARK_MASK 0xff00
#define MARK_TUNNEL_KEYED 0x5700 /* from_container set the tunnel key */
#define MARK_PROXY 0x5800 /* for the L7 proxy: policy routing delivers it locally */
#define MARK_PROXY_UPSTREAM 0x5900 /* from the egress proxy, on behalf of the
				    * local endpoint that is its source */

#define PIN LIBBPF_PIN_BY_NAME

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_value);
	__uint(max_entries, 512000);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, PIN);
} weft_ipcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_info);
	__uint(max_entries, 65536);
	__uint(pinning, PIN);
} weft_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct policy_key);
	__type(value, struct policy_value);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, PIN);
} weft_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct lb_service_key);
	__type(value, struct lb_service_value);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, PIN);
} weft_lb_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct lb_slot_key);
	__type(value, __u32);
	__uint(max_entries, 1048576);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, PIN);
} weft_lb_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct lb_backend);
	__uint(max_entries, 1048576);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, PIN);
} weft_lb_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct lb_revnat);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, PIN);
} weft_lb_revnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct lb_affinity_key);
	__type(value, struct lb_affinity_value);
	__uint(max_entries, 65536);
	__uint(pinning, PIN);
} weft_lb_affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sock_revnat_key);
	__type(value, struct lb_revnat);
	__uint(max_entries, 65536);
	__uint(pinning, PIN);
} weft_sock_revnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);   /* network namespace cookie of a local pod */
	__type(value, __be32); /* the pod's address */
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, PIN);
} weft_netns_pods SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct lb_xlate_key);
	__type(value, struct lb_xlate);
	__uint(max_entries, 65536);
	__uint(pinning, PIN);
} weft_lb_xlate SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
	__uint(max_entries, 262144);
	__uint(pinning, PIN);
} weft_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct config);
	__uint(max_entries, 1);
	__uint(pinning, PIN);
} weft_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
	__uint(pinning, PIN);
} weft_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32); /* direction * REASON_MAX + reason */
	__type(value, struct metric);
	__uint(max_entries, 2 * REASON_MAX);
	__uint(pinning, PIN);
} weft_traffic SEC(".maps");
