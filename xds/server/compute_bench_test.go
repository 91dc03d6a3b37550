package server

import (
	"fmt"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"google.golang.org/protobuf/proto"

	"github.com/outrig/outrig/xds/resource"
)

// An ACK costs what changed since the client was last complete, not what
// it holds: with 1,000 endpoints held, each single-endpoint change (the
// response, then the ACK's new watch) examines a handful of names.
func TestAckExaminesOnlyChanges(t *testing.T) {
	env := startServer(t)
	_ = env.srv.UpdateResources(resource.EndpointType, endpointSet("pay", 1000), nil)
	c := env.srv.caches[resource.EndpointType]
	s := env.dial(t, "caller", nil, true)
	s.subscribe(resource.EndpointType, []string{"pay/*"}, nil)
	s.ack(s.next(wait))
	time.Sleep(50 * time.Millisecond) // the ACK's watch is created
	examined := func() uint64 { c.mu.Lock(); defer c.mu.Unlock(); return c.examined }
	before := examined()
	const changes = 20
	for i := range changes {
		e := endpoint("pay", 2000+i)
		_ = env.srv.UpdateResources(resource.EndpointType, map[string]proto.Message{resource.Name(e): e}, nil)
		resp := s.next(wait)
		if len(resp.GetResources()) != 1 {
			t.Fatalf("change %d sent %d resources", i, len(resp.GetResources()))
		}
		s.ack(resp)
	}
	time.Sleep(50 * time.Millisecond)
	per := float64(examined()-before) / changes
	t.Logf("names examined per change (response + ACK) with 1000 held: %.1f", per)
	if per > 10 {
		t.Errorf("each change examined %.1f names: ACKs cost what the client holds", per)
	}
}

// BenchmarkAck: the cost of one ACK's new watch for a client holding an
// app's n endpoints, computed from scratch for a stream not told apart
// (full: the collection compared member by member), from scratch for a
// known stream (full-whole: the collection recorded as one entry, see
// collections.go; the first call converts the map) and as the stream's
// changes since it was last complete (ack; none here).
func BenchmarkAck(b *testing.B) {
	for _, n := range []int{10, 1000} {
		for _, mode := range []string{"full", "full-whole", "ack"} {
			b.Run(fmt.Sprintf("endpoints=%d/%s", n, mode), func(b *testing.B) {
				ids := newStreamIDs()
				c := newTypeCache(resource.EndpointType, nil, ids)
				entries, err := encodeAll(resource.EndpointType, endpointSet("pay", n))
				if err != nil {
					b.Fatal(err)
				}
				c.patch(entries, nil)
				known := map[string]string{}
				for name, e := range entries {
					known[name] = e.version
				}
				sub := stream.NewDeltaSubscription([]string{"pay/*"}, nil, known, false)
				out := make(chan cache.DeltaResponse, 1)
				req := &discovery.DeltaDiscoveryRequest{TypeUrl: resource.EndpointType, ResponseNonce: "1"}
				const id = 7
				switch mode {
				case "ack":
					c.streams[id] = &streamState{consistent: true, at: c.version}
				case "full-whole":
					req.ResponseNonce = "" // not a pure ACK: computed from scratch
				}
				b.ReportAllocs()
				for b.Loop() {
					if mode != "full" {
						ids.put(id, req)
					}
					cancel, err := c.CreateDeltaWatch(req, sub, out)
					if err != nil {
						b.Fatal(err)
					}
					cancel()
				}
				if len(out) != 0 {
					b.Fatal("the client lacked something")
				}
			})
		}
	}
}
