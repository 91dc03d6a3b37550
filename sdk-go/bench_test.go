package outrig

import (
	"context"
	"testing"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The SDK's own cost per call is the difference between these two: the same
// GetState against the same in-process server over a Unix socket, through
// the SDK and through the generated gRPC client directly.
//
//	go test -run '^$' -bench GetState -benchmem ./sdk-go/

func BenchmarkGetStateSDK(b *testing.B) {
	b.Run("no-app-id", func(b *testing.B) { benchSDK(b) })
	b.Run("app-id", func(b *testing.B) { benchSDK(b, WithAppID("bench")) })
}

func benchSDK(b *testing.B, opts ...Option) {
	f := newFakeSidecar()
	ts := startServer(b, f, "")
	c, err := NewClient(context.Background(), append(opts, WithAddress(ts.addr))...)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	f.noRecord = true
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetState(ctx, "orders", "k"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetStateRawGRPC(b *testing.B) {
	f := newFakeSidecar()
	ts := startServer(b, f, "")
	cc, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	rc := runtimev1.NewRuntimeClient(cc)
	ctx := context.Background()
	f.noRecord = true
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rc.GetState(ctx, &runtimev1.GetStateRequest{StoreName: "orders", Key: "k"}); err != nil {
			b.Fatal(err)
		}
	}
}
