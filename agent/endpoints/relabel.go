package endpoints

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/weftnet/weft/k8s/podlabels"
)

// relabelResync is how often every local Kubernetes pod's labels are
// compared with the mirror besides the changes followed: a change that
// raced with the pod's creation is caught within it.
const relabelResync = time.Minute

// relabelWait bounds the wait for a pod's record when relabelling: it was
// just written (or is gone).
const relabelWait = time.Second

// FollowLabels keeps the identities of this node's Kubernetes pods true
// to their mirrored labels (and their namespaces'): when they change, the
// endpoint gets the identity of its new labels (datapath, policy, ipcache)
// and releases the old one. Established connections keep flowing where
// policy allows the new identity. It returns when ctx ends; without a
// Kubernetes source it only waits.
func (e *Manager) FollowLabels(ctx context.Context) error {
	if e.podLabels == nil {
		<-ctx.Done()
		return nil
	}
	changes := e.podLabels.Changes(ctx)
	tick := time.NewTicker(relabelResync)
	defer tick.Stop()
	for {
		var match func(*Endpoint) bool
		select {
		case <-ctx.Done():
			return nil
		case ch, ok := <-changes:
			if !ok {
				return nil
			}
			match = func(ep *Endpoint) bool {
				return ep.Pod != "" && ep.Namespace == ch.Namespace && (ch.Pod == "" || ep.Pod == ch.Pod)
			}
		case <-tick.C:
			match = func(ep *Endpoint) bool { return ep.Pod != "" }
		}
		for _, ep := range e.List() {
			if !match(ep) {
				continue
			}
			if err := e.relabel(ctx, ep); err != nil && ctx.Err() == nil {
				e.log.Warn("endpoint keeps its identity: its new Kubernetes labels could not be applied",
					"id", ep.ID, "pod", ep.Namespace+"/"+ep.Pod, "err", err)
			}
		}
	}
}

// relabel gives ep the identity of its pod's current labels, if they
// changed. On failure the endpoint keeps its old identity everywhere.
func (e *Manager) relabel(ctx context.Context, ep *Endpoint) error {
	unlock, err := e.busy.Lock(ctx, busyKey(ep.ID))
	if err != nil {
		return err
	}
	defer unlock()
	cur := e.current(ep)
	if cur == nil {
		return nil // deleted meanwhile
	}
	next := *cur
	if err := e.kubernetesLabels(ctx, &next, relabelWait); err != nil {
		if errors.Is(err, ErrUnavailable) && errors.Is(err, podlabels.ErrNotMirrored) {
			return nil // the pod's record is gone: it is being deleted
		}
		return err
	}
	if next.IdentityLabels, err = e.identityLabels(&next); err != nil {
		return err
	}
	if next.IdentityLabels.String() == cur.IdentityLabels.String() {
		return nil
	}
	if next.Identity, err = e.ids.Allocate(ctx, next.IdentityLabels); err != nil {
		return fmt.Errorf("%w: allocate identity for %v: %w", ErrUnavailable, next.IdentityLabels, err)
	}
	undo := func() {
		uctx := context.WithoutCancel(ctx)
		e.save(cur)
		if err := e.activate(uctx, cur); err != nil {
			e.log.Error("restore the endpoint's old identity", "id", cur.ID, "err", err)
		}
		e.ids.Release(uctx, next.IdentityLabels)
	}
	if err := e.save(&next); err != nil {
		undo()
		return err
	}
	if err := e.activate(ctx, &next); err != nil {
		undo()
		return err
	}
	e.mu.Lock()
	e.byID[next.ID] = &next
	e.mu.Unlock()
	if _, err := e.ids.Release(ctx, cur.IdentityLabels); err != nil {
		e.log.Warn("release identity", "identity", cur.Identity, "err", err)
	}
	e.onChange()
	e.log.Info("endpoint relabelled", "id", next.ID, "pod", next.Namespace+"/"+next.Pod,
		"identity", next.Identity, "was", cur.Identity, "labels", next.IdentityLabels.String())
	return nil
}
