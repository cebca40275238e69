package e2e

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testgate"
	"github.com/weftnet/weft/testenv"
)

// TestCLI drives an environment only through the weft binary, as a user
// (and make demo) does: up, pod add, exec, status, connectivity test,
// pod del, down.
func TestCLI(t *testing.T) {
	testgate.Root(t)
	testgate.Short(t)
	bin := binaries(t)
	name := envName("cli")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel) // after the down below: cleanups run last-in first-out
	weft := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin.Weft, append([]string{"--name", name}, args...)...)
		out, err := cmd.CombinedOutput()
		t.Logf("$ weft --name %s %s\n%s", name, strings.Join(args, " "), out)
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := weft(args...)
		if err != nil {
			t.Fatalf("weft %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	t.Cleanup(func() {
		if _, err := weft("testenv", "down"); err != nil {
			t.Errorf("weft testenv down: %v", err)
		}
	})

	must("testenv", "up", "--nodes", "2", "--routing", "native", "--bin-dir", filepath.Dir(bin.Weft))
	if _, err := weft("testenv", "up", "--bin-dir", filepath.Dir(bin.Weft)); err == nil {
		t.Errorf("a second weft testenv up of the same name succeeded, expected a refusal")
	}
	must("testenv", "pod", "add", "web", "--node", "c1-n2", "--labels", "app=web")
	must("testenv", "pod", "add", "client", "--node", "c1-n1")
	e, err := testenv.Load(name, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	web, err := e.Pod("web")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "client pings web through weft testenv exec", func() error {
		_, err := weft("testenv", "exec", "client", "--", "ping", "-c1", "-W1", web.IP)
		return err
	})
	if out := must("testenv", "status"); !strings.Contains(out, "web") || strings.Contains(out, "FAIL") {
		t.Errorf("weft testenv status does not show a healthy pod web:\n%s", out)
	}
	eventually(t, 30*time.Second, "weft status --all-nodes shows both agents ready, each reaching the other", func() error {
		out, err := weft("status", "--all-nodes")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "Agents:       2/2 ready") ||
			!strings.Contains(out, "c1-n1") || !strings.Contains(out, "c1-n2") || strings.Count(out, "1/1 reachable") != 2 {
			return fmt.Errorf("got:\n%s", out)
		}
		return nil
	})
	var all []struct {
		Node   string
		Status struct{ Node string }
	}
	if err := json.Unmarshal([]byte(must("status", "--all-nodes", "-o", "json")), &all); err != nil || len(all) != 2 || all[1].Status.Node != "c1-n2" {
		t.Errorf("weft status --all-nodes -o json: %v %+v, want both nodes' status", err, all)
	}
	// No component of a healthy agent has logged an error.
	status := must("--node", "c1-n2", "status")
	if !strings.Contains(status, "Components:") || !strings.Contains(status, "OK  no component logged an error") {
		t.Errorf("weft status of a healthy node shows component errors:\n%s", status)
	}
	out := must("-o", "json", "endpoint", "list")
	var eps any
	if err := json.Unmarshal([]byte(out), &eps); err != nil {
		t.Errorf("weft endpoint list -o json: %v", err)
	}
	checkConnectivityJSON(t, ctx, bin.Weft, name)
	checkSysdump(t, must, web)
	checkSysdumpOnFailure(t, ctx, bin.Weft, name)
	if out := must("connectivity", "test", "--test", "^no-policies/pod-to-pod", "--delete-pods"); !strings.Contains(out, "tests successful") {
		t.Errorf("weft connectivity test printed no success summary:\n%s", out)
	}
	must("testenv", "pod", "del", "web", "client")
	must("testenv", "down")
	if _, err := os.Stat(testenv.Dir(name)); err == nil {
		t.Errorf("%s still exists after weft testenv down", testenv.Dir(name))
	}
}

