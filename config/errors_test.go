package config

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

func TestParseBytesErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []wantErr
	}{
		{"unknown field in spec", `
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: orders}
spec:
  type: state.redis
  metdata: []`, []wantErr{{7, "spec.metdata", `unknown field "metdata" (known: type, version, metadata`}}},
		{"unknown top-level field", `
apiVersion: outrig.dev/v1alpha1
kind: Component
metadata: {name: orders}
spec: {type: state.redis}
auth: {secretStore: vault}`, []wantErr{{6, "auth", `unknown field "auth"`}}},
		{"unknown nested policy field", `
apiVersion: outrig.dev/v1alpha1
kind: Policy
metadata: {name: p}
spec:
  targets: [{kind: invoke, name: orders}]
  rateLimit:
    rate: 5
    rte: 6`, []wantErr{{9, "spec.rateLimit.rte", `unknown field "rte" (known: rate, burst, scope, redisComponent, per)`}}},
		{"missing apiVersion and kind", `
metadata: {name: x}`, []wantErr{{2, "apiVersion", "required"}, {2, "kind", "required"}}},
		{"unknown apiVersion", `
apiVersion: apps/v1
kind: Deployment`, []wantErr{{2, "apiVersion", `unknown apiVersion "apps/v1"`}}},
		{"unknown kind", `
apiVersion: outrig.dev/v1alpha1
kind: Subscription`, []wantErr{{3, "kind", `unknown kind "Subscription" for apiVersion outrig.dev/v1alpha1 (known: Component, Policy)`}}},
		{"Dapr Configuration", `
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: tracing}`, []wantErr{{3, "kind", "kind Configuration is not supported"}}},
		{"Dapr HTTPEndpoint", `
apiVersion: dapr.io/v1alpha1
kind: HTTPEndpoint`, []wantErr{{3, "kind", "kind HTTPEndpoint is not supported"}}},
		{"Dapr Resiliency", `
apiVersion: dapr.io/v1alpha1
kind: Resiliency`, []wantErr{{3, "kind", "kind Resiliency is not supported; use an outrig.dev/v1alpha1 Policy"}}},
		{"document is not a mapping", `
- a
- b`, []wantErr{{2, "", "a document must be a mapping"}}},
		{"YAML syntax error", `
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: x
spec: {}`, []wantErr{{4, "", `invalid YAML: did not find expected ',' or '}'`}}},
		{"YAML scanner error", `
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: name: x`, []wantErr{{4, "", "invalid YAML: mapping values are not allowed in this context"}}},
		{"YAML parser error in a flow sequence on line 1", `kind: [a
apiVersion: x`, []wantErr{{2, "", "invalid YAML: did not find expected ',' or ']'"}}},
		{"YAML parser error in the top-level mapping", `apiVersion: dapr.io/v1alpha1
kind: Component
- metadata`, []wantErr{{3, "", "invalid YAML: did not find expected key"}}},
		{"YAML parser error in a nested mapping", `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: x
  - y`, []wantErr{{4, "", "invalid YAML: did not find expected key"}}},
		{"unknown anchor", `
apiVersion: dapr.io/v1alpha1
metadata: {name: "*k8s"}
kind: *k`, []wantErr{{4, "", "invalid YAML: unknown anchor 'k' referenced"}}},
		{"long values are shortened in messages", `
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: x}
spec:
  type: state.redis
  initTimeout: ` + strings.Repeat("9", 100), []wantErr{{7, "spec.initTimeout", `got "` + strings.Repeat("9", 64) + `..." (100 bytes)`}}},
		{"duplicate key", `
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: x}
spec:
  type: state.redis
  type: state.memory`, []wantErr{{7, "spec.type", "duplicate key (first at line 6)"}}},
		{"merge keys", `
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: x}
spec:
  <<: {type: state.redis}`, []wantErr{{5, "spec.type", "required"}, {6, "spec.<<", "merge keys (<<) are not supported"}}},
		{"wrong shapes", `
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: x}
spec:
  type: [state.redis]
  metadata: {redisHost: localhost}
  ignoreErrors: "yes"
  initTimeout: soon
scopes: checkout`, []wantErr{
			{6, "spec.type", "must be a string, got a sequence"},
			{7, "spec.metadata", "must be a sequence, got a mapping"},
			{8, "spec.ignoreErrors", `must be true or false, got "yes"`},
			{9, "spec.initTimeout", `must be a duration such as "500ms" or "2s", got "soon"`},
			{10, "scopes", `must be a sequence, got "checkout"`},
		}},
		{"metadata items", `
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: x}
spec:
  type: pubsub.kafka
  metadata:
  - name: brokers
    value: k:9092
  - name: Brokers
    value: k2:9092
  - value: orphan
  - name: saslPassword
  - name: token
    secretKeyRef: {name: kafka}
  - name: both
    value: ""
    secretKeyRef: {name: kafka, key: k}
  - name: bad
    valeu: x
  - name: inline
    secretKeyRef: hunter2`, []wantErr{
			{10, "spec.metadata[1].name", `duplicate metadata name "Brokers" (also spec.metadata[0]`},
			{12, "spec.metadata[2].name", "required"},
			{13, "spec.metadata[3]", "needs value or secretKeyRef"},
			{15, "spec.metadata[4].secretKeyRef.key", "required"},
			{16, "spec.metadata[5]", "set either value or secretKeyRef, not both"},
			{19, "spec.metadata[6]", "needs value or secretKeyRef"},
			{20, "spec.metadata[6].valeu", `unknown field "valeu"`},
			{22, "spec.metadata[7].secretKeyRef", "must be a mapping with name and key"},
		}},
		{"alias bomb in a metadata value", `
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: x}
spec:
  type: state.redis
  metadata:
  - name: a
    value: &a [x, x, x, x, x, x, x, x, x, x]
  - name: b
    value: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
  - name: c
    value: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
  - name: d
    value: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
  - name: e
    value: {k: [1, {k2: .nan}]}
  - name: f
    value: {[1]: x}`, []wantErr{
			{15, "spec.metadata[3].value", "value too large (more than 10000 nodes"},
			{17, "spec.metadata[4].value", "cannot be represented as JSON: json: unsupported value: NaN"},
			{19, "spec.metadata[5].value", "keys must be plain strings"},
		}},
		{"component validation", `
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: Orders_DB
spec:
  type: secretstores.local.file
  version: 1
  initTimeout: -5s
scopes: [checkout, "-bad"]`, []wantErr{
			{5, "metadata.name", `got "Orders_DB"`},
			{7, "spec.type", `unsupported component type "secretstores.local.file": want a state., pubsub., bindings. type`},
			{8, "spec.version", `must look like v1 or v2alpha1, got "1"`},
			{9, "spec.initTimeout", "must be >= 0, got -5s"},
			{10, "scopes[1]", `got "-bad"`},
		}},
		{"missing metadata and spec", `
apiVersion: dapr.io/v1alpha1
kind: Component`, []wantErr{{2, "metadata.name", "required"}, {2, "spec.type", "required"}}},
		{"v2alpha1 subscription", `
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: s}
spec:
  pubsubname: events
  topic: orders
  routes:
    rules:
    - match: event.type == "x"
  deadLetterTopic: orders
  maxRedeliveries: -1
  metadata: {a: [1]}`, []wantErr{
			{10, "spec.routes.rules[0].path", "required"},
			{11, "spec.deadLetterTopic", `must differ from spec.topic, got "orders"`},
			{12, "spec.maxRedeliveries", "must be >= 0, got -1"},
			{13, "spec.metadata.a", "must be a string, got a sequence"},
		}},
		{"v1alpha1 subscription without route", `
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {name: s}
spec:
  pubsubname: events
  topic: my topic`, []wantErr{
			{5, "spec.route", "required when no rules are given"},
			{7, "spec.topic", `must not contain whitespace, got "my topic"`},
		}},
		{"v1alpha1 subscription with v2 routes", `
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {name: s}
spec:
  pubsubname: events
  topic: t
  route: 5
  routes: {default: /x}`, []wantErr{{9, "spec.routes", `unknown field "routes"`}}},
		{"policy numbers", `
apiVersion: outrig.dev/v1alpha1
kind: Policy
metadata: {name: p}
spec:
  targets:
  - {kind: invoke, name: "orders", caller: "check out"}
  - {kind: state, name: "st[", method: Get}
  - {name: "*"}
  - {kind: binding, name: Cron}
  timeout: -1s
  retry: {maxAttempts: 0, initialBackoff: 2s, maxBackoff: 1s, multiplier: 0.5, jitter: 2, retryableCodes: [UNAVAILABLE, Unavailable], budgetRatio: -0.1, minRetriesPerSecond: -1}
  rateLimit: {rate: -1, burst: -2, scope: global, redisComponent: orders}
  adaptiveLimit: {algorithm: vegas, initialLimit: 500, minLimit: 10, maxLimit: 5, cpuThreshold: 1.1}
  circuitBreaker: {window: -1s, minCalls: -1, failureRateThreshold: 2, slowCallRateThreshold: 0.5, halfOpenProbes: -1}
  bulkhead: {maxConcurrent: -1, maxQueue: -1, queueTimeout: -1ms}
  randomDrop: {fraction: 0.5, k: 2, window: -1s}
  loadBalancer: {policy: random, outlierDetection: {consecutiveFailures: -1, baseEjectionTime: -1s, maxEjectionPercent: 50}}`,
			[]wantErr{
				{7, "spec.targets[0].caller", `got "check out"`},
				{8, "spec.targets[1].name", `invalid glob "st["`},
				{9, "spec.targets[2].kind", "required"},
				{10, "spec.targets[3].name", `got "Cron"`},
				{11, "spec.timeout", "must be >= 0, got -1s"},
				{12, "spec.retry.maxAttempts", "must be >= 1, got 0"},
				{12, "spec.retry.initialBackoff", "must not exceed maxBackoff (1s), got 2s"},
				{12, "spec.retry.multiplier", "must be >= 1 (or unset for the default 2), got 0.5"},
				{12, "spec.retry.jitter", "must be between 0 and 1, got 2"},
				{12, "spec.retry.retryableCodes[1]", `got "Unavailable"`},
				{12, "spec.retry.budgetRatio", "must be between 0 and 1, got -0.1"},
				{12, "spec.retry.minRetriesPerSecond", "must be >= 0, got -1"},
				{13, "spec.rateLimit.rate", "must be > 0, got -1"},
				{13, "spec.rateLimit.burst", "must be >= 0, got -2"},
				{13, "spec.rateLimit.scope", `must be one of local, cluster, got "global"`},
				{13, "spec.rateLimit.redisComponent", `only used with scope cluster, got "orders" with scope "global"`},
				{14, "spec.adaptiveLimit.algorithm", `must be one of gradient2, bbr, got "vegas"`},
				{14, "spec.adaptiveLimit.minLimit", "must not exceed maxLimit (5), got 10"},
				{14, "spec.adaptiveLimit.initialLimit", "must be between minLimit and maxLimit, got 500"},
				{14, "spec.adaptiveLimit.cpuThreshold", "must be between 0 and 1, got 1.1"},
				{15, "spec.circuitBreaker.window", "must be >= 0, got -1s"},
				{15, "spec.circuitBreaker.minCalls", "must be >= 0, got -1"},
				{15, "spec.circuitBreaker.failureRateThreshold", "must be between 0 and 1, got 2"},
				{15, "spec.circuitBreaker.slowCallDuration", "required when slowCallRateThreshold is set"},
				{15, "spec.circuitBreaker.halfOpenProbes", "must be >= 0, got -1"},
				{16, "spec.bulkhead.maxConcurrent", "must be > 0, got -1"},
				{16, "spec.bulkhead.maxQueue", "must be >= 0, got -1"},
				{16, "spec.bulkhead.queueTimeout", "must be >= 0, got -1ms"},
				{17, "spec.randomDrop.window", "must be >= 0, got -1s"},
				{17, "spec.randomDrop", "set either fraction or k, not both"},
				{18, "spec.loadBalancer.policy", `must be one of round_robin, p2c, least_connections, hrw, ring_hash, got "random"`},
				{18, "spec.loadBalancer.outlierDetection.consecutiveFailures", "must be >= 0, got -1"},
				{18, "spec.loadBalancer.outlierDetection.baseEjectionTime", "must be >= 0, got -1s"},
				{18, "spec.loadBalancer.outlierDetection.maxEjectionPercent", "must be between 0 and 1, got 50"},
			}},
		{"policy decoding", `
apiVersion: outrig.dev/v1alpha1
kind: Policy
metadata: {name: p}
spec:
  timeout: 2
  retry: {maxAttempts: "3"}
  rateLimit: {rate: .nan, burst: 3000000000, scope: cluster}
  bulkhead: {maxConcurrent: 1.5}`, []wantErr{
			{5, "spec.targets", "at least one target is required"},
			{6, "spec.timeout", `must be a duration such as "500ms" or "2s", got "2"`},
			{7, "spec.retry.maxAttempts", `must be an integer, got "3"`},
			{8, "spec.rateLimit.rate", `must be a finite number, got ".nan"`},
			{8, "spec.rateLimit.burst", "3000000000 is out of range"},
			{8, "spec.rateLimit.redisComponent", "required with scope cluster"},
			{9, "spec.bulkhead.maxConcurrent", `must be an integer, got "1.5"`},
		}},
		{"duplicate names in one file", `
apiVersion: outrig.dev/v1alpha1
kind: Policy
metadata: {name: p}
spec: {targets: [{kind: invoke, name: a}]}
---
apiVersion: outrig.dev/v1alpha1
kind: Component
metadata: {name: p}
spec: {type: state.memory}
---
apiVersion: outrig.dev/v1alpha1
kind: Policy
metadata:
  name: p
spec: {targets: [{kind: invoke, name: b}]}`, []wantErr{{15, "metadata.name", `duplicate Policy name "p" (first defined at line 4)`}}},
		{"errors of every document", `
apiVersion: outrig.dev/v1alpha1
kind: Component
metadata: {name: a}
spec: {type: state.memory, bogus: 1}
---
apiVersion: outrig.dev/v1alpha1
kind: Component
metadata: {name: b}
spec: {type: nope}`, []wantErr{
			{5, "spec.bogus", "unknown field"},
			{10, "spec.type", `unsupported component type "nope"`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := ParseBytes("bad.yaml", []byte(tt.yaml))
			if set != nil {
				t.Errorf("ParseBytes returned a Set along with errors: %v", set)
			}
			checkErrs(t, err, "bad.yaml", tt.want)
		})
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{File: "a.yaml", Line: 3, Field: "spec.type", Msg: "required"}, "a.yaml:3: spec.type: required"},
		{&Error{File: "a.yaml", Line: 3, Msg: "invalid YAML: x"}, "a.yaml:3: invalid YAML: x"},
		{&Error{File: "a.yaml", Msg: "permission denied"}, "a.yaml: permission denied"},
		{&Error{Field: "spec.rateLimit.rate", Msg: "must be > 0, got 0"}, "spec.rateLimit.rate: must be > 0, got 0"},
		{&Error{Msg: "policy is nil"}, "policy is nil"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestParseFileMissing(t *testing.T) {
	_, err := ParseFile("testdata/does-not-exist.yaml")
	var e *Error
	if !errors.As(err, &e) || e.File != "testdata/does-not-exist.yaml" || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ParseFile(missing) = %v, want an *Error naming the file and wrapping fs.ErrNotExist", err)
	}
}
