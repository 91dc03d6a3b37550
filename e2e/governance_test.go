package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outrig/outrig/internal/testenv"
	outrig "github.com/outrig/outrig/sdk-go"
)

// The governance tests run the real binaries: a control plane on a
// resources folder, sidecars connected to it, and apps through the Go SDK
// (Serve streams answer invocations). Policies are YAML files in the
// folder, as a user writes them.

// govEnv is a control plane serving a resources folder.
type govEnv struct {
	res, cp string
}

func newGovEnv(t *testing.T, files map[string]string) *govEnv {
	t.Helper()
	e := &govEnv{res: t.TempDir(), cp: testenv.FreeAddr(t)}
	for name, content := range files {
		testenv.WriteFile(t, filepath.Join(e.res, name), content)
	}
	testenv.Start(t, "outrig#cp", nil, "control-plane", "--resources", e.res, "--listen", e.cp)
	return e
}

func (e *govEnv) sidecar(t *testing.T, appID string, args ...string) *testenv.Sidecar {
	t.Helper()
	return testenv.StartSidecar(t, appID, append([]string{"--control-plane", e.cp}, args...)...)
}

// serveApp connects an app to its sidecar and answers invocations with h
// until the test ends.
func serveApp(t *testing.T, sc *testenv.Sidecar, h outrig.Handlers) *outrig.Stream {
	t.Helper()
	st, err := testenv.Client(t, sc.Sock).StartServe(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Stop() })
	return st
}

// counted answers every call with reply and counts the calls that reached it.
func counted(n *atomic.Int64, reply string) outrig.InvocationHandler {
	return func(context.Context, *outrig.Invocation) (*outrig.Reply, error) {
		n.Add(1)
		return &outrig.Reply{Data: []byte(reply)}, nil
	}
}

// tally counts call results by kind.
type tally struct {
	ok, limited, unavailable, other, noHint atomic.Int64
	mu                                      sync.Mutex
	firstOther                              error
}

func (t *tally) add(err error) {
	switch {
	case err == nil:
		t.ok.Add(1)
		return
	case errors.Is(err, outrig.ErrRateLimited):
		t.limited.Add(1)
	case errors.Is(err, outrig.ErrUnavailable):
		t.unavailable.Add(1)
	default:
		t.other.Add(1)
		t.mu.Lock()
		if t.firstOther == nil {
			t.firstOther = err
		}
		t.mu.Unlock()
		return
	}
	if ra, ok := outrig.RetryAfter(err); !ok || ra <= 0 {
		t.noHint.Add(1)
	}
}

func (t *tally) String() string {
	return fmt.Sprintf("ok %d, rate limited %d, unavailable %d, other %d (first: %v), rejections without retry-after %d",
		t.ok.Load(), t.limited.Load(), t.unavailable.Load(), t.other.Load(), t.firstOther, t.noHint.Load())
}

// paced starts f rate times per second for d, each call on its own
// goroutine (so that slow or rejected calls do not slow the load down),
// waits for them all, and returns the time between the first and the last
// start.
func paced(rate int, d time.Duration, f func()) time.Duration {
	n := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	var last time.Time
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		if w := time.Until(start.Add(time.Duration(i) * interval)); w > 0 {
			time.Sleep(w)
		}
		last = time.Now()
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	wg.Wait()
	return last.Sub(start)
}

