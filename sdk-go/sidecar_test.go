package outrig

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// fakeSidecar is a minimal in-process Runtime server for testing the SDK's
// side of the protocol: unary calls are recorded and answered by a hook,
// streams follow the initial → ready → messages protocol and are driven by
// the test through session values.
type fakeSidecar struct {
	runtimev1.UnimplementedRuntimeServer

	mu       sync.Mutex
	calls    []call
	noRecord bool // benchmarks: do not keep calls
	onCall   func(ctx context.Context, method string, req proto.Message) (proto.Message, error)
	// rejectStream, if set, fails the next streams' initial with this error.
	rejectStream error
	// eventFirst makes Subscribe answer initial with an event instead of
	// ready (a protocol violation).
	eventFirst bool
	// noMultiplex: serve no Multiplex service (an older sidecar).
	noMultiplex bool

	subs     chan *session[runtimev1.SubscribeRequest, runtimev1.SubscribeResponse]
	bindings chan *session[runtimev1.SubscribeBindingRequest, runtimev1.SubscribeBindingResponse]
	serves   chan *session[runtimev1.ServeRequest, runtimev1.ServeResponse]
}

type call struct {
	method string
	req    proto.Message
	md     metadata.MD
}

func newFakeSidecar() *fakeSidecar {
	return &fakeSidecar{
		subs:     make(chan *session[runtimev1.SubscribeRequest, runtimev1.SubscribeResponse], 16),
		bindings: make(chan *session[runtimev1.SubscribeBindingRequest, runtimev1.SubscribeBindingResponse], 16),
		serves:   make(chan *session[runtimev1.ServeRequest, runtimev1.ServeResponse], 16),
	}
}

func (f *fakeSidecar) setOnCall(fn func(ctx context.Context, method string, req proto.Message) (proto.Message, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onCall = fn
}

func (f *fakeSidecar) setRejectStream(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rejectStream = err
}

// lastCall returns the last unary call received.
func (f *fakeSidecar) lastCall(t *testing.T) call {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		t.Fatal("the sidecar received no call")
	}
	return f.calls[len(f.calls)-1]
}

func unary[Resp proto.Message](f *fakeSidecar, ctx context.Context, method string, req proto.Message, empty Resp) (Resp, error) {
	f.mu.Lock()
	if !f.noRecord {
		md, _ := metadata.FromIncomingContext(ctx)
		f.calls = append(f.calls, call{method: method, req: req, md: md})
	}
	hook := f.onCall
	f.mu.Unlock()
	if hook != nil {
		resp, err := hook(ctx, method, req)
		if err != nil {
			var zero Resp
			return zero, err
		}
		if resp != nil {
			return resp.(Resp), nil
		}
	}
	return empty, nil
}

func (f *fakeSidecar) Invoke(ctx context.Context, r *runtimev1.InvokeRequest) (*runtimev1.InvokeResponse, error) {
	return unary(f, ctx, "Invoke", r, &runtimev1.InvokeResponse{})
}
func (f *fakeSidecar) GetState(ctx context.Context, r *runtimev1.GetStateRequest) (*runtimev1.GetStateResponse, error) {
	return unary(f, ctx, "GetState", r, &runtimev1.GetStateResponse{})
}
func (f *fakeSidecar) GetBulkState(ctx context.Context, r *runtimev1.GetBulkStateRequest) (*runtimev1.GetBulkStateResponse, error) {
	return unary(f, ctx, "GetBulkState", r, &runtimev1.GetBulkStateResponse{})
}
func (f *fakeSidecar) SaveState(ctx context.Context, r *runtimev1.SaveStateRequest) (*runtimev1.SaveStateResponse, error) {
	return unary(f, ctx, "SaveState", r, &runtimev1.SaveStateResponse{})
}
func (f *fakeSidecar) DeleteState(ctx context.Context, r *runtimev1.DeleteStateRequest) (*runtimev1.DeleteStateResponse, error) {
	return unary(f, ctx, "DeleteState", r, &runtimev1.DeleteStateResponse{})
}
func (f *fakeSidecar) DeleteBulkState(ctx context.Context, r *runtimev1.DeleteBulkStateRequest) (*runtimev1.DeleteBulkStateResponse, error) {
	return unary(f, ctx, "DeleteBulkState", r, &runtimev1.DeleteBulkStateResponse{})
}
func (f *fakeSidecar) ExecuteStateTransaction(ctx context.Context, r *runtimev1.ExecuteStateTransactionRequest) (*runtimev1.ExecuteStateTransactionResponse, error) {
	return unary(f, ctx, "ExecuteStateTransaction", r, &runtimev1.ExecuteStateTransactionResponse{})
}
func (f *fakeSidecar) Publish(ctx context.Context, r *runtimev1.PublishRequest) (*runtimev1.PublishResponse, error) {
	return unary(f, ctx, "Publish", r, &runtimev1.PublishResponse{})
}
func (f *fakeSidecar) BulkPublish(ctx context.Context, r *runtimev1.BulkPublishRequest) (*runtimev1.BulkPublishResponse, error) {
	return unary(f, ctx, "BulkPublish", r, &runtimev1.BulkPublishResponse{})
}
func (f *fakeSidecar) InvokeBinding(ctx context.Context, r *runtimev1.InvokeBindingRequest) (*runtimev1.InvokeBindingResponse, error) {
	return unary(f, ctx, "InvokeBinding", r, &runtimev1.InvokeBindingResponse{})
}
func (f *fakeSidecar) GetMetadata(ctx context.Context, r *runtimev1.GetMetadataRequest) (*runtimev1.GetMetadataResponse, error) {
	return unary(f, ctx, "GetMetadata", r, &runtimev1.GetMetadataResponse{})
}

