//go:build !outrig_no_rocketmq

package main

import (
	"github.com/dapr/components-contrib/bindings"
	"github.com/dapr/kit/logger"

	nbrocketmq "github.com/outrig/outrig/bindings/rocketmq"
	"github.com/outrig/outrig/components"
	nrocketmq "github.com/outrig/outrig/pubsub/rocketmq"
)

// registerRocketMQ registers the RocketMQ components: pubsub.rocketmq, bindings.rocketmq.
// Build with -tags outrig_no_rocketmq to leave them (and their drivers) out.
func registerRocketMQ(r *components.Registry) {
	// Native: contrib's pubsub.rocketmq loses subscriptions made before a
	// topic exists or after its consumer started (see pubsub/rocketmq), and
	// its bindings.rocketmq fails for good (output included) when an input
	// topic does not exist yet (see bindings/rocketmq).
	r.RegisterPubSub("pubsub.rocketmq", "v1", nrocketmq.New)
	r.RegisterInputBinding("bindings.rocketmq", "v1", func(l logger.Logger) bindings.InputBinding { return nbrocketmq.New(l) })
	r.RegisterOutputBinding("bindings.rocketmq", "v1", func(l logger.Logger) bindings.OutputBinding { return nbrocketmq.New(l) })
}
