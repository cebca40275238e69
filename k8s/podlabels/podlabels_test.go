package podlabels_test

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/k8s/k8stest"
	"github.com/weftnet/weft/k8s/podlabels"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// TestLabels: a cluster without the Kubernetes source says so at once; a
// pod's labels come with its namespace's; a pod mirrored
// while the resolver waits is found; one never mirrored is an error naming
// it.
func TestLabels(t *testing.T) {
	store := kvstoretest.StartEtcd(t).NewClient(t, statetest.Unlimited)
	ctx := statetest.Context(t, time.Minute)
	keys := records.NewKeys(store.Prefix())
	put := func(key string, rec records.Record) { k8stest.Put(t, store, key, rec) }
	put(keys.Namespace("c1", "dev"), &records.Namespace{Cluster: "c1", Name: "dev", Labels: map[string]string{"team": "a", "kubernetes.io/metadata.name": "dev"}})
	put(keys.Pod("c1", "dev", "web-0"), &records.Pod{Cluster: "c1", Namespace: "dev", Name: "web-0", Labels: map[string]string{"app": "web"}})
	r := podlabels.New(store, "c1")
	if _, err := r.Labels(ctx, "dev", "web-0", time.Second); !errors.Is(err, podlabels.ErrNotKubernetes) {
		t.Fatalf("without the k8s-pods marker: %v, want ErrNotKubernetes", err)
	}
	put(keys.Synced("c1", records.KindK8sPods), &records.Synced{Time: time.Now()})

	got, err := r.Labels(ctx, "dev", "web-0", time.Second)
	want := map[string]string{"app": "web", "io.cilium.k8s.namespace.labels.team": "a", "io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name": "dev"}
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("Labels = %v, %v; want %v", got, err, want)
	}

	go func() {
		time.Sleep(300 * time.Millisecond) // the record appears while Labels waits
		put(keys.Pod("c1", "other", "late"), &records.Pod{Cluster: "c1", Namespace: "other", Name: "late"})
	}()
	if got, err := r.Labels(ctx, "other", "late", 30*time.Second); err != nil || len(got) != 0 {
		t.Fatalf("late pod: %v, %v; want no labels", got, err)
	}

	_, err = r.Labels(ctx, "dev", "ghost", 500*time.Millisecond)
	if !errors.Is(err, podlabels.ErrNotMirrored) || !strings.Contains(err.Error(), "dev/ghost") {
		t.Fatalf("missing pod: %v, want ErrNotMirrored naming dev/ghost", err)
	}
}
