package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/weftnet/weft/internal/toolcache"
)

// errNoBinary: a program the environment needs is missing.
var errNoBinary = errors.New("binary not found")

// Binaries are the programs an environment runs.
type Binaries struct {
	Agent  string `json:"agent"`  // weft-agent
	CNI    string `json:"cni"`    // weft-cni
	Weft   string `json:"weft"`   // weft, for `weft testenv run-store`
	Consul string `json:"consul"` // consul, for the consul backend
}

// BinariesIn names weft-agent, weft-cni and weft in dir.
func BinariesIn(dir string) Binaries {
	return Binaries{
		Agent: filepath.Join(dir, "weft-agent"),
		CNI:   filepath.Join(dir, "weft-cni"),
		Weft:  filepath.Join(dir, "weft"),
	}
}

// DefaultBinaries looks next to the running executable (bin/ after `make
// build`), then in dir when given.
func DefaultBinaries(dir string) (Binaries, error) {
	if dir != "" {
		return BinariesIn(dir), nil
	}
	self, err := os.Executable()
	if err != nil {
		return Binaries{}, fmt.Errorf("find the running executable: %w", err)
	}
	return BinariesIn(filepath.Dir(self)), nil
}

// check verifies every binary the spec needs is executable, and finds (or
// builds once, cached) the Consul binary for the consul backend.
func (b *Binaries) check(ctx context.Context, kvstore string, progress io.Writer) error {
	var missing []string
	for _, p := range []string{b.Agent, b.CNI, b.Weft} {
		if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("find binaries: %w: %s (run `make build`, or pass --bin-dir with weft-agent, weft-cni and weft)", errNoBinary, strings.Join(missing, ", "))
	}
	if kvstore == StoreConsul && b.Consul == "" {
		p, err := toolcache.Ensure(ctx, toolcache.Consul(), progress)
		if err != nil {
			return fmt.Errorf("find consul binary: %w", err)
		}
		b.Consul = p
	}
	return nil
}
