// Command orders is the demo's order service: it serves invocations through
// the SDK's Serve stream (CreateOrder, GetOrder, Received), keeps orders in
// the "statestore" component and records the payment events it receives
// on the "events" pubsub, topic "payments".
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
	ID    string `json:"id"`
	Item  string `json:"item"`
	Count int    `json:"count"`
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
			return &outrig.Reply{Data: []byte(`{"status":"created","id":"` + o.ID + `","by":"` + in.CallerAppID + `"}`), ContentType: "application/json"}, nil
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
