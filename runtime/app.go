package runtime

import (
	"context"
	"sync"

	"github.com/outrig/outrig/bindings"
	"github.com/outrig/outrig/invoke"
	"github.com/outrig/outrig/pubsub"
)

// App is one application served by the sidecar: its configuration
// snapshot, its subscriptions and its callee side of invocation. In pod
// mode a sidecar has one App; in host mode one per app id it serves.
type App struct {
	ID    string
	Subs  *pubsub.Manager
	Local *invoke.Local

	cur current

	mu       sync.Mutex
	bindings map[string][]bindings.Consumer // input-binding consumers by component name
	detach   map[bindings.Consumer]func()
	drained  chan struct{} // closed when every retired snapshot has drained
}

// Acquire returns the app's current snapshot; Release it when the call ends.
func (a *App) Acquire() *Snapshot { return a.cur.acquire() }

// AttachBinding adds a consumer of input binding name, kept across
// configuration changes. It reports false when the app has no such input
// binding now.
func (a *App) AttachBinding(name string, c bindings.Consumer) (detach func(), ok bool) {
	s := a.Acquire()
	defer s.Release()
	in := s.Input[name]
	if in == nil {
		return nil, false
	}
	a.mu.Lock()
	a.bindings[name] = append(a.bindings[name], c)
	a.detach[c] = in.Attach(c)
	a.mu.Unlock()
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if d := a.detach[c]; d != nil {
			d()
			delete(a.detach, c)
		}
		list := a.bindings[name]
		for i, x := range list {
			if x == c {
				a.bindings[name] = append(list[:i], list[i+1:]...)
				break
			}
		}
	}, true
}

// reattach moves the input-binding consumers onto the inputs of s.
func (a *App) reattach(s *Snapshot) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for name, list := range a.bindings {
		in := s.Input[name]
		for _, c := range list {
			if d := a.detach[c]; d != nil {
				d()
				delete(a.detach, c)
			}
			if in != nil {
				a.detach[c] = in.Attach(c)
			}
		}
	}
}

// swap installs s and returns the retired snapshot with a channel that
// closes when it and every older snapshot have drained.
func (a *App) swap(s *Snapshot) (old *Snapshot, oldDrained <-chan struct{}, mine chan struct{}) {
	old = a.cur.p.Swap(s)
	mine = make(chan struct{})
	a.mu.Lock()
	prev := a.drained
	a.drained = mine
	a.mu.Unlock()
	if old != nil {
		old.retire()
	}
	return old, prev, mine
}

// waitDrained waits until every retired snapshot drained or ctx ends.
func (a *App) waitDrained(ctx context.Context) {
	a.mu.Lock()
	d := a.drained
	a.mu.Unlock()
	select {
	case <-d:
	case <-ctx.Done():
	}
}
