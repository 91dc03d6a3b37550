// Package bindings is the bindings building block: output bindings invoked
// by operation, and input bindings whose events are delivered to the app's
// SubscribeBinding streams.
//
// An Output or Input wraps one initialised contrib binding for one app; it
// is safe for concurrent use. The runtime starts an Input's Read when the
// component is created and calls Close once when the component is replaced
// or the sidecar stops.
package bindings

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	cbindings "github.com/dapr/components-contrib/bindings"
	"github.com/google/uuid"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"

	"github.com/outrig/outrig/ackstream"
	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/internal/deadline"
)

// requiredMetadata lists, per binding type and operation, the request
// metadata the component cannot do without. components-contrib's bindings
// report a missing one as an unclassified error (which would reach the app
// as UNAVAILABLE, inviting a retry); checked here, the app gets
// INVALID_ARGUMENT naming the field.
var requiredMetadata = map[string]map[string][]string{
	"bindings.redis": {"create": {"key"}, "get": {"key"}, "delete": {"key"}, "increment": {"key"}},
	"bindings.mysql": {"exec": {"sql"}, "query": {"sql"}},
}

// Output is an output binding.
type Output struct {
	name, typ string
	impl      cbindings.OutputBinding
	ops       []cbindings.OperationKind
}

// NewOutput wraps an initialised output binding.
func NewOutput(name, typ string, impl cbindings.OutputBinding) *Output {
	return &Output{name: name, typ: typ, impl: impl, ops: impl.Operations()}
}

// Operations lists the operations the binding offers.
func (o *Output) Operations() []string {
	out := make([]string, len(o.ops))
	for i, op := range o.ops {
		out[i] = string(op)
	}
	return out
}

// Invoke runs one operation.
func (o *Output) Invoke(ctx context.Context, op string, data []byte, md map[string]string) ([]byte, map[string]string, error) {
	if op == "" {
		return nil, nil, errkind.Required("operation")
	}
	if !slices.Contains(o.ops, cbindings.OperationKind(op)) {
		return nil, nil, errkind.InvalidArgument("operation", "binding %q (%s) offers %v, not %q", o.name, o.typ, o.Operations(), op)
	}
	for _, k := range requiredMetadata[o.typ][op] {
		if md[k] == "" {
			return nil, nil, errkind.InvalidArgument("metadata."+k, "binding %q (%s) operation %s needs metadata %q", o.name, o.typ, op, k)
		}
	}
	// Bounded by ctx's deadline: contrib's Kafka binding, for one, sends
	// without watching its context.
	resp, err := deadline.Within(ctx, "binding "+o.name+" "+op, func(ctx context.Context) (*cbindings.InvokeResponse, error) {
		return o.impl.Invoke(ctx, &cbindings.InvokeRequest{Data: data, Metadata: md, Operation: cbindings.OperationKind(op)})
	})
	if err != nil {
		if errkind.Classified(err) {
			return nil, nil, fmt.Errorf("binding %q %s: %w", o.name, op, err)
		}
		return nil, nil, fmt.Errorf("binding %q %s: %w: %w", o.name, op, errkind.ErrUnavailable, err)
	}
	if resp == nil {
		return nil, nil, nil
	}
	return resp.Data, resp.Metadata, nil
}

// Close closes the binding (when it is not also an input: the Input closes a shared instance).
func (o *Output) Close() error { return o.impl.Close() }

// Consumer receives binding events: one SubscribeBinding stream.
type Consumer interface {
	Deliver(ctx context.Context, ev *runtimev1.BindingEvent) (runtimev1.EventStatus, error)
}

// NewStream adapts a stream's send function into a Consumer.
func NewStream(send func(*runtimev1.BindingEvent) error) *ackstream.Stream[*runtimev1.BindingEvent] {
	return ackstream.New(send, func(e *runtimev1.BindingEvent) string { return e.Id })
}

// Input is an input binding whose events go to attached consumers (round
// robin). An event that no consumer takes within Timeout, or that is
// answered RETRY, is returned to the component as an error (whether it is
// redelivered is the component's behaviour: Kafka redelivers, cron skips).
type Input struct {
	name, typ string
	impl      cbindings.InputBinding
	log       *slog.Logger
	Timeout   time.Duration

	mu      sync.Mutex
	list    []Consumer
	next    int
	changed chan struct{}
	cancel  context.CancelFunc
}

// NewInput wraps an initialised input binding; Start begins reading.
func NewInput(name, typ string, impl cbindings.InputBinding, log *slog.Logger) *Input {
	return &Input{name: name, typ: typ, impl: impl, log: log, Timeout: 30 * time.Second, changed: make(chan struct{})}
}

// Start calls the component's Read, which delivers in the background.
func (in *Input) Start() error {
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	if err := in.impl.Read(ctx, in.handle); err != nil {
		cancel()
		return fmt.Errorf("input binding %q read: %w", in.name, err)
	}
	return nil
}

// Attach adds a consumer; the returned func removes it.
func (in *Input) Attach(c Consumer) func() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.list = append(in.list, c)
	close(in.changed)
	in.changed = make(chan struct{})
	return func() {
		in.mu.Lock()
		defer in.mu.Unlock()
		for i, x := range in.list {
			if x == c {
				in.list = append(in.list[:i], in.list[i+1:]...)
				return
			}
		}
	}
}

func (in *Input) pick() (Consumer, <-chan struct{}) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.list) == 0 {
		return nil, in.changed
	}
	c := in.list[in.next%len(in.list)]
	in.next++
	return c, nil
}

func (in *Input) handle(ctx context.Context, r *cbindings.ReadResponse) ([]byte, error) {
	ev := &runtimev1.BindingEvent{Id: uuid.NewString(), Name: in.name, Data: r.Data, Metadata: r.Metadata}
	ctx, cancel := context.WithTimeout(ctx, in.Timeout)
	defer cancel()
	for {
		c, changed := in.pick()
		if c == nil {
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("input binding %q: no subscriber: %w", in.name, ctx.Err())
			}
		}
		st, err := c.Deliver(ctx, ev)
		if errors.Is(err, ackstream.ErrClosed) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if st == runtimev1.EventStatus_EVENT_STATUS_RETRY {
			return nil, fmt.Errorf("input binding %q: app asked to retry event %s", in.name, ev.Id)
		}
		return nil, nil
	}
}

// Close stops reading and closes the component.
func (in *Input) Close() error {
	if in.cancel != nil {
		in.cancel()
	}
	return in.impl.Close()
}
