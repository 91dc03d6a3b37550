package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/xds/resource"
)

func TestWildcardDeliveryFilteredByScopes(t *testing.T) {
	p := startPlane(t, "")
	p.set(t, resource.ComponentType, comp("shared"), comp("mine", "checkout"), comp("theirs", "payments"))
	p.set(t, resource.PolicyType, &configv1.Policy{Name: "p1", Scopes: []string{"checkout"}})
	p.set(t, resource.SubscriptionType, &configv1.Subscription{Name: "s1", PubsubName: "ps", Topic: "t", Scopes: []string{"payments"}})

	rec := newRecorder()
	c := newClient(t, p.addr, rec, func(o *Options) { o.AppIDs = []string{"checkout"} })
	waitReady(t, c)

	got := map[string][]string{}
	rec.mu.Lock()
	for _, call := range rec.calls {
		got[call.typeURL] = append(got[call.typeURL], call.updated...)
	}
	rec.mu.Unlock()
	want := map[string][]string{
		resource.ComponentType: {"mine", "shared"},
		resource.PolicyType:    {"p1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
	if _, ok := c.Cached(resource.ComponentType, "theirs"); ok {
		t.Error("out-of-scope component cached")
	}
	m, found, err := c.Get(context.Background(), resource.ComponentType, "mine")
	if err != nil || !found || m.(*configv1.Component).GetType() != "state.memory" {
		t.Errorf("Get(mine) = %v, %v, %v", m, found, err)
	}
	if _, found, _ := c.Get(context.Background(), resource.ComponentType, "theirs"); found {
		t.Error("Get(theirs) found an out-of-scope component")
	}
}

func TestOneChangeTravelsAlone(t *testing.T) {
	p := startPlane(t, "")
	var all []proto.Message
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		all = append(all, comp(n))
	}
	p.set(t, resource.ComponentType, all...)
	rec := newRecorder()
	c := newClient(t, p.addr, rec, nil)
	waitReady(t, c)
	before := c.Stats()
	if before.Resources != 8 {
		t.Fatalf("initial resources received = %d, want 8", before.Resources)
	}
	rec.drain()

	all[3] = &configv1.Component{Name: "d", Type: "state.redis", Version: "v1"}
	p.set(t, resource.ComponentType, all...)
	call := rec.next(t, resource.ComponentType)
	if !cmp.Equal(call.updated, []string{"d"}) || len(call.removed) != 0 {
		t.Fatalf("Apply got updated %v removed %v, want [d] only", call.updated, call.removed)
	}
	if got := call.msgs["d"].(*configv1.Component).GetType(); got != "state.redis" {
		t.Errorf("d.type = %q", got)
	}
	if d := c.Stats().Resources - before.Resources; d != 1 {
		t.Errorf("resources on the wire for one edit = %d, want 1", d)
	}

	p.set(t, resource.ComponentType, all[:7]...) // h deleted
	call = rec.next(t, resource.ComponentType)
	if len(call.updated) != 0 || !cmp.Equal(call.removed, []string{"h"}) {
		t.Fatalf("Apply got updated %v removed %v, want removal of h", call.updated, call.removed)
	}
	// The cache follows once the Handler accepted.
	eventually(t, "h leaves the cache", func() bool { _, ok := c.Cached(resource.ComponentType, "h"); return !ok })
}

func TestNackKeepsPreviousVersionAndServerCountsIt(t *testing.T) {
	p := startPlane(t, "")
	p.set(t, resource.ComponentType, comp("good"), comp("flaky"))
	rec := newRecorder()
	rec.reject = func(_, name string, m proto.Message) error {
		if m.(*configv1.Component).GetVersion() == "broken" {
			return errors.New("version broken is not supported")
		}
		return nil
	}
	c := newClient(t, p.addr, rec, func(o *Options) { o.NodeID = "sidecar-nack" })
	waitReady(t, c)
	rec.drain()

	// One response carries a good change and a bad one.
	p.set(t, resource.ComponentType,
		&configv1.Component{Name: "good", Type: "state.memory", Version: "v2"},
		&configv1.Component{Name: "flaky", Type: "state.memory", Version: "broken"})
	if call := rec.next(t, resource.ComponentType); !cmp.Equal(call.updated, []string{"flaky", "good"}) {
		t.Fatalf("Apply got %v, want both changes offered", call.updated)
	}

	deadline := time.Now().Add(5 * time.Second)
	for nacks(t, p, "sidecar-nack", resource.ComponentType) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("server did not count the NACK")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// (the NACK is sent after the cache is updated, so the cache is settled here)
	good, _ := c.Cached(resource.ComponentType, "good")
	if v := good.(*configv1.Component).GetVersion(); v != "v2" {
		t.Errorf("good = %s, want the accepted v2", v)
	}
	flaky, _ := c.Cached(resource.ComponentType, "flaky")
	if v := flaky.(*configv1.Component).GetVersion(); v != "v1" {
		t.Errorf("flaky = %s, want the previous v1 kept", v)
	}
	if s := c.Stats(); s.Nacks != 1 {
		t.Errorf("client Nacks = %d, want 1", s.Nacks)
	}

	// A fixed version is accepted.
	p.set(t, resource.ComponentType,
		&configv1.Component{Name: "good", Type: "state.memory", Version: "v2"},
		&configv1.Component{Name: "flaky", Type: "state.memory", Version: "v3"})
	call := rec.next(t, resource.ComponentType)
	if !cmp.Equal(call.updated, []string{"flaky"}) {
		t.Fatalf("after fix: updated %v", call.updated)
	}
	eventually(t, "flaky v3 cached", func() bool {
		m, _ := c.Cached(resource.ComponentType, "flaky")
		return m.(*configv1.Component).GetVersion() == "v3"
	})
}

// nacks reads outrig_xds_nacks_total{node,type} from the plane's registry.
func nacks(t *testing.T, p *plane, node, typeURL string) float64 {
	t.Helper()
	mfs, err := p.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "outrig_xds_nacks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["node"] == node && labels["type"] == typeURL {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
