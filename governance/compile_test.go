package governance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/clock"
)

func TestPrecedence(t *testing.T) {
	policies := []*configv1.Policy{
		pol("a-all-state", tgt("state", "*", "", "")),
		pol("b-orders-any", tgt("state", "orders", "*", "")),
		pol("c-glob-get", tgt("state", "ord*", "Get", "")),
		pol("d-orders-get", tgt("state", "orders", "Get", "")),
		pol("e-orders-get-checkout", tgt("state", "orders", "Get", "checkout")),
		pol("f-glob-name-glob-method-caller", tgt("state", "*", "*", "checkout")),
		pol("g-orders-any-tie", tgt("state", "orders", "", "")), // same specificity as b
		pol("h-multi", tgt("pubsub", "events", "paid", ""), tgt("invoke", "payments", "Charge*", "")),
		pol("i-invoke-slash", tgt("invoke", "payments", "*", "")),
	}
	tb := compile(t, nil, Deps{}, policies...)
	tests := []struct {
		kind, name, method, caller string
		want                       string
	}{
		{"state", "orders", "Get", "checkout", "e-orders-get-checkout"}, // exact method+name+caller
		{"state", "orders", "Get", "billing", "d-orders-get"},           // caller does not match e
		{"state", "orders", "Get", "", "d-orders-get"},
		{"state", "orderz", "Get", "", "c-glob-get"},           // exact method beats exact name (b doesn't match orderz anyway)
		{"state", "orders", "Set", "", "b-orders-any"},         // exact name over glob name; b < g by name
		{"state", "orders", "Set", "checkout", "b-orders-any"}, // exact name beats caller on glob name (f)
		{"state", "carts", "Set", "checkout", "f-glob-name-glob-method-caller"},
		{"state", "carts", "Set", "", "a-all-state"},
		{"state", "orderz", "Delete", "", "a-all-state"},
		{"pubsub", "events", "paid", "", "h-multi"},
		{"pubsub", "events", "refunded", "", ""},
		{"invoke", "payments", "ChargeCard", "", "h-multi"},
		{"invoke", "payments", "/pkg.Payments/Refund", "", "i-invoke-slash"}, // "*" matches '/'
		{"binding", "cron", "create", "", ""},
	}
	for _, tc := range tests {
		name := fmt.Sprintf("%s/%s/%s/%s", tc.kind, tc.name, tc.method, tc.caller)
		t.Run(name, func(t *testing.T) {
			c := tb.Lookup(tc.kind, tc.name, tc.method, tc.caller)
			if c == nil {
				t.Fatal("Lookup returned nil")
			}
			if got := c.Policy(); got != tc.want {
				t.Fatalf("policy %q, want %q", got, tc.want)
			}
			if c.Noop() != (tc.want == "") {
				t.Fatalf("Noop() = %v", c.Noop())
			}
			if again := tb.Lookup(tc.kind, tc.name, tc.method, tc.caller); again != c {
				t.Fatal("second lookup returned another chain")
			}
		})
	}
}

// Each rule outranks all the rules after it.
func TestPrecedenceRuleOrder(t *testing.T) {
	tests := []struct {
		name      string
		win, lose *configv1.PolicyTarget
	}{
		{"exact method beats exact name", tgt("state", "ord*", "Get", ""), tgt("state", "orders", "*", "checkout")},
		{"exact name beats caller", tgt("state", "orders", "*", ""), tgt("state", "ord*", "*", "checkout")},
		{"caller beats none", tgt("state", "ord*", "G*", "checkout"), tgt("state", "*", "*", "")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Name the loser first so that the tie-break would favour it.
			tb := compile(t, nil, Deps{}, pol("z-win", tc.win), pol("a-lose", tc.lose))
			if got := tb.Lookup("state", "orders", "Get", "checkout").Policy(); got != "z-win" {
				t.Fatalf("policy %q applied, want z-win", got)
			}
		})
	}
}

