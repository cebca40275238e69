// Package yamldocs splits multi-document YAML input ("---" lines) the way
// the CLI's apply commands read it. It depends on nothing.
package yamldocs

import "bytes"

// Split returns the documents of data, separated by "---" lines (a
// "--- " line with a comment counts too), in order, empty ones included
// so that positions match the input.
func Split(data []byte) [][]byte {
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

// Empty reports whether doc holds nothing but blank and comment lines.
func Empty(doc []byte) bool {
	for _, line := range bytes.SplitAfter(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			return false
		}
	}
	return true
}
