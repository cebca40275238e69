package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testgate"
	"github.com/weftnet/weft/testenv"
)

// cliDoc is the page whose examples TestCLIDocExamples checks.
var cliDoc = filepath.Join("..", "docs", "cli.md")

// docEnv is the environment docs/cli.md's examples were taken from.
const docEnv = "doc"

// TestCLIDocExamples runs every `$ weft ...` example of docs/cli.md that
// shows output, in a 2-node environment set up as the page describes (pods
// web-1 and client on c1-n1, web-2 on c1-n2, a policy selecting app=web, a
// global NodePort service web), and fails when the page shows something
// the command does not print. Commands without --name or --socket ask
// c1-n1's agent (WEFT_SOCKET), except those whose example shows the
// default socket's error. Fields that change from run to run (ages,
// latencies, versions, container ids, flow counts, file counts) are masked
// on both sides; everything else, addresses, gateways, identities, columns
// and empty cells included, must match. `weft preflight` describes the host
// it runs on and is not run.
//
// WEFT_UPDATE_DOCS=1 rewrites the examples' output from this run.
func TestCLIDocExamples(t *testing.T) {
	testgate.Root(t)
	testgate.Short(t)
	bin := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	weft := func(env []string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin.Weft, args...)
		cmd.Env = append(withoutWeftVars(os.Environ()), env...)
		out, err := cmd.CombinedOutput()
		t.Logf("$ weft %s\n%s", strings.Join(args, " "), out)
		return string(out), err
	}
	must := func(args ...string) {
		t.Helper()
		if _, err := weft(nil, append([]string{"--name", docEnv}, args...)...); err != nil {
			t.Fatalf("weft %s: %v", strings.Join(args, " "), err)
		}
	}
	t.Cleanup(func() {
		if _, err := weft(nil, "testenv", "down", "--name", docEnv); err != nil {
			t.Errorf("weft testenv down: %v", err)
		}
	})
	must("testenv", "up", "--nodes", "2", "--replace", "--bin-dir", filepath.Dir(bin.Weft))
	// testenv starts c1-n1 first, so it takes the first pod CIDR, as the
	// page shows.
	got := podCIDRs(t, func(args ...string) (string, error) {
		return weft(nil, append([]string{"--name", docEnv, "--node", "c1-n1"}, args...)...)
	})
	if !slices.Equal(got, docPodCIDRs) {
		t.Fatalf("c1-n1 and c1-n2 took pod CIDRs %v, the page shows %v", got, docPodCIDRs)
	}
	must("testenv", "pod", "add", "web-1", "--node", "c1-n1", "--labels", "app=web")
	must("testenv", "pod", "add", "client", "--node", "c1-n1", "--labels", "app=client")
	must("testenv", "pod", "add", "web-2", "--node", "c1-n2", "--labels", "app=web")
	policy := filepath.Join(t.TempDir(), "web.yaml")
	if err := os.WriteFile(policy, []byte(docPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	must("policy", "import", "-f", policy)
	must("service", "create", "default/web", "--type", "NodePort", "--port", "http=80:8080", "--selector", "app=web",
		"--annotation", "service.cilium.io/global=true")

	e, err := testenv.Load(docEnv, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := e.Node("c1-n1")
	if err != nil {
		t.Fatal(err)
	}
	socket := "WEFT_SOCKET=" + first.Socket
	// Everything the examples show has reached both agents: the remote
	// pod in c1-n1's ipcache, both backends ready on c1-n1, the other
	// node reachable.
	eventually(t, time.Minute, "the doc environment settles", func() error {
		out, err := weft([]string{socket}, "status")
		if err != nil || !strings.Contains(out, "1/1 reachable") {
			return fmt.Errorf("weft status: %v", err)
		}
		out, err = weft([]string{socket}, "service", "list")
		if err != nil || strings.Count(out, "(active)") != 4 {
			return fmt.Errorf("weft service list: want 4 active backend lines, got %v", err)
		}
		out, err = weft([]string{socket}, "ipcache", "list")
		if err != nil || !strings.Contains(out, "default/web-2") {
			return fmt.Errorf("weft ipcache list: web-2 not there yet (%v)", err)
		}
		return nil
	})

	rename := docRenamer(t, func(args ...string) (string, error) { return weft([]string{socket}, args...) })

	raw, err := os.ReadFile(cliDoc)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	examples := docExamples(lines)
	if len(examples) < 12 {
		t.Fatalf("found %d examples with output in %s, expected at least 12: has the page's format changed?", len(examples), cliDoc)
	}
	update := os.Getenv("WEFT_UPDATE_DOCS") == "1"
	ran := 0
	for i := len(examples) - 1; i >= 0; i-- { // from the end: updates keep earlier line numbers
		ex := examples[i]
		args := strings.Fields(ex.cmd)
		if len(args) == 0 || args[0] != "weft" {
			t.Errorf("%s:%d: example command %q does not start with weft", cliDoc, ex.line, ex.cmd)
			continue
		}
		args = rename.args(args[1:])
		if slices.Contains(args, "preflight") {
			continue // the host's own checks
		}
		var env []string
		if !slices.Contains(args, "--name") && !slices.Contains(args, "--socket") && !strings.Contains(strings.Join(ex.output, "\n"), "/var/run/weft/agent.sock") {
			env = append(env, socket)
		}
		if i := slices.Index(args, "--output"); i >= 0 && i+1 < len(args) && args[0] == "--name" && slices.Contains(args, "sysdump") {
			os.Remove(args[i+1])
			t.Cleanup(func() { os.Remove(args[i+1]) })
		}
		out, _ := weft(env, args...) // examples show errors too: the output is what counts
		ran++
		got := sortByID(strings.Split(strings.TrimRight(rename.output(out), "\n"), "\n"))
		if update {
			lines = slices.Concat(lines[:ex.start], got, lines[ex.end:])
			continue
		}
		if err := matchExample(ex.output, got); err != nil {
			t.Errorf("%s:%d: `$ %s` shows what the command does not print: %v\n(WEFT_UPDATE_DOCS=1 go test ./e2e -run TestCLIDocExamples rewrites the examples from real output)",
				cliDoc, ex.line, ex.cmd, err)
		}
	}
	if update {
		if err := os.WriteFile(cliDoc, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %d examples of %s", ran, cliDoc)
	}
}

// docPolicy is the policy the endpoint get example shows: web takes TCP 80
// from client.
const docPolicy = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: web
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: client
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
`

// docExample is one `$ weft ...` line of a fenced block and the output
// shown under it.
type docExample struct {
	cmd        string
	line       int // 1-based, of the command
	output     []string
	start, end int // the output's line range in the page, end exclusive
}

// docExamples finds the commands with output in the page's plain fenced
// blocks (```); a block may hold several, separated by a blank line.
func docExamples(lines []string) []docExample {
	var (
		out            []docExample
		inBlock, plain bool
		cur            *docExample
	)
	flush := func(end int) {
		if cur == nil {
			return
		}
		for end > cur.start && strings.TrimSpace(lines[end-1]) == "" {
			end--
		}
		cur.end, cur.output = end, lines[cur.start:end]
		if len(cur.output) > 0 {
			out = append(out, *cur)
		}
		cur = nil
	}
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "```"):
			if inBlock {
				flush(i)
			}
			inBlock, plain = !inBlock, l == "```"
		case inBlock && plain && strings.HasPrefix(l, "$ "):
			flush(i)
			cmd, _, _ := strings.Cut(l[2:], " #")
			cur = &docExample{cmd: strings.TrimSpace(cmd), line: i + 1, start: i + 1}
		}
	}
	return out
}

