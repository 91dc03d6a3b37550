package config

import (
	"strings"
	"testing"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
)

func TestParseDaprExamples(t *testing.T) {
	tests := []struct {
		file string
		want *Set
	}{{
		file: "testdata/valid/components/statestore.yaml",
		want: &Set{Components: map[string]*configv1.Component{"orders": {
			Name: "orders", Type: "state.redis", Version: "v1", InitTimeout: dur("5s"),
			Metadata: []*configv1.MetadataItem{
				{Name: "redisHost", Value: "localhost:6379"},
				{Name: "redisPassword", SecretKeyRef: &configv1.SecretKeyRef{Name: "redis", Key: "password"}},
				{Name: "actorStateStore", Value: "true"},
				{Name: "redisDB", Value: "0"},
				{Name: "keyPrefix", Value: ""},
				{Name: "ttlInSeconds", Value: ""},
			},
			Scopes: []string{"checkout", "OrderService"},
		}}},
	}, {
		file: "testdata/valid/components/pubsub-kafka.yaml",
		want: &Set{Components: map[string]*configv1.Component{"events": {
			Name: "events", Type: "pubsub.kafka", Version: "v1",
			Metadata: []*configv1.MetadataItem{
				{Name: "brokers", Value: "kafka-0:9092,kafka-1:9092"},
				{Name: "consumerGroup", Value: "{appID}"},
				{Name: "authType", Value: "password"},
				{Name: "saslUsername", Value: "outrig"},
				{Name: "saslPassword", SecretKeyRef: &configv1.SecretKeyRef{Name: "kafka", Key: "sasl-password"}},
				{Name: "maxMessageBytes", Value: "1024"},
				{Name: "consumeRetryInterval", Value: "200ms"},
				{Name: "initialOffset", Value: "oldest"},
			},
		}}},
	}, {
		file: "testdata/valid/subscriptions.yaml",
		want: &Set{Subscriptions: map[string]*configv1.Subscription{
			"order-events": {
				Name: "order-events", PubsubName: "events", Topic: "orders",
				Rules: []*configv1.RouteRule{
					{Match: `event.type == "order.created"`, Path: "/orders/created"},
					{Match: `event.type == "order.paid" && event.source == "payments"`, Path: "/orders/paid"},
				},
				DefaultRoute:    "/orders",
				DeadLetterTopic: "orders-dead",
				Metadata:        map[string]string{"rawPayload": "false", "maxConcurrency": "8"},
				MaxRedeliveries: 5,
				Scopes:          []string{"checkout", "shipping"},
			},
			"payment-events": {
				Name: "payment-events", PubsubName: "events", Topic: "payments",
				DefaultRoute: "/payments", Scopes: []string{"billing"},
			},
		}},
	}, {
		file: "testdata/valid/policies.yaml",
		want: &Set{Policies: map[string]*configv1.Policy{
			"orders-create-limit": {
				Name: "orders-create-limit",
				Targets: []*configv1.PolicyTarget{
					{Kind: "invoke", Name: "orders", Method: "Create"},
					{Kind: "invoke", Name: "orders", Method: "Update*", Caller: "checkout"},
				},
				Timeout: &configv1.Timeout{Duration: dur("2s")},
				Retry: &configv1.Retry{
					MaxAttempts: 3, InitialBackoff: dur("20ms"), MaxBackoff: dur("1s"), Multiplier: 2,
					Jitter: 0.2, RetryableCodes: []string{"UNAVAILABLE"}, BudgetRatio: 0.2, MinRetriesPerSecond: 10,
				},
				RateLimit:     &configv1.RateLimit{Rate: 50, Burst: 50, Scope: "local"},
				AdaptiveLimit: &configv1.AdaptiveLimit{Algorithm: "gradient2", InitialLimit: 20, MinLimit: 1, MaxLimit: 200, CpuThreshold: 0.8},
				CircuitBreaker: &configv1.CircuitBreaker{
					Window: dur("10s"), MinCalls: 20, FailureRateThreshold: 0.5, SlowCallDuration: dur("1s"),
					SlowCallRateThreshold: 0.8, SleepWindow: dur("5s"), HalfOpenProbes: 3,
				},
				Bulkhead:   &configv1.Bulkhead{MaxConcurrent: 10, MaxQueue: 5, QueueTimeout: dur("100ms")},
				RandomDrop: &configv1.RandomDrop{Fraction: 0.1},
				LoadBalancer: &configv1.LoadBalancer{Policy: "hrw", HashKey: "user", OutlierDetection: &configv1.OutlierDetection{
					ConsecutiveFailures: 5, BaseEjectionTime: dur("30s"), MaxEjectionPercent: 0.5,
				}},
				Scopes: []string{"checkout"},
			},
			"state-cluster-limit": {
				Name:       "state-cluster-limit",
				Targets:    []*configv1.PolicyTarget{{Kind: "state", Name: "orders", Method: "Bulk*"}},
				RateLimit:  &configv1.RateLimit{Rate: 1000, Scope: "cluster", RedisComponent: "orders"},
				RandomDrop: &configv1.RandomDrop{K: 2, Window: dur("10s")},
			},
		}},
	}}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseFile(tt.file)
			if err != nil {
				t.Fatalf("ParseFile: %v", err)
			}
			want := newSet()
			if err := want.Merge(tt.want); err != nil {
				t.Fatal(err)
			}
			if d := diff(want, got); d != "" {
				t.Errorf("ParseFile(%s) mismatch (-want +got):\n%s", tt.file, d)
			}
		})
	}
}