// session is one open stream as the fake sidecar sees it.
type session[Req, Resp any] struct {
	first *Req        // the app's initial message
	md    metadata.MD // the stream's incoming metadata
	push  chan *Resp  // the test sends messages to the app here
	got   chan *Req   // messages from the app after the first
	end   chan error  // the test ends the stream with this status
	done  chan struct{}
}

func (s *session[Req, Resp]) send(t *testing.T, m *Resp) {
	t.Helper()
	select {
	case s.push <- m:
	case <-s.done:
		t.Fatal("stream already ended")
	}
}

// next waits for the app's next message.
func (s *session[Req, Resp]) next(t *testing.T) *Req {
	t.Helper()
	select {
	case m := <-s.got:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message from the app within 5s")
		return nil
	}
}

func runSession[Req, Resp any](f *fakeSidecar, s grpc.BidiStreamingServer[Req, Resp], ready *Resp, isInitial func(*Req) bool, out chan<- *session[Req, Resp]) error {
	first, err := s.Recv()
	if err != nil {
		return err
	}
	if !isInitial(first) {
		return status.Error(codes.InvalidArgument, "initial: the first message must be initial")
	}
	f.mu.Lock()
	reject := f.rejectStream
	f.mu.Unlock()
	if reject != nil {
		return reject
	}
	if err := s.Send(ready); err != nil {
		return err
	}
	md, _ := metadata.FromIncomingContext(s.Context())
	sess := &session[Req, Resp]{
		first: first, md: md,
		push: make(chan *Resp), got: make(chan *Req, 256), end: make(chan error, 1), done: make(chan struct{}),
	}
	defer close(sess.done)
	out <- sess
	go func() {
		for {
			m, err := s.Recv()
			if err != nil {
				return
			}
			sess.got <- m
		}
	}()
	for {
		select {
		case m := <-sess.push:
			if err := s.Send(m); err != nil {
				return err
			}
		case err := <-sess.end:
			return err
		case <-s.Context().Done():
			return s.Context().Err()
		}
	}
}

func (f *fakeSidecar) Subscribe(s grpc.BidiStreamingServer[runtimev1.SubscribeRequest, runtimev1.SubscribeResponse]) error {
	ready := &runtimev1.SubscribeResponse{Message: &runtimev1.SubscribeResponse_Ready{Ready: &runtimev1.SubscribeReady{}}}
	f.mu.Lock()
	if f.eventFirst {
		ready = topicEvent("e0", "x")
	}
	f.mu.Unlock()
	return runSession(f, s, ready, func(r *runtimev1.SubscribeRequest) bool { return r.GetInitial() != nil }, f.subs)
}

