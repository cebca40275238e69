package records

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ID is a security identity. Reserved identities are below 256; cluster-scoped
// ones are cluster_id<<16 | n with n in 256..65535, so every identity fits the
// 24-bit VXLAN VNI.
type ID uint32

// Reserved identities, STABLE (v1).
const (
	IDHost       ID = 1
	IDWorld      ID = 2
	IDUnmanaged  ID = 3
	IDHealth     ID = 4
	IDRemoteNode ID = 6

	MinClusterLocal = 256   // smallest n in cluster_id<<16 | n
	MaxClusterLocal = 65535 // largest n
)

// Reserved maps each reserved identity to its label set.
var reserved = map[ID]Labels{
	IDHost:       {{Source: SourceReserved, Key: "host"}},
	IDWorld:      {{Source: SourceReserved, Key: "world"}},
	IDUnmanaged:  {{Source: SourceReserved, Key: "unmanaged"}},
	IDHealth:     {{Source: SourceReserved, Key: "health"}},
	IDRemoteNode: {{Source: SourceReserved, Key: "remote-node"}},
}

// ReservedLabels returns the label set of a reserved identity.
func ReservedLabels(id ID) (Labels, bool) {
	l, ok := reserved[id]
	return slices.Clone(l), ok
}

// ReservedID returns the reserved identity for a label set such as
// reserved:host, if it is one.
func ReservedID(ls Labels) (ID, bool) {
	for id, l := range reserved {
		if l.Equal(ls) {
			return id, true
		}
	}
	return 0, false
}

// ClusterIdentity builds cluster_id<<16 | n.
func ClusterIdentity(clusterID uint32, n uint32) ID { return ID(clusterID<<16 | n) }

// ClusterID is the cluster part of a cluster-scoped identity (0 for reserved ones).
func (id ID) ClusterID() uint32 { return uint32(id) >> 16 }

// Local is the n part of a cluster-scoped identity.
func (id ID) Local() uint32 { return uint32(id) & 0xffff }

// IsReserved reports whether id is one of the reserved identities.
func (id ID) IsReserved() bool { _, ok := reserved[id]; return ok }

// Validate accepts a reserved identity or a cluster-scoped one in range.
func (id ID) Validate() error {
	if id.IsReserved() {
		return nil
	}
	if ValidateClusterID(id.ClusterID()) != nil || id.Local() < MinClusterLocal {
		return fmt.Errorf("identity %d: %w: accepted are the reserved 1,2,3,4,6 and cluster_id<<16|n with cluster id 1..255 and n %d..%d", uint32(id), ErrInvalid, MinClusterLocal, MaxClusterLocal)
	}
	return nil
}

func (id ID) String() string { return strconv.FormatUint(uint64(id), 10) }

// ParseID parses a decimal identity and validates it.
func ParseID(s string) (ID, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || strconv.FormatUint(n, 10) != s {
		return 0, fmt.Errorf("identity %q: %w: expected a decimal number", s, ErrInvalid)
	}
	id := ID(n)
	return id, id.Validate()
}

// Identity is the value of the master key state/identities/v1/id/<id>.
// STABLE (v1).
type Identity struct {
	Version int    `json:"v"`
	ID      ID     `json:"id"`
	Labels  Labels `json:"labels"`
}

// Validate checks the id and the label set.
func (r *Identity) Validate() error {
	if err := r.ID.Validate(); err != nil {
		return err
	}
	return r.Labels.Validate()
}

// IdentityRef is the value of a reference key
// state/identities/v1/value/<labels>/<node>. STABLE (v1).
type IdentityRef struct {
	Version int `json:"v"`
	ID      ID  `json:"id"`
}

// Validate checks the id.
func (r *IdentityRef) Validate() error { return r.ID.Validate() }

// ParseIdentityKey returns the id of a master key.
func (k Keys) ParseIdentityKey(key string) (ID, error) {
	t, err := k.tail(key, identityIDDir)
	if err != nil {
		return 0, err
	}
	id, err := ParseID(t)
	if err != nil {
		return 0, fmt.Errorf("parse key %q: %w", key, err)
	}
	return id, nil
}

// ParseIdentityRefKey returns the label segment and node of a reference key.
func (k Keys) ParseIdentityRefKey(key string) (labels, node string, err error) {
	t, err := k.tail(key, identityValueDir)
	if err != nil {
		return "", "", err
	}
	i := strings.LastIndexByte(t, '/')
	if i <= 0 {
		return "", "", fmt.Errorf("parse key %q: %w: expected <labels>/<node>", key, ErrInvalid)
	}
	if err := ValidateNodeName(t[i+1:]); err != nil {
		return "", "", fmt.Errorf("parse key %q: %w", key, err)
	}
	return t[:i], t[i+1:], nil
}

// DecodeIdentity decodes a master key's value and checks it matches the key.
func (k Keys) DecodeIdentity(key string, value []byte) (Identity, error) {
	id, err := k.ParseIdentityKey(key)
	if err != nil {
		return Identity{}, err
	}
	var r Identity
	if err := decode(key, value, MaxSmallRecord, &r); err != nil {
		return Identity{}, err
	}
	if r.ID != id {
		return Identity{}, mismatch(key, "identity", r.ID.String(), id.String())
	}
	return r, nil
}

// DecodeIdentityRef decodes a reference key's value after checking the key.
func (k Keys) DecodeIdentityRef(key string, value []byte) (IdentityRef, error) {
	if _, _, err := k.ParseIdentityRefKey(key); err != nil {
		return IdentityRef{}, err
	}
	var r IdentityRef
	if err := decode(key, value, MaxSmallRecord, &r); err != nil {
		return IdentityRef{}, err
	}
	return r, nil
}
