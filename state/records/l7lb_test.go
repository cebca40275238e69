package records

import (
	"errors"
	"testing"
)

// TestL7LBRecord: a record written under its key reads back; one whose
// key names another namespace, or with a missing field, is refused.
func TestL7LBRecord(t *testing.T) {
	k := NewKeys(testPrefix)
	key := k.L7LB("c1", "shop", "web")
	if key != "weft/state/l7lb/v1/c1/shop/web" {
		t.Fatalf("key = %q", key)
	}
	r := L7LoadBalancingRef{Cluster: "c1", Namespace: "shop", Name: "web", Service: "web", Port: 80, Source: "cli", Document: "kind: L7LoadBalancing"}
	b, err := Encode(key, &r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.DecodeL7LB(key, b)
	if err != nil || got != r {
		t.Fatalf("DecodeL7LB = %+v, %v; want %+v", got, err, r)
	}
	if _, err := k.DecodeL7LB(k.L7LB("c1", "dev", "web"), b); !errors.Is(err, ErrInvalid) {
		t.Errorf("decode under another namespace: %v, want ErrInvalid", err)
	}
	for name, bad := range map[string]L7LoadBalancingRef{
		"no port":     {Cluster: "c1", Namespace: "shop", Name: "web", Service: "web", Document: "x"},
		"no document": {Cluster: "c1", Namespace: "shop", Name: "web", Service: "web", Port: 80},
		"bad service": {Cluster: "c1", Namespace: "shop", Name: "web", Service: "Web!", Port: 80, Document: "x"},
	} {
		if _, err := Encode(key, &bad); err == nil {
			t.Errorf("%s: encoded, want refused", name)
		}
	}
}
