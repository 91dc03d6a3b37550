package ratelimit

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outrig/outrig/errkind"
)

// gcraScript runs one GCRA step atomically on the Redis server, with the
// server's clock so that sidecars with skewed clocks share one timeline.
//
//	KEYS[1]  the limiter's key (holds the TAT in microseconds)
//	ARGV[1]  emission interval in microseconds (1e6 / rate), may be fractional
//	ARGV[2]  burst
//
// Returns {1, 0} when admitted, {0, wait_us} when not.
const gcraScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tau = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local nxt = tat + interval
local over = nxt - now - tau
if over > 0 then
  return {0, math.ceil(over)}
end
redis.call('SET', KEYS[1], string.format('%.3f', nxt), 'PX', math.ceil((nxt - now) / 1000) + 1)
return {1, 0}
`

// Cluster is a rate limit shared by every sidecar that uses the same Redis
// server and key: one script call (EVALSHA) per Allow. Safe for concurrent
// use.
type Cluster struct {
	client redis.Scripter
	script *redis.Script
	keys   []string
	args   []any
	rate   float64
	burst  int
}

// NewCluster returns a cluster-wide limiter on key. rate must be > 0;
// burst <= 0 means max(1, rate).
func NewCluster(client redis.Scripter, key string, rate float64, burst int) (*Cluster, error) {
	if client == nil {
		return nil, errkind.Required("redis client")
	}
	if key == "" {
		return nil, errkind.Required("key")
	}
	if !(rate > 0) || math.IsInf(rate, 0) {
		return nil, errkind.InvalidArgument("rate", "must be a finite number > 0, got %v", rate)
	}
	if burst <= 0 {
		burst = int(math.Max(1, math.Min(rate, math.MaxInt32)))
	}
	interval := strconv.FormatFloat(1e6/rate, 'f', -1, 64)
	return &Cluster{
		client: client,
		script: redis.NewScript(gcraScript),
		keys:   []string{key},
		args:   []any{interval, burst},
		rate:   rate,
		burst:  burst,
	}, nil
}

// Key returns the Redis key holding the limiter's state.
func (c *Cluster) Key() string { return c.keys[0] }

// Allow takes one token from the shared bucket. It returns false and the
// wait until a token is available when the bucket is empty, and an error
// when Redis could not be asked (the caller decides whether to fail open).
func (c *Cluster) Allow(ctx context.Context) (bool, time.Duration, error) {
	res, err := c.script.Run(ctx, c.client, c.keys, c.args...).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("cluster rate limit %s: %w", c.keys[0], err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("cluster rate limit %s: script returned %d values, want 2", c.keys[0], len(res))
	}
	if res[0] == 1 {
		return true, 0, nil
	}
	return false, time.Duration(res[1]) * time.Microsecond, nil
}
