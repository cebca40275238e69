// Package testgate decides whether a test that needs a capability of the
// machine (root, BPF, network namespaces, a built tool) may skip.
//
// On a developer's machine a missing capability skips the test with the
// reason. Where the capability is required — CI (CI set) or
// WEFT_REQUIRE_ALL=1 — it fails the test instead, so a green CI run proves
// that every privileged and integration test really ran.
package testgate

import (
	"os"
	"testing"
)

// Required reports whether missing capabilities must fail tests.
func Required() bool {
	return os.Getenv("CI") != "" || os.Getenv("WEFT_REQUIRE_ALL") == "1"
}

// Skip skips t with reason, or fails it where every test is required to run.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if Required() {
		t.Fatalf("required capability missing: %s (CI or WEFT_REQUIRE_ALL=1 forbids skipping)", reason)
	}
	t.Skip(reason)
}

// Root gates a test on running as root (namespaces, BPF, netlink).
func Root(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root for network namespaces and BPF")
	}
}

// Short gates a long integration test on not running with -short.
func Short(t testing.TB) {
	t.Helper()
	if testing.Short() {
		Skip(t, "integration test skipped in -short mode")
	}
}
