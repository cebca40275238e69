// Command testsummary reads `go test -json` on stdin, prints package results,
// the output of every failed test and the reason of every skipped one, and a
// closing line "N passed, N failed, N skipped". It exits 1 when a test or a
// package failed, and also when a test was skipped while -require-all is set
// (CI: every privileged and integration test must really run).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() {
	requireAll := flag.Bool("require-all", false, "fail when any test was skipped")
	flag.Parse()

	output := map[string]*strings.Builder{} // package/test → output
	var passed, failed, skipped []string
	var pkgFailed []string
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if err := json.Unmarshal(line, &ev); err != nil {
			fmt.Println(string(line)) // build errors come as plain text
			continue
		}
		id := ev.Package + " " + ev.Test
		switch ev.Action {
		case "output":
			b := output[id]
			if b == nil {
				b = &strings.Builder{}
				output[id] = b
			}
			b.WriteString(ev.Output)
		case "pass":
			if ev.Test != "" {
				passed = append(passed, id)
			} else {
				fmt.Printf("ok   %s %.1fs\n", ev.Package, ev.Elapsed)
			}
		case "fail":
			if ev.Test != "" {
				failed = append(failed, id)
			} else {
				pkgFailed = append(pkgFailed, ev.Package)
				fmt.Printf("FAIL %s %.1fs\n", ev.Package, ev.Elapsed)
				if b := output[id]; b != nil && !strings.Contains(b.String(), "--- FAIL") {
					fmt.Print(b.String())
				}
			}
		case "skip":
			if ev.Test != "" {
				skipped = append(skipped, id)
			}
		}
	}
	sort.Strings(failed)
	for _, id := range failed {
		if isParentOf(id, failed) {
			continue
		}
		fmt.Printf("\n=== FAILED %s\n%s", id, output[id])
	}
	for _, id := range skipped {
		reason := ""
		if b := output[id]; b != nil {
			reason = strings.TrimSpace(lastLines(b.String(), 2))
		}
		fmt.Printf("SKIPPED %s: %s\n", id, reason)
	}
	fmt.Printf("\n%d passed, %d failed, %d skipped\n", len(passed), len(failed), len(skipped))
	switch {
	case len(failed) > 0 || len(pkgFailed) > 0:
		os.Exit(1)
	case *requireAll && len(skipped) > 0:
		fmt.Println("tests were skipped where every test must run (CI): failing")
		os.Exit(1)
	}
}

// isParentOf reports whether id is a parent test of another failed test, whose
// own output says more.
func isParentOf(id string, failed []string) bool {
	for _, f := range failed {
		if strings.HasPrefix(f, id+"/") {
			return true
		}
	}
	return false
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
