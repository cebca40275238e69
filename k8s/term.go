package k8s

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	listersv1 "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/weftnet/weft/state/records"
)

// item names one record to reconcile: kind is a records.KindK8s* value;
// namespace is empty for namespaces and clusterwide policies.
type item struct {
	kind, namespace, name string
}

// term is one leadership term: informers, the work queue and the writers.
type term struct {
	s        *Source
	log      *slog.Logger
	problems problemReporter
	queue    workqueue.TypedRateLimitingInterface[item]
	writers  map[string]*writer

	namespaces listersv1.NamespaceLister
	pods       listersv1.PodLister
	services   listersv1.ServiceLister
	slices     discoverylisters.EndpointSliceLister
	netpols    networkinglisters.NetworkPolicyLister
	cnp, ccnp  cache.GenericLister // nil without the Cilium CRDs
	// exports and imports are the MCS-API objects (nil without its CRDs);
	// importChanged wakes the importer.
	exports, imports cache.GenericLister
	importChanged    chan struct{}

	ing *ingressMirror // nil unless Config.Ingresses (ingresses.go)

	mu            sync.Mutex
	sliceProblems map[item][]string // service item → slices reported for it
}

// initialParallelism bounds the concurrent store writes of a first listing.
const initialParallelism = 16

// kindsInOrder are reconciled in this order on every term's first pass.
var kindsInOrder = []string{records.KindK8sNamespaces, records.KindK8sPods, records.KindK8sServices, records.KindK8sPolicies}

