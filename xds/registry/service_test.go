package registry

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	registryv1 "github.com/outrig/outrig/api/gen/outrig/registry/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func serve(t *testing.T, r *Registry) registryv1.RegistryClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	registryv1.RegisterRegistryServer(g, NewService(r))
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		g.Stop()
		<-done
	})
	return registryv1.NewRegistryClient(conn)
}

func TestServiceValidationNamesTheField(t *testing.T) {
	r, _, _ := newTestRegistry(t, Options{})
	c := serve(t, r)
	ctx := context.Background()
	good := &configv1.Endpoint{InstanceId: "i1", Address: "127.0.0.1:5000"}
	tests := []struct {
		name  string
		req   *registryv1.RegisterRequest
		field string
	}{
		{"no app id", &registryv1.RegisterRequest{Endpoint: good}, "app_id"},
		{"no endpoint", &registryv1.RegisterRequest{AppId: "a"}, "endpoint"},
		{"no instance id", &registryv1.RegisterRequest{AppId: "a", Endpoint: &configv1.Endpoint{Address: "h:1"}}, "endpoint.instance_id"},
		{"bad address", &registryv1.RegisterRequest{AppId: "a", Endpoint: &configv1.Endpoint{InstanceId: "i", Address: "nope"}}, "endpoint.address"},
		{"negative ttl", &registryv1.RegisterRequest{AppId: "a", Endpoint: good, Ttl: durationpb.New(-time.Second)}, "ttl"},
		{"invalid ttl", &registryv1.RegisterRequest{AppId: "a", Endpoint: good, Ttl: &durationpb.Duration{Seconds: 1, Nanos: -5}}, "ttl"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Register(ctx, tc.req)
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), tc.field) {
				t.Fatalf("got %v %q, want INVALID_ARGUMENT starting with %q", st.Code(), st.Message(), tc.field)
			}
		})
	}
	for _, req := range []*registryv1.RenewRequest{{InstanceId: "i"}, {AppId: "a"}} {
		if _, err := c.Renew(ctx, req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("Renew(%v) = %v, want INVALID_ARGUMENT", req, err)
		}
	}
	if _, err := c.Deregister(ctx, &registryv1.DeregisterRequest{AppId: "a"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Deregister without instance id = %v, want INVALID_ARGUMENT", err)
	}
}

func TestServiceLeaseLifecycle(t *testing.T) {
	r, _, log := newTestRegistry(t, Options{DefaultTTL: 10 * time.Second})
	c := serve(t, r)
	ctx := context.Background()
	if _, err := c.Renew(ctx, &registryv1.RenewRequest{AppId: "a", InstanceId: "i1"}); status.Code(err) != codes.NotFound {
		t.Fatalf("Renew unknown = %v, want NOT_FOUND", err)
	}
	resp, err := c.Register(ctx, &registryv1.RegisterRequest{AppId: "a",
		Endpoint: &configv1.Endpoint{InstanceId: "i1", Address: "127.0.0.1:5000", Zone: "z"}, Ttl: durationpb.New(3 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetTtl().AsDuration() != 3*time.Second {
		t.Errorf("granted ttl %v, want 3s", resp.GetTtl().AsDuration())
	}
	rr, err := c.Renew(ctx, &registryv1.RenewRequest{AppId: "a", InstanceId: "i1"})
	if err != nil || rr.GetTtl().AsDuration() != 3*time.Second {
		t.Fatalf("Renew = %v, %v", rr, err)
	}
	if up, _ := log.take(); len(up) != 1 || up[0] != "a/i1" {
		t.Fatalf("published %v", up)
	}
	if _, err := c.Deregister(ctx, &registryv1.DeregisterRequest{AppId: "a", InstanceId: "i1"}); err != nil {
		t.Fatal(err)
	}
	if _, rm := log.take(); len(rm) != 1 || rm[0] != "a/i1" {
		t.Fatalf("removed %v", rm)
	}
}

// Run publishes a change promptly without anyone calling Flush.
func TestRunPublishes(t *testing.T) {
	got := make(chan []string, 10)
	r, err := New(Options{Logger: nil, OnChange: func(up map[string]*configv1.Endpoint, rm []string) {
		for id := range up {
			got <- []string{"up", id}
		}
		for _, id := range rm {
			got <- []string{"rm", id}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	start := time.Now()
	if _, err := r.Register("pay", &configv1.Endpoint{InstanceId: "p1", Address: "127.0.0.1:1"}, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got:
		if ev[0] != "up" || ev[1] != "pay/p1" {
			t.Fatalf("got %v", ev)
		}
		t.Logf("registration published after %v", time.Since(start))
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not publish the registration")
	}
}
