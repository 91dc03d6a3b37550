package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outrig/outrig/internal/testenv"
	outrig "github.com/outrig/outrig/sdk-go"
)

// A Serve handler slower than its caller's deadline: the caller gets
// DEADLINE_EXCEEDED, the handler's late reply is dropped by the sidecar,
// and the app's Serve stream keeps serving the next calls.
func TestServeSurvivesALateReply(t *testing.T) {
	res := t.TempDir()
	testenv.WriteFile(t, res+"/store.yaml", memStore)
	sc := testenv.StartSidecar(t, "host", "--mode", "host", "--app-id", "caller,slowpoke", "--resources", res)
	caller := testenv.Client(t, sc.Sock, outrig.WithAppID("caller"))
	srv, err := testenv.Client(t, sc.Sock, outrig.WithAppID("slowpoke")).StartServe(context.Background(), outrig.Handlers{
		"Slow": func(context.Context, *outrig.Invocation) (*outrig.Reply, error) {
			time.Sleep(300 * time.Millisecond) // ignores its context, as slow code does
			return &outrig.Reply{Data: []byte("too late")}, nil
		},
		"Fast": func(context.Context, *outrig.Invocation) (*outrig.Reply, error) {
			return &outrig.Reply{Data: []byte("fast")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	ctx := context.Background()
	testenv.Eventually(t, "slowpoke reachable", 5*time.Second, func() error {
		_, err := caller.Invoke(ctx, "slowpoke", "Fast", nil)
		return err
	})

	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := caller.Invoke(short, "slowpoke", "Slow", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call past its deadline: %v, want context.DeadlineExceeded", err)
	}
	time.Sleep(400 * time.Millisecond) // the late reply reaches the sidecar meanwhile
	for i := range 3 {
		resp, err := caller.Invoke(ctx, "slowpoke", "Fast", nil)
		if err != nil {
			t.Fatalf("call %d after the late reply: %v: the Serve stream must keep serving", i, err)
		}
		if string(resp.Data) != "fast" {
			t.Fatalf("call %d after the late reply answered %q", i, resp.Data)
		}
	}
}
