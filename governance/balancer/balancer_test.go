package balancer

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/clock"
)

func endpoints(n int) []Endpoint {
	eps := make([]Endpoint, n)
	for i := range eps {
		eps[i] = Endpoint{ID: fmt.Sprintf("inst-%d", i), Address: fmt.Sprintf("10.0.0.%d:50002", i+1)}
	}
	return eps
}

func newPicker(t *testing.T, cfg Config, clk clock.Clock, eps []Endpoint) *Picker {
	t.Helper()
	p, err := New(cfg, clk)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Update(eps); err != nil {
		t.Fatal(err)
	}
	return p
}

func pick(t *testing.T, p *Picker, key string) string {
	t.Helper()
	ep, done, err := p.Pick(key)
	if err != nil {
		t.Fatal(err)
	}
	done(nil)
	return ep.ID
}

var errDown = fmt.Errorf("callee: %w", errkind.ErrUnavailable)

func TestRoundRobinCyclesEvenly(t *testing.T) {
	p := newPicker(t, Config{}, nil, endpoints(3))
	counts := map[string]int{}
	for range 300 {
		counts[pick(t, p, "")]++
	}
	for id, n := range counts {
		if n != 100 {
			t.Fatalf("%s picked %d of 300, want 100 (counts %v)", id, n, counts)
		}
	}
}

// Calls that never finish pile up; load-aware policies spread them.
func TestLoadAwarePoliciesBalanceInflight(t *testing.T) {
	tests := []struct {
		policy  Policy
		maxSkew int64
	}{{LeastConnections, 1}, {P2C, 8}}
	for _, tc := range tests {
		t.Run(string(tc.policy), func(t *testing.T) {
			p := newPicker(t, Config{Policy: tc.policy}, nil, endpoints(5))
			for range 500 {
				if _, _, err := p.Pick(""); err != nil {
					t.Fatal(err)
				}
			}
			lo, hi := int64(math.MaxInt64), int64(0)
			for _, e := range p.set.Load().eps {
				lo, hi = min(lo, e.inflight.Load()), max(hi, e.inflight.Load())
			}
			if hi-lo > tc.maxSkew {
				t.Fatalf("in flight per endpoint from %d to %d, want a spread <= %d", lo, hi, tc.maxSkew)
			}
		})
	}
}

func TestLoadIsReleasedByDone(t *testing.T) {
	p := newPicker(t, Config{Policy: LeastConnections}, nil, endpoints(2))
	slow, _, _ := p.Pick("")
	for range 10 {
		ep, done, _ := p.Pick("")
		if ep.ID == slow.ID {
			t.Fatal("picked the endpoint that has a call in flight while the other is idle")
		}
		done(nil)
	}
}

func keys(n int) []string {
	k := make([]string, n)
	for i := range k {
		k[i] = fmt.Sprintf("order-%d", i)
	}
	return k
}

// Hash policies: a key always goes to the same endpoint, load spreads
// evenly, and when one of N endpoints leaves only its ~1/N keys move.
func TestHashPoliciesAreStableAndMoveOnlyRemovedKeys(t *testing.T) {
	tests := []struct {
		policy  Policy
		balance float64 // allowed deviation of an endpoint's share from 1/N
		vnodes  int
	}{{HRW, 0.15, 0}, {RingHash, 0.35, 400}}
	const n, nkeys = 10, 10000
	for _, tc := range tests {
		t.Run(string(tc.policy), func(t *testing.T) {
			eps := endpoints(n)
			p := newPicker(t, Config{Policy: tc.policy, VirtualNodes: tc.vnodes}, nil, eps)
			ks := keys(nkeys)
			before := map[string]string{}
			share := map[string]int{}
			for _, k := range ks {
				id := pick(t, p, k)
				before[k] = id
				share[id]++
				for range 3 {
					if again := pick(t, p, k); again != id {
						t.Fatalf("key %s went to %s then %s", k, id, again)
					}
				}
			}
			for id, c := range share {
				if math.Abs(float64(c)-nkeys/n) > tc.balance*nkeys/n {
					t.Errorf("%s holds %d keys, want %d ± %.0f%%", id, c, nkeys/n, tc.balance*100)
				}
			}
			removed := eps[3].ID
			if err := p.Update(slices.Delete(slices.Clone(eps), 3, 4)); err != nil {
				t.Fatal(err)
			}
			moved := 0
			for _, k := range ks {
				now := pick(t, p, k)
				if now == before[k] {
					continue
				}
				moved++
				if before[k] != removed {
					t.Fatalf("key %s moved from %s to %s although %s stayed", k, before[k], now, before[k])
				}
			}
			if got := float64(moved) / nkeys; math.Abs(got-1.0/n) > 0.03 {
				t.Fatalf("%.3f of keys moved when 1 of %d endpoints left, want ~%.3f", got, n, 1.0/n)
			}
		})
	}
}

func TestHashPolicyWithoutKeyRoundRobins(t *testing.T) {
	p := newPicker(t, Config{Policy: HRW}, nil, endpoints(4))
	seen := map[string]bool{}
	for range 8 {
		seen[pick(t, p, "")] = true
	}
	if len(seen) != 4 {
		t.Fatalf("keyless calls reached %d of 4 endpoints", len(seen))
	}
}

