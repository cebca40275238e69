package bpf

import (
	"net/netip"
	"slices"
	"testing"
)

func TestFromContainerParsing(t *testing.T) {
	f := newFixture(t)
	f.endpoint("10.1.0.1", 1, 1001, 0)
	dst := f.endpoint("10.1.0.2", 2, 1002, 0)
	f.put(f.objs.WeftEndpoints, NewEndpointKey(mustAddr(t, "10.1.0.3")), EndpointInfo{Ifindex: 42, Identity: 1003, Id: 3})
	valid := packet{src: ap(t, "10.1.0.1:40000"), dst: ap(t, "10.1.0.2:80"), proto: protoTCP}.bytes()
	arp := append([]byte{}, valid[:42]...)
	arp[12], arp[13] = 0x08, 0x06

	tests := []struct {
		name       string
		frame      []byte
		wantRet    uint32
		wantReason uint8 // of a drop
	}{
		{"arp goes to the stack", arp, tcOK, 0},
		{"truncated tcp header", valid[:36], tcShot, ReasonInvalidPacket},
		{"unknown source", packet{src: ap(t, "10.9.9.9:1"), dst: ap(t, "10.1.0.2:80"), proto: protoTCP}.bytes(), tcShot, ReasonUnknownSource},
		{"source of an endpoint on another device", packet{src: ap(t, "10.1.0.3:1"), dst: ap(t, "10.1.0.2:80"), proto: protoTCP}.bytes(), tcShot, ReasonUnknownSource},
		{"local endpoint", valid, tcRedirect, 0},
		{"icmp echo to a local endpoint", packet{src: ap(t, "10.1.0.1:7"), dst: ap(t, "10.1.0.2:0"), proto: protoICMP, icmpEchoType: 8}.bytes(), tcRedirect, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.events()
			ret, out := f.run(f.objs.FromContainer, tc.frame)
			if ret != tc.wantRet {
				t.Fatalf("verdict = %d, want %d", ret, tc.wantRet)
			}
			if ret == tcShot {
				evs := f.events()
				if len(evs) != 1 || evs[0].Reason != tc.wantReason || evs[0].Verdict != FlowDropped {
					t.Fatalf("events = %+v, want one drop with reason %d", evs, tc.wantReason)
				}
			}
			if ret == tcRedirect {
				if got := parse(t, out); got.dstMAC != dst.Mac {
					t.Fatalf("destination MAC = %x, want the pod's %x", got.dstMAC, dst.Mac)
				}
			}
		})
	}
}

func TestPolicyVerdicts(t *testing.T) {
	const (
		client = 1001
		server = 1002
	)
	tests := []struct {
		name    string
		setup   func(f *fixture)
		allowed bool
	}{
		{"no policy allows", func(f *fixture) {}, true},
		{"ingress enforced without rules denies", func(f *fixture) { f.enforce(2, EndpointPolicyIngress) }, false},
		{"egress enforced without rules denies", func(f *fixture) { f.enforce(1, EndpointPolicyEgress) }, false},
		{"ingress allow by identity and port", func(f *fixture) {
			f.enforce(2, EndpointPolicyIngress)
			f.policy(2, DirIngress, client, 80, protoTCP, VerdictAllow)
		}, true},
		{"ingress allow on another port denies", func(f *fixture) {
			f.enforce(2, EndpointPolicyIngress)
			f.policy(2, DirIngress, client, 443, protoTCP, VerdictAllow)
		}, false},
		{"ingress allow any identity, any port of the protocol", func(f *fixture) {
			f.enforce(2, EndpointPolicyIngress)
			f.policy(2, DirIngress, 0, 0, protoTCP, VerdictAllow)
		}, true},
		{"deny wins over a wildcard allow", func(f *fixture) {
			f.enforce(2, EndpointPolicyIngress)
			f.policy(2, DirIngress, 0, 0, 0, VerdictAllow)
			f.policy(2, DirIngress, client, 80, protoTCP, VerdictDeny)
		}, false},
		{"egress allow to the server identity", func(f *fixture) {
			f.enforce(1, EndpointPolicyEgress)
			f.policy(1, DirEgress, server, 0, 0, VerdictAllow)
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.endpoint("10.1.0.1", 1, client, 0)
			f.endpoint("10.1.0.2", 2, server, 0)
			tc.setup(f)
			ret, _ := f.run(f.objs.FromContainer, packet{src: ap(t, "10.1.0.1:40000"), dst: ap(t, "10.1.0.2:80"), proto: protoTCP}.bytes())
			if got := ret == tcRedirect; got != tc.allowed {
				t.Fatalf("verdict %d: allowed = %v, want %v", ret, got, tc.allowed)
			}
			if !tc.allowed {
				// A denial at the server's ingress follows the client's
				// from-endpoint trace of the new flow: only drops count.
				evs := slices.DeleteFunc(f.events(), func(ev FlowEvent) bool {
					return ev.Verdict == FlowForwarded && ev.ObsPoint == ObsFromEndpoint
				})
				if len(evs) != 1 || evs[0].Reason != ReasonPolicyDenied {
					t.Fatalf("events = %+v, want one policy-denied drop", evs)
				}
				if f.metric(ReasonPolicyDenied) != 1 {
					t.Fatalf("policy-denied counter = %d, want 1", f.metric(ReasonPolicyDenied))
				}
			}
		})
	}
}

