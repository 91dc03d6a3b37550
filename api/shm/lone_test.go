package shm

import (
	"context"
	"sync"
	"testing"
	"time"
)

// slowEcho echoes after sleeping d: a handler that waits on a backend.
func slowEcho(d time.Duration) Handler {
	return HandlerFunc(func(_ context.Context, _ uint16, req []byte) ([]byte, error) {
		time.Sleep(d)
		return req, nil
	})
}

func callN(t *testing.T, c *ClientConn, n int, msg string) {
	t.Helper()
	for i := 0; i < n; i++ {
		resp, err := c.Call(context.Background(), MethodGetState, []byte(msg))
		if err != nil || string(resp) != msg {
			t.Fatalf("call %d: %q, %v", i, resp, err)
		}
	}
}

// With LoneSpin, the slow calls of a lone sequential caller run on the
// reader's goroutine; without it, or while LoneOnlyIf says no, never.
func TestLoneSlowCallsRunOnTheReader(t *testing.T) {
	checkLeaks(t)
	never := func() bool { return false }
	for _, opts := range []ServerOptions{{}, {LoneSpin: time.Second}, {LoneSpin: time.Second, LoneOnlyIf: never}} {
		s := startServer(t, opts, slowEcho(200*time.Microsecond))
		c := dial(t, s.Addr(), DialOptions{})
		callN(t, c, 40, "x")
		got := s.Stats().LoneRuns
		switch on := opts.LoneSpin > 0 && opts.LoneOnlyIf == nil; {
		case !on && got != 0:
			t.Errorf("LoneSpin %v, LoneOnlyIf set %v: %d lone runs, want 0", opts.LoneSpin, opts.LoneOnlyIf != nil, got)
		case on && got < 30:
			// The first calls run inline as fast ones until their cost is known.
			t.Errorf("LoneSpin %v: %d of 40 sequential slow calls ran lone, want at least 30", opts.LoneSpin, got)
		}
	}
}

// Callers whose calls overlap are served as without LoneSpin.
func TestOverlappingCallersDoNotRunLone(t *testing.T) {
	checkLeaks(t)
	s := startServer(t, ServerOptions{LoneSpin: time.Second}, slowEcho(200*time.Microsecond))
	c := dial(t, s.Addr(), DialOptions{})
	const callers, each = 8, 25
	var wg sync.WaitGroup
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			callN(t, c, each, "y")
		}()
	}
	wg.Wait()
	if got := s.Stats().LoneRuns; got*10 >= callers*each {
		t.Errorf("%d of %d overlapping calls ran lone", got, callers*each)
	}
}

// A lone call that blocks keeps the reader busy only for LoneSpin: another
// caller's request is then read and answered.
func TestLoneCallThatBlocksIsRescued(t *testing.T) {
	checkLeaks(t)
	b := newBlocker(200 * time.Microsecond)
	s := startServer(t, ServerOptions{LoneSpin: 2 * time.Millisecond}, b)
	c := dial(t, s.Addr(), DialOptions{})
	callN(t, c, 20, "slow")
	before := s.Stats().LoneRuns
	blocked := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), MethodGetState, []byte("block"))
		blocked <- err
	}()
	<-b.entered
	if s.Stats().LoneRuns == before {
		t.Fatal("the blocking call did not run lone; the test needs it to")
	}
	servedWhileBlocked(t, s, c, 5, "a lone call", b, blocked)
}
