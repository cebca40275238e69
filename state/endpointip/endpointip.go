package endpointip

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/weftnet/weft/state/records"
)

// Errors checked with errors.Is.
var (
	ErrExhausted = errors.New("no free address in the pod CIDR")
	ErrInUse     = errors.New("address already allocated")
	ErrReserved  = errors.New("address reserved")
)

// Allocator hands out addresses of one CIDR. Safe for concurrent use.
type Allocator struct {
	path string
	lock *os.File

	mu    sync.Mutex
	state fileState
}

// Open loads (or creates) the state of cidr under dir and locks it against
// other processes. Close releases the lock.
func Open(dir string, cidr netip.Prefix) (*Allocator, error) {
	if !cidr.IsValid() || cidr != cidr.Masked() || cidr.Addr().BitLen()-cidr.Bits() < 2 {
		return nil, fmt.Errorf("open endpoint IP state: CIDR %v: need a masked prefix with at least 4 addresses", cidr)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create endpoint IP state dir: %w", err)
	}
	path := filepath.Join(dir, records.CIDRKey(cidr)+".json")
	lf, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path+".lock", err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lf.Close()
		return nil, fmt.Errorf("lock %s: another process holds it: %w", path+".lock", err)
	}
	st, err := load(path, cidr)
	if err != nil {
		lf.Close()
		return nil, err
	}
	return &Allocator{path: path, lock: lf, state: st}, nil
}

// Close releases the lock; the state stays on disk.
func (a *Allocator) Close() error { return a.lock.Close() }

// CIDR is the prefix addresses come from.
func (a *Allocator) CIDR() netip.Prefix { return a.state.CIDR }

// Gateway is the reserved first host address.
func (a *Allocator) Gateway() netip.Addr { return a.state.CIDR.Addr().Next() }

// reserved reports whether ip is never handed out.
func (a *Allocator) reserved(ip netip.Addr) bool {
	p := a.state.CIDR
	return ip == p.Addr() || ip == a.Gateway() || (ip.Is4() && ip == lastAddr(p))
}

// Allocate returns owner's address, taking the next free one if owner has
// none. The allocation is on disk when it returns.
func (a *Allocator) Allocate(owner string) (netip.Addr, error) {
	if owner == "" {
		return netip.Addr{}, errors.New("allocate endpoint IP: empty owner")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for ip, o := range a.state.Owners {
		if o == owner {
			return ip, nil
		}
	}
	p := a.state.CIDR
	ip := a.state.Next
	if !p.Contains(ip) {
		ip = p.Addr()
	}
	size := addrCount(p)
	for i := uint64(0); i < size; i++ {
		cand := ip
		ip = ip.Next()
		if !p.Contains(ip) {
			ip = p.Addr()
		}
		if a.reserved(cand) {
			continue
		}
		if _, used := a.state.Owners[cand]; used {
			continue
		}
		a.state.Owners[cand] = owner
		a.state.Next = ip
		if err := a.save(); err != nil {
			delete(a.state.Owners, cand)
			return netip.Addr{}, err
		}
		return cand, nil
	}
	return netip.Addr{}, fmt.Errorf("allocate endpoint IP for %s: %w: all %d usable addresses of %s are taken", owner, ErrExhausted, len(a.state.Owners), p)
}

// AllocateIP takes a specific address for owner (e.g. the node's health IP).
func (a *Allocator) AllocateIP(ip netip.Addr, owner string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.state.CIDR.Contains(ip) {
		return fmt.Errorf("allocate endpoint IP %v: not in %s", ip, a.state.CIDR)
	}
	if a.reserved(ip) {
		return fmt.Errorf("allocate endpoint IP %v: %w (network, gateway or broadcast)", ip, ErrReserved)
	}
	if o, used := a.state.Owners[ip]; used {
		if o == owner {
			return nil
		}
		return fmt.Errorf("allocate endpoint IP %v for %s: %w by %s", ip, owner, ErrInUse, o)
	}
	a.state.Owners[ip] = owner
	if err := a.save(); err != nil {
		delete(a.state.Owners, ip)
		return err
	}
	return nil
}

// Release frees owner's address; releasing nothing is not an error (CNI DEL
// is idempotent).
func (a *Allocator) Release(owner string) (netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for ip, o := range a.state.Owners {
		if o == owner {
			delete(a.state.Owners, ip)
			if err := a.save(); err != nil {
				a.state.Owners[ip] = o
				return netip.Addr{}, err
			}
			return ip, nil
		}
	}
	return netip.Addr{}, nil
}

// Allocated copies address → owner.
func (a *Allocator) Allocated() map[netip.Addr]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[netip.Addr]string, len(a.state.Owners))
	for k, v := range a.state.Owners {
		out[k] = v
	}
	return out
}
