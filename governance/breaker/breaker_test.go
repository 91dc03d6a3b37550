package breaker

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/failure"
)

const ms = int64(time.Millisecond)

type httpErr int

func (e httpErr) Error() string   { return fmt.Sprintf("http %d", int(e)) }
func (e httpErr) HTTPStatus() int { return int(e) }

func mustNew(t *testing.T, cfg Config) *Breaker {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// call runs one call through the breaker at now, ending with err after rtt.
func call(t *testing.T, b *Breaker, now int64, rtt int64, err error) bool {
	t.Helper()
	tk, _, ok := b.Allow(now)
	if !ok {
		return false
	}
	b.Done(tk, now+rtt, rtt, failure.Classify(err))
	return true
}

var errDown = fmt.Errorf("redis: %w", errkind.ErrUnavailable)

func TestBreakerOpensAtThresholdNotBelowMinCalls(t *testing.T) {
	tests := []struct {
		name      string
		successes int
		failures  int
		wantState State
	}{
		{"below min calls, all failing", 0, 9, Closed},
		{"at min calls, rate exactly at threshold", 5, 5, Open},
		{"at min calls, just under threshold", 6, 4, Closed},
		{"above min calls, over threshold", 4, 8, Open},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := mustNew(t, Config{MinCalls: 10, FailureRateThreshold: 0.5})
			now := int64(0)
			for range tc.successes {
				call(t, b, now, ms, nil)
				now += ms
			}
			for range tc.failures {
				call(t, b, now, ms, errDown)
				now += ms
			}
			if got := b.State(); got != tc.wantState {
				t.Fatalf("state %v, want %v", got, tc.wantState)
			}
		})
	}
}

func TestBreakerCountsOnlyBackendFailures(t *testing.T) {
	tests := []struct {
		err  error
		open bool
	}{
		{errDown, true},
		{fmt.Errorf("op: %w", errkind.ErrDeadlineExceeded), true},
		{status.Error(codes.Internal, "boom"), true},
		{status.Error(codes.Unknown, "?"), true},
		{httpErr(503), true},
		{errors.New("unclassified"), true},
		{fmt.Errorf("get: %w", errkind.ErrNotFound), false},
		{fmt.Errorf("bad: %w", errkind.ErrInvalidArgument), false},
		{fmt.Errorf("set: %w", errkind.ErrEtagMismatch), false},
		{status.Error(codes.NotFound, "no"), false},
		{status.Error(codes.InvalidArgument, "no"), false},
		{httpErr(404), false},
		{httpErr(400), false},
		{httpErr(429), false},
	}
	for _, tc := range tests {
		t.Run(tc.err.Error(), func(t *testing.T) {
			b := mustNew(t, Config{MinCalls: 5, FailureRateThreshold: 0.5})
			for i := range 10 {
				call(t, b, int64(i)*ms, ms, tc.err)
			}
			if got := b.State() == Open; got != tc.open {
				t.Fatalf("after 10 calls failing with %v: open=%v, want %v", tc.err, got, tc.open)
			}
		})
	}
}

func TestBreakerSlowCallRate(t *testing.T) {
	b := mustNew(t, Config{MinCalls: 4, SlowCallDuration: 100 * time.Millisecond, SlowCallRateThreshold: 0.5})
	call(t, b, 0, 10*ms, nil)
	call(t, b, ms, 10*ms, nil)
	call(t, b, 2*ms, 150*ms, nil)
	if b.State() != Closed {
		t.Fatal("opened below min calls")
	}
	call(t, b, 3*ms, 100*ms, nil) // exactly the slow duration counts as slow
	if b.State() != Open {
		t.Fatalf("state %v after 2 slow of 4, want open", b.State())
	}
}

func TestBreakerForgetsFailuresOutsideWindow(t *testing.T) {
	b := mustNew(t, Config{Window: 10 * time.Second, Buckets: 10, MinCalls: 10, FailureRateThreshold: 0.5})
	for i := range 8 {
		call(t, b, int64(i)*ms, ms, errDown)
	}
	later := int64(11 * time.Second)
	for i := range 4 {
		call(t, b, later+int64(i)*ms, ms, nil)
	}
	for i := range 5 {
		call(t, b, later+int64(10+i)*ms, ms, errDown)
	}
	// In the window: 4 successes + 5 failures = 9 < min calls.
	if b.State() != Closed {
		t.Fatal("old failures counted after they left the window")
	}
}

