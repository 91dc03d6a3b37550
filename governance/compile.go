package governance

import (
	"errors"
	"fmt"
	"maps"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/governance/adaptive"
	"github.com/outrig/outrig/governance/clock"
)

// DefaultMaxChains bounds the chains (and so the limiter states and metric
// series) one policy creates; see Deps.MaxChains.
const DefaultMaxChains = 10000

// Deps are what compiled chains need from the sidecar. Pass the same Deps
// to every Compile of a sidecar: chains carried over keep the clock,
// observer and CPU source they were built with.
type Deps struct {
	// Clock is the time source; nil means clock.Real.
	Clock clock.Clock
	// Observer receives every decision; nil means NopObserver.
	Observer Observer
	// Redis resolves the redis_component of a cluster-scope rate limit to a
	// client (e.g. the *redis.Client of that state.redis component). Called
	// during Compile only. Needed only when a policy uses scope cluster.
	Redis func(component string) (redis.Scripter, error)
	// CPU is the CPU usage source of BBR adaptive limits; nil means
	// /proc/stat sampled at most every 250ms.
	CPU adaptive.CPU
	// AppID: when set, policies whose scopes are non-empty and do not list
	// it are left out.
	AppID string
	// MaxChains bounds the distinct (kind, name, method) chains of one
	// policy (default DefaultMaxChains): methods beyond it share one
	// overflow chain labelled method "_other". The lookup cache holds at
	// most 4×MaxChains keys; further keys are resolved without caching.
	MaxChains int
}

// Table is an immutable set of compiled policies. Safe for concurrent use.
// A nil *Table is valid: every lookup returns the no-op chain.
type Table struct {
	deps     Deps
	policies map[string]*compiledPolicy
	targets  map[string][]boundTarget // by kind
	names    []string
	cache    chainCache
}

type boundTarget struct {
	t     target
	score int
	p     *compiledPolicy
}

// compiledPolicy is one policy and the chains built for it. It outlives a
// Table when carried over.
type compiledPolicy struct {
	name string
	src  *configv1.Policy
	spec spec
	deps Deps

	mu       sync.Mutex
	chains   map[methodKey]*Chain
	overflow *Chain
	// shared is the rate limiter of every chain when the policy's rate
	// limit is per policy; built with the first chain, under mu.
	shared *limiter
}

type methodKey struct{ kind, name, method string }

type lookupKey struct{ kind, name, method, caller string }

