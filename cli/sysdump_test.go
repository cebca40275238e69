package cli

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftnet/weft/kvstore"
)

func TestRedactJSON(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"name":"c1","password":"hunter2"}`, `"password": "[redacted]"`},
		{`{"tls":{"privateKey":"PEM","cert":"ok"}}`, `"privateKey": "[redacted]"`},
		{`[{"ACL_Token":"abc"}]`, `"ACL_Token": "[redacted]"`},
		{`{"count":12345678901234567890}`, `{"count":12345678901234567890}`}, // unchanged, numbers kept exactly
		{`not json`, `not json`},
	} {
		got := string(redactJSON([]byte(tc.in)))
		if !strings.Contains(got, tc.want) {
			t.Errorf("redactJSON(%s) = %s, want it to contain %s", tc.in, got, tc.want)
		}
		if strings.Contains(got, "hunter2") || strings.Contains(got, `"PEM"`) || strings.Contains(got, `"abc"`) {
			t.Errorf("redactJSON(%s) = %s leaks a secret", tc.in, got)
		}
	}
	r := sysdumpRecord(kvstore.KeyValue{Key: "k", Value: []byte{0xff, 0x00}})
	if r.Base64 != "/wA=" || r.Text != "" || r.Value != nil {
		t.Errorf("binary value: %+v, want base64", r)
	}
	if r := sysdumpRecord(kvstore.KeyValue{Key: "k", Value: []byte("10.0.0.1")}); r.Text != "10.0.0.1" {
		t.Errorf("text value: %+v", r)
	}
}

// TestSysdumpUnreachableAgent: an agent that cannot be reached does not
// stop the dump; the archive names what failed and the command says so.
func TestSysdumpUnreachableAgent(t *testing.T) {
	dir := shortTempDir(t)
	out := filepath.Join(dir, "dump.tar.gz")
	root := newRootCommand("v-test", defaultOptions())
	var stdout, stderr strings.Builder
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs([]string{"--socket", filepath.Join(dir, "none.sock"), "sysdump", "--output", out})
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "1 items could not be collected") || !strings.Contains(stdout.String(), "node local: the agent's socket") {
		t.Errorf("the command's output does not name the problem:\n%s", stdout.String())
	}
	files := readSysdump(t, out)
	if !strings.Contains(files["weft-sysdump/version.txt"], "weft CLI v-test") {
		t.Errorf("version.txt: %q", files["weft-sysdump/version.txt"])
	}
	if !strings.Contains(files["weft-sysdump/errors.txt"], "none.sock") {
		t.Errorf("errors.txt: %q", files["weft-sysdump/errors.txt"])
	}

	// An existing archive is never overwritten.
	root = newRootCommand("v-test", defaultOptions())
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"--socket", filepath.Join(dir, "none.sock"), "sysdump", "--output", out})
	if err := root.ExecuteContext(t.Context()); err == nil || !strings.Contains(err.Error(), "choose another --output") {
		t.Errorf("writing over %s: got %v", out, err)
	}
	if len(readSysdump(t, out)) != len(files) {
		t.Error("the existing archive changed")
	}
}

// readSysdump returns the archive's files by name.
func readSysdump(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = string(b)
	}
}
