package records

import (
	"errors"
	"strings"
	"testing"
)

// TestMeshClusterName: "default" is a valid name for a cluster on its own
// and refused, with the reason, for a cluster in a mesh and for a remote.
func TestMeshClusterName(t *testing.T) {
	if err := ValidateClusterName("default"); err != nil {
		t.Errorf("a standalone cluster named default: %v", err)
	}
	for _, name := range []string{"c1", "west", "default-2", "defaults"} {
		if err := ValidateMeshClusterName(name); err != nil {
			t.Errorf("mesh cluster %q: %v", name, err)
		}
	}
	for _, name := range []string{"default", "Default", "", "-x"} {
		if err := ValidateMeshClusterName(name); !errors.Is(err, ErrInvalid) {
			t.Errorf("mesh cluster %q: %v, want ErrInvalid", name, err)
		}
	}
	err := ValidateMeshClusterName("default")
	if err == nil || !strings.Contains(err.Error(), "reserved for a cluster outside any mesh") {
		t.Errorf("the message for default does not say why: %v", err)
	}
	r := Remote{Cluster: "default", Endpoints: []string{"https://10.0.0.1:2384"}}
	if err := r.Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("a remote named default: %v, want ErrInvalid", err)
	}
}
