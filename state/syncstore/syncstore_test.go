package syncstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/statetest"
)

// TestOwnedKeysSurviveLeaseLoss: owned keys reach the store lease-bound,
// deletes remove them, the synced marker comes after them; when the client
// is cut off long enough for its lease to expire, every owned key is
// re-created under the new lease without the caller doing anything.
func TestOwnedKeysSurviveLeaseLoss(t *testing.T) {
	statetest.Each(t, func(t *testing.T, s kvstoretest.Server) {
		ctx := statetest.Context(t, 2*time.Minute)
		u, err := url.Parse(s.Config().Endpoints[0])
		if err != nil {
			t.Fatal(err)
		}
		proxy := kvstoretest.NewProxy(t, u.Host)
		owner := s.NewClient(t, func(c *kvstore.Config) { c.Endpoints = []string{"http://" + proxy.Addr()} })
		reader := s.NewClient(t)
		st, err := New(owner, DefaultConfig(), statetest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		statetest.Go(t, st.Run)
		p := s.Config().Prefix + "test/syncstore/"
		want := map[string]string{}
		for i := range 50 {
			k := fmt.Sprintf("%sk%02d", p, i)
			want[k] = fmt.Sprint(i)
			st.Upsert(k, []byte(want[k]))
		}
		st.MarkSynced(p+"synced", []byte("now"))
		for i := range 10 {
			k := fmt.Sprintf("%sk%02d", p, i)
			delete(want, k)
			st.Delete(k)
		}
		want[p+"synced"] = "now"
		if err := st.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
		assertContents(t, reader, p, want)

		lost := owner.LeaseLost()
		proxy.Cut()
		select {
		case <-lost:
		case <-time.After(statetest.LeaseDeadline(s)):
			t.Fatalf("lease not lost %v after cutting the client off", statetest.LeaseDeadline(s))
		}
		statetest.Eventually(t, statetest.LeaseDeadline(s), "owned keys expire with the lease", func() error {
			kvs, err := reader.List(ctx, p)
			if err != nil || len(kvs) > 0 {
				return fmt.Errorf("%d keys left (%v)", len(kvs), err)
			}
			return nil
		})
		proxy.Restore()
		statetest.Eventually(t, time.Minute, "owned keys re-created under a new lease", func() error {
			return contentsErr(reader, p, want)
		})
	})
}

func assertContents(t *testing.T, c kvstore.Client, prefix string, want map[string]string) {
	t.Helper()
	if err := contentsErr(c, prefix, want); err != nil {
		t.Fatal(err)
	}
}

func contentsErr(c kvstore.Client, prefix string, want map[string]string) error {
	kvs, err := c.List(context.Background(), prefix)
	if err != nil {
		return err
	}
	got := map[string]string{}
	for _, kv := range kvs {
		if !kv.Leased {
			return fmt.Errorf("key %s is not leased", kv.Key)
		}
		got[kv.Key] = string(kv.Value)
	}
	if len(got) != len(want) {
		return fmt.Errorf("store holds %d keys, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			return errors.New("key " + k + " = " + got[k] + ", want " + v)
		}
	}
	return nil
}
