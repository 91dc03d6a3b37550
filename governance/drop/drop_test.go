package drop

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/outrig/outrig/errkind"
)

func TestFixedFraction(t *testing.T) {
	tests := []struct {
		fraction float64
		tol      float64
	}{{0, 0}, {0.3, 0.01}, {0.9, 0.01}, {1, 0}}
	for _, tc := range tests {
		d, err := New(Config{Fraction: tc.fraction})
		if err != nil {
			t.Fatal(err)
		}
		const n = 100000
		dropped := 0
		for range n {
			if !d.Allow(0) {
				dropped++
			}
		}
		if got := float64(dropped) / n; math.Abs(got-tc.fraction) > tc.tol {
			t.Errorf("fraction %v: dropped %.4f of calls", tc.fraction, got)
		}
	}
}

// The backend serves at most `capacity` calls per second and rejects the
// rest; the app offers 1000/s. With K=2 the client should settle on sending
// about K×capacity and drop the rest locally.
func TestAdaptiveThrottlingSendsAboutKTimesWhatIsAccepted(t *testing.T) {
	tests := []struct {
		capacity int
		wantSent float64
	}{
		{1000, 1000}, // everything accepted: nothing dropped
		{100, 200},
		{250, 500},
	}
	for _, tc := range tests {
		d, err := New(Config{K: 2, Window: 10 * time.Second, Buckets: 10})
		if err != nil {
			t.Fatal(err)
		}
		var sent float64
		for sec := range 60 {
			now := int64(sec) * int64(time.Second)
			s, accepted := 0, 0
			for range 1000 {
				if !d.Allow(now) {
					continue
				}
				s++
				ok := accepted < tc.capacity
				if ok {
					accepted++
				}
				d.Done(now, ok)
			}
			if sec >= 40 {
				sent += float64(s) / 20
			}
		}
		if math.Abs(sent-tc.wantSent) > 0.15*tc.wantSent {
			t.Errorf("capacity %d/s: client sent %.0f/s, want about %.0f", tc.capacity, sent, tc.wantSent)
		}
	}
}

func TestAdaptiveRecoversWhenBackendRecovers(t *testing.T) {
	d, err := New(Config{K: 2, Window: 10 * time.Second, Buckets: 10})
	if err != nil {
		t.Fatal(err)
	}
	d.rand = rand.New(rand.NewPCG(1, 2)).Uint64 // deterministic recovery time
	for sec := range 20 {                       // backend down: everything rejected
		for range 1000 {
			if d.Allow(int64(sec) * int64(time.Second)) {
				d.Done(int64(sec)*int64(time.Second), false)
			}
		}
	}
	if p := d.Probability(20 * int64(time.Second)); p < 0.9 {
		t.Fatalf("drop probability %v with the backend down, want > 0.9", p)
	}
	if d.Retry() != time.Second {
		t.Fatalf("retry hint %v, want one bucket (1s)", d.Retry())
	}
	// Backend healthy again: the accepts of the few calls still sent let
	// more through, so the share sent grows geometrically.
	recovered := -1
	for sec := 20; sec < 200; sec++ {
		if recovered < 0 && d.Probability(int64(sec)*int64(time.Second)) == 0 {
			recovered = sec
		}
		for range 1000 {
			if d.Allow(int64(sec) * int64(time.Second)) {
				d.Done(int64(sec)*int64(time.Second), true)
			}
		}
	}
	if recovered < 0 || recovered > 110 {
		t.Fatalf("drop probability back to 0 at second %d, want within 90s of recovery at 20", recovered)
	}
	t.Logf("throttling ended %ds after the backend recovered", recovered-20)
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{{Fraction: -0.1}, {Fraction: 1.1}, {K: -1}, {K: 2, Window: -time.Second}} {
		if _, err := New(cfg); !errors.Is(err, errkind.ErrInvalidArgument) {
			t.Errorf("New(%+v) = %v, want invalid argument", cfg, err)
		}
	}
}

func TestAllowDoesNotAllocate(t *testing.T) {
	d, _ := New(Config{Fraction: 0.1, K: 2})
	if n := testing.AllocsPerRun(1000, func() {
		if d.Allow(1) {
			d.Done(1, true)
		}
	}); n != 0 {
		t.Fatalf("allocates %v", n)
	}
}
