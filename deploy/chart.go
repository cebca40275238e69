// Package deploy holds Weft's deployment artefacts: the Helm chart
// (helm/weft), the manifests rendered from it (manifests/), systemd units,
// Grafana dashboards and configuration examples. Its Go side only embeds
// the chart, so that `weft install` (wired in cmd/weft) renders the very
// chart of the commit the binary was built from.
package deploy

import (
	"embed"
	"io/fs"
)

//go:embed all:helm/weft
var chart embed.FS

// Chart is the Helm chart deploy/helm/weft: Chart.yaml at its root.
func Chart() fs.FS {
	sub, err := fs.Sub(chart, "helm/weft")
	if err != nil {
		panic(err) // the embedded directory exists: a build without it fails
	}
	return sub
}
