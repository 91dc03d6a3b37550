package invoke

import (
	"context"
	"errors"
	"testing"
	"time"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"

	"github.com/outrig/outrig/errkind"
)

// A handler slower than its caller's deadline answers after the caller
// gave up: the reply is dropped and the stream keeps serving; only a reply
// for an id never sent is a protocol error.
func TestServeStreamLateReplyIsDropped(t *testing.T) {
	sent := make(chan *runtimev1.Invocation, 4)
	s := NewServeStream(func(inv *runtimev1.Invocation) error { sent <- inv; return nil })
	defer s.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Call(ctx, &runtimev1.Invocation{Method: "Slow"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call past its deadline: %v, want DeadlineExceeded", err)
	}
	slow := <-sent
	if err := s.Reply(&runtimev1.InvocationReply{Id: slow.Id, Data: []byte("late")}); err != nil {
		t.Fatalf("late reply: %v, want it dropped", err)
	}

	done := make(chan error, 1)
	go func() {
		resp, err := s.Call(context.Background(), &runtimev1.Invocation{Method: "Fast"})
		if err == nil && string(resp.GetData()) != "fast" {
			err = errors.New("wrong reply: " + string(resp.GetData()))
		}
		done <- err
	}()
	fast := <-sent
	if err := s.Reply(&runtimev1.InvocationReply{Id: fast.Id, Data: []byte("fast")}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("call after a late reply: %v", err)
	}

	if err := s.Reply(&runtimev1.InvocationReply{Id: fast.Id + 100}); !errors.Is(err, errkind.ErrInvalidArgument) {
		t.Fatalf("reply for an id never sent: %v, want INVALID_ARGUMENT", err)
	}
	if err := s.Reply(&runtimev1.InvocationReply{Id: 0}); !errors.Is(err, errkind.ErrInvalidArgument) {
		t.Fatalf("reply for id 0: %v, want INVALID_ARGUMENT", err)
	}
}
