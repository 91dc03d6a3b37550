package client

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/xds/resource"
)

// sameFleet puts the same configuration and the same 200 instances of
// "payments" in any plane, as replicas sharing a store do.
func sameFleet(t *testing.T) func(*plane) {
	return func(p *plane) {
		p.set(t, resource.ComponentType, comp("a"), comp("b"))
		p.set(t, resource.PolicyType, &configv1.Policy{Name: "pol"})
		eps := map[string]proto.Message{}
		for i := range 200 {
			e := &configv1.Endpoint{AppId: "payments", InstanceId: fmt.Sprintf("pay-%03d", i), Address: fmt.Sprintf("10.0.0.%d:7000", i)}
			eps[resource.Name(e)] = e
		}
		if err := p.srv.UpdateResources(resource.EndpointType, eps, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// A client given two replicas fails over to the second when the first
// goes away, resubscribes with the versions it holds, and receives nothing
// it already has; the second replica's changes then arrive.
func TestFailoverToAnotherReplicaSendsNothingHeld(t *testing.T) {
	p1 := startPlaneWith(t, "", sameFleet(t))
	p2 := startPlaneWith(t, "", sameFleet(t))
	rec := newRecorder()
	c := newClient(t, "", rec, func(o *Options) { o.Target = p1.addr + "," + p2.addr })
	waitReady(t, c)
	eps, found, err := c.Endpoints(context.Background(), "payments")
	if err != nil || !found || len(eps) != 200 {
		t.Fatalf("Endpoints(payments) = %d endpoints, %v, %v", len(eps), found, err)
	}
	if got := p2.sent(t); got != 0 {
		t.Fatalf("second replica sent %v resources before any failover", got)
	}
	rec.drain()
	before := c.Stats()

	start := time.Now()
	p1.stop()
	eventually(t, "client resubscribed on the second replica", func() bool {
		s := c.Stats()
		return s.Streams >= before.Streams+1 && s.Responses >= before.Responses+3
	})
	t.Logf("failed over in %v", time.Since(start))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("failover took %v, want < 2s", d)
	}
	rec.none(t, 200*time.Millisecond)
	if got := c.Stats().Resources - before.Resources; got != 0 {
		t.Errorf("client received %d resources from the second replica, want 0", got)
	}
	if got := p2.sent(t); got != 0 {
		t.Errorf("second replica sent %v resources, want 0", got)
	}
	if eps, _ := c.CachedEndpoints("payments"); len(eps) != 200 {
		t.Errorf("view has %d endpoints after failover", len(eps))
	}

	// Changes on the second replica arrive: one endpoint, one resource.
	e := &configv1.Endpoint{AppId: "payments", InstanceId: "pay-new", Address: "10.0.1.1:7000"}
	_ = p2.srv.UpdateResources(resource.EndpointType, map[string]proto.Message{resource.Name(e): e}, nil)
	if call := rec.next(t, resource.EndpointType); !cmp.Equal(call.updated, []string{"payments/pay-new"}) {
		t.Fatalf("after failover applied %v", call.updated)
	}
	if got := c.Stats().Resources - before.Resources; got != 1 {
		t.Errorf("a join after failover delivered %d resources, want 1", got)
	}
}

// The per-app view follows joins, changes and leaves, stays sorted, and a
// change costs one resource on the wire whatever the app's size.
func TestEndpointViewIncremental(t *testing.T) {
	p := startPlaneWith(t, "", sameFleet(t))
	rec := newRecorder()
	c := newClient(t, p.addr, rec, nil)
	waitReady(t, c)
	if _, found, err := c.Endpoints(context.Background(), "payments"); err != nil || !found {
		t.Fatalf("Endpoints: %v %v", found, err)
	}
	before := c.Stats()
	join := &configv1.Endpoint{AppId: "payments", InstanceId: "pay-500", Address: "10.0.2.1:7000"}
	moved := &configv1.Endpoint{AppId: "payments", InstanceId: "pay-007", Address: "10.0.9.9:7000"}
	_ = p.srv.UpdateResources(resource.EndpointType, map[string]proto.Message{resource.Name(join): join}, nil)
	_ = p.srv.UpdateResources(resource.EndpointType, map[string]proto.Message{resource.Name(moved): moved}, nil)
	_ = p.srv.UpdateResources(resource.EndpointType, nil, []string{"payments/pay-000"})
	eventually(t, "three changes applied", func() bool {
		s := c.Stats()
		return s.Resources >= before.Resources+2 && s.Removed >= before.Removed+1
	})
	s := c.Stats()
	if got := s.Resources - before.Resources; got != 2 {
		t.Errorf("%d resources received for a join and a change, want 2", got)
	}
	if got := s.Removed - before.Removed; got != 1 {
		t.Errorf("%d removals received, want 1", got)
	}
	t.Logf("bytes for join+change+leave among 200 instances: %d", s.Bytes-before.Bytes)
	if b := s.Bytes - before.Bytes; b > 600 {
		t.Errorf("three single-endpoint changes took %d bytes", b)
	}
	eps, _ := c.CachedEndpoints("payments")
	if len(eps) != 200 {
		t.Fatalf("view has %d endpoints, want 200", len(eps))
	}
	for i := 1; i < len(eps); i++ {
		if eps[i-1].GetInstanceId() >= eps[i].GetInstanceId() {
			t.Fatalf("view not sorted at %d: %s >= %s", i, eps[i-1].GetInstanceId(), eps[i].GetInstanceId())
		}
	}
	if eps[0].GetInstanceId() != "pay-001" || eps[len(eps)-1].GetInstanceId() != "pay-500" {
		t.Errorf("view runs from %s to %s", eps[0].GetInstanceId(), eps[len(eps)-1].GetInstanceId())
	}
	for _, e := range eps {
		if e.GetInstanceId() == "pay-007" && e.GetAddress() != "10.0.9.9:7000" {
			t.Errorf("changed endpoint has address %s", e.GetAddress())
		}
	}
}

// After a failover the Registrar registers with the new replica at once
// (the new replica answers NOT_FOUND to the renewal), not a renewal period
// later.
func TestRegistrarMovesWithTheConnection(t *testing.T) {
	p1 := startPlane(t, "")
	p2 := startPlane(t, "")
	rec := newRecorder()
	c := newClient(t, "", rec, func(o *Options) { o.Targets = []string{p1.addr, p2.addr} })
	reg, err := NewRegistrar(c.Conn(), RegistrarOptions{InstanceID: "i-1", Address: "127.0.0.1:7003",
		AppIDs: []string{"a"}, TTL: 30 * time.Second, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close(context.Background())
	select {
	case <-reg.Registered():
	case <-time.After(5 * time.Second):
		t.Fatal("not registered")
	}
	if p1.reg.Len() != 1 || p2.reg.Len() != 0 {
		t.Fatalf("leases: first replica %d, second %d", p1.reg.Len(), p2.reg.Len())
	}
	start := time.Now()
	p1.stop()
	eventually(t, "registered with the second replica", func() bool { return p2.reg.Len() == 1 })
	t.Logf("registration moved in %v (renewal period %v)", time.Since(start), 10*time.Second)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("registration moved after %v, want < 2s", d)
	}
}

func TestTargetsValidation(t *testing.T) {
	for _, o := range []Options{
		{Target: " , ", NodeID: "n", Handler: newRecorder()},
		{Targets: []string{"a:1", ""}, NodeID: "n", Handler: newRecorder()},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}
