// Command benchtable turns `go test -bench` output into comparison tables.
// Benchmarks named Benchmark<Group>/<variant>/<case> are laid out one table
// per group and unit: a row per case, a column per variant, and a ratio of
// each variant to the first one seen (the baseline measured in the same run).
//
//	go test -run '^$' -bench . ./kvstore/ | go run ./bench/benchtable
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
)

var line = regexp.MustCompile(`^Benchmark([^/\s]+)/([^/\s]+)/(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

type table struct {
	variants []string
	cases    []string
	values   map[[2]string]float64 // (case, variant) → value
}

func main() {
	tables := map[string]*table{} // "group unit" → table
	var order []string
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		text := sc.Text()
		fmt.Println(text)
		m := line.FindStringSubmatch(text)
		if m == nil {
			continue
		}
		group, variant, cas := m[1], m[2], m[3]
		fields := strings.Fields(m[4])
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			id := group + " " + fields[i+1]
			t := tables[id]
			if t == nil {
				t = &table{values: map[[2]string]float64{}}
				tables[id] = t
				order = append(order, id)
			}
			t.add(variant, cas, v)
		}
	}
	for _, id := range order {
		tables[id].print(os.Stdout, id)
	}
}

func (t *table) add(variant, cas string, v float64) {
	if !contains(t.variants, variant) {
		t.variants = append(t.variants, variant)
	}
	if !contains(t.cases, cas) {
		t.cases = append(t.cases, cas)
	}
	t.values[[2]string{cas, variant}] = v
}

func (t *table) print(w io.Writer, id string) {
	fmt.Fprintf(w, "\n%s (baseline: %s)\n", id, t.variants[0])
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "case\t")
	for i, v := range t.variants {
		fmt.Fprintf(tw, "%s\t", v)
		if i > 0 {
			fmt.Fprintf(tw, "%s/%s\t", v, t.variants[0])
		}
	}
	fmt.Fprintln(tw)
	for _, c := range t.cases {
		fmt.Fprintf(tw, "%s\t", c)
		base, hasBase := t.values[[2]string{c, t.variants[0]}]
		for i, v := range t.variants {
			val, ok := t.values[[2]string{c, v}]
			fmt.Fprintf(tw, "%s\t", format(val, ok))
			if i > 0 {
				if ok && hasBase && base != 0 {
					fmt.Fprintf(tw, "%.2f×\t", val/base)
				} else {
					fmt.Fprint(tw, "-\t")
				}
			}
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

func format(v float64, ok bool) string {
	if !ok {
		return "-"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
