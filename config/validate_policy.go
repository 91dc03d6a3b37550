package config

import (
	"fmt"
	"slices"
	"strings"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
)

var (
	targetKinds   = []string{"invoke", "state", "pubsub", "binding"}
	lbPolicies    = []string{"round_robin", "p2c", "least_connections", "hrw", "ring_hash"}
	rateScopes    = []string{"local", "cluster"}
	ratePers      = []string{"method", "policy"}
	adaptiveAlgos = []string{"gradient2", "bbr"}
	// grpcCodes are the gRPC status code names that may be retried (OK is not
	// an error).
	grpcCodes = []string{
		"CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
		"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
		"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
		"UNAUTHENTICATED",
	}
)

func oneOf(errs *errorList, field, v string, allowed []string) {
	if !slices.Contains(allowed, v) {
		errs.add(field, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	}
}

func validatePolicy(p *configv1.Policy) errorList {
	var errs errorList
	if p == nil {
		errs.add("", "policy is nil")
		return errs
	}
	checkName(&errs, "metadata.name", p.GetName())
	if len(p.GetTargets()) == 0 {
		errs.add("spec.targets", "at least one target is required")
	}
	for i, t := range p.GetTargets() {
		validateTarget(&errs, fmt.Sprintf("spec.targets[%d]", i), t)
	}
	if t := p.GetTimeout(); t != nil {
		checkDuration(&errs, "spec.timeout", t.GetDuration())
	}
	validateRetry(&errs, p.GetRetry())
	validateRateLimit(&errs, p.GetRateLimit())
	validateAdaptive(&errs, p.GetAdaptiveLimit())
	validateBreaker(&errs, p.GetCircuitBreaker())
	if b := p.GetBulkhead(); b != nil {
		if b.GetMaxConcurrent() <= 0 {
			errs.add("spec.bulkhead.maxConcurrent", "must be > 0, got %d", b.GetMaxConcurrent())
		}
		checkNonNegativeInt(&errs, "spec.bulkhead.maxQueue", b.GetMaxQueue())
		checkDuration(&errs, "spec.bulkhead.queueTimeout", b.GetQueueTimeout())
	}
	if r := p.GetRandomDrop(); r != nil {
		checkFraction(&errs, "spec.randomDrop.fraction", r.GetFraction())
		checkNonNegative(&errs, "spec.randomDrop.k", r.GetK())
		checkDuration(&errs, "spec.randomDrop.window", r.GetWindow())
		if r.GetFraction() > 0 && r.GetK() > 0 {
			errs.add("spec.randomDrop", "set either fraction or k, not both")
		}
	}
	validateLB(&errs, p.GetLoadBalancer())
	checkScopes(&errs, p.GetScopes())
	return errs
}

func validateTarget(errs *errorList, p string, t *configv1.PolicyTarget) {
	if t == nil {
		errs.add(p, "must not be empty")
		return
	}
	if t.GetKind() == "" {
		errs.add(p+".kind", "required")
	} else {
		oneOf(errs, p+".kind", t.GetKind(), targetKinds)
	}
	switch name := t.GetName(); {
	case name == "":
		errs.add(p+".name", "required")
	case isGlob(name):
		checkGlob(errs, p+".name", name)
	case t.GetKind() == "invoke":
		checkAppID(errs, p+".name", name)
	default:
		checkName(errs, p+".name", name)
	}
	if m := t.GetMethod(); m != "" {
		checkGlob(errs, p+".method", m)
	}
	if c := t.GetCaller(); c != "" {
		checkAppID(errs, p+".caller", c)
	}
}

func validateRetry(errs *errorList, r *configv1.Retry) {
	if r == nil {
		return
	}
	const p = "spec.retry."
	if r.GetMaxAttempts() < 1 {
		errs.add(p+"maxAttempts", "must be >= 1, got %d", r.GetMaxAttempts())
	}
	checkDuration(errs, p+"initialBackoff", r.GetInitialBackoff())
	checkDuration(errs, p+"maxBackoff", r.GetMaxBackoff())
	if ib, mb := r.GetInitialBackoff(), r.GetMaxBackoff(); ib != nil && mb != nil &&
		mb.AsDuration() > 0 && ib.AsDuration() > mb.AsDuration() {
		errs.add(p+"initialBackoff", "must not exceed maxBackoff (%v), got %v", mb.AsDuration(), ib.AsDuration())
	}
	if m := r.GetMultiplier(); m != 0 && !(m >= 1) {
		errs.add(p+"multiplier", "must be >= 1 (or unset for the default 2), got %v", m)
	}
	checkFraction(errs, p+"jitter", r.GetJitter())
	for i, c := range r.GetRetryableCodes() {
		if !slices.Contains(grpcCodes, c) {
			errs.add(fmt.Sprintf("%sretryableCodes[%d]", p, i), "must be a gRPC code name such as UNAVAILABLE, got %q", c)
		}
	}
	checkFraction(errs, p+"budgetRatio", r.GetBudgetRatio())
	checkNonNegative(errs, p+"minRetriesPerSecond", r.GetMinRetriesPerSecond())
}

func validateRateLimit(errs *errorList, r *configv1.RateLimit) {
	if r == nil {
		return
	}
	const p = "spec.rateLimit."
	if !(r.GetRate() > 0) {
		errs.add(p+"rate", "must be > 0, got %v", r.GetRate())
	}
	checkNonNegativeInt(errs, p+"burst", r.GetBurst())
	scope := r.GetScope()
	if scope != "" {
		oneOf(errs, p+"scope", scope, rateScopes)
	}
	if per := r.GetPer(); per != "" {
		oneOf(errs, p+"per", per, ratePers)
	}
	switch {
	case scope == "cluster" && r.GetRedisComponent() == "":
		errs.add(p+"redisComponent", "required with scope cluster")
	case scope == "cluster":
		checkName(errs, p+"redisComponent", r.GetRedisComponent())
	case r.GetRedisComponent() != "" && scope != "cluster":
		errs.add(p+"redisComponent", "only used with scope cluster, got %q with scope %q", r.GetRedisComponent(), scopeOrLocal(scope))
	}
}

func scopeOrLocal(s string) string {
	if s == "" {
		return "local"
	}
	return s
}

func validateAdaptive(errs *errorList, a *configv1.AdaptiveLimit) {
	if a == nil {
		return
	}
	const p = "spec.adaptiveLimit."
	if a.GetAlgorithm() == "" {
		errs.add(p+"algorithm", "required (one of %s)", strings.Join(adaptiveAlgos, ", "))
	} else {
		oneOf(errs, p+"algorithm", a.GetAlgorithm(), adaptiveAlgos)
	}
	checkNonNegativeInt(errs, p+"initialLimit", a.GetInitialLimit())
	checkNonNegativeInt(errs, p+"minLimit", a.GetMinLimit())
	checkNonNegativeInt(errs, p+"maxLimit", a.GetMaxLimit())
	lo, hi, init := a.GetMinLimit(), a.GetMaxLimit(), a.GetInitialLimit()
	if hi > 0 && lo > hi {
		errs.add(p+"minLimit", "must not exceed maxLimit (%d), got %d", hi, lo)
	}
	if init > 0 && (init < lo || (hi > 0 && init > hi)) {
		errs.add(p+"initialLimit", "must be between minLimit and maxLimit, got %d", init)
	}
	checkFraction(errs, p+"cpuThreshold", a.GetCpuThreshold())
}

func validateBreaker(errs *errorList, c *configv1.CircuitBreaker) {
	if c == nil {
		return
	}
	const p = "spec.circuitBreaker."
	checkDuration(errs, p+"window", c.GetWindow())
	checkNonNegativeInt(errs, p+"minCalls", c.GetMinCalls())
	checkFraction(errs, p+"failureRateThreshold", c.GetFailureRateThreshold())
	checkDuration(errs, p+"slowCallDuration", c.GetSlowCallDuration())
	checkFraction(errs, p+"slowCallRateThreshold", c.GetSlowCallRateThreshold())
	if c.GetSlowCallRateThreshold() > 0 && c.GetSlowCallDuration().AsDuration() <= 0 {
		errs.add(p+"slowCallDuration", "required when slowCallRateThreshold is set")
	}
	checkDuration(errs, p+"sleepWindow", c.GetSleepWindow())
	checkNonNegativeInt(errs, p+"halfOpenProbes", c.GetHalfOpenProbes())
}

func validateLB(errs *errorList, lb *configv1.LoadBalancer) {
	if lb == nil {
		return
	}
	const p = "spec.loadBalancer."
	if lb.GetPolicy() != "" {
		oneOf(errs, p+"policy", lb.GetPolicy(), lbPolicies)
	}
	if o := lb.GetOutlierDetection(); o != nil {
		checkNonNegativeInt(errs, p+"outlierDetection.consecutiveFailures", o.GetConsecutiveFailures())
		checkDuration(errs, p+"outlierDetection.baseEjectionTime", o.GetBaseEjectionTime())
		checkFraction(errs, p+"outlierDetection.maxEjectionPercent", o.GetMaxEjectionPercent())
	}
}
