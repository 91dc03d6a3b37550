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
		{"policy-pushed-live", policyPushedLive},
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
	return useNewComponent(ctx, c)
}

func useNewComponent(ctx context.Context, c *outrig.Client) (string, error) {
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

// policyPushedLive asks for a rate-limit policy on orders/CreateOrder, waits
// until the sidecar has it in force, then fires a burst: about 5 calls pass
// and the rest are rejected with ErrRateLimited, while GetOrder is untouched.
func policyPushedLive(ctx context.Context, c *outrig.Client) (string, error) {
	fmt.Println("WAIT policy orders-create-limit")
	deadline := time.Now().Add(15 * time.Second)
	for {
		md, err := c.GetMetadata(ctx)
		if err != nil {
			return "", err
		}
		if hasPolicy(md, "orders-create-limit") {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("policy did not arrive within 15s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	ok, limited := 0, 0
	var retryAfter time.Duration
	for i := 0; i < 20; i++ {
		_, err := c.Invoke(ctx, "orders", "CreateOrder", []byte(fmt.Sprintf(`{"id":"burst-%d"}`, i)))
		switch {
		case err == nil:
			ok++
		case errors.Is(err, outrig.ErrRateLimited):
			limited++
			if d, has := outrig.RetryAfter(err); has {
				retryAfter = d
			}
		default:
			return "", fmt.Errorf("call %d: %w", i, err)
		}
	}
	for i := 0; i < 10; i++ {
		if _, err := c.Invoke(ctx, "orders", "GetOrder", []byte("o-1001")); err != nil {
			return "", fmt.Errorf("GetOrder under the CreateOrder limit: %w", err)
		}
	}
	if limited == 0 || ok < 4 || ok > 7 {
		return "", fmt.Errorf("burst of 20: %d passed, %d rate limited; want about 5 passed", ok, limited)
	}
	return fmt.Sprintf("burst of 20 CreateOrder: %d passed, %d rate limited (retry after %s); 10 GetOrder all passed", ok, limited, retryAfter), nil
}

func hasPolicy(md *outrig.Metadata, name string) bool {
	for _, p := range md.Policies {
		if p.Name == name {
			return true
		}
	}
	return false
}
