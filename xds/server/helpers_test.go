package server

import (
	"context"
	"net"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/xds/resource"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type testEnv struct {
	srv  *Server
	reg  *prometheus.Registry
	addr string
}

// startServer serves a fresh Server on a loopback port for the test.
func startServer(t *testing.T) *testEnv {
	t.Helper()
	reg := prometheus.NewRegistry()
	srv, err := New(Options{Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(lis) }()
	t.Cleanup(func() {
		srv.Close()
		g.Stop()
		<-done
	})
	return &testEnv{srv: srv, reg: reg, addr: lis.Addr().String()}
}

// rawStream is a bare delta ADS stream: the test drives the protocol by
// hand and sees exactly what travels on the wire.
type rawStream struct {
	t      *testing.T
	node   *core.Node
	stream discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	recv   chan *discovery.DeltaDiscoveryResponse
	first  bool
}

// dial opens a stream as node id with app ids. With read=false nothing ever
// reads the stream (a stalled client).
func (e *testEnv) dial(t *testing.T, id string, appIDs []string, read bool) *rawStream {
	t.Helper()
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &core.Node{Id: id}
	if appIDs != nil {
		node.Metadata = resource.NodeMetadata(appIDs)
	}
	r := &rawStream{t: t, node: node, stream: st, recv: make(chan *discovery.DeltaDiscoveryResponse, 100), first: true}
	done := make(chan struct{})
	if read {
		go func() {
			defer close(done)
			for {
				resp, err := st.Recv()
				if err != nil {
					return
				}
				r.recv <- resp
			}
		}()
	} else {
		close(done)
	}
	t.Cleanup(func() {
		cancel()
		_ = conn.Close()
		<-done
	})
	return r
}

func (r *rawStream) send(req *discovery.DeltaDiscoveryRequest) {
	r.t.Helper()
	if r.first {
		req.Node = r.node
		r.first = false
	}
	if err := r.stream.Send(req); err != nil {
		r.t.Fatalf("send: %v", err)
	}
}

func (r *rawStream) subscribe(typeURL string, names []string, initial map[string]string) {
	r.send(&discovery.DeltaDiscoveryRequest{TypeUrl: typeURL, ResourceNamesSubscribe: names, InitialResourceVersions: initial})
}

func (r *rawStream) ack(resp *discovery.DeltaDiscoveryResponse) {
	r.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()})
}

// next returns the next response or fails after timeout.
func (r *rawStream) next(timeout time.Duration) *discovery.DeltaDiscoveryResponse {
	r.t.Helper()
	select {
	case resp := <-r.recv:
		return resp
	case <-time.After(timeout):
		r.t.Fatalf("no response within %v", timeout)
		return nil
	}
}

// quiet fails if a response arrives within d.
func (r *rawStream) quiet(d time.Duration) {
	r.t.Helper()
	select {
	case resp := <-r.recv:
		r.t.Fatalf("unexpected response: %d resources %v removed %v", len(resp.GetResources()), names(resp), resp.GetRemovedResources())
	case <-time.After(d):
	}
}

func names(resp *discovery.DeltaDiscoveryResponse) []string {
	var out []string
	for _, r := range resp.GetResources() {
		out = append(out, r.GetName())
	}
	return out
}

func versions(resp *discovery.DeltaDiscoveryResponse) map[string]string {
	out := map[string]string{}
	for _, r := range resp.GetResources() {
		out[r.GetName()] = r.GetVersion()
	}
	return out
}

func comp(name string, scopes ...string) *configv1.Component {
	return &configv1.Component{Name: name, Type: "state.memory", Version: "v1", Scopes: scopes}
}

func comps(cs ...*configv1.Component) map[string]proto.Message {
	out := map[string]proto.Message{}
	for _, c := range cs {
		out[c.GetName()] = c
	}
	return out
}

func endpoints(appID string, addrs ...string) *configv1.ServiceEndpoints {
	se := &configv1.ServiceEndpoints{AppId: appID}
	for i, a := range addrs {
		se.Endpoints = append(se.Endpoints, &configv1.Endpoint{InstanceId: appID + "-" + string(rune('a'+i)), Address: a})
	}
	return se
}
