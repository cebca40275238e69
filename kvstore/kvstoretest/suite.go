package kvstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
)

// Run is the conformance suite: every kvstore backend must pass all of it.
// Cases a backend cannot have (compaction on Consul, losing a member of a
// single server) are left out for servers that lack the capability; nothing
// is skipped.
func Run(t *testing.T, s Server) {
	cases := []testCase{
		{"get-list", testGetList},
		{"create-only", testCreateOnly},
		{"update", testUpdate},
		{"update-if-different", testUpdateIfDifferent},
		{"compare-and-swap", testCompareAndSwap},
		{"delete", testDelete},
		{"delete-if-value", testDeleteIfValue},
		{"bad-input", testBadInput},
		{"txn-all-or-nothing", testTxnAllOrNothing},
		{"txn-prefix-compare", testTxnPrefix},
		{"unreachable", testUnreachable},
		{"closed-client", testClosedClient},
		{"close-unreachable-bounded", testCloseUnreachable},
		{"status-heartbeat", testStatus},
		{"cas-contention", testCASContention},
		{"lease-close-revokes", testLeaseCloseRevokes},
		{"lease-process-killed", testLeaseProcessKilled},
		{"lock-exclusive", testLockExclusive},
		{"lock-ctx-cancel", testLockCancel},
		{"lock-released-on-close", testLockReleasedOnClose},
		{"watch-order", testWatchOrder},
		{"watch-burst-converges", testWatchBurst},
		{"watch-missed-deletes-after-disconnect", testWatchDisconnect},
	}
	if _, ok := s.(LeaseKiller); ok {
		cases = append(cases, testCase{"lease-lost-renewed", testLeaseLost},
			testCase{"lock-guarded-write-lost", testGuardedWriteLost},
			testCase{"lock-after-lease-killed", testLockAfterLeaseKilled})
	}
	if _, ok := s.(Compacter); ok {
		cases = append(cases, testCase{"watch-relist-after-compaction", testWatchCompaction})
	}
	if _, ok := s.(MemberStopper); ok {
		cases = append(cases, testCase{"survives-member-loss", testMemberLoss})
	}
	// Restart last: a Consul dev agent forgets everything when it restarts.
	cases = append(cases, testCase{"watch-resume-after-restart", testWatchRestart})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, s) })
	}
}

type testCase struct {
	name string
	fn   func(t *testing.T, s Server)
}

// ctxFor is a context bounded by a generous deadline.
func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// prefixFor is a key prefix private to one test.
func prefixFor(t testing.TB, s Server) string {
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	return s.Config().Prefix + "test/" + name + "/"
}

func mustUpdate(t testing.TB, c kvstore.Client, key, value string, opts ...kvstore.WriteOption) uint64 {
	t.Helper()
	rev, err := c.Update(ctxFor(t), key, []byte(value), opts...)
	if err != nil {
		t.Fatalf("update %s: %v", key, err)
	}
	return rev
}

func mustGet(t testing.TB, c kvstore.Client, key string) kvstore.KeyValue {
	t.Helper()
	kv, err := c.Get(ctxFor(t), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return kv
}

func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %v: %v", what, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testGetList(t *testing.T, s Server) {
	c := s.NewClient(t)
	p := prefixFor(t, s)
	ctx := ctxFor(t)
	_, err := c.Get(ctx, p+"missing")
	wantErr(t, "get missing key", err, kvstore.ErrNotFound)

	for _, k := range []string{"b", "a", "c/d"} {
		mustUpdate(t, c, p+k, "v-"+k)
	}
	mustUpdate(t, c, p[:len(p)-1]+"-sibling/x", "not in the prefix")
	kv := mustGet(t, c, p+"a")
	if string(kv.Value) != "v-a" || kv.Revision == 0 || kv.Leased {
		t.Fatalf("get %sa = %+v, want value v-a, a revision, not leased", p, kv)
	}
	list, err := c.List(ctx, p)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	var got []string
	for _, kv := range list {
		got = append(got, strings.TrimPrefix(kv.Key, p)+"="+string(kv.Value))
	}
	if want := "a=v-a b=v-b c/d=v-c/d"; strings.Join(got, " ") != want {
		t.Fatalf("list %s = %q, want %q (sorted, nothing outside the prefix)", p, strings.Join(got, " "), want)
	}
}

