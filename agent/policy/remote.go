package policy

import (
	"github.com/weftnet/weft/state/records"
)

// Remote clusters' identities join the engine's universe (policies may
// select pods of other clusters by their labels); agent/clustermesh feeds them.

// UpsertRemoteIdentity adds or changes a remote cluster's identity.
func (e *Engine) UpsertRemoteIdentity(id records.ID, ls records.Labels) {
	e.mu.Lock()
	changed := e.universe.Upsert(id, ls)
	e.mu.Unlock()
	if changed {
		e.kick()
	}
}

// DeleteRemoteIdentity removes a remote cluster's identity.
func (e *Engine) DeleteRemoteIdentity(id records.ID) {
	e.mu.Lock()
	changed := e.universe.Delete(id)
	e.mu.Unlock()
	if changed {
		e.kick()
	}
}
