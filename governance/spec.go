package governance

import (
	"fmt"
	"path"
	"reflect"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/durationpb"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/adaptive"
	"github.com/outrig/outrig/governance/balancer"
	"github.com/outrig/outrig/governance/breaker"
	"github.com/outrig/outrig/governance/bulkhead"
	"github.com/outrig/outrig/governance/drop"
	"github.com/outrig/outrig/governance/failure"
	"github.com/outrig/outrig/governance/ratelimit"
	"github.com/outrig/outrig/governance/retry"
)

// Kinds of call a policy can target.
const (
	KindInvoke  = "invoke"
	KindState   = "state"
	KindPubSub  = "pubsub"
	KindBinding = "binding"
)

// spec is a validated policy, ready to build chains from.
type spec struct {
	timeout  time.Duration
	retry    *retry.Config
	rate     *rateSpec
	adaptive *adaptive.Config
	breaker  *breaker.Config
	bulkhead *bulkhead.Config
	drop     *drop.Config
	lb       *balancer.Config
}

type rateSpec struct {
	rate      float64
	burst     int
	perPolicy bool // one bucket for every chain of the policy
	cluster   bool
	component string
	client    redis.Scripter
}

// limiter is a rate limit's state: a local bucket or a cluster one.
type limiter struct {
	bucket  *ratelimit.Bucket
	cluster *ratelimit.Cluster
}

// newLimiter builds the limiter of r; key names its Redis state (cluster
// scope). r was validated with the same constructors, so they cannot fail;
// a stage that did would be left out rather than failing calls.
func (r *rateSpec) newLimiter(key string) *limiter {
	l := &limiter{}
	if r.cluster {
		l.cluster, _ = ratelimit.NewCluster(r.client, key, r.rate, r.burst)
	} else {
		l.bucket, _ = ratelimit.NewBucket(r.rate, r.burst)
	}
	return l
}

// Validate checks a policy the way Compile does, without building anything
// or resolving Redis components. Errors wrap errkind.ErrInvalidArgument and
// name the policy and field.
func Validate(p *configv1.Policy) error {
	_, _, err := parsePolicy(p, Deps{Redis: func(string) (redis.Scripter, error) { return nil, nil }}, true)
	return err
}

