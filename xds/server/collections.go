package server

import (
	"sort"
	"strconv"
	"strings"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	"github.com/outrig/outrig/xds/resource"
)

// # What a stream holds of a collection: one entry, not one per member
//
// go-control-plane keeps, per stream and type, a map of the names the client
// holds to their versions, and the cache decides what to send by comparing
// it with what it serves. For a sidecar subscribed to an app's 1,000
// endpoints that map held 1,000 entries — about 66 KB per stream, 330 MB for
// 5,000 sidecars, the largest part of the control plane's memory (fleet
// simulator, docs/benchmarks.md).
//
// Instead, for a collection the stream subscribes to ("<app>/*", not by
// wildcard), the map holds one synthetic entry, syncKey(collection) →
// cache version v, meaning "the client holds exactly the members of the
// collection it may see, as they were at version v". Each collection keeps a
// log of its member changes (collLog); what the client lacks is then the
// members changed after v: those it may see are sent, the others removed.
// A change costs O(changes since v), whatever the collection's size.
//
// The entry is written only by a response the client was sent (applied in
// response.GetNextVersionMap, like every other entry of the map), so it
// always states what the client has. Members still listed by name — a
// client that reconnected with initial_resource_versions, or a stream that
// subscribed during a hold — are compared one by one once ("full diff") and
// then replaced by the synthetic entry. Members the stream also subscribes
// to by name stay per name. Wildcard streams keep one entry per resource.
//
// The log of a collection is trimmed up to the oldest version a stream still
// records for it (streamState.colls), so it never loses a change a client
// still needs; a client that stalls for long keeps the changes since then
// (one small record each) until it reads or its stream ends.

// syncSuffix ends the synthetic key of a collection. Resource names never
// contain a NUL byte (clients only send names they hold), so the key cannot
// collide with one; go-control-plane deletes the collection's own name from
// the map on unsubscribe, which leaves this key for the cache to clean up
// (and to remove the members the client held).
const syncSuffix = "\x00"

func syncKey(coll string) string { return coll + syncSuffix }

func isSyncKey(name string) bool { return strings.HasSuffix(name, syncSuffix) }

