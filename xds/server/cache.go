package server

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"

	"github.com/outrig/outrig/xds/resource"
)

// notFoundVersion is what a subscription records, in go-control-plane's
// per-stream returned-versions map, for a name the client subscribed to and
// was told does not exist. It lets the next watch of the stream know the
// client already has that answer (so it is not repeated) and makes a later
// real version differ (so the resource is pushed once it appears). Content
// versions are hex and can never equal it; go-control-plane's own "" marker
// (answer this name again) stays distinct.
const notFoundVersion = "~absent"

// entry is one resource as served: encoded once, shared read-only by every
// response that carries it.
type entry struct {
	version  string
	resource *discovery.Resource
	scopes   []string
	coll     string // resource.CollectionOf(name)
}

// typeCache serves one type URL to go-control-plane's delta server. It is a
// cache.ConfigWatcher written for our needs instead of a LinearCache:
//   - it filters by the node's app ids per watch (scoped resources only go to
//     the apps in scope, and a resource whose scopes drop a node is removed
//     from that node);
//   - it answers a subscribed name that does not exist at once, in
//     removed_resources, instead of leaving the client waiting;
//   - it serves glob collections ("<prefix>/*", resource.IsCollection): a
//     subscription to one gets every member, then each member that
//     appears, changes or goes; an empty collection is answered at once
//     with the collection's name in removed_resources;
//   - it never sends on a stream's channel while holding its lock, and never
//     blocks a writer on a slow stream (see watch.deliver);
//   - a response carries only the changes of the stream's version map, not a
//     copy of it, so a change costs the same whatever the client holds (see
//     response.GetNextVersionMap);
//   - versions are content hashes computed by the writer (package resource).
//
// Concurrency: every method is safe for concurrent use.
type typeCache struct {
	typeURL  string
	deferred func() // called when a delivery had to wait for a slow stream

	mu        sync.Mutex
	holding   bool   // see hold
	version   uint64 // bumped on every change; sent as system_version_info
	resources map[string]*entry
	members   map[string]map[string]struct{} // collection → names of its members held
	wildcard  map[uint64]*watch
	named     map[string]map[uint64]*watch // subscribed name (or collection) → watches
	nextID    uint64
	ids       *streamIDs             // nil: streams are not told apart (no ACK fast path)
	streams   map[int64]*streamState // see acks.go
	changes   changeLog
	collLogs  map[string]*collLog // collection → its member changes (collections.go)
	examined  uint64              // names examined by compute, for tests of its cost
}

var _ cache.Cache = (*typeCache)(nil)

func newTypeCache(typeURL string, deferred func(), ids *streamIDs) *typeCache {
	return &typeCache{
		typeURL:   typeURL,
		deferred:  deferred,
		resources: map[string]*entry{},
		members:   map[string]map[string]struct{}{},
		wildcard:  map[uint64]*watch{},
		named:     map[string]map[uint64]*watch{},
		ids:       ids,
		streams:   map[int64]*streamState{},
		collLogs:  map[string]*collLog{},
	}
}

var errSotw = errors.New("state-of-the-world xDS is not served: use DeltaAggregatedResources")

// CreateWatch refuses state-of-the-world requests.
func (c *typeCache) CreateWatch(*cache.Request, cache.Subscription, chan cache.Response) (func(), error) {
	return nil, errSotw
}

// Fetch refuses REST fetches.
func (c *typeCache) Fetch(context.Context, *cache.Request) (cache.Response, error) {
	return nil, errSotw
}

