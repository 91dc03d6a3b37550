package outrig

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	"google.golang.org/protobuf/proto"
)

func TestNewClientAddressPrecedence(t *testing.T) {
	checkNoLeaks(t)
	ts := startServer(t, newFakeSidecar(), "")

	t.Setenv(EnvAddress, ts.addr)
	c, err := NewClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Address() != ts.addr {
		t.Errorf("address from env = %q, want %q", c.Address(), ts.addr)
	}
	if _, err := c.GetMetadata(context.Background()); err != nil {
		t.Errorf("call via OUTRIG_ADDRESS: %v", err)
	}
	_ = c.Close()

	// The option wins over a (broken) environment.
	t.Setenv(EnvAddress, "http://nowhere")
	c, err = NewClient(context.Background(), WithAddress(ts.addr))
	if err != nil {
		t.Fatalf("WithAddress over bad env: %v", err)
	}
	if _, err := c.GetMetadata(context.Background()); err != nil {
		t.Errorf("call via WithAddress: %v", err)
	}
	_ = c.Close()

	// Without either, the default.
	t.Setenv(EnvAddress, "")
	c, err = NewClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Address() != DefaultAddress {
		t.Errorf("default address = %q, want %q", c.Address(), DefaultAddress)
	}
	_ = c.Close()
}