func TestPrecedenceDoesNotDependOnInputOrder(t *testing.T) {
	ps := []*configv1.Policy{pol("zeta", tgt("state", "orders", "Get", "")), pol("alpha", tgt("state", "orders", "Get", ""))}
	for _, order := range [][]*configv1.Policy{ps, {ps[1], ps[0]}} {
		if got := compile(t, nil, Deps{}, order...).Lookup("state", "orders", "Get", "").Policy(); got != "alpha" {
			t.Fatalf("tie went to %q, want alpha (first by name)", got)
		}
	}
}

func TestLookupNeverNilAndDoesNotAllocate(t *testing.T) {
	var nilTable *Table
	if c := nilTable.Lookup("state", "x", "Get", ""); c == nil || !c.Noop() {
		t.Fatal("nil table must give the no-op chain")
	}
	tb := compile(t, nil, Deps{}, pol("p", tgt("state", "orders", "*", "")))
	for _, k := range [][4]string{{"state", "orders", "Get", "app"}, {"state", "other", "Get", ""}, {"binding", "x", "y", ""}} {
		tb.Lookup(k[0], k[1], k[2], k[3]) // first lookup may allocate
		n := testing.AllocsPerRun(1000, func() { tb.Lookup(k[0], k[1], k[2], k[3]) })
		if n != 0 {
			t.Errorf("Lookup%v allocates %v", k, n)
		}
	}
}

func TestCallersShareTheMethodState(t *testing.T) {
	p := pol("p", tgt("state", "orders", "*", ""))
	p.RateLimit = &configv1.RateLimit{Rate: 1, Burst: 2}
	tb := compile(t, nil, Deps{Clock: clock.NewFake()}, p)
	a, b := tb.Lookup("state", "orders", "Get", "app1"), tb.Lookup("state", "orders", "Get", "app2")
	if a != b {
		t.Fatal("two callers of one method got different chains")
	}
	if tb.Lookup("state", "orders", "Set", "app1") == a {
		t.Fatal("two methods matched by one glob share a chain; want one per method")
	}
}

// A rate limit per policy is one budget for every method the policy
// matches (the ZooKeeper write limit: Set, Delete and Transaction together);
// per method (the default) each method has its own.
func TestRateLimitPerPolicySharesOneBucket(t *testing.T) {
	ctx := context.Background()
	writes := func(per string) *configv1.Policy {
		p := pol("zk-writes", tgt("state", "zk", "Set", ""), tgt("state", "zk", "Delete", ""), tgt("state", "zk", "Transaction", ""))
		p.RateLimit = &configv1.RateLimit{Rate: 1, Burst: 3, Per: per}
		return p
	}
	admitted := func(tb *Table) (n int) {
		for _, m := range []string{"Set", "Delete", "Transaction", "Set", "Delete", "Transaction"} {
			if _, err := tb.Lookup("state", "zk", m, "").Enter(ctx); err == nil {
				n++
			} else if !errors.Is(err, errkind.ErrResourceExhausted) {
				t.Fatalf("%s: %v, want admitted or rate limited", m, err)
			}
		}
		return n
	}
	if n := admitted(compile(t, nil, Deps{Clock: clock.NewFake()}, writes("policy"))); n != 3 {
		t.Fatalf("per policy: %d of 6 writes admitted, want 3 (one bucket of 3)", n)
	}
	if n := admitted(compile(t, nil, Deps{Clock: clock.NewFake()}, writes(""))); n != 6 {
		t.Fatalf("per method: %d of 6 writes admitted, want 6 (a bucket of 3 each)", n)
	}
	tb := compile(t, nil, Deps{Clock: clock.NewFake()}, writes("policy"))
	if !tb.Lookup("state", "zk", "Get", "").Noop() {
		t.Fatal("Get matched the write policy")
	}
	bad := writes("caller")
	if _, err := Compile([]*configv1.Policy{bad}, nil, Deps{}); err == nil || !strings.Contains(err.Error(), "per") {
		t.Fatalf("per: caller accepted or error does not name the field: %v", err)
	}
}

