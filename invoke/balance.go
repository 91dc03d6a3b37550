package invoke

import (
	"sync"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"

	"github.com/outrig/outrig/governance/balancer"
)

// Balancers is the Picker of a sidecar: one governance balancer per callee
// app id, built from the load-balancer config of the policy in force
// (round robin when none), keeping its state (requests in flight,
// ejections) while the config and endpoints stay the same. Safe for
// concurrent use.
type Balancers struct {
	mu sync.Mutex
	by map[string]*appBalancer
}

type appBalancer struct {
	cfg  balancer.Config
	p    *balancer.Picker
	eps  []*configv1.Endpoint
	byID map[string]*configv1.Endpoint
}

// NewBalancers returns an empty set of balancers.
func NewBalancers() *Balancers { return &Balancers{by: map[string]*appBalancer{}} }

var roundRobin = balancer.Config{Policy: balancer.RoundRobin}

// Pick implements Picker.
func (b *Balancers) Pick(appID string, cfg *balancer.Config, eps []*configv1.Endpoint, key string) (*configv1.Endpoint, func(error)) {
	if cfg == nil {
		cfg = &roundRobin
	}
	b.mu.Lock()
	ab := b.by[appID]
	if ab == nil || !sameConfig(ab.cfg, *cfg) {
		p, err := balancer.New(*cfg, nil)
		if err != nil { // validated by config already; fall back rather than fail calls
			p, _ = balancer.New(roundRobin, nil)
		}
		ab = &appBalancer{cfg: *cfg, p: p}
		b.by[appID] = ab
	}
	if !sameEndpoints(ab.eps, eps) {
		list := make([]balancer.Endpoint, len(eps))
		ab.byID = make(map[string]*configv1.Endpoint, len(eps))
		for i, e := range eps {
			list[i] = balancer.Endpoint{ID: e.GetInstanceId(), Address: e.GetAddress(), Zone: e.GetZone()}
			ab.byID[e.GetInstanceId()] = e
		}
		_ = ab.p.Update(list)
		ab.eps = eps
	}
	p, byID := ab.p, ab.byID
	b.mu.Unlock()
	ep, done, err := p.Pick(key)
	if err != nil || byID[ep.ID] == nil {
		return eps[0], func(error) {}
	}
	return byID[ep.ID], done
}

func sameConfig(a, b balancer.Config) bool {
	return a.Policy == b.Policy && a.HashKey == b.HashKey && a.VirtualNodes == b.VirtualNodes &&
		(a.Outlier == nil) == (b.Outlier == nil) && (a.Outlier == nil || *a.Outlier == *b.Outlier)
}

func sameEndpoints(a, b []*configv1.Endpoint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
