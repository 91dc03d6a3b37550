// Package balancer picks the endpoint (an instance of an app) that an
// invocation goes to.
//
// Policies: round_robin; p2c (power of two choices: the less loaded of two
// random endpoints, by calls in flight); least_connections (the least loaded
// of all); hrw (rendezvous hashing: a key goes to the endpoint with the
// highest hash(key, endpoint), so when an endpoint leaves only its keys
// move); ring_hash (consistent hashing on a ring of virtual nodes). Hash
// policies need a key; calls without one are spread round robin. Hashes are
// FNV-1a with a 64-bit finaliser, stable across processes, so every sidecar
// sends a key to the same endpoint.
//
// Outlier detection ejects an endpoint after ConsecutiveFailures failures
// in a row (failures as failure.Classify counts them) for BaseEjectionTime ×
// the number of times it was ejected in a row (at most 10×); a success resets
// both counts. At most MaxEjectionPercent of the endpoints are ejected at
// once. When every candidate is ejected, ejection is ignored rather than
// failing the call.
package balancer

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/clock"
	"github.com/outrig/outrig/governance/failure"
)

// Endpoint is one instance of an app.
type Endpoint struct {
	ID      string // unique per instance; identity across updates
	Address string // host:port of the instance's sidecar
	Zone    string
}

// Policy names a balancing policy.
type Policy string

// The policies.
const (
	RoundRobin       Policy = "round_robin"
	P2C              Policy = "p2c"
	LeastConnections Policy = "least_connections"
	HRW              Policy = "hrw"
	RingHash         Policy = "ring_hash"
)

// Outlier configures ejection of failing endpoints.
type Outlier struct {
	ConsecutiveFailures int           // default 5
	BaseEjectionTime    time.Duration // default 30s
	MaxEjectionPercent  float64       // share of endpoints, 0..1; default 0.5
}

// Config of a picker.
type Config struct {
	Policy Policy // default round_robin
	// HashKey names the request metadata key whose value the caller passes
	// to Pick for hrw/ring_hash (informational for the caller).
	HashKey string
	// Outlier enables outlier ejection when not nil.
	Outlier *Outlier
	// VirtualNodes is the number of ring_hash points per endpoint; default
	// 160. It does not depend on the number of endpoints, so a change of the
	// endpoint set moves only the keys of the endpoints that came or went.
	VirtualNodes int
}

// Validate fills defaults and checks the config.
func (c *Config) Validate() error {
	switch c.Policy {
	case "":
		c.Policy = RoundRobin
	case RoundRobin, P2C, LeastConnections, HRW, RingHash:
	default:
		return errkind.InvalidArgument("policy", "must be round_robin, p2c, least_connections, hrw or ring_hash, got %q", c.Policy)
	}
	if c.VirtualNodes == 0 {
		c.VirtualNodes = 160
	}
	if c.VirtualNodes < 0 || c.VirtualNodes > 1<<16 {
		return errkind.InvalidArgument("virtual_nodes", "must be in [1, 65536], got %d", c.VirtualNodes)
	}
	if o := c.Outlier; o != nil {
		if o.ConsecutiveFailures == 0 {
			o.ConsecutiveFailures = 5
		}
		if o.BaseEjectionTime == 0 {
			o.BaseEjectionTime = 30 * time.Second
		}
		if o.MaxEjectionPercent == 0 {
			o.MaxEjectionPercent = 0.5
		}
		switch {
		case o.ConsecutiveFailures < 0:
			return errkind.InvalidArgument("outlier_detection.consecutive_failures", "must be > 0, got %d", o.ConsecutiveFailures)
		case o.BaseEjectionTime < 0:
			return errkind.InvalidArgument("outlier_detection.base_ejection_time", "must be > 0, got %v", o.BaseEjectionTime)
		case !(o.MaxEjectionPercent > 0 && o.MaxEjectionPercent <= 1):
			return errkind.InvalidArgument("outlier_detection.max_ejection_percent", "must be in (0, 1], got %v", o.MaxEjectionPercent)
		}
	}
	return nil
}

// ErrNoEndpoints: the picker has no endpoint to pick.
var ErrNoEndpoints = fmt.Errorf("no endpoints: %w", errkind.ErrUnavailable)

const maxEjectionMultiplier = 10

