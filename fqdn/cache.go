package fqdn

import (
	"cmp"
	"container/list"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// MaxIPsPerName bounds the addresses kept for one name: a name answering
// with ever new addresses (a CDN) keeps the ones that expire last.
const MaxIPsPerName = 64

// Entry is one address learnt for a name, valid until Expires.
type Entry struct {
	Name    string     `json:"name"`
	IP      netip.Addr `json:"ip"`
	Expires time.Time  `json:"expires"`
}

// Cache holds the addresses of allowed DNS answers, each until its TTL (at
// least the cache's minimum TTL) runs out. It is safe for concurrent use.
//
// Each name remembers the endpoints (sources) that resolved it. With a
// limit on names per source, a source over it gives up the name it
// resolved longest ago, which leaves the cache when no other source holds
// it: one endpoint resolving ever new names cannot grow the cache without
// bound or push out the names of the others.
type Cache struct {
	minTTL            time.Duration
	maxNamesPerSource int

	mu      sync.Mutex
	names   map[string]map[netip.Addr]time.Time // name → address → expiry
	holders map[string]map[netip.Addr]bool      // name → sources that resolved it
	sources map[netip.Addr]*sourceNames
}

// sourceNames are the names one source holds, the most recently resolved
// first.
type sourceNames struct {
	order *list.List // of string
	at    map[string]*list.Element
}

// NewCache returns an empty cache whose entries live at least minTTL.
func NewCache(minTTL time.Duration) *Cache {
	return &Cache{minTTL: minTTL, names: map[string]map[netip.Addr]time.Time{},
		holders: map[string]map[netip.Addr]bool{}, sources: map[netip.Addr]*sourceNames{}}
}

// LimitNamesPerSource bounds the names one source holds (0: no bound);
// it applies from the next Observe.
func (c *Cache) LimitNamesPerSource(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxNamesPerSource = n
}

// Observe records that name, resolved by source (the endpoint that asked;
// the zero address: none), answered ips for ttl, seen at now, and returns
// the addresses that were not known for name before. An address known
// already gets the later of its two expiries. Names that source gives up
// over its limit are dropped when no other source holds them.
func (c *Cache) Observe(source netip.Addr, name string, ips []netip.Addr, ttl time.Duration, now time.Time) (added []netip.Addr) {
	name = Normalize(name)
	expires := now.Add(max(ttl, c.minTTL))
	c.mu.Lock()
	defer c.mu.Unlock()
	if source.IsValid() {
		c.hold(source.Unmap(), name)
	}
	known := c.names[name]
	if known == nil {
		known = map[netip.Addr]time.Time{}
		c.names[name] = known
	}
	for _, ip := range ips {
		ip = ip.Unmap()
		old, ok := known[ip]
		if !ok {
			added = append(added, ip)
		}
		if expires.After(old) {
			known[ip] = expires
		}
	}
	for len(known) > MaxIPsPerName {
		var first netip.Addr
		var firstExp time.Time
		for ip, exp := range known {
			if !first.IsValid() || exp.Before(firstExp) || (exp.Equal(firstExp) && ip.Less(first)) {
				first, firstExp = ip, exp
			}
		}
		delete(known, first)
		added = slices.DeleteFunc(added, func(a netip.Addr) bool { return a == first })
	}
	if len(known) == 0 {
		c.drop(name)
	}
	slices.SortFunc(added, netip.Addr.Compare)
	return added
}

// hold records that source resolved name, most recently; over the limit,
// source gives up the name it resolved longest ago. c.mu is held.
func (c *Cache) hold(source netip.Addr, name string) {
	sn := c.sources[source]
	if sn == nil {
		sn = &sourceNames{order: list.New(), at: map[string]*list.Element{}}
		c.sources[source] = sn
	}
	if e, ok := sn.at[name]; ok {
		sn.order.MoveToFront(e)
		return
	}
	sn.at[name] = sn.order.PushFront(name)
	if c.holders[name] == nil {
		c.holders[name] = map[netip.Addr]bool{}
	}
	c.holders[name][source] = true
	for c.maxNamesPerSource > 0 && sn.order.Len() > c.maxNamesPerSource {
		oldest := sn.order.Remove(sn.order.Back()).(string)
		delete(sn.at, oldest)
		delete(c.holders[oldest], source)
		if len(c.holders[oldest]) == 0 {
			c.drop(oldest)
		}
	}
}

// drop removes name and every source's hold on it. c.mu is held.
func (c *Cache) drop(name string) {
	delete(c.names, name)
	for source := range c.holders[name] {
		sn := c.sources[source]
		sn.order.Remove(sn.at[name])
		delete(sn.at, name)
		if sn.order.Len() == 0 {
			delete(c.sources, source)
		}
	}
	delete(c.holders, name)
}

// Expire drops what has expired at now and returns it.
func (c *Cache) Expire(now time.Time) []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Entry
	for name, known := range c.names {
		for ip, exp := range known {
			if !exp.After(now) {
				out = append(out, Entry{Name: name, IP: ip, Expires: exp})
				delete(known, ip)
			}
		}
		if len(known) == 0 {
			c.drop(name)
		}
	}
	sortEntries(out)
	return out
}

// Lookup returns the addresses, valid at now, of every name m selects.
func (c *Cache) Lookup(m *Matcher, now time.Time) []netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []netip.Addr
	for name, known := range c.names {
		if !m.Match(name) {
			continue
		}
		for ip, exp := range known {
			if exp.After(now) {
				out = append(out, ip)
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// Entries lists the cache by name, then address.
func (c *Cache) Entries() []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Entry
	for name, known := range c.names {
		for ip, exp := range known {
			out = append(out, Entry{Name: name, IP: ip, Expires: exp})
		}
	}
	sortEntries(out)
	return out
}

func sortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), a.IP.Compare(b.IP))
	})
}

// file is the cache on disk (version 1).
type file struct {
	Version int     `json:"v"`
	Entries []Entry `json:"entries"`
}

// Save writes the cache to path, replacing it atomically, so that an agent
// restarting keeps what its endpoints were allowed to reach.
func (c *Cache) Save(path string) error {
	raw, err := json.Marshal(file{Version: 1, Entries: c.Entries()})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save the FQDN cache: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return fmt.Errorf("save the FQDN cache: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save the FQDN cache: %w", err)
	}
	return nil
}

// Load reads a cache Save wrote, without the entries expired at now; a
// missing file is an empty cache. A file that does not parse, or holds an
// entry that is not a name and an address, is refused whole, naming it.
func Load(path string, minTTL time.Duration, now time.Time) (*Cache, error) {
	c := NewCache(minTTL)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load the FQDN cache: %w", err)
	}
	var f file
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("load the FQDN cache %s: %w", path, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("load the FQDN cache %s: version %d, this agent reads version 1", path, f.Version)
	}
	for i, e := range f.Entries {
		if _, err := Compile(Selector{MatchName: e.Name}); err != nil || !e.IP.IsValid() {
			return nil, fmt.Errorf("load the FQDN cache %s: entry %d (%q, %v) is not a DNS name and an address", path, i, e.Name, e.IP)
		}
		if !e.Expires.After(now) {
			continue
		}
		name := Normalize(e.Name)
		if c.names[name] == nil {
			c.names[name] = map[netip.Addr]time.Time{}
		}
		c.names[name][e.IP.Unmap()] = e.Expires // as saved
	}
	return c, nil
}
