package fqdn

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSelectors(t *testing.T) {
	for _, tc := range []struct {
		sel       Selector
		match     []string
		noMatch   []string
		wantError string
	}{
		{sel: Selector{MatchName: "api.github.com"}, match: []string{"api.github.com", "API.GitHub.com.", "api.github.com."},
			noMatch: []string{"github.com", "x.api.github.com", "api.github.com.evil.io", "api-github.com"}},
		{sel: Selector{MatchPattern: "*.cilium.io"}, match: []string{"docs.cilium.io", "a-b_c.cilium.io.", "DOCS.cilium.io"},
			noMatch: []string{"cilium.io", "a.b.cilium.io", "docs.cilium.io.evil.com", "docsxcilium.io"}},
		{sel: Selector{MatchPattern: "api*.example.com"}, match: []string{"api.example.com", "api-v2.example.com"},
			noMatch: []string{"www.example.com", "api.v2.example.com"}},
		{sel: Selector{MatchPattern: "*"}, match: []string{"anything.at.all", ".", "x"}},
		{sel: Selector{}, wantError: "needs matchName or matchPattern"},
		{sel: Selector{MatchName: "a.com", MatchPattern: "*.com"}, wantError: "give one"},
		{sel: Selector{MatchName: "*.com"}, wantError: `matchName "*.com": want a DNS name`},
		{sel: Selector{MatchName: "a..com"}, wantError: "want a DNS name"},
		{sel: Selector{MatchName: strings.Repeat("a", 254)}, wantError: "at most 253 characters"},
		{sel: Selector{MatchPattern: "(.*).com"}, wantError: `matchPattern "(.*).com"`},
		{sel: Selector{MatchPattern: "x.com/"}, wantError: "'*' stands for any characters within one label"},
	} {
		m, err := Compile(tc.sel)
		if tc.wantError != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantError) {
				t.Errorf("Compile(%+v) = %v; want an error saying %q", tc.sel, err, tc.wantError)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Compile(%+v): %v", tc.sel, err)
		}
		for _, n := range tc.match {
			if !m.Match(n) {
				t.Errorf("%s does not match %q", tc.sel, n)
			}
		}
		for _, n := range tc.noMatch {
			if m.Match(n) {
				t.Errorf("%s matches %q", tc.sel, n)
			}
		}
	}
}

// FuzzSelector: no input makes Compile or Match panic; a name selector
// matches its own name and a pattern without '*' matches exactly its name;
// a '*' never matches across a dot.
func FuzzSelector(f *testing.F) {
	for _, s := range []string{"api.github.com", "*.cilium.io", "*", "a*b.c", "..", "*.*", strings.Repeat("a.", 130)} {
		f.Add(s, "x.cilium.io")
	}
	f.Fuzz(func(t *testing.T, sel, name string) {
		if m, err := Compile(Selector{MatchName: sel}); err == nil {
			if !m.Match(sel) || !m.Match(strings.ToUpper(Normalize(sel))+".") {
				t.Fatalf("matchName %q does not match itself", sel)
			}
			_ = m.Match(name)
		}
		m, err := Compile(Selector{MatchPattern: sel})
		if err != nil {
			return
		}
		matched := m.Match(name)
		if !strings.Contains(sel, "*") && matched != (Normalize(name) == Normalize(sel)) {
			t.Fatalf("matchPattern %q without '*': Match(%q) = %v", sel, name, matched)
		}
		if Normalize(sel) != "*" && matched && strings.Count(Normalize(name), ".") != strings.Count(Normalize(sel), ".") {
			t.Fatalf("matchPattern %q matched %q across a dot", sel, name)
		}
	})
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// TestCache: answers are kept for their TTL but at least the minimum,
// renewed by later answers, selected by matchers, bounded per name,
// expired, and saved and loaded across a restart.
func TestCache(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	c := NewCache(10 * time.Second)
	if got := c.Observe(netip.Addr{}, "API.github.com.", addrs("140.82.112.5", "140.82.112.6"), 2*time.Second, now); !slices.Equal(got, addrs("140.82.112.5", "140.82.112.6")) {
		t.Fatalf("first answer added %v", got)
	}
	if got := c.Observe(netip.Addr{}, "api.github.com", addrs("140.82.112.6", "::ffff:140.82.112.7"), time.Minute, now); !slices.Equal(got, addrs("140.82.112.7")) {
		t.Fatalf("second answer added %v, want only the new address (unmapped)", got)
	}
	c.Observe(netip.Addr{}, "docs.cilium.io", addrs("104.198.14.52"), time.Hour, now)
	exact, _ := Compile(Selector{MatchName: "api.github.com"})
	wild, _ := Compile(Selector{MatchPattern: "*.cilium.io"})
	if got := c.Lookup(exact, now.Add(5*time.Second)); !slices.Equal(got, addrs("140.82.112.5", "140.82.112.6", "140.82.112.7")) {
		t.Errorf("lookup within the minimum TTL: %v", got)
	}
	// .5 had a 2 s TTL, raised to the 10 s minimum; .6 was renewed to 1 min.
	gone := c.Expire(now.Add(11 * time.Second))
	if len(gone) != 1 || gone[0].IP != netip.MustParseAddr("140.82.112.5") || gone[0].Name != "api.github.com" {
		t.Errorf("expired after 11 s: %v, want api.github.com 140.82.112.5 only", gone)
	}
	if got := c.Lookup(wild, now.Add(11*time.Second)); !slices.Equal(got, addrs("104.198.14.52")) {
		t.Errorf("*.cilium.io: %v", got)
	}

	for i := range MaxIPsPerName + 6 {
		c.Observe(netip.Addr{}, "cdn.example.com", addrs(fmt.Sprintf("10.1.0.%d", i)), time.Duration(i+1)*time.Minute, now)
	}
	cdn, _ := Compile(Selector{MatchName: "cdn.example.com"})
	got := c.Lookup(cdn, now)
	if len(got) != MaxIPsPerName || got[0] != netip.MustParseAddr("10.1.0.6") {
		t.Errorf("cdn.example.com keeps %d addresses from %v; want the %d that expire last", len(got), got[0], MaxIPsPerName)
	}

	path := filepath.Join(t.TempDir(), "fqdn", "cache.json")
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path, 10*time.Second, now.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Lookup(exact, now.Add(2*time.Minute)); len(got) != 0 {
		t.Errorf("after restart 2 min later, api.github.com's 1-minute answers are still there: %v", got)
	}
	if got := back.Lookup(wild, now.Add(2*time.Minute)); !slices.Equal(got, addrs("104.198.14.52")) {
		t.Errorf("after restart, *.cilium.io: %v, want the hour-long answer", got)
	}
	if want := c.Entries(); len(back.Entries()) >= len(want) || back.Entries()[0].Expires.IsZero() {
		t.Errorf("loaded %d entries of %d saved; want fewer (the expired dropped)", len(back.Entries()), len(want))
	}
	if empty, err := Load(filepath.Join(t.TempDir(), "none.json"), time.Second, now); err != nil || len(empty.Entries()) != 0 {
		t.Errorf("a missing file: %v, %v; want an empty cache", empty, err)
	}
	for body, want := range map[string]string{
		`{`: "unexpected end", `{"v":2,"entries":[]}`: "version 2",
		`{"v":1,"entries":[{"name":"*.com","ip":"10.0.0.1"}]}`: "entry 0", `{"v":1,"entries":[{"name":"a.com"}]}`: "entry 0",
	} {
		bad := filepath.Join(t.TempDir(), "bad.json")
		if err := os.WriteFile(bad, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(bad, time.Second, now); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), bad) {
			t.Errorf("Load(%s): %v; want an error naming the file and %q", body, err, want)
		}
	}
}

