package cli

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/strvals"
	"sigs.k8s.io/yaml"
)

// releaseName is the Helm release name the chart is rendered with, as in
// docs/deploy-kubernetes.md's `helm install weft`.
const releaseName = "weft"

// chartValues are the inputs of one rendering: values files (-f), then
// values from the dedicated flags, then --set, each overriding the one
// before, as helm does for -f before --set.
type chartValues struct {
	files []string
	flags map[string]any // dotted keys such as "cluster.id"
	set   []string
}

// merge builds the user-supplied values map.
func (v chartValues) merge() (map[string]any, error) {
	vals := map[string]any{}
	for _, f := range v.files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read values file: %w", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("parse values file %s: %w", f, err)
		}
		vals = mergeValues(vals, m)
	}
	for k, x := range v.flags {
		m := vals
		parts := strings.Split(k, ".")
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = x
	}
	for _, s := range v.set {
		if err := strvals.ParseInto(s, vals); err != nil {
			return nil, fmt.Errorf("parse --set %q: %w (want key=value, e.g. agent.logLevel=debug)", s, err)
		}
	}
	return vals, nil
}

// mergeValues merges b into a, maps recursively, b winning (helm's rule
// for several -f files).
func mergeValues(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = mergeValues(am, bm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// renderChart renders the chart in chartFS exactly as `helm template weft
// <chart> --namespace <ns> --include-crds` does (Helm's own loader,
// values.schema.json check, template engine and install order), without a
// helm binary or a cluster: CRDs first, then the templates' objects, then
// hooks. notes is the chart's rendered NOTES.txt, which helm prints after
// an install.
func renderChart(chartFS fs.FS, namespace string, v chartValues) (manifest, notes string, err error) {
	ch, err := loadChart(chartFS)
	if err != nil {
		return "", "", err
	}
	vals, err := v.merge()
	if err != nil {
		return "", "", err
	}
	if err := chartutil.ProcessDependenciesWithMerge(ch, vals); err != nil {
		return "", "", fmt.Errorf("process chart dependencies: %w", err)
	}
	opts := chartutil.ReleaseOptions{Name: releaseName, Namespace: namespace, Revision: 1, IsInstall: true}
	renderVals, err := chartutil.ToRenderValuesWithSchemaValidation(ch, vals, opts, chartutil.DefaultCapabilities.Copy(), false)
	if err != nil {
		return "", "", err
	}
	files, err := engine.Engine{}.Render(ch, renderVals)
	if err != nil {
		return "", "", fmt.Errorf("render chart: %w", err)
	}
	for name, body := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			notes = strings.TrimSpace(body)
			delete(files, name)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return "", "", fmt.Errorf("sort rendered manifests: %w", err)
	}
	var b bytes.Buffer
	for _, crd := range ch.CRDObjects() {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", crd.Filename, crd.File.Data)
	}
	for _, m := range manifests {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	out := strings.TrimSpace(b.String()) + "\n"
	for _, h := range hooks {
		out += fmt.Sprintf("---\n# Source: %s\n%s\n", h.Path, h.Manifest)
	}
	return out, notes, nil
}

// loadChart reads a chart from a file system whose root holds Chart.yaml.
func loadChart(chartFS fs.FS) (*chart.Chart, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(chartFS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(chartFS, p)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: path.Clean(p), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read chart: %w", err)
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("load chart: %w", err)
	}
	return ch, nil
}
