package server

import (
	"context"
	"sync"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"

	"github.com/outrig/outrig/xds/resource"
)

// watch is one open delta watch: the go-control-plane stream asks for the
// next change of one type and gets at most one response on out.
//
// Delivery never blocks the caller. A response is offered to out without
// waiting; if the stream's buffer is full (the stream is stuck sending to a
// slow client) a goroutine owned by the watch waits for room instead, and
// cancel stops and joins it before returning, so the stream may close out
// right after cancel without a send on a closed channel.
type watch struct {
	id     uint64
	stream int64 // go-control-plane's stream id; 0 when unknown
	base   bool  // the stream's version map was complete when the watch was made
	req    *cache.DeltaRequest
	sub    cache.Subscription
	appIDs map[string]struct{} // nil: the node sees every resource
	out    chan cache.DeltaResponse

	mu        sync.Mutex
	cancelled bool
	done      chan struct{} // closed by cancel
	pending   sync.WaitGroup
}

func newWatch(id uint64, req *cache.DeltaRequest, sub cache.Subscription, out chan cache.DeltaResponse) *watch {
	return &watch{id: id, req: req, sub: sub, appIDs: appIDsOf(req.GetNode()), out: out, done: make(chan struct{})}
}

// deliver hands resp to the stream without blocking. It reports whether the
// send had to be deferred to a goroutine (the stream's buffer was full).
func (w *watch) deliver(resp cache.DeltaResponse) (deferred bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancelled {
		return false
	}
	select {
	case w.out <- resp:
		return false
	default:
	}
	w.pending.Add(1)
	go func() {
		defer w.pending.Done()
		select {
		case w.out <- resp:
		case <-w.done:
			if r, ok := resp.(*response); ok {
				r.dropped()
			}
		}
	}()
	return true
}

// stop marks the watch cancelled and waits for a deferred send to finish or
// give up. Safe to call more than once.
func (w *watch) stop() {
	w.mu.Lock()
	if !w.cancelled {
		w.cancelled = true
		close(w.done)
	}
	w.mu.Unlock()
	w.pending.Wait()
}

// visible reports whether a resource with these scopes goes to the watch's
// node: unscoped resources go to everyone, a node without app ids sees
// everything, otherwise the node's app ids must intersect the scopes.
func (w *watch) visible(scopes []string) bool {
	if len(scopes) == 0 || w.appIDs == nil {
		return true
	}
	for _, s := range scopes {
		if _, ok := w.appIDs[s]; ok {
			return true
		}
	}
	return false
}

// response is the cache.DeltaResponse handed to go-control-plane's delta
// server. The resources are already encoded.
//
// It carries the changes to the stream's version map (known), not a copy of
// it: go-control-plane calls GetNextVersionMap once, from the stream's
// goroutine, when it has sent the response, and the changes are applied to
// known in place then, under the cache's lock (compute reads known under
// the same lock). A response that is never taken (the stream ended, the
// watch was cancelled before a deferred send) changes nothing, which is
// right: the client never saw it. Responses of one stream and type are taken
// in the order they were computed, so their changes apply in that order.
type response struct {
	req       *cache.DeltaRequest
	resources []*discovery.Resource
	removed   []string
	version   string

	cache      *typeCache        // its lock guards known and what follows
	known      map[string]string // the stream's version map for this type
	delta      versionDelta
	syncs      []collSync // collections recorded as a whole (collections.go)
	applied    bool
	stream     int64  // 0: not accounted (see typeCache.account)
	at         uint64 // cache version it was computed at
	consistent bool   // once applied, known holds every change up to at
}

var _ cache.DeltaResponse = (*response)(nil)

func (r *response) GetDeltaDiscoveryResponse() (*discovery.DeltaDiscoveryResponse, error) {
	return &discovery.DeltaDiscoveryResponse{
		SystemVersionInfo: r.version,
		TypeUrl:           r.req.GetTypeUrl(),
		Resources:         r.resources,
		RemovedResources:  r.removed,
	}, nil
}

func (r *response) GetDeltaRequest() *discovery.DeltaDiscoveryRequest { return r.req }
func (r *response) GetSystemVersion() (string, error)                 { return r.version, nil }
func (r *response) GetResponseVersion() string                        { return r.version }
func (r *response) GetContext() context.Context                       { return context.Background() }

// GetNextVersionMap applies the response's changes to the stream's version
// map (once), updates what the cache knows of the stream, and returns the
// map.
func (r *response) GetNextVersionMap() map[string]string {
	if r.cache == nil { // a response built without a cache (tests)
		return r.known
	}
	c := r.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.known == nil {
		r.known = map[string]string{}
	}
	if !r.applied {
		r.applied = true
		r.delta.apply(r.known)
		if st := c.streams[r.stream]; r.stream != 0 && st != nil {
			st.pending--
			st.consistent = r.consistent
			st.at = r.at
			st.record(r.syncs)
		}
	}
	return r.known
}

// dropped records that a response will never be taken (its watch was
// cancelled while a deferred send waited): the stream's version map is
// unchanged, but no longer known to be complete.
func (r *response) dropped() {
	if r.cache == nil {
		return
	}
	c := r.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.streams[r.stream]; r.stream != 0 && st != nil && !r.applied {
		r.applied = true
		st.pending--
		st.consistent = false
	}
}

// GetReturnedResources is GetNextVersionMap.
func (r *response) GetReturnedResources() map[string]string { return r.GetNextVersionMap() }

// versionDelta is a list of changes to a version map, applied in order.
type versionDelta []versionOp

type versionOp struct {
	name, version string
	drop          bool
}

func (d *versionDelta) set(name, version string) {
	*d = append(*d, versionOp{name: name, version: version})
}

func (d *versionDelta) drop(name string) { *d = append(*d, versionOp{name: name, drop: true}) }

func (d versionDelta) apply(m map[string]string) {
	for _, op := range d {
		if op.drop {
			delete(m, op.name)
		} else {
			m[op.name] = op.version
		}
	}
}

// appIDsOf returns the node's app ids as a set, or nil when it has none
// (such a node sees every resource).
func appIDsOf(node *core.Node) map[string]struct{} {
	ids := resource.NodeAppIDs(node)
	if len(ids) == 0 {
		return nil
	}
	set := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		set[id] = struct{}{}
	}
	return set
}