func (f *fakeSidecar) SubscribeBinding(s grpc.BidiStreamingServer[runtimev1.SubscribeBindingRequest, runtimev1.SubscribeBindingResponse]) error {
	ready := &runtimev1.SubscribeBindingResponse{Message: &runtimev1.SubscribeBindingResponse_Ready{Ready: &runtimev1.SubscribeReady{}}}
	return runSession(f, s, ready, func(r *runtimev1.SubscribeBindingRequest) bool { return r.GetInitial() != nil }, f.bindings)
}

func (f *fakeSidecar) Serve(s grpc.BidiStreamingServer[runtimev1.ServeRequest, runtimev1.ServeResponse]) error {
	ready := &runtimev1.ServeResponse{Message: &runtimev1.ServeResponse_Ready{Ready: &runtimev1.SubscribeReady{}}}
	return runSession(f, s, ready, func(r *runtimev1.ServeRequest) bool { return r.GetInitial() != nil }, f.serves)
}

// waitSession waits for the next stream the app opens.
func waitSession[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("the app opened no stream within 5s")
		var zero T
		return zero
	}
}

// testServer is a fake sidecar listening on a Unix socket.
type testServer struct {
	fake *fakeSidecar
	srv  *grpc.Server
	path string         // socket path
	addr string         // unix:///path
	mux  *fakeMultiplex // nil with fakeSidecar.noMultiplex
}

// startServer serves f on a Unix socket at path ("" for a fresh one) and
// stops it at the end of the test.
func startServer(t testing.TB, f *fakeSidecar, path string) *testServer {
	t.Helper()
	if path == "" {
		path = filepath.Join(shortTempDir(t), "s.sock")
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		t.Fatalf("listen %s: %v", path, err)
	}
	srv := grpc.NewServer()
	runtimev1.RegisterRuntimeServer(srv, f)
	ts := &testServer{fake: f, srv: srv, path: path, addr: "unix://" + path}
	if !f.noMultiplex {
		ts.mux = newFakeMultiplex(t, f)
		runtimev1.RegisterMultiplexServer(srv, ts.mux)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return ts
}

// shortTempDir is a temp dir with a short path: Unix socket paths are
// limited to about 100 bytes and t.TempDir's can be longer.
func shortTempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "outrig-sdk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// newTestClient starts a fake sidecar and a client connected to it.
func newTestClient(t *testing.T, opts ...Option) (*Client, *testServer) {
	t.Helper()
	ts := startServer(t, newFakeSidecar(), "")
	c, err := NewClient(context.Background(), append([]Option{WithAddress(ts.addr)}, opts...)...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, ts
}

// checkNoLeaks fails the test if goroutines running SDK code (or this test
// file's server code) outlive it. Call it first, so that its cleanup runs
// after every other cleanup (servers stopped, clients closed). Goroutines
// that were already running when it was called (TestMain's example
// sidecar client, which serves for the whole run) are not the test's.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	before := map[string]bool{}
	for _, g := range sdkGoroutines() {
		before[goroutineID(g)] = true
	}
	t.Cleanup(func() {
		var leaked []string
		for deadline := time.Now().Add(3 * time.Second); ; {
			leaked = leaked[:0]
			for _, g := range sdkGoroutines() {
				if !before[goroutineID(g)] {
					leaked = append(leaked, g)
				}
			}
			if len(leaked) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(leaked) > 0 {
			t.Errorf("%d goroutine(s) leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
	})
}

// goroutineID is the "goroutine N" header of one goroutine's stack dump.
func goroutineID(stack string) string {
	head, _, _ := strings.Cut(stack, " [")
	return head
}

func sdkGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/outrig/outrig/sdk-go.") &&
			!strings.Contains(g, "testing.tRunner") && !strings.Contains(g, "sdkGoroutines") {
			out = append(out, g)
		}
	}
	return out
}

// topicEvent is an event message with id and data.
func topicEvent(id, data string) *runtimev1.SubscribeResponse {
	return &runtimev1.SubscribeResponse{Message: &runtimev1.SubscribeResponse_Event{Event: &runtimev1.TopicEvent{
		Id: id, Data: []byte(data), Topic: "paid", PubsubName: "events", Attempt: 1,
	}}}
}

// invocation is an invocation message.
func invocation(id uint64, method, data string) *runtimev1.ServeResponse {
	return &runtimev1.ServeResponse{Message: &runtimev1.ServeResponse_Invocation{Invocation: &runtimev1.Invocation{
		Id: id, Method: method, Data: []byte(data),
	}}}
}
