package client

import (
	"context"
	"log/slog"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	registryv1 "github.com/outrig/outrig/api/gen/outrig/registry/v1"
	"github.com/outrig/outrig/xds/registry"
	"github.com/outrig/outrig/xds/resource"
	"github.com/outrig/outrig/xds/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var quietLog = slog.New(slog.DiscardHandler)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// plane is a real control plane for the tests: the xDS server and the
// registry (with a fake clock) on one gRPC server over loopback.
type plane struct {
	addr    string
	srv     *server.Server
	reg     *registry.Registry
	clk     *fakeClock
	metrics *prometheus.Registry
	stopped bool
	stopFn  func()
}

// startPlane serves on addr ("" for a free loopback port).
func startPlane(t *testing.T, addr string) *plane {
	t.Helper()
	return startPlaneWith(t, addr, nil)
}

// startPlaneWith runs setup on the plane before it starts serving.
func startPlaneWith(t *testing.T, addr string, setup func(*plane)) *plane {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	metrics := prometheus.NewRegistry()
	srv, err := server.New(server.Options{Metrics: metrics, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	reg, err := registry.New(registry.Options{Clock: clk, Logger: quietLog, Metrics: metrics,
		OnChange: func(up map[string]*configv1.Endpoint, removed []string) {
			m := make(map[string]proto.Message, len(up))
			for k, v := range up {
				m[k] = v
			}
			if err := srv.UpdateResources(resource.EndpointType, m, removed); err != nil {
				t.Errorf("publish endpoints: %v", err)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	var lis net.Listener
	for i := 0; ; i++ { // a restarted plane rebinds the port it had
		lis, err = net.Listen("tcp", addr)
		if err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	p := &plane{addr: lis.Addr().String(), srv: srv, reg: reg, clk: clk, metrics: metrics}
	if setup != nil {
		setup(p)
	}
	g := grpc.NewServer()
	srv.Register(g)
	registryv1.RegisterRegistryServer(g, registry.NewService(reg))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = g.Serve(lis) }()
	go func() { defer wg.Done(); _ = reg.Run(ctx) }()
	p.stopFn = func() {
		cancel()
		srv.Close()
		g.Stop()
		wg.Wait()
	}
	t.Cleanup(p.stop)
	return p
}

func (p *plane) stop() {
	if !p.stopped {
		p.stopped = true
		p.stopFn()
	}
}

// sent returns outrig_xds_resources_sent_total summed over types.
func (p *plane) sent(t *testing.T) float64 {
	t.Helper()
	mfs, err := p.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "outrig_xds_resources_sent_total" {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

func (p *plane) set(t *testing.T, typeURL string, msgs ...proto.Message) {
	t.Helper()
	m := map[string]proto.Message{}
	for _, x := range msgs {
		m[resource.Name(x)] = x
	}
	if err := p.srv.SetResources(typeURL, m); err != nil {
		t.Fatal(err)
	}
}

// call is one Handler.Apply call.
type call struct {
	typeURL string
	updated []string // sorted names
	removed []string
	msgs    map[string]proto.Message
}

// recorder is a Handler that records calls and rejects what reject says.
type recorder struct {
	mu     sync.Mutex
	calls  []call
	reject func(typeURL, name string, m proto.Message) error
	notify chan call
}

func newRecorder() *recorder { return &recorder{notify: make(chan call, 100)} }

func (r *recorder) Apply(typeURL string, updated map[string]proto.Message, removed []string) map[string]error {
	c := call{typeURL: typeURL, removed: append([]string(nil), removed...), msgs: updated}
	sort.Strings(c.removed)
	errs := map[string]error{}
	for name, m := range updated {
		c.updated = append(c.updated, name)
		if r.reject != nil {
			if err := r.reject(typeURL, name, m); err != nil {
				errs[name] = err
			}
		}
	}
	sort.Strings(c.updated)
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	r.notify <- c
	return errs
}

// next waits for the next call of typeURL, skipping others.
func (r *recorder) next(t *testing.T, typeURL string) call {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case c := <-r.notify:
			if c.typeURL == typeURL {
				return c
			}
		case <-deadline:
			t.Fatalf("no Apply call for %s", typeURL)
		}
	}
}

// drain forgets the calls not yet consumed.
func (r *recorder) drain() {
	for {
		select {
		case <-r.notify:
		default:
			return
		}
	}
}

// none fails if a call arrives within d.
func (r *recorder) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case c := <-r.notify:
		t.Fatalf("unexpected Apply(%s, updated %v, removed %v)", c.typeURL, c.updated, c.removed)
	case <-time.After(d):
	}
}

func newClient(t *testing.T, addr string, h Handler, mutate func(*Options)) *Client {
	t.Helper()
	opts := Options{Target: addr, NodeID: "sidecar-1", Handler: h, Logger: quietLog,
		BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond}
	if mutate != nil {
		mutate(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func waitReady(t *testing.T, c *Client) {
	t.Helper()
	select {
	case <-c.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("client not ready")
	}
}

// eventually polls cond for up to 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func comp(name string, scopes ...string) *configv1.Component {
	return &configv1.Component{Name: name, Type: "state.memory", Version: "v1", Scopes: scopes}
}
