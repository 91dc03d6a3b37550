package outrig

import (
	"context"
	"fmt"
	"log"
	"runtime/debug"
	"sort"
	"sync"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	"google.golang.org/grpc/codes"
)

// Invocation is one call addressed to this application, received by Serve.
type Invocation struct {
	Method      string
	Data        []byte
	ContentType string
	// Metadata is the caller's call metadata (headers).
	Metadata map[string]string
	// CallerAppID is the calling application's id.
	CallerAppID string
	HTTPVerb    string
}

// Reply is a handler's successful answer to an Invocation. A nil *Reply is
// an empty answer.
type Reply struct {
	Data        []byte
	ContentType string
	Metadata    map[string]string
}

// InvocationHandler answers one invocation. An error is sent to the caller
// as a gRPC status: the error's own status if it has one (status.Error,
// or an *Error from another Client call), else the code of the sentinel it
// wraps (e.g. fmt.Errorf("order %s: %w", id, ErrNotFound) → NOT_FOUND), else
// DEADLINE_EXCEEDED/CANCELED for context errors, else UNKNOWN; the message is
// the error's text. A panic is answered INTERNAL.
//
// Handlers run concurrently (see WithMaxConcurrentHandlers). The context is
// cancelled when the Serve stream ends.
type InvocationHandler func(ctx context.Context, in *Invocation) (*Reply, error)

// Router finds the handler of a method; nil means the method is unknown (the
// caller gets NOT_FOUND). Route is called concurrently. Handlers and *Mux
// are Routers. A Router that also has a Methods() []string method
// announces those methods to the sidecar (informational, shown by
// GetMetadata).
type Router interface {
	Route(method string) InvocationHandler
}

// Handlers is a fixed method → handler table; it must not be modified while
// Serve uses it.
type Handlers map[string]InvocationHandler

// Route implements Router.
func (h Handlers) Route(method string) InvocationHandler { return h[method] }

// Methods lists the methods, sorted.
func (h Handlers) Methods() []string {
	out := make([]string, 0, len(h))
	for m := range h {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// Mux is a method → handler table that may be changed while Serve runs.
// The zero value is an empty Mux ready to use.
type Mux struct {
	mu sync.RWMutex
	m  map[string]InvocationHandler
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{} }

// Handle registers fn for method, replacing any previous handler; a nil fn
// removes it.
func (m *Mux) Handle(method string, fn InvocationHandler) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if fn == nil {
		delete(m.m, method)
		return
	}
	if m.m == nil {
		m.m = make(map[string]InvocationHandler)
	}
	m.m[method] = fn
}

// Route implements Router.
func (m *Mux) Route(method string) InvocationHandler {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.m[method]
}

// Methods lists the registered methods, sorted.
func (m *Mux) Methods() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return Handlers(m.m).Methods()
}

// Serve receives the invocations other applications address to this one
// (through Invoke on their side) and dispatches each to the handler of its
// method, replying with the handler's answer. Invocations run concurrently,
// at most 64 at once unless WithMaxConcurrentHandlers says otherwise; an
// unknown method is answered NOT_FOUND.
//
// Serve blocks and reconnects exactly like Subscribe: it returns nil when ctx
// is done, reconnects with backoff when the sidecar is unreachable or
// restarts (unless WithoutReconnect), and returns other stream failures. Run
// it on its own goroutine, or use StartServe.
func (c *Client) Serve(ctx context.Context, router Router, opts ...StreamOption) error {
	cfg, attempt, err := c.servePrepare(router, opts)
	if err != nil {
		return err
	}
	return runLoop(ctx, cfg, false, attempt, nil)
}

// StartServe is Serve in the background: it returns once the sidecar has
// accepted the Serve stream, or with the error of that first attempt; see
// StartSubscribe.
func (c *Client) StartServe(ctx context.Context, router Router, opts ...StreamOption) (*Stream, error) {
	cfg, attempt, err := c.servePrepare(router, opts)
	if err != nil {
		return nil, err
	}
	return startLoop(ctx, cfg, attempt)
}

func (c *Client) servePrepare(router Router, opts []StreamOption) (*streamConfig, attemptFunc, error) {
	const op = "Serve"
	if router == nil {
		return nil, nil, invalidArg(op, "router", "is nil")
	}
	if h, ok := router.(Handlers); ok && h == nil {
		return nil, nil, invalidArg(op, "router", "is a nil Handlers map")
	}
	cfg, err := collectStreamOptions(op, defaultServeConcurrency, opts)
	if err != nil {
		return nil, nil, err
	}
	attempt := func(parent context.Context, ready func()) error {
		var methods []string
		if l, ok := router.(interface{ Methods() []string }); ok {
			methods = l.Methods()
		}
		initial := &runtimev1.ServeRequest{Message: &runtimev1.ServeRequest_Initial{Initial: &runtimev1.ServeInitial{Methods: methods}}}
		ctx, cancel := context.WithCancel(parent)
		defer cancel()
		st, err := handshake(ctx, op, c.t.serve, initial, func(m *runtimev1.ServeResponse) bool { return m.GetReady() != nil })
		if err != nil {
			return err
		}
		ready()
		p := newPool(cfg.concurrency)
		snd := &lockedSender[runtimev1.ServeRequest]{send: st.Send}
		for {
			m, err := st.Recv()
			if err != nil {
				cancel()
				p.wait()
				return recvErr(op, err)
			}
			inv := m.GetInvocation()
			if inv == nil {
				continue // ready again, or a message from a newer sidecar
			}
			p.run(ctx, func() {
				reply := dispatch(ctx, router, inv)
				if ctx.Err() == nil {
					// A failed Send means the stream broke; Recv reports why.
					_ = snd.Send(&runtimev1.ServeRequest{Message: &runtimev1.ServeRequest_Reply{Reply: reply}})
				}
			})
		}
	}
	return cfg, attempt, nil
}

// dispatch runs the handler of inv and builds the reply with the same id.
func dispatch(ctx context.Context, router Router, inv *runtimev1.Invocation) (reply *runtimev1.InvocationReply) {
	reply = &runtimev1.InvocationReply{Id: inv.GetId()}
	defer func() {
		if r := recover(); r != nil {
			log.Printf("outrig Serve: handler of %q panicked: %v\n%s", inv.GetMethod(), r, debug.Stack())
			reply = &runtimev1.InvocationReply{Id: inv.GetId(), Code: int32(codes.Internal), Message: fmt.Sprintf("handler panic: %v", r)}
		}
	}()
	h := router.Route(inv.GetMethod())
	if h == nil {
		reply.Code = int32(codes.NotFound)
		reply.Message = fmt.Sprintf("method %q is not served", inv.GetMethod())
		return reply
	}
	out, err := h(ctx, &Invocation{
		Method:      inv.GetMethod(),
		Data:        inv.GetData(),
		ContentType: inv.GetContentType(),
		Metadata:    inv.GetMetadata(),
		CallerAppID: inv.GetCallerAppId(),
		HTTPVerb:    inv.GetHttpVerb(),
	})
	if err != nil {
		c, msg := statusOf(err)
		if c == codes.OK {
			// A status error with code OK is not a failure to report as OK.
			c = codes.Unknown
		}
		reply.Code, reply.Message = int32(c), msg
		return reply
	}
	if out != nil {
		reply.Data, reply.ContentType, reply.Metadata = out.Data, out.ContentType, out.Metadata
	}
	return reply
}
