package server

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/outrig/outrig/xds/resource"
)

// knownOf returns a copy of the largest version map among the streams whose
// watch is open on name (their ACK's watch), or nil.
func knownOf(c *typeCache, name string) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out map[string]string
	for _, w := range c.named[name] {
		if k := w.sub.ReturnedResources(); out == nil || len(k) > len(out) {
			out = map[string]string{}
			for n, v := range k {
				out[n] = v
			}
		}
	}
	return out
}

// waitKnown polls until the stream's ACK watch is open and cond holds.
func waitKnown(t *testing.T, c *typeCache, name string, cond func(map[string]string) bool) map[string]string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		k := knownOf(c, name)
		if k != nil && cond(k) {
			return k
		}
		if time.Now().After(deadline) {
			t.Fatalf("version map of the watch on %s: %v", name, k)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A stream subscribed to a collection of 1,000 endpoints records it as one
// entry, not one per member — also after reconnecting with the versions of
// the members it holds — and changes still travel one by one.
func TestCollectionRecordedAsOneEntry(t *testing.T) {
	env := startServer(t)
	_ = env.srv.UpdateResources(resource.EndpointType, endpointSet("pay", 1000), nil)
	c := env.srv.caches[resource.EndpointType]
	s := env.dial(t, "caller", nil, true)
	s.subscribe(resource.EndpointType, []string{"pay/*"}, nil)
	first := s.next(wait)
	if len(first.GetResources()) != 1000 {
		t.Fatalf("first response: %d resources", len(first.GetResources()))
	}
	held := versions(first)
	s.ack(first)
	small := func(k map[string]string) bool { return len(k) <= 1 }
	waitKnown(t, c, "pay/*", small)

	e := endpoint("pay", 5)
	e.Zone = "z2"
	_ = env.srv.UpdateResources(resource.EndpointType, map[string]proto.Message{resource.Name(e): e}, []string{"pay/i-00009"})
	resp := s.next(wait)
	if !cmp.Equal(names(resp), []string{"pay/i-00005"}) || !cmp.Equal(resp.GetRemovedResources(), []string{"pay/i-00009"}) {
		t.Fatalf("change: got %v removed %v", names(resp), resp.GetRemovedResources())
	}
	s.ack(resp)
	waitKnown(t, c, "pay/*", small)

	// Another replica's client arrives with 1,000 names: it is told only
	// what differs, and its map shrinks to one entry with its next response.
	again := env.dial(t, "caller2", nil, true)
	again.subscribe(resource.EndpointType, []string{"pay/*"}, held)
	resp = again.next(wait)
	if !cmp.Equal(names(resp), []string{"pay/i-00005"}) || !cmp.Equal(resp.GetRemovedResources(), []string{"pay/i-00009"}) {
		t.Fatalf("reconnect: got %v removed %v", names(resp), resp.GetRemovedResources())
	}
	again.ack(resp)
	waitKnown(t, c, "pay/*", small)
	s.quiet(100 * time.Millisecond)
}

// endpointModel is what a client holds, built only from the responses it
// received.
type endpointModel map[string]string

func (m endpointModel) apply(resp *discovery.DeltaDiscoveryResponse) {
	for _, r := range resp.GetResources() {
		m[r.GetName()] = r.GetVersion()
	}
	for _, n := range resp.GetRemovedResources() {
		delete(m, n)
	}
}

// drain applies and acknowledges responses until none came for a while.
func drain(s *rawStream, m endpointModel) {
	for {
		select {
		case resp := <-s.recv:
			m.apply(resp)
			s.ack(resp)
		case <-time.After(150 * time.Millisecond):
			return
		}
	}
}

// Random joins, changes and leaves, one client acknowledging at once and
// one that stops acknowledging for long stretches (so the collection's log
// must keep what it has not seen, across trims): after each stretch both
// hold exactly the collection's members, and the log stays bounded.
func TestCollectionChangesConvergeAcrossTrims(t *testing.T) {
	env := startServer(t)
	c := env.srv.caches[resource.EndpointType]
	_ = env.srv.UpdateResources(resource.EndpointType, endpointSet("pay", 50), nil)
	live := env.dial(t, "live", nil, true)
	slow := env.dial(t, "slow", nil, true)
	liveM, slowM := endpointModel{}, endpointModel{}
	live.subscribe(resource.EndpointType, []string{"pay/*"}, nil)
	slow.subscribe(resource.EndpointType, []string{"pay/*"}, nil)
	drain(live, liveM)
	drain(slow, slowM)

	rng := rand.New(rand.NewPCG(1, 2))
	present := map[int]bool{}
	for i := range 50 {
		present[i] = true
	}
	gen := 0
	for stretch := range 6 {
		// The slow client received a response and does not acknowledge it
		// until the stretch ends.
		var pendingAck *discovery.DeltaDiscoveryResponse
		for range 120 {
			i := rng.IntN(80)
			switch {
			case present[i] && rng.IntN(3) == 0:
				_ = env.srv.UpdateResources(resource.EndpointType, nil, []string{resource.Name(endpoint("pay", i))})
				delete(present, i)
			default:
				e := endpoint("pay", i)
				gen++
				e.Zone = fmt.Sprintf("z%d", gen)
				_ = env.srv.UpdateResources(resource.EndpointType, map[string]proto.Message{resource.Name(e): e}, nil)
				present[i] = true
			}
			// live keeps up
			for len(live.recv) > 0 {
				resp := <-live.recv
				liveM.apply(resp)
				live.ack(resp)
			}
			if pendingAck == nil && len(slow.recv) > 0 {
				pendingAck = <-slow.recv
				slowM.apply(pendingAck)
			}
		}
		if pendingAck != nil {
			slow.ack(pendingAck)
		}
		drain(live, liveM)
		drain(slow, slowM)
		c.mu.Lock()
		want := endpointModel{}
		for name := range c.members["pay/*"] {
			want[name] = c.resources[name].version
		}
		logLen := len(c.collLogs["pay/*"].entries)
		c.mu.Unlock()
		if d := cmp.Diff(want, liveM); d != "" {
			t.Fatalf("stretch %d: live client differs from the members (-want +got):\n%s", stretch, d)
		}
		if d := cmp.Diff(want, slowM); d != "" {
			t.Fatalf("stretch %d: slow client differs from the members (-want +got):\n%s", stretch, d)
		}
		t.Logf("stretch %d: %d members, log %d entries", stretch, len(want), logLen)
		if logLen > 2*minCollLog+120 {
			t.Errorf("stretch %d: the collection's log holds %d changes: not trimmed", stretch, logLen)
		}
	}
	if k := knownOf(c, "pay/*"); len(k) > 1 {
		t.Errorf("version map holds %d entries: %v", len(k), k)
	}
}

// subscribedWhole starts a server with n endpoints of "pay" and a client
// that subscribed to "pay/*", received them and is recorded as a whole.
func subscribedWhole(t *testing.T, n int) (*testEnv, *rawStream) {
	t.Helper()
	env := startServer(t)
	_ = env.srv.UpdateResources(resource.EndpointType, endpointSet("pay", n), nil)
	s := env.dial(t, "caller", nil, true)
	s.subscribe(resource.EndpointType, []string{"pay/*"}, nil)
	s.ack(s.next(wait))
	waitKnown(t, env.srv.caches[resource.EndpointType], "pay/*", func(k map[string]string) bool { return len(k) == 1 })
	return env, s
}

// Unsubscribing a collection recorded as a whole removes its members from
// the client, including one that changed while the client was not reading;
// resubscribing sends them again.
func TestCompactCollectionUnsubscribeResubscribe(t *testing.T) {
	env, s := subscribedWhole(t, 3)
	e := endpoint("pay", 7)
	_ = env.srv.UpdateResources(resource.EndpointType, map[string]proto.Message{resource.Name(e): e}, nil)
	s.ack(s.next(wait))
	s.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.EndpointType, ResourceNamesUnsubscribe: []string{"pay/*"}})
	resp := s.next(wait)
	if want := []string{"pay/i-00000", "pay/i-00001", "pay/i-00002", "pay/i-00007"}; !cmp.Equal(resp.GetRemovedResources(), want) {
		t.Fatalf("after unsubscribe removed %v, want %v", resp.GetRemovedResources(), want)
	}
	s.ack(resp)
	s.quiet(100 * time.Millisecond)
	s.subscribe(resource.EndpointType, []string{"pay/*"}, nil)
	resp = s.next(wait)
	if got := names(resp); len(got) != 4 {
		t.Fatalf("after resubscribe got %v", got)
	}
}

