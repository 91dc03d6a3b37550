package main

import (
	"github.com/dapr/components-contrib/bindings"
	bcron "github.com/dapr/components-contrib/bindings/cron"
	bhttp "github.com/dapr/components-contrib/bindings/http"
	bkafka "github.com/dapr/components-contrib/bindings/kafka"
	bmysql "github.com/dapr/components-contrib/bindings/mysql"
	bredis "github.com/dapr/components-contrib/bindings/redis"
	pmemory "github.com/dapr/components-contrib/pubsub/in-memory"
	pkafka "github.com/dapr/components-contrib/pubsub/kafka"
	predis "github.com/dapr/components-contrib/pubsub/redis"
	smemory "github.com/dapr/components-contrib/state/in-memory"
	smysql "github.com/dapr/components-contrib/state/mysql"
	"github.com/dapr/kit/logger"

	nbrocketmq "github.com/outrig/outrig/bindings/rocketmq"
	"github.com/outrig/outrig/broker"
	"github.com/outrig/outrig/components"
	nmongodb "github.com/outrig/outrig/components/state/mongodb"
	nredis "github.com/outrig/outrig/components/state/redis"
	nzookeeper "github.com/outrig/outrig/components/state/zookeeper"
	nrocketmq "github.com/outrig/outrig/pubsub/rocketmq"
)

// newRegistry builds the component registry of the outrig binary: every
// component type this build supports, with Dapr's type names so that Dapr
// component YAML works unchanged.
func newRegistry() *components.Registry {
	r := components.NewRegistry()

	r.RegisterState("state.in-memory", "v1", smemory.NewInMemoryStateStore)
	// Native where contrib's semantics failed the conformance suite (see each package's doc).
	r.RegisterState("state.redis", "v1", nredis.New)
	r.RegisterState("state.mysql", "v1", smysql.NewMySQLStateStore)
	r.RegisterState("state.mongodb", "v1", nmongodb.New)
	r.RegisterState("state.zookeeper", "v1", nzookeeper.New)

	r.RegisterPubSub("pubsub.in-memory", "v1", pmemory.New)
	r.RegisterPubSub("pubsub.outrig-broker", "v1", broker.NewPubSub)
	r.RegisterPubSub("pubsub.kafka", "v1", pkafka.NewKafka)
	r.RegisterPubSub("pubsub.redis", "v1", predis.NewRedisStreams)
	// Native: contrib's pubsub.rocketmq loses subscriptions made before a
	// topic exists or after its consumer started (see pubsub/rocketmq).
	r.RegisterPubSub("pubsub.rocketmq", "v1", nrocketmq.New)

	r.RegisterInputBinding("bindings.kafka", "v1", func(l logger.Logger) bindings.InputBinding { return bkafka.NewKafka(l) })
	r.RegisterOutputBinding("bindings.kafka", "v1", func(l logger.Logger) bindings.OutputBinding { return bkafka.NewKafka(l) })
	// Native: contrib's bindings.rocketmq fails for good (output included)
	// when an input topic does not exist yet (see bindings/rocketmq).
	r.RegisterInputBinding("bindings.rocketmq", "v1", func(l logger.Logger) bindings.InputBinding { return nbrocketmq.New(l) })
	r.RegisterOutputBinding("bindings.rocketmq", "v1", func(l logger.Logger) bindings.OutputBinding { return nbrocketmq.New(l) })
	r.RegisterOutputBinding("bindings.redis", "v1", bredis.NewRedis)
	r.RegisterOutputBinding("bindings.mysql", "v1", bmysql.NewMysql)
	r.RegisterOutputBinding("bindings.http", "v1", bhttp.NewHTTP)
	r.RegisterInputBinding("bindings.cron", "v1", bcron.NewCron)
	return r
}