// parsePolicy validates p. With skipRedis the Redis component is not
// resolved (Validate).
func parsePolicy(p *configv1.Policy, deps Deps, skipRedis bool) (spec, []target, error) {
	var s spec
	if p == nil {
		return s, nil, errkind.Required("policy")
	}
	name := p.GetName()
	fail := func(field string, err error) (spec, []target, error) {
		return spec{}, nil, fmt.Errorf("policy %q: %s: %w", name, field, err)
	}
	if name == "" {
		return spec{}, nil, errkind.Required("policy.name")
	}
	if len(p.GetTargets()) == 0 {
		return fail("targets", errkind.Required("targets"))
	}
	targets := make([]target, 0, len(p.GetTargets()))
	for i, pt := range p.GetTargets() {
		t, err := parseTarget(pt)
		if err != nil {
			return fail(fmt.Sprintf("targets[%d]", i), err)
		}
		targets = append(targets, t)
	}
	var err error
	if d := p.GetTimeout(); d != nil {
		if s.timeout, err = duration(d.GetDuration(), "duration"); err != nil {
			return fail("timeout", err)
		}
		if s.timeout <= 0 {
			return fail("timeout", errkind.InvalidArgument("duration", "must be > 0, got %v", s.timeout))
		}
	}
	if r := p.GetRetry(); r != nil {
		if s.retry, err = parseRetry(r); err != nil {
			return fail("retry", err)
		}
	}
	if r := p.GetRateLimit(); r != nil {
		if s.rate, err = parseRate(r, deps, skipRedis); err != nil {
			return fail("rate_limit", err)
		}
	}
	if a := p.GetAdaptiveLimit(); a != nil {
		cfg := adaptive.Config{Algorithm: a.GetAlgorithm(), InitialLimit: int(a.GetInitialLimit()), MinLimit: int(a.GetMinLimit()),
			MaxLimit: int(a.GetMaxLimit()), CPUThreshold: a.GetCpuThreshold(), CPU: adaptive.CPUFunc(func(int64) float64 { return 0 })}
		if _, err := adaptive.New(cfg, nil); err != nil {
			return fail("adaptive_limit", err)
		}
		cfg.CPU = nil // set per table
		s.adaptive = &cfg
	}
	if b := p.GetCircuitBreaker(); b != nil {
		cfg := breaker.Config{MinCalls: int(b.GetMinCalls()), FailureRateThreshold: b.GetFailureRateThreshold(),
			SlowCallRateThreshold: b.GetSlowCallRateThreshold(), HalfOpenProbes: int(b.GetHalfOpenProbes())}
		for _, f := range []struct {
			d    *durationpb.Duration
			dst  *time.Duration
			name string
		}{{b.GetWindow(), &cfg.Window, "window"}, {b.GetSlowCallDuration(), &cfg.SlowCallDuration, "slow_call_duration"}, {b.GetSleepWindow(), &cfg.SleepWindow, "sleep_window"}} {
			if *f.dst, err = duration(f.d, f.name); err != nil {
				return fail("circuit_breaker", err)
			}
		}
		if _, err := breaker.New(cfg); err != nil {
			return fail("circuit_breaker", err)
		}
		s.breaker = &cfg
	}
	if b := p.GetBulkhead(); b != nil {
		cfg := bulkhead.Config{MaxConcurrent: int(b.GetMaxConcurrent()), MaxQueue: int(b.GetMaxQueue())}
		if cfg.QueueTimeout, err = duration(b.GetQueueTimeout(), "queue_timeout"); err != nil {
			return fail("bulkhead", err)
		}
		if _, err := bulkhead.New(cfg, nil); err != nil {
			return fail("bulkhead", err)
		}
		s.bulkhead = &cfg
	}
	if d := p.GetRandomDrop(); d != nil {
		cfg := drop.Config{Fraction: d.GetFraction(), K: d.GetK()}
		if cfg.Window, err = duration(d.GetWindow(), "window"); err != nil {
			return fail("random_drop", err)
		}
		if _, err := drop.New(cfg); err != nil {
			return fail("random_drop", err)
		}
		s.drop = &cfg
	}
	if lb := p.GetLoadBalancer(); lb != nil {
		cfg := balancer.Config{Policy: balancer.Policy(lb.GetPolicy()), HashKey: lb.GetHashKey()}
		if od := lb.GetOutlierDetection(); od != nil {
			o := &balancer.Outlier{ConsecutiveFailures: int(od.GetConsecutiveFailures()), MaxEjectionPercent: od.GetMaxEjectionPercent()}
			if o.BaseEjectionTime, err = duration(od.GetBaseEjectionTime(), "outlier_detection.base_ejection_time"); err != nil {
				return fail("load_balancer", err)
			}
			cfg.Outlier = o
		}
		if err := cfg.Validate(); err != nil {
			return fail("load_balancer", err)
		}
		s.lb = &cfg
	}
	return s, targets, nil
}

