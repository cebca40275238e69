package k8s

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	listersv1 "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/weftnet/weft/kvstore"
	pingress "github.com/weftnet/weft/proxy/ingress"
	"github.com/weftnet/weft/state/records"
)

// Kubernetes kinds of the Ingress mirror, as problems name them.
const (
	kindIngress = "Ingress"
	kindSecret  = "Secret"
)

// ingressMirror is what a term holds for the Ingress mirror (Config.Ingresses).
type ingressMirror struct {
	ingresses networkinglisters.IngressLister
	secrets   listersv1.SecretLister
}

// watchIngresses adds the Ingress informer to factory and returns a
// second factory for the kubernetes.io/tls Secrets (only those are
// listed), with the informers and their item functions.
func (t *term) watchIngresses(factory informers.SharedInformerFactory) (informers.SharedInformerFactory, []cache.SharedIndexInformer, []func(any) []item) {
	tlsOnly := informers.NewSharedInformerFactoryWithOptions(t.s.client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = "type=" + string(corev1.SecretTypeTLS)
	}))
	ing, sec := factory.Networking().V1().Ingresses(), tlsOnly.Core().V1().Secrets()
	t.ing = &ingressMirror{ingresses: ing.Lister(), secrets: sec.Lister()}
	return tlsOnly, []cache.SharedIndexInformer{ing.Informer(), sec.Informer()}, []func(any) []item{t.ingressItems, t.secretItems}
}

// ingressItems: an Ingress and the Secrets it names (a Secret is mirrored
// only while a weft Ingress names it).
func (t *term) ingressItems(obj any) []item {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	ing, ok := obj.(*networkingv1.Ingress)
	if !ok {
		return nil
	}
	out := []item{{records.KindK8sIngresses, ing.Namespace, ing.Name}}
	for _, tls := range ing.Spec.TLS {
		if tls.SecretName != "" {
			out = append(out, item{records.KindK8sIngressSecrets, ing.Namespace, tls.SecretName})
		}
	}
	return out
}

func (t *term) secretItems(obj any) []item {
	if m, ok := meta(obj); ok {
		return []item{{records.KindK8sIngressSecrets, m.GetNamespace(), m.GetName()}}
	}
	return nil
}

// ingressRecord is the record of an Ingress of class weft; another class
// is skipped (another controller serves it), an Ingress Weft cannot serve
// is a problem.
func ingressRecord(cluster string, ing *networkingv1.Ingress) (records.Ingress, error) {
	if c := ing.Spec.IngressClassName; c == nil || *c != pingress.ClassName {
		return records.Ingress{}, errSkip{"another ingress class"}
	}
	if err := pingress.Check(*ing); err != nil {
		return records.Ingress{}, err
	}
	doc, err := pingress.Document(*ing)
	return records.Ingress{Cluster: cluster, Namespace: ing.Namespace, Name: ing.Name, Source: SourceKubernetes, Document: doc}, err
}

// secretRecord is the record of a kubernetes.io/tls Secret.
func secretRecord(cluster string, sec *corev1.Secret) (records.IngressSecret, error) {
	if sec.Type != corev1.SecretTypeTLS {
		return records.IngressSecret{}, fmt.Errorf("type %q: an Ingress's certificate is accepted from a %s Secret", sec.Type, corev1.SecretTypeTLS)
	}
	return records.IngressSecret{Cluster: cluster, Namespace: sec.Namespace, Name: sec.Name, Source: SourceKubernetes,
		CertPEM: string(sec.Data[corev1.TLSCertKey]), KeyPEM: string(sec.Data[corev1.TLSPrivateKeyKey])}, nil
}

func (t *term) reconcileIngress(ctx context.Context, it item) (string, error) {
	w, key := t.writers[it.kind], t.s.keys.Ingress(t.s.cfg.Cluster, it.namespace, it.name)
	ing, err := t.ing.ingresses.Ingresses(it.namespace).Get(it.name)
	if apierrors.IsNotFound(err) {
		t.problems.clear(kindIngress, it.namespace, it.name)
		return "", w.remove(ctx, key)
	}
	rec, err := ingressRecord(t.s.cfg.Cluster, ing)
	got, werr := t.apply(ctx, w, key, &rec, err, ing, kindIngress, it.namespace, it.name)
	if werr == nil && err == nil {
		t.writeIngressStatus(ctx, ing)
	}
	return got, werr
}

