package policy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// decoder walks a decoded YAML tree, collecting errors that name the field
// path, the value given and what is accepted.
type decoder struct {
	errs []string
}

// maxErrors bounds the errors reported for one document.
const maxErrors = 10

func (d *decoder) fail(path, format string, args ...any) {
	if len(d.errs) < maxErrors {
		d.errs = append(d.errs, path+": "+fmt.Sprintf(format, args...))
	}
}

func (d *decoder) err() error {
	if len(d.errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(d.errs, "; "))
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// describe names the kind of a decoded value for error messages.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("the string %q", v)
	case json.Number:
		return "the number " + v.String()
	case bool:
		return fmt.Sprintf("the boolean %t", v)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// object checks v is an object holding only the given fields.
func (d *decoder) object(path string, v any, fields ...string) map[string]any {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		d.fail(path, "expected an object, got %s", describe(v))
		return nil
	}
	var unknown []string
	for k := range m {
		if !slices.Contains(fields, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		d.fail(join(path, k), "unknown field; accepted are %s", strings.Join(fields, ", "))
	}
	return m
}

// list checks v is a list (null is an empty one).
func (d *decoder) list(path string, v any) []any {
	if v == nil {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		d.fail(path, "expected a list, got %s", describe(v))
		return nil
	}
	return l
}

// str checks v is a string; numbers and booleans are taken in their text
// form, as Kubernetes does for label values written without quotes.
func (d *decoder) str(path string, v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return fmt.Sprint(v), true
	}
	d.fail(path, "expected a string, got %s", describe(v))
	return "", false
}

func (d *decoder) boolean(path string, v any) bool {
	b, ok := v.(bool)
	if !ok && v != nil {
		d.fail(path, "expected true or false, got %s", describe(v))
	}
	return b
}

// strMap checks v is an object of strings.
func (d *decoder) strMap(path string, v any) map[string]string {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		d.fail(path, "expected an object of strings, got %s", describe(v))
		return nil
	}
	out := make(map[string]string, len(m))
	for k, val := range m {
		if s, ok := d.str(join(path, k), val); ok {
			out[k] = s
		}
	}
	return out
}

// splitDocuments splits multi-document YAML at "---" lines, dropping
// documents that hold only blanks and comments.
func splitDocuments(input []byte) []string {
	var (
		docs []string
		cur  strings.Builder
	)
	flush := func() {
		if hasContent(cur.String()) {
			docs = append(docs, cur.String())
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(input))
	sc.Buffer(make([]byte, 0, 64<<10), len(input)+1)
	for sc.Scan() {
		line := sc.Text()
		if line == "---" || strings.HasPrefix(line, "--- ") || strings.HasPrefix(line, "---\t") {
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return docs
}

func hasContent(doc string) bool {
	for line := range strings.Lines(doc) {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") {
			return true
		}
	}
	return false
}

// decodeYAML turns one YAML document into a tree of maps, lists, strings,
// json.Number and bools; duplicate keys are refused.
func decodeYAML(doc string) (any, error) {
	j, err := yaml.YAMLToJSONStrict([]byte(doc))
	if err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	return v, nil
}
