package clustermesh

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// EnableOptions say what `weft clustermesh enable` creates.
type EnableOptions struct {
	Dir     Dir
	Cluster string
	ID      uint32
	// Hosts are the addresses (IPs or DNS names) clients reach the
	// apiserver at; they go into its serving certificate, with localhost
	// and 127.0.0.1.
	Hosts []string
	// Config is the apiserver's configuration (flag names to values),
	// written to apiserver.json.
	Config map[string]any
	// Step reports progress, one line per step (nil: silent).
	Step func(format string, args ...any)
}

// Enable creates (or completes) a cluster's clustermesh directory: the CA,
// the serving, root, admin and agent certificates, and the apiserver
// configuration. It is idempotent: what exists is kept, and a directory
// that belongs to another cluster is refused.
func Enable(o EnableOptions) error {
	step := o.Step
	if step == nil {
		step = func(string, ...any) {}
	}
	if err := (Info{Name: o.Cluster, ID: o.ID, Routing: "tunnel"}).Validate(); err != nil {
		return err
	}
	if err := checkOwner(o.Dir, o.Cluster, o.ID); err != nil {
		return err
	}
	if err := checkGlobalUnchanged(o); err != nil {
		return err
	}
	if err := os.MkdirAll(string(o.Dir), 0o700); err != nil {
		return fmt.Errorf("create clustermesh directory: %w", err)
	}
	ca, err := LoadCA(string(o.Dir))
	switch {
	case err == nil:
		step("CA of %s: kept %s", o.Cluster, o.Dir.Path(CAFile))
	case errors.Is(err, fs.ErrNotExist):
		if ca, err = NewCA(o.Cluster); err != nil {
			return err
		}
		if err := ca.Save(string(o.Dir)); err != nil {
			return err
		}
		step("CA of %s: created %s (ECDSA P-256)", o.Cluster, o.Dir.Path(CAFile))
	default:
		return err
	}
	if _, created, err := EnsureRemoteCA(o.Dir, o.Cluster); err != nil {
		return err
	} else if created {
		step("remote CA of %s: created %s (signs only remote clusters' read-only certificates)", o.Cluster, o.Dir.Cert(RemoteCAName))
	}
	hosts := append([]string{"localhost", "127.0.0.1"}, o.Hosts...)
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	certs := []struct {
		name   string
		server bool
		hosts  []string
	}{{Server, true, hosts}, {UserRoot, false, hosts}, {UserAdmin, false, hosts}, {UserAgent, false, hosts},
		{FlowsAgent, true, []string{FlowsAgentName}}, {Relay, false, hosts}}
	for _, c := range certs {
		if _, err := os.Stat(o.Dir.Cert(c.name)); err == nil && !c.server {
			continue
		}
		if c.server && sameHosts(o.Dir.Cert(c.name), c.hosts) {
			continue
		}
		cert, key, err := ca.Issue(c.name, c.server, c.hosts)
		if err != nil {
			return err
		}
		if err := WritePair(string(o.Dir), c.name, cert, key); err != nil {
			return err
		}
		if c.server {
			step("certificate %s: serving %v", o.Dir.Cert(c.name), c.hosts)
		} else {
			step("certificate %s: client %q", o.Dir.Cert(c.name), c.name)
		}
	}
	cfg := map[string]any{}
	for k, v := range o.Config {
		cfg[k] = v
	}
	cfg["cluster-name"], cfg["cluster-id"], cfg["dir"] = o.Cluster, o.ID, string(o.Dir)
	raw, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encode apiserver configuration: %w", err)
	}
	if old, err := os.ReadFile(o.Dir.Path(ConfigFile)); err == nil && string(old) == string(raw)+"\n" {
		step("apiserver configuration: unchanged %s", o.Dir.Path(ConfigFile))
		return nil
	}
	if err := WriteFile(o.Dir.Path(ConfigFile), append(raw, '\n'), 0o644); err != nil {
		return err
	}
	step("apiserver configuration: wrote %s (run: weft-apiserver --config %s)", o.Dir.Path(ConfigFile), o.Dir.Path(ConfigFile))
	return nil
}

// checkOwner refuses a directory whose configuration names another cluster.
func checkOwner(d Dir, cluster string, id uint32) error {
	raw, err := os.ReadFile(d.Path(ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", d.Path(ConfigFile), err)
	}
	var have struct {
		Name string  `json:"cluster-name"`
		ID   float64 `json:"cluster-id"`
	}
	if err := json.Unmarshal(raw, &have); err != nil {
		return fmt.Errorf("read %s: %w", d.Path(ConfigFile), err)
	}
	if have.Name != cluster || uint32(have.ID) != id {
		return fmt.Errorf("enable %s (id %d): %s already belongs to cluster %s (id %v); use another directory or the cluster's name and id", cluster, id, d, have.Name, have.ID)
	}
	return nil
}

// checkGlobalUnchanged refuses a global CIDR other than the one in
// apiserver.json while the cluster is connected (remotes/<cluster> exist):
// the connected clusters know its pods by the old range.
func checkGlobalUnchanged(o EnableOptions) error {
	raw, err := os.ReadFile(o.Dir.Path(ConfigFile))
	if err != nil {
		return nil // no configuration yet (checkOwner reported other errors)
	}
	var have struct {
		Global string `json:"global-cidr"`
	}
	if err := json.Unmarshal(raw, &have); err != nil {
		return fmt.Errorf("read %s: %w", o.Dir.Path(ConfigFile), err)
	}
	want, _ := o.Config["global-cidr"].(string)
	if have.Global == want {
		return nil
	}
	ents, err := os.ReadDir(o.Dir.Path(RemotesSubdir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("list the connected clusters of %s: %w", o.Cluster, err)
	}
	var connected []string
	for _, e := range ents {
		if e.IsDir() {
			connected = append(connected, e.Name())
		}
	}
	if len(connected) == 0 {
		return nil
	}
	show := func(s string) string { return cmp.Or(s, "none") }
	return fmt.Errorf("enable %s: --global-cidr %s: %s has the global CIDR %s and is connected to %s, which know its pods by it; "+
		"disconnect first (weft clustermesh disconnect %s <cluster>, for each), then change it and connect again, or keep --global-cidr %s",
		o.Cluster, show(want), o.Cluster, show(have.Global), strings.Join(connected, ", "), o.Cluster, show(have.Global))
}

// sameHosts reports whether the certificate at path covers exactly hosts.
func sameHosts(path string, hosts []string) bool {
	raw, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	have, err := certHosts(raw)
	if err != nil {
		return false
	}
	return slices.Equal(have, hosts)
}

// EnsureRemoteCA loads the remote CA of d, creating it when the directory
// has none (one made before the read-only front existed).
func EnsureRemoteCA(d Dir, cluster string) (ca *CA, created bool, err error) {
	ca, err = LoadRemoteCA(string(d))
	if !errors.Is(err, fs.ErrNotExist) {
		return ca, false, err
	}
	if ca, err = NewRemoteCA(cluster); err != nil {
		return nil, false, err
	}
	if err := ca.SaveAs(string(d), RemoteCAName); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}