// flat runs workers goroutines calling f in a loop for d, as fast as the
// calls return.
func flat(workers int, d time.Duration, f func()) time.Duration {
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				f()
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// metricSum adds the values of the series of name whose labels include
// every k="v" of labels, from a sidecar's /metrics.
func metricSum(t *testing.T, admin, name string, labels ...string) float64 {
	t.Helper()
	body := get(t, "http://"+admin+"/metrics")
	sum := 0.0
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		end := strings.LastIndexByte(line, '}')
		set := line[len(name)+1 : end]
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(","+set+",", fmt.Sprintf(",%s=%q,", labels[i], labels[i+1])) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func policyYAML(name, spec string) string {
	return "apiVersion: outrig.dev/v1alpha1\nkind: Policy\nmetadata: {name: " + name + "}\nspec:\n" + spec
}

// TestGovernanceRateLimitPerMethod: a rate limit on invoke orders/Create
// admits its rate out of a larger load while orders/Get, in the same run,
// is untouched; rejections never reach orders and carry a retry-after
// hint; the decisions are in /metrics and the policy in GetMetadata and
// /config_dump.
func TestGovernanceRateLimitPerMethod(t *testing.T) {
	// examples/policies/rate-limit.yaml: orders/Create at 50/s, burst 10.
	const rate, burst, load, secs, policy = 50, 10, 200, 5, "orders-create-rate"
	example, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", "policies", "rate-limit.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env := newGovEnv(t, map[string]string{"store.yaml": memStore, "limit.yaml": string(example)})
	orders := env.sidecar(t, "orders")
	var creates, gets atomic.Int64
	serveApp(t, orders, outrig.Handlers{"Create": counted(&creates, "created"), "Get": counted(&gets, "got")})
	checkout := env.sidecar(t, "checkout")
	c := testenv.Client(t, checkout.Sock)
	ctx := context.Background()
	testenv.Eventually(t, "orders reachable", 10*time.Second, func() error {
		_, err := c.Invoke(ctx, "orders", "Get", nil)
		return err
	})
	time.Sleep(time.Second / rate * burst) // the bucket is full
	gets.Store(0)

	var createRes, getRes tally
	var wg sync.WaitGroup
	var span time.Duration
	wg.Add(2)
	go func() {
		defer wg.Done()
		span = paced(load, secs*time.Second, func() { _, err := c.Invoke(ctx, "orders", "Create", nil); createRes.add(err) })
	}()
	go func() {
		defer wg.Done()
		paced(load, secs*time.Second, func() { _, err := c.Invoke(ctx, "orders", "Get", nil); getRes.add(err) })
	}()
	wg.Wait()

	admitted := createRes.ok.Load()
	admittedRate := float64(admitted-burst) / span.Seconds()
	t.Logf("Create at %d/s for %v: %s; admitted %d = burst %d + %.1f/s", load, span, &createRes, admitted, burst, admittedRate)
	t.Logf("Get at %d/s: %s", load, &getRes)
	if math.Abs(admittedRate-rate) > 0.1*rate {
		t.Errorf("Create admitted %.1f/s, want %d/s ± 10%%", admittedRate, rate)
	}
	if createRes.ok.Load()+createRes.limited.Load() != load*secs || createRes.noHint.Load() != 0 {
		t.Errorf("Create results: %s; want only successes and RESOURCE_EXHAUSTED with retry-after", &createRes)
	}
	if got := creates.Load(); got != admitted {
		t.Errorf("orders saw %d Create calls, %d were admitted: rejected calls reached the callee", got, admitted)
	}
	if getRes.ok.Load() != load*secs || gets.Load() != load*secs {
		t.Errorf("Get: %s, callee saw %d; want all %d through", &getRes, gets.Load(), load*secs)
	}

	// Visibility: decisions per (kind, name, method, policy, decision).
	lbl := []string{"kind", "invoke", "name", "orders", "method", "Create", "policy", policy}
	allowed := metricSum(t, checkout.Admin, "outrig_governance_decisions_total", append(lbl, "decision", "allowed")...)
	limited := metricSum(t, checkout.Admin, "outrig_governance_decisions_total", append(lbl, "decision", "rate_limited")...)
	t.Logf("metrics: allowed %.0f, rate_limited %.0f", allowed, limited)
	if int64(allowed) != admitted || int64(limited) != createRes.limited.Load() {
		t.Errorf("metrics allowed %.0f rate_limited %.0f, want %d and %d", allowed, limited, admitted, createRes.limited.Load())
	}
	if n := metricSum(t, checkout.Admin, "outrig_governance_decisions_total", "method", "Get"); n != 0 {
		t.Errorf("Get has governance decisions (%v): no policy applies to it", n)
	}
	md, err := c.GetMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(md.Policies, func(p outrig.PolicyInfo) bool { return p.Name == policy })
	if i < 0 || !slices.Contains(md.Policies[i].Targets, "invoke/orders/Create") || !slices.Contains(md.Policies[i].Policies, "rateLimit") {
		t.Errorf("GetMetadata policies: %+v", md.Policies)
	}
	var dump struct {
		Apps     map[string]struct{ Policies []string }
		Policies map[string]json.RawMessage
	}
	body := get(t, "http://"+checkout.Admin+"/config_dump")
	if err := json.Unmarshal([]byte(body), &dump); err != nil {
		t.Fatalf("/config_dump: %v\n%s", err, body)
	}
	if !slices.Contains(dump.Apps["checkout"].Policies, policy) || dump.Policies[policy] == nil {
		t.Errorf("/config_dump does not list the policy in force for checkout:\n%s", body)
	}
}

// TestGovernanceClusterRateLimit: two caller sidecars, each calling as
// fast as it can, share one limit kept in Redis: the sum they admit is the
// limit, not twice it.
func TestGovernanceClusterRateLimit(t *testing.T) {
	const rate, burst, secs = 50, 5, 3
	name := "cluster-create-" + randomSuffix(t) // its own Redis key: runs never share a bucket
	env := newGovEnv(t, map[string]string{
		"store.yaml": memStore,
		"redis.yaml": `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: ratelimits}
spec:
  type: state.redis
  version: v1
  initTimeout: 5s
  metadata:
  - {name: redisHost, value: "127.0.0.1:6379"}
`,
		"limit.yaml": policyYAML(name, fmt.Sprintf(`  targets: [{kind: invoke, name: orders, method: Create}]
  rateLimit: {rate: %d, burst: %d, scope: cluster, redisComponent: ratelimits}
`, rate, burst)),
	})
	orders := env.sidecar(t, "orders")
	var creates atomic.Int64
	serveApp(t, orders, outrig.Handlers{"Create": counted(&creates, "created"), "Ping": counted(new(atomic.Int64), "pong")})
	callers := []*testenv.Sidecar{env.sidecar(t, "checkout"), env.sidecar(t, "billing")}
	ctx := context.Background()
	clients := make([]*outrig.Client, len(callers))
	for i, sc := range callers {
		clients[i] = testenv.Client(t, sc.Sock)
		testenv.Eventually(t, "orders reachable from "+sc.Admin, 10*time.Second, func() error {
			md, err := clients[i].GetMetadata(ctx)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(md.Policies, func(p outrig.PolicyInfo) bool { return p.Name == name }) {
				return fmt.Errorf("cluster policy not in force (is Redis up? scripts/backends.sh up redis): %+v", md.Policies)
			}
			_, err = clients[i].Invoke(ctx, "orders", "Ping", nil)
			return err
		})
	}
	time.Sleep(time.Second / rate * burst)

	res := make([]tally, len(callers))
	var wg sync.WaitGroup
	var span time.Duration
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := flat(8, secs*time.Second, func() { _, err := clients[i].Invoke(ctx, "orders", "Create", nil); res[i].add(err) })
			if i == 0 {
				span = d
			}
		}()
	}
	wg.Wait()
	var admitted, attempts int64
	for i := range res {
		t.Logf("caller %d: %s", i, &res[i])
		admitted += res[i].ok.Load()
		attempts += res[i].ok.Load() + res[i].limited.Load()
		if res[i].ok.Load() == 0 || res[i].other.Load()+res[i].unavailable.Load() != 0 || res[i].noHint.Load() != 0 {
			t.Errorf("caller %d: %s", i, &res[i])
		}
		if errs := metricSum(t, callers[i].Admin, "outrig_governance_decisions_total", "decision", "limiter_error"); errs != 0 {
			t.Errorf("caller %d: %v limiter errors (Redis unreachable: calls were admitted unlimited)", i, errs)
		}
	}
	want := burst + rate*span.Seconds()
	t.Logf("two callers for %v: %d attempts, %d admitted in total (limit %d/s + burst %d = %.0f); callee saw %d",
		span, attempts, admitted, rate, burst, want, creates.Load())
	if math.Abs(float64(admitted)-want) > 0.1*rate*span.Seconds() {
		t.Errorf("admitted %d in total, want %.0f ± 10%%", admitted, want)
	}
	if attempts < 4*int64(want) {
		t.Errorf("only %d attempts: the callers did not load the limit enough to test it", attempts)
	}
	if creates.Load() != admitted {
		t.Errorf("callee saw %d calls, %d admitted", creates.Load(), admitted)
	}
}