// During a hold, a client recorded as a whole keeps the members that leave
// (and receives nothing of the collection); when the hold ends it is told.
func TestCompactCollectionHold(t *testing.T) {
	env, s := subscribedWhole(t, 3)
	if err := env.srv.HoldRemovals(resource.EndpointType, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	_ = env.srv.SetResources(resource.EndpointType, endpointSet("pay", 1))
	s.quiet(150 * time.Millisecond)
	resp := s.next(wait)
	if !cmp.Equal(resp.GetRemovedResources(), []string{"pay/i-00001", "pay/i-00002"}) || len(resp.GetResources()) != 0 {
		t.Fatalf("after the hold got %v removed %v", names(resp), resp.GetRemovedResources())
	}
}

// Swapping one collection for another in one request (as many names
// subscribed as recorded) removes the old one's members and sends the new.
func TestCompactCollectionSwap(t *testing.T) {
	env := startServer(t)
	_ = env.srv.UpdateResources(resource.EndpointType, endpointSet("pay", 2), nil)
	_ = env.srv.UpdateResources(resource.EndpointType, endpointSet("inv", 1), nil)
	_ = env.srv.UpdateResources(resource.EndpointType, endpointSet("ship", 1), nil)
	c := env.srv.caches[resource.EndpointType]
	s := env.dial(t, "caller", nil, true)
	s.subscribe(resource.EndpointType, []string{"pay/*", "inv/*"}, nil)
	s.ack(s.next(wait))
	waitKnown(t, c, "pay/*", func(k map[string]string) bool { return len(k) == 2 })
	s.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.EndpointType,
		ResourceNamesSubscribe: []string{"ship/*"}, ResourceNamesUnsubscribe: []string{"pay/*"}})
	resp := s.next(wait)
	if !cmp.Equal(names(resp), []string{"ship/i-00000"}) || !cmp.Equal(resp.GetRemovedResources(), []string{"pay/i-00000", "pay/i-00001"}) {
		t.Fatalf("after the swap got %v removed %v", names(resp), resp.GetRemovedResources())
	}
}
