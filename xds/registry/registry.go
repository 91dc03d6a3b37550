// Package registry is the control plane's registry of app instances.
//
// A registration is a lease: it lives for its TTL and is extended by Renew
// (heartbeats); Deregister removes it at once; Check expires leases whose
// deadline passed. Every change is handed to the OnChange callback per
// instance — the Endpoint resources registered or changed and the names of
// those gone — which the control plane feeds to the xDS server (or to the
// shared store of a replicated control plane), so only the instances that
// changed travel, never an app's whole set.
//
// Changes are published in batches: a change marks its instance dirty and
// wakes Run, which publishes every dirty instance at once (Flush). While one
// batch is being built and pushed the next one accumulates, so a burst of
// changes costs one callback per batch, while an isolated change goes out at
// once.
//
// # Cost
//
// Leases live in a map (app id → instance id → lease) and in a list ordered
// by deadline. A list holds leases of one TTL only: then "now + ttl" only
// grows, so Register and Renew append (or move) the lease to the tail and the
// list stays sorted without searching. TTLs are clamped to [MinTTL, MaxTTL]
// and rounded to TTLGranularity, and there is one list per TTL in use (a
// handful in practice: sidecars use the default). So Register, Renew and
// Deregister are O(1), and Check costs O(lists + overdue leases): it walks
// each list from the head only while deadlines are past. Flush costs
// O(instances changed), whatever the size of their apps.
//
// # Freeze
//
// When more than FreezeShare (default 0.6) of all instances would expire in
// one check, that is taken for a partition between the instances and the
// control plane rather than a mass death: the check expires none, logs,
// and sets the gauge outrig_registry_frozen to 1. The registry thaws on the
// first check where the overdue share is back under the threshold, because
// heartbeats returned, and then expires the leases still overdue. The
// freeze only applies from FreezeMinInstances instances on (default 10), so
// a lone instance that dies is still removed.
package registry

import (
	"container/list"
	"context"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/xds/resource"
)

// Clock tells the time; tests inject a fake one. The registry assumes it
// never goes backwards (time.Now's monotonic reading guarantees that).
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// OnChange receives the instances registered or changed (upserts: resource
// name "<app id>/<instance id>" → Endpoint, with AppId set) and the names of
// the instances gone (removed). Flush calls it serially (never
// concurrently), without holding the registry's lock; it should not block
// for long, since the next batch waits for it. The Endpoints are the
// registry's own: read them, do not modify them.
// xds/server.UpdateResources(resource.EndpointType, ...) fits.
type OnChange func(upserts map[string]*configv1.Endpoint, removed []string)

// Options configure a Registry. Zero values take the defaults.
type Options struct {
	DefaultTTL         time.Duration // TTL when none is requested; default 10s
	MinTTL             time.Duration // default 1s
	MaxTTL             time.Duration // default 5m
	TTLGranularity     time.Duration // TTLs are rounded up to a multiple; default 100ms
	CheckInterval      time.Duration // period of Run's checks; default 1s
	FreezeShare        float64       // freeze when more than this share would expire at once; default 0.6; >= 1 disables
	FreezeMinInstances int           // no freeze below this many instances; default 10
	Clock              Clock         // default: the real clock
	OnChange           OnChange      // default: changes are not published
	// OnDeregister, when set, is called by Deregister (after the lease is
	// removed, outside the registry's lock) for every deregistration
	// request, whether this registry held the lease or not: a replicated
	// control plane removes the instance from the shared store, where
	// another replica may hold it. It must not block.
	OnDeregister func(appID, instanceID string)
	Metrics      prometheus.Registerer
	Logger       *slog.Logger
}

