package client

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/xds/resource"
)

// endpointView is the client's per-app index of the Endpoint resources it
// holds: app id → the app's endpoints sorted by instance id, as an
// immutable slice replaced on each change. Readers (Endpoints, on every
// invocation) take a read lock and a map lookup; the cost of a change is
// paid once, when a response is applied.
type endpointView struct {
	mu   sync.RWMutex
	apps map[string]*appEndpoints
}

type appEndpoints struct {
	byID map[string]*configv1.Endpoint
	list []*configv1.Endpoint // sorted by instance id; never modified once published
}

// endpointChanges collects one response's changes to the view.
type endpointChanges struct {
	puts  []*configv1.Endpoint
	drops []string // resource names
}

func (ec *endpointChanges) put(typeURL, _ string, m proto.Message) {
	if typeURL == resource.EndpointType {
		ec.puts = append(ec.puts, m.(*configv1.Endpoint))
	}
}

func (ec *endpointChanges) drop(typeURL, name string) {
	if typeURL == resource.EndpointType {
		ec.drops = append(ec.drops, name)
	}
}

// updateEndpoints applies a response's changes to the view: each app
// touched gets a new sorted slice, by insertion for a few changes, by
// rebuilding for many. Called with c.mu held (lock order: c.mu, then the
// view's lock; readers of the view take only the latter).
func (c *Client) updateEndpoints(ec endpointChanges) {
	if len(ec.puts) == 0 && len(ec.drops) == 0 {
		return
	}
	v := &c.endpoints
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.apps == nil {
		v.apps = map[string]*appEndpoints{}
	}
	touched := map[*appEndpoints][]string{} // app → instance ids changed
	for _, e := range ec.puts {
		a := v.apps[e.GetAppId()]
		if a == nil {
			a = &appEndpoints{byID: map[string]*configv1.Endpoint{}}
			v.apps[e.GetAppId()] = a
		}
		a.byID[e.GetInstanceId()] = e
		touched[a] = append(touched[a], e.GetInstanceId())
	}
	for _, name := range ec.drops {
		app, inst, ok := resource.SplitEndpointName(name)
		if !ok {
			continue
		}
		if a := v.apps[app]; a != nil {
			delete(a.byID, inst)
			touched[a] = append(touched[a], inst)
		}
	}
	for a, ids := range touched {
		a.list = rebuild(a, ids)
	}
	for app, a := range v.apps {
		if len(a.byID) == 0 {
			delete(v.apps, app)
		}
	}
}

// rebuild returns a's new sorted list after the instances ids changed.
func rebuild(a *appEndpoints, ids []string) []*configv1.Endpoint {
	byInstance := func(e *configv1.Endpoint, id string) int { return strings.Compare(e.GetInstanceId(), id) }
	if len(ids) > 8 || len(a.list) == 0 {
		out := make([]*configv1.Endpoint, 0, len(a.byID))
		for _, e := range a.byID {
			out = append(out, e)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].GetInstanceId() < out[j].GetInstanceId() })
		return out
	}
	out := slices.Clone(a.list)
	for _, id := range ids {
		i, found := slices.BinarySearchFunc(out, id, byInstance)
		e, live := a.byID[id]
		switch {
		case live && found:
			out[i] = e
		case live:
			out = slices.Insert(out, i, e)
		case found:
			out = slices.Delete(out, i, i+1)
		}
	}
	return out
}

// CachedEndpoints returns the endpoints of appID the client holds, sorted
// by instance id, without subscribing or waiting; ok is false when it holds
// none. The slice is shared: do not modify it or its elements. It costs a
// map lookup under a read lock, whatever the number of endpoints.
func (c *Client) CachedEndpoints(appID string) (eps []*configv1.Endpoint, ok bool) {
	c.endpoints.mu.RLock()
	defer c.endpoints.mu.RUnlock()
	a := c.endpoints.apps[appID]
	if a == nil || len(a.list) == 0 {
		return nil, false
	}
	return a.list, true
}

// Endpoints returns the live endpoints of appID, sorted by instance id.
// The first call for an app id subscribes to its Endpoint collection
// (resource.EndpointsCollection) and waits until the control plane answered
// (ours answers an unknown app id at once) or ctx ends; later calls answer
// from the client's per-app view, which each change updates. found is false
// when the app id has no instance. The slice is shared: do not modify it.
//
// While the control plane is unreachable the last endpoints received (or
// loaded from the persisted file) keep being answered; a first lookup of an
// app id then waits for ctx (the not-found timer only runs while
// connected).
func (c *Client) Endpoints(ctx context.Context, appID string) (eps []*configv1.Endpoint, found bool, err error) {
	if eps, ok := c.CachedEndpoints(appID); ok {
		return eps, true, nil
	}
	if err := resource.CheckID("app id", appID); err != nil {
		return nil, false, fmt.Errorf("endpoints: %w", err)
	}
	coll := resource.EndpointsCollection(appID)
	if err := c.Watch(resource.EndpointType, coll); err != nil {
		return nil, false, err
	}
	if _, _, err := c.Wait(ctx, resource.EndpointType, coll); err != nil {
		return nil, false, err
	}
	eps, found = c.CachedEndpoints(appID)
	return eps, found, nil
}