// A config push that changes another policy keeps this policy's state; a
// change of this policy resets it.
func TestRecompileCarriesStateOfUnchangedPolicies(t *testing.T) {
	clk := clock.NewFake()
	deps := Deps{Clock: clk}
	limited := func() *configv1.Policy {
		p := pol("limited", tgt("state", "orders", "Get", ""))
		p.RateLimit = &configv1.RateLimit{Rate: 1, Burst: 2}
		return p
	}
	other := pol("other", tgt("state", "carts", "*", ""))
	t1 := compile(t, nil, deps, limited(), other)
	c1 := t1.Lookup("state", "orders", "Get", "")
	ctx := context.Background()
	for range 2 {
		if _, err := c1.Enter(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c1.Enter(ctx); !errors.Is(err, errkind.ErrResourceExhausted) {
		t.Fatalf("third call: %v, want rate limited", err)
	}

	other2 := pol("other", tgt("state", "carts", "*", ""))
	other2.Timeout = &configv1.Timeout{Duration: dur(1e9)}
	t2 := compile(t, t1, deps, limited(), other2)
	c2 := t2.Lookup("state", "orders", "Get", "")
	if c2 != c1 {
		t.Fatal("unchanged policy got a new chain")
	}
	if _, err := c2.Enter(ctx); !errors.Is(err, errkind.ErrResourceExhausted) {
		t.Fatalf("after pushing another policy: %v, want still rate limited (state kept)", err)
	}

	changed := limited()
	changed.RateLimit.Burst = 3
	t3 := compile(t, t2, deps, changed, other2)
	c3 := t3.Lookup("state", "orders", "Get", "")
	if c3 == c2 {
		t.Fatal("changed policy kept its chain")
	}
	if _, err := c3.Enter(ctx); err != nil {
		t.Fatalf("after changing the policy: %v, want fresh state", err)
	}
}

// A call that started under the old table finishes under its chain.
func TestInflightCallFinishesUnderItsChain(t *testing.T) {
	p := pol("bh", tgt("state", "orders", "Get", ""))
	p.Bulkhead = &configv1.Bulkhead{MaxConcurrent: 1}
	t1 := compile(t, nil, Deps{}, p)
	c1 := t1.Lookup("state", "orders", "Get", "")
	tok, err := c1.Enter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p2 := pol("bh", tgt("state", "orders", "Get", ""))
	p2.Bulkhead = &configv1.Bulkhead{MaxConcurrent: 5}
	t2 := compile(t, t1, Deps{}, p2)
	if _, err := t2.Lookup("state", "orders", "Get", "").Enter(context.Background()); err != nil {
		t.Fatalf("new chain: %v", err)
	}
	tok.Exit(nil) // frees the slot of the old chain
	if _, err := c1.Enter(context.Background()); err != nil {
		t.Fatalf("old chain slot not freed by Exit: %v", err)
	}
}

func TestCompileReportsInvalidPoliciesAndKeepsValidOnes(t *testing.T) {
	badRate := pol("bad-rate", tgt("state", "x", "", ""))
	badRate.RateLimit = &configv1.RateLimit{Rate: -1}
	badCode := pol("bad-code", tgt("state", "y", "", ""))
	badCode.Retry = &configv1.Retry{MaxAttempts: 3, RetryableCodes: []string{"UNAVAIL"}}
	cluster := pol("no-redis", tgt("state", "z", "", ""))
	cluster.RateLimit = &configv1.RateLimit{Rate: 10, Scope: "cluster", RedisComponent: "cache"}
	tests := []struct {
		p     *configv1.Policy
		field string
	}{
		{badRate, "rate"},
		{badCode, "retryable_codes[0]"},
		{cluster, "redis_component"},
		{pol("no-targets"), "targets"},
		{pol("bad-kind", tgt("queue", "x", "", "")), "kind"},
		{pol("bad-glob", tgt("state", "[x", "", "")), "name"},
		{pol("glob-caller", tgt("state", "x", "", "app*")), "caller"},
		{&configv1.Policy{Name: "bad-bh", Targets: []*configv1.PolicyTarget{tgt("state", "x", "", "")}, Bulkhead: &configv1.Bulkhead{MaxConcurrent: 1, MaxQueue: 5}}, "queue_timeout"},
		{&configv1.Policy{Name: "bad-cb", Targets: []*configv1.PolicyTarget{tgt("state", "x", "", "")}, CircuitBreaker: &configv1.CircuitBreaker{FailureRateThreshold: 2}}, "failure_rate_threshold"},
		{&configv1.Policy{Name: "bad-al", Targets: []*configv1.PolicyTarget{tgt("state", "x", "", "")}, AdaptiveLimit: &configv1.AdaptiveLimit{Algorithm: "vegas"}}, "algorithm"},
		{&configv1.Policy{Name: "bad-lb", Targets: []*configv1.PolicyTarget{tgt("invoke", "x", "", "")}, LoadBalancer: &configv1.LoadBalancer{Policy: "random"}}, "policy"},
		{&configv1.Policy{Name: "bad-timeout", Targets: []*configv1.PolicyTarget{tgt("invoke", "x", "", "")}, Timeout: &configv1.Timeout{}}, "timeout"},
	}
	good := pol("good", tgt("state", "orders", "", ""))
	for _, tc := range tests {
		t.Run(tc.p.GetName(), func(t *testing.T) {
			tb, err := Compile([]*configv1.Policy{tc.p, good}, nil, Deps{})
			if !errors.Is(err, errkind.ErrInvalidArgument) {
				t.Fatalf("err %v, want invalid argument", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprintf("policy %q", tc.p.GetName())) || !strings.Contains(msg, tc.field) {
				t.Fatalf("error %q does not name the policy and field %s", msg, tc.field)
			}
			if tb == nil || tb.Lookup("state", "orders", "Get", "").Policy() != "good" {
				t.Fatal("valid policy not applied next to an invalid one")
			}
			if v := Validate(tc.p); v == nil && tc.field != "redis_component" {
				t.Fatalf("Validate accepted %s", tc.p.GetName())
			}
		})
	}
	_, err := Compile([]*configv1.Policy{good, pol("good", tgt("state", "x", "", ""))}, nil, Deps{})
	if err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Fatalf("duplicate names: %v", err)
	}
}

func TestScopes(t *testing.T) {
	p := pol("only-checkout", tgt("state", "orders", "", ""))
	p.Scopes = []string{"checkout"}
	if got := compile(t, nil, Deps{AppID: "billing"}, p).Lookup("state", "orders", "Get", "").Policy(); got != "" {
		t.Fatalf("policy scoped to checkout applied on billing's sidecar")
	}
	if got := compile(t, nil, Deps{AppID: "checkout"}, p).Lookup("state", "orders", "Get", "").Policy(); got != "only-checkout" {
		t.Fatalf("scoped policy not applied on its app's sidecar")
	}
}

func TestMaxChainsOverflow(t *testing.T) {
	p := pol("p", tgt("pubsub", "events", "*", ""))
	p.RateLimit = &configv1.RateLimit{Rate: 1, Burst: 1}
	tb := compile(t, nil, Deps{Clock: clock.NewFake(), MaxChains: 2}, p)
	a, b := tb.Lookup("pubsub", "events", "t1", ""), tb.Lookup("pubsub", "events", "t2", "")
	c, d := tb.Lookup("pubsub", "events", "t3", ""), tb.Lookup("pubsub", "events", "t4", "")
	if a == b || c == a || c == b {
		t.Fatal("chains under the cap not distinct")
	}
	if c != d || c.Labels().Method != "_other" {
		t.Fatalf("topics over the cap: %v / %v, want one shared overflow chain", c.Labels(), d.Labels())
	}
}

// Many distinct keys: the cache promotes them all and lookups stay correct.
func TestLookupCacheManyKeys(t *testing.T) {
	tb := compile(t, nil, Deps{}, pol("p", tgt("state", "s*", "*", "")))
	for round := range 3 {
		for i := range 2000 {
			name := fmt.Sprintf("s%d", i)
			c := tb.Lookup("state", name, "Get", "")
			if c.Policy() != "p" || c.Labels().Name != name {
				t.Fatalf("round %d key %s: %v", round, name, c.Labels())
			}
		}
	}
	if n := len(*tb.cache.read.Load()); n < 1000 {
		t.Fatalf("only %d keys promoted to the lock-free map", n)
	}
}