// CreateDeltaWatch answers at once when the client lacks something it asked
// for (or this is the first request of a wildcard subscription), otherwise
// keeps the watch until a change concerns it. A plain ACK re-examines only
// the names changed since the stream was last complete (acks.go).
func (c *typeCache) CreateDeltaWatch(req *cache.DeltaRequest, sub cache.Subscription, out chan cache.DeltaResponse) (func(), error) {
	id := c.ids.take(req)
	c.mu.Lock()
	c.nextID++
	w := newWatch(c.nextID, req, sub, out)
	w.stream = id
	st := c.streamState(id)
	var (
		resp  *response
		full  = true
		quiet collDiff
	)
	if st != nil && st.consistent && st.pending == 0 && !c.holding && pureAck(req) {
		if names, ok := c.changes.since(st.at); ok {
			full = false
			w.base = true
			resp = c.computeQuiet(w, names, false, &quiet)
		}
	}
	if full {
		w.base = st != nil && st.pending == 0 && !c.holding
		resp = c.computeQuiet(w, nil, sub.IsWildcard() && req.GetResponseNonce() == "", &quiet)
	}
	if resp != nil {
		c.account(w, resp, full)
		c.mu.Unlock()
		c.deliver(w, resp)
		return w.stop, nil
	}
	if st != nil {
		st.consistent = w.base
		st.at = c.version
		if len(quiet.delta) > 0 && st.pending == 0 {
			// Nothing to send, but the client's members listed by name can
			// become one entry now: this is the stream's goroutine (the only
			// one that changes the map besides GetNextVersionMap, called on
			// it too) and nothing else is in flight.
			quiet.delta.apply(sub.ReturnedResources())
			st.record(quiet.syncs)
		}
	}
	c.track(w)
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		c.untrack(w)
		c.mu.Unlock()
		w.stop()
	}, nil
}

// replace makes desired the full set of the type. Only entries whose version
// differs from the current one, and current names absent from desired,
// count as changes; only the watches those concern are notified.
func (c *typeCache) replace(desired map[string]*entry) (changed int) {
	c.mu.Lock()
	var names []string
	for name, e := range desired {
		if cur, ok := c.resources[name]; !ok || cur.version != e.version {
			c.put(name, e)
			names = append(names, name)
		}
	}
	for name := range c.resources {
		if _, ok := desired[name]; !ok {
			c.del(name)
			names = append(names, name)
		}
	}
	return c.commit(names)
}

// patch upserts and deletes some resources, leaving the others as they are.
// Upserts whose version equals the current one and deletions of absent
// names are no changes.
func (c *typeCache) patch(upserts map[string]*entry, deletes []string) (changed int) {
	c.mu.Lock()
	var names []string
	for name, e := range upserts {
		if cur, ok := c.resources[name]; !ok || cur.version != e.version {
			c.put(name, e)
			names = append(names, name)
		}
	}
	for _, name := range deletes {
		if _, ok := c.resources[name]; ok {
			c.del(name)
			names = append(names, name)
		}
	}
	return c.commit(names)
}

// put stores e under name and indexes it in its collection. Must hold c.mu.
func (c *typeCache) put(name string, e *entry) {
	e.coll = resource.CollectionOf(name)
	if _, exists := c.resources[name]; !exists {
		if coll := e.coll; coll != "" {
			m := c.members[coll]
			if m == nil {
				m = map[string]struct{}{}
				c.members[coll] = m
			}
			m[name] = struct{}{}
		}
	}
	c.resources[name] = e
}

// del forgets name. Must hold c.mu.
func (c *typeCache) del(name string) {
	delete(c.resources, name)
	if coll := resource.CollectionOf(name); coll != "" {
		if m := c.members[coll]; m != nil {
			delete(m, name)
			if len(m) == 0 {
				delete(c.members, coll)
			}
		}
	}
}

// commit finishes a change made under c.mu: it bumps the version, computes
// the responses of the watches concerned, releases c.mu and only then
// delivers them, so no stream is ever sent to under the lock.
func (c *typeCache) commit(names []string) int {
	if len(names) == 0 {
		c.mu.Unlock()
		return 0
	}
	c.version++
	c.changes.add(c.version, names)
	c.logChanges(c.version, names)
	fired := c.notify(names)
	c.mu.Unlock()
	for _, f := range fired {
		c.deliver(f.w, f.resp)
	}
	return len(names)
}

// current returns the entry served under name.
func (c *typeCache) current(name string) (*entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.resources[name]
	return e, ok
}

// hold starts keeping, in every client, the resources it holds (by
// version) that this cache does not have, instead of sending their removal;
// names a client does not hold are still answered at once. release ends the
// hold and sends the removals still due.
func (c *typeCache) hold() {
	c.mu.Lock()
	c.holding = true
	c.mu.Unlock()
}

func (c *typeCache) release() {
	c.mu.Lock()
	if !c.holding {
		c.mu.Unlock()
		return
	}
	c.holding = false
	var fired []firing
	for _, w := range c.wildcard {
		if resp := c.compute(w, nil, false); resp != nil {
			fired = append(fired, firing{w, resp})
		}
	}
	seen := map[uint64]bool{}
	for _, ws := range c.named {
		for id, w := range ws {
			if seen[id] {
				continue
			}
			seen[id] = true
			if resp := c.compute(w, nil, false); resp != nil {
				fired = append(fired, firing{w, resp})
			}
		}
	}
	for _, f := range fired {
		c.untrack(f.w)
		c.account(f.w, f.resp, true)
	}
	c.mu.Unlock()
	for _, f := range fired {
		c.deliver(f.w, f.resp)
	}
}

