package pubsub

import (
	"context"
	"errors"
	"testing"
	"time"

	cpubsub "github.com/dapr/components-contrib/pubsub"

	"github.com/outrig/outrig/errkind"
)

// stuckPubSub is a component whose Publish ignores its context and returns
// only when release is closed (as contrib's Kafka producer retrying against
// a broker that went away).
type stuckPubSub struct {
	cpubsub.PubSub // not called
	release        chan struct{}
	err            error
}

func (s *stuckPubSub) Publish(context.Context, *cpubsub.PublishRequest) error {
	<-s.release
	return s.err
}

func (s *stuckPubSub) BulkPublish(context.Context, *cpubsub.BulkPublishRequest) (cpubsub.BulkPublishResponse, error) {
	<-s.release
	return cpubsub.BulkPublishResponse{}, s.err
}

func TestPublishAnswersBeforeTheDeadline(t *testing.T) {
	impl := &stuckPubSub{release: make(chan struct{})}
	t.Cleanup(func() { close(impl.release) })
	ps := New("bus", "pubsub.stuck", "app", impl)
	for _, tc := range []struct {
		name    string
		publish func(ctx context.Context) error
	}{
		{"publish", func(ctx context.Context) error { return ps.Publish(ctx, Message{Topic: "t", Data: []byte("x")}) }},
		{"bulk publish", func(ctx context.Context) error {
			_, err := ps.BulkPublish(ctx, "t", []BulkEntry{{EntryID: "1", Data: []byte("x")}}, nil)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := tc.publish(ctx)
			took := time.Since(start)
			if !errors.Is(err, errkind.ErrUnavailable) {
				t.Errorf("err %v, want ErrUnavailable", err)
			}
			if ctx.Err() != nil {
				t.Errorf("answered after the deadline (%v)", took)
			}
			if took < 200*time.Millisecond {
				t.Errorf("answered after %v, want close to the deadline", took)
			}
		})
	}
}

func TestPublishWithinTheDeadlineKeepsTheResult(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name     string
		deadline bool
		err      error
		want     error
	}{
		{"success with deadline", true, nil, nil},
		{"success without deadline", false, nil, nil},
		{"failure with deadline", true, boom, boom},
		{"failure without deadline", false, boom, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			impl := &stuckPubSub{release: make(chan struct{}), err: tc.err}
			close(impl.release)
			ps := New("bus", "pubsub.stuck", "app", impl)
			ctx := context.Background()
			if tc.deadline {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Second)
				defer cancel()
			}
			err := ps.Publish(ctx, Message{Topic: "t", Data: []byte("x")})
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("err %v, want %v", err, tc.want)
			}
			if tc.want != nil && !errors.Is(err, errkind.ErrUnavailable) {
				t.Errorf("component error %v not classified UNAVAILABLE", err)
			}
		})
	}
}

func TestPublishCancelled(t *testing.T) {
	impl := &stuckPubSub{release: make(chan struct{})}
	t.Cleanup(func() { close(impl.release) })
	ps := New("bus", "pubsub.stuck", "app", impl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	time.AfterFunc(50*time.Millisecond, cancel)
	if err := ps.Publish(ctx, Message{Topic: "t", Data: []byte("x")}); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}
