package dsr

import (
	"github.com/dsrlb/dsrlb/internal/xdp"
)

// kernelIDs maps the Balancer's backend IDs and service turns to the IDs
// and service indices an XDP program's maps use. They are the same on a
// program that started empty (each kernel slot takes the Go slot and
// generation when it is free), but a program that took pinned maps over
// holds flows naming the IDs a previous process gave out: its backends keep
// their pinned slot and ID (same service and address), every other backend
// gets a slot with a later generation than any flow can name, and pinned
// slots the new configuration no longer has are cleared, so their flows are
// rescheduled as the Go path would reschedule flows of a removed backend.
// Guarded by XDPForwarder.mu.
type kernelIDs struct {
	maxSlots, maxServices int

	byGo  map[uint32]uint32 // Go backend ID → kernel ID
	toGo  map[uint32]uint32 // kernel slot → Go backend ID
	last  map[uint32]uint32 // kernel slot → the last kernel ID it held
	adopt map[xdp.SlotOwner]uint32
	// pinned are the kernel slots of pinned backends not adopted yet:
	// reserved until the first plan, cleared after it.
	pinned map[uint32]uint32 // kernel slot → kernel ID

	svcByGo  map[int]uint32 // Go turn → kernel service index
	svcToGo  map[uint32]int // kernel service index → Go turn
	svcAdopt map[xdp.ServiceKey]uint32
	next     uint32 // where the search for a free slot starts
}

func newKernelIDs(maxSlots, maxServices int, recs []xdp.SlotRecord, services map[xdp.ServiceKey]uint32) *kernelIDs {
	k := &kernelIDs{maxSlots: maxSlots, maxServices: maxServices,
		byGo: map[uint32]uint32{}, toGo: map[uint32]uint32{}, last: map[uint32]uint32{},
		adopt: map[xdp.SlotOwner]uint32{}, pinned: map[uint32]uint32{},
		svcByGo: map[int]uint32{}, svcToGo: map[uint32]int{}, svcAdopt: services}
	for _, r := range recs {
		k.last[r.Slot] = r.ID
		if r.Held {
			k.pinned[r.Slot] = r.ID
			if r.Owner.VIP.IsValid() {
				k.adopt[r.Owner] = r.ID
			}
		}
	}
	return k
}

// backend returns the kernel ID of the Go backend goID, giving it one if it
// has none: its pinned ID when a pinned slot has the same owner, else a
// free slot (its Go slot if free) with the next generation. False: no slot
// is free.
func (k *kernelIDs) backend(goID uint32, owner xdp.SlotOwner) (uint32, bool) {
	if kid, ok := k.byGo[goID]; ok {
		return kid, true
	}
	if kid, ok := k.adopt[owner]; ok && owner.VIP.IsValid() {
		delete(k.adopt, owner)
		slot := kid & idSlotMask
		if _, taken := k.toGo[slot]; !taken {
			delete(k.pinned, slot)
			k.take(goID, kid)
			return kid, true
		}
	}
	slot, ok := k.freeSlot(goID & idSlotMask)
	if !ok {
		return 0, false
	}
	gen := uint32(0)
	if last, used := k.last[slot]; used {
		gen = (last>>idSlotBits + 1) & genMask
	} else if slot == goID&idSlotMask {
		gen = goID >> idSlotBits
	}
	kid := gen<<idSlotBits | slot
	k.take(goID, kid)
	return kid, true
}

func (k *kernelIDs) take(goID, kid uint32) {
	k.byGo[goID] = kid
	k.toGo[kid&idSlotMask] = goID
	k.last[kid&idSlotMask] = kid
}

func (k *kernelIDs) slotFree(slot uint32) bool {
	if int(slot) >= k.maxSlots {
		return false
	}
	_, taken := k.toGo[slot]
	_, reserved := k.pinned[slot]
	return !taken && !reserved
}

func (k *kernelIDs) freeSlot(prefer uint32) (uint32, bool) {
	if k.slotFree(prefer) {
		return prefer, true
	}
	for range k.maxSlots {
		s := k.next
		k.next = (k.next + 1) % uint32(k.maxSlots)
		if k.slotFree(s) {
			return s, true
		}
	}
	return 0, false
}

// release forgets the backend of a kernel slot; the slot remembers its ID.
func (k *kernelIDs) release(slot uint32) {
	if goID, ok := k.toGo[slot]; ok {
		delete(k.byGo, goID)
		delete(k.toGo, slot)
	}
}

// kernelID returns the kernel ID of a Go backend ID in the maps.
func (k *kernelIDs) kernelID(goID uint32) (uint32, bool) {
	kid, ok := k.byGo[goID]
	return kid, ok
}

// goID returns the Go backend ID a kernel ID stands for, if it is current.
func (k *kernelIDs) goID(kid uint32) (uint32, bool) {
	goID, ok := k.toGo[kid&idSlotMask]
	if !ok || k.byGo[goID] != kid {
		return 0, false
	}
	return goID, true
}

// service returns the kernel service index of the Go turn, giving it one
// if it has none: the pinned index of key if it had one, else a free index
// (the turn itself if free). False: none is free.
func (k *kernelIDs) service(turn int, key xdp.ServiceKey) (uint32, bool) {
	if idx, ok := k.svcByGo[turn]; ok {
		return idx, true
	}
	if idx, ok := k.svcAdopt[key]; ok {
		delete(k.svcAdopt, key)
		if _, taken := k.svcToGo[idx]; !taken {
			k.svcByGo[turn], k.svcToGo[idx] = idx, turn
			return idx, true
		}
	}
	reserved := func(idx uint32) bool {
		if _, taken := k.svcToGo[idx]; taken {
			return true
		}
		for _, i := range k.svcAdopt {
			if i == idx {
				return true
			}
		}
		return false
	}
	idx := uint32(turn)
	if int(idx) >= k.maxServices || reserved(idx) {
		found := false
		for i := range uint32(k.maxServices) {
			if !reserved(i) {
				idx, found = i, true
				break
			}
		}
		if !found {
			return 0, false
		}
	}
	k.svcByGo[turn], k.svcToGo[idx] = idx, turn
	return idx, true
}

// releaseServices forgets the turns not in live.
func (k *kernelIDs) releaseServices(live map[int]bool) {
	for turn, idx := range k.svcByGo {
		if !live[turn] {
			delete(k.svcByGo, turn)
			delete(k.svcToGo, idx)
		}
	}
}

// settled ends the adoption: what the first plan did not claim is no
// longer reserved. It returns the pinned slots to clear.
func (k *kernelIDs) settled() []uint32 {
	var out []uint32
	for slot := range k.pinned {
		out = append(out, slot)
	}
	clear(k.pinned)
	clear(k.adopt)
	clear(k.svcAdopt)
	return out
}
