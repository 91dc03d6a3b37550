// Command orders is the demo's order service: it serves invocations through
// the SDK's Serve stream (CreateOrder, GetOrder, Received), keeps orders in
// the "statestore" component and records the payment events it receives
// on the "events" pubsub, topic "payments".
//
// A CreateOrder request may ask to be told about the new order: "notify"
// names an app and method that orders invokes with the order (its answer
// is returned as "notified"), and "announce" a pubsub and topic that orders
// publishes the order to. The cross-language tests use them to have this
// Go app call a Java app and publish to its subscriber.
//
// It reaches its sidecar at OUTRIG_ADDRESS (default unix:///tmp/outrig.sock).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os/signal"
	"sync"
	"syscall"

	outrig "github.com/outrig/outrig/sdk-go"
)

type order struct {
	ID       string    `json:"id"`
	Item     string    `json:"item"`
	Count    int       `json:"count"`
	Notify   *notify   `json:"notify,omitempty"`
	Announce *announce `json:"announce,omitempty"`
}

type notify struct {
	App    string `json:"app"`
	Method string `json:"method"`
}

type announce struct {
	PubSub string `json:"pubsub"`
	Topic  string `json:"topic"`
}

type payment struct {
	OrderID string `json:"orderId"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	client, err := outrig.NewClient(ctx)
	if err != nil {
		log.Fatalf("orders: %v", err)
	}
	defer client.Close()

	var mu sync.Mutex
	received := map[string]string{} // order id -> route path

	handlers := outrig.Handlers{
		"CreateOrder": func(ctx context.Context, in *outrig.Invocation) (*outrig.Reply, error) {
			var o order
			if err := json.Unmarshal(in.Data, &o); err != nil || o.ID == "" {
				return nil, fmt.Errorf("CreateOrder: want {\"id\":...}: %w", outrig.ErrInvalidArgument)
			}
			if err := client.SaveState(ctx, "statestore", "order-"+o.ID, in.Data); err != nil {
				return nil, err
			}
			reply := map[string]string{"status": "created", "id": o.ID, "by": in.CallerAppID}
			if a := o.Announce; a != nil {
				if err := client.Publish(ctx, a.PubSub, a.Topic, in.Data, outrig.WithContentType("application/json")); err != nil {
					return nil, fmt.Errorf("CreateOrder: announce on %s/%s: %w", a.PubSub, a.Topic, err)
				}
			}
			if n := o.Notify; n != nil {
				resp, err := client.Invoke(ctx, n.App, n.Method, in.Data, outrig.WithContentType("application/json"))
				if err != nil {
					return nil, fmt.Errorf("CreateOrder: notify %s/%s: %w", n.App, n.Method, err)
				}
				reply["notified"] = string(resp.Data)
			}
			out, _ := json.Marshal(reply)
			return &outrig.Reply{Data: out, ContentType: "application/json"}, nil
		},
		"GetOrder": func(ctx context.Context, in *outrig.Invocation) (*outrig.Reply, error) {
			it, err := client.GetState(ctx, "statestore", "order-"+string(in.Data))
			if err != nil {
				return nil, err
			}
			if !it.Found {
				return nil, fmt.Errorf("order %s: %w", in.Data, outrig.ErrNotFound)
			}
			return &outrig.Reply{Data: it.Value, ContentType: "application/json"}, nil
		},
		"Received": func(_ context.Context, in *outrig.Invocation) (*outrig.Reply, error) {
			mu.Lock()
			path, ok := received[string(in.Data)]
			mu.Unlock()
			if !ok {
				return nil, fmt.Errorf("no payment event for order %s yet: %w", in.Data, outrig.ErrNotFound)
			}
			return &outrig.Reply{Data: []byte(path)}, nil
		},
	}
	serve, err := client.StartServe(ctx, handlers)
	if err != nil {
		log.Fatalf("orders: serve: %v", err)
	}
	sub, err := client.StartSubscribe(ctx, "events", "payments", func(_ context.Context, e *outrig.TopicEvent) outrig.EventStatus {
		var p payment
		if err := json.Unmarshal(e.Data, &p); err != nil || p.OrderID == "" {
			return outrig.EventDrop // malformed: never redeliver
		}
		mu.Lock()
		received[p.OrderID] = e.Path
		mu.Unlock()
		fmt.Printf("orders: payment event for order %s (route %q, attempt %d)\n", p.OrderID, e.Path, e.Attempt)
		return outrig.EventSuccess
	})
	if err != nil {
		log.Fatalf("orders: subscribe: %v", err)
	}
	fmt.Println("orders: ready")
	<-ctx.Done()
	_ = serve.Stop()
	_ = sub.Stop()
}