func (t *term) reconcileIngressSecret(ctx context.Context, it item) (string, error) {
	w, key := t.writers[it.kind], t.s.keys.IngressSecret(t.s.cfg.Cluster, it.namespace, it.name)
	sec, err := t.ing.secrets.Secrets(it.namespace).Get(it.name)
	if apierrors.IsNotFound(err) || !t.namedByIngress(it.namespace, it.name) {
		t.problems.clear(kindSecret, it.namespace, it.name)
		return "", w.remove(ctx, key)
	}
	rec, err := secretRecord(t.s.cfg.Cluster, sec)
	return t.apply(ctx, w, key, &rec, err, sec, kindSecret, it.namespace, it.name)
}

// namedByIngress says whether an Ingress of class weft names the Secret.
func (t *term) namedByIngress(ns, name string) bool {
	ings, _ := t.ing.ingresses.Ingresses(ns).List(labels.Everything())
	for _, ing := range ings {
		if c := ing.Spec.IngressClassName; c == nil || *c != pingress.ClassName {
			continue
		}
		for _, tls := range ing.Spec.TLS {
			if tls.SecretName == name {
				return true
			}
		}
	}
	return false
}

// writeIngressStatus sets status.loadBalancer.ingress to the addresses
// of the cluster's nodes, where every node serves the Ingress. A failure
// is logged: the mirror goes on, and the next change of the Ingress or of
// a node (followNodes) retries.
func (t *term) writeIngressStatus(ctx context.Context, ing *networkingv1.Ingress) {
	kvs, err := t.s.store.List(ctx, t.s.keys.NodesPrefix(t.s.cfg.Cluster))
	if err != nil {
		t.log.Warn("list nodes for an Ingress's status", "ingress", ing.Namespace+"/"+ing.Name, "err", err)
		return
	}
	var ips []netip.Addr
	for _, kv := range kvs {
		if n, err := t.s.keys.DecodeNode(kv.Key, kv.Value); err == nil && len(n.Underlay) > 0 {
			ips = append(ips, n.Underlay[0])
		}
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	var want []networkingv1.IngressLoadBalancerIngress
	for _, ip := range slices.Compact(ips) {
		want = append(want, networkingv1.IngressLoadBalancerIngress{IP: ip.String()})
	}
	if slices.EqualFunc(want, ing.Status.LoadBalancer.Ingress, func(a, b networkingv1.IngressLoadBalancerIngress) bool {
		return a.IP == b.IP && b.Hostname == "" && len(b.Ports) == 0
	}) {
		return
	}
	upd := ing.DeepCopy()
	upd.Status.LoadBalancer.Ingress = want
	if _, err := t.s.client.NetworkingV1().Ingresses(ing.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		t.log.Warn("write an Ingress's status", "ingress", ing.Namespace+"/"+ing.Name, "err", err)
	}
}

// followNodes queues every Ingress again when a node of the cluster joins,
// leaves or changes, so that their status follows the nodes' addresses,
// until ctx ends.
func (t *term) followNodes(ctx context.Context) {
	listed := false
	for ev := range t.s.store.ListAndWatch(ctx, t.s.keys.NodesPrefix(t.s.cfg.Cluster)) {
		if ev.Type == kvstore.EventListDone {
			listed = true
			continue
		}
		if !listed {
			continue // the first listing: every Ingress is reconciled anyway
		}
		ings, _ := t.ing.ingresses.List(labels.Everything())
		for _, ing := range ings {
			t.queue.Add(item{records.KindK8sIngresses, ing.Namespace, ing.Name})
		}
	}
}

// ingressAllItems lists the Ingress mirror's objects of kind.
func (t *term) ingressAllItems(kind string) ([]item, error) {
	var out []item
	switch kind {
	case records.KindK8sIngresses:
		l, err := t.ing.ingresses.List(labels.Everything())
		for _, o := range l {
			out = append(out, item{kind, o.Namespace, o.Name})
		}
		return out, err
	case records.KindK8sIngressSecrets:
		l, err := t.ing.secrets.List(labels.Everything())
		for _, o := range l {
			out = append(out, item{kind, o.Namespace, o.Name})
		}
		return out, err
	}
	return nil, fmt.Errorf("unknown kind %q", kind)
}