// volatile are the parts of the output that change from run to run; both
// sides are masked before comparing.
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(?m)^((?:Agent|weft|weft-agent|Versions):\s+)[^\s,]+`), "$1<version>"},
	{regexp.MustCompile(`"(client|agent)": "[^"]*"`), `"$1": "<version>"`},
	{regexp.MustCompile(`(?m)^((?:Flows|Collection):\s+).*$`), "$1<varies>"},
	{regexp.MustCompile(`(?m)^(Container:\s+)\S+`), "$1<id>"},
	{regexp.MustCompile(`\b([0-9a-f]{2}:){5}[0-9a-f]{2}\b`), "<mac>"},
	{regexp.MustCompile(`no heartbeat yet|heartbeat \S+ ago`), "<heartbeat>"},
	{regexp.MustCompile(`lxc[0-9a-f]+`), "lxc<id>"},
	{regexp.MustCompile(`\(\d+ files\)`), "(<n> files)"},
	{regexp.MustCompile(`\b(\d+h)?(\d+m)?\d+(\.\d+)?\s?(ns|µs|us|ms|s|m|h)\b`), "<duration>"},
}

var spaces = regexp.MustCompile(`\s+`)

func maskLine(l string) string {
	for _, v := range volatile {
		l = v.re.ReplaceAllString(l, v.with)
	}
	return strings.TrimSpace(spaces.ReplaceAllString(l, " "))
}

// matchExample compares the page's lines with the command's, masked; a
// line "..." in the page stands for any number of lines.
func matchExample(doc, got []string) error {
	j := 0
	for i := 0; i < len(doc); i++ {
		want := maskLine(doc[i])
		if want == "..." {
			if i+1 == len(doc) {
				return nil
			}
			next := maskLine(doc[i+1])
			for j < len(got) && maskLine(got[j]) != next {
				j++
			}
			continue
		}
		if j >= len(got) {
			return fmt.Errorf("the page's line %q is missing at the end of the output", doc[i])
		}
		if have := maskLine(got[j]); have != want {
			return fmt.Errorf("the page shows\n    %s\nthe command prints\n    %s", doc[i], got[j])
		}
		j++
	}
	if j < len(got) {
		return fmt.Errorf("the command prints %d more line(s) than the page shows, from %q", len(got)-j, got[j])
	}
	return nil
}