type firing struct {
	w    *watch
	resp *response
}

// notify computes the responses of the watches concerned by the changed
// names and untracks the watches that fire. Must hold c.mu.
func (c *typeCache) notify(changed []string) []firing {
	var fired []firing
	for id, w := range c.wildcard {
		if resp := c.compute(w, changed, false); resp != nil {
			c.account(w, resp, false)
			fired = append(fired, firing{w, resp})
			delete(c.wildcard, id)
		}
	}
	seen := map[uint64]bool{}
	consider := func(ws map[uint64]*watch) {
		for id, w := range ws {
			if seen[id] {
				continue
			}
			seen[id] = true
			if resp := c.compute(w, changed, false); resp != nil {
				c.account(w, resp, false)
				fired = append(fired, firing{w, resp})
				c.untrack(w)
			}
		}
	}
	for _, name := range changed {
		consider(c.named[name])
		if coll := resource.CollectionOf(name); coll != "" {
			consider(c.named[coll])
		}
	}
	return fired
}

func (c *typeCache) deliver(w *watch, resp *response) {
	if w.deliver(resp) && c.deferred != nil {
		c.deferred()
	}
}

// track registers a watch that has nothing to send yet. Must hold c.mu.
func (c *typeCache) track(w *watch) {
	if w.sub.IsWildcard() {
		c.wildcard[w.id] = w
		return
	}
	for name := range w.sub.SubscribedResources() {
		ws := c.named[name]
		if ws == nil {
			ws = map[uint64]*watch{}
			c.named[name] = ws
		}
		ws[w.id] = w
	}
}

// untrack forgets a watch. Must hold c.mu.
func (c *typeCache) untrack(w *watch) {
	delete(c.wildcard, w.id)
	for name := range w.sub.SubscribedResources() {
		if ws := c.named[name]; ws != nil {
			delete(ws, w.id)
			if len(ws) == 0 {
				delete(c.named, name)
			}
		}
	}
}

// compute returns what the watch's client lacks among names (nil: every
// name relevant to the subscription), or nil when it lacks nothing and
// replyEvenIfEmpty is false. Must hold c.mu.
//
// The response records the changes to the stream's version map (known)
// rather than a new map; they are applied when go-control-plane takes the
// response (response.GetNextVersionMap), so a change costs the same whatever
// the client holds. Collections the stream subscribes to are handled as a
// whole, whatever names says (collections.go).
func (c *typeCache) compute(w *watch, names []string, replyEvenIfEmpty bool) *response {
	return c.computeQuiet(w, names, replyEvenIfEmpty, nil)
}

