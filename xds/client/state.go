package client

import (
	"sort"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/outrig/outrig/xds/resource"
)

// held is an accepted resource.
type held struct {
	version string
	msg     proto.Message
	raw     *anypb.Any
}

// nameState is what the client knows about a name it subscribed to.
type nameState int

const (
	unknown nameState = iota // asked, no answer yet
	exists                   // held
	absent                   // the server said removed, or the not-found timer fired
)

// named is one explicit subscription: a resource name, or a glob collection
// ("<prefix>/*") that exists while the client holds at least one member.
type named struct {
	state    nameState
	resolved chan struct{} // closed at the first answer
	timer    *time.Timer   // not-found timer while unknown and sent
	timerGen uint64
}

func (n *named) resolve(s nameState) {
	n.state = s
	if n.timer != nil {
		n.timer.Stop()
		n.timer = nil
		n.timerGen++
	}
	select {
	case <-n.resolved:
	default:
		close(n.resolved)
	}
}

// typeState is the client's view of one type URL. Guarded by Client.mu.
type typeState struct {
	typeURL  string
	wildcard bool
	held     map[string]*held
	members  map[string]int    // collection → number of its members held
	watched  map[string]*named // explicit subscriptions (named types)
	pending  []string          // watched names not yet sent on the current stream
	synced   chan struct{}     // closed at the type's first answer (wildcard types)
}

func newTypeState(typeURL string, wildcard bool) *typeState {
	return &typeState{
		typeURL:  typeURL,
		wildcard: wildcard,
		held:     map[string]*held{},
		members:  map[string]int{},
		watched:  map[string]*named{},
		synced:   make(chan struct{}),
	}
}

// put records an accepted resource.
func (ts *typeState) put(name string, h *held) {
	if _, ok := ts.held[name]; !ok {
		if coll := resource.CollectionOf(name); coll != "" {
			ts.members[coll]++
		}
	}
	ts.held[name] = h
}

// drop forgets a resource.
func (ts *typeState) drop(name string) {
	if _, ok := ts.held[name]; !ok {
		return
	}
	delete(ts.held, name)
	if coll := resource.CollectionOf(name); coll != "" {
		if ts.members[coll]--; ts.members[coll] <= 0 {
			delete(ts.members, coll)
		}
	}
}

// has reports whether the client holds name, or a member of the collection
// name.
func (ts *typeState) has(name string) bool {
	if resource.IsCollection(name) {
		return ts.members[name] > 0
	}
	_, ok := ts.held[name]
	return ok
}

// subscribed reports whether a resource of this name was asked for: the
// type is wildcard, or the name or its collection is watched.
func (ts *typeState) subscribed(name string) bool {
	if ts.wildcard {
		return true
	}
	if _, ok := ts.watched[name]; ok {
		return true
	}
	if coll := resource.CollectionOf(name); coll != "" {
		_, ok := ts.watched[coll]
		return ok
	}
	return false
}

// watch adds an explicit subscription; it reports whether it is new (and
// must be sent). Wildcard types need none.
func (ts *typeState) watch(name string) bool {
	if ts.wildcard {
		return false
	}
	if _, ok := ts.watched[name]; ok {
		return false
	}
	n := &named{resolved: make(chan struct{})}
	ts.watched[name] = n
	if ts.has(name) {
		n.resolve(exists)
	}
	ts.pending = append(ts.pending, name)
	return true
}

// resolvedChan returns the channel closed when name's existence is known,
// or nil when the name is not watched.
func (ts *typeState) resolvedChan(name string) <-chan struct{} {
	if ts.wildcard {
		return ts.synced
	}
	if n, ok := ts.watched[name]; ok {
		return n.resolved
	}
	return nil
}

func (ts *typeState) markSynced() {
	select {
	case <-ts.synced:
	default:
		close(ts.synced)
	}
}

func (ts *typeState) isSynced() bool {
	select {
	case <-ts.synced:
		return true
	default:
		return false
	}
}

// versions returns the versions of the held resources, for
// initial_resource_versions.
func (ts *typeState) versions() map[string]string {
	if len(ts.held) == 0 {
		return nil
	}
	out := make(map[string]string, len(ts.held))
	for name, h := range ts.held {
		out[name] = h.version
	}
	return out
}

// watchedNames returns the explicit subscriptions, sorted.
func (ts *typeState) watchedNames() []string {
	out := make([]string, 0, len(ts.watched))
	for name := range ts.watched {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// startTimers arms the not-found timer of every unanswered name in names;
// fire is called (from a timer goroutine) with the name and generation.
func (ts *typeState) startTimers(names []string, d time.Duration, fire func(typeURL, name string, gen uint64)) {
	for _, name := range names {
		n, ok := ts.watched[name]
		if !ok || n.state != unknown || n.timer != nil {
			continue
		}
		n.timerGen++
		gen, typeURL, nm := n.timerGen, ts.typeURL, name
		n.timer = time.AfterFunc(d, func() { fire(typeURL, nm, gen) })
	}
}

// stopTimers disarms every not-found timer (the stream ended: absence can
// only be declared while connected).
func (ts *typeState) stopTimers() {
	for _, n := range ts.watched {
		if n.timer != nil {
			n.timer.Stop()
			n.timer = nil
			n.timerGen++
		}
	}
}
