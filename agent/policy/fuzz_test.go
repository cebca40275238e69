package policy

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/records"
)

// FuzzPolicyImport imports arbitrary input: when the import fails, the
// store must not have changed; when it succeeds, every document is stored.
func FuzzPolicyImport(f *testing.F) {
	for _, name := range []string{"deathstar.yaml", "team-isolation.yaml", "team-isolation-k8s.yaml", "cidr-entities.yaml"} {
		b, err := os.ReadFile("../../policy/testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(append(b, "---\nkind: NetworkPolicy\n"...))
	}
	f.Add([]byte("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: x\nspec:\n  endpointSelector: {}\n  egress: [{toPorts: [{ports: [{port: \"1\", endPort: 9999}]}]}]\n"))
	r := newPolicyRigLog(f, kvstoretest.StartEtcd(f), slog.New(slog.DiscardHandler))
	r.importFile(f, "team-isolation.yaml")
	base := r.storedPolicies(f)
	f.Fuzz(func(t *testing.T, input []byte) {
		resp, err := r.api.Import(context.Background(), &agentapi.ImportPolicyRequest{Documents: input})
		after := r.storedPolicies(t)
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("import failed with %v, want InvalidArgument", err)
			}
			if !slices.Equal(base, after) {
				t.Fatalf("a refused import changed the store:\nbefore %q\nafter  %q", base, after)
			}
			return
		}
		for _, d := range resp.Documents {
			ns := d.Namespace
			if ns == "" {
				ns = records.PolicyClusterwide
			}
			if _, err := r.store.Get(context.Background(), r.keys.Policy(ns, d.Name)); err != nil {
				t.Fatalf("document %d (%s) imported but not stored: %v", d.Index, d.Name, err)
			}
		}
		// Put the store back for the next input.
		if err := r.deleteAllPolicies(); err != nil {
			t.Fatal(err)
		}
		r.importFile(t, "team-isolation.yaml")
	})
}
