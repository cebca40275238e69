package cli

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"
)

// fields is the human form of one object: "Key:  value" lines, a value of
// several lines indented under its first.
type fields struct {
	rows [][2]string
}

func (f *fields) add(key, value string) { f.rows = append(f.rows, [2]string{key, value}) }

func (f *fields) write(w io.Writer) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 8, 2, ' ', 0)
	for _, r := range f.rows {
		lines := strings.Split(r[1], "\n")
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(tw, "\t%s\n", l)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for line := range strings.Lines(buf.String()) {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

func podName(namespace, name string) string {
	if name == "" {
		return ""
	}
	if namespace == "" {
		namespace = "default"
	}
	return namespace + "/" + name
}

func enforcement(on bool) string {
	if on {
		return "Enabled"
	}
	return "Disabled"
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func isIPPrefix(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	_, err := netip.ParsePrefix(s)
	return err == nil
}

func itoa[T ~uint32 | ~uint64](v T) string { return strconv.FormatUint(uint64(v), 10) }

// orDash shows an empty value as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
