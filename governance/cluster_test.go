package governance

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/errkind"
)

const redisAddr = "127.0.0.1:6379"

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

// Two sidecars (two tables, two clients) with the same cluster policy share
// one limit.
func TestClusterRateLimitSharedAcrossSidecars(t *testing.T) {
	name := fmt.Sprintf("cluster-%d", time.Now().UnixNano())
	p := &configv1.Policy{Name: name, Targets: []*configv1.PolicyTarget{tgt("pubsub", "events", "*", "")},
		RateLimit: &configv1.RateLimit{Rate: 1, Burst: 10, Scope: "cluster", RedisComponent: "cache"}}
	var chains []*Chain
	var tables []*Table
	for range 2 {
		client := redisClient(t)
		deps := Deps{Redis: func(component string) (redis.Scripter, error) {
			if component != "cache" {
				return nil, fmt.Errorf("no component %q", component)
			}
			return client, nil
		}}
		tb := compile(t, nil, deps, p)
		tables = append(tables, tb)
		chains = append(chains, tb.Lookup("pubsub", "events", "paid", ""))
	}
	key := chains[0].cluster.Key()
	t.Cleanup(func() { redisClient(t).Del(context.Background(), key) })
	admitted, limited := 0, 0
	for i := range 30 {
		err := chains[i%2].Do(context.Background(), func(context.Context) error { return nil })
		switch {
		case err == nil:
			admitted++
		case errors.Is(err, errkind.ErrResourceExhausted):
			limited++
		default:
			t.Fatal(err)
		}
	}
	if admitted < 10 || admitted > 11 || limited != 30-admitted {
		t.Fatalf("two sidecars admitted %d and limited %d of 30, want the shared burst of 10 (+1 refill)", admitted, limited)
	}
	// Another method has its own key.
	other := tables[0].Lookup("pubsub", "events", "refunded", "")
	t.Cleanup(func() { redisClient(t).Del(context.Background(), other.cluster.Key()) })
	if err := other.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatalf("another topic shares the limit: %v", err)
	}
}

// When Redis cannot be reached the limit fails open and says so.
func TestClusterRateLimitFailsOpen(t *testing.T) {
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer dead.Close()
	rec := newRecorder()
	p := &configv1.Policy{Name: "c", Targets: []*configv1.PolicyTarget{tgt("state", "orders", "Get", "")},
		RateLimit: &configv1.RateLimit{Rate: 1, Scope: "cluster", RedisComponent: "cache"}}
	tb := compile(t, nil, Deps{Observer: rec, Redis: func(string) (redis.Scripter, error) { return dead, nil }}, p)
	c := tb.Lookup("state", "orders", "Get", "")
	for range 3 {
		if err := c.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
			t.Fatalf("call with Redis down: %v, want admitted (fail open)", err)
		}
	}
	if got := rec.count(c.Labels(), "limiter_error"); got != 3 {
		t.Fatalf("limiter_error reported %d times, want 3", got)
	}
}
