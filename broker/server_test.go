package broker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	brokerv1 "github.com/outrig/outrig/api/gen/outrig/broker/v1"
)

func TestNewServerRejectsNegativeOptions(t *testing.T) {
	for _, o := range []Options{
		{MaxGroupMessages: -1}, {MaxGroupBytes: -1}, {MaxInFlight: -1},
		{RedeliveryDelay: -time.Second}, {GroupRetention: -time.Second},
	} {
		if _, err := NewServer(o); err == nil || !strings.Contains(err.Error(), "negative") {
			t.Errorf("NewServer(%+v) = %v, want an error naming the negative field", o, err)
		}
	}
}

func TestPublishWithoutGroupIsDropped(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", Options{})
	client := dialBroker(t, b.addr)
	ctx := context.Background()
	if _, err := client.Publish(ctx, &brokerv1.PublishRequest{Topic: "t", Data: []byte("early")}); err != nil {
		t.Fatalf("publish to a topic without groups: %v", err)
	}
	m := subscribeRaw(t, client, "t", "g")
	if _, err := client.Publish(ctx, &brokerv1.PublishRequest{Topic: "t", Data: []byte("late"), ContentType: "text/plain", Metadata: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	got := m.recv(5 * time.Second)
	if string(got.GetData()) != "late" || got.GetTopic() != "t" || got.GetContentType() != "text/plain" || got.GetMetadata()["k"] != "v" || got.GetAttempt() != 1 {
		t.Fatalf("got %v, want the message published after subscribing, fields intact, attempt 1", got)
	}
}

func TestPublishRejectsEmptyTopic(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", Options{})
	_, err := dialBroker(t, b.addr).Publish(context.Background(), &brokerv1.PublishRequest{})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "topic") {
		t.Fatalf("err = %v, want INVALID_ARGUMENT naming topic", err)
	}
}

func TestSubscribeProtocolErrors(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", Options{})
	client := dialBroker(t, b.addr)
	for _, tc := range []struct {
		name  string
		first *brokerv1.SubscribeRequest
		want  string
	}{
		{"ack first", &brokerv1.SubscribeRequest{Request: &brokerv1.SubscribeRequest_Ack{Ack: &brokerv1.Ack{DeliveryId: 1}}}, "must be a subscription"},
		{"no topic", &brokerv1.SubscribeRequest{Request: &brokerv1.SubscribeRequest_Subscription{Subscription: &brokerv1.Subscription{Group: "g"}}}, "subscription.topic"},
		{"no group", &brokerv1.SubscribeRequest{Request: &brokerv1.SubscribeRequest_Subscription{Subscription: &brokerv1.Subscription{Topic: "t"}}}, "subscription.group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream, err := client.Subscribe(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(tc.first); err != nil {
				t.Fatal(err)
			}
			_, err = stream.Recv()
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want INVALID_ARGUMENT containing %q", err, tc.want)
			}
		})
	}
	t.Run("unknown delivery", func(t *testing.T) {
		m := subscribeRaw(t, client, "t", "g")
		m.ack(12345, true)
		_, err := m.tryRecv(5 * time.Second)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "delivery_id 12345") {
			t.Fatalf("err = %v, want INVALID_ARGUMENT naming the delivery id", err)
		}
	})
}

