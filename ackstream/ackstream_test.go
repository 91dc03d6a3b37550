package ackstream

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"

	"github.com/outrig/outrig/errkind"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newTestStream() (*Stream[string], chan string) {
	sent := make(chan string, 16)
	return New(func(id string) error { sent <- id; return nil }, func(id string) string { return id }), sent
}

const success = runtimev1.EventStatus_EVENT_STATUS_SUCCESS

func TestDeliverGetsItsAnswer(t *testing.T) {
	s, sent := newTestStream()
	defer s.Close()
	done := make(chan runtimev1.EventStatus, 1)
	go func() {
		st, _ := s.Deliver(context.Background(), "e1")
		done <- st
	}()
	<-sent
	if err := s.Ack("e1", runtimev1.EventStatus_EVENT_STATUS_RETRY); err != nil {
		t.Fatal(err)
	}
	if st := <-done; st != runtimev1.EventStatus_EVENT_STATUS_RETRY {
		t.Fatalf("Deliver got %v, want RETRY", st)
	}
}

// An answer that arrives after its delivery was abandoned (a consumer
// group's session ended, a deadline passed) is dropped, and the stream
// keeps working: the app did nothing wrong. An ack for an id never sent,
// or answered twice, is a protocol error.
func TestLateAnswerIsDroppedNotAnError(t *testing.T) {
	s, sent := newTestStream()
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Deliver(ctx, "slow"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("abandoned delivery: %v, want DeadlineExceeded", err)
	}
	<-sent
	if err := s.Ack("slow", success); err != nil {
		t.Fatalf("late answer: %v, want it dropped", err)
	}
	if err := s.Ack("slow", success); !errors.Is(err, errkind.ErrInvalidArgument) {
		t.Fatalf("second answer to one abandoned delivery: %v, want INVALID_ARGUMENT", err)
	}
	if err := s.Ack("never-sent", success); !errors.Is(err, errkind.ErrInvalidArgument) {
		t.Fatalf("ack for an id never sent: %v, want INVALID_ARGUMENT", err)
	}
	if err := s.Ack("x", runtimev1.EventStatus(42)); !errors.Is(err, errkind.ErrInvalidArgument) {
		t.Fatalf("bad status: %v, want INVALID_ARGUMENT", err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := s.Deliver(context.Background(), "next")
		done <- err
	}()
	<-sent
	if err := s.Ack("next", success); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("delivery after a late answer: %v", err)
	}
}

// The abandoned deliveries remembered are bounded: the oldest are
// forgotten first.
func TestLateAnswersAreBounded(t *testing.T) {
	s, _ := newTestStream()
	defer s.Close()
	for i := range lateMax + 10 {
		s.expectLate(fmt.Sprintf("e%d", i))
	}
	s.mu.Lock()
	remembered := len(s.late)
	s.mu.Unlock()
	if remembered != lateMax {
		t.Fatalf("%d late answers remembered, want %d", remembered, lateMax)
	}
	if err := s.Ack("e0", success); !errors.Is(err, errkind.ErrInvalidArgument) {
		t.Fatalf("answer to the oldest, forgotten delivery: %v, want INVALID_ARGUMENT", err)
	}
	if err := s.Ack(fmt.Sprintf("e%d", lateMax+9), success); err != nil {
		t.Fatalf("answer to the newest abandoned delivery: %v, want it dropped", err)
	}
}
