package e2e

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outrig/outrig/internal/testenv"
	outrig "github.com/outrig/outrig/sdk-go"
)

// TestHostModeServesSeveralApps runs one sidecar for two apps: each SDK
// connection names its app, state is kept per app, one app invokes the
// other through the same sidecar, and metrics are labelled per app.
func TestHostModeServesSeveralApps(t *testing.T) {
	res := t.TempDir()
	testenv.WriteFile(t, filepath.Join(res, "store.yaml"), memStore)
	sc := testenv.StartSidecar(t, "host", "--mode", "host", "--app-id", "alpha,beta", "--resources", res)
	ctx := context.Background()
	a := testenv.Client(t, sc.Sock, outrig.WithAppID("alpha"))
	b := testenv.Client(t, sc.Sock, outrig.WithAppID("beta"))

	if err := a.SaveState(ctx, "statestore", "k", []byte("alpha's")); err != nil {
		t.Fatal(err)
	}
	if it, err := b.GetState(ctx, "statestore", "k"); err != nil || it.Found {
		t.Fatalf("beta sees alpha's key: %+v %v", it, err)
	}
	md, err := b.GetMetadata(ctx)
	if err != nil || md.AppID != "beta" {
		t.Fatalf("metadata for beta: %+v %v", md, err)
	}

	serveCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv, err := b.StartServe(serveCtx, outrig.Handlers{"Hello": func(_ context.Context, in *outrig.Invocation) (*outrig.Reply, error) {
		return &outrig.Reply{Data: []byte("hello " + in.CallerAppID)}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	testenv.Eventually(t, "alpha invokes beta", 5*time.Second, func() error {
		resp, err := a.Invoke(ctx, "beta", "Hello", nil)
		if err != nil {
			return err
		}
		if string(resp.Data) != "hello alpha" {
			t.Fatalf("answer %q", resp.Data)
		}
		return nil
	})

	// A connection that names no app is refused in host mode.
	anon := testenv.Client(t, sc.Sock)
	if _, err := anon.GetState(ctx, "statestore", "k"); !errors.Is(err, outrig.ErrInvalidArgument) {
		t.Fatalf("anonymous call in host mode: %v, want ErrInvalidArgument", err)
	}
	unknown := testenv.Client(t, sc.Sock, outrig.WithAppID("gamma"))
	if _, err := unknown.GetState(ctx, "statestore", "k"); !errors.Is(err, outrig.ErrNotFound) {
		t.Fatalf("unknown app id: %v, want ErrNotFound", err)
	}
	metrics := get(t, "http://"+sc.Admin+"/metrics")
	for _, app := range []string{`app="alpha"`, `app="beta"`} {
		if !strings.Contains(grep(metrics, "outrig_api_requests_total"), app) {
			t.Errorf("metrics lack %s", app)
		}
	}
}

// TestSIGTERMDrainsCallsInFlight stops a caller's sidecar while an
// invocation is in flight: the call completes, then the sidecar exits and
// its instance is deregistered.
func TestSIGTERMDrainsCallsInFlight(t *testing.T) {
	res := t.TempDir()
	testenv.WriteFile(t, filepath.Join(res, "store.yaml"), memStore)
	cp := testenv.FreeAddr(t)
	testenv.Start(t, "outrig#cp", nil, "control-plane", "--resources", res, "--listen", cp)
	callee := testenv.StartSidecar(t, "slow", "--control-plane", cp)
	caller := testenv.StartSidecar(t, "caller", "--control-plane", cp, "--shutdown-grace", "5s")
	ctx := context.Background()

	srv, err := testenv.Client(t, callee.Sock).StartServe(ctx, outrig.Handlers{
		"Ping": func(context.Context, *outrig.Invocation) (*outrig.Reply, error) { return nil, nil },
		"Slow": func(ctx context.Context, _ *outrig.Invocation) (*outrig.Reply, error) {
			time.Sleep(1500 * time.Millisecond)
			return &outrig.Reply{Data: []byte("done")}, nil
		},
		"Hold": func(context.Context, *outrig.Invocation) (*outrig.Reply, error) {
			time.Sleep(200 * time.Millisecond)
			return nil, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c := testenv.Client(t, caller.Sock)
	testenv.Eventually(t, "callee reachable", 10*time.Second, func() error {
		_, err := c.Invoke(ctx, "slow", "Ping", nil)
		return err
	})
	// Two calls at once: the SDK keeps two Multiplex streams open.
	var both sync.WaitGroup
	for range 2 {
		both.Add(1)
		go func() { defer both.Done(); _, _ = c.Invoke(ctx, "slow", "Hold", nil) }()
	}
	both.Wait()
	done := make(chan error, 1)
	go func() {
		resp, err := c.Invoke(ctx, "slow", "Slow", nil)
		if err == nil && string(resp.Data) != "done" {
			err = errors.New("wrong answer " + string(resp.Data))
		}
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	stopped := make(chan struct{})
	go func() { defer close(stopped); caller.Stop(t) }() // SIGTERM, waits for exit
	// While the call drains, a new call is refused at once — also on the
	// SDK's Multiplex stream that is already open — instead of being taken.
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	_, err = c.Invoke(ctx, "slow", "Ping", nil)
	if !errors.Is(err, outrig.ErrUnavailable) || time.Since(start) > time.Second {
		t.Errorf("call made after SIGTERM: %v after %v, want ErrUnavailable at once", err, time.Since(start))
	}
	if err := <-done; err != nil {
		t.Fatalf("call in flight during SIGTERM failed: %v", err)
	}
	<-stopped
}

// TestSIGTERMWithIdleMultiplexStreams: an app's SDK keeps its Multiplex
// streams open between calls. With nothing in flight they must not hold the
// sidecar's shutdown for the whole --shutdown-grace.
func TestSIGTERMWithIdleMultiplexStreams(t *testing.T) {
	res := t.TempDir()
	testenv.WriteFile(t, filepath.Join(res, "store.yaml"), memStore)
	sc := testenv.StartSidecar(t, "idle", "--resources", res, "--shutdown-grace", "10s")
	ctx := context.Background()
	// Idle connections of the other carriers must not hold it either.
	for _, c := range []*outrig.Client{testenv.Client(t, sc.Sock), testenv.Client(t, sc.Sock, outrig.WithSharedMemory("")),
		testenv.Client(t, sc.Sock, outrig.WithUnaryRPC())} {
		var wg sync.WaitGroup
		for i := range 4 { // four calls at once: four pooled streams
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.SaveState(ctx, "statestore", fmt.Sprintf("k%d", i), []byte("v")); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	start := time.Now()
	sc.Stop(t) // SIGTERM, waits for exit
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("sidecar took %v to exit with idle Multiplex streams and nothing in flight (grace 10s)", d.Round(time.Millisecond))
	}
}
