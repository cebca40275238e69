package services

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/weftnet/weft/internal/yamldocs"
)

// MaxManifest is the largest manifest file accepted.
const MaxManifest = 1 << 20

// ParseManifest parses one or more YAML (or JSON) documents, separated by
// "---", each a Kubernetes v1 Service. Every document is checked before any
// is returned: one bad document refuses the whole file.
func ParseManifest(data []byte) ([]Spec, error) {
	if len(data) > MaxManifest {
		return nil, invalid("manifest of %d bytes: at most %d are accepted", len(data), MaxManifest)
	}
	var out []Spec
	for i, doc := range yamldocs.Split(data) {
		if yamldocs.Empty(doc) {
			continue
		}
		s, err := parseDocument(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		for _, o := range out {
			if o.Namespace == s.Namespace && o.Name == s.Name {
				return nil, fmt.Errorf("document %d: %w", i+1, invalid("service %s/%s is defined twice", s.Namespace, s.Name))
			}
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, invalid("the manifest holds no document: a Kubernetes Service (apiVersion: v1, kind: Service) is accepted")
	}
	return out, nil
}

func parseDocument(doc []byte) (Spec, error) {
	var svc corev1.Service
	if err := yaml.UnmarshalStrict(doc, &svc); err != nil {
		return Spec{}, invalid("%v (the fields of a Kubernetes v1 Service are accepted)", err)
	}
	if svc.APIVersion != "v1" || svc.Kind != "Service" {
		return Spec{}, invalid("apiVersion %q, kind %q: accepted is apiVersion v1, kind Service", svc.APIVersion, svc.Kind)
	}
	return FromService(&svc, FromServiceOptions{})
}
