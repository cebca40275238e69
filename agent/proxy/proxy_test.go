package proxy

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string // "" valid
	}{
		{DefaultConfig(), ""},
		{Config{IngressPort: 0, EgressPort: 0}, ""},
		{Config{IngressPort: 70000, EgressPort: 1}, "--proxy-ingress-port 70000: want 0 (off) or 1-65535"},
		{Config{IngressPort: 1, EgressPort: -1}, "--proxy-egress-port -1: want 0 (off) or 1-65535"},
		{Config{IngressPort: 15080, EgressPort: 15080}, "both 15080: want two ports"},
		{Config{FQDNMinTTL: -time.Second}, "--tofqdns-min-ttl -1s: want 0 or more"},
		{Config{FQDNMaxNamesPerEndpoint: -1}, "--tofqdns-endpoint-max-names -1: want 0 (no bound) or more"},
	} {
		err := tc.cfg.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: got %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
