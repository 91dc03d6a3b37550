package shm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestEchoSizes(t *testing.T) {
	checkLeaks(t)
	s := startServer(t, ServerOptions{}, echo)
	c := dial(t, s.Addr(), DialOptions{AppID: "sizes"})
	// 0 bytes, sub-frame, exactly one frame, several fragments, 1 MiB.
	maxPayload := defaultMaxFrameCap - FrameHeaderSize
	for _, n := range []int{0, 1, 100, 4096, maxPayload, maxPayload + 1, 3*maxPayload + 17, 1 << 20} {
		req := payloadFor(uint64(n), n)
		resp, err := c.Call(context.Background(), MethodGetState, req)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(resp, req) {
			t.Fatalf("%d bytes: response of %d bytes differs", n, len(resp))
		}
	}
}

// transform is what the concurrency handler answers: the request reversed,
// prefixed with the method id, so a reply delivered to the wrong caller or
// for the wrong method is detected.
func transform(method uint16, req []byte) []byte {
	out := binary.LittleEndian.AppendUint16(nil, method)
	for i := len(req) - 1; i >= 0; i-- {
		out = append(out, req[i])
	}
	return out
}

func TestConcurrentCallersGetTheirOwnReplies(t *testing.T) {
	checkLeaks(t)
	s := startServer(t, ServerOptions{}, HandlerFunc(func(_ context.Context, m uint16, req []byte) ([]byte, error) {
		return transform(m, req), nil
	}))
	c := dial(t, s.Addr(), DialOptions{AppID: "many"})
	const callers, calls = 64, 1000
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := 0; g < callers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				method := uint16(1 + (g+i)%11)
				req := fmt.Appendf(nil, "caller %d call %d %s", g, i, bytes.Repeat([]byte{'x'}, (g*31+i)%300))
				resp, err := c.Call(context.Background(), method, req)
				if err != nil {
					errs <- fmt.Errorf("caller %d call %d: %w", g, i, err)
					return
				}
				if want := transform(method, req); !bytes.Equal(resp, want) {
					errs <- fmt.Errorf("caller %d call %d: got %q, want %q", g, i, resp, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := s.Stats(); st.Calls != callers*calls {
		t.Errorf("server handled %d calls, want %d", st.Calls, callers*calls)
	}
}

// Tiny rings, messages many times larger than a ring, one handler at a time:
// both rings fill, both sides wait for space, nothing is lost or reordered.
func TestBackPressureTinyRings(t *testing.T) {
	checkLeaks(t)
	for _, spin := range []time.Duration{-1, 0} {
		t.Run(fmt.Sprintf("spin=%v", spin), func(t *testing.T) {
			s := startServer(t, ServerOptions{DefaultRingSize: MinRingSize, MaxConcurrentCalls: 1, Spin: spin},
				HandlerFunc(func(_ context.Context, m uint16, req []byte) ([]byte, error) {
					time.Sleep(100 * time.Microsecond)
					return transform(m, req), nil
				}))
			c := dial(t, s.Addr(), DialOptions{Spin: spin})
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 10; i++ {
						req := payloadFor(uint64(g*1000+i), 16<<10+g*1000+i) // 4+ rings worth of frames
						resp, err := c.Call(context.Background(), MethodSaveState, req)
						if err != nil {
							errs <- err
							return
						}
						if !bytes.Equal(resp, transform(MethodSaveState, req)) {
							errs <- fmt.Errorf("caller %d call %d: response differs", g, i)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func TestHandlerErrorsKeepTheirStatus(t *testing.T) {
	checkLeaks(t)
	detailed, err := status.New(codes.Aborted, "etag mismatch for key k").WithDetails(durationpb.New(3 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, ServerOptions{MaxMessageSize: 1 << 16}, HandlerFunc(func(ctx context.Context, m uint16, req []byte) ([]byte, error) {
		switch string(req) {
		case "aborted":
			return nil, detailed.Err()
		case "wrapped":
			return nil, fmt.Errorf("state store: %w", status.Error(codes.NotFound, "no store orders"))
		case "plain":
			return nil, errors.New("boom")
		case "deadline":
			return nil, context.DeadlineExceeded
		case "huge":
			return make([]byte, 1<<17), nil
		}
		return req, nil
	}))
	c := dial(t, s.Addr(), DialOptions{})
	tests := []struct {
		req      string
		wantCode codes.Code
		wantMsg  string
	}{
		{"aborted", codes.Aborted, "etag mismatch for key k"},
		// As in gRPC, the message of a wrapped status keeps the wrapping text.
		{"wrapped", codes.NotFound, "state store: rpc error: code = NotFound desc = no store orders"},
		{"plain", codes.Unknown, "boom"},
		{"deadline", codes.DeadlineExceeded, context.DeadlineExceeded.Error()},
		{"huge", codes.ResourceExhausted, "shm: response of 131072 bytes exceeds the max message size 65536"},
	}
	for _, tt := range tests {
		_, err := c.Call(context.Background(), MethodGetState, []byte(tt.req))
		st, ok := status.FromError(err)
		if !ok || st.Code() != tt.wantCode || st.Message() != tt.wantMsg {
			t.Errorf("%s: err = %v, want code %v message %q", tt.req, err, tt.wantCode, tt.wantMsg)
		}
	}
	_, err = c.Call(context.Background(), MethodGetState, []byte("aborted"))
	st := status.Convert(err)
	if len(st.Details()) != 1 {
		t.Fatalf("details = %v, want the duration detail", st.Details())
	}
	if d, ok := st.Details()[0].(*durationpb.Duration); !ok || d.AsDuration() != 3*time.Second {
		t.Errorf("detail = %v, want 3s", st.Details()[0])
	}
	if _, err := c.Call(context.Background(), MethodGetState, make([]byte, 1<<17)); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("oversized request: %v, want RESOURCE_EXHAUSTED", err)
	}
	if _, err := c.Call(context.Background(), 0, nil); status.Code(err) != codes.InvalidArgument {
		t.Errorf("method 0: %v, want INVALID_ARGUMENT", err)
	}
}

func TestCancelFreesCallerAndStopsHandler(t *testing.T) {
	checkLeaks(t)
	entered := make(chan struct{}, 1)
	handlerDone := make(chan error, 1)
	s := startServer(t, ServerOptions{}, HandlerFunc(func(ctx context.Context, m uint16, req []byte) ([]byte, error) {
		if string(req) != "block" {
			return req, nil
		}
		entered <- struct{}{}
		<-ctx.Done()
		handlerDone <- ctx.Err()
		return nil, ctx.Err()
	}))
	c := dial(t, s.Addr(), DialOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, MethodInvoke, []byte("block"))
		errc <- err
	}()
	<-entered
	start := time.Now()
	cancel()
	if err := <-errc; status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled call returned %v, want CANCELLED", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("cancelled caller freed after %v", d)
	}
	select {
	case err := <-handlerDone:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("handler ctx ended with %v, want Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("handler context not cancelled by the CANCEL frame")
	}
	waitFor(t, "cancel counted", time.Second, func() bool { return s.Stats().CallsCancelled == 1 })
	if resp, err := c.Call(context.Background(), MethodInvoke, []byte("after")); err != nil || string(resp) != "after" {
		t.Fatalf("call after cancel: %q, %v", resp, err)
	}
}

func TestDeadlineTravelsToHandler(t *testing.T) {
	checkLeaks(t)
	got := make(chan time.Duration, 1)
	s := startServer(t, ServerOptions{}, HandlerFunc(func(ctx context.Context, _ uint16, _ []byte) ([]byte, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			got <- -1
		} else {
			got <- time.Until(dl)
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}))
	c := dial(t, s.Addr(), DialOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := c.Call(ctx, MethodGetState, nil)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("err = %v, want DEADLINE_EXCEEDED", err)
	}
	if d := <-got; d <= 0 || d > 300*time.Millisecond {
		t.Fatalf("handler saw remaining deadline %v, want within (0, 300ms]", d)
	}
}

// A caller cancelled while its large request is half written is freed at
// once; the server discards the partial message and keeps serving.
func TestCancelMidMessage(t *testing.T) {
	checkLeaks(t)
	release := make(chan struct{})
	s := startServer(t, ServerOptions{DefaultRingSize: MinRingSize, MaxConcurrentCalls: 1}, HandlerFunc(func(ctx context.Context, _ uint16, req []byte) ([]byte, error) {
		if string(req) == "hold" {
			<-release
		}
		return req, nil
	}))
	c := dial(t, s.Addr(), DialOptions{})
	holdErr := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), MethodInvoke, []byte("hold"))
		holdErr <- err
	}()
	waitFor(t, "handler running", time.Second, func() bool { return s.Stats().CallsInFlight == 1 })
	// The only handler slot is taken, so the server stops reading requests
	// and this one blocks after filling the request ring.
	ctx, cancel := context.WithCancel(context.Background())
	bigErr := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, MethodSaveState, make([]byte, 64<<10))
		bigErr <- err
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	cancel()
	if err := <-bigErr; status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled call: %v, want CANCELLED", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("caller freed after %v", d)
	}
	close(release)
	if err := <-holdErr; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		req := payloadFor(uint64(i), 10<<10)
		resp, err := c.Call(context.Background(), MethodSaveState, req)
		if err != nil || !bytes.Equal(resp, req) {
			t.Fatalf("call %d after a cancelled partial message: %d bytes, %v", i, len(resp), err)
		}
	}
}

func TestPathModeUnlinksTheFile(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	s := startServer(t, ServerOptions{ShmDir: dir}, echo)
	c := dial(t, s.Addr(), DialOptions{NoDescriptorPassing: true})
	if resp, err := c.Call(context.Background(), MethodGetState, []byte("via a file")); err != nil || string(resp) != "via a file" {
		t.Fatalf("call: %q, %v", resp, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("segment file left in %s after the handshake: %v", dir, entries)
	}
}

func TestPeerInHandlerContext(t *testing.T) {
	checkLeaks(t)
	peers := make(chan Peer, 1)
	s := startServer(t, ServerOptions{}, HandlerFunc(func(ctx context.Context, _ uint16, _ []byte) ([]byte, error) {
		p, _ := PeerFromContext(ctx)
		peers <- p
		return nil, nil
	}))
	c := dial(t, s.Addr(), DialOptions{AppID: "checkout"})
	if _, err := c.Call(context.Background(), MethodGetMetadata, nil); err != nil {
		t.Fatal(err)
	}
	p := <-peers
	if p.AppID != "checkout" || p.PID != os.Getpid() || p.UID != os.Getuid() {
		t.Fatalf("peer = %+v, want app checkout pid %d uid %d", p, os.Getpid(), os.Getuid())
	}
}

func TestClientCloseFailsCallsAndFreesServerSide(t *testing.T) {
	checkLeaks(t)
	entered := make(chan struct{}, 1)
	s := startServer(t, ServerOptions{}, HandlerFunc(func(ctx context.Context, _ uint16, _ []byte) ([]byte, error) {
		entered <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}))
	c := dial(t, s.Addr(), DialOptions{})
	waitFor(t, "server to register the connection", 2*time.Second, func() bool {
		st := s.Stats()
		return st.Connections == 1 && st.MappedBytes == 4096+2*DefaultRingSize
	})
	errc := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), MethodInvoke, nil)
		errc <- err
	}()
	<-entered
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; status.Code(err) != codes.Unavailable {
		t.Fatalf("in-flight call: %v, want UNAVAILABLE", err)
	}
	if _, err := c.Call(context.Background(), MethodInvoke, nil); status.Code(err) != codes.Unavailable {
		t.Fatalf("call after Close: %v, want UNAVAILABLE", err)
	}
	waitFor(t, "server to free the connection", 2*time.Second, func() bool {
		st := s.Stats()
		return st.Connections == 0 && st.MappedBytes == 0 && st.CallsInFlight == 0
	})
}

