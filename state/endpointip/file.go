package endpointip

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
)

// fileState is the on-disk format, STABLE (v1).
type fileState struct {
	Version int                   `json:"v"`
	CIDR    netip.Prefix          `json:"cidr"`
	Next    netip.Addr            `json:"next,omitzero"`
	Owners  map[netip.Addr]string `json:"owners"`
}

const maxStateFile = 64 << 20

func load(path string, cidr netip.Prefix) (fileState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return fileState{Version: 1, CIDR: cidr, Owners: map[netip.Addr]string{}}, nil
	}
	if err != nil {
		return fileState{}, fmt.Errorf("read endpoint IP state %s: %w", path, err)
	}
	if len(b) > maxStateFile {
		return fileState{}, fmt.Errorf("read endpoint IP state %s: %d bytes, at most %d accepted", path, len(b), maxStateFile)
	}
	var st fileState
	if err := json.Unmarshal(b, &st); err != nil {
		return fileState{}, fmt.Errorf("decode endpoint IP state %s: %w", path, err)
	}
	if st.Version != 1 || st.CIDR != cidr {
		return fileState{}, fmt.Errorf("decode endpoint IP state %s: version %d for %v, want version 1 for %v", path, st.Version, st.CIDR, cidr)
	}
	if st.Owners == nil {
		st.Owners = map[netip.Addr]string{}
	}
	for ip := range st.Owners {
		if !cidr.Contains(ip) {
			return fileState{}, fmt.Errorf("decode endpoint IP state %s: address %v outside %v", path, ip, cidr)
		}
	}
	return st, nil
}

// save writes the state atomically and durably: temp file, fsync, rename,
// fsync of the directory.
func (a *Allocator) save() error {
	b, err := json.Marshal(a.state)
	if err != nil {
		return fmt.Errorf("encode endpoint IP state: %w", err)
	}
	tmp := a.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write endpoint IP state %s: %w", tmp, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write endpoint IP state %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync endpoint IP state %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close endpoint IP state %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, a.path); err != nil {
		return fmt.Errorf("replace endpoint IP state %s: %w", a.path, err)
	}
	d, err := os.Open(filepath.Dir(a.path))
	if err != nil {
		return fmt.Errorf("sync endpoint IP state dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync endpoint IP state dir: %w", err)
	}
	return nil
}

func addrCount(p netip.Prefix) uint64 {
	d := p.Addr().BitLen() - p.Bits()
	if d >= 63 {
		return 1 << 63
	}
	return 1 << d
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	n := new(big.Int).SetBytes(b)
	host := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(p.Addr().BitLen()-p.Bits())), big.NewInt(1))
	n.Or(n, host)
	out := make([]byte, len(b))
	n.FillBytes(out)
	a, _ := netip.AddrFromSlice(out)
	return a
}
