package clustermesh

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/ipcache"
	"github.com/weftnet/weft/state/records"
)

// bpfIPCache records what the mesh would write into the BPF ipcache.
type bpfIPCache struct {
	mu sync.Mutex
	m  map[netip.Addr]records.IPCacheEntry
}

func (c *bpfIPCache) OnChange(ch ipcache.Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch.Type == ipcache.Delete {
		delete(c.m, ch.Entry.IP)
		return
	}
	c.m[ch.Entry.IP] = ch.Entry
}

func (c *bpfIPCache) get(ip string) (records.IPCacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[netip.MustParseAddr(ip)]
	return e, ok
}

func pool(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// TestRemoteGlobalAddresses: through a real store watch, a remote with
// global addressing sharing this cluster's pod CIDR has its pods known
// here by their global addresses; entries whose global address is not the
// one the remote's global CIDR gives them are refused and counted, and a
// refused update removes what the earlier version brought.
func TestRemoteGlobalAddresses(t *testing.T) {
	store := kvstoretest.StartEtcd(t)
	client := store.NewClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bpf := &bpfIPCache{m: map[netip.Addr]records.IPCacheEntry{}}
	cfg := Config{Node: "n1", StateDir: t.TempDir(), Cluster: records.ClusterConfig{Name: "c1", ID: 1, Routing: records.RoutingTunnel,
		PodCIDRs: pool("10.100.0.0/16"), PodCIDRMaskSize: 24, GlobalCIDR: netip.MustParsePrefix("242.1.0.0/16")}}
	m := New(client, records.NewKeys(client.Prefix()), cfg, nil, bpf, nil, nil, slog.New(slog.DiscardHandler))
	r := newRemoteCluster(m, "c2")
	r.keys = records.NewKeys(client.Prefix())
	r.cfg = records.ClusterConfig{Name: "c2", ID: 2, Routing: records.RoutingTunnel, PodCIDRs: pool("10.100.0.0/16"), PodCIDRMaskSize: 24,
		GlobalCIDR: netip.MustParsePrefix("242.2.0.0/16")}
	m.remotes["c2"] = r
	id := records.ClusterIdentity(2, 300)
	host := netip.MustParseAddr("192.168.0.21")
	put := func(ip, global string) string {
		e := records.IPCacheEntry{IP: netip.MustParseAddr(ip), Identity: id, HostIP: host, Namespace: "default", Pod: "web"}
		if global != "" {
			e.GlobalIP = netip.MustParseAddr(global)
		}
		key := r.keys.IPCache("c2", e.IP)
		val, err := records.Encode(key, &e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Update(ctx, key, val); err != nil {
			t.Fatal(err)
		}
		return key
	}
	goodKey := put("10.100.1.7", "242.2.1.7")
	put("10.100.1.8", "242.9.1.8")  // outside c2's global CIDR
	put("10.100.1.9", "242.2.1.10") // inside, but another pod's
	put("10.100.1.11", "")          // no global address
	put("10.100.1.12", "242.2.1.12")
	go r.watch(ctx, client, r.keys.IPCachePrefix("c2"), records.KindIPCache, r.ipKind())
	waitFor(t, "the good entries installed", func() bool { _, a := bpf.get("242.2.1.7"); _, b := bpf.get("242.2.1.12"); return a && b })
	e, _ := bpf.get("242.2.1.7")
	if e.Identity != id || e.HostIP != host {
		t.Errorf("BPF entry of 242.2.1.7: %+v, want identity %d behind %v", e, id, host)
	}
	if _, ok := bpf.get("10.100.1.7"); ok {
		t.Error("the remote's pod address 10.100.1.7, this cluster's own range, went into the BPF ipcache")
	}
	// The changed entry now claims a foreign global address: refused, and
	// what it brought before is gone.
	put("10.100.1.12", "242.1.1.12")
	waitFor(t, "the changed entry withdrawn", func() bool { _, ok := bpf.get("242.2.1.12"); return !ok })
	waitFor(t, "four refusals counted", func() bool { return r.status().Rejected[RejectGlobalAddress] == 4 })
	if st := r.status(); !strings.Contains(st.Error, "rejected 4 records (global-address 4)") || st.Endpoints != 1 {
		t.Errorf("status of c2: %q, %d endpoints; want 4 refusals and 1 endpoint", st.Error, st.Endpoints)
	}
	// weft ipcache list: the pod address and its global address.
	list := m.IPCache()
	if len(list) != 1 || list[0].IP.String() != "10.100.1.7" || list[0].GlobalIP.String() != "242.2.1.7" {
		t.Errorf("remote entries listed: %+v", list)
	}
	if got, ok := m.LookupIP(netip.MustParseAddr("242.2.1.7")); !ok || got.Pod != "web" {
		t.Errorf("lookup of the global address: %+v %v", got, ok)
	}
	// Deleting the record removes the global address.
	if err := client.Delete(ctx, goodKey); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted entry withdrawn", func() bool { _, ok := bpf.get("242.2.1.7"); return !ok })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCheckGlobalIP is the table of what a remote's entry may claim.
func TestCheckGlobalIP(t *testing.T) {
	global := records.ClusterConfig{Name: "c2", ID: 2, PodCIDRs: pool("10.100.0.0/16", "fd00::/104"), GlobalCIDR: netip.MustParsePrefix("242.2.0.0/16")}
	plain := records.ClusterConfig{Name: "c3", ID: 3, PodCIDRs: pool("10.103.0.0/16")}
	for _, tc := range []struct {
		name       string
		cc         records.ClusterConfig
		ip, global string
		want       string // substring of the refusal, "" for accepted
	}{
		{"its global address", global, "10.100.1.7", "242.2.1.7", ""},
		{"outside the global CIDR", global, "10.100.1.7", "242.3.1.7", "outside the global CIDR 242.2.0.0/16 of c2"},
		{"another pod's", global, "10.100.1.7", "242.2.1.8", "c2 gives that address 242.2.1.7"},
		{"missing", global, "10.100.1.7", "", "has no global address; c2 gives it 242.2.1.7"},
		{"outside the pool, none", global, "10.99.0.1", "", ""},
		{"outside the pool, claimed", global, "10.99.0.1", "242.2.0.1", "10.99.0.1 is outside the IPv4 pod CIDR pool of c2"},
		{"IPv6 pod, none", global, "fd00::7", "", ""},
		{"cluster without global addressing", plain, "10.103.0.1", "242.3.0.1", "cluster c3 has no global addressing"},
		{"cluster without global addressing, none", plain, "10.103.0.1", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := records.IPCacheEntry{IP: netip.MustParseAddr(tc.ip)}
			if tc.global != "" {
				e.GlobalIP = netip.MustParseAddr(tc.global)
			}
			err := checkGlobalIP(tc.cc, e)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || rejectReason(err) != RejectGlobalAddress || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (%s), want a %s refusal containing %q", err, rejectReason(err), RejectGlobalAddress, tc.want)
			}
		})
	}
}

// FuzzCheckGlobalIP: an entry is accepted exactly when its global address
// is the one the cluster's mapping gives (or both are absent), and what is
// accepted maps back to the pod address.
func FuzzCheckGlobalIP(f *testing.F) {
	f.Add(uint32(0x0a640107), uint32(0xf2020107), true)
	f.Add(uint32(0x0a640107), uint32(0xf2030107), true)
	f.Add(uint32(0x0a630001), uint32(0), false)
	cc := records.ClusterConfig{Name: "c2", ID: 2, PodCIDRs: pool("10.100.0.0/17", "10.200.0.0/24"), GlobalCIDR: netip.MustParsePrefix("242.2.0.0/16")}
	f.Fuzz(func(t *testing.T, ip, global uint32, hasGlobal bool) {
		e := records.IPCacheEntry{IP: v4(ip)}
		if hasGlobal {
			e.GlobalIP = v4(global)
		}
		want, mapped := records.GlobalAddr(cc.GlobalCIDR, cc.PodCIDRs, e.IP)
		err := checkGlobalIP(cc, e)
		accept := (mapped && hasGlobal && want == e.GlobalIP) || (!mapped && !hasGlobal)
		if accept != (err == nil) {
			t.Fatalf("entry %v global %v: %v, want accepted=%v", e.IP, e.GlobalIP, err, accept)
		}
		if err != nil && rejectReason(err) != RejectGlobalAddress {
			t.Fatalf("refusal %v has reason %s", err, rejectReason(err))
		}
		if err == nil && hasGlobal {
			if back := podAddr(cc, e.GlobalIP); back != e.IP {
				t.Fatalf("global %v maps back to %v, want %v", e.GlobalIP, back, e.IP)
			}
			if !cc.GlobalCIDR.Contains(e.GlobalIP) {
				t.Fatalf("accepted %v outside %v", e.GlobalIP, cc.GlobalCIDR)
			}
		}
	})
}

func v4(u uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], u)
	return netip.AddrFrom4(b)
}