func TestServerCloseFailsClients(t *testing.T) {
	checkLeaks(t)
	s, err := Listen(sockPath(t), ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(echo) }()
	c := dial(t, s.Addr(), DialOptions{})
	if _, err := c.Call(context.Background(), MethodGetState, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	select {
	case <-c.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("client not told that the server closed")
	}
	if status.Code(c.Err()) != codes.Unavailable {
		t.Fatalf("Err() = %v, want UNAVAILABLE", c.Err())
	}
	if _, err := c.Call(context.Background(), MethodGetState, nil); status.Code(err) != codes.Unavailable {
		t.Fatalf("call after server close: %v", err)
	}
}

func TestDialErrors(t *testing.T) {
	checkLeaks(t)
	_, err := Dial(context.Background(), sockPath(t), DialOptions{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("dial to nothing: %v, want UNAVAILABLE", err)
	}
	_, err = Dial(context.Background(), "/nonexistent", DialOptions{AppID: string(make([]byte, 300))})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("long app id: %v, want INVALID_ARGUMENT", err)
	}
}

func TestSpinDisabledStillWakes(t *testing.T) {
	checkLeaks(t)
	s := startServer(t, ServerOptions{Spin: -1}, echo)
	c := dial(t, s.Addr(), DialOptions{Spin: -1})
	for i := 0; i < 2000; i++ {
		req := fmt.Appendf(nil, "%d", i)
		resp, err := c.Call(context.Background(), MethodGetState, req)
		if err != nil || !bytes.Equal(resp, req) {
			t.Fatalf("call %d: %q, %v", i, resp, err)
		}
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	checkLeaks(t)
	path := sockPath(t)
	s1, err := Listen(path, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path, ServerOptions{}); err == nil {
		t.Fatal("second Listen on a live socket succeeded")
	}
	// Leave the socket file behind, as a killed sidecar does.
	s1.ln.SetUnlinkOnClose(false)
	s1.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	s2, err := Listen(path, ServerOptions{})
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	s2.Close()
}

// A handler that has been fast runs on the reader's goroutine; when one
// such call suddenly blocks, other calls of the connection are still served.
func TestInlineHandlerThatBlocksIsRescued(t *testing.T) {
	checkLeaks(t)
	b := newBlocker(0)
	s := startServer(t, ServerOptions{}, b)
	// Every method counts as fast, whatever the machine's load does to the
	// measured durations, so the blocking call runs inline.
	s.costs.fastBelow.Store(int64(time.Hour))
	c := dial(t, s.Addr(), DialOptions{})
	for i := 0; i < 50; i++ {
		if _, err := c.Call(context.Background(), MethodGetState, []byte("fast")); err != nil {
			t.Fatal(err)
		}
	}
	blocked := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), MethodGetState, []byte("block"))
		blocked <- err
	}()
	// Only once the handler runs: a request read in the same batch would
	// make the blocking one run on its own goroutine.
	<-b.entered
	servedWhileBlocked(t, s, c, 20, "an inline handler", b, blocked)
}

