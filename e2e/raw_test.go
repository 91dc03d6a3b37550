package e2e

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
)

func execCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, name, args...)
}

// raw talks to the sidecar with the generated client, bypassing the SDK's
// own argument checks.
type raw struct{ c runtimev1.RuntimeClient }

func rawClient(t *testing.T, sock string) raw {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return raw{c: runtimev1.NewRuntimeClient(conn)}
}

func ctx5() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}

func (r raw) getState(store, key string) error {
	ctx, cancel := ctx5()
	defer cancel()
	_, err := r.c.GetState(ctx, &runtimev1.GetStateRequest{StoreName: store, Key: key})
	return err
}

func (r raw) invoke(app, method string) error {
	ctx, cancel := ctx5()
	defer cancel()
	_, err := r.c.Invoke(ctx, &runtimev1.InvokeRequest{AppId: app, Method: method})
	return err
}

func (r raw) publish(pubsub, topic string) error {
	ctx, cancel := ctx5()
	defer cancel()
	_, err := r.c.Publish(ctx, &runtimev1.PublishRequest{PubsubName: pubsub, Topic: topic})
	return err
}

func statusCode(err error) string { return status.Code(err).String() }
