package etcd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weftnet/weft/kvstore"
)

var errCompacted = errors.New("watch revision compacted")

// ListAndWatch implements kvstore.Watcher.
func (c *Client) ListAndWatch(ctx context.Context, prefix string) <-chan kvstore.Event {
	out := make(chan kvstore.Event, 256)
	go func() {
		defer close(out)
		w := &watch{c: c, prefix: prefix, out: out, known: map[string]int64{}}
		w.run(ctx)
	}()
	return out
}

type watch struct {
	c      *Client
	prefix string
	out    chan<- kvstore.Event
	known  map[string]int64 // key → mod revision, as last emitted
}

func (w *watch) run(ctx context.Context) {
	log := w.c.log.With("prefix", w.prefix)
	backoff := kvstore.NewBackoff(50*time.Millisecond, 5*time.Second)
	listed := false
	for ctx.Err() == nil {
		rev, err := w.relist(ctx)
		if err != nil {
			if errors.Is(err, kvstore.ErrOutsidePrefix) || errors.Is(err, kvstore.ErrClosed) {
				log.Error("watch stopped", "err", err)
				return
			}
			log.Warn("list failed; retrying", "err", err)
			backoff.Wait(ctx)
			continue
		}
		if !listed {
			if !w.emit(ctx, kvstore.Event{Type: kvstore.EventListDone, Revision: uint64(rev)}) {
				return
			}
			listed = true
		}
		err = w.follow(ctx, rev+1, backoff)
		if ctx.Err() != nil {
			return
		}
		log.Info("watch interrupted; re-listing", "err", err)
		backoff.Wait(ctx)
	}
}

// relist reads the prefix at one revision and emits what differs from known:
// upserts for new or changed keys, deletes for keys that vanished.
func (w *watch) relist(ctx context.Context) (int64, error) {
	seen := make(map[string]struct{}, len(w.known))
	var pending []kvstore.Event
	rev, err := w.c.list(ctx, w.prefix, func(kv *mvccpb.KeyValue) {
		key := string(kv.Key)
		seen[key] = struct{}{}
		if w.known[key] != kv.ModRevision {
			pending = append(pending, kvstore.Event{Type: kvstore.EventUpsert, Key: key, Value: kv.Value, Revision: uint64(kv.ModRevision)})
		}
	})
	if err != nil {
		return 0, err
	}
	for _, ev := range pending {
		if !w.emit(ctx, ev) {
			return 0, ctx.Err()
		}
		w.known[ev.Key] = int64(ev.Revision)
	}
	for key := range w.known {
		if _, ok := seen[key]; !ok {
			if !w.emit(ctx, kvstore.Event{Type: kvstore.EventDelete, Key: key, Revision: uint64(rev)}) {
				return 0, ctx.Err()
			}
			delete(w.known, key)
		}
	}
	return rev, nil
}

// follow streams changes from rev until the watch breaks.
func (w *watch) follow(ctx context.Context, rev int64, backoff *kvstore.Backoff) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range w.c.cli.Watch(wctx, w.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev)) {
		if resp.CompactRevision != 0 {
			return fmt.Errorf("%w at %d (wanted %d)", errCompacted, resp.CompactRevision, rev)
		}
		if err := resp.Err(); err != nil {
			return err
		}
		backoff.Reset()
		for _, ev := range resp.Events {
			key := string(ev.Kv.Key)
			if ev.Type == clientv3.EventTypeDelete {
				if _, ok := w.known[key]; !ok {
					continue
				}
				delete(w.known, key)
				if !w.emit(ctx, kvstore.Event{Type: kvstore.EventDelete, Key: key, Revision: uint64(ev.Kv.ModRevision)}) {
					return ctx.Err()
				}
				continue
			}
			w.known[key] = ev.Kv.ModRevision
			if !w.emit(ctx, kvstore.Event{Type: kvstore.EventUpsert, Key: key, Value: ev.Kv.Value, Revision: uint64(ev.Kv.ModRevision)}) {
				return ctx.Err()
			}
		}
	}
	return errors.New("watch channel closed")
}

func (w *watch) emit(ctx context.Context, ev kvstore.Event) bool {
	select {
	case w.out <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}