// blocker echoes after sleeping pause (if any), and holds a "block" request
// until released or cancelled.
type blocker struct {
	pause            time.Duration
	entered, release chan struct{}
}

func newBlocker(pause time.Duration) *blocker {
	return &blocker{pause: pause, entered: make(chan struct{}), release: make(chan struct{})}
}

func (b *blocker) Handle(ctx context.Context, _ uint16, req []byte) ([]byte, error) {
	if b.pause > 0 {
		time.Sleep(b.pause)
	}
	if string(req) == "block" {
		close(b.entered)
		select {
		case <-b.release:
		case <-ctx.Done():
		}
	}
	return req, nil
}

// servedWhileBlocked checks that n calls of c are answered while what
// blocks the reader's goroutine, and that a rescue freed it; then it
// releases the blocked call and waits for its answer.
func servedWhileBlocked(t *testing.T, s *Server, c *ClientConn, n int, what string, b *blocker, blocked chan error) {
	t.Helper()
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := c.Call(ctx, MethodGetState, []byte("other"))
		cancel()
		if err != nil || string(resp) != "other" {
			t.Fatalf("call %d while %s blocks: %q, %v", i, what, resp, err)
		}
	}
	if s.Stats().Rescues == 0 {
		t.Errorf("no rescue counted although %s blocked", what)
	}
	close(b.release)
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
}

