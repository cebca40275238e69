package connectivity

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
)

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"cx-c1-n1-a", true},
		{"cx-a", true},
		{"cx-" + strings.Repeat("a", 60), true},
		{"cx-" + strings.Repeat("a", 61), false},
		{"web-1", false},
		{"cx-", false},
		{"cx-A", false},
		{"cx-a-", false},
		{"cx-a/../../etc", false},
		{"", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkName(tc.name); (err == nil) != tc.ok {
				t.Errorf("checkName(%q) = %v, want ok %v", tc.name, err, tc.ok)
			}
		})
	}
}

// TestRefusals: what the API refuses before it creates anything, without
// root. A refused request leaves nothing in the state directory.
func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{Node: "n1", StateDir: dir}, slog.New(slog.DiscardHandler))
	defer s.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func() error
		code codes.Code
		msg  string
	}{
		{"create without prefix", func() error {
			_, err := s.CreateTestPod(ctx, &agentapi.CreateTestPodRequest{Name: "web-1"})
			return err
		}, codes.InvalidArgument, `"web-1": accepted are names starting with "cx-"`},
		{"delete without prefix", func() error {
			_, err := s.DeleteTestPod(ctx, &agentapi.DeleteTestPodRequest{Name: "web-1"})
			return err
		}, codes.InvalidArgument, "never touches a real pod"},
		{"empty label key", func() error {
			_, err := s.CreateTestPod(ctx, &agentapi.CreateTestPodRequest{Name: "cx-a", Labels: map[string]string{"": "x"}})
			return err
		}, codes.InvalidArgument, "empty key"},
		{"missing conflist", func() error {
			_, err := s.CreateTestPod(ctx, &agentapi.CreateTestPodRequest{Name: "cx-a", CniConflist: filepath.Join(dir, "none.conflist")})
			return err
		}, codes.FailedPrecondition, "read the node's CNI configuration list"},
		{"ping bad destination", func() error {
			_, err := s.Ping(ctx, &agentapi.PingRequest{Dst: "host2"})
			return err
		}, codes.InvalidArgument, `destination "host2"`},
		{"ping from a real pod", func() error {
			_, err := s.Ping(ctx, &agentapi.PingRequest{From: "web-1", Dst: "10.0.0.1"})
			return err
		}, codes.InvalidArgument, "never touches a real pod"},
		{"ping from a missing test pod", func() error {
			_, err := s.Ping(ctx, &agentapi.PingRequest{From: "cx-none", Dst: "10.0.0.1"})
			return err
		}, codes.NotFound, "no test pod cx-none on node n1"},
		{"serve without ports", func() error {
			return s.ServeEcho(&agentapi.ServeEchoRequest{Name: "n1"}, nil)
		}, codes.InvalidArgument, "TCP and UDP ports"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %v, want %v containing %q", err, tc.code, tc.msg)
			}
		})
	}
	// Deleting a test pod that does not exist is not an error.
	resp, err := s.DeleteTestPod(ctx, &agentapi.DeleteTestPodRequest{Name: "cx-none"})
	if err != nil || resp.Existed {
		t.Errorf("delete a missing test pod: %v, %v; want existed false, no error", resp, err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "connectivity"))
	if len(ents) > 0 {
		t.Errorf("refused requests left %d entries in the state directory", len(ents))
	}
}
