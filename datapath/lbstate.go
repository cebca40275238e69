package datapath

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	"github.com/weftnet/weft/datapath/bpf"
)

// lbState allocates service and backend ids. It is rebuilt from the maps
// at startup so ids, and with them conntrack's backend choices and reverse
// NAT, stay stable across restarts.
type lbState struct {
	services    map[bpf.ServiceKey]uint32
	nextService uint32 // ids are not reused: conntrack may still name old ones
	backends    map[bpf.Backend]uint32
	byID        map[uint32]bpf.Backend
	refs        map[uint32]int
	nextBackend uint32
	slots       map[uint32][]uint32 // service id -> backend ids, slot order
}

func restoreLB(objs *bpf.Objects) (*lbState, error) {
	s := &lbState{
		services: map[bpf.ServiceKey]uint32{}, nextService: 1,
		backends: map[bpf.Backend]uint32{}, byID: map[uint32]bpf.Backend{}, refs: map[uint32]int{}, nextBackend: 1,
		slots: map[uint32][]uint32{},
	}
	var (
		sk  bpf.ServiceKey
		sv  bpf.ServiceValue
		bid uint32
		be  bpf.Backend
		slk bpf.SlotKey
	)
	counts := map[uint32]uint16{}
	it := objs.WeftLbServices.Iterate()
	for it.Next(&sk, &sv) {
		s.services[sk] = sv.Id
		counts[sv.Id] = sv.Count
		s.nextService = max(s.nextService, sv.Id+1)
	}
	bit := objs.WeftLbBackends.Iterate()
	for bit.Next(&bid, &be) {
		s.backends[be] = bid
		s.byID[bid] = be
		s.nextBackend = max(s.nextBackend, bid+1)
	}
	lit := objs.WeftLbSlots.Iterate()
	for lit.Next(&slk, &bid) {
		if slk.Slot == 0 || slk.Slot > uint32(counts[slk.ServiceId]) {
			continue // left by an interrupted update: never read, overwritten on growth
		}
		ids := s.slots[slk.ServiceId]
		for len(ids) < int(slk.Slot) {
			ids = append(ids, 0)
		}
		ids[slk.Slot-1] = bid
		s.slots[slk.ServiceId] = ids
		s.refs[bid]++
	}
	if err := errors.Join(it.Err(), bit.Err(), lit.Err()); err != nil {
		return nil, fmt.Errorf("restore load balancer state: %w", err)
	}
	for b, be := range s.byID { // orphans of an interrupted update
		if s.refs[b] == 0 {
			delete(s.backends, be)
			delete(s.byID, b)
			if err := objs.WeftLbBackends.Delete(b); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return nil, fmt.Errorf("delete orphaned backend %d: %w", b, err)
			}
		}
	}
	return s, nil
}

func (s *lbState) serviceID(k bpf.ServiceKey) uint32 {
	if id, ok := s.services[k]; ok {
		return id
	}
	id := s.nextService
	s.nextService++
	s.services[k] = id
	return id
}

// acquireBackend returns the id of a backend, writing it when new. The
// reference is counted by setSlots.
func (s *lbState) acquireBackend(objs *bpf.Objects, addr netip.AddrPort, proto uint8) (uint32, error) {
	fam, a := bpf.Addr16(addr.Addr())
	be := bpf.Backend{Addr: a, Port: bpf.Htons(addr.Port()), Proto: proto, Family: fam}
	if id, ok := s.backends[be]; ok {
		return id, nil
	}
	id := s.nextBackend
	if err := objs.WeftLbBackends.Put(id, be); err != nil {
		return 0, fmt.Errorf("write backend %s: %w", addr, err)
	}
	s.nextBackend++
	s.backends[be] = id
	s.byID[id] = be
	return id, nil
}

// setSlots records the new slot list of service id, deletes slots beyond
// it and releases backends no slot references any more.
func (s *lbState) setSlots(objs *bpf.Objects, id uint32, ids []uint32) error {
	old := s.slots[id]
	for _, b := range ids {
		s.refs[b]++
	}
	var errs []error
	for i := len(ids); i < len(old); i++ {
		if err := objs.WeftLbSlots.Delete(bpf.SlotKey{ServiceId: id, Slot: uint32(i + 1)}); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("delete slot %d of service %d: %w", i+1, id, err))
		}
	}
	for _, b := range old {
		s.refs[b]--
	}
	if len(ids) == 0 {
		delete(s.slots, id)
	} else {
		s.slots[id] = ids
	}
	for _, b := range append(old, ids...) {
		if s.refs[b] > 0 {
			continue
		}
		be, ok := s.byID[b]
		if !ok {
			continue
		}
		delete(s.backends, be)
		delete(s.byID, b)
		delete(s.refs, b)
		if err := objs.WeftLbBackends.Delete(b); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("delete backend %d: %w", b, err))
		}
	}
	return errors.Join(errs...)
}

func (s *lbState) deleteService(objs *bpf.Objects, k bpf.ServiceKey) error {
	id, ok := s.services[k]
	if !ok {
		return nil
	}
	if err := objs.WeftLbServices.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete service %d: %w", id, err)
	}
	if err := s.setSlots(objs, id, nil); err != nil {
		return err
	}
	if err := objs.WeftLbRevnat.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete reverse nat %d: %w", id, err)
	}
	delete(s.services, k)
	return nil
}
