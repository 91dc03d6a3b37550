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
	// A generous LoneSpin, and a pause past loneQuiet before the blocking
	// call: on a loaded machine a 200 µs handler can average milliseconds,
	// and a handler descheduled between its reply and its return makes the
	// next request look overlapping.
	s := startServer(t, ServerOptions{LoneSpin: 20 * time.Millisecond}, b)
	c := dial(t, s.Addr(), DialOptions{})
	callN(t, c, 20, "slow")
	time.Sleep(2 * loneQuiet)
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

// With DialOptions.LoneSpin, a lone caller polls for its reply, so the
// server never rings a doorbell to wake it; without it, or while calls
// overlap, a reply that takes longer than the short spin finds its caller
// asleep and must wake it.
func TestLoneClientPollsForItsReply(t *testing.T) {
	checkLeaks(t)
	const calls = 40
	for _, lone := range []time.Duration{0, time.Second} {
		s := startServer(t, ServerOptions{}, slowEcho(time.Millisecond))
		c := dial(t, s.Addr(), DialOptions{LoneSpin: lone})
		callN(t, c, calls, "x")
		switch w := s.Stats().Wakeups; {
		case lone == 0 && w < calls*3/4:
			t.Errorf("LoneSpin 0: %d wake-ups for %d sequential 1 ms calls, want about one per call", w, calls)
		case lone > 0 && w > 2:
			t.Errorf("LoneSpin %v: %d wake-ups for %d sequential 1 ms calls, want none", lone, w, calls)
		}
	}

	s := startServer(t, ServerOptions{}, slowEcho(time.Millisecond))
	c := dial(t, s.Addr(), DialOptions{LoneSpin: time.Second})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); callN(t, c, calls, "y") }()
	}
	wg.Wait()
	if w := s.Stats().Wakeups; w < calls/2 {
		t.Errorf("two overlapping callers with LoneSpin: %d wake-ups for %d calls, want them to sleep as without LoneSpin", w, 2*calls)
	}
}

// A lone budget fallen to its floor spins the whole budget every
// probeEvery-th time, and is back at the maximum once a probe catches the
// answer; the budget of concurrent callers never probes.
func TestSpinBudgetProbesFromItsFloor(t *testing.T) {
	const most = 160 * time.Microsecond
	floor := most / spinFloorDiv
	b := spinBudget{most: most, cur: most, probe: true}
	for range 8 {
		b.next()
		b.timedOut()
	}
	if b.cur != floor {
		t.Fatalf("after 8 timed-out spins the budget is %v, want the floor %v", b.cur, floor)
	}
	probes := 0
	for range 4 * probeEvery {
		switch d := b.next(); d {
		case most:
			probes++
		case floor:
		default:
			t.Fatalf("a spin at the floor lasts %v, want %v or a probe of %v", d, floor, most)
		}
		b.timedOut()
	}
	if probes != 4 {
		t.Fatalf("%d probes in %d spins at the floor, want 4", probes, 4*probeEvery)
	}
	for b.next() != most {
		b.timedOut()
	}
	b.caught(most)
	if b.cur != most {
		t.Fatalf("after a probe caught the answer the budget is %v, want %v", b.cur, most)
	}

	c := spinBudget{most: most, cur: floor}
	for range 4 * probeEvery {
		if d := c.next(); d != floor {
			t.Fatalf("a budget without probe spun %v at its floor %v", d, floor)
		}
		c.timedOut()
	}
}