func TestOutlierEjection(t *testing.T) {
	clk := clock.NewFake()
	base := 30 * time.Second
	p := newPicker(t, Config{Policy: RoundRobin, Outlier: &Outlier{ConsecutiveFailures: 3, BaseEjectionTime: base, MaxEjectionPercent: 0.5}}, clk, endpoints(4))
	bad := "inst-1"
	call := func(fail func(id string) error) map[string]int {
		got := map[string]int{}
		for range 40 {
			ep, done, err := p.Pick("")
			if err != nil {
				t.Fatal(err)
			}
			got[ep.ID]++
			done(fail(ep.ID))
		}
		return got
	}
	badFails := func(id string) error {
		if id == bad {
			return errDown
		}
		return nil
	}
	// Client errors do not count.
	call(func(id string) error {
		if id == bad {
			return fmt.Errorf("x: %w", errkind.ErrNotFound)
		}
		return nil
	})
	if len(p.Ejected()) != 0 {
		t.Fatalf("ejected %v on NOT_FOUND", p.Ejected())
	}
	call(badFails) // bad fails 10 times in a row: ejected after 3
	if got := call(badFails); got[bad] != 0 {
		t.Fatalf("ejected endpoint still picked %d times", got[bad])
	}
	if ej := p.Ejected(); len(ej) != 1 || ej[0] != bad {
		t.Fatalf("ejected %v, want [%s]", ej, bad)
	}
	clk.Advance(base)
	if got := call(badFails); got[bad] == 0 {
		t.Fatal("endpoint not back after the base ejection time")
	}
	// Ejected again at once (still failing): twice as long this time.
	clk.Advance(base)
	if got := call(badFails); got[bad] != 0 {
		t.Fatal("second ejection shorter than 2× base")
	}
	clk.Advance(base)
	if got := call(func(string) error { return nil }); got[bad] == 0 {
		t.Fatal("endpoint not back after 2× base")
	}
}

func TestOutlierEjectionIsBoundedByMaxPercent(t *testing.T) {
	clk := clock.NewFake()
	p := newPicker(t, Config{Outlier: &Outlier{ConsecutiveFailures: 1, MaxEjectionPercent: 0.5}}, clk, endpoints(4))
	for range 40 {
		_, done, _ := p.Pick("")
		done(errDown) // everything fails
	}
	if n := len(p.Ejected()); n != 2 {
		t.Fatalf("%d of 4 ejected, want at most 50%% = 2", n)
	}
	// The two left keep serving.
	seen := map[string]bool{}
	for range 10 {
		seen[pick(t, p, "")] = true
	}
	if len(seen) != 2 {
		t.Fatalf("picked %d distinct endpoints, want the 2 not ejected", len(seen))
	}
}

func TestAllEjectedFallsBackToAll(t *testing.T) {
	clk := clock.NewFake()
	p := newPicker(t, Config{Policy: HRW, Outlier: &Outlier{ConsecutiveFailures: 1, MaxEjectionPercent: 1}}, clk, endpoints(2))
	for range 10 {
		_, done, _ := p.Pick("k")
		done(errDown)
		_, done, _ = p.Pick("other")
		done(errDown)
	}
	if len(p.Ejected()) != 2 {
		t.Fatalf("ejected %v, want both", p.Ejected())
	}
	if _, _, err := p.Pick("k"); err != nil {
		t.Fatalf("pick with every endpoint ejected: %v", err)
	}
}

func TestUpdateKeepsStateOfUnchangedEndpoints(t *testing.T) {
	p := newPicker(t, Config{Policy: LeastConnections}, nil, endpoints(2))
	ep, done, _ := p.Pick("")
	eps := append(endpoints(2), Endpoint{ID: "inst-9", Address: "10.0.0.9:1"})
	if err := p.Update(eps); err != nil {
		t.Fatal(err)
	}
	for _, e := range p.set.Load().eps {
		if e.ep.ID == ep.ID && e.inflight.Load() != 1 {
			t.Fatalf("in-flight count of %s lost on update", ep.ID)
		}
	}
	done(nil)
	for _, e := range p.set.Load().eps {
		if e.inflight.Load() != 0 {
			t.Fatalf("%s in flight %d after done", e.ep.ID, e.inflight.Load())
		}
	}
}

func TestErrors(t *testing.T) {
	p, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Pick(""); !errors.Is(err, errkind.ErrUnavailable) {
		t.Fatalf("pick with no endpoints: %v, want unavailable", err)
	}
	for _, eps := range [][]Endpoint{{{Address: "a:1"}}, {{ID: "a"}}, {{ID: "a", Address: "a:1"}, {ID: "a", Address: "b:1"}}} {
		if err := p.Update(eps); !errors.Is(err, errkind.ErrInvalidArgument) {
			t.Errorf("Update(%v) = %v, want invalid argument", eps, err)
		}
	}
	for _, cfg := range []Config{{Policy: "random"}, {Outlier: &Outlier{MaxEjectionPercent: 2}}} {
		if _, err := New(cfg, nil); !errors.Is(err, errkind.ErrInvalidArgument) {
			t.Errorf("New(%+v) = %v, want invalid argument", cfg, err)
		}
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	for _, pol := range []Policy{RoundRobin, P2C, LeastConnections, HRW, RingHash} {
		p := newPicker(t, Config{Policy: pol, Outlier: &Outlier{}}, nil, endpoints(8))
		n := testing.AllocsPerRun(1000, func() {
			_, done, _ := p.Pick("order-42")
			done(nil)
		})
		if n != 0 {
			t.Errorf("%s: Pick+done allocates %v", pol, n)
		}
	}
}