// Compile builds the table for policies. prev, when not nil, is the table
// in force: policies whose content did not change keep their state (see the
// package doc).
//
// Invalid policies are left out of the table and reported: the table is
// never nil and holds every valid policy, and the error, when not nil,
// joins one error per rejected policy (each wrapping
// errkind.ErrInvalidArgument and naming the policy and field), so that the
// caller can apply the valid ones and NACK the rest. Duplicate names are
// rejected after the first.
func Compile(policies []*configv1.Policy, prev *Table, deps Deps) (*Table, error) {
	if deps.Clock == nil {
		deps.Clock = clock.Real{}
	}
	if deps.Observer == nil {
		deps.Observer = NopObserver{}
	}
	if deps.MaxChains <= 0 {
		deps.MaxChains = DefaultMaxChains
	}
	if deps.CPU == nil && prev != nil {
		deps.CPU = prev.deps.CPU
	}
	t := &Table{deps: deps, policies: map[string]*compiledPolicy{}, targets: map[string][]boundTarget{}}
	t.cache.init()
	var errs []error
	for i, p := range policies {
		if p == nil {
			errs = append(errs, fmt.Errorf("policies[%d]: %w", i, errRequiredPolicy))
			continue
		}
		if !inScope(p, deps.AppID) {
			continue
		}
		if _, dup := t.policies[p.GetName()]; dup {
			errs = append(errs, fmt.Errorf("policy %q: duplicate name: %w", p.GetName(), errInvalid))
			continue
		}
		s, targets, err := parsePolicy(p, deps, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if s.adaptive != nil && s.adaptive.Algorithm == adaptive.BBRAlgorithm && deps.CPU == nil {
			ps, err := adaptive.NewProcStat("/proc/stat", 0, deps.Clock)
			if err != nil {
				errs = append(errs, fmt.Errorf("policy %q: adaptive_limit: bbr needs CPU usage: %w", p.GetName(), err))
				continue
			}
			deps.CPU = ps
			t.deps.CPU = ps
		}
		cp := carried(prev, p, s)
		if cp == nil {
			cp = &compiledPolicy{name: p.GetName(), src: proto.Clone(p).(*configv1.Policy), spec: s, deps: t.deps, chains: map[methodKey]*Chain{}}
		}
		t.policies[cp.name] = cp
		t.names = append(t.names, cp.name)
		for _, tg := range targets {
			t.targets[tg.kind] = append(t.targets[tg.kind], boundTarget{t: tg, score: tg.specificity(), p: cp})
		}
	}
	sort.Strings(t.names)
	return t, errors.Join(errs...)
}

func inScope(p *configv1.Policy, app string) bool {
	if app == "" || len(p.GetScopes()) == 0 {
		return true
	}
	for _, s := range p.GetScopes() {
		if s == app {
			return true
		}
	}
	return false
}

// carried returns prev's compiled policy of the same name if its content is
// unchanged.
func carried(prev *Table, p *configv1.Policy, s spec) *compiledPolicy {
	if prev == nil {
		return nil
	}
	old := prev.policies[p.GetName()]
	if old == nil || !proto.Equal(old.src, p) {
		return nil
	}
	if s.rate != nil && s.rate.cluster && !sameClient(s.rate.client, old.spec.rate.client) {
		return nil
	}
	return old
}

// Policies returns the names of the policies in the table, sorted.
func (t *Table) Policies() []string {
	if t == nil {
		return nil
	}
	return append([]string(nil), t.names...)
}

// Lookup returns the chain for a call of kind (invoke, state, pubsub,
// binding) to name (app id or component) and method, made by caller (the
// calling app id; may be empty). It never returns nil: when no policy
// matches it returns a shared no-op chain. After the first lookup of a key
// it is a map read that allocates nothing.
//
// When several policies match, the most specific applies: exact method
// over glob method, then exact name over glob name, then a target with a
// caller over one without, then the policy name that sorts first.
func (t *Table) Lookup(kind, name, method, caller string) *Chain {
	if t == nil {
		return &noopChain
	}
	k := lookupKey{kind, name, method, caller}
	if c, ok := (*t.cache.read.Load())[k]; ok {
		return c
	}
	if len(t.targets[kind]) == 0 {
		return &noopChain
	}
	return t.lookupSlow(k)
}

func (t *Table) lookupSlow(k lookupKey) *Chain {
	cc := &t.cache
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if c, ok := (*cc.read.Load())[k]; ok {
		return c
	}
	if c, ok := cc.dirty[k]; ok {
		cc.missLocked()
		return c
	}
	c := t.resolve(k)
	if len(cc.dirty) < 4*t.deps.MaxChains && len(*cc.read.Load()) < 4*t.deps.MaxChains {
		if cc.dirty == nil {
			cc.dirty = maps.Clone(*cc.read.Load())
		}
		cc.dirty[k] = c
	}
	cc.missLocked()
	return c
}

// resolve finds the winning policy for k and its chain.
func (t *Table) resolve(k lookupKey) *Chain {
	var best *boundTarget
	bts := t.targets[k.kind]
	for i := range bts {
		bt := &bts[i]
		if !bt.t.matches(k) {
			continue
		}
		if best == nil || bt.score > best.score || (bt.score == best.score && bt.p.name < best.p.name) {
			best = bt
		}
	}
	if best == nil {
		return &noopChain
	}
	return best.p.chainFor(k.kind, k.name, k.method)
}

func (cp *compiledPolicy) chainFor(kind, name, method string) *Chain {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	mk := methodKey{kind, name, method}
	if c := cp.chains[mk]; c != nil {
		return c
	}
	if len(cp.chains) >= cp.deps.MaxChains {
		if cp.overflow == nil {
			cp.overflow = cp.newChain(kind, "_other", "_other")
		}
		return cp.overflow
	}
	c := cp.newChain(kind, name, method)
	cp.chains[mk] = c
	return c
}

// chainCache maps lookup keys to chains: lock-free reads of an immutable
// map, new keys collected under a lock in a dirty copy that replaces the
// read map once it has been missed as many times as it has entries (so the
// copying is amortised to O(1) per new key).
type chainCache struct {
	read   atomic.Pointer[map[lookupKey]*Chain]
	mu     sync.Mutex
	dirty  map[lookupKey]*Chain // nil or a superset of *read
	misses int
}

func (cc *chainCache) init() {
	m := map[lookupKey]*Chain{}
	cc.read.Store(&m)
}

func (cc *chainCache) missLocked() {
	cc.misses++
	if cc.dirty != nil && cc.misses >= len(cc.dirty) {
		m := cc.dirty
		cc.read.Store(&m)
		cc.dirty = nil
		cc.misses = 0
	}
}
