package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

// printer writes a command's result in the format chosen with -o: the human
// form (a table or a summary) or the data (an API message) as JSON or YAML.
type printer struct {
	w      io.Writer
	format string
}

func (o *options) printer(cmd *cobra.Command) printer {
	return printer{w: cmd.OutOrStdout(), format: o.output}
}

// print writes data as JSON or YAML, or calls human for the table format.
// data is an API message (printed with protojson: proto field names, every
// field present) or a plain Go value (printed with encoding/json).
func (p printer) print(data any, human func(w io.Writer) error) error {
	switch p.format {
	case formatJSON:
		b, err := marshalJSON(data)
		if err != nil {
			return err
		}
		_, err = p.w.Write(append(b, '\n'))
		return err
	case formatYAML:
		b, err := marshalJSON(data)
		if err != nil {
			return err
		}
		y, err := yaml.JSONToYAML(b)
		if err != nil {
			return fmt.Errorf("convert output to YAML: %w", err)
		}
		_, err = p.w.Write(y)
		return err
	}
	return human(p.w)
}

// marshalJSON encodes data as indented JSON with stable whitespace.
func marshalJSON(data any) ([]byte, error) {
	var raw []byte
	var err error
	if m, ok := data.(proto.Message); ok {
		raw, err = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	} else {
		raw, err = json.Marshal(data)
	}
	if err != nil {
		return nil, fmt.Errorf("encode output as JSON: %w", err)
	}
	// protojson varies its whitespace on purpose; re-indent for a stable form.
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("indent JSON output: %w", err)
	}
	return out.Bytes(), nil
}

// table is the human form of a list. A cell may hold several lines (labels,
// backends): the row then takes several lines, the other cells blank below
// their first line.
type table struct {
	header []string
	rows   [][]string
}

func newTable(header ...string) *table {
	h := make([]string, len(header))
	for i, c := range header {
		h[i] = strings.ToUpper(c)
	}
	return &table{header: h}
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 8, 3, ' ', 0)
	if len(t.header) > 0 {
		writeLine(tw, t.header)
	}
	for _, row := range t.rows {
		lines := make([][]string, len(row))
		height := 1
		for i, cell := range row {
			lines[i] = strings.Split(cell, "\n")
			height = max(height, len(lines[i]))
		}
		for l := range height {
			line := make([]string, len(row))
			for i := range row {
				if l < len(lines[i]) {
					line[i] = lines[i][l]
				}
			}
			writeLine(tw, line)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Blank trailing cells leave padding behind: trim it.
	for line := range strings.Lines(buf.String()) {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

func writeLine(w io.Writer, cells []string) {
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}
