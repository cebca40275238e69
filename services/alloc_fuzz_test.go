package services

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/kvstoretest"
)

// FuzzApplyManifest feeds manifests through parsing and allocation against
// a real etcd: a manifest either applies whole or leaves every key of the
// cluster's services at its revision.
func FuzzApplyManifest(f *testing.F) {
	if b, err := os.ReadFile("testdata/web.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {clusterIP: 10.96.0.7, ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec: {clusterIP: 10.96.0.7, ports: [{port: 80}]}\n"))
	f.Add([]byte("apiVersion: v1\nkind: Service\nmetadata: {name: c}\nspec: {type: NodePort, ports: [{port: 80, nodePort: 30001}, {port: 81, nodePort: 30001}]}\n"))
	f.Add([]byte("apiVersion: v1\nkind: Service\nmetadata: {name: d}\nspec: {clusterIP: 10.97.0.1, ports: [{port: 80}]}\n"))
	srv := kvstoretest.StartEtcd(f)
	c := srv.NewClient(f)
	a := newAllocator(f, c)
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		before := snapshot(ctx, t, c, a)
		specs, err := ParseManifest(data)
		if err != nil {
			return
		}
		written, err := a.Apply(ctx, CreateOrUpdate, specs...)
		after := snapshot(ctx, t, c, a)
		if err != nil && !slices.Equal(before, after) {
			t.Fatalf("refused apply (%v) changed the store", err)
		}
		if err == nil && len(written) != len(specs) {
			t.Fatalf("applied %d of %d", len(written), len(specs))
		}
	})
}

func snapshot(ctx context.Context, t *testing.T, c kvstore.Client, a *Allocator) []string {
	kvs, err := c.List(ctx, a.keys.ServicesPrefix("c1"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, kv := range kvs {
		out = append(out, kv.Key+"@"+strconv.FormatUint(kv.Revision, 10))
	}
	return out
}
