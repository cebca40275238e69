package records

import (
	"fmt"
	"slices"
	"strings"
)

// Well-known label keys (Cilium-compatible, so existing policies work).
const (
	SourceK8s         = "k8s"
	SourceReserved    = "reserved"
	LabelNamespace    = "io.kubernetes.pod.namespace"
	LabelCluster      = "io.cilium.k8s.policy.cluster"
	MaxLabels         = 64
	MaxLabelKeyLen    = 317 // 253 prefix + '/' + 63 name
	MaxLabelValueLen  = 63
	maxLabelSourceLen = 32
)

// Label is one source:key=value label, e.g. k8s:app=web.
type Label struct {
	Source string `json:"source"`
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
}

// String is the canonical form source:key=value.
func (l Label) String() string { return l.Source + ":" + l.Key + "=" + l.Value }

// Display is the label as users read it: source:key=value, or source:key
// for a label without a value (reserved:host).
func (l Label) Display() string {
	if l.Value == "" {
		return l.Source + ":" + l.Key
	}
	return l.String()
}

// ParseLabel parses "source:key=value"; a missing source means "k8s", a
// missing "=value" an empty value.
func ParseLabel(s string) (Label, error) {
	var l Label
	src, rest, ok := strings.Cut(s, ":")
	if !ok || strings.ContainsAny(src, "=/") {
		src, rest = SourceK8s, s
	}
	l.Source = src
	l.Key, l.Value, _ = strings.Cut(rest, "=")
	if err := l.Validate(); err != nil {
		return Label{}, err
	}
	return l, nil
}

// Validate checks the source, key and value character sets and lengths.
func (l Label) Validate() error {
	if !isDNSLabel(l.Source, maxLabelSourceLen) {
		return fmt.Errorf("label %q: %w: source must be a lowercase word such as %q", l.String(), ErrInvalid, SourceK8s)
	}
	if l.Key == "" || len(l.Key) > MaxLabelKeyLen || !labelChars(l.Key, true) {
		return fmt.Errorf("label %q: %w: key must be 1 to %d characters of a-z A-Z 0-9 - _ . /", l.String(), ErrInvalid, MaxLabelKeyLen)
	}
	if len(l.Value) > MaxLabelValueLen || !labelChars(l.Value, false) {
		return fmt.Errorf("label %q: %w: value must be at most %d characters of a-z A-Z 0-9 - _ .", l.String(), ErrInvalid, MaxLabelValueLen)
	}
	return nil
}

func labelChars(s string, slash bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		case c == '/' && slash:
		default:
			return false
		}
	}
	return true
}

// Labels is a label set sorted by source, key; keys are unique per source.
// Build it with NewLabels or ParseLabels, which sort and check it.
type Labels []Label

// NewLabels validates, sorts and checks a label set for duplicates.
func NewLabels(ls ...Label) (Labels, error) {
	out := slices.Clone(Labels(ls))
	slices.SortFunc(out, compareLabel)
	if err := out.Validate(); err != nil {
		return nil, err
	}
	return out, nil
}

// ParseLabels parses each "source:key=value" and builds the set.
func ParseLabels(ss ...string) (Labels, error) {
	ls := make([]Label, 0, len(ss))
	for _, s := range ss {
		l, err := ParseLabel(s)
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	return NewLabels(ls...)
}

// MustParseLabels is ParseLabels for tests and constants; it panics on error.
func MustParseLabels(ss ...string) Labels {
	l, err := ParseLabels(ss...)
	if err != nil {
		panic(err)
	}
	return l
}

func compareLabel(a, b Label) int {
	if c := strings.Compare(a.Source, b.Source); c != 0 {
		return c
	}
	return strings.Compare(a.Key, b.Key)
}

// Validate checks every label, the order, uniqueness and the count.
func (ls Labels) Validate() error {
	if len(ls) == 0 || len(ls) > MaxLabels {
		return fmt.Errorf("label set %q: %w: must hold 1 to %d labels", ls.String(), ErrInvalid, MaxLabels)
	}
	for i, l := range ls {
		if err := l.Validate(); err != nil {
			return err
		}
		if i > 0 && compareLabel(ls[i-1], l) >= 0 {
			return fmt.Errorf("label set %q: %w: labels must be sorted and keys unique per source", ls.String(), ErrInvalid)
		}
	}
	return nil
}

// Get returns the value of source:key and whether it is present.
func (ls Labels) Get(source, key string) (string, bool) {
	for _, l := range ls {
		if l.Source == source && l.Key == key {
			return l.Value, true
		}
	}
	return "", false
}

// String is the canonical text form: labels joined by ";" in sorted order.
func (ls Labels) String() string {
	var b strings.Builder
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(l.String())
	}
	return b.String()
}

// Display returns each label's Display form, in order.
func (ls Labels) Display() []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Display()
	}
	return out
}

// Equal reports whether two sets hold the same labels.
func (ls Labels) Equal(o Labels) bool { return slices.Equal(ls, o) }

// KeySegment encodes the set as one key segment, STABLE (v1): every label
// as source:key=value followed by ";", with "/" written "%2F" ("%" and ";"
// never occur in a valid label), so the segment never holds a "/" and one
// set's segment followed by "/" is never a prefix of another's.
func (ls Labels) KeySegment() string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(strings.ReplaceAll(l.String(), "/", "%2F"))
		b.WriteByte(';')
	}
	return b.String()
}
