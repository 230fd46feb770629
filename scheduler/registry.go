package scheduler

import (
	"fmt"
	"sort"
	"sync"
)

// Default is the name of the scheduler used when a service names none.
const Default = "mh"

var registry = struct {
	sync.RWMutex
	m map[string]Factory
}{m: map[string]Factory{}}

// Register makes a scheduler available by name, for configuration files and
// Service.Scheduler. It panics if name is empty, f is nil or name is taken,
// like database/sql.Register: registration is a programming decision made at
// init time.
func Register(name string, f Factory) {
	if name == "" || f == nil {
		panic("scheduler: Register with empty name or nil factory")
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.m[name]; dup {
		panic("scheduler: Register called twice for " + name)
	}
	registry.m[name] = f
}

// New builds the scheduler registered as name for backends.
func New(name string, backends []Backend, cfg Config) (Scheduler, error) {
	registry.RLock()
	f, ok := registry.m[name]
	registry.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %v)", ErrUnknown, name, Names())
	}
	return f(backends, cfg)
}

// Registered reports whether name is a registered scheduler.
func Registered(name string) bool {
	registry.RLock()
	defer registry.RUnlock()
	_, ok := registry.m[name]
	return ok
}

// Names lists the registered schedulers, sorted.
func Names() []string {
	registry.RLock()
	defer registry.RUnlock()
	names := make([]string, 0, len(registry.m))
	for n := range registry.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