// When the request ring is full and the server reads nothing, cancelled
// calls leave goroutines that wait for space to write their CANCEL frames
// and, nobody else reading, read the socket themselves. The sidecar going
// away must free them and let Close return.
func TestBlockedCancelWritersSeeServerClose(t *testing.T) {
	checkLeaks(t)
	release := make(chan struct{})
	s, err := Listen(sockPath(t), ServerOptions{DefaultRingSize: MinRingSize, MaxConcurrentCalls: 1, Spin: -1})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() {
		served <- s.Serve(HandlerFunc(func(ctx context.Context, _ uint16, req []byte) ([]byte, error) {
			<-release // ignores ctx: the only slot stays taken
			return nil, nil
		}))
	}()
	c, err := Dial(context.Background(), s.Addr(), DialOptions{Spin: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, MethodInvoke, []byte("hold the slot"))
		first <- err
	}()
	waitFor(t, "the slot to be taken", time.Second, func() bool { return s.Stats().CallsInFlight == 1 })
	cancel()
	<-first
	// Fill the request ring with requests the server cannot start.
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
			defer cancel()
			_, err := c.Call(ctx, MethodSaveState, make([]byte, 200))
			if status.Code(err) != codes.DeadlineExceeded {
				t.Errorf("call into a full ring: %v, want DEADLINE_EXCEEDED", err)
			}
		}()
	}
	wg.Wait()
	time.Sleep(50 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	waitFor(t, "the client to see the server close", 5*time.Second, func() bool { return c.Err() != nil })
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ClientConn.Close blocked after the server closed")
	}
}