func TestNewClientRejectsBadOptions(t *testing.T) {
	checkNoLeaks(t)
	for name, opts := range map[string][]Option{
		"bad address":      {WithAddress("http://x:1")},
		"empty address":    {WithAddress("")},
		"negative timeout": {WithAddress("unix:///tmp/x.sock"), WithTimeout(-time.Second)},
		"negative poll":    {WithAddress("unix:///tmp/x.sock"), WithSharedMemory(""), WithBusyPoll(-time.Microsecond)},
		"nil option":       {nil},
	} {
		c, err := NewClient(context.Background(), opts...)
		if err == nil {
			_ = c.Close()
			t.Errorf("%s: NewClient succeeded", name)
			continue
		}
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: error %v is not ErrInvalidArgument", name, err)
		}
		if name == "negative poll" && !strings.Contains(err.Error(), "WithBusyPoll(-1µs)") {
			t.Errorf("%s: error %q does not name the option and its value", name, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewClient(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("NewClient(cancelled ctx) = %v, want context.Canceled", err)
	}
}

func TestAppIDHeader(t *testing.T) {
	checkNoLeaks(t)
	ts := startServer(t, newFakeSidecar(), "")
	headerOf := func(t *testing.T, opts ...Option) []string {
		t.Helper()
		c, err := NewClient(context.Background(), append([]Option{WithAddress(ts.addr)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.GetState(context.Background(), "s", "k"); err != nil {
			t.Fatal(err)
		}
		unaryMD := ts.fake.lastCall(t).md.Get(appIDHeader)
		// Streams carry it too.
		st, err := c.StartSubscribe(context.Background(), "p", "t", func(context.Context, *TopicEvent) EventStatus { return EventSuccess })
		if err != nil {
			t.Fatal(err)
		}
		sess := waitSession(t, ts.fake.subs)
		if got := sess.md.Get(appIDHeader); !slicesEqual(got, unaryMD) {
			t.Errorf("stream header %q differs from unary header %q", got, unaryMD)
		}
		if err := st.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
		return unaryMD
	}

	t.Setenv(EnvAppID, "")
	if got := headerOf(t); len(got) != 0 {
		t.Errorf("no app id: header = %q, want none", got)
	}
	if got := headerOf(t, WithAppID("checkout")); !slicesEqual(got, []string{"checkout"}) {
		t.Errorf("WithAppID: header = %q", got)
	}
	t.Setenv(EnvAppID, "billing")
	if got := headerOf(t); !slicesEqual(got, []string{"billing"}) {
		t.Errorf("OUTRIG_APP_ID: header = %q", got)
	}
	if got := headerOf(t, WithAppID("")); len(got) != 0 {
		t.Errorf("WithAppID(\"\") over env: header = %q, want none", got)
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWithTimeout(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t, WithTimeout(50*time.Millisecond))
	ts.fake.setOnCall(func(ctx context.Context, _ string, _ proto.Message) (proto.Message, error) {
		select {
		case <-time.After(300 * time.Millisecond):
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	start := time.Now()
	err := c.Publish(context.Background(), "p", "t", nil)
	if !errors.Is(err, ErrDeadlineExceeded) {
		t.Fatalf("Publish without deadline = %v, want ErrDeadlineExceeded from the default timeout", err)
	}
	if el := time.Since(start); el > 250*time.Millisecond {
		t.Errorf("default timeout took %v", el)
	}
	// A caller's deadline takes precedence over the default.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Publish(ctx, "p", "t", nil); err != nil {
		t.Errorf("Publish with a 5s deadline: %v", err)
	}
}

func TestCloseIsIdempotentAndEndsCalls(t *testing.T) {
	checkNoLeaks(t)
	c, _ := newTestClient(t)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := c.Publish(context.Background(), "p", "t", nil); err == nil {
		t.Error("Publish after Close succeeded")
	}
}

// Each typed method sends the request the protocol defines.
func TestRequestsOnTheWire(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t)
	ctx := context.Background()
	userMD := map[string]string{"a": "1"}
	item := func(key, value string, mut func(*runtimev1.StateItem)) *runtimev1.StateItem {
		it := &runtimev1.StateItem{Key: key}
		if value != "" {
			it.Value = []byte(value)
		}
		if mut != nil {
			mut(it)
		}
		return it
	}
	cases := []struct {
		name   string
		do     func() error
		method string
		want   proto.Message
	}{
		{"Invoke", func() error {
			_, err := c.Invoke(ctx, "payments", "Charge", []byte("{}"), WithContentType("application/json"),
				WithHTTPVerb("PUT"), WithHashKey("user-7"), WithMetadata(userMD))
			return err
		}, "Invoke", &runtimev1.InvokeRequest{AppId: "payments", Method: "Charge", Data: []byte("{}"),
			ContentType: "application/json", HttpVerb: "PUT", HashKey: "user-7", Metadata: userMD}},
		{"GetState", func() error {
			_, err := c.GetState(ctx, "orders", "o1", WithConsistency(ConsistencyStrong), WithMetadata(userMD))
			return err
		}, "GetState", &runtimev1.GetStateRequest{StoreName: "orders", Key: "o1",
			Consistency: runtimev1.Consistency_CONSISTENCY_STRONG, Metadata: userMD}},
		{"GetBulkState", func() error {
			_, err := c.GetBulkState(ctx, "orders", []string{"a", "b"}, WithParallelism(4))
			return err
		}, "GetBulkState", &runtimev1.GetBulkStateRequest{StoreName: "orders", Keys: []string{"a", "b"}, Parallelism: 4}},
		{"SaveState", func() error {
			return c.SaveState(ctx, "orders", "o1", []byte("v"), WithETag("7"), WithTTL(1500*time.Millisecond),
				WithConcurrency(ConcurrencyFirstWrite), WithConsistency(ConsistencyEventual),
				WithMetadata(userMD), WithContentType("text/plain"))
		}, "SaveState", &runtimev1.SaveStateRequest{StoreName: "orders", States: []*runtimev1.StateItem{item("o1", "v", func(it *runtimev1.StateItem) {
			it.Etag = &runtimev1.Etag{Value: "7"}
			it.Metadata = map[string]string{"a": "1", "ttlInSeconds": "2"}
			it.Options = &runtimev1.StateOptions{Concurrency: runtimev1.StateOptions_CONCURRENCY_FIRST_WRITE, Consistency: runtimev1.Consistency_CONSISTENCY_EVENTUAL}
			it.ContentType = "text/plain"
		})}}},
		{"SaveState empty etag still present", func() error {
			return c.SaveState(ctx, "orders", "o1", nil, WithETag(""))
		}, "SaveState", &runtimev1.SaveStateRequest{StoreName: "orders", States: []*runtimev1.StateItem{item("o1", "", func(it *runtimev1.StateItem) {
			it.Etag = &runtimev1.Etag{}
		})}}},
		{"SaveBulkState", func() error {
			return c.SaveBulkState(ctx, "orders", SaveItem{Key: "a", Value: []byte("1")},
				SaveItem{Key: "b", Value: []byte("2"), Options: []StateOption{WithTTL(time.Minute)}})
		}, "SaveState", &runtimev1.SaveStateRequest{StoreName: "orders", States: []*runtimev1.StateItem{
			item("a", "1", nil),
			item("b", "2", func(it *runtimev1.StateItem) { it.Metadata = map[string]string{"ttlInSeconds": "60"} }),
		}}},
		{"DeleteState", func() error {
			return c.DeleteState(ctx, "orders", "o1", WithETag("3"), WithConcurrency(ConcurrencyLastWrite))
		}, "DeleteState", &runtimev1.DeleteStateRequest{StoreName: "orders", Key: "o1", Etag: &runtimev1.Etag{Value: "3"},
			Options: &runtimev1.StateOptions{Concurrency: runtimev1.StateOptions_CONCURRENCY_LAST_WRITE}}},
		{"DeleteBulkState", func() error {
			return c.DeleteBulkState(ctx, "orders", DeleteItem{Key: "a"}, DeleteItem{Key: "b", Options: []StateOption{WithETag("9")}})
		}, "DeleteBulkState", &runtimev1.DeleteBulkStateRequest{StoreName: "orders", States: []*runtimev1.StateItem{
			item("a", "", nil),
			item("b", "", func(it *runtimev1.StateItem) { it.Etag = &runtimev1.Etag{Value: "9"} }),
		}}},
		{"ExecuteStateTransaction", func() error {
			return c.ExecuteStateTransaction(ctx, "orders",
				Upsert("a", []byte("1"), WithETag("1")),
				TransactionMetadata(map[string]string{"partitionKey": "p"}),
				Delete("b"))
		}, "ExecuteStateTransaction", &runtimev1.ExecuteStateTransactionRequest{StoreName: "orders",
			Metadata: map[string]string{"partitionKey": "p"},
			Operations: []*runtimev1.TransactionalStateOperation{
				{OperationType: runtimev1.TransactionalStateOperation_OPERATION_TYPE_UPSERT,
					Request: item("a", "1", func(it *runtimev1.StateItem) { it.Etag = &runtimev1.Etag{Value: "1"} })},
				{OperationType: runtimev1.TransactionalStateOperation_OPERATION_TYPE_DELETE, Request: item("b", "", nil)},
			}}},
		{"Publish", func() error {
			return c.Publish(ctx, "events", "paid", []byte(`{"id":1}`), WithContentType("application/json"),
				WithPartitionKey("user-7"), WithMetadata(userMD), WithRawPayload())
		}, "Publish", &runtimev1.PublishRequest{PubsubName: "events", Topic: "paid", Data: []byte(`{"id":1}`),
			DataContentType: "application/json", Metadata: map[string]string{"partitionKey": "user-7", "a": "1", "rawPayload": "true"}}},
		{"BulkPublish", func() error {
			return c.BulkPublish(ctx, "events", "paid", []BulkPublishEntry{
				{Data: []byte("x")}, {ID: "mine", Data: []byte("y"), ContentType: "text/plain", Metadata: userMD},
			}, WithPartitionKey("k"))
		}, "BulkPublish", &runtimev1.BulkPublishRequest{PubsubName: "events", Topic: "paid",
			Metadata: map[string]string{"partitionKey": "k"},
			Entries: []*runtimev1.BulkPublishEntry{
				{EntryId: "0", Event: []byte("x")},
				{EntryId: "mine", Event: []byte("y"), ContentType: "text/plain", Metadata: userMD},
			}}},
		{"InvokeBinding", func() error {
			_, err := c.InvokeBinding(ctx, "s3", "create", []byte("blob"), userMD)
			return err
		}, "InvokeBinding", &runtimev1.InvokeBindingRequest{Name: "s3", Operation: "create", Data: []byte("blob"), Metadata: userMD}},
		{"GetMetadata", func() error {
			_, err := c.GetMetadata(ctx)
			return err
		}, "GetMetadata", &runtimev1.GetMetadataRequest{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); err != nil {
				t.Fatalf("call: %v", err)
			}
			got := ts.fake.lastCall(t)
			if got.method != tc.method {
				t.Fatalf("sidecar got %s, want %s", got.method, tc.method)
			}
			if !proto.Equal(got.req, tc.want) {
				t.Errorf("request on the wire:\n got %v\nwant %v", got.req, tc.want)
			}
		})
	}
	if !maps.Equal(userMD, map[string]string{"a": "1"}) {
		t.Errorf("the caller's metadata map was modified: %v", userMD)
	}
}

func TestResponsesMapped(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t)
	ctx := context.Background()
	ts.fake.setOnCall(func(_ context.Context, method string, _ proto.Message) (proto.Message, error) {
		switch method {
		case "GetState":
			return &runtimev1.GetStateResponse{Data: []byte("v"), Etag: "5", Found: true, ContentType: "text/plain",
				Metadata: map[string]string{"m": "1"}}, nil
		case "GetBulkState":
			return &runtimev1.GetBulkStateResponse{Items: []*runtimev1.BulkStateItem{
				{Key: "a", Data: []byte("1"), Etag: "1", Found: true},
				{Key: "b", Error: "redis: timeout"},
			}}, nil
		case "Invoke":
			return &runtimev1.InvokeResponse{Data: []byte("ok"), ContentType: "text/plain", Metadata: map[string]string{"h": "v"}}, nil
		case "InvokeBinding":
			return &runtimev1.InvokeBindingResponse{Data: []byte("r"), Metadata: map[string]string{"x": "y"}}, nil
		case "BulkPublish":
			return &runtimev1.BulkPublishResponse{FailedEntries: []*runtimev1.BulkPublishFailedEntry{{EntryId: "1", Error: "too big"}}}, nil
		case "GetMetadata":
			return &runtimev1.GetMetadataResponse{AppId: "checkout", Mode: "pod", ConfigVersion: "v3",
				Components:    []*runtimev1.ComponentInfo{{Name: "orders", Type: "state.redis", Status: "READY", Capabilities: []string{"ETAG"}}},
				Subscriptions: []*runtimev1.SubscriptionInfo{{PubsubName: "events", Topic: "paid", Kind: "streaming"}},
				Policies:      []*runtimev1.PolicyInfo{{Name: "p", Targets: []string{"state/orders/Get"}, Policies: []string{"rateLimit"}}}}, nil
		}
		return nil, nil
	})

	st, err := c.GetState(ctx, "orders", "k")
	if err != nil {
		t.Fatal(err)
	}
	if string(st.Value) != "v" || st.ETag != "5" || !st.Found || st.Key != "k" || st.ContentType != "text/plain" || st.Metadata["m"] != "1" {
		t.Errorf("GetState = %+v", st)
	}

	bulk, err := c.GetBulkState(ctx, "orders", []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if len(bulk) != 2 || string(bulk[0].Value) != "1" || bulk[0].Err != nil || !bulk[0].Found ||
		bulk[1].Err == nil || bulk[1].Err.Error() != "redis: timeout" || bulk[1].Found {
		t.Errorf("GetBulkState = %+v", bulk)
	}

	inv, err := c.Invoke(ctx, "a", "m", nil)
	if err != nil || string(inv.Data) != "ok" || inv.ContentType != "text/plain" || inv.Metadata["h"] != "v" {
		t.Errorf("Invoke = %+v, %v", inv, err)
	}

	br, err := c.InvokeBinding(ctx, "b", "get", nil, nil)
	if err != nil || string(br.Data) != "r" || br.Metadata["x"] != "y" {
		t.Errorf("InvokeBinding = %+v, %v", br, err)
	}

	err = c.BulkPublish(ctx, "events", "t", []BulkPublishEntry{{Data: []byte("a")}, {Data: []byte("b")}})
	var bpe *BulkPublishError
	if !errors.As(err, &bpe) || len(bpe.Failed) != 1 || bpe.Failed[0] != (BulkPublishFailure{ID: "1", Error: "too big"}) {
		t.Errorf("BulkPublish partial failure = %v, want *BulkPublishError naming entry 1", err)
	}

	md, err := c.GetMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if md.AppID != "checkout" || md.Mode != "pod" || md.ConfigVersion != "v3" ||
		len(md.Components) != 1 || md.Components[0].Type != "state.redis" || md.Components[0].Capabilities[0] != "ETAG" ||
		len(md.Subscriptions) != 1 || md.Subscriptions[0].Topic != "paid" ||
		len(md.Policies) != 1 || md.Policies[0].Policies[0] != "rateLimit" {
		t.Errorf("GetMetadata = %+v", md)
	}
}

// Bad arguments fail locally with ErrInvalidArgument naming the field; the
// sidecar sees nothing.
func TestBadArgumentsFailBeforeTheWire(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t)
	ctx := context.Background()
	noop := func(context.Context, *TopicEvent) EventStatus { return EventSuccess }
	cases := []struct {
		name, field string
		do          func() error
	}{
		{"Invoke no app", "appID", func() error { _, err := c.Invoke(ctx, "", "m", nil); return err }},
		{"Invoke no method", "method", func() error { _, err := c.Invoke(ctx, "a", "", nil); return err }},
		{"Invoke nil option", "option", func() error { _, err := c.Invoke(ctx, "a", "m", nil, nil); return err }},
		{"GetState no store", "store", func() error { _, err := c.GetState(ctx, "", "k"); return err }},
		{"GetState no key", "key", func() error { _, err := c.GetState(ctx, "s", ""); return err }},
		{"GetState WithTTL", "WithTTL", func() error { _, err := c.GetState(ctx, "s", "k", WithTTL(time.Second)); return err }},
		{"GetState WithETag", "WithETag", func() error { _, err := c.GetState(ctx, "s", "k", WithETag("1")); return err }},
		{"GetBulkState no keys", "keys", func() error { _, err := c.GetBulkState(ctx, "s", nil); return err }},
		{"GetBulkState empty key", "keys[1]", func() error { _, err := c.GetBulkState(ctx, "s", []string{"a", ""}); return err }},
		{"GetBulkState parallelism 0", "WithParallelism", func() error {
			_, err := c.GetBulkState(ctx, "s", []string{"a"}, WithParallelism(0))
			return err
		}},
		{"SaveState TTL 0", "WithTTL", func() error { return c.SaveState(ctx, "s", "k", nil, WithTTL(0)) }},
		{"SaveState bad consistency", "WithConsistency", func() error { return c.SaveState(ctx, "s", "k", nil, WithConsistency(7)) }},
		{"SaveState bad concurrency", "WithConcurrency", func() error { return c.SaveState(ctx, "s", "k", nil, WithConcurrency(0)) }},
		{"SaveState nil option", "option", func() error { return c.SaveState(ctx, "s", "k", nil, nil) }},
		{"SaveBulkState none", "items", func() error { return c.SaveBulkState(ctx, "s") }},
		{"SaveBulkState no key", "items[0].Key", func() error { return c.SaveBulkState(ctx, "s", SaveItem{}) }},
		{"DeleteState WithTTL", "WithTTL", func() error { return c.DeleteState(ctx, "s", "k", WithTTL(time.Second)) }},
		{"DeleteBulkState item option", "WithContentType", func() error {
			return c.DeleteBulkState(ctx, "s", DeleteItem{Key: "a", Options: []StateOption{WithContentType("x")}})
		}},
		{"Transaction zero op", "ops[0]", func() error { return c.ExecuteStateTransaction(ctx, "s", StateOperation{}) }},
		{"Transaction no ops", "ops", func() error { return c.ExecuteStateTransaction(ctx, "s") }},
		{"Transaction only metadata", "ops", func() error {
			return c.ExecuteStateTransaction(ctx, "s", TransactionMetadata(map[string]string{"a": "b"}))
		}},
		{"Transaction delete TTL", "WithTTL", func() error { return c.ExecuteStateTransaction(ctx, "s", Delete("k", WithTTL(time.Second))) }},
		{"Transaction no key", "ops[0] key", func() error { return c.ExecuteStateTransaction(ctx, "s", Upsert("", nil)) }},
		{"Publish no pubsub", "pubsub", func() error { return c.Publish(ctx, "", "t", nil) }},
		{"Publish no topic", "topic", func() error { return c.Publish(ctx, "p", "", nil) }},
		{"BulkPublish none", "entries", func() error { return c.BulkPublish(ctx, "p", "t", nil) }},
		{"BulkPublish dup id", "entries[1].ID", func() error {
			return c.BulkPublish(ctx, "p", "t", []BulkPublishEntry{{ID: "x"}, {ID: "x"}})
		}},
		{"BulkPublish content type", "WithContentType", func() error {
			return c.BulkPublish(ctx, "p", "t", []BulkPublishEntry{{}}, WithContentType("x"))
		}},
		{"InvokeBinding no name", "name", func() error { _, err := c.InvokeBinding(ctx, "", "create", nil, nil); return err }},
		{"InvokeBinding no operation", "operation", func() error { _, err := c.InvokeBinding(ctx, "b", "", nil, nil); return err }},
		{"Subscribe no handler", "handler", func() error { return c.Subscribe(ctx, "p", "t", nil) }},
		{"Subscribe no topic", "topic", func() error { return c.Subscribe(ctx, "p", "", noop) }},
		{"Subscribe redeliveries", "WithMaxRedeliveries", func() error { return c.Subscribe(ctx, "p", "t", noop, WithMaxRedeliveries(-1)) }},
		{"Subscribe backoff", "WithReconnectBackoff", func() error {
			return c.Subscribe(ctx, "p", "t", noop, WithReconnectBackoff(time.Second, time.Millisecond))
		}},
		{"Subscribe concurrency", "WithMaxConcurrentHandlers", func() error {
			return c.Subscribe(ctx, "p", "t", noop, WithMaxConcurrentHandlers(0))
		}},
		{"SubscribeBinding no name", "name", func() error {
			return c.SubscribeBinding(ctx, "", func(context.Context, *BindingEvent) EventStatus { return EventSuccess })
		}},
		{"Serve nil router", "router", func() error { return c.Serve(ctx, nil) }},
		{"Serve nil Handlers", "router", func() error { return c.Serve(ctx, Handlers(nil)) }},
	}
	for _, tc := range cases {
		err := tc.do()
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: error = %v, want ErrInvalidArgument", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: error %q does not name %q", tc.name, err, tc.field)
		}
	}
	ts.fake.mu.Lock()
	defer ts.fake.mu.Unlock()
	if len(ts.fake.calls) != 0 {
		t.Errorf("the sidecar received %d calls, want none", len(ts.fake.calls))
	}
}
