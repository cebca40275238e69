package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/cni"
)

func newInstallCNICommand() *cobra.Command {
	var binDir, confDir, confName, conflist, binary string
	cmd := &cobra.Command{
		Use:   "install-cni",
		Short: "Put weft-cni and its network configuration where the container runtime looks",
		Long: `Copy the weft-cni binary into the CNI binary directory and write the network
configuration list into the CNI configuration directory, each atomically
(a temporary file renamed into place), so a runtime never reads half a file.
The configuration list is checked first (JSON with cniVersion, name and a
weft-cni plugin whose settings weft-cni accepts): a bad one changes nothing.
Running it again with the same input changes nothing. The Helm chart's
agent runs it as an init container.`,
		Example: `  weft install-cni --conflist /etc/weft/config/cni.conflist
  weft install-cni --bin-dir /host/opt/cni/bin --conf-dir /host/etc/cni/net.d --conflist cni.conflist`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conf, err := os.ReadFile(conflist)
			if err != nil {
				return fmt.Errorf("read --conflist: %w", err)
			}
			if err := checkConflist(conf); err != nil {
				return fmt.Errorf("network configuration %s: %w; nothing was installed", conflist, err)
			}
			if binary == "" {
				self, err := os.Executable()
				if err != nil {
					return err
				}
				binary = filepath.Join(filepath.Dir(self), "weft-cni")
			}
			bin, err := os.ReadFile(binary)
			if err != nil {
				return fmt.Errorf("read the weft-cni binary: %w (give --cni-binary)", err)
			}
			for _, d := range []string{binDir, confDir} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					return fmt.Errorf("create %s: %w", d, err)
				}
			}
			dst := filepath.Join(binDir, "weft-cni")
			if err := clustermesh.WriteFile(dst, bin, 0o755); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "installed %s (%d bytes)\n", dst, len(bin))
			dst = filepath.Join(confDir, confName)
			if err := clustermesh.WriteFile(dst, conf, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "installed %s\n", dst)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&binDir, "bin-dir", "/opt/cni/bin", "CNI binary directory")
	f.StringVar(&confDir, "conf-dir", "/etc/cni/net.d", "CNI configuration directory")
	f.StringVar(&confName, "conf-name", "05-weft.conflist", "file name of the configuration list (a lower name wins over other networks')")
	f.StringVar(&conflist, "conflist", "", "network configuration list to install (required)")
	f.StringVar(&binary, "cni-binary", "", "weft-cni binary to copy (default: next to this weft binary)")
	_ = cmd.MarkFlagRequired("conflist")
	return cmd
}

// checkConflist accepts a configuration list holding a weft-cni plugin
// whose configuration weft-cni itself accepts.
func checkConflist(b []byte) error {
	var l struct {
		CNIVersion string            `json:"cniVersion"`
		Name       string            `json:"name"`
		Plugins    []json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if l.CNIVersion == "" || l.Name == "" {
		return fmt.Errorf("cniVersion and name are required")
	}
	for _, p := range l.Plugins {
		var m map[string]any
		if err := json.Unmarshal(p, &m); err != nil {
			return fmt.Errorf("plugin: %w", err)
		}
		if m["type"] != "weft-cni" {
			continue
		}
		m["cniVersion"], m["name"] = l.CNIVersion, l.Name
		conf, _ := json.Marshal(m)
		if _, terr := cni.ParseConfig(conf); terr != nil {
			return fmt.Errorf("weft-cni plugin: %s", strings.TrimSpace(terr.Msg+" "+terr.Details))
		}
		return nil
	}
	return fmt.Errorf("no plugin of type weft-cni in plugins[]")
}

func newMeshCopyDirCommand() *cobra.Command {
	var from, to, owner string
	cmd := &cobra.Command{
		Use:   "copy-dir",
		Short: "Copy a clustermesh directory's files (e.g. from a mounted Secret) into a writable directory",
		Long: `Copy every regular file at the top of --from into --to (created when
missing), keys (*.key) with mode 0600, the rest 0644, each atomically.
Hidden entries (a mounted Secret's ..data links) are skipped. The Helm chart's
apiserver runs it to turn its clustermesh Secret into the writable
directory weft-apiserver --dir needs. --chown UID:GID then hands --to and
the copied files to the apiserver's user (an embedded store's data
directory is on the node, owned by root).`,
		Example: `  weft clustermesh copy-dir --from /etc/weft/clustermesh-secret --to /var/lib/weft/clustermesh/c1
  weft clustermesh copy-dir --from /etc/weft/clustermesh-secret --to /var/lib/weft/clustermesh/c1 --chown 65532:65532`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			uid, gid := -1, -1
			if owner != "" {
				u, g, ok := strings.Cut(owner, ":")
				var err1, err2 error
				uid, err1 = strconv.Atoi(u)
				gid, err2 = strconv.Atoi(g)
				if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 {
					return fmt.Errorf("--chown %q: want numeric UID:GID, e.g. 65532:65532", owner)
				}
			}
			ents, err := os.ReadDir(from)
			if err != nil {
				return fmt.Errorf("read --from: %w", err)
			}
			if err := os.MkdirAll(to, 0o700); err != nil {
				return fmt.Errorf("create --to: %w", err)
			}
			n := 0
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".") {
					continue
				}
				src := filepath.Join(from, e.Name())
				fi, err := os.Stat(src) // follows a Secret's links
				if err != nil || !fi.Mode().IsRegular() {
					continue
				}
				f, err := os.Open(src)
				if err != nil {
					return err
				}
				b, err := io.ReadAll(f)
				f.Close()
				if err != nil {
					return fmt.Errorf("read %s: %w", src, err)
				}
				mode := os.FileMode(0o644)
				if strings.HasSuffix(e.Name(), ".key") {
					mode = 0o600
				}
				if err := clustermesh.WriteFile(filepath.Join(to, e.Name()), b, mode); err != nil {
					return err
				}
				if uid >= 0 {
					if err := os.Chown(filepath.Join(to, e.Name()), uid, gid); err != nil {
						return fmt.Errorf("--chown: %w", err)
					}
				}
				n++
			}
			if n == 0 {
				return fmt.Errorf("--from %s holds no files: is the clustermesh Secret mounted there?", from)
			}
			if uid >= 0 {
				if err := os.Chown(to, uid, gid); err != nil {
					return fmt.Errorf("--chown: %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "copied %d files into %s, owned by %d:%d\n", n, to, uid, gid)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "copied %d files into %s\n", n, to)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "directory to copy from (required)")
	cmd.Flags().StringVar(&to, "to", "", "directory to copy into (required)")
	cmd.Flags().StringVar(&owner, "chown", "", "UID:GID to own --to and the copied files (root only)")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}
