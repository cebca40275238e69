package consul

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weftnet/weft/kvstore"
)

// watchWait is how long one blocking query waits for a change.
const watchWait = 5 * time.Minute

// ListAndWatch emits every key under prefix as EventUpsert, one
// EventListDone, then changes. Each change is found by a blocking query
// re-listing the prefix and diffing it against the keys known so far, so a
// reconnect or an agent that lost its state needs nothing special: the next
// successful listing yields deletes for vanished keys and upserts for new
// or changed ones. The channel is closed once ctx ends or the client closes.
func (c *Client) ListAndWatch(ctx context.Context, prefix string) <-chan kvstore.Event {
	ch := make(chan kvstore.Event, 64)
	if err := kvstore.CheckKey(c.cfg.Prefix, prefix); err != nil {
		c.log.Error("refuse watch", "prefix", prefix, "err", err)
		close(ch)
		return ch
	}
	ctx, cancel := c.scope(ctx)
	ok := c.goBackground(func() {
		defer cancel()
		defer close(ch)
		w := watch{c: c, prefix: prefix, out: ch, known: map[string]uint64{}}
		w.run(ctx)
	})
	if !ok {
		cancel()
		close(ch)
	}
	return ch
}

type watch struct {
	c      *Client
	prefix string
	out    chan<- kvstore.Event
	known  map[string]uint64 // key → ModifyIndex last emitted
}

func (w *watch) run(ctx context.Context) {
	log := w.c.log.With("prefix", w.prefix)
	var index uint64
	listed := false
	b := kvstore.NewBackoff(backoffMin, backoffMax)
	failing := false
	// Every wake-up re-lists the whole prefix, so under a burst of writes
	// (many agents allocating identities) one listing per change makes the
	// burst quadratic in the prefix's size. A watcher that asked for it
	// (kvstore.WithWatchCoalescing) waits that long after a listing before
	// its next blocking query: the changes of that period come in one
	// listing. A change after a quiet spell is delivered at once; one right
	// behind another waits at most that long.
	coalesce := kvstore.WatchCoalescing(ctx)
	var lastList time.Time
	for ctx.Err() == nil {
		if wait := coalesce - time.Since(lastList); listed && wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if err := w.c.begin(ctx); err != nil {
			return
		}
		q := &api.QueryOptions{WaitIndex: index, WaitTime: watchWait}
		ps, meta, err := w.c.blocking.KV().List(w.prefix, q.WithContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				log.Warn("watch interrupted; re-listing with backoff until the store answers", "err", err)
				failing = true
			}
			index = 0
			b.Wait(ctx)
			continue
		}
		lastList = time.Now()
		b.Reset()
		if failing {
			log.Info("watch resumed")
			failing = false
		}
		index = nextIndex(index, meta.LastIndex)
		if !w.apply(ctx, ps) {
			return
		}
		if !listed {
			listed = true
			if !w.send(ctx, kvstore.Event{Type: kvstore.EventListDone}) {
				return
			}
		}
	}
}

// apply emits the difference between the known keys and a new listing:
// deletes for keys gone, then upserts for new or changed keys in the order
// Consul wrote them. It returns false once ctx ended.
func (w *watch) apply(ctx context.Context, ps api.KVPairs) bool {
	seen := make(map[string]bool, len(ps))
	var ups []*api.KVPair
	for _, p := range ps {
		seen[p.Key] = true
		if rev, ok := w.known[p.Key]; !ok || rev != p.ModifyIndex {
			ups = append(ups, p)
		}
	}
	var gone []string
	for k := range w.known {
		if !seen[k] {
			gone = append(gone, k)
		}
	}
	slices.Sort(gone)
	for _, k := range gone {
		if !w.send(ctx, kvstore.Event{Type: kvstore.EventDelete, Key: k}) {
			return false
		}
		delete(w.known, k)
	}
	slices.SortFunc(ups, func(a, b *api.KVPair) int {
		return cmp.Or(cmp.Compare(a.ModifyIndex, b.ModifyIndex), strings.Compare(a.Key, b.Key))
	})
	for _, p := range ups {
		ev := kvstore.Event{Type: kvstore.EventUpsert, Key: p.Key, Value: p.Value, Revision: p.ModifyIndex}
		if !w.send(ctx, ev) {
			return false
		}
		w.known[p.Key] = p.ModifyIndex
	}
	return true
}

func (w *watch) send(ctx context.Context, ev kvstore.Event) bool {
	select {
	case w.out <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// nextIndex is the wait index for the next blocking query. Per Consul's
// guidance, an index that went backwards (an agent that lost its state, a
// snapshot restore) resets to 0, and an index of 0 is clamped to 1 so the
// query still blocks.
func nextIndex(prev, last uint64) uint64 {
	if last < prev {
		return 0
	}
	return max(last, 1)
}

const (
	backoffMin = 50 * time.Millisecond
	backoffMax = 2 * time.Second
)
