package namedns

import (
	"fmt"
	"os"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/weftnet/weft/internal/testgate"
)

// TestCreateDelete: a created namespace is a network namespace; Delete
// removes it, is a no-op the second time, and removes a file left where
// a namespace was mounted in a mount namespace that ended.
func TestCreateDelete(t *testing.T) {
	testgate.Root(t)
	name := fmt.Sprintf("weft-namedns-test-%d", os.Getpid())
	if err := Create(name); err != nil {
		t.Fatal(err)
	}
	h, err := netns.GetFromPath(Path(name))
	if err != nil {
		t.Fatalf("open the created namespace: %v", err)
	}
	h.Close()
	for range 2 {
		if err := Delete(name); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(Path(name)); !os.IsNotExist(err) {
			t.Fatalf("%s after Delete: %v", Path(name), err)
		}
	}
	if err := os.WriteFile(Path(name), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := Delete(name); err != nil {
		t.Fatalf("delete an unmounted namespace file: %v", err)
	}
	if _, err := os.Stat(Path(name)); !os.IsNotExist(err) {
		t.Errorf("unmounted namespace file after Delete: %v", err)
	}
}
