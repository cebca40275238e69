package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/dial"
	"github.com/weftnet/weft/testenv"
)

// sysdumpMaps are the BPF maps a sysdump dumps from every agent.
var sysdumpMaps = []string{"tunnel", "ipcache", "endpoints", "lb", "policy", "ct", "metrics"}

func newSysdumpCommand(o *options, version string) *cobra.Command {
	var (
		output   string
		logLimit int64
		noStore  bool
	)
	cmd := &cobra.Command{
		Use:   "sysdump [--output FILE]",
		Short: "Collect every node's state, logs and the store into one archive for a bug report",
		Long: `Collect what a bug report needs into one .tar.gz: for every node, the
agent's status, nodes, endpoints, identities, ipcache, services, policies
and BPF map dumps (as JSON, the agent API's messages); the logs; the
cluster store's keys and values; the CLI's version.

With --name (a testenv environment, default "weft" when no --socket is
given and it exists) it collects from every node of the environment, the
environment's logs and each cluster's store. With --socket it collects from
that one agent only.

Values that look secret (fields named like password, token, secret,
private or credential) are replaced by "[redacted]". A node or a store
that cannot be read does not stop the dump: what failed is listed in
errors.txt inside the archive and printed at the end.`,
		Example: `  weft sysdump
  weft sysdump --name e2e --output /tmp/e2e.tar.gz
  weft --socket /var/run/weft/agent.sock sysdump --no-store`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if logLimit < 0 {
				return fmt.Errorf("--log-limit %d: give 0 (whole logs) or a number of bytes", logLimit)
			}
			d := &sysdump{version: version, logLimit: logLimit, progress: cmd.ErrOrStderr(), timeout: o.timeout}
			var env *testenv.Env
			t, err := o.target()
			if err != nil {
				return err
			}
			if t.env != "" || !o.socketFlag {
				if env, err = testenv.Load(o.envName(), nil, cliLogger(cmd)); err != nil {
					if t.env != "" {
						return err
					}
					env = nil // no environment: this host's agent
				}
			}
			name := "host"
			if env != nil {
				name = env.Name
			}
			if output == "" {
				output = fmt.Sprintf("weft-sysdump-%s-%s.tar.gz", name, time.Now().UTC().Format("20060102-150405"))
			}
			d, err = writeSysdump(cmd.Context(), d, output, func(d *sysdump) {
				if env != nil {
					d.collectEnv(cmd.Context(), env, !noStore)
				} else {
					d.collectAgent(cmd.Context(), "local", t.socket)
				}
			})
			if err != nil {
				return err
			}
			d.printResult(cmd.OutOrStdout(), output)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&output, "output", "", "archive to write (default weft-sysdump-<environment>-<UTC time>.tar.gz in the current directory); never overwritten")
	f.Int64Var(&logLimit, "log-limit", 10<<20, "bytes kept from the end of each log file; 0 keeps whole logs")
	f.BoolVar(&noStore, "no-store", false, "leave out the cluster stores' keys and values")
	return cmd
}

// writeSysdump creates output (never over an existing file), lets collect
// fill d, and finishes the archive; a failure removes the partial file.
func writeSysdump(ctx context.Context, d *sysdump, output string, collect func(*sysdump)) (*sysdump, error) {
	f, err := os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("write the sysdump: %w (choose another --output)", err)
	}
	d.start(f)
	collect(d)
	err = d.finish()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(output)
		return nil, fmt.Errorf("write the sysdump %s: %w", output, err)
	}
	return d, nil
}

// printResult says where the archive is and what could not be collected.
func (d *sysdump) printResult(w io.Writer, output string) {
	if len(d.problems) > 0 {
		fmt.Fprintf(w, "wrote %s (%d files); %d items could not be collected (listed in errors.txt):\n", output, d.files, len(d.problems))
		for _, p := range d.problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
		return
	}
	fmt.Fprintf(w, "wrote %s (%d files)\n", output, d.files)
}

// envSysdump writes the sysdump of a testenv environment to output.
func envSysdump(ctx context.Context, env *testenv.Env, version, output string, progress io.Writer) (*sysdump, error) {
	d := &sysdump{version: version, logLimit: 10 << 20, progress: progress, timeout: 10 * time.Second}
	return writeSysdump(ctx, d, output, func(d *sysdump) { d.collectEnv(ctx, env, true) })
}