// checkConnectivityJSON runs `weft connectivity test` with an include and an
// exclude pattern, twice over, with -o json and --junit-file, and checks
// what a CI job would read: one JSON result per scenario and run on
// standard output, the same in the JUnit file.
func checkConnectivityJSON(t *testing.T, ctx context.Context, weft, env string) {
	t.Helper()
	junit := filepath.Join(t.TempDir(), "results.xml")
	cmd := exec.CommandContext(ctx, weft, "--name", env, "connectivity", "test", "--test", "pod-to-pod", "--test", "!udp", "--test", "!ingress|egress|entit|deny",
		"--repeat", "2", "-o", "json", "--junit-file", junit)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	t.Logf("$ weft connectivity test --test pod-to-pod --test '!udp' --test '!ingress|egress|entit|deny' --repeat 2 -o json --junit-file %s\n%s%s", junit, stderr.String(), out)
	if err != nil {
		t.Fatalf("weft connectivity test -o json: %v", err)
	}
	runs := map[string][]int{}
	skipped := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r struct {
			Name, Result, Reason string
			Run                  int
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("stdout line %q is not one JSON result: %v", line, err)
		}
		if r.Result == "skipped" { // e.g. pod-to-pod-encryption: listed with its reason, once
			if r.Reason == "" || !strings.Contains(r.Name, "pod-to-pod") {
				t.Errorf("skipped result %+v: want a selected test with its reason", r)
			}
			skipped++
			continue
		}
		if !strings.Contains(r.Name, "pod-to-pod") || strings.Contains(r.Name, "udp") || r.Result != "success" {
			t.Errorf("result %+v: want only successful pod-to-pod scenarios without udp", r)
		}
		runs[r.Name] = append(runs[r.Name], r.Run)
	}
	if len(runs) == 0 {
		t.Fatal("no scenario selected")
	}
	for name, rs := range runs {
		if len(rs) != 2 || rs[0] != 1 || rs[1] != 2 {
			t.Errorf("scenario %s ran %v, want runs [1 2]", name, rs)
		}
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil || doc.Tests != 2*len(runs)+skipped || doc.Failures != 0 || doc.Skipped != skipped {
		t.Errorf("JUnit file: %v, %d tests, %d failures, %d skipped; want %d tests, 0 failures, %d skipped:\n%s",
			err, doc.Tests, doc.Failures, doc.Skipped, 2*len(runs)+skipped, skipped, b)
	}
}

// checkSysdump writes `weft sysdump` of the environment and checks what a
// bug report reader looks for: every node's status, the pod among the
// endpoints and in the store's ipcache, the BPF maps, the agents' logs.
func checkSysdump(t *testing.T, must func(args ...string) string, web testenv.Pod) {
	t.Helper()
	dir := t.TempDir()
	archive := filepath.Join(dir, "dump.tar.gz")
	if out := must("sysdump", "--output", archive); !strings.Contains(out, "wrote "+archive) || strings.Contains(out, "could not be collected") {
		t.Errorf("weft sysdump did not collect everything:\n%s", out)
	}
	if out, err := exec.Command("tar", "-xzf", archive, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar -xzf %s: %v\n%s", archive, err, out)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, "weft-sysdump", name))
		if err != nil {
			t.Errorf("the sysdump has no %s: %v", name, err)
		}
		return string(b)
	}
	for _, node := range []string{"c1-n1", "c1-n2"} {
		if s := read("nodes/" + node + "/status.json"); !strings.Contains(s, `"`+node+`"`) {
			t.Errorf("nodes/%s/status.json does not name the node:\n%.400s", node, s)
		}
		if s := read("nodes/" + node + "/bpf-ipcache.json"); !strings.Contains(s, web.IP) {
			t.Errorf("nodes/%s/bpf-ipcache.json does not hold web's address %s", node, web.IP)
		}
		if s := read("logs/" + node + "/agent.log"); len(s) == 0 {
			t.Errorf("the agent log of %s is empty", node)
		}
	}
	if s := read("nodes/c1-n2/endpoints.json"); !strings.Contains(s, web.IP) {
		t.Errorf("nodes/c1-n2/endpoints.json does not list web (%s)", web.IP)
	}
	if s := read("clusters/c1/store.json"); !strings.Contains(s, web.IP) {
		t.Errorf("clusters/c1/store.json does not hold web's ipcache record (%s)", web.IP)
	}
	if _, err := os.Stat(filepath.Join(dir, "weft-sysdump", "errors.txt")); err == nil {
		t.Errorf("the sysdump lists problems:\n%s", read("errors.txt"))
	}
}

// checkSysdumpOnFailure makes a scenario fail (probes given 1ns) and
// checks that --collect-sysdump-on-failure leaves an archive behind.
func checkSysdumpOnFailure(t *testing.T, ctx context.Context, weft, env string) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, weft, "--name", env, "connectivity", "test", "--test", "^no-policies/pod-to-pod/same-node/tcp",
		"--timeout-per-probe", "1ns", "--collect-sysdump-on-failure")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("a connectivity test with 1ns probes passed:\n%s", out)
	}
	archives, _ := filepath.Glob(filepath.Join(dir, "weft-sysdump-"+env+"-*.tar.gz"))
	if len(archives) != 1 || !strings.Contains(string(out), "wrote weft-sysdump-"+env+"-") {
		t.Errorf("--collect-sysdump-on-failure left %v and printed:\n%s", archives, out)
	}
}