// TestCacheLimitsNamesPerSource: a source resolving more names than its
// limit gives up those it resolved longest ago (re-resolving one keeps
// it), a name another source also resolved stays, the other sources' names
// are untouched, and expiry frees a source's room.
func TestCacheLimitsNamesPerSource(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	c := NewCache(time.Minute)
	c.LimitNamesPerSource(3)
	noisy, quiet := netip.MustParseAddr("10.0.1.5"), netip.MustParseAddr("10.0.1.6")
	has := func(name string) bool {
		m, _ := Compile(Selector{MatchName: name})
		return len(c.Lookup(m, now)) > 0
	}
	c.Observe(quiet, "api.example.com", addrs("192.0.2.1"), time.Minute, now)
	c.Observe(noisy, "shared.example.com", addrs("192.0.2.2"), time.Minute, now)
	c.Observe(quiet, "shared.example.com", addrs("192.0.2.2"), time.Minute, now)
	c.Observe(noisy, "a.example.com", addrs("192.0.2.3"), time.Minute, now)
	c.Observe(noisy, "b.example.com", addrs("192.0.2.4"), time.Minute, now)
	c.Observe(noisy, "a.example.com", addrs("192.0.2.3"), time.Minute, now) // a again: b is now older
	for i := range 100 {
		c.Observe(noisy, fmt.Sprintf("r%d.example.com", i), addrs(fmt.Sprintf("198.51.100.%d", i)), time.Minute, now)
	}
	if n := len(c.Entries()); n != 5 {
		t.Errorf("the cache holds %d entries after 100 names from one source limited to 3; want 5 (its 3 newest, api and shared)", n)
	}
	for name, want := range map[string]bool{
		"api.example.com": true, "shared.example.com": true, "r99.example.com": true, "r98.example.com": true, "r97.example.com": true,
		"r96.example.com": false, "a.example.com": false, "b.example.com": false,
	} {
		if has(name) != want {
			t.Errorf("%s cached: %v, want %v", name, has(name), want)
		}
	}
	c.Expire(now.Add(2 * time.Minute))
	if n := len(c.Entries()); n != 0 {
		t.Fatalf("%d entries left after all expired", n)
	}
	// Expired names no longer count against the source.
	for i := range 3 {
		c.Observe(noisy, fmt.Sprintf("n%d.example.com", i), addrs("192.0.2.9"), time.Minute, now.Add(3*time.Minute))
	}
	if n := len(c.Entries()); n != 3 {
		t.Errorf("after expiry, 3 new names of the source: %d entries, want 3", n)
	}
}