// lead mirrors until ctx ends.
func (s *Source) lead(ctx context.Context, recorder record.EventRecorder) error {
	t := &term{
		s: s, log: s.log, problems: problemReporter{st: s.st, recorder: recorder},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[item](),
			workqueue.TypedRateLimitingQueueConfig[item]{Name: "weft-k8s"}),
		writers: map[string]*writer{
			records.KindK8sNamespaces: newWriter(s.store, s.limiter, s.keys.NamespacesPrefix(s.cfg.Cluster)),
			records.KindK8sPods:       newWriter(s.store, s.limiter, s.keys.PodsPrefix(s.cfg.Cluster)),
			records.KindK8sServices:   newWriter(s.store, s.limiter, s.keys.ServicesPrefix(s.cfg.Cluster)),
			records.KindK8sPolicies:   newWriter(s.store, s.limiter, s.keys.PoliciesPrefix()),
		},
		sliceProblems: map[item][]string{},
		importChanged: make(chan struct{}, 1),
	}
	kinds := kindsInOrder
	if s.cfg.Ingresses {
		kinds = append(slices.Clone(kinds), records.KindK8sIngresses, records.KindK8sIngressSecrets)
		t.writers[records.KindK8sIngresses] = newWriter(s.store, s.limiter, s.keys.IngressesPrefix(s.cfg.Cluster))
		t.writers[records.KindK8sIngressSecrets] = newWriter(s.store, s.limiter, s.keys.IngressSecretsPrefix(s.cfg.Cluster))
	}
	defer t.queue.ShutDown()
	s.st.clearProblems() // this term's first pass reports them again
	pubCtx, stopPublishing := context.WithCancel(ctx)
	published := make(chan struct{})
	go func() { defer close(published); s.publishStatus(pubCtx) }()
	defer func() { stopPublishing(); <-published }() // a term's status is never written after it ended
	factory := informers.NewSharedInformerFactory(s.client, 0)
	defer factory.Shutdown()
	t.namespaces = factory.Core().V1().Namespaces().Lister()
	t.pods = factory.Core().V1().Pods().Lister()
	t.services = factory.Core().V1().Services().Lister()
	t.slices = factory.Discovery().V1().EndpointSlices().Lister()
	t.netpols = factory.Networking().V1().NetworkPolicies().Lister()
	informerList := []cache.SharedIndexInformer{
		factory.Core().V1().Namespaces().Informer(), factory.Core().V1().Pods().Informer(),
		factory.Core().V1().Services().Informer(), factory.Discovery().V1().EndpointSlices().Informer(),
		factory.Networking().V1().NetworkPolicies().Informer(),
	}
	handlers := []func(obj any) []item{t.namespaceItems, t.podItems, t.serviceItems, t.sliceItems, t.netpolItems}
	var tlsSecrets informers.SharedInformerFactory // Config.Ingresses only
	if s.cfg.Ingresses {
		var infs []cache.SharedIndexInformer
		var hs []func(any) []item
		tlsSecrets, infs, hs = t.watchIngresses(factory)
		defer tlsSecrets.Shutdown()
		informerList, handlers = append(informerList, infs...), append(handlers, hs...)
	}
	dyn := dynamicinformer.NewDynamicSharedInformerFactory(s.dynamic, 0)
	defer dyn.Shutdown()
	cilium, err := s.crdsInstalled(GVRCiliumNetworkPolicy, GVRCiliumClusterwideNetworkPolicy)
	if err != nil {
		return err
	}
	if cilium {
		cnp, ccnp := dyn.ForResource(GVRCiliumNetworkPolicy), dyn.ForResource(GVRCiliumClusterwideNetworkPolicy)
		t.cnp, t.ccnp = cnp.Lister(), ccnp.Lister()
		informerList = append(informerList, cnp.Informer(), ccnp.Informer())
		handlers = append(handlers, t.ciliumItems, t.ciliumItems)
	} else {
		s.log.Info("the Cilium policy CRDs are not installed: CiliumNetworkPolicies are not mirrored (install k8s/crds and restart)")
	}
	mcs, err := s.crdsInstalled(GVRServiceExport, GVRServiceImport)
	if err != nil {
		return err
	}
	if mcs {
		exp, imp := dyn.ForResource(GVRServiceExport), dyn.ForResource(GVRServiceImport)
		t.exports, t.imports = exp.Lister(), imp.Lister()
		informerList = append(informerList, exp.Informer(), imp.Informer())
		handlers = append(handlers, t.exportItems, func(any) []item { t.wakeImporter(); return nil })
	} else {
		s.log.Info("the MCS-API CRDs are not installed: ServiceExports are not read (install k8s/crds and restart)")
	}
	for i, inf := range informerList {
		items := handlers[i]
		if err := inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
			s.st.setError(fmt.Errorf("watch Kubernetes: %w", err))
		}); err != nil {
			return err
		}
		enqueue := func(obj any) {
			for _, it := range items(obj) {
				t.queue.Add(it)
			}
		}
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    enqueue,
			UpdateFunc: func(old, obj any) { enqueue(old); enqueue(obj) },
			DeleteFunc: enqueue,
		}); err != nil {
			return err
		}
	}
	factory.Start(ctx.Done())
	dyn.Start(ctx.Done())
	if tlsSecrets != nil {
		tlsSecrets.Start(ctx.Done())
	}
	t.log.Debug("informers started")
	if !cache.WaitForCacheSync(ctx.Done(), slices.Collect(func(yield func(cache.InformerSynced) bool) {
		for _, inf := range informerList {
			if !yield(inf.HasSynced) {
				return
			}
		}
	})...) {
		return ctx.Err()
	}
	t.log.Debug("informer caches synced")
	for _, kind := range kinds {
		if err := t.initial(ctx, kind); err != nil {
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for range 4 {
		g.Go(func() error { t.work(gctx); return nil })
	}
	if mcs {
		g.Go(func() error { t.runImporter(gctx, t.importChanged); return nil })
	}
	if t.ing != nil {
		g.Go(func() error { t.followNodes(gctx); return nil })
	}
	<-ctx.Done()
	t.queue.ShutDown()
	return g.Wait()
}

// crdsInstalled asks discovery whether Kubernetes serves every resource
// (all of one group version).
func (s *Source) crdsInstalled(gvrs ...schema.GroupVersionResource) (bool, error) {
	gv := gvrs[0].GroupVersion().String()
	rl, err := s.client.Discovery().ServerResourcesForGroupVersion(gv)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discover %s: %w", gv, err)
	}
	have := map[string]bool{}
	for _, r := range rl.APIResources {
		have[r.Name] = true
	}
	for _, g := range gvrs {
		if !have[g.Resource] {
			return false, nil
		}
	}
	return true, nil
}

