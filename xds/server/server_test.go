package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/xds/resource"
)

const wait = 5 * time.Second

func TestWildcardFilteredByScopes(t *testing.T) {
	env := startServer(t)
	if err := env.srv.SetResources(resource.ComponentType, comps(
		comp("shared"), comp("for-a", "app-a"), comp("for-b", "app-b"), comp("for-ab", "app-a", "app-b"),
	)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		node   string
		appIDs []string
		want   []string
	}{
		{"sidecar-a", []string{"app-a"}, []string{"for-a", "for-ab", "shared"}},
		{"sidecar-b", []string{"app-b"}, []string{"for-ab", "for-b", "shared"}},
		{"sidecar-c", []string{"app-c"}, []string{"shared"}},
		{"sidecar-ac", []string{"app-c", "app-a"}, []string{"for-a", "for-ab", "shared"}},
		{"admin", nil, []string{"for-a", "for-ab", "for-b", "shared"}},
	}
	for _, tc := range tests {
		t.Run(tc.node, func(t *testing.T) {
			s := env.dial(t, tc.node, tc.appIDs, true)
			s.subscribe(resource.ComponentType, []string{"*"}, nil)
			resp := s.next(wait)
			if diff := cmp.Diff(tc.want, names(resp)); diff != "" {
				t.Errorf("resources (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScopeChangeRemovesFromNode(t *testing.T) {
	env := startServer(t)
	_ = env.srv.SetResources(resource.ComponentType, comps(comp("x", "app-a"), comp("y")))
	a := env.dial(t, "a", []string{"app-a"}, true)
	a.subscribe(resource.ComponentType, []string{"*"}, nil)
	first := a.next(wait)
	if got := names(first); !cmp.Equal(got, []string{"x", "y"}) {
		t.Fatalf("initial = %v", got)
	}
	a.ack(first)

	// x now goes to app-b only: app-a must be told it is gone.
	_ = env.srv.SetResources(resource.ComponentType, comps(comp("x", "app-b"), comp("y")))
	resp := a.next(wait)
	if len(resp.GetResources()) != 0 || !cmp.Equal(resp.GetRemovedResources(), []string{"x"}) {
		t.Fatalf("got resources %v removed %v, want removal of x only", names(resp), resp.GetRemovedResources())
	}
	a.ack(resp)
	// And back in scope: pushed again.
	_ = env.srv.SetResources(resource.ComponentType, comps(comp("x", "app-b", "app-a"), comp("y")))
	if got := names(a.next(wait)); !cmp.Equal(got, []string{"x"}) {
		t.Fatalf("after re-scope = %v, want [x]", got)
	}
}

func TestSetResourcesSendsOnlyChanges(t *testing.T) {
	env := startServer(t)
	all := map[string]proto.Message{}
	for i := range 50 {
		c := comp(fmt.Sprintf("c%02d", i))
		all[c.Name] = c
	}
	_ = env.srv.SetResources(resource.ComponentType, all)
	s := env.dial(t, "n", []string{"app"}, true)
	s.subscribe(resource.ComponentType, []string{"*"}, nil)
	first := s.next(wait)
	if len(first.GetResources()) != 50 {
		t.Fatalf("initial response has %d resources, want 50", len(first.GetResources()))
	}
	s.ack(first)

	// Same content again (new message values): nothing travels.
	again := map[string]proto.Message{}
	for k, v := range all {
		again[k] = proto.Clone(v)
	}
	_ = env.srv.SetResources(resource.ComponentType, again)
	s.quiet(200 * time.Millisecond)

	// One edit, one removal: exactly that travels.
	again["c07"].(*configv1.Component).Version = "v2"
	delete(again, "c30")
	_ = env.srv.SetResources(resource.ComponentType, again)
	resp := s.next(wait)
	if !cmp.Equal(names(resp), []string{"c07"}) || !cmp.Equal(resp.GetRemovedResources(), []string{"c30"}) {
		t.Fatalf("got resources %v removed %v, want [c07] and [c30]", names(resp), resp.GetRemovedResources())
	}
	want, _ := resource.Version(again["c07"])
	if got := resp.GetResources()[0].GetVersion(); got != want {
		t.Errorf("version = %s, want content version %s", got, want)
	}
	sent := testutil.ToFloat64(env.srv.metrics.resourcesSent.WithLabelValues(resource.ComponentType))
	if sent != 51 {
		t.Errorf("outrig_xds_resources_sent_total = %v, want 51", sent)
	}
}

func TestUnknownNameAnsweredAtOnceThenPushed(t *testing.T) {
	env := startServer(t)
	s := env.dial(t, "n", []string{"caller"}, true)
	start := time.Now()
	s.subscribe(resource.ServiceEndpointsType, []string{"payments"}, nil)
	resp := s.next(wait)
	elapsed := time.Since(start)
	if !cmp.Equal(resp.GetRemovedResources(), []string{"payments"}) || len(resp.GetResources()) != 0 {
		t.Fatalf("got resources %v removed %v, want payments removed", names(resp), resp.GetRemovedResources())
	}
	if elapsed > 100*time.Millisecond {
		t.Errorf("not-found answer took %v, want < 100ms", elapsed)
	}
	t.Logf("not-found round trip: %v", elapsed)
	s.ack(resp)
	s.quiet(100 * time.Millisecond) // answered once, not again on the ACK

	// Another app's endpoints do not concern this stream.
	_ = env.srv.UpdateResources(resource.ServiceEndpointsType, map[string]proto.Message{"other": endpoints("other", "10.0.0.9:1")}, nil)
	s.quiet(100 * time.Millisecond)

	_ = env.srv.UpdateResources(resource.ServiceEndpointsType, map[string]proto.Message{"payments": endpoints("payments", "10.0.0.1:1")}, nil)
	resp = s.next(wait)
	if !cmp.Equal(names(resp), []string{"payments"}) {
		t.Fatalf("after registration got %v", names(resp))
	}
	s.ack(resp)
	_ = env.srv.UpdateResources(resource.ServiceEndpointsType, nil, []string{"payments"})
	resp = s.next(wait)
	if !cmp.Equal(resp.GetRemovedResources(), []string{"payments"}) {
		t.Fatalf("after removal got removed %v", resp.GetRemovedResources())
	}
}

func TestReconnectWithInitialVersionsSendsNothingHeld(t *testing.T) {
	env := startServer(t)
	_ = env.srv.SetResources(resource.ComponentType, comps(comp("a"), comp("b"), comp("c")))
	s1 := env.dial(t, "n", nil, true)
	s1.subscribe(resource.ComponentType, []string{"*"}, nil)
	held := versions(s1.next(wait))

	// While "disconnected", b changes and c goes away.
	_ = env.srv.SetResources(resource.ComponentType, comps(comp("a"), &configv1.Component{Name: "b", Type: "state.redis"}, comp("d")))

	s2 := env.dial(t, "n", nil, true)
	s2.subscribe(resource.ComponentType, []string{"*"}, held)
	resp := s2.next(wait)
	if !cmp.Equal(names(resp), []string{"b", "d"}) || !cmp.Equal(resp.GetRemovedResources(), []string{"c"}) {
		t.Fatalf("got resources %v removed %v, want [b d] and [c]", names(resp), resp.GetRemovedResources())
	}

	// Everything up to date: the first reply is empty (it still comes, so
	// the client knows it is in sync).
	s3 := env.dial(t, "n", nil, true)
	all := versions(resp)
	all["a"] = held["a"]
	s3.subscribe(resource.ComponentType, []string{"*"}, all)
	resp = s3.next(wait)
	if len(resp.GetResources()) != 0 || len(resp.GetRemovedResources()) != 0 {
		t.Fatalf("in-sync reconnect got resources %v removed %v, want nothing", names(resp), resp.GetRemovedResources())
	}
}

func TestNackCountedPerNode(t *testing.T) {
	env := startServer(t)
	_ = env.srv.SetResources(resource.PolicyType, map[string]proto.Message{"p": &configv1.Policy{Name: "p"}})
	s := env.dial(t, "sidecar-7", []string{"app"}, true)
	s.subscribe(resource.PolicyType, []string{"*"}, nil)
	resp := s.next(wait)
	s.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.PolicyType, ResponseNonce: resp.GetNonce(),
		ErrorDetail: &status.Status{Code: 3, Message: "p: bad"}})
	deadline := time.Now().Add(wait)
	for {
		got := testutil.ToFloat64(env.srv.metrics.nacks.WithLabelValues("sidecar-7", resource.PolicyType))
		if got == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outrig_xds_nacks_total{node=sidecar-7} = %v, want 1", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The series is exported on the registry passed in.
	n, err := testutil.GatherAndCount(env.reg, "outrig_xds_nacks_total")
	if err != nil || n != 1 {
		t.Errorf("gathered %d nack series (err %v), want 1", n, err)
	}
}

func TestSetResourcesValidation(t *testing.T) {
	env := startServer(t)
	tests := []struct {
		name    string
		typeURL string
		res     map[string]proto.Message
		want    string
	}{
		{"unknown type", "type.googleapis.com/x.Y", nil, "unknown resource type"},
		{"wrong message type", resource.PolicyType, map[string]proto.Message{"a": comp("a")}, "message is a"},
		{"name mismatch", resource.ComponentType, map[string]proto.Message{"a": comp("b")}, `names itself "b"`},
		{"nil message", resource.ComponentType, map[string]proto.Message{"a": nil}, "is nil"},
		{"empty name", resource.ComponentType, map[string]proto.Message{"": comp("")}, "name is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := env.srv.SetResources(tc.typeURL, tc.res)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	// All or nothing: a bad entry leaves the set unchanged.
	_ = env.srv.SetResources(resource.ComponentType, comps(comp("keep")))
	_ = env.srv.SetResources(resource.ComponentType, map[string]proto.Message{"new": comp("new"), "bad": comp("other")})
	if _, _, ok := env.srv.Resource(resource.ComponentType, "keep"); !ok {
		t.Error("failed SetResources changed the set")
	}
}

func TestHoldRemovalsAfterRestart(t *testing.T) {
	env := startServer(t)
	holdStart := time.Now()
	if err := env.srv.HoldRemovals(resource.ServiceEndpointsType, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// A sidecar reconnects holding payments' endpoints, which this fresh
	// control plane does not know yet.
	s := env.dial(t, "n", nil, true)
	start := time.Now()
	s.subscribe(resource.ServiceEndpointsType, []string{"payments", "unknown"}, map[string]string{"payments": "abc"})
	resp := s.next(wait)
	if !cmp.Equal(resp.GetRemovedResources(), []string{"unknown"}) {
		t.Fatalf("during the hold got removed %v, want only the name the client did not hold", resp.GetRemovedResources())
	}
	if time.Since(start) > 100*time.Millisecond {
		t.Errorf("unknown name answered after %v during a hold", time.Since(start))
	}
	s.ack(resp)
	// The instance re-registers in time: the client gets the new version.
	_ = env.srv.UpdateResources(resource.ServiceEndpointsType, map[string]proto.Message{"payments": endpoints("payments", "10.0.0.1:1")}, nil)
	resp = s.next(wait)
	if !cmp.Equal(names(resp), []string{"payments"}) {
		t.Fatalf("got %v", names(resp))
	}
	s.ack(resp)

	// Another client holds an app id nobody re-registers: removed when the hold ends.
	s2 := env.dial(t, "m", nil, true)
	s2.subscribe(resource.ServiceEndpointsType, []string{"gone"}, map[string]string{"gone": "abc"})
	s2.quiet(100 * time.Millisecond)
	resp = s2.next(wait)
	if !cmp.Equal(resp.GetRemovedResources(), []string{"gone"}) {
		t.Fatalf("after the hold got removed %v", resp.GetRemovedResources())
	}
	if held := time.Since(holdStart); held < 300*time.Millisecond {
		t.Errorf("removal sent after %v, before the hold ended", held)
	}
	s.quiet(100 * time.Millisecond) // the first client had nothing due
}
