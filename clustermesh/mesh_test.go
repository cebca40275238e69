package clustermesh

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/weftnet/weft/state/records"
)

func info(name string, id uint32, routing, cidr string) Info {
	return Info{Name: name, ID: id, Routing: routing, PodCIDRs: []netip.Prefix{netip.MustParsePrefix(cidr)}}
}

func TestCheckPair(t *testing.T) {
	a := info("c1", 1, "tunnel", "10.100.0.0/16")
	cases := []struct {
		name string
		b    Info
		want string // substring of the error, "" for none
	}{
		{"compatible", info("c2", 2, "tunnel", "10.101.0.0/16"), ""},
		{"same name", info("c1", 2, "tunnel", "10.101.0.0/16"), `both clusters are named "c1"`},
		{"same id", info("c2", 1, "tunnel", "10.101.0.0/16"), "both have cluster id 1"},
		{"routing differs", info("c2", 2, "native", "10.101.0.0/16"), "routing modes differ"},
		{"cidrs overlap", info("c2", 2, "tunnel", "10.100.128.0/17"), "pod CIDRs overlap"},
		{"bad name", info("C_2", 2, "tunnel", "10.101.0.0/16"), "lowercase DNS label"},
		{"name too long", info(strings.Repeat("a", 33), 2, "tunnel", "10.101.0.0/16"), "1 to 32 characters"},
		{"id out of range", info("c2", 256, "tunnel", "10.101.0.0/16"), "accepted is 1 to 255"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPair(a, tc.b)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestCheckJoin(t *testing.T) {
	local := info("c1", 1, "tunnel", "10.100.0.0/16")
	remotes := []Info{info("c2", 2, "tunnel", "10.101.0.0/16")}
	if err := CheckJoin(local, remotes, info("c2", 2, "tunnel", "10.101.0.0/16")); err != nil {
		t.Fatalf("reconnecting c2: %v", err)
	}
	if err := CheckJoin(local, remotes, info("c3", 2, "tunnel", "10.102.0.0/16")); !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), "already used by c2") {
		t.Fatalf("c3 with c2's id: %v", err)
	}
	if err := CheckJoin(local, remotes, info("c3", 3, "tunnel", "10.101.4.0/24")); !errors.Is(err, ErrIncompatible) {
		t.Fatalf("c3 overlapping c2: %v", err)
	}
}

func TestAcceptIdentity(t *testing.T) {
	for _, tc := range []struct {
		id   records.ID
		want bool
	}{
		{records.ClusterIdentity(2, 256), true},
		{records.ClusterIdentity(2, 65535), true},
		{records.ClusterIdentity(2, 255), false},
		{records.ClusterIdentity(1, 300), false},
		{records.ClusterIdentity(3, 300), false},
		{records.IDWorld, true},
		{records.IDRemoteNode, true},
		{5, false},
	} {
		if got := AcceptIdentity(2, tc.id); got != tc.want {
			t.Errorf("AcceptIdentity(2, %d) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

// TestEnable: idempotent, keeps the CA, refuses a directory of another cluster.
func TestEnable(t *testing.T) {
	d := Dir(t.TempDir() + "/c1")
	var steps []string
	o := EnableOptions{Dir: d, Cluster: "c1", ID: 1, Hosts: []string{"192.168.0.11"}, Config: map[string]any{"routing-mode": "tunnel"},
		Step: func(f string, a ...any) { steps = append(steps, f) }}
	if err := Enable(o); err != nil {
		t.Fatal(err)
	}
	ca1, err := os.ReadFile(d.Path(CAFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{Server, UserRoot, UserAdmin, UserAgent} {
		cert, err := os.ReadFile(d.Cert(name))
		if err != nil {
			t.Fatal(err)
		}
		if cn, err := CommonName(cert); err != nil || cn != name {
			t.Fatalf("%s: CN %q %v", name, cn, err)
		}
	}
	if err := Enable(o); err != nil {
		t.Fatal(err)
	}
	ca2, _ := os.ReadFile(d.Path(CAFile))
	if string(ca1) != string(ca2) {
		t.Fatal("second enable replaced the CA")
	}
	other := o
	other.Cluster, other.ID = "c2", 2
	if err := Enable(other); err == nil || !strings.Contains(err.Error(), "already belongs to cluster c1") {
		t.Fatalf("enable c2 in c1's directory: %v", err)
	}
	bad := o
	bad.Cluster = "Not_A_Label"
	if err := Enable(bad); err == nil {
		t.Fatal("enable with a bad name succeeded")
	}
	dflt := o
	dflt.Dir, dflt.Cluster = Dir(t.TempDir()+"/default"), "default"
	if err := Enable(dflt); err == nil || !strings.Contains(err.Error(), "reserved for a cluster outside any mesh") {
		t.Fatalf("enable default: %v, want refused as reserved", err)
	}
	if _, err := os.Stat(dflt.Dir.Path(CAFile)); err == nil {
		t.Fatal("enable default created a CA")
	}
	// The remote CA exists, is kept, and is not the cluster's CA.
	rca, err := LoadRemoteCA(string(d))
	if err != nil {
		t.Fatal(err)
	}
	if string(rca.CertPEM) == string(ca1) {
		t.Fatal("the remote CA is the cluster's CA")
	}
}