func TestBreakerLifecycle(t *testing.T) {
	var seen []State
	sleep := 5 * time.Second
	b := mustNew(t, Config{MinCalls: 2, FailureRateThreshold: 0.5, SleepWindow: sleep, HalfOpenProbes: 2,
		OnState: func(s State) { seen = append(seen, s) }})
	call(t, b, 0, ms, errDown)
	call(t, b, ms, ms, errDown)
	if b.State() != Open {
		t.Fatal("not open")
	}
	openedAt := 2 * ms // ended at 1ms + 1ms rtt

	// Open: rejected with the time left of the sleep window.
	_, after, ok := b.Allow(openedAt + int64(2*time.Second))
	if ok || after != 3*time.Second {
		t.Fatalf("open breaker: ok=%v retryAfter=%v, want rejected with 3s", ok, after)
	}

	// After the sleep window: half-open admits exactly 2 probes.
	now := openedAt + int64(sleep)
	p1, _, ok1 := b.Allow(now)
	p2, _, ok2 := b.Allow(now)
	_, _, ok3 := b.Allow(now)
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("half-open admitted %v %v %v, want two probes then rejection", ok1, ok2, ok3)
	}
	if b.State() != HalfOpen {
		t.Fatalf("state %v, want half-open", b.State())
	}
	// A probe that never ran gives its slot back.
	b.Cancel(p2)
	p3, _, ok := b.Allow(now)
	if !ok {
		t.Fatal("cancelled probe slot not given back")
	}
	b.Done(p1, now+ms, ms, failure.Success)
	if b.State() != HalfOpen {
		t.Fatal("closed before all probes succeeded")
	}
	b.Done(p3, now+ms, ms, failure.Success)
	if b.State() != Closed {
		t.Fatalf("state %v after all probes succeeded, want closed", b.State())
	}
	// Closed again with an empty window: one failure does not reopen.
	call(t, b, now+2*ms, ms, errDown)
	if b.State() != Closed {
		t.Fatal("window not reset on close")
	}

	// Reopen, then a failed probe opens it again for a full sleep window.
	call(t, b, now+3*ms, ms, errDown)
	if b.State() != Open {
		t.Fatal("not reopened")
	}
	now2 := now + 4*ms + int64(sleep)
	p, _, ok := b.Allow(now2)
	if !ok {
		t.Fatal("no probe after sleep window")
	}
	b.Done(p, now2+ms, ms, failure.Failure)
	_, after, ok = b.Allow(now2 + ms)
	if ok || after != sleep {
		t.Fatalf("after failed probe: ok=%v retryAfter=%v, want rejected for %v", ok, after, sleep)
	}
	want := []State{Open, HalfOpen, Closed, Open, HalfOpen, Open}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("transitions %v, want %v", seen, want)
	}
}

func TestBreakerIgnoresResultsFromOlderGeneration(t *testing.T) {
	b := mustNew(t, Config{MinCalls: 2, FailureRateThreshold: 0.5, SleepWindow: time.Second, HalfOpenProbes: 1})
	old, _, _ := b.Allow(0) // in flight across the transitions below
	call(t, b, 0, ms, errDown)
	call(t, b, 0, ms, errDown)
	now := int64(2 * time.Second)
	p, _, ok := b.Allow(now)
	if !ok {
		t.Fatal("no probe")
	}
	b.Done(old, now, now, failure.Failure) // must not reopen the half-open breaker
	if b.State() != HalfOpen {
		t.Fatalf("stale result changed state to %v", b.State())
	}
	b.Done(p, now+ms, ms, failure.Success)
	if b.State() != Closed {
		t.Fatalf("state %v, want closed", b.State())
	}
}

func TestBreakerConfigErrors(t *testing.T) {
	tests := []struct {
		cfg   Config
		field string
	}{
		{Config{}, "failure_rate_threshold"},
		{Config{FailureRateThreshold: 1.5}, "failure_rate_threshold"},
		{Config{SlowCallRateThreshold: 0.5}, "slow_call_duration"},
		{Config{FailureRateThreshold: 0.5, MinCalls: -1}, "min_calls"},
		{Config{FailureRateThreshold: 0.5, SleepWindow: -time.Second}, "sleep_window"},
	}
	for _, tc := range tests {
		_, err := New(tc.cfg)
		if !errors.Is(err, errkind.ErrInvalidArgument) || !contains(err.Error(), tc.field) {
			t.Errorf("New(%+v): %v, want invalid argument naming %s", tc.cfg, err, tc.field)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestBreakerClosedPathDoesNotAllocate(t *testing.T) {
	b := mustNew(t, Config{FailureRateThreshold: 0.5})
	now := int64(0)
	n := testing.AllocsPerRun(1000, func() {
		now += 1000
		tk, _, _ := b.Allow(now)
		b.Done(tk, now+100, 100, failure.Success)
	})
	if n != 0 {
		t.Fatalf("closed path allocates %v times per call", n)
	}
}