func (o *Options) setDefaults() {
	if o.DefaultTTL <= 0 {
		o.DefaultTTL = 10 * time.Second
	}
	if o.MinTTL <= 0 {
		o.MinTTL = time.Second
	}
	if o.MaxTTL <= 0 {
		o.MaxTTL = 5 * time.Minute
	}
	if o.MaxTTL < o.MinTTL {
		o.MaxTTL = o.MinTTL
	}
	if o.TTLGranularity <= 0 {
		o.TTLGranularity = 100 * time.Millisecond
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = time.Second
	}
	if o.FreezeShare <= 0 {
		o.FreezeShare = 0.6
	}
	if o.FreezeMinInstances <= 0 {
		o.FreezeMinInstances = 10
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.OnChange == nil {
		o.OnChange = func(map[string]*configv1.Endpoint, []string) {}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

type lease struct {
	appID    string
	endpoint *configv1.Endpoint // owned by the registry, never mutated
	ttl      time.Duration
	deadline time.Time
	elem     *list.Element // in lists[ttl]; Value is the *lease
}

// Registry holds leases. All methods are safe for concurrent use.
//
// Lifecycle: New, then Run in a goroutine; Register/Renew/Deregister from
// the gRPC service at any time. Run expires leases (Check) every
// CheckInterval and publishes changes (Flush) as they happen; tests may call
// Check and Flush themselves instead.
type Registry struct {
	opts Options
	m    *metrics

	kick    chan struct{} // wakes Run to flush; capacity 1
	flushMu sync.Mutex    // serialises Flush, so batches are published in order

	mu     sync.Mutex
	apps   map[string]map[string]*lease // app id → instance id → lease
	lists  map[time.Duration]*list.List // ttl → leases by deadline
	dirty  map[instanceKey]struct{}     // instances changed since the last flush
	count  int
	frozen bool

	visited int // leases examined by the last Check (cost accounting for tests)
}

// New returns an empty Registry.
func New(opts Options) (*Registry, error) {
	opts.setDefaults()
	m, err := newMetrics(opts.Metrics)
	if err != nil {
		return nil, err
	}
	return &Registry{
		opts:  opts,
		m:     m,
		kick:  make(chan struct{}, 1),
		apps:  map[string]map[string]*lease{},
		lists: map[time.Duration]*list.List{},
		dirty: map[instanceKey]struct{}{},
	}, nil
}

type instanceKey struct{ app, instance string }

// ValidateEndpoint checks a registration's fields and returns an
// errkind.ErrInvalidArgument naming the first bad field.
//
// The app id and instance id become the resource name
// "<app id>/<instance id>", so neither may contain "/" or "*".
func ValidateEndpoint(appID string, ep *configv1.Endpoint) error {
	switch {
	case appID == "":
		return errkind.Required("app_id")
	case ep == nil:
		return errkind.Required("endpoint")
	case ep.GetInstanceId() == "":
		return errkind.Required("endpoint.instance_id")
	case ep.GetAddress() == "":
		return errkind.Required("endpoint.address")
	}
	if err := resource.CheckID("app_id", appID); err != nil {
		return errkind.InvalidArgument("app_id", "%q must not contain '/' or '*'", appID)
	}
	if err := resource.CheckID("endpoint.instance_id", ep.GetInstanceId()); err != nil {
		return errkind.InvalidArgument("endpoint.instance_id", "%q must not contain '/' or '*'", ep.GetInstanceId())
	}
	if _, port, err := net.SplitHostPort(ep.GetAddress()); err != nil || port == "" {
		return errkind.InvalidArgument("endpoint.address", "%q is not host:port", ep.GetAddress())
	}
	return nil
}

// clampTTL applies the default, the bounds and the granularity.
func (r *Registry) clampTTL(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		ttl = r.opts.DefaultTTL
	}
	ttl = max(r.opts.MinTTL, min(ttl, r.opts.MaxTTL))
	g := r.opts.TTLGranularity
	if rem := ttl % g; rem != 0 {
		ttl += g - rem
	}
	return ttl
}

// Register creates or replaces the lease of ep (instance ep.InstanceId of
// appID) and returns the TTL granted. ttl <= 0 asks for the default. The
// registry keeps a copy of ep with AppId set to appID.
func (r *Registry) Register(appID string, ep *configv1.Endpoint, ttl time.Duration) (time.Duration, error) {
	if err := ValidateEndpoint(appID, ep); err != nil {
		return 0, err
	}
	ttl = r.clampTTL(ttl)
	ep = proto.Clone(ep).(*configv1.Endpoint)
	ep.AppId = appID

	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.opts.Clock.Now()
	instances := r.apps[appID]
	if instances == nil {
		instances = map[string]*lease{}
		r.apps[appID] = instances
	}
	l, exists := instances[ep.GetInstanceId()]
	changed := true
	if exists {
		changed = !proto.Equal(l.endpoint, ep)
		r.unlink(l)
		l.endpoint = ep
		l.ttl = ttl
	} else {
		l = &lease{appID: appID, endpoint: ep, ttl: ttl}
		instances[ep.GetInstanceId()] = l
		r.count++
		r.m.instances.Set(float64(r.count))
	}
	l.deadline = now.Add(ttl)
	r.link(l)
	if changed {
		r.markDirty(appID, ep.GetInstanceId())
	}
	return ttl, nil
}

// Renew extends a lease by its TTL from now. It fails with a wrapped
// errkind.ErrNotFound when the registry does not hold the instance (expired
// or never registered): the caller registers again.
func (r *Registry) Renew(appID, instanceID string) (time.Duration, error) {
	if appID == "" {
		return 0, errkind.Required("app_id")
	}
	if instanceID == "" {
		return 0, errkind.Required("instance_id")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.apps[appID][instanceID]
	if !ok {
		return 0, fmt.Errorf("instance %q of app %q: %w", instanceID, appID, errkind.ErrNotFound)
	}
	l.deadline = r.opts.Clock.Now().Add(l.ttl)
	r.lists[l.ttl].MoveToBack(l.elem)
	return l.ttl, nil
}

// Deregister removes a lease at once. Removing an unknown instance is not
// an error (it may have expired already).
func (r *Registry) Deregister(appID, instanceID string) error {
	if appID == "" {
		return errkind.Required("app_id")
	}
	if instanceID == "" {
		return errkind.Required("instance_id")
	}
	r.mu.Lock()
	if l, ok := r.apps[appID][instanceID]; ok {
		r.remove(l)
		r.markDirty(appID, instanceID)
	}
	r.mu.Unlock()
	if r.opts.OnDeregister != nil {
		r.opts.OnDeregister(appID, instanceID)
	}
	return nil
}

// Endpoints returns copies of the current endpoints of appID, sorted by
// instance id, or nil when it has none. It costs O(instances of appID).
func (r *Registry) Endpoints(appID string) []*configv1.Endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	instances := r.apps[appID]
	if len(instances) == 0 {
		return nil
	}
	out := make([]*configv1.Endpoint, 0, len(instances))
	for _, l := range instances {
		out = append(out, proto.Clone(l.endpoint).(*configv1.Endpoint))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetInstanceId() < out[j].GetInstanceId() })
	return out
}

// Len returns the number of leases held.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

// Frozen reports whether the last check froze expiry.
func (r *Registry) Frozen() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.frozen
}