// syncedAt parses a synthetic entry's version.
func syncedAt(known map[string]string, coll string) (uint64, bool) {
	s, ok := known[syncKey(coll)]
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// minCollLog is the length a collection's log may reach before it is first
// trimmed; after a trim it may grow to twice what was kept.
const minCollLog = 256

// collLog is the log of one collection's member changes, in version order.
// Guarded by the typeCache's lock.
type collLog struct {
	entries []collChange
	floor   uint64 // every change after this version is in entries
	kept    int    // len(entries) after the last trim
}

type collChange struct {
	version uint64
	name    string
}

// since returns the members changed after version v, each once, or false
// when the log no longer reaches back to v.
func (l *collLog) since(v uint64) ([]string, bool) {
	if v < l.floor {
		return nil, false
	}
	i := sort.Search(len(l.entries), func(i int) bool { return l.entries[i].version > v })
	rest := l.entries[i:]
	if len(rest) == 0 {
		return nil, true
	}
	seen := make(map[string]struct{}, len(rest))
	out := make([]string, 0, len(rest))
	for _, ch := range rest {
		if _, dup := seen[ch.name]; !dup {
			seen[ch.name] = struct{}{}
			out = append(out, ch.name)
		}
	}
	return out, true
}

// logChanges appends the changed names of version v to their collections'
// logs and trims the logs that grew. Must hold c.mu.
func (c *typeCache) logChanges(v uint64, names []string) {
	var grown map[string]*collLog
	for _, name := range names {
		coll := resource.CollectionOf(name)
		if coll == "" {
			continue
		}
		l := c.collLogs[coll]
		if l == nil {
			l = &collLog{}
			c.collLogs[coll] = l
		}
		l.entries = append(l.entries, collChange{v, name})
		if len(l.entries) > max(minCollLog, 2*l.kept) {
			if grown == nil {
				grown = map[string]*collLog{}
			}
			grown[coll] = l
		}
	}
	for coll, l := range grown {
		c.trim(coll, l)
	}
}

// trim drops the changes every stream subscribed to coll already has.
// Must hold c.mu.
func (c *typeCache) trim(coll string, l *collLog) {
	upTo := c.version
	for _, st := range c.streams {
		if v, ok := st.colls[coll]; ok && v < upTo {
			upTo = v
		}
	}
	i := sort.Search(len(l.entries), func(i int) bool { return l.entries[i].version > upTo })
	l.entries = append([]collChange(nil), l.entries[i:]...)
	l.floor = max(l.floor, upTo)
	l.kept = len(l.entries)
}

// collSync records, in a response, the synthetic entry it sets or drops, so
// that applying it also updates streamState.colls.
type collSync struct {
	coll    string
	version uint64
	drop    bool
}

// compactColls returns the collections compute handles as a whole for w
// (see the package comment above): those it subscribes to, and those the
// stream still records but no longer subscribes to. None for wildcard
// streams and streams not told apart; during a hold, only those already
// recorded (a stream that subscribes during a hold is compared by name until
// the hold ends). Must hold c.mu.
func (c *typeCache) compactColls(w *watch, known map[string]string, subscribed map[string]struct{}) map[string]struct{} {
	if w.sub.IsWildcard() || w.stream == 0 {
		return nil
	}
	var out map[string]struct{}
	add := func(coll string) {
		if out == nil {
			out = map[string]struct{}{}
		}
		out[coll] = struct{}{}
	}
	for name := range subscribed {
		if !resource.IsCollection(name) {
			continue
		}
		if c.holding {
			if _, ok := known[syncKey(name)]; !ok {
				continue
			}
		}
		add(name)
	}
	// Recorded collections no longer subscribed: their members are to be
	// removed. The map is small once its collections are recorded whole.
	for name := range known {
		if isSyncKey(name) {
			coll := strings.TrimSuffix(name, syncSuffix)
			if _, sub := subscribed[coll]; !sub {
				add(coll)
			}
		}
	}
	return out
}

// collDiff is what compute gathers for one response.
type collDiff struct {
	updates []*discovery.Resource
	removed []string
	delta   versionDelta
	syncs   []collSync
}

// syncColl adds to d what w's client lacks of coll, handled as a whole.
// full: the computation examines everything (so a collection with nothing
// the client may see is announced as not found, once). Must hold c.mu.
func (c *typeCache) syncColl(w *watch, coll string, known map[string]string, subscribed map[string]struct{}, full bool, d *collDiff) {
	_, isSubscribed := subscribed[coll]
	explicit := func(name string) bool { _, ok := subscribed[name]; return ok }
	v, recorded := syncedAt(known, coll)
	var changed []string
	reaches := false
	if recorded {
		if l := c.collLogs[coll]; l != nil {
			changed, reaches = l.since(v)
		} else {
			reaches = true // no member ever changed
		}
	}
	c.examined += uint64(len(changed))

	if !isSubscribed {
		// Unsubscribed: remove what the client holds of it — the members
		// it could see at v (the current ones and those changed since).
		if recorded {
			gone := map[string]struct{}{}
			for name := range c.members[coll] {
				if !explicit(name) && c.visibleTo(w, name) {
					gone[name] = struct{}{}
				}
			}
			for _, name := range changed {
				if !explicit(name) {
					gone[name] = struct{}{}
				}
			}
			for name := range gone {
				d.removed = append(d.removed, name)
			}
		}
		d.delta.drop(syncKey(coll))
		d.syncs = append(d.syncs, collSync{coll: coll, drop: true})
		return
	}

	if recorded && reaches {
		var updates []*discovery.Resource
		var removed []string
		for _, name := range changed {
			if explicit(name) {
				continue
			}
			if e, ok := c.resources[name]; ok && w.visible(e.scopes) {
				updates = append(updates, e.resource)
			} else {
				removed = append(removed, name)
			}
		}
		if c.holding && len(removed) > 0 {
			// Held: the client keeps what it has of coll, changes
			// included, until the hold ends.
			return
		}
		d.updates = append(d.updates, updates...)
		d.removed = append(d.removed, removed...)
		if len(changed) > 0 {
			d.set(coll, c.version)
		}
	} else {
		// Compare by name: the members the client lists (or none), then
		// record the collection as a whole.
		for name := range c.members[coll] {
			if explicit(name) {
				continue
			}
			c.examined++
			e := c.resources[name]
			if !w.visible(e.scopes) {
				continue
			}
			if kv, ok := known[name]; !ok || kv != e.version {
				d.updates = append(d.updates, e.resource)
			}
		}
		for name, kv := range known {
			if isSyncKey(name) || explicit(name) || resource.CollectionOf(name) != coll {
				continue
			}
			c.examined++
			if !c.visibleTo(w, name) && kv != notFoundVersion {
				d.removed = append(d.removed, name)
			}
			d.delta.drop(name)
		}
		d.set(coll, c.version)
	}
	if full && known[coll] != notFoundVersion && !c.hasVisibleMember(w, coll) {
		d.removed = append(d.removed, coll)
		d.delta.set(coll, notFoundVersion)
	}
}

func (d *collDiff) set(coll string, v uint64) {
	d.delta.set(syncKey(coll), strconv.FormatUint(v, 10))
	d.syncs = append(d.syncs, collSync{coll: coll, version: v})
}

// visibleTo reports whether name exists and w's node may see it. Must hold
// c.mu.
func (c *typeCache) visibleTo(w *watch, name string) bool {
	e, ok := c.resources[name]
	return ok && w.visible(e.scopes)
}
