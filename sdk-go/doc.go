// Package outrig is the Go SDK of Outrig: a thin client through which an
// application uses its sidecar's building blocks — state, pub/sub, bindings
// and service invocation — without any Redis, Kafka, RocketMQ, MongoDB or
// ZooKeeper client of its own. The same code runs against whatever backend
// the operator configured behind a component name.
//
// The SDK depends only on gRPC, protobuf and Outrig's API module; a test
// keeps it that way.
//
// # Connecting
//
// NewClient connects to the sidecar at WithAddress, else $OUTRIG_ADDRESS,
// else unix:///tmp/outrig.sock. In host mode, where one sidecar serves several
// applications, name the calling app with WithAppID (or $OUTRIG_APP_ID): every
// call then carries the outrig-app-id header. One Client holds one connection
// shared by all calls and streams; create it once and share it.
//
// # A complete program
//
//	package main
//
//	import (
//		"context"
//		"errors"
//		"log"
//		"os/signal"
//		"syscall"
//		"time"
//
//		outrig "github.com/outrig/outrig/sdk-go"
//	)
//
//	func main() {
//		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
//		defer stop()
//
//		client, err := outrig.NewClient(ctx, outrig.WithTimeout(2*time.Second))
//		if err != nil {
//			log.Fatal(err)
//		}
//		defer client.Close()
//
//		// State, with optimistic concurrency.
//		item, err := client.GetState(ctx, "orders", "order-1")
//		if err != nil {
//			log.Fatal(err)
//		}
//		opts := []outrig.StateOption{outrig.WithTTL(24 * time.Hour)}
//		if item.Found {
//			opts = append(opts, outrig.WithETag(item.ETag)) // first write wins
//		}
//		err = client.SaveState(ctx, "orders", "order-1", []byte(`{"status":"paid"}`), opts...)
//		switch {
//		case errors.Is(err, outrig.ErrETagMismatch):
//			log.Print("someone else updated order-1 first")
//		case errors.Is(err, outrig.ErrRateLimited):
//			wait, _ := outrig.RetryAfter(err)
//			log.Printf("rate limited; retry in %v", wait)
//		case err != nil:
//			log.Fatal(err)
//		}
//
//		// Pub/sub: publish, and consume with acks.
//		err = client.Publish(ctx, "events", "order-paid", []byte(`{"id":"order-1"}`),
//			outrig.WithPartitionKey("order-1"))
//		if err != nil {
//			log.Fatal(err)
//		}
//		go func() {
//			err := client.Subscribe(ctx, "events", "order-paid",
//				func(ctx context.Context, e *outrig.TopicEvent) outrig.EventStatus {
//					log.Printf("event %s: %s", e.ID, e.Data)
//					return outrig.EventSuccess // or EventRetry, EventDrop
//				},
//				outrig.WithDeadLetterTopic("order-paid-dlq"))
//			if err != nil {
//				log.Print(err)
//			}
//		}()
//
//		// Call another application, and serve calls addressed to this one.
//		resp, err := client.Invoke(ctx, "payments", "Charge", []byte(`{"amount":42}`),
//			outrig.WithContentType("application/json"))
//		if err != nil {
//			log.Fatal(err)
//		}
//		log.Printf("payments answered %s", resp.Data)
//
//		err = client.Serve(ctx, outrig.Handlers{
//			"GetOrder": func(ctx context.Context, in *outrig.Invocation) (*outrig.Reply, error) {
//				it, err := client.GetState(ctx, "orders", string(in.Data))
//				if err != nil {
//					return nil, err // its gRPC code reaches the caller
//				}
//				if !it.Found {
//					return nil, outrig.ErrNotFound
//				}
//				return &outrig.Reply{Data: it.Value, ContentType: "application/json"}, nil
//			},
//		})
//		if err != nil {
//			log.Fatal(err)
//		}
//	}
//
// # Errors
//
// Every error from a call is an *Error carrying the sidecar's gRPC status and
// message. Test it with errors.Is against ErrInvalidArgument, ErrNotFound,
// ErrETagMismatch, ErrRateLimited, ErrUnavailable, ErrDeadlineExceeded and
// ErrUnsupported; status.Code(err) works too. RetryAfter returns the
// sidecar's hint for rejected calls. The SDK checks required arguments
// itself and answers ErrInvalidArgument naming the field before any call is
// made.
//
// # Streams: Subscribe, SubscribeBinding, Serve
//
// These open a bidirectional stream to the sidecar; the application needs no
// server or port of its own. The plain forms block until their context is
// done (returning nil) or the stream fails for good; run them on a goroutine.
// They reconnect with jittered exponential backoff when the sidecar is
// unreachable or restarts (UNAVAILABLE), including before the first
// connection, unless WithoutReconnect is given. The Start forms
// (StartSubscribe, StartSubscribeBinding, StartServe) return a *Stream once
// the sidecar has accepted the stream — so what is published afterwards is
// received — or the first attempt's error, then keep reconnecting in the
// background; Stream.Stop ends them.
//
// Delivery is at least once: an event whose verdict did not reach the sidecar
// (handler still running at Stop, stream broken) is delivered again. Handlers
// that panic are answered EventRetry (Subscribe) or INTERNAL (Serve).
//
// # Performance
//
// The typed methods build the request message and make one gRPC call on the
// shared connection: no reflection, no per-call connection or context
// wrapping (the app id header is added by per-RPC credentials built once).
// Under the methods sits an internal transport interface, so that the
// shared-memory transport (api/shm) can carry the same calls later without
// changing this API.
package outrig
