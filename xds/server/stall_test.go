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

// A client that stops reading must not slow down writers or other clients:
// with one stream wedged (it stopped reading in the middle of a response
// larger than its flow-control window), every configuration write
// (SetResources, UpdateResources) returns promptly, and a healthy client
// receives each round of changes, of every type, on time.
func TestStalledStreamBlocksNoWriterNorOtherClient(t *testing.T) {
	env := startServer(t)
	// Round 0's components are 1 MiB (far beyond a stream's flow-control
	// window): the stalled stream wedges sending them. Later rounds are
	// small, so that the healthy client's delivery times measure waiting,
	// not bandwidth.
	big := strings.Repeat("x", 256<<10)
	bigComps := func(gen int) map[string]proto.Message {
		out := map[string]proto.Message{}
		for i := range 4 {
			blob := "small"
			if gen == 0 {
				blob = big
			}
			c := &configv1.Component{Name: fmt.Sprintf("c%d", i), Type: "state.memory",
				Metadata: []*configv1.MetadataItem{{Name: "blob", Value: blob}, {Name: "gen", Value: fmt.Sprint(gen)}}}
			out[c.Name] = c
		}
		return out
	}
	policy := func(gen int) map[string]proto.Message {
		return map[string]proto.Message{"p": &configv1.Policy{Name: "p", Targets: []*configv1.PolicyTarget{{Kind: "invoke", Name: fmt.Sprint(gen)}}}}
	}
	instance := func(gen int) map[string]proto.Message {
		e := &configv1.Endpoint{AppId: "payments", InstanceId: "p1", Address: fmt.Sprintf("10.0.0.%d:1", gen)}
		return map[string]proto.Message{resource.Name(e): e}
	}
	_ = env.srv.SetResources(resource.ComponentType, bigComps(0))
	_ = env.srv.SetResources(resource.PolicyType, policy(0))

	// The stalled client opens watches on every type, then stops reading
	// while the server is sending it a response larger than its window.
	stalled := env.dial(t, "stalled", nil, false)
	stalled.subscribe(resource.PolicyType, []string{"*"}, nil)
	stalled.subscribe(resource.ServiceEndpointsType, []string{"payments"}, nil)
	stalled.subscribe(resource.EndpointType, []string{"payments/*"}, nil)
	stalled.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.PolicyType, ResponseNonce: "1"})
	stalled.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.ServiceEndpointsType, ResponseNonce: "2"})
	stalled.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.EndpointType, ResponseNonce: "3"})
	stalled.subscribe(resource.ComponentType, []string{"*"}, nil)

	healthy := env.dial(t, "healthy", nil, true)
	healthy.subscribe(resource.ComponentType, []string{"*"}, nil)
	healthy.subscribe(resource.PolicyType, []string{"*"}, nil)
	healthy.subscribe(resource.ServiceEndpointsType, []string{"payments"}, nil)
	healthy.subscribe(resource.EndpointType, []string{"payments/*"}, nil)
	time.Sleep(100 * time.Millisecond) // let the stalled stream wedge in Send

	have := map[string]string{}
	const rounds = 30
	var slowestWrite, slowestDelivery time.Duration
	for gen := 1; gen <= rounds; gen++ {
		timed := func(write func() error) {
			start := time.Now()
			if err := write(); err != nil {
				t.Fatal(err)
			}
			slowestWrite = max(slowestWrite, time.Since(start))
		}
		start := time.Now()
		timed(func() error { return env.srv.SetResources(resource.ComponentType, bigComps(gen)) })
		timed(func() error { return env.srv.SetResources(resource.PolicyType, policy(gen)) })
		timed(func() error {
			return env.srv.UpdateResources(resource.ServiceEndpointsType,
				map[string]proto.Message{"payments": endpoints("payments", fmt.Sprintf("10.0.0.%d:1", gen))}, nil)
		})
		timed(func() error { return env.srv.UpdateResources(resource.EndpointType, instance(gen), nil) })

		// The healthy client gets this round of every type.
		wantPolicy, _ := resource.Version(policy(gen)["p"])
		wantEP, _ := resource.Version(endpoints("payments", fmt.Sprintf("10.0.0.%d:1", gen)))
		wantInst, _ := resource.Version(instance(gen)["payments/p1"])
		wantComp, _ := resource.Version(bigComps(gen)["c3"])
		deadline := time.After(5 * time.Second)
		for have["p"] != wantPolicy || have["payments"] != wantEP || have["payments/p1"] != wantInst || have["c3"] != wantComp {
			select {
			case resp := <-healthy.recv:
				for n, v := range versions(resp) {
					have[n] = v
				}
				healthy.ack(resp)
			case <-deadline:
				t.Fatalf("round %d: the healthy client did not get every change within 5s: have %v", gen, have)
			}
		}
		slowestDelivery = max(slowestDelivery, time.Since(start))
	}
	t.Logf("with a stalled stream: slowest write %v, slowest round delivered to the healthy client %v", slowestWrite, slowestDelivery)
	if slowestWrite > 250*time.Millisecond {
		t.Errorf("a configuration write took %v with a stalled stream", slowestWrite)
	}
	if slowestDelivery > time.Second {
		t.Errorf("a round took %v to reach the healthy client", slowestDelivery)
	}

	// The stalled stream was not dropped: once read, it delivers what was
	// stuck in it, the components of round 0 (1 MiB, sixteen times the
	// stream's 64 KiB flow-control window, so their send could not finish
	// while nobody read).
	got := make(chan *discovery.DeltaDiscoveryResponse, 1)
	go func() {
		for {
			resp, err := stalled.stream.Recv()
			if err != nil {
				close(got)
				return
			}
			if resp.GetTypeUrl() == resource.ComponentType {
				got <- resp
				return
			}
		}
	}()
	select {
	case resp, ok := <-got:
		if !ok {
			t.Fatal("the stalled stream ended")
		}
		wantComp0, _ := resource.Version(bigComps(0)["c3"])
		if v := versions(resp)["c3"]; v != wantComp0 {
			t.Fatalf("the stalled stream's first components are not round 0's (%s)", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing came out of the stalled stream once read")
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