// initial reconciles a whole kind against the caches: differing records
// are written, stale ones pruned, then the synced marker is written.
func (t *term) initial(ctx context.Context, kind string) error {
	w := t.writers[kind]
	for {
		err := t.initialOnce(ctx, kind, w)
		if err == nil {
			break
		}
		t.s.st.setError(err)
		t.log.Warn("initial mirror failed; retrying", "kind", kind, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if err := t.writeSynced(ctx, kind); err != nil {
		return err
	}
	t.s.st.setKind(kind, func(k *KindStatus) { k.Synced, k.Objects = true, w.count() })
	t.log.Info("mirrored", "kind", kind, "records", w.count())
	if t.s.onSynced != nil {
		t.s.onSynced(ctx, kind)
	}
	return nil
}

func (t *term) initialOnce(ctx context.Context, kind string, w *writer) error {
	if err := w.load(ctx); err != nil {
		return err
	}
	its, err := t.allItems(kind)
	if err != nil {
		return err
	}
	seen := map[item]bool{}
	// Reconcile in parallel: the first listing of a large cluster is
	// bounded by store round trips, not by conversion.
	var (
		mu   sync.Mutex
		keep = map[string]bool{}
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(initialParallelism)
	for _, it := range its {
		if seen[it] {
			continue
		}
		seen[it] = true
		g.Go(func() error {
			key, err := t.reconcile(gctx, it)
			if key != "" {
				mu.Lock()
				keep[key] = true
				mu.Unlock()
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return w.prune(ctx, keep)
}

func (t *term) writeSynced(ctx context.Context, kind string) error {
	key := t.s.keys.Synced(t.s.cfg.Cluster, kind)
	val, err := records.Encode(key, &records.Synced{Time: time.Now().UTC()})
	if err != nil {
		return err
	}
	for {
		if _, err = t.s.store.Update(ctx, key, val); err == nil {
			return nil
		}
		t.s.st.setError(fmt.Errorf("write %s: %w", key, err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// work processes queued items until the queue shuts down.
func (t *term) work(ctx context.Context) {
	for {
		it, shutdown := t.queue.Get()
		if shutdown {
			return
		}
		if _, err := t.reconcile(ctx, it); err != nil && ctx.Err() == nil {
			t.s.st.setError(err)
			t.log.Warn("mirror a record; retrying", "kind", it.kind, "object", it.namespace+"/"+it.name, "err", err)
			t.queue.AddRateLimited(it)
		} else {
			t.queue.Forget(it)
		}
		t.s.st.setKind(it.kind, func(k *KindStatus) { k.Objects = t.writers[it.kind].count() })
		t.queue.Done(it)
	}
}

// allItems lists every object of a kind in the caches.
func (t *term) allItems(kind string) ([]item, error) {
	var out []item
	add := func(objs []any, f func(any) []item) {
		for _, o := range objs {
			out = append(out, f(o)...)
		}
	}
	everything := labels.Everything()
	switch kind {
	case records.KindK8sNamespaces:
		l, err := t.namespaces.List(everything)
		add(anySlice(l), t.namespaceItems)
		return out, err
	case records.KindK8sPods:
		l, err := t.pods.List(everything)
		add(anySlice(l), t.podItems)
		return out, err
	case records.KindK8sServices:
		l, err := t.services.List(everything)
		add(anySlice(l), t.serviceItems)
		sl, err2 := t.slices.List(everything)
		add(anySlice(sl), t.sliceItems)
		return out, errors.Join(err, err2)
	case records.KindK8sPolicies:
		l, err := t.netpols.List(everything)
		add(anySlice(l), t.netpolItems)
		var errs []error
		for _, gl := range []cache.GenericLister{t.cnp, t.ccnp} {
			if gl != nil {
				l, err := gl.List(everything)
				errs = append(errs, err)
				add(anySlice(l), t.ciliumItems)
			}
		}
		return out, errors.Join(append(errs, err)...)
	case records.KindK8sIngresses, records.KindK8sIngressSecrets:
		return t.ingressAllItems(kind)
	}
	return nil, fmt.Errorf("unknown kind %q", kind)
}

func anySlice[T any](l []T) []any {
	out := make([]any, len(l))
	for i, v := range l {
		out[i] = v
	}
	return out
}

// sliceService is the Service an EndpointSlice belongs to.
func sliceService(sl *discoveryv1.EndpointSlice) string {
	return sl.Labels[discoveryv1.LabelServiceName]
}
