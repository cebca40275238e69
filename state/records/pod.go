package records

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// Pod phases, as Kubernetes reports them.
const (
	PodPending   = "Pending"
	PodRunning   = "Running"
	PodSucceeded = "Succeeded"
	PodFailed    = "Failed"
	PodUnknown   = "Unknown"
)

// MaxPodLabels leaves room in an identity's label set for the namespace
// and cluster labels an agent adds to a pod's own labels.
const MaxPodLabels = MaxLabels - 2

// Pod is the value of state/pods/v1/<cluster>/<ns>/<name>: a Kubernetes pod
// as the apiserver's Kubernetes source mirrors it, so that an agent can
// take a pod's labels from it when the CNI plugin names the pod
// (K8S_POD_NAMESPACE/K8S_POD_NAME). STABLE (v1).
type Pod struct {
	Version   int    `json:"v"`
	Cluster   string `json:"cluster"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid,omitempty"`
	// Labels are the pod's Kubernetes labels (without source), at most
	// MaxPodLabels.
	Labels      map[string]string `json:"labels,omitempty"`
	Node        string            `json:"node,omitempty"`
	IPs         []netip.Addr      `json:"ips,omitempty"`
	Phase       string            `json:"phase,omitempty"`
	Ready       bool              `json:"ready,omitempty"`
	HostNetwork bool              `json:"hostNetwork,omitempty"`
	// Source says who owns the record, e.g. "kubernetes".
	Source string `json:"source,omitempty"`
}

// Validate checks names, labels, node, addresses and phase.
func (p *Pod) Validate() error {
	id := p.Namespace + "/" + p.Name
	if err := ValidateClusterName(p.Cluster); err != nil {
		return err
	}
	if err := ValidateNamespace(p.Namespace); err != nil {
		return err
	}
	if err := ValidateObjectName(p.Name); err != nil {
		return err
	}
	if len(p.UID) > 128 || len(p.Source) > 63 {
		return fmt.Errorf("pod %s: %w: uid longer than 128 or source longer than 63 bytes", id, ErrInvalid)
	}
	if err := validateK8sLabels(p.Labels, MaxPodLabels); err != nil {
		return fmt.Errorf("pod %s: %w", id, err)
	}
	if p.Node != "" {
		if err := ValidateNodeName(p.Node); err != nil {
			return fmt.Errorf("pod %s: %w", id, err)
		}
	}
	if len(p.IPs) > 2 {
		return fmt.Errorf("pod %s: %w: %d addresses, at most 2 (one per family)", id, ErrInvalid, len(p.IPs))
	}
	for _, ip := range p.IPs {
		if !ip.IsValid() || ip.Zone() != "" || ip.IsUnspecified() {
			return fmt.Errorf("pod %s: %w: address %v is not a unicast address", id, ErrInvalid, ip)
		}
	}
	switch p.Phase {
	case "", PodPending, PodRunning, PodSucceeded, PodFailed, PodUnknown:
	default:
		return fmt.Errorf("pod %s: %w: phase %q, accepted are Pending, Running, Succeeded, Failed and Unknown", id, ErrInvalid, p.Phase)
	}
	return nil
}

// Namespace is the value of state/namespaces/v1/<cluster>/<name>: a
// Kubernetes namespace's labels, which agents add to the identities of its
// pods (io.cilium.k8s.namespace.labels.<key>). STABLE (v1).
type Namespace struct {
	Version int               `json:"v"`
	Cluster string            `json:"cluster"`
	Name    string            `json:"name"`
	Labels  map[string]string `json:"labels,omitempty"`
	Source  string            `json:"source,omitempty"`
}

// Validate checks the names and labels.
func (n *Namespace) Validate() error {
	if err := ValidateClusterName(n.Cluster); err != nil {
		return err
	}
	if err := ValidateNamespace(n.Name); err != nil {
		return err
	}
	if len(n.Source) > 63 {
		return fmt.Errorf("namespace %s: %w: source longer than 63 bytes", n.Name, ErrInvalid)
	}
	if err := validateK8sLabels(n.Labels, MaxLabels); err != nil {
		return fmt.Errorf("namespace %s: %w", n.Name, err)
	}
	return nil
}

// validateK8sLabels checks a Kubernetes label map (keys without source).
func validateK8sLabels(ls map[string]string, limit int) error {
	if len(ls) > limit {
		return fmt.Errorf("%w: %d labels, an identity holds at most %d", ErrInvalid, len(ls), limit)
	}
	for _, k := range slices.Sorted(maps.Keys(ls)) {
		if err := (Label{Source: SourceK8s, Key: k, Value: ls[k]}).Validate(); err != nil {
			return err
		}
	}
	return nil
}

// DecodePod decodes the value of key and checks it matches the key.
func (k Keys) DecodePod(key string, value []byte) (Pod, error) {
	t, err := k.tail(key, podsDir)
	if err != nil {
		return Pod{}, err
	}
	parts := strings.Split(t, "/")
	if len(parts) != 3 {
		return Pod{}, fmt.Errorf("parse key %q: %w: expected <cluster>/<namespace>/<name>", key, ErrInvalid)
	}
	var p Pod
	if err := decode(key, value, MaxSmallRecord, &p); err != nil {
		return Pod{}, err
	}
	for i, f := range [][2]string{{"cluster", p.Cluster}, {"namespace", p.Namespace}, {"name", p.Name}} {
		if f[1] != parts[i] {
			return Pod{}, mismatch(key, f[0], f[1], parts[i])
		}
	}
	return p, nil
}

// DecodeNamespace decodes the value of key and checks it matches the key.
func (k Keys) DecodeNamespace(key string, value []byte) (Namespace, error) {
	t, err := k.tail(key, namespacesDir)
	if err != nil {
		return Namespace{}, err
	}
	cluster, name, ok := strings.Cut(t, "/")
	if !ok {
		return Namespace{}, fmt.Errorf("parse key %q: %w: expected <cluster>/<name>", key, ErrInvalid)
	}
	var n Namespace
	if err := decode(key, value, MaxSmallRecord, &n); err != nil {
		return Namespace{}, err
	}
	if n.Cluster != cluster {
		return Namespace{}, mismatch(key, "cluster", n.Cluster, cluster)
	}
	if n.Name != name {
		return Namespace{}, mismatch(key, "name", n.Name, name)
	}
	return n, nil
}