// TestGovernanceZooKeeperWrites runs examples/policies/zookeeper-writes.yaml
// on the ZooKeeper at 127.0.0.1:2181: Set and Delete together are limited
// to 20/s (one budget for the policy) while Get and BulkGet pass at full
// speed.
func TestGovernanceZooKeeperWrites(t *testing.T) {
	const rate, burst, secs = 20, 20, 3
	example, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", "policies", "zookeeper-writes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res := t.TempDir()
	testenv.WriteFile(t, filepath.Join(res, "zk.yaml"), string(example))
	sc := testenv.StartSidecar(t, "configsvc", "--resources", res)
	c := testenv.Client(t, sc.Sock)
	ctx := context.Background()
	prefix := "e2e-" + randomSuffix(t)
	if err := c.SaveState(ctx, "zk-config", prefix+"-probe", []byte("v")); err != nil {
		t.Fatalf("the zk-config store does not work (is ZooKeeper up at 127.0.0.1:2181? scripts/backends.sh up zookeeper): %v", err)
	}
	time.Sleep(time.Second) // the write bucket is full again

	var sets, dels, gets, bulks tally
	var n atomic.Int64
	var wg sync.WaitGroup
	run := func(workers int, f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); flat(workers, secs*time.Second, f) }()
	}
	start := time.Now()
	key := func() string { return fmt.Sprintf("%s-%d", prefix, n.Add(1)%50) }
	run(2, func() { sets.add(c.SaveState(ctx, "zk-config", key(), []byte("v"))) })
	run(2, func() { dels.add(c.DeleteState(ctx, "zk-config", key())) })
	run(3, func() { _, err := c.GetState(ctx, "zk-config", key()); gets.add(err) })
	run(1, func() {
		_, err := c.GetBulkState(ctx, "zk-config", []string{key(), key(), key()})
		bulks.add(err)
	})
	wg.Wait()
	span := time.Since(start)
	want := burst + rate*span.Seconds()
	t.Logf("%v of writes and reads against ZooKeeper (writes limited to %d/s, burst %d, all write methods together: %.0f expected)", span, rate, burst, want)
	for _, w := range []struct {
		op string
		t  *tally
	}{{"Set", &sets}, {"Delete", &dels}} {
		t.Logf("%s: %s", w.op, w.t)
		if w.t.ok.Load() == 0 || w.t.limited.Load() == 0 || w.t.other.Load()+w.t.unavailable.Load() != 0 || w.t.noHint.Load() != 0 {
			t.Errorf("%s: %s; want some admitted, the rest RESOURCE_EXHAUSTED with retry-after", w.op, w.t)
		}
	}
	if writes := float64(sets.ok.Load() + dels.ok.Load()); math.Abs(writes-want) > 0.1*want {
		t.Errorf("%.0f writes (Set %d + Delete %d) admitted, want %.0f ± 10%%: one budget for all writes",
			writes, sets.ok.Load(), dels.ok.Load(), want)
	}
	for _, r := range []struct {
		op string
		t  *tally
	}{{"Get", &gets}, {"BulkGet", &bulks}} {
		t.Logf("%s: %s (%.0f/s)", r.op, r.t, float64(r.t.ok.Load())/span.Seconds())
		if r.t.ok.Load() == 0 || r.t.limited.Load()+r.t.unavailable.Load()+r.t.other.Load() != 0 {
			t.Errorf("%s: %s; reads must all pass", r.op, r.t)
		}
	}
	if gets.ok.Load() <= int64(want) {
		t.Errorf("only %d Gets in %v: reads look limited", gets.ok.Load(), span)
	}
	if n := metricSum(t, sc.Admin, "outrig_governance_decisions_total", "name", "zk-config", "method", "Get"); n != 0 {
		t.Errorf("Get went through a policy (%v decisions): reads must match none", n)
	}
	limited := metricSum(t, sc.Admin, "outrig_governance_decisions_total", "kind", "state", "name", "zk-config",
		"policy", "zk-config-writes", "decision", "rate_limited")
	if int64(limited) != sets.limited.Load()+dels.limited.Load() {
		t.Errorf("metrics rate_limited %.0f, want %d", limited, sets.limited.Load()+dels.limited.Load())
	}
}

// TestGovernanceExamplesValidate: every example policy is valid.
func TestGovernanceExamplesValidate(t *testing.T) {
	out, err := execCommand(context.Background(), filepath.Join(testenv.BinDir, "outrig"), "validate",
		filepath.Join(testenv.RepoRoot(), "examples", "policies")).CombinedOutput()
	if err != nil {
		t.Fatalf("outrig validate examples/policies: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "10 policies valid") {
		t.Fatalf("outrig validate examples/policies:\n%s", out)
	}
}