// computeQuiet is compute; when nothing is to be sent but the stream's
// version map could still change (a collection recorded by name becomes one
// entry), those changes are left in quiet, if not nil.
func (c *typeCache) computeQuiet(w *watch, names []string, replyEvenIfEmpty bool, quiet *collDiff) *response {
	known := w.sub.ReturnedResources()
	subscribed := w.sub.SubscribedResources()
	wildcard := w.sub.IsWildcard()
	compact := c.compactColls(w, known, subscribed)
	inCompact := func(name string) bool {
		if compact == nil {
			return false
		}
		coll := resource.CollectionOf(name)
		if coll == "" {
			return false
		}
		_, ok := compact[coll]
		return ok
	}

	full := names == nil
	if full {
		set := map[string]struct{}{}
		if wildcard {
			for name := range c.resources {
				set[name] = struct{}{}
			}
		}
		for name := range subscribed {
			set[name] = struct{}{}
			if _, whole := compact[name]; resource.IsCollection(name) && !whole {
				for m := range c.members[name] {
					set[m] = struct{}{}
				}
			}
		}
		for name := range known {
			if !isSyncKey(name) {
				set[name] = struct{}{}
			}
		}
		names = make([]string, 0, len(set))
		for name := range set {
			names = append(names, name)
		}
	}

	c.examined += uint64(len(names))
	var (
		d     collDiff
		globs []string            // subscribed collections among names (full only)
		holds map[string]struct{} // collections of which the client keeps a member
	)
	keeps := func(coll string) { // only a full computation needs to know
		if full && coll != "" {
			if holds == nil {
				holds = map[string]struct{}{}
			}
			holds[coll] = struct{}{}
		}
	}
	for _, name := range names {
		if isSyncKey(name) {
			continue
		}
		_, explicit := subscribed[name]
		if resource.IsCollection(name) {
			if _, whole := compact[name]; explicit && full && !whole {
				globs = append(globs, name)
			}
			if explicit || known[name] == notFoundVersion {
				continue // a collection's own name is no resource
			}
		}
		if !explicit && inCompact(name) {
			continue // handled with its collection
		}
		e, exists := c.resources[name]
		visible := exists && w.visible(e.scopes)
		var coll string
		if exists {
			coll = e.coll
		} else {
			coll = resource.CollectionOf(name)
		}
		member := false
		if coll != "" {
			_, member = subscribed[coll]
		}
		knownVersion, isKnown := known[name]
		if c.holding && !exists && isKnown && knownVersion != notFoundVersion && knownVersion != "" {
			keeps(coll)
			continue // held: the client keeps it until the hold ends
		}
		switch {
		case visible && (wildcard || explicit || member):
			if !isKnown || knownVersion != e.version {
				d.updates = append(d.updates, e.resource)
				d.delta.set(name, e.version)
			}
			keeps(coll)
		case explicit:
			// Asked for by name but absent (or out of scope): say so once.
			if !isKnown || knownVersion != notFoundVersion {
				d.removed = append(d.removed, name)
				d.delta.set(name, notFoundVersion)
			}
		case isKnown:
			// The client holds it but may no longer: gone, out of scope or
			// unsubscribed. A name it already knows to be absent needs no
			// message.
			if knownVersion != notFoundVersion {
				d.removed = append(d.removed, name)
			}
			d.delta.drop(name)
		}
	}
	// A subscribed collection the client will hold no member of, and that
	// has no member it may see, is answered as not found, once.
	for _, coll := range globs {
		if _, kept := holds[coll]; kept || known[coll] == notFoundVersion {
			continue
		}
		if c.hasVisibleMember(w, coll) {
			continue
		}
		d.removed = append(d.removed, coll)
		d.delta.set(coll, notFoundVersion)
	}
	for coll := range compact {
		c.syncColl(w, coll, known, subscribed, full, &d)
	}
	if len(d.updates) == 0 && len(d.removed) == 0 && !replyEvenIfEmpty {
		if quiet != nil && len(d.delta) > 0 {
			*quiet = d
		}
		return nil
	}
	sort.Slice(d.updates, func(i, j int) bool { return d.updates[i].GetName() < d.updates[j].GetName() })
	sort.Strings(d.removed)
	return &response{
		req:       w.req,
		resources: d.updates,
		removed:   d.removed,
		cache:     c,
		known:     known,
		delta:     d.delta,
		syncs:     d.syncs,
		version:   strconv.FormatUint(c.version, 10),
	}
}

// streamState returns the state of stream id, creating it; nil for id 0.
// Must hold c.mu.
func (c *typeCache) streamState(id int64) *streamState {
	if id == 0 {
		return nil
	}
	st := c.streams[id]
	if st == nil {
		st = &streamState{}
		c.streams[id] = st
	}
	return st
}

// account records a response about to be handed to w's stream: it is in
// flight until applied (response.GetNextVersionMap) or dropped. Once
// applied, the stream's version map is complete as of now if it was before
// this watch (w.base, or a full computation) and nothing else was in
// flight. Must hold c.mu.
func (c *typeCache) account(w *watch, r *response, full bool) {
	st := c.streamState(w.stream)
	if st == nil {
		return
	}
	r.stream = w.stream
	r.at = c.version
	r.consistent = !c.holding && st.pending == 0 && (full || w.base)
	st.pending++
}

// forget drops the state of a closed stream.
func (c *typeCache) forget(id int64) {
	c.mu.Lock()
	delete(c.streams, id)
	c.mu.Unlock()
}

// hasVisibleMember reports whether coll has a member the watch's node may
// see. Must hold c.mu.
func (c *typeCache) hasVisibleMember(w *watch, coll string) bool {
	for name := range c.members[coll] {
		if w.visible(c.resources[name].scopes) {
			return true
		}
	}
	return false
}