// sysdump writes one archive; problems are collected, never fatal.
type sysdump struct {
	version  string
	logLimit int64
	timeout  time.Duration
	progress io.Writer

	gz       *gzip.Writer
	tw       *tar.Writer
	err      error // the first write error: fatal
	files    int
	problems []string
	now      time.Time
}

func (d *sysdump) start(w io.Writer) {
	d.now = time.Now()
	d.gz = gzip.NewWriter(w)
	d.tw = tar.NewWriter(d.gz)
	d.add("version.txt", []byte(fmt.Sprintf("weft CLI %s\ncollected %s\n", d.version, d.now.UTC().Format(time.RFC3339))))
}

func (d *sysdump) finish() error {
	if len(d.problems) > 0 {
		d.add("errors.txt", []byte(strings.Join(d.problems, "\n")+"\n"))
	}
	if d.err != nil {
		return d.err
	}
	if err := d.tw.Close(); err != nil {
		return err
	}
	return d.gz.Close()
}

func (d *sysdump) add(name string, data []byte) {
	if d.err != nil {
		return
	}
	hdr := &tar.Header{Name: "weft-sysdump/" + name, Mode: 0o600, Size: int64(len(data)), ModTime: d.now, Typeflag: tar.TypeReg}
	if d.err = d.tw.WriteHeader(hdr); d.err == nil {
		_, d.err = d.tw.Write(data)
	}
	d.files++
}

func (d *sysdump) problem(format string, args ...any) {
	p := fmt.Sprintf(format, args...)
	d.problems = append(d.problems, p)
	fmt.Fprintf(d.progress, "  ! %s\n", p)
}

func (d *sysdump) collectEnv(ctx context.Context, env *testenv.Env, store bool) {
	if b, err := json.MarshalIndent(env, "", "  "); err == nil {
		d.add("environment.json", b)
	}
	for _, n := range env.Nodes {
		d.collectAgent(ctx, n.Name, n.Socket)
	}
	if store {
		for _, c := range env.Clusters {
			d.collectStore(ctx, c.Name, env.KVStore, c.HostStoreEndpoints)
		}
	}
	fmt.Fprintf(d.progress, "collecting logs under %s\n", env.Dir)
	err := filepath.WalkDir(env.Dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(path, ".log") {
			return nil
		}
		rel, _ := filepath.Rel(env.Dir, path)
		d.collectLog("logs/"+rel, path)
		return nil
	})
	if err != nil {
		d.problem("logs under %s: %v", env.Dir, err)
	}
}

// collectAgent asks one agent for everything it can show.
func (d *sysdump) collectAgent(ctx context.Context, node, socket string) {
	fmt.Fprintf(d.progress, "collecting node %s (%s)\n", node, socket)
	dir := "nodes/" + node + "/"
	if _, err := os.Stat(socket); err != nil {
		d.problem("node %s: the agent's socket: %v", node, err)
		return
	}
	conn, err := agentapi.DialConn(socket)
	if err != nil {
		d.problem("node %s: %v", node, err)
		return
	}
	defer conn.Close()
	a, p := agentapi.NewAgentClient(conn), agentapi.NewPolicyClient(conn)
	calls := []struct {
		name string
		call func(ctx context.Context) (proto.Message, error)
	}{
		{"status", func(ctx context.Context) (proto.Message, error) { return a.Status(ctx, &agentapi.StatusRequest{}) }},
		{"nodes", func(ctx context.Context) (proto.Message, error) {
			return a.ListNodes(ctx, &agentapi.ListNodesRequest{})
		}},
		{"endpoints", func(ctx context.Context) (proto.Message, error) {
			return a.ListEndpoints(ctx, &agentapi.ListEndpointsRequest{})
		}},
		{"identities", func(ctx context.Context) (proto.Message, error) {
			return a.ListIdentities(ctx, &agentapi.ListIdentitiesRequest{})
		}},
		{"ipcache", func(ctx context.Context) (proto.Message, error) {
			return a.ListIPCache(ctx, &agentapi.ListIPCacheRequest{})
		}},
		{"services", func(ctx context.Context) (proto.Message, error) {
			return a.ListServices(ctx, &agentapi.ListServicesRequest{})
		}},
		{"policies", func(ctx context.Context) (proto.Message, error) { return p.List(ctx, &agentapi.ListPoliciesRequest{}) }},
	}
	for _, m := range sysdumpMaps {
		calls = append(calls, struct {
			name string
			call func(ctx context.Context) (proto.Message, error)
		}{"bpf-" + m, func(ctx context.Context) (proto.Message, error) {
			return a.DumpBPF(ctx, &agentapi.DumpBPFRequest{Map: m})
		}})
	}
	for _, c := range calls {
		cctx, cancel := context.WithTimeout(ctx, d.timeout)
		msg, err := c.call(cctx)
		cancel()
		if err != nil {
			d.problem("node %s: %s: %v", node, c.name, err)
			continue
		}
		b, err := protojson.MarshalOptions{Multiline: true, UseProtoNames: true}.Marshal(msg)
		if err != nil {
			d.problem("node %s: %s: %v", node, c.name, err)
			continue
		}
		d.add(dir+c.name+".json", redactJSON(b))
	}
}

