package outrig

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

type serveSession = session[runtimev1.ServeRequest, runtimev1.ServeResponse]

func nextReply(t *testing.T, s *serveSession) *runtimev1.InvocationReply {
	t.Helper()
	m := s.next(t)
	if m.GetReply() == nil {
		t.Fatalf("app sent %v, want a reply", m)
	}
	return m.GetReply()
}

func TestServeDispatchesAndReplies(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t)
	var seen *Invocation
	handlers := Handlers{
		"Echo": func(_ context.Context, in *Invocation) (*Reply, error) {
			seen = in
			return &Reply{Data: in.Data, ContentType: "text/plain", Metadata: map[string]string{"x": "1"}}, nil
		},
		"Empty":   func(context.Context, *Invocation) (*Reply, error) { return nil, nil },
		"Missing": func(context.Context, *Invocation) (*Reply, error) { return nil, fmt.Errorf("order 7: %w", ErrNotFound) },
		"Denied": func(context.Context, *Invocation) (*Reply, error) {
			return nil, status.Error(codes.PermissionDenied, "no")
		},
		"Plain": func(context.Context, *Invocation) (*Reply, error) { return nil, errors.New("boom") },
		"Panic": func(context.Context, *Invocation) (*Reply, error) { panic("bug") },
	}
	// One at a time so that replies come back in order.
	st, err := c.StartServe(context.Background(), handlers, WithMaxConcurrentHandlers(1))
	if err != nil {
		t.Fatal(err)
	}
	s := waitSession(t, ts.fake.serves)
	if got, want := s.first.GetInitial().GetMethods(), []string{"Denied", "Echo", "Empty", "Missing", "Panic", "Plain"}; !slices.Equal(got, want) {
		t.Errorf("announced methods %q, want %q", got, want)
	}

	s.send(t, &runtimev1.ServeResponse{Message: &runtimev1.ServeResponse_Invocation{Invocation: &runtimev1.Invocation{
		Id: 41, Method: "Echo", Data: []byte("hi"), ContentType: "text/plain", Metadata: map[string]string{"h": "v"},
		CallerAppId: "checkout", HttpVerb: "GET",
	}}})
	want := &runtimev1.InvocationReply{Id: 41, Data: []byte("hi"), ContentType: "text/plain", Metadata: map[string]string{"x": "1"}}
	if got := nextReply(t, s); !proto.Equal(got, want) {
		t.Errorf("Echo reply = %v, want %v", got, want)
	}
	if seen.Method != "Echo" || seen.CallerAppID != "checkout" || seen.HTTPVerb != "GET" || seen.Metadata["h"] != "v" || seen.ContentType != "text/plain" {
		t.Errorf("invocation seen by handler = %+v", seen)
	}

	cases := []struct {
		method string
		code   codes.Code
		msg    string
	}{
		{"Empty", codes.OK, ""},
		{"Missing", codes.NotFound, "order 7: outrig: not found"},
		{"Denied", codes.PermissionDenied, "no"},
		{"Plain", codes.Unknown, "boom"},
		{"Panic", codes.Internal, "handler panic: bug"},
		{"Nope", codes.NotFound, `method "Nope" is not served`},
	}
	for i, tc := range cases {
		id := uint64(100 + i)
		s.send(t, invocation(id, tc.method, ""))
		r := nextReply(t, s)
		if r.GetId() != id || codes.Code(r.GetCode()) != tc.code || r.GetMessage() != tc.msg || len(r.GetData()) != 0 {
			t.Errorf("%s: reply = %v, want id %d code %v message %q", tc.method, r, id, tc.code, tc.msg)
		}
	}
	if err := st.Stop(); err != nil {
		t.Errorf("Stop = %v", err)
	}
}

// Invocations run concurrently up to the bound, and each reply carries the
// id of its invocation.
func TestServeConcurrencyAndIDs(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t)
	const n, calls = 2, 6
	var running, peak atomic.Int32
	gate := make(chan struct{})
	reached := make(chan struct{}, calls)
	mux := NewMux()
	mux.Handle("Slow", func(_ context.Context, in *Invocation) (*Reply, error) {
		cur := running.Add(1)
		for p := peak.Load(); cur > p && !peak.CompareAndSwap(p, cur); p = peak.Load() {
		}
		reached <- struct{}{}
		<-gate
		running.Add(-1)
		return &Reply{Data: append([]byte("re:"), in.Data...)}, nil
	})
	st, err := c.StartServe(context.Background(), mux, WithMaxConcurrentHandlers(n))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()
	s := waitSession(t, ts.fake.serves)
	go func() {
		for i := range calls {
			select {
			case s.push <- invocation(uint64(i+1), "Slow", fmt.Sprint(i+1)):
			case <-s.done:
				return
			}
		}
	}()
	for range n {
		<-reached
	}
	time.Sleep(100 * time.Millisecond)
	if p := peak.Load(); p != n {
		t.Errorf("peak concurrency %d, want %d", p, n)
	}
	close(gate)
	for range calls {
		r := nextReply(t, s)
		if string(r.GetData()) != fmt.Sprintf("re:%d", r.GetId()) {
			t.Errorf("reply id %d carries %q", r.GetId(), r.GetData())
		}
	}
}

// A Mux may change while Serve runs.
func TestMuxChangesWhileServing(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t)
	var mux Mux // the zero value is usable
	st, err := c.StartServe(context.Background(), &mux)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()
	s := waitSession(t, ts.fake.serves)
	s.send(t, invocation(1, "Late", ""))
	if r := nextReply(t, s); codes.Code(r.GetCode()) != codes.NotFound {
		t.Errorf("before Handle: %v", r)
	}
	mux.Handle("Late", func(context.Context, *Invocation) (*Reply, error) { return &Reply{Data: []byte("ok")}, nil })
	s.send(t, invocation(2, "Late", ""))
	if r := nextReply(t, s); r.GetCode() != 0 || string(r.GetData()) != "ok" {
		t.Errorf("after Handle: %v", r)
	}
	mux.Handle("Late", nil)
	s.send(t, invocation(3, "Late", ""))
	if r := nextReply(t, s); codes.Code(r.GetCode()) != codes.NotFound {
		t.Errorf("after removal: %v", r)
	}
}

func TestServeReconnectsAfterSidecarRestart(t *testing.T) {
	checkNoLeaks(t)
	fake := newFakeSidecar()
	ts := startServer(t, fake, "")
	c, err := NewClient(context.Background(), WithAddress(ts.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Serve(ctx, Handlers{"Ping": func(context.Context, *Invocation) (*Reply, error) {
			return &Reply{Data: []byte("pong")}, nil
		}}, fastReconnect)
	}()
	waitSession(t, fake.serves)
	ts.srv.Stop()
	startServer(t, fake, ts.path)
	s := waitSession(t, fake.serves)
	s.send(t, invocation(9, "Ping", ""))
	if r := nextReply(t, s); r.GetId() != 9 || string(r.GetData()) != "pong" {
		t.Errorf("reply after reconnect = %v", r)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel = %v", err)
	}
}
