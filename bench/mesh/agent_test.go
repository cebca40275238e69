package mesh

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/datapath/bpf"
	stateipcache "github.com/weftnet/weft/state/ipcache"
)

// productionIPCacheEntries is max_entries of datapath/bpf's weft_ipcache.
const productionIPCacheEntries = 512000

// bpfIPCache is an LPM trie with the key and value layout of weft_ipcache,
// written the way datapath.Datapath writes it (agent/ipcache.Datapath).
type bpfIPCache struct{ m *ebpf.Map }

func newBPFIPCache(entries int) (*bpfIPCache, error) {
	ks, vs := binary.Size(bpf.IPCacheKey{}), binary.Size(bpf.IPCacheValue{})
	if ks != 24 || vs != 24 {
		return nil, fmt.Errorf("ipcache key/value of %d/%d bytes, the STABLE v1 layout has 24/24", ks, vs)
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "bench_ipcache", Type: ebpf.LPMTrie, KeySize: uint32(ks), ValueSize: uint32(vs),
		MaxEntries: uint32(max(entries, productionIPCacheEntries)), Flags: unix.BPF_F_NO_PREALLOC})
	if err != nil {
		return nil, fmt.Errorf("create the BPF ipcache: %w", err)
	}
	return &bpfIPCache{m: m}, nil
}

func (d *bpfIPCache) UpsertIPCache(ctx context.Context, p netip.Prefix, e datapath.IPCacheEntry) error {
	v := bpf.IPCacheValue{Identity: e.Identity}
	if e.TunnelEndpoint.IsValid() {
		v.TunnelFamily, v.TunnelEndpoint = bpf.Addr16(e.TunnelEndpoint)
	}
	return d.m.Put(bpf.NewIPCacheKey(p), v)
}

func (d *bpfIPCache) DeleteIPCache(ctx context.Context, p netip.Prefix) error {
	if err := d.m.Delete(bpf.NewIPCacheKey(p)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return err
	}
	return nil
}

// PruneIPCache is not reached: the benchmark never reports the local
// sources as listed.
func (d *bpfIPCache) PruneIPCache(ctx context.Context, keep []netip.Prefix) error {
	return errors.New("bench: pruning the ipcache is not part of this benchmark")
}

// lookup reads ip's entry from the map.
func (d *bpfIPCache) lookup(ip netip.Addr) (bpf.IPCacheValue, error) {
	var v bpf.IPCacheValue
	err := d.m.Lookup(bpf.NewIPCacheKey(netip.PrefixFrom(ip, ip.BitLen())), &v)
	return v, err
}

// routes counts the node routes the node table asks for; they are not
// installed (see the package doc).
type routes struct{ n atomic.Int64 }

func (r *routes) UpsertNodeRoute(ctx context.Context, _ datapath.NodeRoute) error {
	r.n.Add(1)
	return nil
}
func (r *routes) DeleteNodeRoute(ctx context.Context, _ netip.Prefix) error { return nil }
func (r *routes) PruneNodeRoutes(ctx context.Context, _ []netip.Prefix) error {
	return nil
}

// ipcacheSink is agent/ipcache.Sync and what the clustermesh component
// writes to it.
type ipcacheSink interface {
	OnChange(c stateipcache.Change)
}

// observer stands between the clustermesh component and ipcache.Sync: it
// passes every change on (Sync writes the BPF map before OnChange
// returns), then counts it and, for a churned pod written after since,
// records the time from the writer's timestamp in its pod name.
type observer struct {
	next    ipcacheSink
	changes atomic.Int64
	since   atomic.Int64 // unix ns; 0: record nothing

	mu  sync.Mutex
	lat []time.Duration
}

func (o *observer) OnChange(c stateipcache.Change) {
	o.next.OnChange(c)
	now := time.Now()
	o.changes.Add(1)
	since := o.since.Load()
	if since == 0 || c.Type != stateipcache.Upsert {
		return
	}
	ts, ok := strings.CutPrefix(c.Entry.Pod, "churn-")
	if !ok {
		return
	}
	ns, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || ns < since {
		return
	}
	o.mu.Lock()
	o.lat = append(o.lat, now.Sub(time.Unix(0, ns)))
	o.mu.Unlock()
}

// take returns the latencies recorded so far and stops recording.
func (o *observer) take() []time.Duration {
	o.since.Store(0)
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.lat
	o.lat = nil
	return out
}

func (o *observer) recorded() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.lat)
}
