package image

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/weftnet/weft/internal/testgate"
)

// TestImage builds the image twice: the same digest and the same archive
// bytes both times; the archive is an OCI layout whose image runs linux/amd64,
// holds every binary the Helm chart's commands name, static and executable,
// in /usr/local/bin.
func TestImage(t *testing.T) {
	testgate.Short(t)
	dir := t.TempDir()
	build := func(name string) (string, string) {
		out := filepath.Join(dir, name)
		d, err := Build(context.Background(), Options{Module: "../..", Output: out, Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return out, d.String()
	}
	a, da := build("a.oci.tar")
	b, db := build("b.oci.tar")
	ba, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if da != db || !bytes.Equal(ba, bb) {
		t.Fatalf("two builds differ: %s vs %s (archives equal: %v)", da, db, bytes.Equal(ba, bb))
	}

	// Read it back as an OCI layout.
	lay := filepath.Join(dir, "layout")
	untar(t, a, lay)
	idx, err := layout.ImageIndexFromPath(lay)
	if err != nil {
		t.Fatalf("not an OCI layout: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("index: %v, %d manifests", err, len(im.Manifests))
	}
	if im.Manifests[0].Digest.String() != da {
		t.Errorf("the layout holds %s, the build said %s", im.Manifests[0].Digest, da)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || !slices.Equal(cf.Config.Entrypoint, []string{"/usr/local/bin/weft-agent"}) {
		t.Errorf("config: %s/%s entrypoint %v", cf.OS, cf.Architecture, cf.Config.Entrypoint)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %v (%d)", err, len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	found := map[string]bool{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, _ := io.ReadAll(tr)
		f, err := elf.NewFile(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s is not an ELF binary: %v", h.Name, err)
			continue
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked: it would need a libc the image does not have", h.Name)
			}
		}
		if h.Mode&0o111 == 0 || h.Uid != 0 {
			t.Errorf("%s: mode %o uid %d, want executable, root's", h.Name, h.Mode, h.Uid)
		}
		found["/"+h.Name] = true
	}
	// Every program the chart runs is there.
	chart, _ := os.ReadFile("../../deploy/manifests/weft.yaml")
	for _, m := range regexp.MustCompile(`/usr/local/bin/[a-z-]+`).FindAllString(string(chart), -1) {
		if !found[m] {
			t.Errorf("the chart runs %s, which the image does not hold", m)
		}
	}
	if !found["/usr/local/bin/weft-cni"] {
		t.Error("weft-cni (what install-cni copies) is not in the image")
	}
}

func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			os.MkdirAll(p, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		b, _ := io.ReadAll(tr)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