func TestRepliesPassWhenReverseIsDenied(t *testing.T) {
	f := newFixture(t)
	f.endpoint("10.1.0.1", 1, 1001, EndpointPolicyIngress)
	f.endpoint("10.1.0.2", 2, 1002, 0)
	// 10.1.0.1 denies all ingress: a new flow from .2 is dropped ...
	req := packet{src: ap(t, "10.1.0.2:80"), dst: ap(t, "10.1.0.1:40000"), proto: protoTCP}.bytes()
	if ret, _ := f.run(f.objs.FromContainer, req); ret != tcShot {
		t.Fatalf("unsolicited packet to a default-deny endpoint: verdict %d, want drop", ret)
	}
	// ... but once .1 opened the flow, the same packet is a reply and passes.
	open := packet{src: ap(t, "10.1.0.1:40000"), dst: ap(t, "10.1.0.2:80"), proto: protoTCP}.bytes()
	if ret, _ := f.run(f.objs.FromContainer, open); ret != tcRedirect {
		t.Fatalf("opening packet: verdict %d, want redirect", ret)
	}
	if ret, _ := f.run(f.objs.FromContainer, req); ret != tcRedirect {
		t.Fatalf("reply: verdict %d, want redirect", ret)
	}
}

func (f *fixture) enforce(id uint16, flags uint16) {
	f.t.Helper()
	var key EndpointKey
	var info EndpointInfo
	it := f.objs.WeftEndpoints.Iterate()
	for it.Next(&key, &info) {
		if info.Id == id {
			info.Flags |= flags
			f.put(f.objs.WeftEndpoints, key, info)
			return
		}
	}
	f.t.Fatalf("no endpoint %d", id)
}

func TestCIDRPolicyByIPCachePrefix(t *testing.T) {
	const cidrIdentity = 16777217
	f := newFixture(t)
	f.endpoint("10.1.0.1", 1, 1001, EndpointPolicyEgress)
	f.put(f.objs.WeftIpcache, NewIPCacheKey(netip.MustParsePrefix("192.168.0.0/16")), IPCacheValue{Identity: cidrIdentity})
	f.put(f.objs.WeftIpcache, NewIPCacheKey(netip.MustParsePrefix("192.168.7.0/24")), IPCacheValue{Identity: cidrIdentity + 1}) // "except"
	f.policy(1, DirEgress, cidrIdentity, 443, protoTCP, VerdictAllow)

	for _, tc := range []struct {
		dst     string
		allowed bool
	}{
		{"192.168.5.5:443", true},
		{"192.168.5.5:80", false},
		{"192.168.7.1:443", false}, // longer prefix, other identity
		{"172.16.0.1:443", false},  // world
	} {
		t.Run(tc.dst, func(t *testing.T) {
			ret, _ := f.run(f.objs.FromContainer, packet{src: ap(t, "10.1.0.1:40000"), dst: ap(t, tc.dst), proto: protoTCP}.bytes())
			if got := ret != tcShot; got != tc.allowed {
				t.Fatalf("verdict %d: allowed = %v, want %v", ret, got, tc.allowed)
			}
		})
	}
}

func TestForwardEventsOfEveryPacketWhenTracing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags uint32
		want  int
	}{
		// The new flow is traced where it enters (from-endpoint) once;
		// its packets are reported where they are delivered.
		{"new flows only", 0, 2},
		{"every packet", ConfigTraceAll, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.endpoint("10.1.0.1", 1, 1001, 0)
			f.endpoint("10.1.0.2", 2, 1002, 0)
			f.put(f.objs.WeftConfig, uint32(0), Config{Flags: tc.flags})
			frame := packet{src: ap(t, "10.1.0.1:40000"), dst: ap(t, "10.1.0.2:80"), proto: protoTCP}.bytes()
			for range 3 {
				if ret, _ := f.run(f.objs.FromContainer, frame); ret != tcRedirect {
					t.Fatalf("verdict %d, want redirect", ret)
				}
			}
			evs := f.events()
			if len(evs) != tc.want {
				t.Fatalf("%d events, want %d: %+v", len(evs), tc.want, evs)
			}
			for i, ev := range evs {
				point := uint8(ObsToEndpoint)
				if i == 0 {
					point = ObsFromEndpoint
				}
				if ev.Verdict != FlowForwarded || ev.ObsPoint != point || ev.SrcIdentity != 1001 || ev.DstIdentity != 1002 {
					t.Fatalf("event %d %+v: want forwarded at point %d 1001 -> 1002", i, ev, point)
				}
			}
			if f.metric(ReasonForwarded) != 3 {
				t.Fatalf("forwarded counter = %d, want 3", f.metric(ReasonForwarded))
			}
		})
	}
}

func TestToContainerPolicyOnHostStackTraffic(t *testing.T) {
	for _, tc := range []struct {
		name    string
		src     string
		rules   func(f *fixture)
		allowed bool
	}{
		{"local host is always allowed", "192.168.0.1:40000", func(*fixture) {}, true},
		{"world denied", "172.16.0.1:40000", func(*fixture) {}, false},
		{"world allowed by rule", "172.16.0.1:40000", func(f *fixture) {
			f.policy(2, DirIngress, IdentityWorld, 80, protoTCP, VerdictAllow)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.endpoint("10.1.0.2", 2, 1002, EndpointPolicyIngress)
			f.put(f.objs.WeftIpcache, NewIPCacheKey(netip.MustParsePrefix("192.168.0.1/32")), IPCacheValue{Identity: IdentityHost})
			tc.rules(f)
			ret, _ := f.run(f.objs.ToContainer, packet{src: ap(t, tc.src), dst: ap(t, "10.1.0.2:80"), proto: protoTCP}.bytes())
			if got := ret == tcOK; got != tc.allowed {
				t.Fatalf("verdict %d: allowed = %v, want %v", ret, got, tc.allowed)
			}
		})
	}
}
