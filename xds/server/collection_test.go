package server

import (
	"fmt"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/xds/resource"
)

func endpoint(app string, i int) *configv1.Endpoint {
	return &configv1.Endpoint{AppId: app, InstanceId: fmt.Sprintf("i-%05d", i), Address: fmt.Sprintf("10.0.%d.%d:7000", i/250, i%250)}
}

func endpointSet(app string, n int) map[string]proto.Message {
	out := make(map[string]proto.Message, n)
	for i := range n {
		e := endpoint(app, i)
		out[resource.Name(e)] = e
	}
	return out
}

// An app id nobody registered is answered at once, as the collection's name
// in removed_resources; its first instance is pushed when it registers.
func TestEmptyCollectionAnsweredAtOnceThenPushed(t *testing.T) {
	env := startServer(t)
	s := env.dial(t, "n", []string{"caller"}, true)
	start := time.Now()
	s.subscribe(resource.EndpointType, []string{"pay/*"}, nil)
	resp := s.next(wait)
	elapsed := time.Since(start)
	if len(resp.GetResources()) != 0 || !cmp.Equal(resp.GetRemovedResources(), []string{"pay/*"}) {
		t.Fatalf("got %v removed %v, want removal of pay/*", names(resp), resp.GetRemovedResources())
	}
	if elapsed > 100*time.Millisecond {
		t.Errorf("empty collection answered in %v, want < 100ms", elapsed)
	}
	s.ack(resp)
	s.quiet(100 * time.Millisecond) // said once, not repeated on the ACK

	// Other apps' endpoints do not concern this subscription.
	_ = env.srv.UpdateResources(resource.EndpointType, endpointSet("other", 2), nil)
	s.quiet(100 * time.Millisecond)

	e := endpoint("pay", 1)
	_ = env.srv.UpdateResources(resource.EndpointType, map[string]proto.Message{resource.Name(e): e}, nil)
	resp = s.next(wait)
	if !cmp.Equal(names(resp), []string{"pay/i-00001"}) || len(resp.GetRemovedResources()) != 0 {
		t.Fatalf("after registration got %v removed %v", names(resp), resp.GetRemovedResources())
	}
	s.ack(resp)

	// The last instance leaves: its removal travels, not the collection's.
	_ = env.srv.UpdateResources(resource.EndpointType, nil, []string{"pay/i-00001"})
	resp = s.next(wait)
	if len(resp.GetResources()) != 0 || !cmp.Equal(resp.GetRemovedResources(), []string{"pay/i-00001"}) {
		t.Fatalf("after deregistration got %v removed %v", names(resp), resp.GetRemovedResources())
	}
	s.ack(resp)
	s.quiet(100 * time.Millisecond)
}

// The unit of change is one endpoint: with 1,000 instances, a join, a
// change and a leave each put one resource (or one name) on the wire, and
// the bytes per change are the same as with 10 instances. The same change
// with the whole set as one ServiceEndpoints resource costs 50× more at
// least.
func TestEndpointChangesSendOnlyThatEndpoint(t *testing.T) {
	sizes := map[int][3]int{} // instances → bytes of join, change, leave
	for _, n := range []int{10, 1000} {
		env := startServer(t)
		_ = env.srv.UpdateResources(resource.EndpointType, endpointSet("pay", n), nil)
		s := env.dial(t, "caller", []string{"caller"}, true)
		s.subscribe(resource.EndpointType, []string{"pay/*"}, nil)
		first := s.next(wait)
		if len(first.GetResources()) != n {
			t.Fatalf("n=%d: first response has %d resources", n, len(first.GetResources()))
		}
		s.ack(first)

		join := endpoint("pay", n)
		_ = env.srv.UpdateResources(resource.EndpointType, map[string]proto.Message{resource.Name(join): join}, nil)
		r1 := s.next(wait)
		s.ack(r1)
		changed := endpoint("pay", 3)
		changed.Zone = "z9"
		_ = env.srv.UpdateResources(resource.EndpointType, map[string]proto.Message{resource.Name(changed): changed}, nil)
		r2 := s.next(wait)
		s.ack(r2)
		_ = env.srv.UpdateResources(resource.EndpointType, nil, []string{resource.Name(endpoint("pay", 5))})
		r3 := s.next(wait)
		s.ack(r3)

		if len(r1.GetResources()) != 1 || r1.GetResources()[0].GetName() != resource.Name(join) {
			t.Errorf("n=%d: join sent %v", n, names(r1))
		}
		if len(r2.GetResources()) != 1 || r2.GetResources()[0].GetName() != "pay/i-00003" {
			t.Errorf("n=%d: change sent %v", n, names(r2))
		}
		if len(r3.GetResources()) != 0 || !cmp.Equal(r3.GetRemovedResources(), []string{"pay/i-00005"}) {
			t.Errorf("n=%d: leave sent %v removed %v", n, names(r3), r3.GetRemovedResources())
		}
		sizes[n] = [3]int{wireSize(r1), wireSize(r2), wireSize(r3)}
		s.quiet(50 * time.Millisecond)
	}
	t.Logf("bytes per change (join, change, leave): 10 instances %v, 1000 instances %v", sizes[10], sizes[1000])
	for i := range 3 {
		// Only the system version digits and the nonce may differ.
		if d := sizes[1000][i] - sizes[10][i]; d < -4 || d > 4 {
			t.Errorf("change %d: %d bytes with 1000 instances vs %d with 10: bytes depend on the set size", i, sizes[1000][i], sizes[10][i])
		}
	}

	// Baseline: the whole set as one resource is resent on every change.
	env := startServer(t)
	se := &configv1.ServiceEndpoints{AppId: "pay"}
	for i := range 1000 {
		se.Endpoints = append(se.Endpoints, endpoint("pay", i))
	}
	_ = env.srv.UpdateResources(resource.ServiceEndpointsType, map[string]proto.Message{"pay": se}, nil)
	s := env.dial(t, "caller", []string{"caller"}, true)
	s.subscribe(resource.ServiceEndpointsType, []string{"pay"}, nil)
	s.ack(s.next(wait))
	se = proto.Clone(se).(*configv1.ServiceEndpoints)
	se.Endpoints = append(se.Endpoints, endpoint("pay", 1000))
	_ = env.srv.UpdateResources(resource.ServiceEndpointsType, map[string]proto.Message{"pay": se}, nil)
	whole := wireSize(s.next(wait))
	t.Logf("bytes of one join with the whole set as one resource (1000 instances): %d (%.0f× more)", whole, float64(whole)/float64(sizes[1000][0]))
	if whole < 50*sizes[1000][0] {
		t.Errorf("baseline join %d bytes is not 50× the incremental %d", whole, sizes[1000][0])
	}
}

