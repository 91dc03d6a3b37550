package config

import (
	"math"
	"strings"
	"testing"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// These tests exercise the Validate functions as the xDS path calls them:
// on protos, with values that YAML parsing cannot produce.

func TestValidateComponent(t *testing.T) {
	valid := func() *configv1.Component {
		return &configv1.Component{Name: "orders", Type: "state.redis", Version: "v1",
			Metadata: []*configv1.MetadataItem{{Name: "redisHost", Value: "r:6379"}}}
	}
	tests := []struct {
		name   string
		modify func(c *configv1.Component)
		want   []wantErr
	}{
		{"valid", func(*configv1.Component) {}, nil},
		{"bindings type, empty version, empty value", func(c *configv1.Component) {
			c.Type, c.Version = "bindings.cron", ""
			c.Metadata = append(c.Metadata, &configv1.MetadataItem{Name: "schedule"})
		}, nil},
		{"name too long", func(c *configv1.Component) { c.Name = strings.Repeat("a", 254) },
			[]wantErr{{field: "metadata.name", msg: "at most 253 characters, got 254"}}},
		{"name of 253 characters", func(c *configv1.Component) { c.Name = strings.Repeat("a", 253) }, nil},
		{"prefix only", func(c *configv1.Component) { c.Type = "state." },
			[]wantErr{{field: "spec.type", msg: `unsupported component type "state."`}}},
		{"whitespace in type", func(c *configv1.Component) { c.Type = "state.re dis" },
			[]wantErr{{field: "spec.type", msg: "must not contain whitespace"}}},
		{"nil metadata item", func(c *configv1.Component) { c.Metadata = append(c.Metadata, nil) },
			[]wantErr{{field: "spec.metadata[1]", msg: "must not be empty"}}},
		{"value and secretKeyRef", func(c *configv1.Component) {
			c.Metadata[0].SecretKeyRef = &configv1.SecretKeyRef{Name: "s", Key: "k"}
		}, []wantErr{{field: "spec.metadata[0]", msg: "set either value or secretKeyRef, not both"}}},
		{"empty secretKeyRef", func(c *configv1.Component) {
			c.Metadata[0] = &configv1.MetadataItem{Name: "p", SecretKeyRef: &configv1.SecretKeyRef{}}
		}, []wantErr{{field: "spec.metadata[0].secretKeyRef.name", msg: "required"}, {field: "spec.metadata[0].secretKeyRef.key", msg: "required"}}},
		{"invalid duration", func(c *configv1.Component) { c.InitTimeout = &durationpb.Duration{Seconds: 1, Nanos: -1} },
			[]wantErr{{field: "spec.initTimeout", msg: "invalid duration"}}},
		{"empty scope", func(c *configv1.Component) { c.Scopes = []string{""} },
			[]wantErr{{field: "scopes[0]", msg: "required"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.modify(c)
			checkFields(t, ValidateComponent(c), tt.want)
		})
	}
	checkFields(t, ValidateComponent(nil), []wantErr{{field: "", msg: "component is nil"}})
}

func TestValidateSubscription(t *testing.T) {
	valid := func() *configv1.Subscription {
		return &configv1.Subscription{Name: "s", PubsubName: "events", Topic: "orders", DefaultRoute: "/orders"}
	}
	tests := []struct {
		name   string
		modify func(s *configv1.Subscription)
		want   []wantErr
	}{
		{"valid", func(*configv1.Subscription) {}, nil},
		{"rules without default; a rule without match matches all", func(s *configv1.Subscription) {
			s.DefaultRoute = ""
			s.Rules = []*configv1.RouteRule{{Match: `event.type == "a"`, Path: "/a"}, {Path: "/rest"}}
		}, nil},
		{"nothing routed", func(s *configv1.Subscription) { s.DefaultRoute = "" },
			[]wantErr{{field: "spec.routes.default", msg: "required when no rules are given"}}},
		{"nil rule", func(s *configv1.Subscription) { s.Rules = []*configv1.RouteRule{nil} },
			[]wantErr{{field: "spec.routes.rules[0]", msg: "must not be empty"}}},
		{"bad pubsub name", func(s *configv1.Subscription) { s.PubsubName = "Events" },
			[]wantErr{{field: "spec.pubsubname", msg: `got "Events"`}}},
		{"missing everything", func(s *configv1.Subscription) { *s = configv1.Subscription{} }, []wantErr{
			{field: "metadata.name", msg: "required"},
			{field: "spec.pubsubname", msg: "required"},
			{field: "spec.topic", msg: "required"},
			{field: "spec.routes.default", msg: "required when no rules are given"},
		}},
		{"empty metadata key", func(s *configv1.Subscription) { s.Metadata = map[string]string{"": "x"} },
			[]wantErr{{field: "spec.metadata", msg: "keys must not be empty"}}},
		{"dead letter with whitespace", func(s *configv1.Subscription) { s.DeadLetterTopic = "dead letters" },
			[]wantErr{{field: "spec.deadLetterTopic", msg: `must not contain whitespace, got "dead letters"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid()
			tt.modify(s)
			checkFields(t, ValidateSubscription(s), tt.want)
		})
	}
}

func TestValidatePolicy(t *testing.T) {
	valid := func() *configv1.Policy {
		return &configv1.Policy{Name: "p", Targets: []*configv1.PolicyTarget{{Kind: "invoke", Name: "Orders_Svc", Method: "Create", Caller: "Checkout"}}}
	}
	nan := math.NaN()
	tests := []struct {
		name   string
		modify func(p *configv1.Policy)
		want   []wantErr
	}{
		{"valid: app ids of any case, no behaviour (overrides a glob policy)", func(*configv1.Policy) {}, nil},
		{"glob names and methods", func(p *configv1.Policy) {
			p.Targets = append(p.Targets, &configv1.PolicyTarget{Kind: "pubsub", Name: "ev*", Method: "orders.?"},
				&configv1.PolicyTarget{Kind: "state", Name: "[a-c]*"})
		}, nil},
		{"nil target", func(p *configv1.Policy) { p.Targets = append(p.Targets, nil) },
			[]wantErr{{field: "spec.targets[1]", msg: "must not be empty"}}},
		{"component name must be lower case", func(p *configv1.Policy) { p.Targets[0].Kind = "state" },
			[]wantErr{{field: "spec.targets[0].name", msg: `got "Orders_Svc"`}}},
		{"NaN everywhere", func(p *configv1.Policy) {
			p.RateLimit = &configv1.RateLimit{Rate: nan}
			p.RandomDrop = &configv1.RandomDrop{Fraction: nan, K: nan}
			p.AdaptiveLimit = &configv1.AdaptiveLimit{Algorithm: "bbr", CpuThreshold: nan}
			p.Retry = &configv1.Retry{MaxAttempts: 2, Multiplier: nan, Jitter: nan, BudgetRatio: nan, MinRetriesPerSecond: nan}
		}, []wantErr{
			{field: "spec.retry.multiplier", msg: "got NaN"},
			{field: "spec.retry.jitter", msg: "got NaN"},
			{field: "spec.retry.budgetRatio", msg: "got NaN"},
			{field: "spec.retry.minRetriesPerSecond", msg: "got NaN"},
			{field: "spec.rateLimit.rate", msg: "must be > 0, got NaN"},
			{field: "spec.adaptiveLimit.cpuThreshold", msg: "got NaN"},
			{field: "spec.randomDrop.fraction", msg: "got NaN"},
			{field: "spec.randomDrop.k", msg: "got NaN"},
		}},
		{"adaptive limit needs an algorithm", func(p *configv1.Policy) { p.AdaptiveLimit = &configv1.AdaptiveLimit{} },
			[]wantErr{{field: "spec.adaptiveLimit.algorithm", msg: "required (one of gradient2, bbr)"}}},
		{"cluster rate limit with a bad component name", func(p *configv1.Policy) {
			p.RateLimit = &configv1.RateLimit{Rate: 1, Scope: "cluster", RedisComponent: "Redis"}
		}, []wantErr{{field: "spec.rateLimit.redisComponent", msg: `got "Redis"`}}},
		{"redis component without cluster scope", func(p *configv1.Policy) {
			p.RateLimit = &configv1.RateLimit{Rate: 1, RedisComponent: "redis"}
		}, []wantErr{{field: "spec.rateLimit.redisComponent", msg: `only used with scope cluster, got "redis" with scope "local"`}}},
		{"rate limit per caller is not a thing", func(p *configv1.Policy) {
			p.RateLimit = &configv1.RateLimit{Rate: 1, Per: "caller"}
		}, []wantErr{{field: "spec.rateLimit.per", msg: `must be one of method, policy, got "caller"`}}},
		{"rate limit per policy", func(p *configv1.Policy) { p.RateLimit = &configv1.RateLimit{Rate: 1, Per: "policy"} }, nil},
		{"retry of OK", func(p *configv1.Policy) { p.Retry = &configv1.Retry{MaxAttempts: 1, RetryableCodes: []string{"OK"}} },
			[]wantErr{{field: "spec.retry.retryableCodes[0]", msg: `got "OK"`}}},
		{"timeout without duration is fine", func(p *configv1.Policy) { p.Timeout = &configv1.Timeout{} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := valid()
			tt.modify(p)
			checkFields(t, ValidatePolicy(p), tt.want)
		})
	}
}
