package policy

import (
	"slices"
	"strings"

	"github.com/weftnet/weft/state/records"
)

// Operators of a Requirement (Kubernetes matchExpressions).
const (
	OpIn           = "In"
	OpNotIn        = "NotIn"
	OpExists       = "Exists"
	OpDoesNotExist = "DoesNotExist"
)

// SourceAny in a requirement matches a label of any source (a selector key
// written without a source, or as any:key).
const SourceAny = "any"

// Requirement is one condition on a label set.
type Requirement struct {
	Source string // label source, SourceAny for any
	Key    string
	Op     string
	Values []string // sorted
}

func (r Requirement) String() string {
	k := r.Source + ":" + r.Key
	switch r.Op {
	case OpIn:
		if len(r.Values) == 1 {
			return k + "=" + r.Values[0]
		}
		return k + " in (" + strings.Join(r.Values, ",") + ")"
	case OpNotIn:
		return k + " notin (" + strings.Join(r.Values, ",") + ")"
	case OpExists:
		return k
	}
	return "!" + k
}

// matches reports whether ls satisfies r.
func (r Requirement) matches(ls records.Labels) bool {
	var (
		val   string
		found bool
	)
	for _, l := range ls {
		if l.Key == r.Key && (r.Source == SourceAny || l.Source == r.Source) {
			val, found = l.Value, true
			if r.Op != OpIn || slices.Contains(r.Values, val) {
				break
			}
		}
	}
	switch r.Op {
	case OpIn:
		return found && slices.Contains(r.Values, val)
	case OpNotIn:
		return !found || !slices.Contains(r.Values, val)
	case OpExists:
		return found
	}
	return !found
}

// Selector selects label sets that satisfy every requirement. An empty
// selector selects every endpoint of the cluster (not reserved or CIDR
// identities: those are selected by entities and CIDRs).
type Selector struct {
	Requirements []Requirement // sorted by String
}

// newSelector sorts the requirements into their canonical order.
func newSelector(reqs []Requirement) Selector {
	slices.SortFunc(reqs, func(a, b Requirement) int { return strings.Compare(a.String(), b.String()) })
	return Selector{Requirements: reqs}
}

// String is the canonical form, requirements joined by ", "; "{}" selects all.
func (s Selector) String() string {
	if len(s.Requirements) == 0 {
		return "{}"
	}
	parts := make([]string, len(s.Requirements))
	for i, r := range s.Requirements {
		parts[i] = r.String()
	}
	return strings.Join(parts, ", ")
}

// Matches reports whether the label set of an identity satisfies s.
func (s Selector) Matches(ls records.Labels) bool {
	for _, r := range s.Requirements {
		if !r.matches(ls) {
			return false
		}
	}
	return true
}

// namesNamespace reports whether s has a requirement on the namespace label.
func (s Selector) namesNamespace() bool {
	for _, r := range s.Requirements {
		if r.Key == records.LabelNamespace && (r.Source == records.SourceK8s || r.Source == SourceAny) {
			return true
		}
	}
	return false
}

// inNamespace limits s to namespace ns unless it names the namespace label.
func (s Selector) inNamespace(ns string) Selector {
	if ns == "" || s.namesNamespace() {
		return s
	}
	reqs := append(slices.Clone(s.Requirements), Requirement{Source: records.SourceK8s, Key: records.LabelNamespace, Op: OpIn, Values: []string{ns}})
	return newSelector(reqs)
}

// splitKey splits a Cilium selector key "source:key" into its parts; a
// key without a source (or whose prefix holds '.' or '/', as in
// kubernetes.io/name) gets def.
func splitKey(k, def string) (source, key string) {
	src, rest, ok := strings.Cut(k, ":")
	if !ok || src == "" || strings.ContainsAny(src, "./=") {
		return def, k
	}
	return src, rest
}
