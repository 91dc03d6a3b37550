// Command checkout is the demo's driver app. It runs the demo scenario
// against its sidecar through the SDK and prints one line per step:
//
//	STEP <name> PASS|FAIL <detail>
//
// and, where the demo must act (drop a component file, push a policy), a
// line "WAIT <what>" after which it polls until the change is visible.
// It exits 0 when every step passed.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	outrig "github.com/outrig/outrig/sdk-go"
)

// cartKey is unique per run, so the demo can run again on a persistent
// store (Redis) without meeting its previous run's ETags.
var cartKey = fmt.Sprintf("cart-%d", time.Now().UnixNano())

type step struct {
	name string
	run  func(ctx context.Context, c *outrig.Client) (string, error)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	client, err := outrig.NewClient(ctx, outrig.WithTimeout(5*time.Second))
	if err != nil {
		fmt.Println("STEP connect FAIL", err)
		os.Exit(1)
	}
	defer client.Close()
	steps := []step{
		{"state-save-get", stateSaveGet},
		{"state-etag-conflict", stateETagConflict},
		{"invoke-orders", invokeOrders},
		{"publish-subscribe", publishSubscribe},
		{"component-hot-add", componentHotAdd},
	}
	failed := 0
	for _, s := range steps {
		detail, err := s.run(ctx, client)
		if err != nil {
			failed++
			fmt.Printf("STEP %s FAIL %v\n", s.name, err)
			continue
		}
		fmt.Printf("STEP %s PASS %s\n", s.name, detail)
	}
	if failed > 0 {
		os.Exit(1)
	}
}

func stateSaveGet(ctx context.Context, c *outrig.Client) (string, error) {
	if err := c.SaveState(ctx, "statestore", cartKey, []byte(`{"items":3}`)); err != nil {
		return "", err
	}
	it, err := c.GetState(ctx, "statestore", cartKey)
	if err != nil {
		return "", err
	}
	if !it.Found || string(it.Value) != `{"items":3}` {
		return "", fmt.Errorf("read back %q (found=%v)", it.Value, it.Found)
	}
	return fmt.Sprintf("saved and read %s = %s (etag %s)", cartKey, it.Value, it.ETag), nil
}

func stateETagConflict(ctx context.Context, c *outrig.Client) (string, error) {
	it, err := c.GetState(ctx, "statestore", cartKey)
	if err != nil {
		return "", err
	}
	// First writer with the current ETag wins...
	if err := c.SaveState(ctx, "statestore", cartKey, []byte(`{"items":4}`), outrig.WithETag(it.ETag)); err != nil {
		return "", fmt.Errorf("write with current etag: %w", err)
	}
	// ...the second writer, still holding the old ETag, loses.
	err = c.SaveState(ctx, "statestore", cartKey, []byte(`{"items":5}`), outrig.WithETag(it.ETag))
	if !errors.Is(err, outrig.ErrETagMismatch) {
		return "", fmt.Errorf("stale etag: want ErrETagMismatch, got %v", err)
	}
	return "stale etag rejected with ErrETagMismatch (ABORTED)", nil
}

func invokeOrders(ctx context.Context, c *outrig.Client) (string, error) {
	resp, err := c.Invoke(ctx, "orders", "CreateOrder", []byte(`{"id":"o-1001","item":"rig","count":2}`), outrig.WithContentType("application/json"))
	if err != nil {
		return "", err
	}
	if !bytes.Contains(resp.Data, []byte(`"by":"checkout"`)) {
		return "", fmt.Errorf("unexpected answer %s", resp.Data)
	}
	got, err := c.Invoke(ctx, "orders", "GetOrder", []byte("o-1001"))
	if err != nil {
		return "", fmt.Errorf("GetOrder: %w", err)
	}
	return fmt.Sprintf("orders answered %s; GetOrder -> %s", resp.Data, got.Data), nil
}

func publishSubscribe(ctx context.Context, c *outrig.Client) (string, error) {
	if err := c.Publish(ctx, "events", "payments", []byte(`{"orderId":"o-1001","amount":42}`), outrig.WithContentType("application/json")); err != nil {
		return "", err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Invoke(ctx, "orders", "Received", []byte("o-1001"))
		if err == nil {
			return fmt.Sprintf("orders received the payment event (route %q)", resp.Data), nil
		}
		if !errors.Is(err, outrig.ErrNotFound) || time.Now().After(deadline) {
			return "", fmt.Errorf("event not received: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func componentHotAdd(ctx context.Context, c *outrig.Client) (string, error) {
	fmt.Println("WAIT component audit")
	start := time.Now()
	deadline := start.Add(15 * time.Second)
	for {
		md, err := c.GetMetadata(ctx)
		if err != nil {
			return "", err
		}
		if hasComponent(md, "audit") {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("component audit did not appear within 15s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	seen := time.Since(start)
	if err := c.SaveState(ctx, "audit", "event-1", []byte("checkout completed")); err != nil {
		return "", err
	}
	it, err := c.GetState(ctx, "audit", "event-1")
	if err != nil || !it.Found {
		return "", fmt.Errorf("read from new component: %v", err)
	}
	return fmt.Sprintf("new component 'audit' in use %s after the file was dropped, no restart", seen.Round(time.Millisecond)), nil
}

func hasComponent(md *outrig.Metadata, name string) bool {
	for _, comp := range md.Components {
		if strings.EqualFold(comp.Name, name) {
			return true
		}
	}
	return false
}
