package kvstoretest

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
)

// watchLog consumes a ListAndWatch stream and keeps every event plus the
// state they add up to.
type watchLog struct {
	mu       sync.Mutex
	events   []kvstore.Event
	state    map[string]string
	revs     map[string]uint64
	listDone int
	backward []string // per-key revisions that went backwards
}

func startWatch(t testing.TB, c kvstore.Client, prefix string) *watchLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := c.ListAndWatch(ctx, prefix)
	w := &watchLog{state: map[string]string{}, revs: map[string]uint64{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range ch {
			w.add(ev)
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("ListAndWatch channel not closed 10s after its context ended")
		}
	})
	return w
}

func (w *watchLog) add(ev kvstore.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, ev)
	switch ev.Type {
	case kvstore.EventListDone:
		w.listDone++
	case kvstore.EventUpsert:
		if ev.Revision < w.revs[ev.Key] {
			w.backward = append(w.backward, fmt.Sprintf("%s %d after %d", ev.Key, ev.Revision, w.revs[ev.Key]))
		}
		w.revs[ev.Key] = ev.Revision
		w.state[ev.Key] = string(ev.Value)
	case kvstore.EventDelete:
		delete(w.state, ev.Key)
	}
}

func (w *watchLog) snapshot() (map[string]string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.state), w.listDone
}

func (w *watchLog) eventsFrom(i int) []kvstore.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]kvstore.Event(nil), w.events[i:]...)
}

func (w *watchLog) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.events)
}

// waitListed waits for the list-done marker.
func (w *watchLog) waitListed(t testing.TB) {
	t.Helper()
	eventually(t, 30*time.Second, "list-done marker", func() error {
		if _, n := w.snapshot(); n == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
}

// waitConverged waits until the watched state equals the store's contents.
func (w *watchLog) waitConverged(t testing.TB, c kvstore.Client, prefix string) {
	t.Helper()
	eventually(t, 60*time.Second, "watcher converges to the store's contents", func() error {
		list, err := c.List(context.Background(), prefix)
		if err != nil {
			return err
		}
		want := map[string]string{}
		for _, kv := range list {
			want[kv.Key] = string(kv.Value)
		}
		got, _ := w.snapshot()
		if !maps.Equal(got, want) {
			return fmt.Errorf("watcher has %v, store has %v", got, want)
		}
		return nil
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.backward) > 0 {
		t.Fatalf("revisions went backwards: %v", w.backward)
	}
}

// deletedKeys lists the keys of delete events.
func deletedKeys(evs []kvstore.Event) map[string]bool {
	out := map[string]bool{}
	for _, ev := range evs {
		if ev.Type == kvstore.EventDelete {
			out[ev.Key] = true
		}
	}
	return out
}