func testCreateOnly(t *testing.T, s Server) {
	c := s.NewClient(t)
	key := prefixFor(t, s) + "k"
	ctx := ctxFor(t)
	rev, err := c.Create(ctx, key, []byte("first"))
	if err != nil || rev == 0 {
		t.Fatalf("create: rev %d, err %v", rev, err)
	}
	_, err = c.Create(ctx, key, []byte("second"))
	wantErr(t, "create existing key", err, kvstore.ErrExists)
	if kv := mustGet(t, c, key); string(kv.Value) != "first" || kv.Revision != rev {
		t.Fatalf("after refused create: %+v, want value first at revision %d", kv, rev)
	}
}

func testUpdate(t *testing.T, s Server) {
	c := s.NewClient(t)
	key := prefixFor(t, s) + "k"
	r1 := mustUpdate(t, c, key, "one")
	r2 := mustUpdate(t, c, key, "two")
	if r2 <= r1 {
		t.Fatalf("revisions went %d then %d; they must grow", r1, r2)
	}
	if kv := mustGet(t, c, key); string(kv.Value) != "two" || kv.Revision != r2 {
		t.Fatalf("get after update: %+v, want two at %d", kv, r2)
	}
}

func testUpdateIfDifferent(t *testing.T, s Server) {
	c := s.NewClient(t)
	key := prefixFor(t, s) + "k"
	ctx := ctxFor(t)
	steps := []struct {
		value      string
		leased     bool
		wantWrote  bool
		wantLeased bool
	}{
		{"v1", false, true, false},  // new key
		{"v1", false, false, false}, // same value, same binding
		{"v2", false, true, false},  // new value
		{"v2", true, true, true},    // same value, but now bound to the lease
		{"v2", true, false, true},   // same value and lease
	}
	for i, st := range steps {
		var opts []kvstore.WriteOption
		if st.leased {
			opts = append(opts, kvstore.Leased())
		}
		before, _ := c.Get(ctx, key)
		wrote, err := c.UpdateIfDifferent(ctx, key, []byte(st.value), opts...)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		kv := mustGet(t, c, key)
		if wrote != st.wantWrote || string(kv.Value) != st.value || kv.Leased != st.wantLeased {
			t.Fatalf("step %d (%+v): wrote=%v, stored %+v", i, st, wrote, kv)
		}
		if !wrote && kv.Revision != before.Revision {
			t.Fatalf("step %d: nothing written but revision moved %d → %d", i, before.Revision, kv.Revision)
		}
	}
}

func testCompareAndSwap(t *testing.T, s Server) {
	c := s.NewClient(t)
	key := prefixFor(t, s) + "k"
	ctx := ctxFor(t)
	r1, err := c.CompareAndSwap(ctx, key, []byte("a"), 0)
	if err != nil {
		t.Fatalf("cas create: %v", err)
	}
	_, err = c.CompareAndSwap(ctx, key, []byte("x"), 0)
	wantErr(t, "cas create of existing key", err, kvstore.ErrConflict)
	r2, err := c.CompareAndSwap(ctx, key, []byte("b"), r1)
	if err != nil {
		t.Fatalf("cas at current revision: %v", err)
	}
	_, err = c.CompareAndSwap(ctx, key, []byte("stale"), r1)
	wantErr(t, "cas at stale revision", err, kvstore.ErrConflict)
	if kv := mustGet(t, c, key); string(kv.Value) != "b" || kv.Revision != r2 {
		t.Fatalf("after cas: %+v, want b at %d", kv, r2)
	}
}

func testDelete(t *testing.T, s Server) {
	c := s.NewClient(t)
	key := prefixFor(t, s) + "k"
	ctx := ctxFor(t)
	mustUpdate(t, c, key, "v")
	if err := c.Delete(ctx, key); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err := c.Get(ctx, key)
	wantErr(t, "get deleted key", err, kvstore.ErrNotFound)
	if err := c.Delete(ctx, key); err != nil {
		t.Fatalf("delete of a missing key must succeed, got %v", err)
	}
}

func testDeleteIfValue(t *testing.T, s Server) {
	c := s.NewClient(t)
	key := prefixFor(t, s) + "k"
	ctx := ctxFor(t)
	mustUpdate(t, c, key, "mine")
	wantErr(t, "delete-if-value with another value", c.DeleteIfValue(ctx, key, []byte("theirs")), kvstore.ErrConflict)
	mustGet(t, c, key)
	if err := c.DeleteIfValue(ctx, key, []byte("mine")); err != nil {
		t.Fatalf("delete-if-value with the stored value: %v", err)
	}
	wantErr(t, "delete-if-value of a missing key", c.DeleteIfValue(ctx, key, []byte("mine")), kvstore.ErrNotFound)
}

