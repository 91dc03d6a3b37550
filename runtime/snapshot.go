package runtime

import (
	"sync"
	"sync/atomic"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"

	"github.com/outrig/outrig/bindings"
	"github.com/outrig/outrig/governance"
	"github.com/outrig/outrig/pubsub"
	"github.com/outrig/outrig/state"
)

// Snapshot is the immutable configuration of one app at one version: its
// component instances, declarative subscriptions and compiled policies.
// Calls acquire the current snapshot for their duration; a replaced
// snapshot is drained (its reference count reaches zero) before the
// component instances it alone held are closed, so a config change never
// breaks a call in flight.
type Snapshot struct {
	Version       string
	State         map[string]*state.Store
	PubSub        map[string]*pubsub.PubSub
	Output        map[string]*bindings.Output
	Input         map[string]*bindings.Input
	Subscriptions []*configv1.Subscription
	Policies      *governance.Table
	PolicyList    []*configv1.Policy // the policies compiled into Policies

	// instances held, by component name, to find what a swap replaces.
	instances map[string]*instance

	refs     atomic.Int64
	retired  atomic.Bool
	zeroOnce sync.Once
	zero     chan struct{} // closed when retired and no call holds it
}

func newSnapshot(version string) *Snapshot {
	return &Snapshot{
		Version:   version,
		State:     map[string]*state.Store{},
		PubSub:    map[string]*pubsub.PubSub{},
		Output:    map[string]*bindings.Output{},
		Input:     map[string]*bindings.Input{},
		instances: map[string]*instance{},
		zero:      make(chan struct{}),
	}
}

// Release ends a call's use of the snapshot.
func (s *Snapshot) Release() {
	if s.refs.Add(-1) == 0 && s.retired.Load() {
		s.zeroOnce.Do(func() { close(s.zero) })
	}
}

// retire marks the snapshot replaced; drained() closes once no call holds it.
func (s *Snapshot) retire() {
	s.retired.Store(true)
	if s.refs.Load() == 0 {
		s.zeroOnce.Do(func() { close(s.zero) })
	}
}

// current holds an app's snapshot.
type current struct {
	p atomic.Pointer[Snapshot]
}

// acquire returns the current snapshot with a reference held; the caller
// must Release it. The re-check after the increment guarantees that a
// snapshot seen as drained is never used again.
func (c *current) acquire() *Snapshot {
	for {
		s := c.p.Load()
		s.refs.Add(1)
		if c.p.Load() == s {
			return s
		}
		s.Release()
	}
}

// ComponentNames lists the components of the snapshot, sorted.
func (s *Snapshot) ComponentNames() []string { return sortedKeys(s.instances) }

// Component returns the spec of a component in the snapshot, or nil.
func (s *Snapshot) Component(name string) *configv1.Component {
	if in := s.instances[name]; in != nil {
		return in.spec
	}
	return nil
}
