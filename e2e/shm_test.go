package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outrig/outrig/internal/testenv"
	outrig "github.com/outrig/outrig/sdk-go"
)

const limitPolicy = `apiVersion: outrig.dev/v1alpha1
kind: Policy
metadata: {name: limit-get}
spec:
  targets: [{kind: state, name: statestore, method: Get}]
  rateLimit: {rate: 1, burst: 1}
`

// TestSharedMemoryTransport runs the unary API over the sidecar's
// shared-memory transport: results, error kinds and retry-after hints are
// the same as over gRPC; streams stay on gRPC; the socket is private.
func TestSharedMemoryTransport(t *testing.T) {
	res := t.TempDir()
	testenv.WriteFile(t, filepath.Join(res, "store.yaml"), memStore)
	sc := testenv.StartSidecar(t, "checkout", "--resources", res)
	fi, err := os.Stat(sc.Sock + ".shm")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("shm socket: %v %v, want mode 0600", fi, err)
	}
	c := testenv.Client(t, sc.Sock, outrig.WithSharedMemory(""))
	ctx := context.Background()
	if err := c.SaveState(ctx, "statestore", "k", []byte("over shm")); err != nil {
		t.Fatal(err)
	}
	it, err := c.GetState(ctx, "statestore", "k")
	if err != nil || string(it.Value) != "over shm" {
		t.Fatalf("get: %+v %v", it, err)
	}
	err = c.SaveState(ctx, "statestore", "k", []byte("x"), outrig.WithETag("stale"))
	if !errors.Is(err, outrig.ErrETagMismatch) {
		t.Fatalf("stale etag over shm: %v", err)
	}
	if _, err := c.GetState(ctx, "nosuch", "k"); !errors.Is(err, outrig.ErrNotFound) {
		t.Fatalf("unknown store over shm: %v", err)
	}
	md, err := c.GetMetadata(ctx)
	if err != nil || md.AppID != "checkout" {
		t.Fatalf("metadata over shm: %+v %v", md, err)
	}

	testenv.WriteFile(t, filepath.Join(res, "limit.yaml"), limitPolicy)
	testenv.Eventually(t, "rate limit over shm with a retry-after hint", 5*time.Second, func() error {
		_, err := c.GetState(ctx, "statestore", "k")
		if err == nil {
			return errors.New("not limited yet")
		}
		if !errors.Is(err, outrig.ErrRateLimited) {
			t.Fatalf("want ErrRateLimited, got %v", err)
		}
		if d, ok := outrig.RetryAfter(err); !ok || d <= 0 {
			t.Fatalf("no retry-after hint over shm: %v", err)
		}
		return nil
	})
}

