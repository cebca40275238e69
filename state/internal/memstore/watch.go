package memstore

import (
	"context"
	"strings"
	"sync"

	"github.com/weftnet/weft/kvstore"
)

type watcher struct {
	prefix string
	mu     sync.Mutex
	queue  []kvstore.Event
	wake   chan struct{}
}

// notify queues ev for every watcher of a matching prefix (store mutex held).
func (s *Store) notify(ev kvstore.Event) {
	for w := range s.watchers {
		if strings.HasPrefix(ev.Key, w.prefix) {
			w.push(ev)
		}
	}
}

func (w *watcher) push(evs ...kvstore.Event) {
	w.mu.Lock()
	w.queue = append(w.queue, evs...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (c *Client) ListAndWatch(ctx context.Context, prefix string) <-chan kvstore.Event {
	out := make(chan kvstore.Event, 64)
	w := &watcher{prefix: prefix, wake: make(chan struct{}, 1)}
	s := c.s
	s.mu.Lock()
	for _, kv := range s.list(prefix) {
		w.queue = append(w.queue, kvstore.Event{Type: kvstore.EventUpsert, Key: kv.Key, Value: kv.Value, Revision: kv.Revision})
	}
	w.queue = append(w.queue, kvstore.Event{Type: kvstore.EventListDone})
	s.watchers[w] = struct{}{}
	s.mu.Unlock()
	go func() {
		defer close(out)
		defer func() {
			s.mu.Lock()
			delete(s.watchers, w)
			s.mu.Unlock()
		}()
		for {
			w.mu.Lock()
			q := w.queue
			w.queue = nil
			w.mu.Unlock()
			for _, ev := range q {
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-w.wake:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

type lock struct {
	name  string
	lease uint64
	done  chan struct{}
	c     *Client
}

func (c *Client) Lock(ctx context.Context, name string) (kvstore.Lock, error) {
	s := c.s
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.lockFree.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.locks[name] != nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s.lockFree.Wait()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l := &lock{name: name, lease: c.lease, done: make(chan struct{}), c: c}
	s.locks[name] = l
	return l, nil
}

func (l *lock) Unlock(context.Context) error {
	s := l.c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks[l.name] == l {
		delete(s.locks, l.name)
		close(l.done)
		s.lockFree.Broadcast()
	}
	return nil
}

func (l *lock) Done() <-chan struct{} { return l.done }