// Run checks for expired leases every CheckInterval and publishes changes
// as they happen, until ctx ends. Run it once.
func (r *Registry) Run(ctx context.Context) error {
	t := time.NewTicker(r.opts.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			r.Check()
			r.Flush()
		case <-r.kick:
			r.Flush()
		}
	}
}

// Flush publishes the instances changed since the last flush in one
// OnChange call. It returns the number of instances published.
func (r *Registry) Flush() int {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.mu.Lock()
	if len(r.dirty) == 0 {
		r.mu.Unlock()
		return 0
	}
	upserts := map[string]*configv1.Endpoint{}
	var removed []string
	for k := range r.dirty {
		name := resource.EndpointName(k.app, k.instance)
		if l, ok := r.apps[k.app][k.instance]; ok {
			upserts[name] = l.endpoint
		} else {
			removed = append(removed, name)
		}
	}
	n := len(r.dirty)
	clear(r.dirty)
	r.mu.Unlock()
	sort.Strings(removed)
	r.opts.OnChange(upserts, removed)
	return n
}

// Check expires the leases whose deadline passed, unless more than
// FreezeShare of all instances are overdue (see the package comment). It
// returns the number of leases expired.
func (r *Registry) Check() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.opts.Clock.Now()
	r.visited = 0

	freezable := r.opts.FreezeShare < 1 && r.count >= r.opts.FreezeMinInstances
	limit := int(r.opts.FreezeShare * float64(r.count)) // freeze when overdue > limit
	overdue := 0
count:
	for _, l := range r.lists {
		for e := l.Front(); e != nil; e = e.Next() {
			r.visited++
			if e.Value.(*lease).deadline.After(now) {
				break
			}
			overdue++
			if freezable && overdue > limit {
				break count
			}
		}
	}
	if freezable && overdue > limit {
		if !r.frozen {
			r.frozen = true
			r.m.frozen.Set(1)
			r.opts.Logger.Warn("registry frozen: too many leases would expire at once; expiring none until heartbeats return",
				"overdue_at_least", overdue, "instances", r.count, "freeze_share", r.opts.FreezeShare)
		}
		return 0
	}
	if r.frozen {
		r.frozen = false
		r.m.frozen.Set(0)
		r.opts.Logger.Info("registry thawed", "overdue", overdue, "instances", r.count)
	}
	if overdue == 0 {
		return 0
	}
	expired := 0
	for _, l := range r.lists {
		for e := l.Front(); e != nil; {
			ls := e.Value.(*lease)
			if ls.deadline.After(now) {
				break
			}
			e = e.Next()
			r.remove(ls)
			r.markDirty(ls.appID, ls.endpoint.GetInstanceId())
			expired++
		}
	}
	r.m.expired.Add(float64(expired))
	r.opts.Logger.Info("registry expired leases", "expired", expired, "instances", r.count)
	return expired
}

// link appends l to the list of its TTL. Must hold r.mu.
func (r *Registry) link(l *lease) {
	lst := r.lists[l.ttl]
	if lst == nil {
		lst = list.New()
		r.lists[l.ttl] = lst
	}
	l.elem = lst.PushBack(l)
}

// unlink removes l from its list, dropping the list when empty. Must hold r.mu.
func (r *Registry) unlink(l *lease) {
	lst := r.lists[l.ttl]
	lst.Remove(l.elem)
	l.elem = nil
	if lst.Len() == 0 {
		delete(r.lists, l.ttl)
	}
}

// remove forgets l entirely. Must hold r.mu.
func (r *Registry) remove(l *lease) {
	r.unlink(l)
	instances := r.apps[l.appID]
	delete(instances, l.endpoint.GetInstanceId())
	if len(instances) == 0 {
		delete(r.apps, l.appID)
	}
	r.count--
	r.m.instances.Set(float64(r.count))
}

// markDirty records that an instance changed and wakes Run. Must hold r.mu.
func (r *Registry) markDirty(appID, instanceID string) {
	r.dirty[instanceKey{appID, instanceID}] = struct{}{}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}
