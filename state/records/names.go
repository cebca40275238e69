package records

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// ErrInvalid marks a record or key that is malformed, oversized, of an
// unknown schema version, or inconsistent with its key.
var ErrInvalid = errors.New("invalid record")

// ErrOtherCluster marks (besides ErrInvalid) a record whose value names
// another cluster than its key: a record of another cluster under this
// one's prefix.
var ErrOtherCluster = errors.New("a record of another cluster")

// Limits on names, matching Kubernetes where a name comes from it.
const (
	MaxClusterName = 32  // a DNS label, ≤ 32 characters (DESIGN.md)
	MaxNodeName    = 253 // a DNS subdomain
	MaxNamespace   = 63  // a DNS label
	MaxObjectName  = 253 // a DNS subdomain (services, policies)
	MinClusterID   = 1
	MaxClusterID   = 255
)

// ValidateClusterName accepts a lowercase DNS label of at most 32 characters.
func ValidateClusterName(name string) error {
	if !isDNSLabel(name, MaxClusterName) {
		return fmt.Errorf("cluster name %q: %w: must be a lowercase DNS label (a-z, 0-9, '-', starting and ending alphanumeric) of 1 to %d characters", name, ErrInvalid, MaxClusterName)
	}
	return nil
}

// DefaultClusterName is what a cluster is called when it is not given a
// name: fine for a cluster on its own, refused in a mesh.
const DefaultClusterName = "default"

// ValidateMeshClusterName accepts the name of a cluster that joins a mesh:
// a valid cluster name other than "default", which every unnamed cluster
// shares (Cilium refuses it with a cluster id for the same reason).
func ValidateMeshClusterName(name string) error {
	if err := ValidateClusterName(name); err != nil {
		return err
	}
	if name == DefaultClusterName {
		return fmt.Errorf("cluster name %q: %w: reserved for a cluster outside any mesh (every unnamed cluster is called %q, so two of them would collide); give the cluster its own name, e.g. c1 or west", name, ErrInvalid, DefaultClusterName)
	}
	return nil
}

// ValidateClusterID accepts 1 to 255.
func ValidateClusterID(id uint32) error {
	if id < MinClusterID || id > MaxClusterID {
		return fmt.Errorf("cluster id %d: %w: accepted is %d to %d", id, ErrInvalid, MinClusterID, MaxClusterID)
	}
	return nil
}

// ValidateNodeName accepts a lowercase DNS subdomain of at most 253 characters.
func ValidateNodeName(name string) error {
	if !isDNSSubdomain(name, MaxNodeName) {
		return fmt.Errorf("node name %q: %w: must be a lowercase DNS subdomain (a-z, 0-9, '-', '.') of 1 to %d characters", name, ErrInvalid, MaxNodeName)
	}
	return nil
}

// ValidateNamespace accepts a lowercase DNS label of at most 63 characters.
func ValidateNamespace(ns string) error {
	if !isDNSLabel(ns, MaxNamespace) {
		return fmt.Errorf("namespace %q: %w: must be a lowercase DNS label of 1 to %d characters", ns, ErrInvalid, MaxNamespace)
	}
	return nil
}

// ValidateObjectName accepts a lowercase DNS subdomain (service and policy names).
func ValidateObjectName(name string) error {
	if !isDNSSubdomain(name, MaxObjectName) {
		return fmt.Errorf("name %q: %w: must be a lowercase DNS subdomain of 1 to %d characters", name, ErrInvalid, MaxObjectName)
	}
	return nil
}

// isDNSLabel: a lowercase RFC 1123 label (Kubernetes' rule) of at most
// maxLen characters.
func isDNSLabel(s string, maxLen int) bool {
	return len(s) <= maxLen && len(validation.IsDNS1123Label(s)) == 0
}

// isDNSSubdomain: a lowercase RFC 1123 subdomain of at most maxLen
// characters whose every label is a DNS label (≤ 63 characters; Kubernetes'
// subdomain rule alone would accept longer ones).
func isDNSSubdomain(s string, maxLen int) bool {
	if len(s) > maxLen || len(validation.IsDNS1123Subdomain(s)) != 0 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if !isDNSLabel(label, 63) {
			return false
		}
	}
	return true
}