// withoutWeftVars drops WEFT_* variables, so the examples run as written.
func withoutWeftVars(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "WEFT_") })
}

// docPodCIDRs are the pod CIDRs of c1-n1 and c1-n2 the page shows.
var docPodCIDRs = []string{"10.100.0.0/24", "10.100.1.0/24"}

// podCIDRs returns the pod CIDRs of c1-n1 and c1-n2 as weft node list
// shows them, once it lists both nodes.
func podCIDRs(t *testing.T, weft func(args ...string) (string, error)) []string {
	t.Helper()
	var got []string
	eventually(t, time.Minute, "c1-n1 lists both nodes with their pod CIDRs", func() error {
		var nodes struct {
			Nodes []struct {
				Name     string   `json:"name"`
				PodCIDRs []string `json:"pod_cidrs"`
			} `json:"nodes"`
		}
		out, err := weft("-o", "json", "node", "list")
		if err == nil {
			err = json.Unmarshal([]byte(out), &nodes)
		}
		if err != nil {
			return err
		}
		got = nil
		for _, name := range []string{"c1-n1", "c1-n2"} {
			for _, n := range nodes.Nodes {
				if n.Name == name && len(n.PodCIDRs) == 1 {
					got = append(got, n.PodCIDRs[0])
				}
			}
		}
		if len(got) != 2 {
			return fmt.Errorf("listed %+v", nodes.Nodes)
		}
		return nil
	})
	return got
}

// Identities are picked at random: the page shows docIDs for the pods'
// label sets, and a run's own ids are renamed to them before comparing
// (and before writing, with WEFT_UPDATE_DOCS=1).
var docIDs = map[string]string{"k8s:app=web": "110001", "k8s:app=client": "110002"}

// renamer maps this run's identities to the page's.
type renamer struct {
	ids map[string]string // this run's id -> the page's
}

func docRenamer(t *testing.T, weft func(args ...string) (string, error)) renamer {
	t.Helper()
	r := renamer{ids: map[string]string{}}
	var ids struct {
		Identities []struct {
			ID     uint32   `json:"id"`
			Labels []string `json:"labels"`
		} `json:"identities"`
	}
	out, err := weft("-o", "json", "identity", "list")
	if err == nil {
		err = json.Unmarshal([]byte(out), &ids)
	}
	if err != nil {
		t.Fatalf("weft identity list -o json: %v", err)
	}
	for _, id := range ids.Identities {
		for label, doc := range docIDs {
			if slices.Contains(id.Labels, label) {
				r.ids[strconv.FormatUint(uint64(id.ID), 10)] = doc
			}
		}
	}
	if len(r.ids) != len(docIDs) {
		t.Fatalf("found identities %v for the page's label sets %v", r.ids, docIDs)
	}
	return r
}

var number = regexp.MustCompile(`\b\d{5,}\b( *)`)

// output renames this run's identities to the page's, keeping table
// columns aligned.
func (r renamer) output(s string) string {
	return number.ReplaceAllStringFunc(s, func(m string) string {
		id := strings.TrimRight(m, " ")
		doc, ok := r.ids[id]
		if !ok {
			return m
		}
		pad := len(m) - len(id)
		if pad > 0 || len(doc) < len(id) { // inside a table: keep the next column where it was
			pad = max(1, pad-(len(doc)-len(id)))
		}
		return doc + strings.Repeat(" ", pad)
	})
}

// args turns the page's identities in a command back into this run's.
func (r renamer) args(args []string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		for real, doc := range r.ids {
			if a == doc {
				out[i] = real
			}
		}
	}
	return out
}

// sortByID re-sorts a table whose first column is ID by that number (as
// the CLI sorts it): renaming identities can change their order. A row's
// continuation lines (starting with a space) stay with it.
func sortByID(lines []string) []string {
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "ID ") {
		return lines
	}
	var rows [][]string
	for _, l := range lines[1:] {
		if (l == "" || strings.HasPrefix(l, " ")) && len(rows) > 0 {
			rows[len(rows)-1] = append(rows[len(rows)-1], l)
			continue
		}
		rows = append(rows, []string{l})
	}
	id := func(row []string) int {
		n, _ := strconv.Atoi(strings.Fields(row[0])[0])
		return n
	}
	slices.SortStableFunc(rows, func(a, b []string) int { return id(a) - id(b) })
	return append(lines[:1:1], slices.Concat(rows...)...)
}