// Picker picks endpoints. Safe for concurrent use: Pick runs concurrently
// with itself, with the done functions and with Update; Pick and done
// allocate nothing.
type Picker struct {
	cfg       Config
	clk       clock.Clock
	countLoad bool // p2c / least_connections track calls in flight

	set      atomic.Pointer[endpointSet]
	rr       atomic.Uint64
	maxUntil atomic.Int64 // latest ejection deadline ever set; 0: none
	mu       sync.Mutex   // Update and ejection decisions
}

type endpointSet struct {
	eps  []*endpoint
	ring []ringNode // ring_hash only, sorted by hash
}

type ringNode struct {
	hash uint64
	idx  int32
}

type endpoint struct {
	ep       Endpoint
	hash     uint64
	p        *Picker
	inflight atomic.Int64
	consec   atomic.Int32 // consecutive failures
	ejects   atomic.Int32 // ejections in a row
	until    atomic.Int64 // ejected until this clock time
	done     func(error)  // bound once, returned by Pick
}

// New returns a picker with no endpoints (Pick fails until Update).
func New(cfg Config, clk clock.Clock) (*Picker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Outlier != nil {
		o := *cfg.Outlier
		cfg.Outlier = &o
	}
	if clk == nil {
		clk = clock.Real{}
	}
	p := &Picker{cfg: cfg, clk: clk, countLoad: cfg.Policy == P2C || cfg.Policy == LeastConnections}
	p.set.Store(&endpointSet{})
	return p, nil
}

// Config returns the picker's config (defaults filled).
func (p *Picker) Config() Config { return p.cfg }

