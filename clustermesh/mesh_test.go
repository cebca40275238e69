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

// global is a cluster with global addressing: pod CIDR pod, global CIDR g
// and service CIDR 10.96.0.0/16.
func global(name string, id uint32, pod, g string) Info {
	i := info(name, id, "tunnel", pod)
	i.GlobalCIDR = netip.MustParsePrefix(g)
	i.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")}
	return i
}

// TestCheckGlobalAddressing: overlapping pod CIDRs are accepted only when
// both clusters have global addressing; conflicting ranges are refused
// naming both clusters and both ranges.
func TestCheckGlobalAddressing(t *testing.T) {
	c1 := global("c1", 1, "10.100.0.0/16", "242.1.0.0/16")
	c1plain := info("c1", 1, "tunnel", "10.100.0.0/16")
	cases := []struct {
		name string
		a, b Info
		want []string // substrings of the error; none: accepted
	}{
		{"overlapping pods, both global", c1, global("c2", 2, "10.100.0.0/16", "242.2.0.0/16"), nil},
		{"disjoint pods, one global", c1, info("c2", 2, "tunnel", "10.101.0.0/16"), nil},
		{"disjoint pods, neither global", c1plain, info("c2", 2, "tunnel", "10.101.0.0/16"), nil},
		{"overlapping pods, neither global", c1plain, info("c2", 2, "tunnel", "10.100.0.0/16"),
			[]string{"pod CIDRs overlap (c1: 10.100.0.0/16, c2: 10.100.0.0/16)", "neither has global addressing"}},
		{"overlapping pods, only c1 global", c1, info("c2", 2, "tunnel", "10.100.4.0/24"),
			[]string{"pod CIDRs overlap (c1: 10.100.0.0/16, c2: 10.100.4.0/24)", "c2 has no global addressing"}},
		{"overlapping pods, only c2 global", c1plain, global("c2", 2, "10.100.0.0/16", "242.2.0.0/16"),
			[]string{"c1 has no global addressing"}},
		{"same global CIDR", c1, global("c2", 2, "10.100.0.0/16", "242.1.0.0/16"),
			[]string{"global CIDRs overlap (c1: 242.1.0.0/16, c2: 242.1.0.0/16)"}},
		{"overlapping global CIDRs", c1, global("c2", 2, "10.100.0.0/16", "242.0.0.0/8"),
			[]string{"global CIDRs overlap (c1: 242.1.0.0/16, c2: 242.0.0.0/8)"}},
		{"global CIDR over the other's pods", c1, global("c2", 2, "242.1.0.0/16", "242.2.0.0/16"),
			[]string{"global CIDR 242.1.0.0/16 of c1 overlaps pod CIDR 242.1.0.0/16 of c2"}},
		{"global CIDR over a plain cluster's pods", c1, info("c2", 2, "tunnel", "242.1.128.0/17"),
			[]string{"global CIDR 242.1.0.0/16 of c1 overlaps pod CIDR 242.1.128.0/17 of c2"}},
		{"global CIDR over the other's services", c1, func() Info {
			i := global("c2", 2, "10.100.0.0/16", "242.2.0.0/16")
			i.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("242.1.0.0/20")}
			return i
		}(), []string{"global CIDR 242.1.0.0/16 of c1 overlaps service CIDR 242.1.0.0/20 of c2"}},
		{"the other's global CIDR over our services", func() Info {
			i := global("c1", 1, "10.100.0.0/16", "242.1.0.0/16")
			i.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("242.2.0.0/24")}
			return i
		}(), global("c2", 2, "10.100.0.0/16", "242.2.0.0/16"),
			[]string{"global CIDR 242.2.0.0/16 of c2 overlaps service CIDR 242.2.0.0/24 of c1"}},
		{"overlapping pods in native routing", func() Info { i := c1; i.Routing = "native"; return i }(), func() Info {
			i := global("c2", 2, "10.100.0.0/16", "242.2.0.0/16")
			i.Routing = "native"
			return i
		}(), []string{"pod CIDRs overlap (c1: 10.100.0.0/16, c2: 10.100.0.0/16) in native routing", "only in tunnel routing"}},
		{"disjoint global pods in native routing", func() Info { i := c1; i.Routing = "native"; return i }(), func() Info {
			i := global("c2", 2, "10.101.0.0/16", "242.2.0.0/16")
			i.Routing = "native"
			return i
		}(), nil},
		{"global CIDR too small for the pool", c1, global("c2", 2, "10.100.0.0/16", "242.2.0.0/17"),
			[]string{"cluster c2", "global CIDR 242.2.0.0/17"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, err := range []error{CheckPair(tc.a, tc.b), CheckJoin(tc.a, nil, tc.b)} {
				if tc.want == nil {
					if err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err == nil {
					t.Fatalf("accepted, want an error containing %q", tc.want)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%v: want it to contain %q", err, w)
					}
				}
			}
		})
	}
}

