package bindings

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	cbindings "github.com/dapr/components-contrib/bindings"

	"github.com/outrig/outrig/errkind"
)

// stuckOutput is an output binding whose Invoke ignores its context and
// returns only when release is closed (as contrib's Kafka binding sending
// to a broker that went away).
type stuckOutput struct {
	cbindings.OutputBinding // not called
	release                 chan struct{}
}

func (s *stuckOutput) Invoke(context.Context, *cbindings.InvokeRequest) (*cbindings.InvokeResponse, error) {
	<-s.release
	return &cbindings.InvokeResponse{Data: []byte("late")}, nil
}

func (s *stuckOutput) Operations() []cbindings.OperationKind {
	return []cbindings.OperationKind{cbindings.CreateOperation}
}

func TestInvokeAnswersBeforeTheDeadline(t *testing.T) {
	b := &stuckOutput{release: make(chan struct{})}
	defer close(b.release)
	o := NewOutput("events", "bindings.kafka", b)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := o.Invoke(ctx, "create", []byte("x"), nil)
	took := time.Since(start)
	if !errors.Is(err, errkind.ErrUnavailable) {
		t.Fatalf("stuck binding: %v, want UNAVAILABLE", err)
	}
	if took >= 300*time.Millisecond {
		t.Fatalf("answered after %v, past the caller's 300ms deadline", took)
	}
}

func TestInvokeWithinTheDeadlineKeepsTheResult(t *testing.T) {
	b := &stuckOutput{release: make(chan struct{})}
	close(b.release)
	o := NewOutput("events", "bindings.kafka", b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	data, _, err := o.Invoke(ctx, "create", nil, nil)
	if err != nil || string(data) != "late" {
		t.Fatalf("Invoke = %q, %v; want the binding's answer", data, err)
	}
}

func TestInvokeRejectsUnknownOperation(t *testing.T) {
	o := NewOutput("events", "bindings.kafka", &stuckOutput{})
	_, _, err := o.Invoke(context.Background(), "get", nil, nil)
	if !errors.Is(err, errkind.ErrInvalidArgument) {
		t.Fatalf("unknown operation: %v, want INVALID_ARGUMENT", err)
	}
	if _, _, err := o.Invoke(context.Background(), "", nil, nil); !errors.Is(err, errkind.ErrInvalidArgument) {
		t.Fatalf("empty operation: %v, want INVALID_ARGUMENT", err)
	}
}

// A binding's required request metadata is checked before the component
// is called, so a missing one is INVALID_ARGUMENT naming it (contrib's
// Redis and MySQL bindings return unclassified errors for it).
func TestInvokeNamesMissingMetadata(t *testing.T) {
	b := &stuckOutput{release: make(chan struct{})}
	close(b.release)
	o := NewOutput("cache", "bindings.redis", b)
	_, _, err := o.Invoke(context.Background(), "create", []byte("v"), nil)
	if !errors.Is(err, errkind.ErrInvalidArgument) || !strings.Contains(err.Error(), "metadata.key") {
		t.Fatalf("create without key: %v, want INVALID_ARGUMENT naming metadata.key", err)
	}
	if _, _, err := o.Invoke(context.Background(), "create", []byte("v"), map[string]string{"key": "k"}); err != nil {
		t.Fatalf("create with key: %v", err)
	}
	other := NewOutput("events", "bindings.kafka", b)
	if _, _, err := other.Invoke(context.Background(), "create", nil, nil); err != nil {
		t.Fatalf("a binding without required metadata: %v", err)
	}
}
