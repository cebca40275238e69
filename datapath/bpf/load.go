package bpf

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
)

// Objects are one node's loaded programs and maps. Maps are shared by all
// programs; field names follow the C names (FromContainer, WeftCt, ...).
type Objects struct {
	weftObjects
}

// Load loads every program and map. With a pinDir, maps are pinned there by
// name and maps already pinned are reused, so conntrack, services and
// policy survive a reload; an empty pinDir loads unpinned maps (tests).
// A pinned map whose layout differs fails with ebpf.ErrMapIncompatible.
func Load(pinDir string) (*Objects, error) {
	spec, err := loadWeft()
	if err != nil {
		return nil, fmt.Errorf("load weft spec: %w", err)
	}
	opts := &ebpf.CollectionOptions{}
	if pinDir != "" {
		if err := os.MkdirAll(pinDir, 0o700); err != nil {
			return nil, fmt.Errorf("create pin dir: %w", err)
		}
		opts.Maps.PinPath = pinDir
	} else {
		for _, m := range spec.Maps {
			m.Pinning = ebpf.PinNone
		}
	}
	var objs Objects
	if err := spec.LoadAndAssign(&objs.weftObjects, opts); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load weft objects: %+v", ve)
		}
		return nil, fmt.Errorf("load weft objects: %w", err)
	}
	return &objs, nil
}

// Close releases the file descriptors; pinned maps stay in bpffs.
func (o *Objects) Close() error {
	return o.weftObjects.Close()
}
