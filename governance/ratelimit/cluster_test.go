package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

const redisAddr = "127.0.0.1:6379"

// redisClient connects to the real Redis the integration tests use. It fails
// the test when the server is not there: bring it up with
// `scripts/backends.sh up redis`.
func redisClient(t *testing.T) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: redisAddr})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		t.Fatalf("Redis at %s is unreachable (%v); start it with `scripts/backends.sh up redis`", redisAddr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testKey(t *testing.T, c *redis.Client) string {
	key := fmt.Sprintf("outrig:test:rl:%s:%d", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() { c.Del(context.Background(), key) })
	return key
}

// Two sidecars (two clients, two limiters) share one limit: a burst from
// both together gets the burst once, not twice.
func TestClusterLimitIsSharedBetweenSidecars(t *testing.T) {
	a, b := redisClient(t), redisClient(t)
	key := testKey(t, a)
	const rate, burst = 2.0, 20 // refill is slow enough to be negligible during the test
	la, err := NewCluster(a, key, rate, burst)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := NewCluster(b, key, rate, burst)
	if err != nil {
		t.Fatal(err)
	}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, l := range []*Cluster{la, lb, la, lb} {
		wg.Go(func() {
			for range 25 {
				ok, _, err := l.Allow(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	refill := int64(rate*elapsed.Seconds()) + 1
	if got := admitted.Load(); got < burst || got > burst+refill {
		t.Fatalf("100 calls from two sidecars in %v: admitted %d, want %d (+ at most %d refilled)", elapsed, got, burst, refill)
	}
}

func TestClusterRefillsAtRateAndHintsRetryAfter(t *testing.T) {
	c := redisClient(t)
	key := testKey(t, c)
	l, err := NewCluster(c, key, 20, 5) // a token every 50ms
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 5 {
		if ok, _, err := l.Allow(ctx); err != nil || !ok {
			t.Fatalf("call %d within burst: ok=%v err=%v", i, ok, err)
		}
	}
	ok, after, err := l.Allow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		t.Fatal("call beyond the burst admitted")
	}
	if after <= 0 || after > 50*time.Millisecond {
		t.Fatalf("retry after %v, want in (0, 50ms]", after)
	}
	time.Sleep(after + 2*time.Millisecond)
	if ok, _, err := l.Allow(ctx); err != nil || !ok {
		t.Fatalf("call after the hinted wait: ok=%v err=%v", ok, err)
	}
	// 250ms more refill 5 tokens (±1 for timing).
	time.Sleep(250 * time.Millisecond)
	n := 0
	for range 10 {
		if ok, _, _ := l.Allow(ctx); ok {
			n++
		}
	}
	if n < 4 || n > 6 {
		t.Fatalf("after 250ms at 20/s admitted %d, want 5 ± 1", n)
	}
	ttl, err := c.PTTL(ctx, key).Result()
	if err != nil || ttl <= 0 || ttl > time.Second {
		t.Fatalf("key TTL %v (err %v): want a short expiry so idle limiters leave nothing behind", ttl, err)
	}
}

func TestClusterReportsRedisErrors(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	l, err := NewCluster(c, "k", 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Allow(context.Background()); err == nil {
		t.Fatal("Allow against a dead server returned no error")
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
