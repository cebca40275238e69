package records

import (
	"encoding/json"
	"fmt"
)

// SchemaVersion is the record format version this package writes and reads.
const SchemaVersion = 1

// Size limits per kind of record, well under Consul's 512 KiB per value.
const (
	MaxSmallRecord   = 16 << 10  // nodes, identities, ipcache entries, cluster config
	MaxServiceRecord = 256 << 10 // services with many backends
	MaxPolicyRecord  = 256 << 10 // policy documents
)

// Record is implemented by every record type of this package (pointers).
type Record interface {
	Validate() error
	version() int
	setVersion()
}

func (r *Identity) version() int         { return r.Version }
func (r *Identity) setVersion()          { r.Version = SchemaVersion }
func (r *IdentityRef) version() int      { return r.Version }
func (r *IdentityRef) setVersion()       { r.Version = SchemaVersion }
func (r *Node) version() int             { return r.Version }
func (r *Node) setVersion()              { r.Version = SchemaVersion }
func (r *ClusterConfig) version() int    { return r.Version }
func (r *ClusterConfig) setVersion()     { r.Version = SchemaVersion }
func (r *IPCacheEntry) version() int     { return r.Version }
func (r *IPCacheEntry) setVersion()      { r.Version = SchemaVersion }
func (r *Service) version() int          { return r.Version }
func (r *Service) setVersion()           { r.Version = SchemaVersion }
func (r *PolicyRef) version() int        { return r.Version }
func (r *PolicyRef) setVersion()         { r.Version = SchemaVersion }
func (r *PodCIDR) version() int          { return r.Version }
func (r *PodCIDR) setVersion()           { r.Version = SchemaVersion }
func (r *Remote) version() int           { return r.Version }
func (r *Remote) setVersion()            { r.Version = SchemaVersion }
func (r *Synced) version() int           { return r.Version }
func (r *KubernetesSource) version() int { return r.Version }
func (r *KubernetesSource) setVersion()  { r.Version = SchemaVersion }
func (r *Synced) setVersion()            { r.Version = SchemaVersion }
func (r *Pod) version() int              { return r.Version }
func (r *Pod) setVersion()               { r.Version = SchemaVersion }
func (r *Namespace) version() int        { return r.Version }
func (r *Namespace) setVersion()         { r.Version = SchemaVersion }

// Encode stamps the schema version on r, validates it and marshals it; key
// only names the record in errors.
func Encode(key string, r Record) ([]byte, error) {
	r.setVersion()
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("encode %s: %w", key, err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", key, err)
	}
	return b, nil
}

// decode unmarshals value into r and checks size, version and validity.
func decode(key string, value []byte, limit int, r Record) error {
	if len(value) > limit {
		return fmt.Errorf("decode %s: %w: %d bytes, at most %d accepted", key, ErrInvalid, len(value), limit)
	}
	if err := json.Unmarshal(value, r); err != nil {
		return fmt.Errorf("decode %s: %w: %v", key, ErrInvalid, err)
	}
	if v := r.version(); v != SchemaVersion {
		return fmt.Errorf("decode %s: %w: schema version %d, this build reads %d", key, ErrInvalid, v, SchemaVersion)
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

// mismatch reports a value inconsistent with its key.
func mismatch(key, field, inValue, inKey string) error {
	if field == "cluster" {
		return fmt.Errorf("decode %s: %w: %w: cluster %q in the value, %q in the key", key, ErrInvalid, ErrOtherCluster, inValue, inKey)
	}
	return fmt.Errorf("decode %s: %w: %s %q in the value, %q in the key", key, ErrInvalid, field, inValue, inKey)
}
