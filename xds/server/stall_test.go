package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/xds/resource"
)

// A client that stops reading must not slow down writers or other clients.
func TestStalledStreamBlocksNoWriterNorOtherClient(t *testing.T) {
	env := startServer(t)
	big := strings.Repeat("x", 256<<10) // far beyond a stream's flow-control window
	bigComps := func(gen int) map[string]proto.Message {
		out := map[string]proto.Message{}
		for i := range 4 {
			c := &configv1.Component{Name: fmt.Sprintf("c%d", i), Type: "state.memory",
				Metadata: []*configv1.MetadataItem{{Name: "blob", Value: big}, {Name: "gen", Value: fmt.Sprint(gen)}}}
			out[c.Name] = c
		}
		return out
	}
	policy := func(gen int) map[string]proto.Message {
		return map[string]proto.Message{"p": &configv1.Policy{Name: "p", Targets: []*configv1.PolicyTarget{{Kind: "invoke", Name: fmt.Sprint(gen)}}}}
	}
	_ = env.srv.SetResources(resource.ComponentType, bigComps(0))
	_ = env.srv.SetResources(resource.PolicyType, policy(0))

	// The stalled client opens watches on every type, then stops reading
	// while the server is sending it a response larger than its window.
	stalled := env.dial(t, "stalled", nil, false)
	stalled.subscribe(resource.PolicyType, []string{"*"}, nil)
	stalled.subscribe(resource.ServiceEndpointsType, []string{"payments"}, nil)
	stalled.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.PolicyType, ResponseNonce: "1"})
	stalled.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.ServiceEndpointsType, ResponseNonce: "2"})
	stalled.subscribe(resource.ComponentType, []string{"*"}, nil)

	healthy := env.dial(t, "healthy", nil, true)
	healthy.subscribe(resource.ComponentType, []string{"*"}, nil)
	healthy.subscribe(resource.PolicyType, []string{"*"}, nil)
	healthy.subscribe(resource.ServiceEndpointsType, []string{"payments"}, nil)
	time.Sleep(100 * time.Millisecond) // let the stalled stream wedge in Send

	const rounds = 30
	var slowest time.Duration
	for gen := 1; gen <= rounds; gen++ {
		start := time.Now()
		if err := env.srv.SetResources(resource.ComponentType, bigComps(gen)); err != nil {
			t.Fatal(err)
		}
		_ = env.srv.SetResources(resource.PolicyType, policy(gen))
		_ = env.srv.UpdateResources(resource.ServiceEndpointsType,
			map[string]proto.Message{"payments": endpoints("payments", fmt.Sprintf("10.0.0.%d:1", gen))}, nil)
		if d := time.Since(start); d > slowest {
			slowest = d
		}
	}
	t.Logf("slowest write round with a stalled stream: %v", slowest)
	if slowest > time.Second {
		t.Fatalf("a write round took %v with a stalled stream", slowest)
	}

	// The healthy client converges on the last generation of every type.
	wantPolicy, _ := resource.Version(policy(rounds)["p"])
	wantEP, _ := resource.Version(endpoints("payments", fmt.Sprintf("10.0.0.%d:1", rounds)))
	wantComp, _ := resource.Version(bigComps(rounds)["c0"])
	have := map[string]string{}
	deadline := time.After(10 * time.Second)
	for have["p"] != wantPolicy || have["payments"] != wantEP || have["c0"] != wantComp {
		select {
		case resp := <-healthy.recv:
			for n, v := range versions(resp) {
				have[n] = v
			}
			healthy.ack(resp)
		case <-deadline:
			t.Fatalf("healthy client did not converge: have %v", have)
		}
	}
}

// The guard itself: a stream whose channel has no room never blocks the
// writer, and cancelling the watch joins the waiting send.
func TestDeliverNeverBlocks(t *testing.T) {
	out := make(chan cache.DeltaResponse) // no buffer, nobody reading
	w := newWatch(1, &discovery.DeltaDiscoveryRequest{TypeUrl: resource.ComponentType}, nil, out)
	done := make(chan bool)
	go func() { done <- w.deliver(&response{}) }()
	select {
	case deferred := <-done:
		if !deferred {
			t.Fatal("deliver to a full channel reported an immediate send")
		}
	case <-time.After(time.Second):
		t.Fatal("deliver blocked on a full channel")
	}
	stopped := make(chan struct{})
	go func() { w.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(time.Second):
		t.Fatal("stop did not join the deferred send")
	}
	// After stop nothing is sent any more, so the channel may be closed.
	w.deliver(&response{})
	close(out)

	// With a reader, the deferred send arrives.
	out2 := make(chan cache.DeltaResponse)
	w2 := newWatch(2, &discovery.DeltaDiscoveryRequest{}, nil, out2)
	w2.deliver(&response{version: "7"})
	select {
	case r := <-out2:
		if r.GetResponseVersion() != "7" {
			t.Fatalf("got version %q", r.GetResponseVersion())
		}
	case <-time.After(time.Second):
		t.Fatal("deferred send never arrived")
	}
	w2.stop()
}
