// Package runtime assembles the configuration of a sidecar: it receives
// resources from the xDS client, validates them, builds component instances
// per app, compiles policies, and swaps in a new immutable Snapshot per app
// atomically. Replaced components are drained, then closed.
//
// Lifecycle: New, then the xDS client calls Apply (serially) for every
// change; Close once at shutdown. App lookups and snapshots are safe for
// concurrent use by the transports.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/outrig/outrig/bindings"
	"github.com/outrig/outrig/components"
	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance"
	"github.com/outrig/outrig/invoke"
	"github.com/outrig/outrig/pubsub"
)

// Mode is how many apps a sidecar serves.
type Mode string

const (
	ModePod  Mode = "pod"  // one app id
	ModeHost Mode = "host" // several app ids, each SDK connection names its own
)

// Options configure a Runtime.
type Options struct {
	AppIDs   []string
	Mode     Mode
	Registry *components.Registry
	Log      *slog.Logger
	// AppChannel returns the app-port channel of an app id, or nil.
	AppChannel func(appID string) invoke.AppChannel
	// Governance dependencies (metrics observer, Redis for cluster limits).
	Governance governance.Deps
	// ControlPlaneAddr is injected as brokerAddress into pubsub.outrig-broker
	// components that do not name one.
	ControlPlaneAddr string
	// OnOutcome, when set, counts pub/sub delivery outcomes.
	OnOutcome func(app string, k pubsub.Key, o pubsub.Outcome)
}

// Runtime holds the apps of a sidecar and their configuration.
type Runtime struct {
	registry *components.Registry
	log      *slog.Logger
	mode     Mode
	apps     map[string]*App
	order    []string
	govDeps  governance.Deps
	cpAddr   string

	applyMu   sync.Mutex
	resources map[string]map[string]proto.Message // accepted resources by type URL and name
	version   int
	ready     chan struct{}
	readyOnce sync.Once
}

// New returns a Runtime serving opts.AppIDs with an empty configuration.
func New(opts Options) (*Runtime, error) {
	if len(opts.AppIDs) == 0 {
		return nil, errkind.Required("app id")
	}
	if opts.Mode == "" {
		opts.Mode = ModePod
	}
	if opts.Mode == ModePod && len(opts.AppIDs) != 1 {
		return nil, errkind.InvalidArgument("app-id", "pod mode serves exactly one app id, got %d (use --mode host)", len(opts.AppIDs))
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	r := &Runtime{
		registry: opts.Registry, log: log, mode: opts.Mode, apps: map[string]*App{},
		govDeps: opts.Governance, cpAddr: opts.ControlPlaneAddr, resources: map[string]map[string]proto.Message{}, ready: make(chan struct{}),
	}
	for _, id := range opts.AppIDs {
		if _, dup := r.apps[id]; dup {
			return nil, errkind.InvalidArgument("app-id", "app id %q given twice", id)
		}
		var ch invoke.AppChannel
		if opts.AppChannel != nil {
			ch = opts.AppChannel(id)
		}
		a := &App{ID: id, Subs: pubsub.NewManager(id, log), Local: invoke.NewLocal(id, ch),
			bindings: map[string][]bindings.Consumer{}, detach: map[bindings.Consumer]func(){}, drained: closedChan()}
		if opts.OnOutcome != nil {
			id := id
			a.Subs.OnOutcome = func(k pubsub.Key, o pubsub.Outcome) { opts.OnOutcome(id, k, o) }
		}
		empty := newSnapshot("0")
		tbl, err := governance.Compile(nil, nil, r.govDeps)
		if err != nil {
			return nil, fmt.Errorf("empty policy table: %w", err)
		}
		empty.Policies = tbl
		a.cur.p.Store(empty)
		r.apps[id] = a
		r.order = append(r.order, id)
	}
	return r, nil
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// Mode reports pod or host.
func (r *Runtime) Mode() Mode { return r.mode }

// AppIDs lists the apps served, in the order given.
func (r *Runtime) AppIDs() []string { return r.order }

// App returns the app with id; "" means the only app in pod mode.
func (r *Runtime) App(id string) (*App, error) {
	if id == "" {
		if r.mode == ModePod {
			return r.apps[r.order[0]], nil
		}
		return nil, fmt.Errorf("host mode: the call must name its app in the outrig-app-id header: %w", errkind.ErrInvalidArgument)
	}
	if a := r.apps[id]; a != nil {
		return a, nil
	}
	return nil, fmt.Errorf("app id %q is not served by this sidecar: %w", id, errkind.ErrNotFound)
}

// Local returns the callee side of an app served here, or nil.
func (r *Runtime) Local(id string) *invoke.Local {
	if a := r.apps[id]; a != nil {
		return a.Local
	}
	return nil
}

// Ready closes once a first configuration has been applied.
func (r *Runtime) Ready() <-chan struct{} { return r.ready }

// MarkReady declares the first configuration applied (called by the xDS
// client's readiness, which covers configuration from the persisted file).
func (r *Runtime) MarkReady() { r.readyOnce.Do(func() { close(r.ready) }) }

// Resources returns a copy of the accepted resources of a type, by name.
func (r *Runtime) Resources(typeURL string) map[string]proto.Message {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	out := make(map[string]proto.Message, len(r.resources[typeURL]))
	for k, v := range r.resources[typeURL] {
		out[k] = v
	}
	return out
}

// Version is the number of configuration changes applied.
func (r *Runtime) Version() string {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	return strconv.Itoa(r.version)
}

// Close stops subscriptions, waits (until ctx ends) for calls in flight and
// closes every component.
func (r *Runtime) Close(ctx context.Context) error {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	var errs []error
	for _, id := range r.order {
		a := r.apps[id]
		a.Subs.Close()
		closed := newSnapshot("closed")
		closed.Policies = a.cur.p.Load().Policies
		old, _, mine := a.swap(closed)
		close(mine)
		if old != nil {
			select {
			case <-old.zero:
			case <-ctx.Done():
				r.log.Warn("closing components with calls still in flight", "app", id)
			}
			for _, in := range old.instances {
				errs = append(errs, in.close())
			}
		}
		errs = append(errs, a.Local.Close())
	}
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
