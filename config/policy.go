package config

import (
	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"gopkg.in/yaml.v3"
)

// policy decodes an outrig.dev/v1alpha1 Policy. Field names are the camelCase
// JSON names of the proto fields; durations are Go duration strings.
func (d *doc) policy(n *yaml.Node) *configv1.Policy {
	pol := &configv1.Policy{}
	known := append(append([]field{}, topFields...),
		d.metadataFields(&pol.Name),
		field{"spec", func(p string, v *yaml.Node) { d.policySpec(p, v, pol) }},
		field{"scopes", func(p string, v *yaml.Node) { pol.Scopes = d.strings(p, v) }},
	)
	d.fields("", n, known)
	d.addValidation(validatePolicy(pol))
	return pol
}

func (d *doc) policySpec(path string, n *yaml.Node, pol *configv1.Policy) {
	d.fields(path, n, []field{
		{"targets", func(p string, v *yaml.Node) {
			d.items(p, v, func(p string, v *yaml.Node) {
				t := &configv1.PolicyTarget{}
				d.fields(p, v, []field{
					{"kind", func(p string, v *yaml.Node) { t.Kind = d.str(p, v) }},
					{"name", func(p string, v *yaml.Node) { t.Name = d.str(p, v) }},
					{"method", func(p string, v *yaml.Node) { t.Method = d.str(p, v) }},
					{"caller", func(p string, v *yaml.Node) { t.Caller = d.str(p, v) }},
				})
				pol.Targets = append(pol.Targets, t)
			})
		}},
		{"timeout", func(p string, v *yaml.Node) {
			if dur := d.duration(p, v); dur != nil {
				pol.Timeout = &configv1.Timeout{Duration: dur}
			}
		}},
		{"retry", func(p string, v *yaml.Node) { pol.Retry = d.retry(p, v) }},
		{"rateLimit", func(p string, v *yaml.Node) { pol.RateLimit = d.rateLimit(p, v) }},
		{"adaptiveLimit", func(p string, v *yaml.Node) { pol.AdaptiveLimit = d.adaptiveLimit(p, v) }},
		{"circuitBreaker", func(p string, v *yaml.Node) { pol.CircuitBreaker = d.circuitBreaker(p, v) }},
		{"bulkhead", func(p string, v *yaml.Node) { pol.Bulkhead = d.bulkhead(p, v) }},
		{"randomDrop", func(p string, v *yaml.Node) { pol.RandomDrop = d.randomDrop(p, v) }},
		{"loadBalancer", func(p string, v *yaml.Node) { pol.LoadBalancer = d.loadBalancer(p, v) }},
	})
}

// present reports whether a policy block is written at all; "retry:" with no
// value counts as absent.
func present(n *yaml.Node) bool { return !isNull(resolve(n)) }

func (d *doc) retry(path string, n *yaml.Node) *configv1.Retry {
	if !present(n) {
		return nil
	}
	r := &configv1.Retry{}
	d.fields(path, n, []field{
		{"maxAttempts", func(p string, v *yaml.Node) { r.MaxAttempts = d.int32(p, v) }},
		{"initialBackoff", func(p string, v *yaml.Node) { r.InitialBackoff = d.duration(p, v) }},
		{"maxBackoff", func(p string, v *yaml.Node) { r.MaxBackoff = d.duration(p, v) }},
		{"multiplier", func(p string, v *yaml.Node) { r.Multiplier = d.float(p, v) }},
		{"jitter", func(p string, v *yaml.Node) { r.Jitter = d.float(p, v) }},
		{"retryableCodes", func(p string, v *yaml.Node) { r.RetryableCodes = d.strings(p, v) }},
		{"budgetRatio", func(p string, v *yaml.Node) { r.BudgetRatio = d.float(p, v) }},
		{"minRetriesPerSecond", func(p string, v *yaml.Node) { r.MinRetriesPerSecond = d.float(p, v) }},
	})
	return r
}

func (d *doc) rateLimit(path string, n *yaml.Node) *configv1.RateLimit {
	if !present(n) {
		return nil
	}
	r := &configv1.RateLimit{}
	d.fields(path, n, []field{
		{"rate", func(p string, v *yaml.Node) { r.Rate = d.float(p, v) }},
		{"burst", func(p string, v *yaml.Node) { r.Burst = d.int32(p, v) }},
		{"scope", func(p string, v *yaml.Node) { r.Scope = d.str(p, v) }},
		{"redisComponent", func(p string, v *yaml.Node) { r.RedisComponent = d.str(p, v) }},
		{"per", func(p string, v *yaml.Node) { r.Per = d.str(p, v) }},
	})
	return r
}