// storeRecord is one key of a sysdump's store.json.
type storeRecord struct {
	Key      string          `json:"key"`
	Revision uint64          `json:"revision,omitempty"`
	Value    json.RawMessage `json:"value,omitempty"`
	Text     string          `json:"text,omitempty"`
	Base64   string          `json:"base64,omitempty"`
}

func (d *sysdump) collectStore(ctx context.Context, cluster, backend string, endpoints []string) {
	fmt.Fprintf(d.progress, "collecting the store of cluster %s\n", cluster)
	cfg := kvstore.DefaultConfig()
	cfg.Backend, cfg.Endpoints = backend, endpoints
	cctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	c, err := dial.Open(cctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		d.problem("cluster %s: the store: %v", cluster, err)
		return
	}
	defer c.Close(context.WithoutCancel(ctx))
	kvs, err := c.List(cctx, cfg.Prefix)
	if err != nil {
		d.problem("cluster %s: list the store: %v", cluster, err)
		return
	}
	recs := make([]storeRecord, 0, len(kvs))
	for _, kv := range kvs {
		recs = append(recs, sysdumpRecord(kv))
	}
	b, err := json.MarshalIndent(recs, "", "  ")
	if err != nil {
		d.problem("cluster %s: encode the store: %v", cluster, err)
		return
	}
	d.add("clusters/"+cluster+"/store.json", b)
}

// sysdumpRecord keeps a JSON value as JSON (redacted), text as text and
// anything else as base64.
func sysdumpRecord(kv kvstore.KeyValue) storeRecord {
	r := storeRecord{Key: kv.Key, Revision: kv.Revision}
	switch {
	case json.Valid(kv.Value):
		r.Value = redactJSON(kv.Value)
	case utf8.Valid(kv.Value):
		r.Text = string(kv.Value)
	default:
		r.Base64 = base64.StdEncoding.EncodeToString(kv.Value)
	}
	return r
}

func (d *sysdump) collectLog(name, path string) {
	f, err := os.Open(path)
	if err != nil {
		d.problem("log %s: %v", path, err)
		return
	}
	defer f.Close()
	var r io.Reader = f
	if fi, err := f.Stat(); err == nil && d.logLimit > 0 && fi.Size() > d.logLimit {
		if _, err := f.Seek(fi.Size()-d.logLimit, io.SeekStart); err == nil {
			r = io.MultiReader(strings.NewReader(fmt.Sprintf("[... %d earlier bytes left out by --log-limit ...]\n", fi.Size()-d.logLimit)), f)
		}
	}
	var b bytes.Buffer
	if _, err := io.Copy(&b, r); err != nil {
		d.problem("log %s: %v", path, err)
		return
	}
	d.add(name, b.Bytes())
}

// secretField says whether a JSON field's value must not leave the host.
func secretField(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"password", "passwd", "token", "secret", "private", "credential"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// redactJSON replaces the values of secret-looking fields, at any depth,
// by "[redacted]"; input that is not JSON is returned unchanged.
func redactJSON(b []byte) []byte {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return b
	}
	if !redactValue(v) {
		return b
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return b
	}
	return out
}

// redactValue redacts v in place and says whether anything changed.
func redactValue(v any) bool {
	changed := false
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if secretField(k) {
				if x != nil && x != "" {
					t[k] = "[redacted]"
					changed = true
				}
				continue
			}
			changed = redactValue(x) || changed
		}
	case []any:
		for _, x := range t {
			changed = redactValue(x) || changed
		}
	}
	return changed
}
