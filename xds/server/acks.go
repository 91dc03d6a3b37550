package server

import (
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
)

// # Why acknowledgements cost O(changes), not O(what the client holds)
//
// go-control-plane creates a new watch for every request of a stream,
// including the ACK that follows each response. Computing what the client
// lacks from scratch costs O(resources the client holds): for a sidecar
// holding an app's 1,000 endpoints that is about a millisecond per ACK, so
// one endpoint change seen by 1,000 sidecars would cost a second of CPU.
//
// Instead each typeCache keeps, per stream, whether the stream's version map
// is known to be complete as of some cache version (streamState), and a log
// of the names changed by the recent versions (changeLog). An ACK that
// changes no subscription, on a stream with no response in flight, only
// re-examines the names changed since then. Anything unusual (a
// subscription change, a response still in flight, a hold, a log that no
// longer reaches back) falls back to the full computation.

// streamIDs tells a typeCache which stream a request came on:
// go-control-plane hands the request to the callbacks (with the stream id)
// and then, on the same goroutine, to the cache (without it).
type streamIDs struct {
	mu    sync.Mutex
	byReq map[*discovery.DeltaDiscoveryRequest]int64
	last  map[int64]*discovery.DeltaDiscoveryRequest // the one request of a stream not yet taken
}

func newStreamIDs() *streamIDs {
	return &streamIDs{byReq: map[*discovery.DeltaDiscoveryRequest]int64{}, last: map[int64]*discovery.DeltaDiscoveryRequest{}}
}

// put records the stream of a request about to reach a cache.
func (s *streamIDs) put(id int64, req *discovery.DeltaDiscoveryRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.last[id]; ok {
		delete(s.byReq, old)
	}
	s.byReq[req] = id
	s.last[id] = req
}

// take returns (and forgets) the stream of req; 0 when unknown.
func (s *streamIDs) take(req *discovery.DeltaDiscoveryRequest) int64 {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.byReq[req]
	if !ok {
		return 0
	}
	delete(s.byReq, req)
	delete(s.last, id)
	return id
}

// drop forgets a closed stream.
func (s *streamIDs) drop(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if req, ok := s.last[id]; ok {
		delete(s.byReq, req)
		delete(s.last, id)
	}
}

// streamState is what a typeCache knows of one stream's version map.
// Guarded by the typeCache's lock.
type streamState struct {
	consistent bool              // the version map held every change up to at
	at         uint64            // a cache version
	pending    int               // responses computed whose changes are not applied yet
	colls      map[string]uint64 // collection → version its synthetic entry records (collections.go)
}

// record applies a response's collection entries.
func (st *streamState) record(syncs []collSync) {
	for _, s := range syncs {
		if s.drop {
			delete(st.colls, s.coll)
			continue
		}
		if st.colls == nil {
			st.colls = map[string]uint64{}
		}
		st.colls[s.coll] = s.version
	}
}

// pureAck reports whether a request only acknowledges (or rejects) a
// response: it changes no subscription.
func pureAck(req *discovery.DeltaDiscoveryRequest) bool {
	return req.GetResponseNonce() != "" && len(req.GetResourceNamesSubscribe()) == 0 &&
		len(req.GetResourceNamesUnsubscribe()) == 0 && len(req.GetInitialResourceVersions()) == 0
}

// maxLoggedNames bounds the names the change log keeps; older versions are
// dropped (a stream that lags further behind gets a full computation).
const maxLoggedNames = 1 << 16

// changeLog remembers the names changed by the recent cache versions.
// Guarded by the typeCache's lock.
type changeLog struct {
	entries []logEntry
	head    int    // entries[head:] are live
	names   int    // names in the live entries
	floor   uint64 // every change after this version is in the log
}

type logEntry struct {
	version uint64
	names   []string
}

func (l *changeLog) add(version uint64, names []string) {
	l.entries = append(l.entries, logEntry{version, names})
	l.names += len(names)
	for l.names > maxLoggedNames && l.head < len(l.entries)-1 {
		e := l.entries[l.head]
		l.entries[l.head] = logEntry{}
		l.head++
		l.names -= len(e.names)
		l.floor = e.version
	}
	if l.head > 64 && l.head*2 > len(l.entries) {
		l.entries = append([]logEntry(nil), l.entries[l.head:]...)
		l.head = 0
	}
}

// since returns the names changed after version v (a non-nil, possibly
// empty slice), or false when the log no longer reaches back to v.
func (l *changeLog) since(v uint64) ([]string, bool) {
	if v < l.floor {
		return nil, false
	}
	live := l.entries[l.head:]
	i := len(live)
	for i > 0 && live[i-1].version > v {
		i--
	}
	switch len(live) - i {
	case 0:
		return []string{}, true
	case 1:
		return live[i].names, true
	}
	seen := map[string]struct{}{}
	out := []string{}
	for _, e := range live[i:] {
		for _, n := range e.names {
			if _, dup := seen[n]; !dup {
				seen[n] = struct{}{}
				out = append(out, n)
			}
		}
	}
	return out, true
}