// TestGlobalNode: a global remote's node is routed by its global range, so
// a remote node with this cluster's own pod CIDR never replaces the route
// to the local node that has it.
func TestGlobalNode(t *testing.T) {
	cc := records.ClusterConfig{Name: "c2", ID: 2, PodCIDRs: pool("10.100.0.0/16", "fd00::/104"), GlobalCIDR: netip.MustParsePrefix("242.2.0.0/16")}
	n := records.Node{Name: "c2-n1", Cluster: "c2", ClusterID: 2, PodCIDRs: pool("10.100.3.0/24", "fd00::300/120"), HealthIP: netip.MustParseAddr("10.100.3.2")}
	got := globalNode(cc, n)
	if len(got.PodCIDRs) != 1 || got.PodCIDRs[0].String() != "242.2.3.0/24" || got.HealthIP.String() != "242.2.3.2" {
		t.Errorf("global remote's node: pod CIDRs %v health %v, want [242.2.3.0/24] 242.2.3.2", got.PodCIDRs, got.HealthIP)
	}
	if n.PodCIDRs[0].String() != "10.100.3.0/24" {
		t.Error("globalNode changed the record it was given")
	}
	plain := records.ClusterConfig{Name: "c3", ID: 3, PodCIDRs: pool("10.103.0.0/16")}
	if got := globalNode(plain, n); got.PodCIDRs[0] != n.PodCIDRs[0] || got.HealthIP != n.HealthIP {
		t.Errorf("remote without global addressing: %+v, want unchanged", got)
	}
}
