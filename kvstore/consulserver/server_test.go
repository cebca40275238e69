package consulserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testgate"
	"github.com/weftnet/weft/internal/toolcache"
	"github.com/weftnet/weft/kvstore/consulserver"
)

func binary(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin, err := toolcache.Ensure(ctx, toolcache.Consul(), os.Stderr)
	if err != nil {
		testgate.Skip(t, "consul binary unavailable: "+err.Error())
	}
	return bin
}

func start(t *testing.T, bin string) *consulserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := consulserver.Start(ctx, consulserver.Options{DataDir: t.TempDir(), Binary: bin, Log: t.Output()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func leader(endpoint string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(endpoint + "/v1/status/leader")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var l string
	err = json.NewDecoder(resp.Body).Decode(&l)
	return l, err
}

// TestSideBySide runs two agents at once and restarts one on the same port.
func TestSideBySide(t *testing.T) {
	bin := binary(t)
	a, b := start(t, bin), start(t, bin)
	if a.Endpoint() == b.Endpoint() {
		t.Fatalf("two agents share endpoint %s", a.Endpoint())
	}
	for _, s := range []*consulserver.Server{a, b} {
		if l, err := leader(s.Endpoint()); err != nil || l == "" {
			t.Fatalf("agent %s: leader %q, err %v", s.Endpoint(), l, err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := a.Endpoint()
	if err := a.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Endpoint() != before {
		t.Fatalf("endpoint moved from %s to %s on restart", before, a.Endpoint())
	}
	if l, err := leader(a.Endpoint()); err != nil || l == "" {
		t.Fatalf("restarted agent: leader %q, err %v", l, err)
	}

	b.Kill()
	if _, err := leader(b.Endpoint()); err == nil {
		t.Fatalf("killed agent %s still answers", b.Endpoint())
	}
	if err := b.Stop(); err != nil {
		t.Fatalf("stop after kill: %v", err)
	}
}
