package records

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestValidateGlobalCIDR(t *testing.T) {
	pool := prefixes("10.100.0.0/16")
	svc := prefixes("10.96.0.0/16")
	for _, tc := range []struct {
		name, global string
		want         string // substring of the error, "" for none
	}{
		{"same size as the pool", "242.1.0.0/16", ""},
		{"larger than the pool", "242.0.0.0/8", ""},
		{"smaller than the pool", "242.1.0.0/17", "the IPv4 pod CIDR pool"},
		{"overlaps the pod pool", "10.100.0.0/16", "overlaps the cluster's pod CIDR 10.100.0.0/16"},
		{"overlaps the service CIDR", "10.96.0.0/15", "overlaps the cluster's service CIDR 10.96.0.0/16"},
		{"not masked", "242.1.2.3/16", "masked IPv4 prefix"},
		{"IPv6", "fd00::/104", "masked IPv4 prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateGlobalCIDR(netip.MustParsePrefix(tc.global), pool, svc)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}

// TestGlobalAddr: pool prefixes are laid end to end; the mapping is a
// bijection between the IPv4 pool and the start of the global CIDR.
func TestGlobalAddr(t *testing.T) {
	global := netip.MustParsePrefix("242.3.0.0/16")
	pool := prefixes("10.100.0.0/17", "fd00::/104", "10.200.0.0/24")
	for _, tc := range []struct{ pod, global string }{
		{"10.100.0.0", "242.3.0.0"},
		{"10.100.1.7", "242.3.1.7"},
		{"10.100.127.255", "242.3.127.255"},
		{"10.200.0.0", "242.3.128.0"},
		{"10.200.0.9", "242.3.128.9"},
		{"10.101.0.1", ""},
		{"fd00::1", ""},
	} {
		got, ok := GlobalAddr(global, pool, netip.MustParseAddr(tc.pod))
		if tc.global == "" {
			if ok {
				t.Errorf("GlobalAddr(%s) = %v, want none", tc.pod, got)
			}
			continue
		}
		if !ok || got.String() != tc.global {
			t.Errorf("GlobalAddr(%s) = %v %v, want %s", tc.pod, got, ok, tc.global)
		}
		back, ok := PodAddr(global, pool, got)
		if !ok || back.String() != tc.pod {
			t.Errorf("PodAddr(%v) = %v %v, want %s", got, back, ok, tc.pod)
		}
	}
	for _, g := range []string{"242.3.129.0", "242.4.0.1", "10.100.0.1"} {
		if p, ok := PodAddr(global, pool, netip.MustParseAddr(g)); ok {
			t.Errorf("PodAddr(%s) = %v, want none", g, p)
		}
	}
	if _, ok := GlobalAddr(netip.Prefix{}, pool, netip.MustParseAddr("10.100.0.1")); ok {
		t.Error("GlobalAddr without a global CIDR gave an address")
	}
}

// TestClusterConfigCompatible: a record without global addressing encodes
// exactly as before the field existed, an old record decodes, and a new
// record decodes for a reader that knows nothing of the new fields.
func TestClusterConfigCompatible(t *testing.T) {
	k := NewKeys(testPrefix)
	key := k.ClusterConfig("c1")
	old := `{"v":1,"name":"c1","id":1,"podCIDRs":["10.100.0.0/16"],"podCIDRMaskSize":24,"routing":"tunnel"}`
	cc, err := k.DecodeClusterConfig(key, []byte(old))
	if err != nil || cc.GlobalCIDR.IsValid() || cc.ServiceCIDRs != nil {
		t.Fatalf("decode an old record: %+v %v", cc, err)
	}
	b, err := Encode(key, &cc)
	if err != nil || string(b) != old {
		t.Fatalf("re-encoded old record:\n%s\nwant\n%s (%v)", b, old, err)
	}
	cc.GlobalCIDR = netip.MustParsePrefix("242.1.0.0/16")
	cc.ServiceCIDRs = prefixes("10.96.0.0/16")
	b, err = Encode(key, &cc)
	if err != nil {
		t.Fatal(err)
	}
	var oldReader struct {
		Version  int            `json:"v"`
		Name     string         `json:"name"`
		ID       uint32         `json:"id"`
		PodCIDRs []netip.Prefix `json:"podCIDRs"`
		Routing  string         `json:"routing"`
	}
	if err := json.Unmarshal(b, &oldReader); err != nil || oldReader.Name != "c1" || oldReader.Version != 1 || len(oldReader.PodCIDRs) != 1 {
		t.Fatalf("an old reader of %s: %+v %v", b, oldReader, err)
	}
	back, err := k.DecodeClusterConfig(key, b)
	if err != nil || back.GlobalCIDR != cc.GlobalCIDR {
		t.Fatalf("decode %s: %+v %v", b, back, err)
	}
	cc.GlobalCIDR = netip.MustParsePrefix("10.100.128.0/17")
	if _, err := Encode(key, &cc); err == nil || !strings.Contains(err.Error(), "overlaps the cluster's pod CIDR") {
		t.Fatalf("a global CIDR inside the pod pool: %v", err)
	}
}

func TestGlobalPrefix(t *testing.T) {
	global := netip.MustParsePrefix("242.3.0.0/16")
	for _, tc := range []struct {
		pool []netip.Prefix
		p    string
		want string // "" for none
	}{
		{prefixes("10.100.0.0/16"), "10.100.7.0/24", "242.3.7.0/24"},
		{prefixes("10.100.0.0/17", "10.200.0.0/24"), "10.200.0.0/24", "242.3.128.0/24"},
		{prefixes("10.200.0.0/24", "10.100.0.0/17"), "10.100.0.0/24", "242.3.1.0/24"},
		{prefixes("10.200.0.0/24", "10.100.0.0/17"), "10.100.0.0/17", ""}, // at offset 256: not a /17 of the global CIDR
		{prefixes("10.100.0.0/16"), "10.101.0.0/24", ""},
		{prefixes("10.100.0.0/16"), "fd00::/120", ""},
	} {
		got, ok := GlobalPrefix(global, tc.pool, netip.MustParsePrefix(tc.p))
		if tc.want == "" && ok || tc.want != "" && (!ok || got.String() != tc.want) {
			t.Errorf("GlobalPrefix(%v in %v) = %v %v, want %q", tc.p, tc.pool, got, ok, tc.want)
		}
	}
}