// TestSharedMemoryReconnectsAfterSidecarRestart: calls fail UNAVAILABLE
// while the sidecar is gone and succeed again once it is back.
func TestSharedMemoryReconnectsAfterSidecarRestart(t *testing.T) {
	res := t.TempDir()
	testenv.WriteFile(t, filepath.Join(res, "store.yaml"), memStore)
	dir := t.TempDir()
	sock := filepath.Join(dir, "app.sock")
	args := []string{"--resources", res, "--listen", "unix://" + sock}
	sc := testenv.StartSidecar(t, "checkout", args...)
	c := testenv.Client(t, sock, outrig.WithSharedMemory(""))
	ctx := context.Background()
	if err := c.SaveState(ctx, "statestore", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	sc.Stop(t)
	if _, err := c.GetState(ctx, "statestore", "k"); !errors.Is(err, outrig.ErrUnavailable) {
		t.Fatalf("sidecar down: %v, want ErrUnavailable", err)
	}
	testenv.StartSidecar(t, "checkout", args...)
	testenv.Eventually(t, "reconnect over shm", 5*time.Second, func() error {
		return c.SaveState(ctx, "statestore", "k", []byte("v2"))
	})
}

const redisStore = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.redis
  version: v1
  metadata:
  - {name: redisHost, value: "127.0.0.1:6379"}
`

// A lone shared-memory caller of a Redis store is served by the polling
// reader and its Redis replies are polled for (--busy-poll); with
// --busy-poll 0 nothing polls. The app's SDK polls for its replies too
// (outrig.WithBusyPoll), so the sidecar seldom has to wake it; with
// WithBusyPoll(0) it wakes the app for about every call. The sidecar's
// metrics say which. Both budgets are 20 ms here, not the 200 µs default, so
// that a machine loaded by other tests does not decide the outcome: under
// `make test` in CI, calls took over 200 µs and only 14 of 300 ran lone
// (api/shm's tests cover the budgets themselves).
func TestSharedMemoryLoneCallerIsServedByPolling(t *testing.T) {
	const budget = 20 * time.Millisecond
	for _, flag := range []string{budget.String(), "0"} {
		res := t.TempDir()
		testenv.WriteFile(t, filepath.Join(res, "store.yaml"), redisStore)
		sc := testenv.StartSidecar(t, "checkout", "--resources", res, "--busy-poll", flag)
		c := testenv.Client(t, sc.Sock, outrig.WithSharedMemory(""), outrig.WithBusyPoll(budget))
		ctx := context.Background()
		key := fmt.Sprintf("e2e-busy-poll-%d-%s", time.Now().UnixNano(), flag)
		testenv.Eventually(t, "the Redis store (scripts/backends.sh up redis)", 10*time.Second, func() error {
			return c.SaveState(ctx, "statestore", key, []byte("v"))
		})
		const calls = 300
		getN := func(c *outrig.Client, who string) {
			t.Helper()
			for i := 0; i < calls; i++ {
				it, err := c.GetState(ctx, "statestore", key)
				if err != nil || string(it.Value) != "v" {
					t.Fatalf("--busy-poll %s, %s: get %d: %+v, %v", flag, who, i, it, err)
				}
			}
		}
		getN(c, "polling client")
		served, lone, polls := metric(sc.Admin, "outrig_shm_calls_total"), metric(sc.Admin, "outrig_shm_lone_calls_total"), metric(sc.Admin, "outrig_busy_poll_reads_total")
		polled := metric(sc.Admin, "outrig_shm_wakeups_total")
		t.Logf("--busy-poll %s: %v shm calls, %v lone, %v polled Redis reads, %v wake-ups of the polling client", flag, served, lone, polls, polled)
		if served < calls {
			t.Fatalf("--busy-poll %s: outrig_shm_calls_total %v, want at least %d", flag, served, calls)
		}
		if flag == "0" {
			if lone != 0 || polls != 0 {
				t.Errorf("--busy-poll 0: %v lone calls, %v polled reads; want none", lone, polls)
			}
			continue
		}
		// Most calls: the first ones count as fast until their cost is known.
		if lone < calls/2 || polls < calls/2 {
			t.Errorf("--busy-poll %s: %v lone calls and %v polled reads of %d sequential calls; want most", flag, lone, polls, calls)
		}
		if polled > calls/4 {
			t.Errorf("the polling client was woken %v times in %d sequential calls; want it to poll for most replies", polled, calls)
		}

		// A client that does not poll sleeps and must be woken.
		getN(testenv.Client(t, sc.Sock, outrig.WithSharedMemory(""), outrig.WithBusyPoll(0)), "WithBusyPoll(0)")
		slept := metric(sc.Admin, "outrig_shm_wakeups_total") - polled
		t.Logf("wake-ups: %v for %d calls of WithBusyPoll(0)", slept, calls)
		if slept < calls/2 {
			t.Errorf("a WithBusyPoll(0) client was woken %v times in %d sequential calls; want about once per call", slept, calls)
		}
		_ = c.DeleteState(ctx, "statestore", key)
	}
}

// Overlapping GetState calls over shared memory on the Redis store are
// started without a handler goroutine and answered by the goroutine that
// reads Redis's replies (outrig_shm_async_calls_total): each caller gets its
// own key's value, a missing key is not found, the calls are counted in
// outrig_api_requests_total; a rate limit on the method still rejects them,
// with its retry-after hint.
func TestSharedMemoryOverlappingGetStateIsAnsweredAsynchronously(t *testing.T) {
	res := t.TempDir()
	testenv.WriteFile(t, filepath.Join(res, "store.yaml"), redisStore)
	sc := testenv.StartSidecar(t, "checkout", "--resources", res)
	c := testenv.Client(t, sc.Sock, outrig.WithSharedMemory(""))
	ctx := context.Background()
	prefix := fmt.Sprintf("e2e-async-%d-", time.Now().UnixNano())
	const keys, callers, calls = 16, 16, 200
	testenv.Eventually(t, "the Redis store (scripts/backends.sh up redis)", 10*time.Second, func() error {
		return c.SaveState(ctx, "statestore", prefix+"0", []byte("v0"))
	})
	for i := 1; i < keys; i++ {
		if err := c.SaveState(ctx, "statestore", fmt.Sprint(prefix, i), []byte(fmt.Sprint("v", i))); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for i := 0; i < keys; i++ {
			_ = c.DeleteState(ctx, "statestore", fmt.Sprint(prefix, i))
		}
	})
	before := metricSum(t, sc.Admin, "outrig_api_requests_total", "method", "GetState", "code", "OK")
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := 0; g < callers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				k := (g + i) % (keys + 1) // keys: the last one is missing
				it, err := c.GetState(ctx, "statestore", fmt.Sprint(prefix, k))
				switch {
				case err != nil:
					errs <- fmt.Errorf("caller %d get %d: %w", g, i, err)
					return
				case k == keys && it.Found:
					errs <- fmt.Errorf("caller %d get %d: missing key found: %+v", g, i, it)
					return
				case k < keys && (!it.Found || string(it.Value) != fmt.Sprint("v", k) || it.ETag == ""):
					errs <- fmt.Errorf("caller %d get %d: key %d answered %+v", g, i, k, it)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	async := metric(sc.Admin, "outrig_shm_async_calls_total")
	counted := metricSum(t, sc.Admin, "outrig_api_requests_total", "method", "GetState", "code", "OK") - before
	t.Logf("%d overlapping calls: %v answered asynchronously, %v counted", callers*calls, async, counted)
	if async <= 0 {
		t.Errorf("outrig_shm_async_calls_total %v after %d overlapping calls, want some", async, callers*calls)
	}
	if counted != callers*calls {
		t.Errorf("outrig_api_requests_total counted %v GetState OK, want %d", counted, callers*calls)
	}

	// Governance applies to them: a rate limit of 1/s rejects most.
	testenv.WriteFile(t, filepath.Join(res, "limit.yaml"), limitPolicy)
	testenv.Eventually(t, "the rate limit", 5*time.Second, func() error {
		if _, err := c.GetState(ctx, "statestore", prefix+"0"); !errors.Is(err, outrig.ErrRateLimited) {
			return fmt.Errorf("not limited yet: %v", err)
		}
		return nil
	})
	asyncBefore := metric(sc.Admin, "outrig_shm_async_calls_total")
	var limited, ok atomic.Int64
	wg = sync.WaitGroup{}
	for g := 0; g < callers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				_, err := c.GetState(ctx, "statestore", prefix+"0")
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, outrig.ErrRateLimited):
					if d, has := outrig.RetryAfter(err); !has || d <= 0 {
						t.Errorf("rejection without a retry-after hint: %v", err)
					}
					limited.Add(1)
				default:
					t.Errorf("get under the limit: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("under a 1/s limit: %d admitted, %d limited, %v asynchronous", ok.Load(), limited.Load(), metric(sc.Admin, "outrig_shm_async_calls_total")-asyncBefore)
	if ok.Load() > 3 || limited.Load() < callers*20-3 {
		t.Errorf("under a 1/s limit (burst 1): %d admitted, %d limited", ok.Load(), limited.Load())
	}
	if metric(sc.Admin, "outrig_shm_async_calls_total") == asyncBefore {
		t.Error("no call under the limit went asynchronous: the test did not test the asynchronous path")
	}
}
