package main

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/outrig/outrig/xds/resource"
)

func res(typeURL, name, body string) *discovery.Resource {
	return &discovery.Resource{Name: name, Resource: &anypb.Any{TypeUrl: typeURL, Value: []byte(body)}}
}

// startHub serves a hub that already holds one component and the endpoints
// of two apps, as if it had followed a control plane.
func startHub(t *testing.T) (*sotwHub, *testStream) {
	t.Helper()
	h := newSotwHub(collectionModel{}, slog.Default())
	h.apply(0, []*discovery.Resource{res(resource.ComponentType, "c1", "one")}, nil)
	h.apply(1, nil, nil)
	h.apply(2, nil, nil)
	h.apply(3, []*discovery.Resource{
		res(resource.EndpointType, "a/1", "a1-v1"),
		res(resource.EndpointType, "b/1", "b1-v1"),
	}, nil)
	close(h.ready)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	h.Register(g)
	go func() { _ = g.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		_ = conn.Close()
		_ = h.Close()
		g.Stop()
	})
	st, err := conn.NewStream(ctx, &sotwDesc.Streams[0], sotwMethod)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testStream{ClientStream: st, recv: make(chan *discovery.DiscoveryResponse, 16)}
	go func() {
		defer close(ts.recv)
		for {
			resp := &discovery.DiscoveryResponse{}
			if err := st.RecvMsg(resp); err != nil {
				return
			}
			ts.recv <- resp
		}
	}()
	return h, ts
}

// testStream is a SotW client stream whose responses one goroutine reads.
type testStream struct {
	grpc.ClientStream
	recv chan *discovery.DiscoveryResponse
}

func recvWithin(t *testing.T, st *testStream, d time.Duration) *discovery.DiscoveryResponse {
	t.Helper()
	select {
	case resp, ok := <-st.recv:
		if !ok {
			t.Fatal("stream ended")
		}
		return resp
	case <-time.After(d):
		return nil
	}
}

func bodies(resp *discovery.DiscoveryResponse) []string {
	var out []string
	for _, a := range resp.GetResources() {
		out = append(out, string(a.GetValue()))
	}
	return out
}

func TestSotwHubSendsFullSetAfterACK(t *testing.T) {
	h, st := startHub(t)
	ept := resource.EndpointType
	if err := st.SendMsg(&discovery.DiscoveryRequest{TypeUrl: ept, ResourceNames: []string{"a/*"}}); err != nil {
		t.Fatal(err)
	}
	first := recvWithin(t, st, 5*time.Second)
	if first == nil {
		t.Fatal("no answer to the subscription")
	}
	if got := bodies(first); len(got) != 1 || got[0] != "a1-v1" {
		t.Fatalf("first response = %v, want only the subscribed app's [a1-v1]", got)
	}

	// A change of an app the stream does not subscribe to sends nothing.
	h.apply(3, []*discovery.Resource{res(ept, "b/2", "b2-v1")}, nil)
	// A change of its app before the ACK waits for the ACK.
	h.apply(3, []*discovery.Resource{res(ept, "a/2", "a2-v1")}, nil)
	if resp := recvWithin(t, st, 300*time.Millisecond); resp != nil {
		t.Fatalf("sent %v before the previous response was ACKed", bodies(resp))
	}
	if err := st.SendMsg(&discovery.DiscoveryRequest{TypeUrl: ept, ResourceNames: []string{"a/*"},
		VersionInfo: first.GetVersionInfo(), ResponseNonce: first.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	second := recvWithin(t, st, 5*time.Second)
	if second == nil {
		t.Fatal("change not sent after the ACK")
	}
	if got := bodies(second); len(got) != 2 || got[0] != "a1-v1" || got[1] != "a2-v1" {
		t.Fatalf("second response = %v, want the app's full set [a1-v1 a2-v1]", got)
	}

	// A removal sends the full set without it.
	if err := st.SendMsg(&discovery.DiscoveryRequest{TypeUrl: ept, ResourceNames: []string{"a/*"}, ResponseNonce: second.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	h.apply(3, nil, []string{"a/1"})
	third := recvWithin(t, st, 5*time.Second)
	if third == nil {
		t.Fatal("removal not sent")
	}
	if got := bodies(third); len(got) != 1 || got[0] != "a2-v1" {
		t.Fatalf("after removal = %v, want [a2-v1]", got)
	}

	// Wildcard: the whole set of the type on every change.
	if err := st.SendMsg(&discovery.DiscoveryRequest{TypeUrl: resource.ComponentType}); err != nil {
		t.Fatal(err)
	}
	c1 := recvWithin(t, st, 5*time.Second)
	if c1 == nil || c1.GetTypeUrl() != resource.ComponentType {
		t.Fatalf("component response = %v", c1)
	}
	if err := st.SendMsg(&discovery.DiscoveryRequest{TypeUrl: resource.ComponentType, ResponseNonce: c1.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	h.apply(0, []*discovery.Resource{res(resource.ComponentType, "c2", "two")}, nil)
	c2 := recvWithin(t, st, 5*time.Second)
	if c2 == nil {
		t.Fatal("component change not sent")
	}
	if got := bodies(c2); len(got) != 2 || got[0] != "one" || got[1] != "two" {
		t.Fatalf("wildcard response = %v, want the full set [one two]", got)
	}
}

func TestProbes(t *testing.T) {
	ept := resource.EndpointType
	join := present(ept, "inst-7")
	if join(&update{typeURL: ept, resources: []item{{name: "a", raw: []byte("xx inst-6 yy")}}}) {
		t.Error("present matched a response without the marker")
	}
	if !join(&update{typeURL: ept, resources: []item{{name: "a", raw: []byte("xx inst-7 yy")}}}) {
		t.Error("present missed the marker")
	}
	if join(&update{typeURL: resource.ComponentType, resources: []item{{raw: []byte("inst-7")}}}) {
		t.Error("present matched another type")
	}

	left := gone(ept, "inst-7", collectionModel{}.Left("a", "inst-7"))
	tests := []struct {
		name string
		u    update
		want bool
	}{
		{"delta: its resource removed", update{typeURL: ept, removed: []string{"a/inst-7"}}, true},
		{"delta: another instance removed", update{typeURL: ept, removed: []string{"a/inst-6", "b/inst-7"}}, false},
		{"delta: an update", update{typeURL: ept, resources: []item{{name: "a/inst-8", raw: []byte("inst-8")}}}, false},
		{"sotw: full set without it", update{typeURL: ept, full: true, resources: []item{{raw: []byte("inst-6")}}}, true},
		{"sotw: full set with it", update{typeURL: ept, full: true, resources: []item{{raw: []byte("inst-7")}}}, false},
		{"another type", update{typeURL: resource.ComponentType, full: true}, false},
	}
	for _, tc := range tests {
		if got := left(&tc.u); got != tc.want {
			t.Errorf("%s: gone = %v, want %v", tc.name, got, tc.want)
		}
	}
}