// TestCheckJoinGlobal: a candidate is checked against every cluster already
// connected to the local one, naming that cluster.
func TestCheckJoinGlobal(t *testing.T) {
	local := global("c1", 1, "10.100.0.0/16", "242.1.0.0/16")
	remotes := []Info{global("c2", 2, "10.100.0.0/16", "242.2.0.0/16"), info("c4", 4, "tunnel", "10.104.0.0/16")}
	for _, tc := range []struct {
		name string
		cand Info
		want []string
	}{
		{"third overlapping global cluster", global("c3", 3, "10.100.0.0/16", "242.3.0.0/16"), nil},
		{"reconnecting c2", remotes[0], nil},
		{"c2's global CIDR", global("c3", 3, "10.100.0.0/16", "242.2.0.0/16"),
			[]string{"connect c3 to c1", "global CIDRs overlap (c3: 242.2.0.0/16, c2: 242.2.0.0/16)", "c2 is connected to c1"}},
		{"overlapping a plain remote's pods", global("c3", 3, "10.104.0.0/16", "242.3.0.0/16"),
			[]string{"pod CIDRs overlap (c3: 10.104.0.0/16, c4: 10.104.0.0/16)", "c4 has no global addressing", "c4 is connected to c1"}},
		{"global CIDR over a remote's pods", global("c3", 3, "10.100.0.0/16", "10.104.0.0/16"),
			[]string{"global CIDR 10.104.0.0/16 of c3 overlaps pod CIDR 10.104.0.0/16 of c4"}},
		{"plain candidate overlapping c2", info("c3", 3, "tunnel", "10.100.0.0/24"),
			[]string{"connect c1 and c3", "c3 has no global addressing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckJoin(local, remotes, tc.cand)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrIncompatible) {
				t.Fatalf("got %v, want ErrIncompatible", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v: want it to contain %q", err, w)
				}
			}
		})
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

// TestEnableRefusesGlobalChangeWhileConnected: enable with another
// --global-cidr is refused while remotes/<cluster> exist, naming them and
// what to do, and apiserver.json stays as it was; once disconnected (no
// remote directory) the change is written.
func TestEnableRefusesGlobalChangeWhileConnected(t *testing.T) {
	d := Dir(t.TempDir() + "/c1")
	o := EnableOptions{Dir: d, Cluster: "c1", ID: 1, Config: map[string]any{"routing-mode": "tunnel", "global-cidr": "242.1.0.0/16"}}
	if err := Enable(o); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"c2", "c3"} {
		if err := os.MkdirAll(d.Remote(r), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	before, err := os.ReadFile(d.Path(ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		global any
		wants  []string
	}{
		{"another global CIDR", "242.9.0.0/16", []string{"--global-cidr 242.9.0.0/16", "c1 has the global CIDR 242.1.0.0/16", "connected to c2, c3", "disconnect first"}},
		{"global addressing off", nil, []string{"--global-cidr none", "connected to c2, c3", "disconnect first"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changed := o
			changed.Config = map[string]any{"routing-mode": "tunnel"}
			if tc.global != nil {
				changed.Config["global-cidr"] = tc.global
			}
			err := Enable(changed)
			if err == nil {
				t.Fatal("enable changed the global CIDR of a connected cluster")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v: want it to contain %q", err, w)
				}
			}
			if after, _ := os.ReadFile(d.Path(ConfigFile)); string(after) != string(before) {
				t.Errorf("apiserver.json changed by the refused enable:\n%s", after)
			}
		})
	}
	if err := Enable(o); err != nil { // the same global CIDR
		t.Fatalf("enable with the unchanged global CIDR: %v", err)
	}
	if err := os.RemoveAll(d.Path(RemotesSubdir)); err != nil {
		t.Fatal(err)
	}
	o.Config = map[string]any{"routing-mode": "tunnel", "global-cidr": "242.9.0.0/16"}
	if err := Enable(o); err != nil {
		t.Fatalf("enable with a new global CIDR once disconnected: %v", err)
	}
	if after, _ := os.ReadFile(d.Path(ConfigFile)); !strings.Contains(string(after), "242.9.0.0/16") {
		t.Errorf("apiserver.json after the change: %s", after)
	}
}
