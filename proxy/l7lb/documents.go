package l7lb

import (
	"errors"
	"fmt"

	"github.com/weftnet/weft/internal/yamldocs"
)

// Document is one document of a multi-document input: its text, as
// stored, and the policy it parses to.
type Document struct {
	Text   string
	Policy *Policy
}

// ParseDocuments reads every document of input (separated by "---"
// lines; empty ones are skipped) and refuses the input whole when one is
// bad or two select the same Service port or share a name, naming each
// problem with the document's position (from 1).
func ParseDocuments(input []byte) ([]Document, error) {
	var (
		out  []Document
		errs []error
	)
	byPort, byName := map[string]int{}, map[string]int{}
	for i, text := range yamldocs.Split(input) {
		if yamldocs.Empty(text) {
			continue
		}
		p, err := Parse(text)
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i+1, err))
			continue
		}
		port := fmt.Sprintf("%s/%s:%d", p.Metadata.Namespace, p.Spec.Service, p.Spec.Port)
		name := p.Metadata.Namespace + "/" + p.Metadata.Name
		if j, ok := byPort[port]; ok {
			errs = append(errs, fmt.Errorf("document %d: spec.service %s port %d is selected by document %d too; accepted is one L7LoadBalancing per Service port", i+1, p.Spec.Service, p.Spec.Port, j))
		}
		if j, ok := byName[name]; ok {
			errs = append(errs, fmt.Errorf("document %d: metadata.name %s is given by document %d too", i+1, name, j))
		}
		byPort[port], byName[name] = i+1, i+1
		out = append(out, Document{Text: string(text), Policy: p})
	}
	if len(errs) == 0 && len(out) == 0 {
		errs = append(errs, fmt.Errorf("the input holds no document: accepted are %s %s documents", APIVersion, Kind))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
