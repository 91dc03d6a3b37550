// Package broker is a small in-memory message broker embedded in the control
// plane, and the pub/sub component that sidecars use to reach it.
//
// Why: the demo and the laptop default run several sidecars as separate
// processes. An in-process bus (components-contrib's pubsub.in-memory) cannot
// carry an event from one sidecar to a subscriber in another, but every
// sidecar already talks to the control plane, so a broker there can.
//
// Server implements the outrig.broker.v1.Broker gRPC service with consumer
// group semantics (as in Kafka):
//
//   - a message published to a topic is copied to every consumer group
//     subscribed to that topic at publish time; a message published to a
//     topic that no group has subscribed to yet is dropped, as on an
//     in-memory bus;
//   - within a group, each message goes to one member, the group's live
//     streams taking turns (round robin); the sidecar uses the app id as the
//     group, so two instances of one app share a topic's events and two apps
//     each get every event;
//   - delivery is at least once: a message is in flight until acknowledged;
//     a negative acknowledgement or the end of the member's stream delivers
//     it again, after Options.RedeliveryDelay, to a live member of the group.
//     There is no limit on redeliveries: the sidecar bounds its own retries
//     and dead-letters before it acknowledges;
//   - memory is bounded: each group holds at most Options.MaxGroupMessages
//     messages and Options.MaxGroupBytes bytes (queued, in flight or waiting
//     for redelivery); beyond that Publish fails with RESOURCE_EXHAUSTED and
//     enqueues nothing for any group. Each member holds at most
//     Options.MaxInFlight unacknowledged messages (back-pressure). A group
//     without a live member keeps its messages for Options.GroupRetention,
//     then it is dropped with them, so an app that went away for good does
//     not block publishers;
//   - messages live in memory only and do not survive a restart.
//
// NewPubSub returns the components-contrib pubsub.PubSub that talks to a
// Server (component type pubsub.outrig-broker).
package broker
