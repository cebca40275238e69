package podlabels

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// NamespaceLabelPrefix prefixes a namespace's labels among a pod's.
const NamespaceLabelPrefix = "io.cilium.k8s.namespace.labels."

// ErrNotMirrored: the pod has no record in the store (yet).
var ErrNotMirrored = errors.New("pod not mirrored")

// ErrNotKubernetes: the cluster has no Kubernetes source (its
// synced/<cluster>/k8s-pods marker was never written): pods keep the
// labels the CNI plugin passes.
var ErrNotKubernetes = errors.New("the cluster is not in Kubernetes mode")

// Store is what a Resolver reads: keys and, for Changes, watches.
type Store interface {
	kvstore.Reader
	kvstore.Watcher
}

// Resolver looks pods up in one cluster's mirrored records.
type Resolver struct {
	store   Store
	keys    records.Keys
	cluster string
	// Poll is how often a missing record is looked for again.
	Poll time.Duration
}

// New reads the records of cluster from store.
func New(store kvstore.Client, cluster string) *Resolver {
	return &Resolver{store: store, keys: records.NewKeys(store.Prefix()), cluster: cluster, Poll: 200 * time.Millisecond}
}

// Labels returns ErrNotKubernetes at once in a cluster without a
// Kubernetes source. Otherwise it waits up to wait for the pod's record and returns its labels
// with the namespace's (a namespace without a record adds none). The
// result leaves room for the two labels the agent adds (namespace and
// cluster); more labels than an identity holds is an error naming the pod.
func (r *Resolver) Labels(ctx context.Context, namespace, name string, wait time.Duration) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if _, err := r.store.Get(ctx, r.keys.Synced(r.cluster, records.KindK8sPods)); errors.Is(err, kvstore.ErrNotFound) {
		return nil, ErrNotKubernetes
	} else if err != nil {
		return nil, fmt.Errorf("read the Kubernetes mirror's pods marker: %w", err)
	}
	key := r.keys.Pod(r.cluster, namespace, name)
	var pod records.Pod
	for {
		kv, err := r.store.Get(ctx, key)
		if err == nil {
			if pod, err = r.keys.DecodePod(kv.Key, kv.Value); err != nil {
				return nil, fmt.Errorf("pod %s/%s: %w", namespace, name, err)
			}
			break
		}
		if !errors.Is(err, kvstore.ErrNotFound) && ctx.Err() == nil {
			return nil, fmt.Errorf("read pod %s/%s: %w", namespace, name, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("pod %s/%s of cluster %s: %w within %v (is weft-apiserver's Kubernetes source running and synced? see its KubernetesStatus)",
				namespace, name, r.cluster, ErrNotMirrored, wait)
		case <-time.After(r.Poll):
		}
	}
	out := maps.Clone(pod.Labels)
	if out == nil {
		out = map[string]string{}
	}
	kv, err := r.store.Get(ctx, r.keys.Namespace(r.cluster, namespace))
	switch {
	case err == nil:
		ns, err := r.keys.DecodeNamespace(kv.Key, kv.Value)
		if err != nil {
			return nil, fmt.Errorf("namespace of pod %s/%s: %w", namespace, name, err)
		}
		for k, v := range ns.Labels {
			out[NamespaceLabelPrefix+k] = v
		}
	case !errors.Is(err, kvstore.ErrNotFound):
		return nil, fmt.Errorf("read namespace %s: %w", namespace, err)
	}
	if len(out) > records.MaxPodLabels {
		return nil, fmt.Errorf("pod %s/%s has %d labels with its namespace's; an identity holds %d besides the namespace and cluster labels",
			namespace, name, len(out), records.MaxPodLabels)
	}
	return out, nil
}

// Change names a pod whose mirrored record was written, or, with Pod
// empty, a namespace whose record was written (its labels are every one
// of its pods' labels).
type Change struct {
	Namespace string
	Pod       string
}

// Changes follows the cluster's pod and namespace records until ctx ends:
// every record listed or written later is one Change (removals are not:
// a pod whose record goes away is being deleted). The channel is closed
// when ctx ends.
func (r *Resolver) Changes(ctx context.Context) <-chan Change {
	out := make(chan Change, 64)
	pods, nss := r.keys.PodsPrefix(r.cluster), r.keys.NamespacesPrefix(r.cluster)
	podEvents, nsEvents := r.store.ListAndWatch(ctx, pods), r.store.ListAndWatch(ctx, nss)
	go func() {
		defer close(out)
		for podEvents != nil || nsEvents != nil {
			var (
				ch  Change
				ev  kvstore.Event
				ok  bool
				pod bool
			)
			select {
			case ev, ok = <-podEvents:
				if !ok {
					podEvents = nil
					continue
				}
				pod = true
			case ev, ok = <-nsEvents:
				if !ok {
					nsEvents = nil
					continue
				}
			}
			if ev.Type != kvstore.EventUpsert {
				continue
			}
			if pod {
				ns, name, found := strings.Cut(strings.TrimPrefix(ev.Key, pods), "/")
				if !found || name == "" || strings.Contains(name, "/") {
					continue
				}
				ch = Change{Namespace: ns, Pod: name}
			} else {
				ch = Change{Namespace: strings.TrimPrefix(ev.Key, nss)}
			}
			select {
			case out <- ch:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
