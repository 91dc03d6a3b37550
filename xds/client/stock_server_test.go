package client

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/xds/resource"
)

// stockServer is go-control-plane's own server with a LinearCache per type:
// it never answers unknown names and serves whatever it is given, so it
// exercises the client's not-found timer and its own validation.
type stockServer struct {
	addr   string
	caches map[string]*cache.LinearCache

	mu    sync.Mutex
	nacks []string // error_detail messages received
}

func startStock(t *testing.T) *stockServer {
	t.Helper()
	s := &stockServer{caches: map[string]*cache.LinearCache{}}
	mux := &cache.MuxCache{
		Classify:      func(r *cache.Request) string { return r.GetTypeUrl() },
		ClassifyDelta: func(r *cache.DeltaRequest) string { return r.GetTypeUrl() },
		Caches:        map[string]cache.Cache{},
	}
	for _, tu := range resource.AllTypes() {
		lc := cache.NewLinearCache(tu)
		s.caches[tu] = lc
		mux.Caches[tu] = lc
	}
	cb := serverv3.CallbackFuncs{StreamDeltaRequestFunc: func(_ int64, req *discovery.DeltaDiscoveryRequest) error {
		if d := req.GetErrorDetail(); d != nil {
			s.mu.Lock()
			s.nacks = append(s.nacks, d.GetMessage())
			s.mu.Unlock()
		}
		return nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	xds := serverv3.NewServer(ctx, mux, cb)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	discovery.RegisterAggregatedDiscoveryServiceServer(g, xds)
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(lis) }()
	t.Cleanup(func() { cancel(); g.Stop(); <-done })
	s.addr = lis.Addr().String()
	return s
}

func TestNotFoundTimerWhenServerNeverAnswers(t *testing.T) {
	s := startStock(t)
	rec := newRecorder()
	c := newClient(t, s.addr, rec, func(o *Options) { o.NotFoundTimeout = 300 * time.Millisecond })
	waitReady(t, c)
	start := time.Now()
	_, found, err := c.Get(context.Background(), resource.ServiceEndpointsType, "ghost")
	elapsed := time.Since(start)
	if err != nil || found {
		t.Fatalf("Get(ghost) = found %v err %v", found, err)
	}
	if elapsed < 250*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("not-found timer answered after %v, want about 300ms", elapsed)
	}
	// A resource that appears later is still delivered.
	_ = s.caches[resource.ServiceEndpointsType].UpdateResource("ghost", &configv1.ServiceEndpoints{AppId: "ghost",
		Endpoints: []*configv1.Endpoint{{InstanceId: "g1", Address: "127.0.0.1:1"}}})
	if call := rec.next(t, resource.ServiceEndpointsType); !cmp.Equal(call.updated, []string{"ghost"}) {
		t.Fatalf("late resource: %v", call.updated)
	}
	// Get honours its context while waiting.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := c.Wait(ctx, resource.ServiceEndpointsType, "never-watched"); err == nil {
		t.Error("Wait on an unwatched name succeeded")
	}
}

func TestUndecodableResourcesNackedOthersAccepted(t *testing.T) {
	s := startStock(t)
	// Bytes that do not parse as a Component (invalid UTF-8 in its name
	// field), and a Component whose name differs from its resource name:
	// both must be rejected by the client itself.
	_ = s.caches[resource.ComponentType].UpdateResources(map[string]types.Resource{
		"ok":      &configv1.Component{Name: "ok", Type: "state.memory"},
		"garbage": wrapperspb.Bytes([]byte{0xff, 0xfe}),
		"alias":   &configv1.Component{Name: "other", Type: "state.memory"},
	}, nil)
	rec := newRecorder()
	c := newClient(t, s.addr, rec, nil)
	waitReady(t, c)
	call := rec.next(t, resource.ComponentType)
	if !cmp.Equal(call.updated, []string{"ok"}) {
		t.Fatalf("Handler got %v, want only the valid resource", call.updated)
	}
	eventually(t, "server got the NACK", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.nacks) == 1
	})
	msg := s.nacks[0]
	for _, want := range []string{"alias: resource names itself \"other\"", "garbage: decode type.googleapis.com/outrig.config.v1.Component"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error_detail %q lacks %q", msg, want)
		}
	}
	eventually(t, "ok cached", func() bool { _, ok := c.Cached(resource.ComponentType, "ok"); return ok })
	if _, ok := c.Cached(resource.ComponentType, "garbage"); ok {
		t.Error("rejected resource cached")
	}
}

func TestDecodeChecksTypeAndName(t *testing.T) {
	good, _ := resource.Encode(&configv1.Component{Name: "c"})
	pol, _ := resource.Encode(&configv1.Policy{Name: "c"})
	tests := []struct {
		name string
		res  *discovery.Resource
		want string
	}{
		{"ok", &discovery.Resource{Name: "c", Resource: good}, ""},
		{"no body", &discovery.Resource{Name: "c"}, "body is missing"},
		{"wrong type", &discovery.Resource{Name: "c", Resource: pol}, "is a type.googleapis.com/outrig.config.v1.Policy"},
		{"wrong name", &discovery.Resource{Name: "d", Resource: good}, `names itself "c"`},
		{"bad bytes", &discovery.Resource{Name: "c", Resource: &anypb.Any{TypeUrl: resource.ComponentType, Value: []byte{0x0a, 0x01, 0xff}}}, "decode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(resource.ComponentType, tc.res.GetName(), tc.res)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
