//go:build !outrig_no_redis

package main

import (
	bredis "github.com/dapr/components-contrib/bindings/redis"
	predis "github.com/dapr/components-contrib/pubsub/redis"

	"github.com/outrig/outrig/components"
	nredis "github.com/outrig/outrig/components/state/redis"
	"github.com/outrig/outrig/internal/busypoll"
	"github.com/outrig/outrig/state"
)

// The native state store starts reads without blocking (GetAsync), so the
// shared-memory transport answers overlapping GetState calls from the
// goroutine that reads Redis's replies.
var _ state.AsyncGetter = (*nredis.Store)(nil)

// registerRedis registers the Redis components: state.redis, pubsub.redis, bindings.redis.
// The state store's connections poll through poll (nil: never).
// Build with -tags outrig_no_redis to leave them (and their drivers) out.
func registerRedis(r *components.Registry, poll *busypoll.Gate) {
	// Native state store: contrib's failed the conformance suite (see the package).
	r.RegisterState("state.redis", "v1", nredis.Polling(poll))
	r.RegisterPubSub("pubsub.redis", "v1", predis.NewRedisStreams)
	r.RegisterOutputBinding("bindings.redis", "v1", bredis.NewRedis)
}
