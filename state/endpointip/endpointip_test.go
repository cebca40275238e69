package endpointip

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRestartNeverReusesLiveAddress: allocations survive a restart (a new
// Allocator on the same directory); live addresses are never handed out
// again; network, gateway and broadcast never are; a full CIDR says so.
func TestRestartNeverReusesLiveAddress(t *testing.T) {
	tests := []struct {
		cidr     string
		usable   int
		gateway  string
		reserved []string
	}{
		{"10.100.1.0/29", 5, "10.100.1.1", []string{"10.100.1.0", "10.100.1.1", "10.100.1.7"}},
		{"fd00:10:0:1::/125", 6, "fd00:10:0:1::1", []string{"fd00:10:0:1::", "fd00:10:0:1::1"}},
	}
	for _, tc := range tests {
		t.Run(tc.cidr, func(t *testing.T) {
			dir := t.TempDir()
			cidr := netip.MustParsePrefix(tc.cidr)
			a, err := Open(dir, cidr)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Open(dir, cidr); err == nil {
				t.Fatal("a second process opened the same state")
			}
			if a.Gateway().String() != tc.gateway {
				t.Fatalf("gateway %v, want %s", a.Gateway(), tc.gateway)
			}
			live := map[netip.Addr]string{}
			for i := range tc.usable - 1 {
				owner := fmt.Sprintf("pod-%d", i)
				ip, err := a.Allocate(owner)
				if err != nil {
					t.Fatal(err)
				}
				live[ip] = owner
			}
			released, err := a.Release("pod-0")
			if err != nil {
				t.Fatal(err)
			}
			delete(live, released)
			a.Close()

			b, err := Open(dir, cidr) // the agent restarted
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if got := b.Allocated(); len(got) != len(live) {
				t.Fatalf("after restart %d allocations, want %d", len(got), len(live))
			}
			if ip, err := b.Allocate("pod-1"); err != nil || live[ip] != "pod-1" {
				t.Fatalf("pod-1 after restart got %v, %v; want its old address", ip, err)
			}
			fresh, err := b.Allocate("pod-new")
			if err != nil {
				t.Fatal(err)
			}
			if _, dup := live[fresh]; dup {
				t.Fatalf("restart handed out live address %v again", fresh)
			}
			if fresh == released {
				t.Fatalf("just-released %v reused while other addresses were free", fresh)
			}
			for _, r := range tc.reserved {
				if fresh.String() == r {
					t.Fatalf("reserved %s handed out", r)
				}
				if err := b.AllocateIP(netip.MustParseAddr(r), "x"); !errors.Is(err, ErrReserved) {
					t.Fatalf("AllocateIP(%s) = %v, want ErrReserved", r, err)
				}
			}
			if _, err := b.Allocate("pod-last"); err != nil {
				t.Fatalf("last usable address: %v", err)
			}
			if _, err := b.Allocate("pod-too-many"); !errors.Is(err, ErrExhausted) {
				t.Fatalf("allocation beyond the CIDR: %v, want ErrExhausted", err)
			}
			if ip, err := b.Release("never-allocated"); err != nil || ip.IsValid() {
				t.Fatalf("releasing nothing = %v, %v; want no error", ip, err)
			}
		})
	}
}

func TestCorruptStateNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	cidr := netip.MustParsePrefix("10.100.1.0/24")
	path := filepath.Join(dir, "10.100.1.0-24.json")
	for _, content := range []string{`{"v":1,`, `{"v":2,"cidr":"10.100.1.0/24"}`, `{"v":1,"cidr":"10.100.1.0/24","owners":{"10.9.9.9":"x"}}`} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir, cidr)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("Open with %s = %v; want an error naming %s", content, err, path)
		}
	}
}
