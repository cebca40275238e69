package policy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/weftnet/weft/state/records"
)

// FuzzParse feeds arbitrary input to the parser: it must never panic, and
// every policy it accepts must parse again from its own document to the
// same policy, and compute without panicking. The committed seed corpus
// (testdata/fuzz/FuzzParse) holds the example documents.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	u := NewUniverse()
	u.Upsert(records.ClusterIdentity(1, 256), pod("default", "org=empire", "class=deathstar"))
	u.Upsert(records.ClusterIdentity(1, 257), pod("team-a", "app=frontend"))
	f.Fuzz(func(t *testing.T, input []byte) {
		docs := ParseDocuments(input)
		repo := NewRepository()
		for _, d := range docs {
			if (d.Err == nil) == (d.Policy == nil) {
				t.Fatalf("document %d: policy %v and error %v", d.Index, d.Policy, d.Err)
			}
			if d.Err != nil {
				continue
			}
			p := d.Policy
			again, err := Parse([]byte(p.Document))
			if err != nil || len(again) != 1 || again[0].String() != p.String() || len(again[0].Rules) != len(p.Rules) {
				t.Fatalf("document %d does not parse again to %s: %v", d.Index, p, err)
			}
			for _, r := range p.Rules {
				for _, pr := range append(r.Ingress, r.Egress...) {
					for _, pp := range pr.Ports {
						if pp.EndPort != 0 && int(pp.EndPort)-int(pp.Port)+1 > MaxPortRange {
							t.Fatalf("port range %v accepted", pp)
						}
					}
				}
			}
			repo.Upsert(p)
		}
		cidrs := NewCIDRIdentities()
		cidrs.Sync(repo.Prefixes())
		u.SetCIDRs(cidrs.All())
		for _, ls := range u.ids {
			repo.Compute(ls, u)
		}
		u.ForgetSelectors()
	})
}