func testBadInput(t *testing.T, s Server) {
	c := s.NewClient(t)
	ctx := ctxFor(t)
	outside := "elsewhere/key"
	ops := map[string]func() error{
		"get":             func() error { _, err := c.Get(ctx, outside); return err },
		"list":            func() error { _, err := c.List(ctx, "elsewhere/"); return err },
		"create":          func() error { _, err := c.Create(ctx, outside, []byte("v")); return err },
		"update":          func() error { _, err := c.Update(ctx, outside, []byte("v")); return err },
		"update-if-diff":  func() error { _, err := c.UpdateIfDifferent(ctx, outside, []byte("v")); return err },
		"cas":             func() error { _, err := c.CompareAndSwap(ctx, outside, []byte("v"), 0); return err },
		"delete":          func() error { return c.Delete(ctx, outside) },
		"delete-if-value": func() error { return c.DeleteIfValue(ctx, outside, []byte("v")) },
	}
	for name, op := range ops {
		err := op()
		if !errors.Is(err, kvstore.ErrOutsidePrefix) || !strings.Contains(err.Error(), "elsewhere/") {
			t.Errorf("%s outside the prefix: got %v, want ErrOutsidePrefix naming the key", name, err)
		}
	}
	key := prefixFor(t, s) + "big"
	big := bytes.Repeat([]byte("x"), s.Config().MaxValueSize+1)
	_, err := c.Update(ctx, key, big)
	wantErr(t, "oversized value", err, kvstore.ErrValueTooLarge)
	_, err = c.Get(ctx, key)
	wantErr(t, "key of a refused oversized write", err, kvstore.ErrNotFound)
}

func testClosedClient(t *testing.T, s Server) {
	c := s.NewClient(t)
	if err := c.Close(ctxFor(t)); err != nil {
		t.Fatalf("close: %v", err)
	}
	_, err := c.Update(ctxFor(t), prefixFor(t, s)+"k", []byte("v"))
	wantErr(t, "update after close", err, kvstore.ErrClosed)
	if err := c.Close(ctxFor(t)); err != nil {
		t.Fatalf("second close must be a no-op, got %v", err)
	}
}

func testStatus(t *testing.T, s Server) {
	c := s.NewClient(t)
	now := time.Now().Truncate(time.Millisecond)
	mustUpdate(t, c, kvstore.HeartbeatKey(c.Prefix()), string(kvstore.FormatHeartbeat(now)))
	st := c.Status(ctxFor(t))
	if !st.Quorum || st.Err != nil || !st.Heartbeat.Equal(now) || st.Backend != s.Config().Backend {
		t.Fatalf("status = %+v, want quorum, no error, heartbeat %v, backend %s", st, now, s.Config().Backend)
	}
}

// testCASContention: 8 writers × 200 compare-and-swap increments of one
// counter lose no update.
func testCASContention(t *testing.T, s Server) {
	const writers, increments = 8, 200
	key := prefixFor(t, s) + "counter"
	ctx := ctxFor(t)
	mustUpdate(t, s.NewClient(t), key, "0")
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	var conflicts sync.Map
	for w := range writers {
		c := s.NewClient(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for done := 0; done < increments; {
				kv, err := c.Get(ctx, key)
				if err != nil {
					errs <- err
					return
				}
				v, _ := strconv.Atoi(string(kv.Value))
				_, err = c.CompareAndSwap(ctx, key, []byte(strconv.Itoa(v+1)), kv.Revision)
				switch {
				case errors.Is(err, kvstore.ErrConflict):
					n++
				case err != nil:
					errs <- err
					return
				default:
					done++
				}
			}
			conflicts.Store(w, n)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	total := 0
	conflicts.Range(func(_, v any) bool { total += v.(int); return true })
	got := string(mustGet(t, s.NewClient(t), key).Value)
	if want := fmt.Sprint(writers * increments); got != want {
		t.Fatalf("counter = %s after %d×%d increments, want %s (updates lost)", got, writers, increments, want)
	}
	t.Logf("%d increments with %d conflicts retried", writers*increments, total)
}
