package adaptive

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/clock"
	"github.com/outrig/outrig/governance/failure"
)

const ms = int64(time.Millisecond)

// sim offers `offered` concurrent calls per sample window; the admitted ones
// all take rtt(admitted). It returns the limit after `windows` windows.
type sim struct {
	l   Limiter
	now int64
}

func (s *sim) run(t *testing.T, windows, offered int, rtt func(admitted int) int64) int {
	t.Helper()
	for range windows {
		admitted := 0
		for range offered {
			if s.l.Acquire(s.now) {
				admitted++
			}
		}
		s.now += 100 * ms
		for range admitted {
			s.l.Release(s.now, rtt(admitted), failure.Success)
		}
		if s.l.Inflight() != 0 {
			t.Fatalf("inflight %d after releasing every call", s.l.Inflight())
		}
	}
	return s.l.Limit()
}

func newG2(t *testing.T, cfg Config) Limiter {
	t.Helper()
	cfg.Algorithm = Gradient2Algorithm
	l, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func flat(int) int64 { return 10 * ms }

func TestGradient2GrowsWhileSaturatedAndLatencyIsFlat(t *testing.T) {
	var reported atomic.Int64
	l := newG2(t, Config{InitialLimit: 20, MaxLimit: 200, OnLimit: func(n int) { reported.Store(int64(n)) }})
	s := &sim{l: l}
	got := s.run(t, 50, 300, flat)
	if got <= 40 {
		t.Fatalf("limit %d after 50 saturated windows at flat latency, want > 40 (started at 20)", got)
	}
	if int(reported.Load()) != got {
		t.Fatalf("OnLimit last reported %d, limit is %d", reported.Load(), got)
	}
	if got := s.run(t, 500, 300, flat); got != 200 {
		t.Fatalf("limit %d, want capped at max 200", got)
	}
}

func TestGradient2ShrinksWhenLatencyRises(t *testing.T) {
	l := newG2(t, Config{InitialLimit: 100, MaxLimit: 100})
	s := &sim{l: l}
	s.run(t, 50, 1000, flat) // learn the baseline at the max
	before := l.Limit()
	after := s.run(t, 10, 1000, func(int) int64 { return 40 * ms })
	if after > before*3/4 {
		t.Fatalf("limit went %d -> %d after latency quadrupled, want at least a 25%% cut", before, after)
	}
	if after < 1 {
		t.Fatalf("limit %d below min", after)
	}
}

func TestGradient2DoesNotGrowWhenAppLimited(t *testing.T) {
	l := newG2(t, Config{InitialLimit: 20, MaxLimit: 1000})
	s := &sim{l: l}
	if got := s.run(t, 100, 9, flat); got > 20 {
		t.Fatalf("limit grew to %d with only 9 of 20 in flight", got)
	}
}

func TestGradient2RejectsAtLimit(t *testing.T) {
	l := newG2(t, Config{InitialLimit: 3})
	for i := range 3 {
		if !l.Acquire(0) {
			t.Fatalf("call %d under the limit rejected", i)
		}
	}
	if l.Acquire(0) {
		t.Fatal("call over the limit admitted")
	}
	l.Cancel()
	if !l.Acquire(0) {
		t.Fatal("cancelled slot not given back")
	}
}

func newBBRT(t *testing.T, cpu *atomic.Value, clk clock.Clock) Limiter {
	t.Helper()
	l, err := New(Config{Algorithm: BBRAlgorithm, CPUThreshold: 0.8, Window: time.Second, Buckets: 10, MaxLimit: 1000,
		CPU: CPUFunc(func(int64) float64 { return cpu.Load().(float64) })}, clk)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestBBRShedsOnlyWhenCPUIsHot(t *testing.T) {
	var cpu atomic.Value
	cpu.Store(0.3)
	clk := clock.NewFake()
	l := newBBRT(t, &cpu, clk)
	// One full window: 50 calls per 100ms bucket, each 20ms.
	now := int64(0)
	for range 10 {
		for range 50 {
			if !l.Acquire(now) {
				t.Fatal("rejected with a cold CPU")
			}
			l.Release(now+20*ms, 20*ms, failure.Success)
		}
		now += 100 * ms
	}
	// Cold CPU: no bound on concurrency.
	for i := range 100 {
		if !l.Acquire(now) {
			t.Fatalf("call %d rejected with a cold CPU", i)
		}
	}
	for range 100 {
		l.Cancel()
	}
	// Hot CPU: maxPass (50 per 100ms) × minRT (20ms) = 10 in flight.
	cpu.Store(0.95)
	admitted := 0
	for range 30 {
		if l.Acquire(now) {
			admitted++
		}
	}
	if admitted != 10 {
		t.Fatalf("hot CPU admitted %d concurrent calls, want maxPass×minRT = 10", admitted)
	}
	if l.Limit() != 10 {
		t.Fatalf("Limit() = %d, want 10", l.Limit())
	}
	for range admitted {
		l.Cancel()
	}
	// Cool again, but within the cool-down after the last drop: still bounded.
	cpu.Store(0.1)
	for range 10 {
		l.Acquire(now + 500*ms)
	}
	if l.Acquire(now + 500*ms) {
		t.Fatal("admitted over the bound during the cool-down")
	}
	// After the cool-down the CPU gate is open again.
	if !l.Acquire(now + 2000*ms) {
		t.Fatal("still shedding after the cool-down with a cold CPU")
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		cfg   Config
		field string
	}{
		{Config{}, "algorithm"},
		{Config{Algorithm: "vegas"}, "algorithm"},
		{Config{Algorithm: BBRAlgorithm}, "cpu"},
		{Config{Algorithm: Gradient2Algorithm, MinLimit: 10, MaxLimit: 5}, "max_limit"},
		{Config{Algorithm: BBRAlgorithm, CPU: CPUFunc(func(int64) float64 { return 0 }), CPUThreshold: 2}, "cpu_threshold"},
	}
	for _, tc := range tests {
		_, err := New(tc.cfg, nil)
		if !errors.Is(err, errkind.ErrInvalidArgument) {
			t.Errorf("New(%+v) = %v, want invalid argument naming %s", tc.cfg, err, tc.field)
		}
	}
}

func TestProcStatUsage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stat")
	write := func(user, system, idle, iowait int) {
		t.Helper()
		line := "cpu  " + strconv.Itoa(user) + " 0 " + strconv.Itoa(system) + " " + strconv.Itoa(idle) + " " + strconv.Itoa(iowait) + " 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"
		if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(100, 100, 800, 0)
	clk := clock.NewFake()
	p, err := NewProcStat(path, 250*time.Millisecond, clk)
	if err != nil {
		t.Fatal(err)
	}
	// +300 busy (200 user, 100 system), +100 idle/iowait: 75% busy.
	write(300, 200, 850, 50)
	if u := p.Usage(100 * ms); u != 0 {
		t.Fatalf("usage %v before the first interval, want 0 (no sample yet)", u)
	}
	if u := p.Usage(250 * ms); u != 0.75 {
		t.Fatalf("usage %v, want 0.75", u)
	}
	if _, err := NewProcStat(filepath.Join(t.TempDir(), "missing"), 0, clk); err == nil {
		t.Fatal("missing file accepted")
	}
	real, err := NewProcStat("/proc/stat", 0, nil)
	if err != nil {
		t.Fatalf("reading the real /proc/stat: %v", err)
	}
	if u := real.Usage(int64(time.Hour)); u < 0 || u > 1 {
		t.Fatalf("real usage %v out of [0,1]", u)
	}
}

func TestAcquireReleaseDoNotAllocate(t *testing.T) {
	var cpu atomic.Value
	cpu.Store(0.9)
	for _, l := range []Limiter{newG2(t, Config{}), newBBRT(t, &cpu, nil)} {
		now := int64(0)
		n := testing.AllocsPerRun(1000, func() {
			now += 1000
			if l.Acquire(now) {
				l.Release(now+500, 500, failure.Success)
			}
		})
		if n != 0 {
			t.Errorf("%T allocates %v per call", l, n)
		}
	}
}
