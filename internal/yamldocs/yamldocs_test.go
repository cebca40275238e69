package yamldocs

import "testing"

func TestSplit(t *testing.T) {
	docs := Split([]byte("a: 1\n---\n# only a comment\n--- # next\nb: 2\n"))
	if len(docs) != 3 || string(docs[0]) != "a: 1\n" || string(docs[2]) != "b: 2\n" {
		t.Fatalf("Split = %q", docs)
	}
	if Empty(docs[0]) || !Empty(docs[1]) || !Empty([]byte("  \n")) {
		t.Errorf("Empty: %v %v", Empty(docs[0]), Empty(docs[1]))
	}
}
