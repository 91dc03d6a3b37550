package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"github.com/outrig/outrig/internal/testenv"
	outrig "github.com/outrig/outrig/sdk-go"
)

// TestAppPortHTTP: the callee has no SDK stream, only an HTTP server; its
// sidecar forwards invocations to it (Dapr's app-port model).
func TestAppPortHTTP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s from %s: %s", r.Method, r.URL.Path, r.Header.Get("outrig-caller-app-id"), b)
	})}
	go srv.Serve(l)
	defer srv.Close()
	port := l.Addr().(*net.TCPAddr).Port

	res := t.TempDir()
	testenv.WriteFile(t, filepath.Join(res, "store.yaml"), memStore)
	cp := testenv.FreeAddr(t)
	testenv.Start(t, "outrig#cp", nil, "control-plane", "--resources", res, "--listen", cp)
	testenv.StartSidecar(t, "web", "--control-plane", cp, "--app-port", fmt.Sprint(port), "--app-protocol", "http")
	caller := testenv.StartSidecar(t, "caller", "--control-plane", cp)
	c := testenv.Client(t, caller.Sock)
	ctx := context.Background()
	testenv.Eventually(t, "invoke through the HTTP app port", 10*time.Second, func() error {
		resp, err := c.Invoke(ctx, "web", "orders/7", []byte("hi"), outrig.WithHTTPVerb("PUT"))
		if err != nil {
			return err
		}
		if got := string(resp.Data); got != "PUT /orders/7 from caller: hi" {
			t.Fatalf("answer %q", got)
		}
		return nil
	})
	if _, err := c.Invoke(ctx, "web", "missing", nil); !errors.Is(err, outrig.ErrNotFound) {
		t.Fatalf("HTTP 404 from the app: %v, want ErrNotFound", err)
	}
}

// TestAppPortGRPCAndTCPListener: the callee is an existing gRPC service
// (the standard health service) reached through --app-protocol grpc; the
// caller's sidecar serves its app API on loopback TCP.
func TestAppPortGRPCAndTCPListener(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("orders", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(g, hs)
	go g.Serve(l)
	defer g.Stop()
	port := l.Addr().(*net.TCPAddr).Port

	res := t.TempDir()
	testenv.WriteFile(t, filepath.Join(res, "store.yaml"), memStore)
	cp := testenv.FreeAddr(t)
	testenv.Start(t, "outrig#cp", nil, "control-plane", "--resources", res, "--listen", cp)
	testenv.StartSidecar(t, "grpcsvc", "--control-plane", cp, "--app-port", fmt.Sprint(port), "--app-protocol", "grpc")
	apiAddr := testenv.FreeAddr(t)
	testenv.StartSidecar(t, "caller", "--control-plane", cp, "--listen", apiAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := outrig.NewClient(ctx, outrig.WithAddress(apiAddr), outrig.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req, _ := proto.Marshal(&healthpb.HealthCheckRequest{Service: "orders"})
	testenv.Eventually(t, "invoke the app's gRPC service", 10*time.Second, func() error {
		resp, err := c.Invoke(ctx, "grpcsvc", "/grpc.health.v1.Health/Check", req)
		if err != nil {
			return err
		}
		var hr healthpb.HealthCheckResponse
		if err := proto.Unmarshal(resp.Data, &hr); err != nil {
			t.Fatal(err)
		}
		if hr.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("status %v", hr.Status)
		}
		return nil
	})
	unknown, _ := proto.Marshal(&healthpb.HealthCheckRequest{Service: "nosuch"})
	if _, err := c.Invoke(ctx, "grpcsvc", "/grpc.health.v1.Health/Check", unknown); !errors.Is(err, outrig.ErrNotFound) {
		t.Fatalf("gRPC NOT_FOUND from the app: %v", err)
	}
	if _, err := c.Invoke(ctx, "grpcsvc", "NotAGrpcMethod", nil); !errors.Is(err, outrig.ErrInvalidArgument) || !strings.Contains(err.Error(), "method") {
		t.Fatalf("bad method name: %v", err)
	}
}
