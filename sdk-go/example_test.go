package outrig_test

// These examples run against a real sidecar: TestMain (main_test.go)
// builds outrig from this repository and starts it in host mode for the
// apps checkout (the examples' default, through OUTRIG_APP_ID), greeter and
// payments, with a state store "orders", a pubsub "events" and an output
// binding "audit-log", and points OUTRIG_ADDRESS at it.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync"
	"time"

	outrig "github.com/outrig/outrig/sdk-go"
)

func ExampleNewClient() {
	ctx := context.Background()
	client, err := outrig.NewClient(ctx,
		// The address comes from OUTRIG_ADDRESS, else unix:///tmp/outrig.sock.
		outrig.WithAppID("checkout"), // needed when the sidecar serves several apps
		outrig.WithTimeout(2*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	md, err := client.GetMetadata(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("app:", md.AppID)
	// Output:
	// app: checkout
}

func ExampleClient_GetState() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := outrig.NewClient(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	if err := client.SaveState(ctx, "orders", "order-1", []byte(`{"status":"new"}`)); err != nil {
		log.Fatal(err)
	}
	item, err := client.GetState(ctx, "orders", "order-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("found=%v value=%s\n", item.Found, item.Value)

	missing, err := client.GetState(ctx, "orders", "no-such-order")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("found=%v\n", missing.Found)
	// Output:
	// found=true value={"status":"new"}
	// found=false
}

func ExampleClient_SaveState() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := outrig.NewClient(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	_ = client.SaveState(ctx, "orders", "order-2", []byte("v1"))
	item, err := client.GetState(ctx, "orders", "order-2")
	if err != nil {
		log.Fatal(err)
	}
	// First write wins: the first conditional write succeeds and changes the
	// ETag, so a second write with the old ETag is refused.
	err1 := client.SaveState(ctx, "orders", "order-2", []byte("v2"), outrig.WithETag(item.ETag))
	err2 := client.SaveState(ctx, "orders", "order-2", []byte("v3"), outrig.WithETag(item.ETag))
	fmt.Println(err1 == nil, errors.Is(err2, outrig.ErrETagMismatch))
	// Output:
	// true true
}

func ExampleClient_ExecuteStateTransaction() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := outrig.NewClient(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	err = client.ExecuteStateTransaction(ctx, "orders",
		outrig.Upsert("order-3", []byte("paid")),
		outrig.Upsert("order-3/receipt", []byte("r-77"), outrig.WithTTL(time.Hour)),
		outrig.Delete("cart-3"))
	switch {
	case errors.Is(err, outrig.ErrUnsupported):
		fmt.Println("this store has no transactions")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("committed")
	}
	// Output:
	// committed
}

func ExampleClient_Publish() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := outrig.NewClient(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	err = client.Publish(ctx, "events", "order-paid", []byte(`{"id":"order-1"}`),
		outrig.WithContentType("application/json"),
		outrig.WithPartitionKey("order-1")) // same key, same partition: ordered
	if wait, ok := outrig.RetryAfter(err); ok {
		fmt.Println("rate limited, retry in", wait)
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("published")
	// Output:
	// published
}

func ExampleClient_Subscribe() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := outrig.NewClient(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	// Subscribe blocks, so it usually runs on its own goroutine for the life
	// of the program. Here it stops itself after the first event.
	subCtx, stop := context.WithCancel(ctx)
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- client.Subscribe(subCtx, "events", "greetings",
			func(ctx context.Context, e *outrig.TopicEvent) outrig.EventStatus {
				once.Do(func() {
					fmt.Printf("got %s\n", e.Data)
					stop()
				})
				return outrig.EventSuccess
			},
			outrig.WithDeadLetterTopic("greetings-dlq"),
			outrig.WithMaxRedeliveries(5))
	}()

	// The blocking form does not say when it is subscribed: publish until
	// the handler has seen an event. (StartSubscribe returns once subscribed.)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				log.Fatal(err)
			}
			return
		case <-tick.C:
			_ = client.Publish(ctx, "events", "greetings", []byte("hello"), outrig.WithRawPayload())
		}
	}
	// Output:
	// got hello
}

func ExampleClient_StartSubscribe() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := outrig.NewClient(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	got := make(chan string, 1)
	sub, err := client.StartSubscribe(ctx, "events", "signups",
		func(ctx context.Context, e *outrig.TopicEvent) outrig.EventStatus {
			select {
			case got <- string(e.Data):
			default:
			}
			return outrig.EventSuccess
		})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Stop()

	// Subscribed: this event reaches the handler.
	if err := client.Publish(ctx, "events", "signups", []byte("ada"), outrig.WithRawPayload()); err != nil {
		log.Fatal(err)
	}
	select {
	case name := <-got:
		fmt.Println("welcome", name)
	case <-ctx.Done():
		log.Fatal("the event did not reach the handler within 10s")
	}
	// Output:
	// welcome ada
}

func ExampleClient_Serve() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := outrig.NewClient(ctx, outrig.WithAppID("greeter"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	mux := outrig.NewMux()
	mux.Handle("Hello", func(ctx context.Context, in *outrig.Invocation) (*outrig.Reply, error) {
		if len(in.Data) == 0 {
			return nil, fmt.Errorf("name is required: %w", outrig.ErrInvalidArgument) // → INVALID_ARGUMENT
		}
		return &outrig.Reply{Data: append([]byte("hello "), in.Data...), ContentType: "text/plain"}, nil
	})

	// Serve blocks; StartServe returns once the sidecar routes calls to us.
	srv, err := client.StartServe(ctx, mux, outrig.WithMaxConcurrentHandlers(16))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Stop()

	// Any app (here: this one) can now call greeter.Hello through the sidecars.
	resp, err := client.Invoke(ctx, "greeter", "Hello", []byte("ada"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(resp.Data))
	_, err = client.Invoke(ctx, "greeter", "Hello", nil)
	fmt.Println(errors.Is(err, outrig.ErrInvalidArgument))
	// Output:
	// hello ada
	// true
}

func ExampleClient_Invoke() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := outrig.NewClient(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	resp, err := client.Invoke(ctx, "payments", "Charge", []byte(`{"amount":42}`),
		outrig.WithContentType("application/json"),
		outrig.WithHashKey("customer-9")) // same customer, same instance (hash LB)
	switch {
	case errors.Is(err, outrig.ErrUnavailable):
		fmt.Println("payments is down or shedding load")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Printf("%s (%s)\n", resp.Data, resp.ContentType)
	}
	// Output:
	// {"charged":42} (application/json)
}

func ExampleClient_InvokeBinding() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := outrig.NewClient(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	resp, err := client.InvokeBinding(ctx, "audit-log", "create", []byte("order-1 paid"),
		map[string]string{"key": "order-1"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("binding answered %d bytes\n", len(resp.Data))
	// Output:
	// binding answered 8 bytes
}
