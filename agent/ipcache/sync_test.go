package ipcache

import (
	"context"
	"log/slog"
	"net/netip"
	"runtime"
	"testing"

	"github.com/weftnet/weft/datapath"
	stateipcache "github.com/weftnet/weft/state/ipcache"
	"github.com/weftnet/weft/state/records"
)

// countingDatapath holds how many entries the BPF ipcache would hold.
type countingDatapath struct{ entries map[netip.Prefix]bool }

func (d *countingDatapath) UpsertIPCache(_ context.Context, p netip.Prefix, _ datapath.IPCacheEntry) error {
	d.entries[p] = true
	return nil
}

func (d *countingDatapath) DeleteIPCache(_ context.Context, p netip.Prefix) error {
	delete(d.entries, p)
	return nil
}

func (d *countingDatapath) PruneIPCache(context.Context, []netip.Prefix) error { return nil }

// TestSyncGivesBackDeletedPods: 50k remote pods come and go; the entries
// leave the datapath, and the Sync's own memory of them goes too (a Go map
// keeps its largest table unless rebuilt).
func TestSyncGivesBackDeletedPods(t *testing.T) {
	const pods = 50_000
	dp := &countingDatapath{entries: map[netip.Prefix]bool{}}
	s := New(dp, netip.MustParseAddr("192.168.1.1"), slog.New(slog.DiscardHandler))
	change := func(typ stateipcache.ChangeType, i int) {
		ip := netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)})
		s.OnChange(stateipcache.Change{Type: typ, Entry: records.IPCacheEntry{
			IP: ip, Identity: 1000, HostIP: netip.MustParseAddr("192.168.1.2"),
		}})
	}
	live := func() uint64 {
		dp.entries = map[netip.Prefix]bool{} // the fake's memory is not the Sync's
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	base := live()
	for i := range pods {
		change(stateipcache.Upsert, i)
	}
	if got := len(dp.entries); got != pods {
		t.Fatalf("datapath holds %d entries after %d upserts", got, pods)
	}
	full := live()
	for i := range pods {
		change(stateipcache.Delete, i)
	}
	after := live()
	runtime.KeepAlive(s)
	if s.Len() != 0 {
		t.Fatalf("Sync still lists %d entries after deleting all", s.Len())
	}
	t.Logf("heap: %d before, %d with %d pods, %d after deleting them", base, full, pods, after)
	if full < base+pods*16 {
		t.Fatalf("holding %d pods grew the heap by %d bytes only; the test measures nothing", pods, full-base)
	}
	if after > base+256<<10 {
		t.Errorf("heap after deleting all %d pods is %d bytes above the empty Sync's (%d with them): the pods' memory is kept", pods, after-base, full-base)
	}
}
