package main

import (
	pmemory "github.com/dapr/components-contrib/pubsub/in-memory"
	smemory "github.com/dapr/components-contrib/state/in-memory"

	"github.com/outrig/outrig/broker"
	"github.com/outrig/outrig/components"
	"github.com/outrig/outrig/internal/busypoll"
)

// newRegistry builds the component registry of the outrig binary: every
// component type this build supports, with Dapr's type names so that Dapr
// component YAML works unchanged.
//
// The in-memory stores and the embedded broker are always built. Each
// backend's components live in components_<backend>.go and can be left out
// of a build with the tag outrig_no_<backend> (redis, mysql, mongodb,
// zookeeper, kafka, rocketmq, http, cron): a sidecar that links only the
// drivers its deployment uses is smaller on disk and in memory (`make
// build-slim`; figures in docs/benchmarks.md). `outrig version` lists the
// types of a build. Components that can poll their backend for a lone
// call's reply do so through poll (nil: never; --busy-poll).
func newRegistry(poll *busypoll.Gate) *components.Registry {
	r := components.NewRegistry()
	r.RegisterState("state.in-memory", "v1", smemory.NewInMemoryStateStore)
	r.RegisterPubSub("pubsub.in-memory", "v1", pmemory.New)
	r.RegisterPubSub("pubsub.outrig-broker", "v1", broker.NewPubSub)

	registerRedis(r, poll)
	registerMySQL(r)
	registerMongoDB(r)
	registerZooKeeper(r)
	registerKafka(r)
	registerRocketMQ(r)
	registerHTTP(r)
	registerCron(r)
	return r
}
