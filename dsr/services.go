package dsr

import (
	"fmt"
	"net/netip"
	"slices"
)

// AddService adds a service. It fails with ErrExists if a service with the
// same key, or one claiming the same packets, exists.
func (b *Balancer) AddService(s Service) error {
	return b.change(func(list []Service) ([]Service, error) {
		k := s.Key()
		for _, o := range list {
			if overlaps(o.Key(), k) {
				return nil, fmt.Errorf("%w: service %s overlaps %s", ErrExists, k, o.Key())
			}
		}
		return append(list, s), nil
	})
}

// UpdateService replaces the service with s's key: scheduler, its config and
// backends. Established flows stay on their backends unless a backend was
// removed or is down.
func (b *Balancer) UpdateService(s Service) error {
	return b.change(func(list []Service) ([]Service, error) {
		i := indexOf(list, s.Key())
		if i < 0 {
			return nil, fmt.Errorf("%w: service %s", ErrNotFound, s.Key())
		}
		list[i] = s
		return list, nil
	})
}

// RemoveService removes a service. Its flows are dropped from then on (and
// expire from the flow table).
func (b *Balancer) RemoveService(key ServiceKey) error {
	return b.change(func(list []Service) ([]Service, error) {
		i := indexOf(list, key)
		if i < 0 {
			return nil, fmt.Errorf("%w: service %s", ErrNotFound, key)
		}
		return slices.Delete(list, i, i+1), nil
	})
}

// SetServices replaces the whole configuration. Services whose key is
// unchanged keep their flows, statistics and backend identities.
func (b *Balancer) SetServices(services []Service) error {
	return b.change(func([]Service) ([]Service, error) {
		return slices.Clone(services), nil
	})
}

// Services returns a copy of the configured services, in configuration order.
func (b *Balancer) Services() []Service {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Service, 0, len(b.order))
	for _, k := range b.order {
		out = append(out, cloneService(b.services[k].svc))
	}
	return out
}

// SetBackends replaces the backends of one service.
func (b *Balancer) SetBackends(key ServiceKey, backends []Backend) error {
	return b.editService(key, func(s *Service) error {
		s.Backends = slices.Clone(backends)
		return nil
	})
}

// AddBackend adds one backend to a service.
func (b *Balancer) AddBackend(key ServiceKey, be Backend) error {
	return b.editService(key, func(s *Service) error {
		s.Backends = slices.Concat(s.Backends, []Backend{be})
		return nil
	})
}

// RemoveBackend removes the backend with address addr from a service. Its
// established flows are rescheduled on their next packet.
func (b *Balancer) RemoveBackend(key ServiceKey, addr netip.Addr) error {
	return b.editBackend(key, addr, func(s *Service, i int) {
		s.Backends = slices.Delete(s.Backends, i, i+1)
	})
}

// DrainBackend stops new flows to a backend; its established flows continue.
func (b *Balancer) DrainBackend(key ServiceKey, addr netip.Addr) error {
	return b.SetBackendState(key, addr, BackendDraining)
}

// SetBackendState sets a backend's state (active, draining, down).
func (b *Balancer) SetBackendState(key ServiceKey, addr netip.Addr, st BackendState) error {
	return b.editBackend(key, addr, func(s *Service, i int) { s.Backends[i].State = st })
}

func (b *Balancer) editService(key ServiceKey, edit func(*Service) error) error {
	return b.change(func(list []Service) ([]Service, error) {
		i := indexOf(list, key)
		if i < 0 {
			return nil, fmt.Errorf("%w: service %s", ErrNotFound, key)
		}
		if err := edit(&list[i]); err != nil {
			return nil, err
		}
		return list, nil
	})
}

func (b *Balancer) editBackend(key ServiceKey, addr netip.Addr, edit func(*Service, int)) error {
	addr = addr.Unmap()
	return b.editService(key, func(s *Service) error {
		for i := range s.Backends {
			if s.Backends[i].Addr.Unmap() == addr {
				s.Backends = slices.Clone(s.Backends) // shared with the running state
				edit(s, i)
				return nil
			}
		}
		return fmt.Errorf("%w: backend %s in service %s", ErrNotFound, addr, key)
	})
}

func indexOf(list []Service, key ServiceKey) int {
	for i := range list {
		if list[i].Key() == key {
			return i
		}
	}
	return -1
}

// ValidateServices checks a whole configuration the way SetServices would,
// without applying it: daemons use it to check a configuration file before
// (or instead of) loading it. Errors are *ConfigError values naming the field
// as "services[i]...".
func ValidateServices(services []Service) error {
	next := make([]Service, len(services))
	for i := range services {
		next[i] = cloneService(services[i])
	}
	return validateServices(next)
}

// validateServices is ValidateServices on services the caller owns: it may
// normalise them in place.
func validateServices(next []Service) error {
	for i := range next {
		if err := validateService(fmt.Sprintf("services[%d]", i), &next[i]); err != nil {
			return err
		}
	}
	for i := range next {
		for j := range i {
			if overlaps(next[i].Key(), next[j].Key()) {
				return fieldErr(fmt.Sprintf("services[%d]", i), "%w: %s overlaps services[%d] %s", ErrExists, next[i].Key(), j, next[j].Key())
			}
		}
	}
	return nil
}

// change applies one configuration edit. The edit receives the current
// services — values whose slices the running state shares, so an edit
// replaces a slice rather than writing into it — and returns the new list.
// The result is copied once (so no caller's slice is kept), validated
// whole, and only then compiled and applied. On any error nothing changes.
func (b *Balancer) change(edit func([]Service) ([]Service, error)) error {
	b.mu.Lock()
	defer b.unlockAndFlush()
	cur := make([]Service, 0, len(b.order))
	for _, k := range b.order {
		cur = append(cur, b.services[k].svc)
	}
	next, err := edit(cur)
	if err != nil {
		return err
	}
	for i := range next {
		next[i] = cloneService(next[i])
	}
	if err := validateServices(next); err != nil {
		return err
	}
	if err := b.validateVLANs(next); err != nil {
		return err
	}
	return b.commit(next)
}
