package client

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/xds/resource"
)

func TestUnknownAppIDNotFoundFastThenPushedOnRegistration(t *testing.T) {
	p := startPlane(t, "")
	rec := newRecorder()
	c := newClient(t, p.addr, rec, func(o *Options) { o.AppIDs = []string{"checkout"} })
	waitReady(t, c)
	rec.drain()

	start := time.Now()
	_, found, err := c.Endpoints(context.Background(), "payments")
	elapsed := time.Since(start)
	if err != nil || found {
		t.Fatalf("Get(payments) = found %v, err %v; want not found", found, err)
	}
	t.Logf("unknown app id answered in %v", elapsed)
	if elapsed > 100*time.Millisecond {
		t.Errorf("not-found took %v, want < 100ms", elapsed)
	}

	// A payments sidecar registers: its endpoint is pushed to the watcher.
	reg, err := NewRegistrar(c.Conn(), RegistrarOptions{InstanceID: "pay-1", Address: "127.0.0.1:7001", Zone: "z1",
		AppIDs: []string{"payments"}, TTL: 3 * time.Second, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	call := rec.next(t, resource.EndpointType)
	if !cmp.Equal(call.updated, []string{"payments/pay-1"}) {
		t.Fatalf("Apply got %v", call.updated)
	}
	e := call.msgs["payments/pay-1"].(*configv1.Endpoint)
	if e.GetAddress() != "127.0.0.1:7001" || e.GetZone() != "z1" || e.GetAppId() != "payments" {
		t.Fatalf("endpoint = %v", e)
	}
	eventually(t, "Endpoints finds payments", func() bool {
		eps, found, err := c.Endpoints(context.Background(), "payments")
		return err == nil && found && len(eps) == 1
	})

	// Graceful shutdown deregisters: the watcher sees the removal.
	if err := reg.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	call = rec.next(t, resource.EndpointType)
	if !cmp.Equal(call.removed, []string{"payments/pay-1"}) {
		t.Fatalf("after deregistration Apply removed %v", call.removed)
	}
	eventually(t, "payments leaves the cache", func() bool {
		_, ok := c.CachedEndpoints("payments")
		return !ok
	})
	if _, found, err := c.Endpoints(context.Background(), "payments"); err != nil || found {
		t.Fatalf("Endpoints after the last instance left: found %v err %v", found, err)
	}
}

func TestEndpointsRemovedOnExpiry(t *testing.T) {
	p := startPlane(t, "")
	if _, err := p.reg.Register("inventory", &configv1.Endpoint{InstanceId: "inv-1", Address: "127.0.0.1:7002"}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	c := newClient(t, p.addr, rec, nil)
	waitReady(t, c)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, found, err := c.Endpoints(context.Background(), "inventory")
		if err != nil {
			t.Fatal(err)
		}
		if found {
			break
		}
		// The registration may not be flushed to the server yet.
		if time.Now().After(deadline) {
			t.Fatal("inventory endpoints never arrived")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rec.drain()

	p.clk.Advance(6 * time.Second) // no heartbeat: the lease is overdue
	if n := p.reg.Check(); n != 1 {
		t.Fatalf("expired %d leases, want 1", n)
	}
	call := rec.next(t, resource.EndpointType)
	if !cmp.Equal(call.removed, []string{"inventory/inv-1"}) {
		t.Fatalf("after expiry Apply removed %v", call.removed)
	}
}

func TestRegistrarReRegistersAfterLeaseLoss(t *testing.T) {
	p := startPlane(t, "")
	rec := newRecorder()
	c := newClient(t, p.addr, rec, nil)
	reg, err := NewRegistrar(c.Conn(), RegistrarOptions{InstanceID: "i-1", Address: "127.0.0.1:7003",
		AppIDs: []string{"a", "b"}, TTL: 1500 * time.Millisecond, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close(context.Background())
	select {
	case <-reg.Registered():
	case <-time.After(5 * time.Second):
		t.Fatal("not registered")
	}
	if p.reg.Len() != 2 {
		t.Fatalf("registry holds %d leases, want 2", p.reg.Len())
	}
	// The control plane loses the lease (as after a restart); the next
	// renewal gets NOT_FOUND and registers again.
	_ = p.reg.Deregister("a", "i-1")
	deadline := time.Now().Add(5 * time.Second)
	for p.reg.Endpoints("a") == nil {
		if time.Now().After(deadline) {
			t.Fatal("registrar did not register again after NOT_FOUND")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRegistrarOptionsValidation(t *testing.T) {
	tests := []RegistrarOptions{
		{Address: "h:1", AppIDs: []string{"a"}},
		{InstanceID: "i", AppIDs: []string{"a"}},
		{InstanceID: "i", Address: "nope", AppIDs: []string{"a"}},
		{InstanceID: "i", Address: "h:1"},
		{InstanceID: "i", Address: "h:1", AppIDs: []string{""}},
	}
	for _, o := range tests {
		if _, err := NewRegistrar(nil, o); err == nil {
			t.Errorf("NewRegistrar(%+v) succeeded", o)
		}
	}
}

// Unknown app ids are answered as not found well under 100ms, every time:
// 200 lookups of distinct app ids on one connection.
func TestNotFoundLatency(t *testing.T) {
	p := startPlane(t, "")
	c := newClient(t, p.addr, newRecorder(), nil)
	waitReady(t, c)
	var lat []time.Duration
	for i := range 200 {
		start := time.Now()
		_, found, err := c.Endpoints(context.Background(), fmt.Sprintf("ghost-%d", i))
		if err != nil || found {
			t.Fatalf("Endpoints(ghost-%d) = %v %v", i, found, err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	p50, p99, worst := lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	t.Logf("not-found latency over %d app ids: p50 %v, p99 %v, max %v", len(lat), p50, p99, worst)
	if p99 > 100*time.Millisecond {
		t.Errorf("not-found p99 %v, want < 100ms", p99)
	}
}
