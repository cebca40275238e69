package bpf

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/weftnet/weft/internal/testgate"
)

func TestLoadPinsAndReusesMaps(t *testing.T) {
	testgate.Root(t)
	if err := EnsureFS(DefaultFS); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(DefaultFS, fmt.Sprintf("weft-test-%d", rand.Uint64()))
	t.Cleanup(func() { removePins(t, dir) })

	first, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	key := NewEndpointKey(mustAddr(t, "10.1.0.5"))
	if err := first.WeftEndpoints.Put(key, EndpointInfo{Ifindex: 7, Identity: 1000}); err != nil {
		t.Fatal(err)
	}
	first.Close()

	second, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	var got EndpointInfo
	if err := second.WeftEndpoints.Lookup(key, &got); err != nil {
		t.Fatalf("endpoint written before the reload is gone: %v", err)
	}
	if got.Identity != 1000 {
		t.Fatalf("identity after reload = %d, want 1000", got.Identity)
	}
}

func removePins(t *testing.T, dir string) {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, m := range matches {
		if mp, err := ebpf.LoadPinnedMap(m, nil); err == nil {
			mp.Unpin()
			mp.Close()
		}
	}
	if err := removeDir(dir); err != nil {
		t.Errorf("remove %s: %v", dir, err)
	}
}
