package records

import (
	"fmt"
	"net/url"
	"time"
)

// Remote is the value of clustermesh/v1/remotes/<cluster>, written by
// `weft clustermesh connect`. STABLE (v1).
type Remote struct {
	Version   int      `json:"v"`
	Cluster   string   `json:"cluster"`
	Endpoints []string `json:"endpoints"`
	CA        string   `json:"ca,omitempty"`        // PEM
	ClientRef string   `json:"clientRef,omitempty"` // where the client cert/key live
}

// Validate checks the cluster name (a mesh name: not "default") and
// endpoints.
func (r *Remote) Validate() error {
	if err := ValidateMeshClusterName(r.Cluster); err != nil {
		return err
	}
	if len(r.Endpoints) == 0 || len(r.Endpoints) > 16 {
		return fmt.Errorf("remote %s: %w: give 1 to 16 endpoints", r.Cluster, ErrInvalid)
	}
	for _, ep := range r.Endpoints {
		if u, err := url.Parse(ep); err != nil || u.Host == "" {
			return fmt.Errorf("remote %s: %w: endpoint %q is not a URL such as https://10.0.0.1:2379", r.Cluster, ErrInvalid, ep)
		}
	}
	return nil
}

// DecodeRemote decodes the value of key and checks it matches the key.
func (k Keys) DecodeRemote(key string, value []byte) (Remote, error) {
	name, err := k.tail(key, remotesDir)
	if err != nil {
		return Remote{}, err
	}
	var r Remote
	if err := decode(key, value, MaxSmallRecord, &r); err != nil {
		return Remote{}, err
	}
	if r.Cluster != name {
		return Remote{}, mismatch(key, "cluster", r.Cluster, name)
	}
	return r, nil
}

// Synced is the value of synced/<cluster>/<kind>: written once a full list
// of kind has been published. STABLE (v1).
type Synced struct {
	Version int       `json:"v"`
	Time    time.Time `json:"time"`
}

// Validate requires a time.
func (s *Synced) Validate() error {
	if s.Time.IsZero() {
		return fmt.Errorf("synced marker: %w: no time", ErrInvalid)
	}
	return nil
}

// DecodeSynced decodes a synced marker.
func (k Keys) DecodeSynced(key string, value []byte) (Synced, error) {
	if _, err := k.tail(key, syncedDir); err != nil {
		return Synced{}, err
	}
	var s Synced
	if err := decode(key, value, MaxSmallRecord, &s); err != nil {
		return Synced{}, err
	}
	return s, nil
}

// KubernetesSource is what the cluster's Kubernetes source (weft-apiserver
// with --kubeconfig) last reported, at state/k8s/v1/<cluster>: agents
// show it in weft status without talking to the apiserver.
type KubernetesSource struct {
	Version int       `json:"v"`
	Time    time.Time `json:"time"` // when written
	// Holder is the apiserver that holds the Lease and mirrors.
	Holder string `json:"holder"`
	// Kinds are the mirrored kinds (KindK8s*) with their record counts.
	Kinds map[string]KubernetesKind `json:"kinds"`
	// Problems are objects that could not be mirrored ("Service dev/x: …"),
	// at most MaxKubernetesProblems; ProblemCount counts them all.
	Problems     []string `json:"problems,omitempty"`
	ProblemCount int      `json:"problemCount,omitempty"`
	// LastError is the last failure talking to Kubernetes or the store.
	LastError     string    `json:"lastError,omitempty"`
	LastErrorTime time.Time `json:"lastErrorTime,omitzero"`
}

// KubernetesKind is one mirrored kind.
type KubernetesKind struct {
	Synced  bool `json:"synced"`
	Objects int  `json:"objects"`
}

// MaxKubernetesProblems bounds KubernetesSource.Problems.
const MaxKubernetesProblems = 20

// Validate requires a time and a holder.
func (s *KubernetesSource) Validate() error {
	switch {
	case s.Time.IsZero():
		return fmt.Errorf("kubernetes source status: %w: no time", ErrInvalid)
	case s.Holder == "":
		return fmt.Errorf("kubernetes source status: %w: no holder", ErrInvalid)
	case len(s.Problems) > MaxKubernetesProblems:
		return fmt.Errorf("kubernetes source status: %w: %d problems listed, at most %d", ErrInvalid, len(s.Problems), MaxKubernetesProblems)
	}
	return nil
}

// KubernetesSource is state/k8s/v1/<cluster>.
func (k Keys) KubernetesSource(cluster string) string { return k.prefix + k8sDir + cluster }

// DecodeKubernetesSource decodes state/k8s/v1/<cluster>.
func (k Keys) DecodeKubernetesSource(key string, value []byte) (KubernetesSource, error) {
	if _, err := k.tail(key, k8sDir); err != nil {
		return KubernetesSource{}, err
	}
	var s KubernetesSource
	if err := decode(key, value, MaxSmallRecord, &s); err != nil {
		return KubernetesSource{}, err
	}
	return s, nil
}