func (d *doc) adaptiveLimit(path string, n *yaml.Node) *configv1.AdaptiveLimit {
	if !present(n) {
		return nil
	}
	a := &configv1.AdaptiveLimit{}
	d.fields(path, n, []field{
		{"algorithm", func(p string, v *yaml.Node) { a.Algorithm = d.str(p, v) }},
		{"initialLimit", func(p string, v *yaml.Node) { a.InitialLimit = d.int32(p, v) }},
		{"minLimit", func(p string, v *yaml.Node) { a.MinLimit = d.int32(p, v) }},
		{"maxLimit", func(p string, v *yaml.Node) { a.MaxLimit = d.int32(p, v) }},
		{"cpuThreshold", func(p string, v *yaml.Node) { a.CpuThreshold = d.float(p, v) }},
	})
	return a
}

func (d *doc) circuitBreaker(path string, n *yaml.Node) *configv1.CircuitBreaker {
	if !present(n) {
		return nil
	}
	c := &configv1.CircuitBreaker{}
	d.fields(path, n, []field{
		{"window", func(p string, v *yaml.Node) { c.Window = d.duration(p, v) }},
		{"minCalls", func(p string, v *yaml.Node) { c.MinCalls = d.int32(p, v) }},
		{"failureRateThreshold", func(p string, v *yaml.Node) { c.FailureRateThreshold = d.float(p, v) }},
		{"slowCallDuration", func(p string, v *yaml.Node) { c.SlowCallDuration = d.duration(p, v) }},
		{"slowCallRateThreshold", func(p string, v *yaml.Node) { c.SlowCallRateThreshold = d.float(p, v) }},
		{"sleepWindow", func(p string, v *yaml.Node) { c.SleepWindow = d.duration(p, v) }},
		{"halfOpenProbes", func(p string, v *yaml.Node) { c.HalfOpenProbes = d.int32(p, v) }},
	})
	return c
}

func (d *doc) bulkhead(path string, n *yaml.Node) *configv1.Bulkhead {
	if !present(n) {
		return nil
	}
	b := &configv1.Bulkhead{}
	d.fields(path, n, []field{
		{"maxConcurrent", func(p string, v *yaml.Node) { b.MaxConcurrent = d.int32(p, v) }},
		{"maxQueue", func(p string, v *yaml.Node) { b.MaxQueue = d.int32(p, v) }},
		{"queueTimeout", func(p string, v *yaml.Node) { b.QueueTimeout = d.duration(p, v) }},
	})
	return b
}

func (d *doc) randomDrop(path string, n *yaml.Node) *configv1.RandomDrop {
	if !present(n) {
		return nil
	}
	r := &configv1.RandomDrop{}
	d.fields(path, n, []field{
		{"fraction", func(p string, v *yaml.Node) { r.Fraction = d.float(p, v) }},
		{"k", func(p string, v *yaml.Node) { r.K = d.float(p, v) }},
		{"window", func(p string, v *yaml.Node) { r.Window = d.duration(p, v) }},
	})
	return r
}

func (d *doc) loadBalancer(path string, n *yaml.Node) *configv1.LoadBalancer {
	if !present(n) {
		return nil
	}
	lb := &configv1.LoadBalancer{}
	d.fields(path, n, []field{
		{"policy", func(p string, v *yaml.Node) { lb.Policy = d.str(p, v) }},
		{"hashKey", func(p string, v *yaml.Node) { lb.HashKey = d.str(p, v) }},
		{"outlierDetection", func(p string, v *yaml.Node) {
			if !present(v) {
				return
			}
			o := &configv1.OutlierDetection{}
			d.fields(p, v, []field{
				{"consecutiveFailures", func(p string, v *yaml.Node) { o.ConsecutiveFailures = d.int32(p, v) }},
				{"baseEjectionTime", func(p string, v *yaml.Node) { o.BaseEjectionTime = d.duration(p, v) }},
				{"maxEjectionPercent", func(p string, v *yaml.Node) { o.MaxEjectionPercent = d.float(p, v) }},
			})
			lb.OutlierDetection = o
		}},
	})
	return lb
}