func parseRetry(r *configv1.Retry) (*retry.Config, error) {
	cfg := retry.Config{MaxAttempts: int(r.GetMaxAttempts()), Multiplier: r.GetMultiplier(), Jitter: r.GetJitter(),
		BudgetRatio: r.GetBudgetRatio(), MinRetriesPerSecond: r.GetMinRetriesPerSecond(),
		InitialBackoff: retry.DefaultInitialBackoff, MaxBackoff: retry.DefaultMaxBackoff}
	var err error
	if r.GetInitialBackoff() != nil {
		if cfg.InitialBackoff, err = duration(r.GetInitialBackoff(), "initial_backoff"); err != nil {
			return nil, err
		}
		cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.InitialBackoff)
	}
	if r.GetMaxBackoff() != nil {
		if cfg.MaxBackoff, err = duration(r.GetMaxBackoff(), "max_backoff"); err != nil {
			return nil, err
		}
	}
	for i, name := range r.GetRetryableCodes() {
		c, err := failure.ParseCode(name)
		if err != nil {
			return nil, fmt.Errorf("retryable_codes[%d]: %w", i, err)
		}
		cfg.Retryable = append(cfg.Retryable, c)
	}
	if _, err := retry.New(cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func parseRate(r *configv1.RateLimit, deps Deps, skipRedis bool) (*rateSpec, error) {
	rs := &rateSpec{rate: r.GetRate(), burst: int(r.GetBurst())}
	if rs.burst < 0 {
		return nil, errkind.InvalidArgument("burst", "must be >= 0, got %d", rs.burst)
	}
	if _, err := ratelimit.NewBucket(rs.rate, rs.burst); err != nil {
		return nil, err
	}
	switch r.GetPer() {
	case "", "method":
	case "policy":
		rs.perPolicy = true
	default:
		return nil, errkind.InvalidArgument("per", "must be method or policy, got %q", r.GetPer())
	}
	switch r.GetScope() {
	case "", "local":
	case "cluster":
		rs.cluster = true
		rs.component = r.GetRedisComponent()
		if rs.component == "" {
			return nil, errkind.Required("redis_component (scope cluster)")
		}
		if skipRedis {
			break
		}
		if deps.Redis == nil {
			return nil, errkind.InvalidArgument("redis_component", "%q: this sidecar has no Redis resolver for cluster rate limits", rs.component)
		}
		c, err := deps.Redis(rs.component)
		if err != nil {
			return nil, errkind.InvalidArgument("redis_component", "%q: %v", rs.component, err)
		}
		if c == nil {
			return nil, errkind.InvalidArgument("redis_component", "%q: resolver returned no client", rs.component)
		}
		rs.client = c
	default:
		return nil, errkind.InvalidArgument("scope", "must be local or cluster, got %q", r.GetScope())
	}
	return rs, nil
}

// duration converts an optional proto duration (nil: 0).
func duration(d *durationpb.Duration, field string) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, errkind.InvalidArgument(field, "%v", err)
	}
	v := d.AsDuration()
	if v < 0 {
		return 0, errkind.InvalidArgument(field, "must be >= 0, got %v", v)
	}
	return v, nil
}

// target is a parsed PolicyTarget.
type target struct {
	kind, name, method, caller string
	nameGlob, methodGlob       bool
}

const globChars = `*?[\`

func parseTarget(pt *configv1.PolicyTarget) (target, error) {
	t := target{kind: pt.GetKind(), name: pt.GetName(), method: pt.GetMethod(), caller: pt.GetCaller()}
	switch t.kind {
	case KindInvoke, KindState, KindPubSub, KindBinding:
	case "":
		return t, errkind.Required("kind")
	default:
		return t, errkind.InvalidArgument("kind", "must be invoke, state, pubsub or binding, got %q", t.kind)
	}
	if t.name == "" {
		return t, errkind.Required("name")
	}
	if t.method == "" {
		t.method = "*"
	}
	t.nameGlob = strings.ContainsAny(t.name, globChars)
	t.methodGlob = strings.ContainsAny(t.method, globChars)
	for _, f := range []struct{ field, pat string }{{"name", t.name}, {"method", t.method}} {
		if _, err := path.Match(f.pat, ""); err != nil {
			return t, errkind.InvalidArgument(f.field, "bad glob %q: %v", f.pat, err)
		}
	}
	if strings.ContainsAny(t.caller, globChars) {
		return t, errkind.InvalidArgument("caller", "must be an exact app id, got %q", t.caller)
	}
	return t, nil
}

// specificity orders targets: exact method, then exact name, then caller.
func (t *target) specificity() int {
	s := 0
	if !t.methodGlob {
		s |= 4
	}
	if !t.nameGlob {
		s |= 2
	}
	if t.caller != "" {
		s |= 1
	}
	return s
}

func (t *target) matches(k lookupKey) bool {
	return t.kind == k.kind && (t.caller == "" || t.caller == k.caller) &&
		globMatch(t.name, t.nameGlob, k.name) && globMatch(t.method, t.methodGlob, k.method)
}

func globMatch(pattern string, glob bool, s string) bool {
	if !glob {
		return pattern == s
	}
	if pattern == "*" {
		return true
	}
	ok, _ := path.Match(pattern, s) // pattern validated at compile
	return ok
}

// sameClient reports whether two Redis clients are the same object.
func sameClient(a, b redis.Scripter) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Type() != vb.Type() || !va.Comparable() {
		return false
	}
	return va.Equal(vb)
}
