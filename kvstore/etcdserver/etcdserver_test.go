package etcdserver

import (
	"context"
	"net"
	"strings"
	"testing"
)

// TestStartRetriesTakenPort: a port Start chose that another process took
// before etcd bound it is replaced by a new one; a port the caller gave
// is not (the error names it).
func TestStartRetriesTakenPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	taken := "http://" + busy.Addr().String()
	calls := 0
	pickURLs = func(scheme string, n int) ([]string, error) {
		calls++
		if calls == 1 {
			return []string{taken}, nil // taken between choosing and binding
		}
		return freeURLs(scheme, n)
	}
	defer func() { pickURLs = freeURLs }()
	s, err := Start(context.Background(), Options{DataDir: t.TempDir(), LogLevel: "fatal"})
	if err != nil {
		t.Fatalf("start with a chosen port taken: %v", err)
	}
	s.Stop()
	if calls < 3 {
		t.Errorf("ports chosen %d times, want a second choice after the taken one", calls)
	}

	pickURLs = freeURLs
	_, err = Start(context.Background(), Options{DataDir: t.TempDir(), LogLevel: "fatal", ClientURLs: []string{taken}})
	if err == nil || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Errorf("start on a given taken port: %v, want an error naming %s", err, busy.Addr())
	}
}
