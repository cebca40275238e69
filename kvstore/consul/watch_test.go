package consul_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
)

// mirror applies a watch's events to a map, as a consumer would.
type mirror struct {
	keys     map[string]string
	listDone bool
	events   []kvstore.Event
}

func (m *mirror) apply(ev kvstore.Event) {
	m.events = append(m.events, ev)
	switch ev.Type {
	case kvstore.EventUpsert:
		m.keys[ev.Key] = string(ev.Value)
	case kvstore.EventDelete:
		delete(m.keys, ev.Key)
	case kvstore.EventListDone:
		m.listDone = true
	}
}

// until consumes events until the mirror equals want (after the list).
func (m *mirror) until(t *testing.T, ch <-chan kvstore.Event, want map[string]string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for !m.listDone || !maps.Equal(m.keys, want) {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("watch closed; mirror %v, want %v", m.keys, want)
			}
			m.apply(ev)
		case <-timeout:
			t.Fatalf("mirror %v (list done %v), want %v; events %v", m.keys, m.listDone, want, m.events)
		}
	}
}

// TestWatchAcrossAgentRestart: a dev agent comes back empty; the watch
// reports every known key deleted and keys written afterwards as new.
func TestWatchAcrossAgentRestart(t *testing.T) {
	s := startAgent(t, "")
	ctx := ctx(t)
	c := open(t, s)
	for i := range 3 {
		if _, err := c.Update(ctx, fmt.Sprintf("weft/w/%d", i), []byte("old")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Update(ctx, "weft/other", []byte("x")); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	ch := c.ListAndWatch(wctx, "weft/w/")
	m := &mirror{keys: map[string]string{}}
	m.until(t, ch, map[string]string{"weft/w/0": "old", "weft/w/1": "old", "weft/w/2": "old"})

	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Update(ctx, "weft/w/new", []byte("new")); err != nil {
		t.Fatal(err)
	}
	m.until(t, ch, map[string]string{"weft/w/new": "new"})

	cancel()
	for range ch { // must close once ctx ends
	}
}

// TestWatchAfterRestartBelowOldIndex: the watched prefix's index is far
// above what the restarted agent starts at. A blocking query replayed with
// the old index would hold for its whole wait time (minutes); the watch
// must instead notice the restart and see a key written afterwards.
func TestWatchAfterRestartBelowOldIndex(t *testing.T) {
	s := startAgent(t, "")
	ctx := ctx(t)
	c := open(t, s)
	for i := range 300 { // lift the index well above a fresh agent's
		if _, err := c.Update(ctx, "weft/w/churn", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := c.ListAndWatch(wctx, "weft/w/")
	m := &mirror{keys: map[string]string{}}
	m.until(t, ch, map[string]string{"weft/w/churn": "299"})

	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Update(ctx, "weft/w/after", []byte("1")); err != nil {
		t.Fatal(err)
	}
	m.until(t, ch, map[string]string{"weft/w/after": "1"})
}

// TestWatchConsumerGone: a watch whose consumer stopped reading still ends
// when its ctx does, and the client closes without waiting on it.
func TestWatchConsumerGone(t *testing.T) {
	s := startAgent(t, "")
	ctx := ctx(t)
	c := open(t, s)
	for i := range 200 {
		if _, err := c.Update(ctx, fmt.Sprintf("weft/k/%03d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.ListAndWatch(ctx, "weft/k/") // never read
	done := make(chan error, 1)
	go func() { done <- c.Close(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close blocked on a watch nobody reads")
	}
}

// TestWatchCoalescing: a watch that asked for coalescing gets a change
// after a quiet spell at once, and the changes right behind it together,
// once the period has passed; every change arrives.
func TestWatchCoalescing(t *testing.T) {
	s := startAgent(t, "")
	ctx := ctx(t)
	c := open(t, s)
	const period = 2 * time.Second
	ch := c.ListAndWatch(kvstore.WithWatchCoalescing(ctx, period), "weft/co/")
	m := &mirror{keys: map[string]string{}}
	m.until(t, ch, map[string]string{})
	time.Sleep(period) // a quiet spell
	start := time.Now()
	if _, err := c.Update(ctx, "weft/co/first", []byte("1")); err != nil {
		t.Fatal(err)
	}
	m.until(t, ch, map[string]string{"weft/co/first": "1"})
	if took := time.Since(start); took > period/2 {
		t.Errorf("a change after a quiet spell took %v, want it at once (the period is %v)", took, period)
	}
	burst := time.Now()
	want := map[string]string{"weft/co/first": "1"}
	for i := range 5 {
		k := fmt.Sprintf("weft/co/%d", i)
		if _, err := c.Update(ctx, k, []byte("b")); err != nil {
			t.Fatal(err)
		}
		want[k] = "b"
	}
	m.until(t, ch, want)
	if took := time.Since(burst); took < period/2 {
		t.Errorf("the changes right behind another came after %v, want them gathered for about %v", took, period)
	}
	// Without coalescing, the same burst comes at once.
	plain := c.ListAndWatch(ctx, "weft/co/")
	pm := &mirror{keys: map[string]string{}}
	pm.until(t, plain, want)
	burst = time.Now()
	if _, err := c.Update(ctx, "weft/co/late", []byte("l")); err != nil {
		t.Fatal(err)
	}
	want["weft/co/late"] = "l"
	pm.until(t, plain, want)
	if took := time.Since(burst); took > period/2 {
		t.Errorf("a watch without coalescing got a change after %v", took)
	}
}