// Update replaces the endpoints. Endpoints whose ID and address are
// unchanged keep their load and ejection state; calls in flight on removed
// endpoints finish normally.
func (p *Picker) Update(eps []Endpoint) error {
	seen := make(map[string]bool, len(eps))
	for i, e := range eps {
		switch {
		case e.ID == "":
			return errkind.InvalidArgument(fmt.Sprintf("endpoints[%d].id", i), "is required")
		case e.Address == "":
			return errkind.InvalidArgument(fmt.Sprintf("endpoints[%d].address", i), "is required (id %q)", e.ID)
		case seen[e.ID]:
			return errkind.InvalidArgument(fmt.Sprintf("endpoints[%d].id", i), "duplicate %q", e.ID)
		}
		seen[e.ID] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := make(map[string]*endpoint)
	for _, e := range p.set.Load().eps {
		old[e.ep.ID] = e
	}
	ns := &endpointSet{eps: make([]*endpoint, len(eps))}
	for i, e := range eps {
		if o := old[e.ID]; o != nil && o.ep == e {
			ns.eps[i] = o
			continue
		}
		ne := &endpoint{ep: e, hash: hashString(e.ID), p: p}
		ne.done = ne.finish
		ns.eps[i] = ne
	}
	if p.cfg.Policy == RingHash && len(eps) > 0 {
		ns.ring = buildRing(ns.eps, p.cfg.VirtualNodes)
	}
	p.set.Store(ns)
	return nil
}

// Endpoints returns the current endpoints.
func (p *Picker) Endpoints() []Endpoint {
	s := p.set.Load()
	out := make([]Endpoint, len(s.eps))
	for i, e := range s.eps {
		out[i] = e.ep
	}
	return out
}

// Ejected returns the IDs of the endpoints ejected now.
func (p *Picker) Ejected() []string {
	now := p.clk.Now()
	var ids []string
	for _, e := range p.set.Load().eps {
		if e.until.Load() > now {
			ids = append(ids, e.ep.ID)
		}
	}
	return ids
}

// Pick chooses an endpoint for a call; key is the hash key for hrw and
// ring_hash (ignored by the others). The caller must call done exactly once
// with the call's result. It fails with ErrNoEndpoints when there is none.
func (p *Picker) Pick(key string) (ep Endpoint, done func(err error), err error) {
	s := p.set.Load()
	if len(s.eps) == 0 {
		return Endpoint{}, nil, ErrNoEndpoints
	}
	var now int64
	check := false
	if mu := p.maxUntil.Load(); mu != 0 {
		now = p.clk.Now()
		check = now < mu
	}
	e := p.choose(s, key, check, now)
	if e == nil { // every candidate ejected: ignore ejection
		e = p.choose(s, key, false, now)
	}
	if p.countLoad {
		e.inflight.Add(1)
	}
	return e.ep, e.done, nil
}

func (p *Picker) choose(s *endpointSet, key string, check bool, now int64) *endpoint {
	switch p.cfg.Policy {
	case P2C:
		return p2c(s.eps, check, now)
	case LeastConnections:
		return leastLoaded(s.eps, check, now)
	case HRW:
		if key != "" {
			return hrw(s.eps, key, check, now)
		}
	case RingHash:
		if key != "" {
			return ringLookup(s, key, check, now)
		}
	}
	return p.roundRobin(s.eps, check, now)
}

func usable(e *endpoint, check bool, now int64) bool { return !check || e.until.Load() <= now }

func (p *Picker) roundRobin(eps []*endpoint, check bool, now int64) *endpoint {
	n := uint64(len(eps))
	start := p.rr.Add(1) - 1
	for i := range n {
		if e := eps[(start+i)%n]; usable(e, check, now) {
			return e
		}
	}
	return nil
}

func p2c(eps []*endpoint, check bool, now int64) *endpoint {
	n := uint64(len(eps))
	if n == 1 {
		if usable(eps[0], check, now) {
			return eps[0]
		}
		return nil
	}
	r := rand.Uint64()
	i := (r >> 32) * n >> 32
	j := (r & 0xffffffff) * (n - 1) >> 32
	if j >= i {
		j++
	}
	a, b := eps[i], eps[j]
	ua, ub := usable(a, check, now), usable(b, check, now)
	switch {
	case ua && ub:
		if b.inflight.Load() < a.inflight.Load() {
			return b
		}
		return a
	case ua:
		return a
	case ub:
		return b
	}
	return leastLoaded(eps, check, now)
}

func leastLoaded(eps []*endpoint, check bool, now int64) *endpoint {
	n := len(eps)
	start := int(rand.Uint64N(uint64(n)))
	var best *endpoint
	var bestLoad int64
	for i := range n {
		e := eps[(start+i)%n]
		if !usable(e, check, now) {
			continue
		}
		if l := e.inflight.Load(); best == nil || l < bestLoad {
			best, bestLoad = e, l
		}
	}
	return best
}

func hrw(eps []*endpoint, key string, check bool, now int64) *endpoint {
	kh := hashString(key)
	var best *endpoint
	var bestScore uint64
	for _, e := range eps {
		if !usable(e, check, now) {
			continue
		}
		if sc := mix64(kh ^ e.hash); best == nil || sc > bestScore {
			best, bestScore = e, sc
		}
	}
	return best
}

func buildRing(eps []*endpoint, per int) []ringNode {
	ring := make([]ringNode, 0, per*len(eps))
	for i, e := range eps {
		for v := range per {
			ring = append(ring, ringNode{hash: hashString(e.ep.ID + "#" + strconv.Itoa(v)), idx: int32(i)})
		}
	}
	sortRing(ring)
	return ring
}

func ringLookup(s *endpointSet, key string, check bool, now int64) *endpoint {
	kh := hashString(key)
	ring := s.ring
	lo, hi := 0, len(ring)
	for lo < hi { // first node with hash >= kh
		m := int(uint(lo+hi) >> 1)
		if ring[m].hash < kh {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for i := range ring {
		if e := s.eps[ring[(lo+i)%len(ring)].idx]; usable(e, check, now) {
			return e
		}
	}
	return nil
}

// finish is an endpoint's done function.
func (e *endpoint) finish(err error) {
	p := e.p
	if p.countLoad {
		e.inflight.Add(-1)
	}
	if p.cfg.Outlier == nil {
		return
	}
	switch failure.Classify(err) {
	case failure.Failure:
		if e.consec.Add(1) >= int32(p.cfg.Outlier.ConsecutiveFailures) {
			p.eject(e)
		}
	case failure.Success:
		if e.consec.Load() != 0 {
			e.consec.Store(0)
		}
		if e.ejects.Load() != 0 && e.until.Load() <= p.clk.Now() {
			e.ejects.Store(0)
		}
	}
}

func (p *Picker) eject(e *endpoint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clk.Now()
	if e.until.Load() > now || e.consec.Load() < int32(p.cfg.Outlier.ConsecutiveFailures) {
		return // already ejected, or a success came in between
	}
	eps := p.set.Load().eps
	ejected := 0
	for _, x := range eps {
		if x.until.Load() > now {
			ejected++
		}
	}
	if float64(ejected+1) > p.cfg.Outlier.MaxEjectionPercent*float64(len(eps)) {
		return
	}
	k := min(e.ejects.Add(1), maxEjectionMultiplier)
	until := now + int64(k)*int64(p.cfg.Outlier.BaseEjectionTime)
	e.until.Store(until)
	e.consec.Store(0)
	if until > p.maxUntil.Load() {
		p.maxUntil.Store(until)
	}
}
