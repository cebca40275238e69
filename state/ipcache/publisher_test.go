package ipcache

import (
	"net/netip"
	"testing"
	"time"

	"github.com/weftnet/weft/state/records"
)

// owned keeps what a Publisher writes.
type owned map[string][]byte

func (o owned) Upsert(key string, value []byte)     { o[key] = value }
func (o owned) Delete(key string)                   { delete(o, key) }
func (o owned) MarkSynced(key string, value []byte) { o[key] = value }

// TestPublishGlobalAddress: with global addressing every pod address of
// the pool is published with its global address; other addresses, and
// every address without global addressing, without one.
func TestPublishGlobalAddress(t *testing.T) {
	o := owned{}
	p, err := NewPublisher(o, "weft/", "c1")
	if err != nil {
		t.Fatal(err)
	}
	keys := records.NewKeys("weft/")
	read := func(ip string) records.IPCacheEntry {
		t.Helper()
		key := keys.IPCache("c1", netip.MustParseAddr(ip))
		e, err := keys.DecodeIPCacheEntry(key, o[key])
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	publish := func(ip string) {
		t.Helper()
		if err := p.Publish(records.IPCacheEntry{IP: netip.MustParseAddr(ip), Identity: records.ClusterIdentity(1, 300), GlobalIP: netip.MustParseAddr("1.2.3.4")}); err != nil {
			t.Fatal(err)
		}
	}
	publish("10.100.1.7")
	if e := read("10.100.1.7"); e.GlobalIP.IsValid() {
		t.Errorf("without global addressing: published global IP %v", e.GlobalIP)
	}
	p.SetGlobal(netip.MustParsePrefix("242.1.0.0/16"), []netip.Prefix{netip.MustParsePrefix("10.100.0.0/16")})
	publish("10.100.1.7")
	publish("10.200.0.1")
	if e := read("10.100.1.7"); e.GlobalIP.String() != "242.1.1.7" {
		t.Errorf("10.100.1.7 published with global IP %v, want 242.1.1.7", e.GlobalIP)
	}
	if e := read("10.200.0.1"); e.GlobalIP.IsValid() {
		t.Errorf("10.200.0.1, outside the pool: published global IP %v", e.GlobalIP)
	}
	if err := p.MarkSynced(time.Now()); err != nil {
		t.Fatal(err)
	}
}
