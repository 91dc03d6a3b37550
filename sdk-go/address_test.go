package outrig

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	"google.golang.org/grpc"
)

func TestParseAddress(t *testing.T) {
	good := map[string]string{
		"unix:///tmp/outrig.sock":      "unix:///tmp/outrig.sock",
		"unix:run/outrig.sock":         "unix:run/outrig.sock",
		"/var/run/outrig.sock":         "unix:///var/run/outrig.sock",
		"unix-abstract:outrig":         "unix-abstract:outrig",
		"127.0.0.1:50001":              "passthrough:///127.0.0.1:50001",
		"localhost:50001":              "passthrough:///localhost:50001",
		"[::1]:50001":                  "passthrough:///[::1]:50001",
		":50001":                       "passthrough:///127.0.0.1:50001",
		"dns:///sidecar.local:50001":   "dns:///sidecar.local:50001",
		"dns://8.8.8.8/sidecar:50001":  "dns://8.8.8.8/sidecar:50001",
		"passthrough:///10.0.0.1:5000": "passthrough:///10.0.0.1:5000",
	}
	for in, want := range good {
		got, err := parseAddress(in)
		if err != nil || got != want {
			t.Errorf("parseAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{
		"", " unix:///x", "unix://host/x", "unix://", "unix:///", "unix:", "unix-abstract:",
		"dns:///", "dns://", "http://localhost:80", "localhost", "localhost:http", "localhost:0",
		"localhost:70000", "tcp://1.2.3.4:5",
	}
	for _, in := range bad {
		got, err := parseAddress(in)
		if err == nil {
			t.Errorf("parseAddress(%q) = %q, want an error", in, got)
			continue
		}
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "address") {
			t.Errorf("parseAddress(%q) error %q: want ErrInvalidArgument naming the address", in, err)
		}
	}
}

// Every accepted form reaches a real server.
func TestAddressFormsConnect(t *testing.T) {
	checkNoLeaks(t)
	f := newFakeSidecar()
	dir := shortTempDir(t)
	unixTS := startServer(t, f, filepath.Join(dir, "s.sock"))

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtimev1.RegisterRuntimeServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	_, port, _ := net.SplitHostPort(lis.Addr().String())

	t.Chdir(dir)
	for _, addr := range []string{
		unixTS.addr,
		"unix:s.sock",
		unixTS.path,
		lis.Addr().String(),
		":" + port,
		"dns:///127.0.0.1:" + port,
		"passthrough:///127.0.0.1:" + port,
	} {
		c, err := NewClient(context.Background(), WithAddress(addr))
		if err != nil {
			t.Errorf("NewClient(%q): %v", addr, err)
			continue
		}
		if _, err := c.GetMetadata(context.Background()); err != nil {
			t.Errorf("GetMetadata via %q: %v", addr, err)
		}
		_ = c.Close()
	}
}
