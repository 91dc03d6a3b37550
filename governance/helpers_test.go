package governance

import (
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/durationpb"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func tgt(kind, name, method, caller string) *configv1.PolicyTarget {
	return &configv1.PolicyTarget{Kind: kind, Name: name, Method: method, Caller: caller}
}

func pol(name string, targets ...*configv1.PolicyTarget) *configv1.Policy {
	return &configv1.Policy{Name: name, Targets: targets}
}

func dur(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

func compile(t *testing.T, prev *Table, deps Deps, ps ...*configv1.Policy) *Table {
	t.Helper()
	tb, err := Compile(ps, prev, deps)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// recorder is an Observer that counts decisions per chain.
type recorder struct {
	mu     sync.Mutex
	counts map[Labels]map[string]int
	gauges map[Labels]map[Gauge]float64
}

func newRecorder() *recorder {
	return &recorder{counts: map[Labels]map[string]int{}, gauges: map[Labels]map[Gauge]float64{}}
}

func (r *recorder) Chain(l Labels) ChainObserver { return &chainRec{r: r, l: l} }

func (r *recorder) count(l Labels, what string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[l][what]
}

func (r *recorder) gauge(l Labels, g Gauge) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gauges[l][g]
}

type chainRec struct {
	r *recorder
	l Labels
}

func (c *chainRec) add(what string) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if c.r.counts[c.l] == nil {
		c.r.counts[c.l] = map[string]int{}
	}
	c.r.counts[c.l][what]++
}

func (c *chainRec) Decision(d Decision)                   { c.add(d.String()) }
func (c *chainRec) Done(o Outcome, latency time.Duration) { c.add("done_" + o.String()) }
func (c *chainRec) Gauge(g Gauge, v float64) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if c.r.gauges[c.l] == nil {
		c.r.gauges[c.l] = map[Gauge]float64{}
	}
	c.r.gauges[c.l][g] = v
}
