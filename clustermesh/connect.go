package clustermesh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/weftnet/weft/api/adminapi"
	"github.com/weftnet/weft/state/records"
)

// Target is a cluster the CLI manages: its clustermesh directory and the
// admin API address of its apiserver.
type Target struct {
	Name  string
	Dir   Dir
	Admin string
	// Endpoints, when set, are what remote clusters are told to read this
	// cluster's store at instead of what its apiserver advertises: the
	// addresses of its Service when it runs in Kubernetes.
	Endpoints []string
}

// LoadTarget finds cluster name under root (<root>/<name>, made by
// `weft clustermesh enable`), and its admin address in apiserver.json
// (a unix socket first).
func LoadTarget(root, name string) (Target, error) {
	if err := records.ValidateMeshClusterName(name); err != nil {
		return Target{}, err
	}
	d := Dir(filepath.Join(root, name))
	raw, err := os.ReadFile(d.Path(ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Target{}, fmt.Errorf("cluster %s: no clustermesh directory %s; run `weft clustermesh enable %s` first", name, d, name)
	}
	if err != nil {
		return Target{}, fmt.Errorf("cluster %s: %w", name, err)
	}
	var cfg struct {
		Admin []string `json:"admin-listen"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil || len(cfg.Admin) == 0 {
		return Target{}, fmt.Errorf("cluster %s: %s has no admin-listen address (%v)", name, d.Path(ConfigFile), err)
	}
	t := Target{Name: name, Dir: d, Admin: cfg.Admin[0]}
	for _, a := range cfg.Admin {
		if strings.HasPrefix(a, "unix:") {
			t.Admin = a
		}
	}
	return t, nil
}

// conn is an open admin API client of one target.
type conn struct {
	t     Target
	api   adminapi.AdminClient
	close func() error
	info  Info
	list  *adminapi.ListRemotesResponse
}

func open(ctx context.Context, t Target) (*conn, error) {
	api, closeFn, err := DialAdmin(t.Dir, t.Admin)
	if err != nil {
		return nil, err
	}
	c := &conn{t: t, api: api, close: closeFn}
	ci, err := api.Info(ctx, &adminapi.InfoRequest{})
	if err != nil {
		closeFn()
		return nil, fmt.Errorf("ask the apiserver of %s at %s: %w (is weft-apiserver running with %s?)", t.Name, t.Admin, err, t.Dir.Path(ConfigFile))
	}
	if c.info, err = InfoFromAPI(ci); err != nil {
		closeFn()
		return nil, err
	}
	if c.info.Name != t.Name {
		closeFn()
		return nil, fmt.Errorf("the apiserver at %s serves cluster %s, not %s", t.Admin, c.info.Name, t.Name)
	}
	if c.list, err = api.ListRemotes(ctx, &adminapi.ListRemotesRequest{}); err != nil {
		closeFn()
		return nil, fmt.Errorf("list the remotes of %s: %w", t.Name, err)
	}
	return c, nil
}

func (c *conn) remotes() []Info {
	var out []Info
	for _, r := range c.list.Remotes {
		if i, err := InfoFromAPI(r); err == nil {
			out = append(out, i)
		}
	}
	return out
}

// Connect connects a and b both ways: each signs a read-only certificate
// for the other and learns the other's endpoints and CA. Everything is
// checked before anything changes; connecting again is harmless.
func Connect(ctx context.Context, a, b Target, step func(string, ...any)) error {
	if a.Name == b.Name {
		return fmt.Errorf("connect %s to itself: name two different clusters", a.Name)
	}
	ca, err := open(ctx, a)
	if err != nil {
		return err
	}
	defer ca.close()
	cb, err := open(ctx, b)
	if err != nil {
		return err
	}
	defer cb.close()
	if err := CheckJoin(ca.info, ca.remotes(), cb.info); err != nil {
		return err
	}
	if err := CheckJoin(cb.info, cb.remotes(), ca.info); err != nil {
		return err
	}
	global := ""
	if ca.info.Global() && cb.info.Global() {
		global = fmt.Sprintf(", global CIDRs %v and %v", ca.info.GlobalCIDR, cb.info.GlobalCIDR)
	}
	step("%s (id %d) and %s (id %d): compatible (%s routing, pod CIDRs %v and %v%s)", a.Name, ca.info.ID, b.Name, cb.info.ID, ca.info.Routing, ca.info.PodCIDRs, cb.info.PodCIDRs, global)
	for _, dir := range [][2]*conn{{ca, cb}, {cb, ca}} {
		reader, served := dir[0], dir[1]
		creds, err := served.api.SignRemote(ctx, &adminapi.SignRemoteRequest{Cluster: reader.t.Name})
		if err != nil {
			return fmt.Errorf("sign a certificate for %s at %s: %w", reader.t.Name, served.t.Name, err)
		}
		step("%s: read-only store user %s, certificate signed by %s's CA", served.t.Name, creds.User, served.t.Name)
		info := served.info
		if len(served.t.Endpoints) > 0 {
			info.Endpoints = served.t.Endpoints
		}
		resp, err := reader.api.AddRemote(ctx, &adminapi.AddRemoteRequest{Remote: InfoToAPI(info), Credentials: creds})
		if err != nil {
			return fmt.Errorf("add %s as a remote of %s: %w", served.t.Name, reader.t.Name, err)
		}
		if resp.Changed {
			step("%s: connects to %s at %s", reader.t.Name, served.t.Name, strings.Join(info.Endpoints, ","))
		} else {
			step("%s: already connected to %s (certificate renewed)", reader.t.Name, served.t.Name)
		}
	}
	return nil
}

// Disconnect removes a and b from each other: records, credentials and
// read-only users. Disconnecting clusters that are not connected is harmless.
func Disconnect(ctx context.Context, a, b Target, step func(string, ...any)) error {
	if a.Name == b.Name {
		return fmt.Errorf("disconnect %s from itself: name two different clusters", a.Name)
	}
	ca, err := open(ctx, a)
	if err != nil {
		return err
	}
	defer ca.close()
	cb, err := open(ctx, b)
	if err != nil {
		return err
	}
	defer cb.close()
	for _, dir := range [][2]*conn{{ca, cb}, {cb, ca}} {
		resp, err := dir[0].api.RemoveRemote(ctx, &adminapi.RemoveRemoteRequest{Cluster: dir[1].t.Name})
		if err != nil {
			return fmt.Errorf("remove %s from %s: %w", dir[1].t.Name, dir[0].t.Name, err)
		}
		if resp.Existed {
			step("%s: disconnected from %s (record, credentials and %s's read-only user removed)", dir[0].t.Name, dir[1].t.Name, dir[1].t.Name)
		} else {
			step("%s: was not connected to %s", dir[0].t.Name, dir[1].t.Name)
		}
	}
	return nil
}

// ClusterStatus is what a cluster's apiserver says about its mesh.
type ClusterStatus struct {
	Info    Info
	Remotes []Info
	Readers []string // remote clusters holding a read-only user here
}

// Status asks t's apiserver.
func Status(ctx context.Context, t Target) (ClusterStatus, error) {
	c, err := open(ctx, t)
	if err != nil {
		return ClusterStatus{}, err
	}
	defer c.close()
	return ClusterStatus{Info: c.info, Remotes: c.remotes(), Readers: c.list.Readers}, nil
}
