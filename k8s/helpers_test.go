package k8s_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/weftnet/weft/k8s"
	"github.com/weftnet/weft/k8s/k8stest"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

const (
	cluster = "c1"
	timeout = 60 * time.Second
)

var keys = records.NewKeys("weft/")

// running is one Source running in the background.
type running struct {
	src  *k8s.Source
	stop func()
}

// startSource runs a source with short lease timings, configured by opts
// before it runs; stop cancels it and waits (releasing the Lease).
func startSource(t *testing.T, c *k8stest.Cluster, store kvstore.Client, identity string, opts ...func(*k8s.Source)) *running {
	t.Helper()
	cfg := k8s.DefaultConfig()
	cfg.Enabled, cfg.Cluster, cfg.Identity = true, cluster, identity
	cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod = 4*time.Second, 3*time.Second, 500*time.Millisecond
	src, err := k8s.New(cfg, c.Config, store, statetest.Logger(t).With("identity", identity))
	if err != nil {
		t.Fatalf("new source: %v", err)
	}
	for _, o := range opts {
		o(src)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := src.Run(ctx); err != nil {
			t.Errorf("source %s: %v", identity, err)
		}
	}()
	r := &running{src: src, stop: func() { cancel(); <-done }}
	t.Cleanup(r.stop)
	return r
}

// startSynced starts one source and waits until it has mirrored everything.
func startSynced(t *testing.T, c *k8stest.Cluster, store kvstore.Client) *k8s.Source {
	t.Helper()
	start := time.Now()
	r := startSource(t, c, store, "a")
	waitSynced(t, store, start)
	return r.src
}

// waitSynced waits for every kind's synced marker written at or after since.
func waitSynced(t *testing.T, store kvstore.Client, since time.Time) {
	t.Helper()
	for _, kind := range []string{records.KindK8sNamespaces, records.KindK8sPods, records.KindK8sServices, records.KindK8sPolicies} {
		statetest.Eventually(t, timeout, "synced marker "+kind, func() error {
			kv, err := store.Get(context.Background(), keys.Synced(cluster, kind))
			if err != nil {
				return err
			}
			s, err := keys.DecodeSynced(kv.Key, kv.Value)
			if err != nil {
				return err
			}
			if s.Time.Before(since) {
				return fmt.Errorf("marker from %v, before %v", s.Time, since)
			}
			return nil
		})
	}
}

// waitRecord waits until key holds a record that check accepts.
func waitRecord[R any](t *testing.T, store kvstore.Client, key string, decode func(records.Keys, string, []byte) (R, error), check func(R) error) R {
	t.Helper()
	var got R
	statetest.Eventually(t, timeout, "record "+key, func() error {
		kv, err := store.Get(context.Background(), key)
		if err != nil {
			return err
		}
		if got, err = decode(keys, kv.Key, kv.Value); err != nil {
			return err
		}
		return check(got)
	})
	return got
}

// waitGone waits until key is not in the store.
func waitGone(t *testing.T, store kvstore.Client, key string) {
	t.Helper()
	statetest.Eventually(t, timeout, "deletion of "+key, func() error {
		_, err := store.Get(context.Background(), key)
		if errors.Is(err, kvstore.ErrNotFound) {
			return nil
		}
		if err == nil {
			return errors.New("still there")
		}
		return err
	})
}

// waitProblem waits until the source reports a problem of the object whose
// reason contains want, and a Warning Event on it names the same reason.
func waitProblem(t *testing.T, c *k8stest.Cluster, src *k8s.Source, kind, ns, name, want string) {
	t.Helper()
	statetest.Eventually(t, timeout, "problem of "+kind+" "+ns+"/"+name, func() error {
		for _, p := range src.Status().Problems {
			if p.Kind == kind && p.Namespace == ns && p.Name == name {
				if !contains(p.Reason, want) {
					return fmt.Errorf("reason %q does not contain %q", p.Reason, want)
				}
				return nil
			}
		}
		return fmt.Errorf("not reported; problems: %v", src.Status().Problems)
	})
	evNS := ns
	if evNS == "" {
		evNS = metav1.NamespaceDefault
	}
	statetest.Eventually(t, timeout, "Warning Event on "+kind+" "+ns+"/"+name, func() error {
		sel := fields.Set{"involvedObject.kind": kind, "involvedObject.name": name, "reason": k8s.ReasonNotMirrored}.AsSelector().String()
		evs, err := c.Client.CoreV1().Events(evNS).List(context.Background(), metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Type == corev1.EventTypeWarning && contains(e.Message, want) {
				return nil
			}
		}
		return fmt.Errorf("%d events, none with %q", len(evs.Items), want)
	})
}

// noProblem checks the object is not reported.
func noProblem(src *k8s.Source, kind, ns, name string) error {
	for _, p := range src.Status().Problems {
		if p.Kind == kind && p.Namespace == ns && p.Name == name {
			return fmt.Errorf("still reported: %s", p.Reason)
		}
	}
	return nil
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
