package ingress

import (
	"encoding/json"
	"errors"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	"github.com/weftnet/weft/internal/yamldocs"
	"github.com/weftnet/weft/state/records"
)

// MaxManifest is the largest file of Ingress documents accepted.
const MaxManifest = 1 << 20

// ErrInvalid marks an Ingress document that is refused.
var ErrInvalid = errors.New("invalid ingress")

// Parse reads one or more networking.k8s.io/v1 Ingress documents (YAML or
// JSON, separated by "---" lines) and checks each (Check). Documents
// without metadata.namespace get ns ("default" when empty); one naming
// another namespace than a non-empty ns is refused. One bad document
// refuses the whole input, naming the document and field.
func Parse(data []byte, ns string) ([]networkingv1.Ingress, error) {
	if len(data) > MaxManifest {
		return nil, fmt.Errorf("%w: %d bytes: at most %d are accepted", ErrInvalid, len(data), MaxManifest)
	}
	var out []networkingv1.Ingress
	for i, doc := range yamldocs.Split(data) {
		if yamldocs.Empty(doc) {
			continue
		}
		ing, err := parseDocument(doc, ns)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		for _, o := range out {
			if o.Namespace == ing.Namespace && o.Name == ing.Name {
				return nil, fmt.Errorf("document %d: %w: ingress %s/%s is defined twice", i+1, ErrInvalid, ing.Namespace, ing.Name)
			}
		}
		out = append(out, ing)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no document: a networking.k8s.io/v1 Ingress with spec.ingressClassName %q is accepted", ErrInvalid, ClassName)
	}
	return out, nil
}

func parseDocument(doc []byte, ns string) (networkingv1.Ingress, error) {
	var ing networkingv1.Ingress
	if err := yaml.UnmarshalStrict(doc, &ing); err != nil {
		return ing, fmt.Errorf("%w: %v (the fields of a networking.k8s.io/v1 Ingress are accepted)", ErrInvalid, err)
	}
	if ing.APIVersion != "networking.k8s.io/v1" || ing.Kind != "Ingress" {
		return ing, fmt.Errorf("%w: apiVersion %q, kind %q: accepted is apiVersion networking.k8s.io/v1, kind Ingress", ErrInvalid, ing.APIVersion, ing.Kind)
	}
	switch {
	case ing.Namespace == "" && ns == "":
		ing.Namespace = "default"
	case ing.Namespace == "":
		ing.Namespace = ns
	case ns != "" && ing.Namespace != ns:
		return ing, fmt.Errorf("%w: ingress %s: metadata.namespace %q differs from the namespace given (%q)", ErrInvalid, ing.Name, ing.Namespace, ns)
	}
	ing.Status = networkingv1.IngressStatus{}
	return ing, Check(ing)
}

// Check refuses an Ingress Weft does not serve: bad names, another
// class (or none), and everything Build refuses.
func Check(ing networkingv1.Ingress) error {
	if err := records.ValidateObjectName(ing.Name); err != nil {
		return fmt.Errorf("%w: metadata.name: %v", ErrInvalid, err)
	}
	if err := records.ValidateNamespace(ing.Namespace); err != nil {
		return fmt.Errorf("%w: metadata.namespace: %v", ErrInvalid, err)
	}
	switch c := ing.Spec.IngressClassName; {
	case c == nil:
		return fmt.Errorf("%w: ingress %s/%s: spec.ingressClassName: required; accepted is %q (Weft serves only its own class)", ErrInvalid, ing.Namespace, ing.Name, ClassName)
	case *c != ClassName:
		return fmt.Errorf("%w: ingress %s/%s: spec.ingressClassName %q: accepted is %q (an Ingress of another class is served by another controller)", ErrInvalid, ing.Namespace, ing.Name, *c, ClassName)
	}
	if _, err := Build([]networkingv1.Ingress{ing}); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// Document is the JSON an Ingress record holds: apiVersion, kind, name,
// namespace, labels, annotations and spec (no status, no server fields).
func Document(ing networkingv1.Ingress) (string, error) {
	doc := networkingv1.Ingress{Spec: ing.Spec}
	doc.APIVersion, doc.Kind = "networking.k8s.io/v1", "Ingress"
	doc.Name, doc.Namespace, doc.Labels, doc.Annotations = ing.Name, ing.Namespace, ing.Labels, ing.Annotations
	b, err := json.Marshal(doc)
	return string(b), err
}

// FromDocument decodes what Document wrote.
func FromDocument(doc string) (networkingv1.Ingress, error) {
	var ing networkingv1.Ingress
	if err := json.Unmarshal([]byte(doc), &ing); err != nil {
		return ing, fmt.Errorf("%w: decode the stored document: %v", ErrInvalid, err)
	}
	return ing, nil
}