func TestParseBytesValues(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []*configv1.MetadataItem
	}{
		{"numbers and booleans keep their written form", `
- {name: a, value: 0x1F}
- {name: b, value: 1.50}
- {name: c, value: yes}
- {name: d, value: False}
- {name: e, value: 007}`, []*configv1.MetadataItem{
			{Name: "a", Value: "0x1F"}, {Name: "b", Value: "1.50"}, {Name: "c", Value: "yes"},
			{Name: "d", Value: "False"}, {Name: "e", Value: "007"},
		}},
		{"null and empty values are empty strings", `
- {name: a, value: null}
- {name: b, value: ~}
- {name: c, value: ""}`, []*configv1.MetadataItem{{Name: "a"}, {Name: "b"}, {Name: "c"}}},
		{"block scalars and JSON objects", `
- name: cert
  value: |
    line1
    line2
- name: obj
  value: {b: 1, a: [x, 2]}`, []*configv1.MetadataItem{
			{Name: "cert", Value: "line1\nline2\n"}, {Name: "obj", Value: `{"a":["x",2],"b":1}`},
		}},
		{"aliases inside JSON values", `
- {name: a, value: &l [1, 2]}
- {name: b, value: {x: *l, y: *l}}`, []*configv1.MetadataItem{{Name: "a", Value: "[1,2]"}, {Name: "b", Value: `{"x":[1,2],"y":[1,2]}`}}},
		{"anchors and aliases", `
- {name: host, value: &h "redis:6379"}
- {name: replicaHost, value: *h}`, []*configv1.MetadataItem{
			{Name: "host", Value: "redis:6379"}, {Name: "replicaHost", Value: "redis:6379"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: s}\nspec:\n  type: state.redis\n  metadata:" +
				indent(tt.yaml, "  ")
			set, err := ParseBytes("t.yaml", []byte(src))
			if err != nil {
				t.Fatalf("ParseBytes: %v\n%s", err, src)
			}
			if d := diff(tt.want, set.Components["s"].GetMetadata()); d != "" {
				t.Errorf("metadata mismatch (-want +got):\n%s", d)
			}
		})
	}
}

// indent puts every line of the block s on its own line with prefix.
func indent(s, prefix string) string {
	return "\n" + prefix + strings.ReplaceAll(strings.Trim(s, "\n"), "\n", "\n"+prefix)
}

func TestParseBytesMultiDocument(t *testing.T) {
	src := `# leading comment
---
apiVersion: outrig.dev/v1alpha1
kind: Component
metadata: {name: cache}
spec: {type: state.memory}
---
# an empty document
---
---
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {name: s1}
spec: {pubsubname: events, topic: t, route: /t}
---
apiVersion: outrig.dev/v1alpha1
kind: Policy
metadata: {name: p1}
spec: {targets: [{kind: pubsub, name: events}], timeout: 1s}
...
`
	set, err := ParseBytes("multi.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := &Set{
		Components:    map[string]*configv1.Component{"cache": {Name: "cache", Type: "state.memory"}},
		Subscriptions: map[string]*configv1.Subscription{"s1": {Name: "s1", PubsubName: "events", Topic: "t", DefaultRoute: "/t"}},
		Policies: map[string]*configv1.Policy{"p1": {
			Name: "p1", Targets: []*configv1.PolicyTarget{{Kind: "pubsub", Name: "events"}},
			Timeout: &configv1.Timeout{Duration: dur("1s")},
		}},
	}
	if d := diff(want, set); d != "" {
		t.Errorf("mismatch (-want +got):\n%s", d)
	}

	// Lines count from the start of the file, across documents.
	bad := "apiVersion: outrig.dev/v1alpha1\nkind: Component\nmetadata: {name: a}\nspec: {type: state.memory}\n---\n" +
		"apiVersion: outrig.dev/v1alpha1\nkind: Component\nmetadata: {name: b}\nspec: {type: lock.redis}\n"
	_, err = ParseBytes("multi.yaml", []byte(bad))
	checkErrs(t, err, "multi.yaml", []wantErr{{9, "spec.type", `unsupported component type "lock.redis"`}})
}

func TestParseBytesEmpty(t *testing.T) {
	for _, src := range []string{"", "\n", "# only a comment\n", "---\n", "---\n...\n---\n"} {
		set, err := ParseBytes("e.yaml", []byte(src))
		if err != nil {
			t.Fatalf("ParseBytes(%q): %v", src, err)
		}
		if d := diff(newSet(), set); d != "" {
			t.Errorf("ParseBytes(%q) not empty: %s", src, d)
		}
	}
}

func TestParseBytesCRLFAndBOM(t *testing.T) {
	src := "\ufeff" + strings.ReplaceAll(compA+"---\n"+badDoc, "\n", "\r\n")
	_, err := ParseBytes("win.yaml", []byte(src))
	checkErrs(t, err, "win.yaml", []wantErr{{9, "spec.oops", `unknown field "oops"`}})
	set, err := ParseBytes("win.yaml", []byte("\ufeff"+strings.ReplaceAll(compA, "\n", "\r\n")))
	if err != nil || set.Components["a"].GetType() != "state.memory" {
		t.Fatalf("ParseBytes(CRLF, BOM) = %v, %v", set, err)
	}
}