func wireSize(resp *discovery.DeltaDiscoveryResponse) int { return proto.Size(resp) }

// A client reconnecting with the versions of the members it holds gets
// only what differs: members that changed, joined or left meanwhile.
func TestCollectionReconnectWithInitialVersions(t *testing.T) {
	env := startServer(t)
	_ = env.srv.UpdateResources(resource.EndpointType, endpointSet("pay", 100), nil)
	s := env.dial(t, "caller", nil, true)
	s.subscribe(resource.EndpointType, []string{"pay/*"}, nil)
	held := versions(s.next(wait))

	// Nothing changed: nothing is sent.
	again := env.dial(t, "caller", nil, true)
	again.subscribe(resource.EndpointType, []string{"pay/*"}, held)
	again.quiet(200 * time.Millisecond)

	// One left, one joined, one changed while the client was away.
	changed := endpoint("pay", 7)
	changed.Address = "10.9.9.9:1"
	joined := endpoint("pay", 100)
	_ = env.srv.UpdateResources(resource.EndpointType,
		map[string]proto.Message{resource.Name(changed): changed, resource.Name(joined): joined}, []string{"pay/i-00042"})
	third := env.dial(t, "caller", nil, true)
	third.subscribe(resource.EndpointType, []string{"pay/*"}, held)
	resp := third.next(wait)
	if !cmp.Equal(names(resp), []string{"pay/i-00007", "pay/i-00100"}) || !cmp.Equal(resp.GetRemovedResources(), []string{"pay/i-00042"}) {
		t.Fatalf("got %v removed %v", names(resp), resp.GetRemovedResources())
	}
}

// Unsubscribing a collection removes its members from the client, and a
// collection next to a named subscription of the same type works.
func TestCollectionUnsubscribeAndMixedNames(t *testing.T) {
	env := startServer(t)
	_ = env.srv.UpdateResources(resource.EndpointType, endpointSet("pay", 3), nil)
	_ = env.srv.UpdateResources(resource.EndpointType, endpointSet("inv", 2), nil)
	s := env.dial(t, "caller", nil, true)
	s.subscribe(resource.EndpointType, []string{"pay/*", "inv/i-00001"}, nil)
	resp := s.next(wait)
	if !cmp.Equal(names(resp), []string{"inv/i-00001", "pay/i-00000", "pay/i-00001", "pay/i-00002"}) {
		t.Fatalf("first = %v", names(resp))
	}
	s.ack(resp)
	s.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.EndpointType, ResourceNamesUnsubscribe: []string{"pay/*"}})
	resp = s.next(wait)
	if !cmp.Equal(resp.GetRemovedResources(), []string{"pay/i-00000", "pay/i-00001", "pay/i-00002"}) {
		t.Fatalf("after unsubscribe removed %v", resp.GetRemovedResources())
	}
	s.ack(resp)
	// Changes of pay no longer travel; the named inv instance still does.
	_ = env.srv.UpdateResources(resource.EndpointType, endpointSet("pay", 5), nil)
	s.quiet(100 * time.Millisecond)
	e := endpoint("inv", 1)
	e.Zone = "z"
	_ = env.srv.UpdateResources(resource.EndpointType, map[string]proto.Message{resource.Name(e): e}, nil)
	if got := names(s.next(wait)); !cmp.Equal(got, []string{"inv/i-00001"}) {
		t.Fatalf("named member update = %v", got)
	}
}

// While removals are held, a reconnecting client keeps the members it
// holds (and is not told the collection is empty); when the hold ends it
// is told.
func TestCollectionHeldAfterRestart(t *testing.T) {
	env := startServer(t)
	held := map[string]string{}
	for name, m := range endpointSet("pay", 2) {
		v, _ := resource.Version(m)
		held[name] = v
	}
	if err := env.srv.HoldRemovals(resource.EndpointType, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	s := env.dial(t, "caller", nil, true)
	s.subscribe(resource.EndpointType, []string{"pay/*"}, held)
	s.quiet(150 * time.Millisecond)
	resp := s.next(wait)
	if !cmp.Equal(resp.GetRemovedResources(), []string{"pay/*", "pay/i-00000", "pay/i-00001"}) {
		t.Fatalf("after the hold removed %v", resp.GetRemovedResources())
	}
}
