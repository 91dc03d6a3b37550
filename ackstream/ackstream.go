// Package ackstream turns one side of a bidirectional stream into a
// request/answer channel: Deliver sends an item and waits for the answer
// with the same id, which the stream's receive loop hands to Ack. Used by
// the Subscribe and SubscribeBinding streams.
package ackstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"

	"github.com/outrig/outrig/errkind"
)

// ErrClosed is returned by Deliver on a closed stream.
var ErrClosed = errors.New("stream closed")

// lateMax bounds the abandoned deliveries whose answers are still expected
// (see Stream.late).
const lateMax = 4096

// Stream is one stream's delivery side. Safe for concurrent use.
type Stream[E any] struct {
	send func(E) error
	id   func(E) string

	sendMu  sync.Mutex
	mu      sync.Mutex
	pending map[string][]chan runtimev1.EventStatus
	// late holds, oldest first and at most lateMax, the ids of deliveries
	// abandoned after the item was sent (their context ended: a
	// consumer-group rebalance, a deadline) whose answers the app may still
	// send. Such an answer is dropped: the item is delivered again or
	// dead-lettered by whoever abandoned it, and the stream must not fail
	// for it. Only answers that match nothing pending search it.
	late   []string
	closed bool
	done   chan struct{}
}

// New returns a Stream that sends with send (called under a lock: gRPC
// streams allow one sender at a time) and correlates answers by id(item).
func New[E any](send func(E) error, id func(E) string) *Stream[E] {
	return &Stream[E]{send: send, id: id, pending: map[string][]chan runtimev1.EventStatus{}, done: make(chan struct{})}
}

// Deliver sends ev and waits for its answer, ctx's end or Close.
func (s *Stream[E]) Deliver(ctx context.Context, ev E) (runtimev1.EventStatus, error) {
	id := s.id(ev)
	ch := make(chan runtimev1.EventStatus, 1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	s.pending[id] = append(s.pending[id], ch)
	s.mu.Unlock()

	s.sendMu.Lock()
	err := s.send(ev)
	s.sendMu.Unlock()
	if err != nil {
		s.forget(id, ch)
		return 0, fmt.Errorf("send %q: %w", id, err)
	}
	select {
	case st := <-ch:
		return st, nil
	case <-s.done:
		return 0, ErrClosed
	case <-ctx.Done():
		if s.forget(id, ch) {
			s.expectLate(id)
		}
		return 0, ctx.Err()
	}
}

// expectLate remembers that an answer for id may still come.
func (s *Stream[E]) expectLate(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.late) == lateMax {
		s.late = s.late[1:]
	}
	s.late = append(s.late, id)
}

// forget withdraws ch from the deliveries awaiting an answer for id; it
// reports false when an answer had already taken it.
func (s *Stream[E]) forget(id string, ch chan runtimev1.EventStatus) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.pending[id]
	found := false
	for i, c := range q {
		if c == ch {
			q = append(q[:i], q[i+1:]...)
			found = true
			break
		}
	}
	if len(q) == 0 {
		delete(s.pending, id)
	} else {
		s.pending[id] = q
	}
	return found
}

// Ack hands the app's answer for event id to the waiting Deliver. An answer
// to a delivery abandoned after it was sent is dropped; an ack for an id
// never sent (or already answered) is an INVALID_ARGUMENT error.
func (s *Stream[E]) Ack(id string, st runtimev1.EventStatus) error {
	if st < runtimev1.EventStatus_EVENT_STATUS_SUCCESS || st > runtimev1.EventStatus_EVENT_STATUS_DROP {
		return errkind.InvalidArgument("ack.status", "%v is not SUCCESS, RETRY or DROP", st)
	}
	s.mu.Lock()
	q := s.pending[id]
	if len(q) == 0 {
		if i := slices.Index(s.late, id); i >= 0 {
			s.late = slices.Delete(s.late, i, i+1)
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
		return errkind.InvalidArgument("ack.id", "no event %q is awaiting an answer", id)
	}
	ch := q[0]
	if len(q) == 1 {
		delete(s.pending, id)
	} else {
		s.pending[id] = q[1:]
	}
	s.mu.Unlock()
	ch <- st
	return nil
}

// Close fails every pending and future Deliver with ErrClosed.
func (s *Stream[E]) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
}
