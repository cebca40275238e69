package services

import (
	"bytes"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
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
	for i, doc := range splitDocuments(data) {
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
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

// SplitDocuments splits a multi-document YAML file at "---" lines; a
// document of only comments and blanks is empty (see EmptyDocument). The
// document numbers in errors count every part, from 1.
func SplitDocuments(data []byte) [][]byte { return splitDocuments(data) }

// EmptyDocument says whether doc holds only comments and blank lines.
func EmptyDocument(doc []byte) bool { return len(bytes.TrimSpace(stripComments(doc))) == 0 }

func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur []byte
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if t := bytes.TrimRight(line, " \t\r\n"); bytes.Equal(t, []byte("---")) || bytes.HasPrefix(t, []byte("--- ")) {
			docs = append(docs, cur)
			cur = nil
			continue
		}
		cur = append(cur, line...)
	}
	return append(docs, cur)
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.SplitAfter(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
		}
	}
	return out
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