func TestInFlightLimitPerMember(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", Options{MaxInFlight: 3})
	client := dialBroker(t, b.addr)
	m := subscribeRaw(t, client, "t", "g")
	for i := range 5 {
		if _, err := client.Publish(context.Background(), &brokerv1.PublishRequest{Topic: "t", Data: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []uint64
	for range 3 {
		ids = append(ids, m.recv(5*time.Second).GetDeliveryId())
	}
	if st := b.group("t", "g"); st.InFlight != 3 || st.Messages != 5 {
		t.Fatalf("stats %+v, want 3 in flight of 5 held", st)
	}
	m.ack(ids[0], true)
	fourth := m.recv(5 * time.Second)
	if fourth.GetData()[0] != 3 {
		t.Fatalf("after one ack got message %v, want the 4th", fourth.GetData())
	}
	// Still 3 in flight: the 5th must wait.
	eventually(t, func() bool { st := b.group("t", "g"); return st.InFlight == 3 && st.Messages == 4 }, "3 in flight of 4 held")
	if _, err := m.tryRecv(200 * time.Millisecond); !errors.Is(err, errTimeout) {
		t.Fatalf("received beyond the in-flight limit (err %v)", err)
	}
}

func TestDisconnectedMemberMessagesGoToOtherMember(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", Options{MaxInFlight: 4, RedeliveryDelay: 20 * time.Millisecond})
	client := dialBroker(t, b.addr)
	crashing := subscribeRaw(t, client, "t", "g")
	for i := range 4 {
		if _, err := client.Publish(context.Background(), &brokerv1.PublishRequest{Topic: "t", Data: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		crashing.recv(5 * time.Second) // held, never acked
	}
	survivor := subscribeRaw(t, client, "t", "g")
	crashing.cancel() // the member dies with 4 messages in flight
	got := map[byte]uint32{}
	for range 4 {
		msg := survivor.recv(5 * time.Second)
		got[msg.GetData()[0]] = msg.GetAttempt()
		survivor.ack(msg.GetDeliveryId(), true)
	}
	for i := range byte(4) {
		if got[i] != 2 {
			t.Fatalf("redelivered %v (payload → attempt), want each of 0..3 at attempt 2", got)
		}
	}
	eventually(t, func() bool { st := b.group("t", "g"); return st.Messages == 0 && st.Members == 1 }, "group to be empty with one member")
}

func TestGroupFullRejectsPublishForAllGroups(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", Options{MaxGroupMessages: 3})
	client := dialBroker(t, b.addr)
	slow := subscribeRaw(t, client, "t", "slow")
	fast := subscribeRaw(t, client, "t", "fast")
	ctx := context.Background()
	for i := range 3 {
		if _, err := client.Publish(ctx, &brokerv1.PublishRequest{Topic: "t", Data: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
		fast.ack(fast.recv(5*time.Second).GetDeliveryId(), true)
	}
	eventually(t, func() bool { return b.group("t", "fast").Messages == 0 }, "fast group to be drained")
	_, err := client.Publish(ctx, &brokerv1.PublishRequest{Topic: "t", Data: []byte{3}})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), `consumer group "slow"`) {
		t.Fatalf("err = %v, want RESOURCE_EXHAUSTED naming the full group", err)
	}
	if st := b.group("t", "fast"); st.Messages != 0 {
		t.Fatalf("fast group got the rejected message: %+v", st)
	}
	// Acking on the slow group makes room again.
	slow.ack(slow.recv(5*time.Second).GetDeliveryId(), true)
	eventually(t, func() bool { return b.group("t", "slow").Messages == 2 }, "slow group to hold 2")
	if _, err := client.Publish(ctx, &brokerv1.PublishRequest{Topic: "t", Data: []byte{4}}); err != nil {
		t.Fatalf("publish after room was made: %v", err)
	}
}

func TestGroupByteLimit(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", Options{MaxGroupBytes: 100})
	client := dialBroker(t, b.addr)
	subscribeRaw(t, client, "t", "g")
	ctx := context.Background()
	if _, err := client.Publish(ctx, &brokerv1.PublishRequest{Topic: "t", Data: make([]byte, 200)}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("oversized message: err = %v, want INVALID_ARGUMENT", err)
	}
	if _, err := client.Publish(ctx, &brokerv1.PublishRequest{Topic: "t", Data: make([]byte, 60)}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Publish(ctx, &brokerv1.PublishRequest{Topic: "t", Data: make([]byte, 60)}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("err = %v, want RESOURCE_EXHAUSTED once the group holds too many bytes", err)
	}
}

func TestIdleGroupExpires(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", Options{MaxGroupMessages: 1, GroupRetention: time.Minute})
	now := time.Unix(1000, 0)
	b.mu.Lock()
	b.now = func() time.Time { return now } // read under b.mu only
	b.mu.Unlock()
	advance := func(d time.Duration) {
		b.mu.Lock()
		now = now.Add(d)
		b.mu.Unlock()
	}
	client := dialBroker(t, b.addr)
	gone := subscribeRaw(t, client, "t", "gone")
	gone.cancel()
	b.waitMembers(t, "t", "gone", 0)
	ctx := context.Background()
	// Within the retention the group keeps its messages and fills up ...
	if _, err := client.Publish(ctx, &brokerv1.PublishRequest{Topic: "t"}); err != nil {
		t.Fatal(err)
	}
	advance(time.Minute - time.Second)
	if _, err := client.Publish(ctx, &brokerv1.PublishRequest{Topic: "t"}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("publish to a full idle group within retention: %v, want RESOURCE_EXHAUSTED", err)
	}
	// ... after it, the group is dropped and publishing succeeds again.
	advance(time.Second)
	for range 3 {
		if _, err := client.Publish(ctx, &brokerv1.PublishRequest{Topic: "t"}); err != nil {
			t.Fatalf("publish after the idle group expired: %v", err)
		}
	}
	if st := b.Stats(); len(st) != 0 {
		t.Fatalf("stats %+v, want no groups left", st)
	}
}

func TestCloseEndsStreamsAndRejectsCalls(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", Options{RedeliveryDelay: time.Hour})
	client := dialBroker(t, b.addr)
	m := subscribeRaw(t, client, "t", "g")
	if _, err := client.Publish(context.Background(), &brokerv1.PublishRequest{Topic: "t"}); err != nil {
		t.Fatal(err)
	}
	m.ack(m.recv(5*time.Second).GetDeliveryId(), false) // a redelivery timer pending for an hour
	eventually(t, func() bool { return b.group("t", "g").InFlight == 0 }, "nack to be applied")
	done := make(chan struct{})
	go func() { _ = b.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with a redelivery pending")
	}
	if _, err := m.tryRecv(5 * time.Second); status.Code(err) != codes.Unavailable {
		t.Fatalf("stream ended with %v, want UNAVAILABLE", err)
	}
	if _, err := client.Publish(context.Background(), &brokerv1.PublishRequest{Topic: "t"}); status.Code(err) != codes.Unavailable {
		t.Fatalf("publish after Close: %v, want UNAVAILABLE", err)
	}
}
