package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outrig/outrig/internal/testenv"
	outrig "github.com/outrig/outrig/sdk-go"
)

// breakerRejection reports whether err is the caller's breaker refusing the
// call (not the callee's own UNAVAILABLE).
func breakerRejection(err error) bool {
	return errors.Is(err, outrig.ErrUnavailable) && strings.Contains(err.Error(), "circuit breaker open")
}

// TestGovernanceBreakerOpensAndRecovers: a callee failing with UNAVAILABLE
// (Serve stream) or HTTP 503 (app port) opens the caller's breaker; during
// the pause calls fail at once with UNAVAILABLE and a retry-after hint,
// without reaching the callee; after the pause one probe goes through, and
// the breaker closes once the callee answers again. HTTP 404s do not count.
func TestGovernanceBreakerOpensAndRecovers(t *testing.T) {
	const sleep = time.Second
	var legacyHits atomic.Int64
	var legacyMode atomic.Int32 // 0 ok, 1 404, 2 503
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		legacyHits.Add(1)
		switch legacyMode.Load() {
		case 1:
			http.NotFound(w, r)
		case 2:
			http.Error(w, "down", http.StatusServiceUnavailable)
		default:
			fmt.Fprint(w, "ok")
		}
	})}
	go srv.Serve(l)
	defer srv.Close()

	env := newGovEnv(t, map[string]string{
		"store.yaml": memStore,
		"breaker.yaml": policyYAML("callee-breaker", fmt.Sprintf(`  targets: [{kind: invoke, name: flaky}, {kind: invoke, name: legacy}]
  circuitBreaker: {window: 10s, minCalls: 10, failureRateThreshold: 0.5, sleepWindow: %v, halfOpenProbes: 2}
`, sleep)),
	})
	var hits atomic.Int64
	var failing atomic.Bool
	flaky := env.sidecar(t, "flaky")
	serveApp(t, flaky, outrig.Handlers{"Do": func(context.Context, *outrig.Invocation) (*outrig.Reply, error) {
		hits.Add(1)
		if failing.Load() {
			return nil, fmt.Errorf("flaky is down: %w", outrig.ErrUnavailable)
		}
		return &outrig.Reply{Data: []byte("done")}, nil
	}})
	env.sidecar(t, "legacy", "--app-port", fmt.Sprint(l.Addr().(*net.TCPAddr).Port), "--app-protocol", "http")
	caller := env.sidecar(t, "caller")
	c := testenv.Client(t, caller.Sock)
	ctx := context.Background()
	call := func(app string) (time.Duration, error) {
		start := time.Now()
		_, err := c.Invoke(ctx, app, map[string]string{"flaky": "Do", "legacy": "work"}[app], nil)
		return time.Since(start), err
	}
	for _, app := range []string{"flaky", "legacy"} {
		testenv.Eventually(t, app+" reachable", 10*time.Second, func() error { _, err := call(app); return err })
	}

	// The callee fails: the breaker opens after about minCalls calls.
	failing.Store(true)
	before := hits.Load()
	var opened time.Time
	for i := 0; i < 50 && opened.IsZero(); i++ {
		if _, err := call("flaky"); breakerRejection(err) {
			opened = time.Now()
		} else if !errors.Is(err, outrig.ErrUnavailable) {
			t.Fatalf("failing callee answered %v, want UNAVAILABLE", err)
		}
	}
	if opened.IsZero() {
		t.Fatal("the breaker did not open after 50 failed calls")
	}
	reached := hits.Load() - before
	t.Logf("breaker opened after %d failed calls reached the callee", reached)

	// The pause: rejected at once, with a hint, without reaching the callee.
	atOpen := hits.Load()
	var lat []time.Duration
	for i := 0; i < 30; i++ {
		d, err := call("flaky")
		lat = append(lat, d)
		ra, ok := outrig.RetryAfter(err)
		if !breakerRejection(err) || !ok || ra <= 0 || ra > sleep {
			t.Fatalf("call %d during the pause: %v (retry after %v %v), want UNAVAILABLE from the breaker with a hint ≤ %v", i, err, ra, ok, sleep)
		}
	}
	slices.Sort(lat)
	t.Logf("30 calls during the pause: median %v, max %v; callee hits %d → %d", lat[len(lat)/2], lat[len(lat)-1], atOpen, hits.Load())
	if hits.Load() != atOpen {
		t.Errorf("rejected calls reached the callee: %d hits during the pause", hits.Load()-atOpen)
	}
	if lat[len(lat)/2] > 5*time.Millisecond || lat[len(lat)-1] > 100*time.Millisecond {
		t.Errorf("rejections are not immediate: median %v, max %v", lat[len(lat)/2], lat[len(lat)-1])
	}

	// Still failing after the pause: one probe reaches the callee, fails,
	// and the breaker opens again.
	probeAt := waitUntil(t, "a half-open probe", 3*time.Second, func() bool { call("flaky"); return hits.Load() > atOpen })
	t.Logf("first probe %v after the breaker opened (sleep window %v)", probeAt.Sub(opened), sleep)
	if d := probeAt.Sub(opened); d < sleep-50*time.Millisecond || d > sleep+500*time.Millisecond {
		t.Errorf("probe after %v, want about the sleep window %v", d, sleep)
	}
	if _, err := call("flaky"); !breakerRejection(err) || hits.Load() != atOpen+1 {
		t.Fatalf("after a failed probe: %v, callee hits +%d; want the breaker open again and one probe", err, hits.Load()-atOpen)
	}

	// The callee recovers: after the next pause the probes succeed and the
	// breaker closes.
	failing.Store(false)
	recovered := waitUntil(t, "recovery", 3*time.Second, func() bool { _, err := call("flaky"); return err == nil })
	t.Logf("recovered %v after the failed probe", recovered.Sub(probeAt))
	if d := recovered.Sub(probeAt); d < sleep-50*time.Millisecond || d > sleep+500*time.Millisecond {
		t.Errorf("recovered after %v, want about the sleep window %v", d, sleep)
	}
	for i := 0; i < 20; i++ {
		if _, err := call("flaky"); err != nil {
			t.Fatalf("call %d after recovery: %v", i, err)
		}
	}
	state := metricSum(t, caller.Admin, "outrig_governance_gauge", "name", "flaky", "policy", "callee-breaker", "gauge", "breaker_state")
	opens := metricSum(t, caller.Admin, "outrig_governance_decisions_total", "name", "flaky", "decision", "breaker_open")
	if state != 0 || opens < 31 {
		t.Errorf("metrics: breaker_state %v (want 0, closed), breaker_open decisions %v (want ≥ 31)", state, opens)
	}

	// HTTP: 404s are the caller's problem and never open the breaker; 503s do.
	legacyMode.Store(1)
	legacyHits.Store(0)
	for i := 0; i < 30; i++ {
		if _, err := call("legacy"); !errors.Is(err, outrig.ErrNotFound) {
			t.Fatalf("HTTP 404 call %d: %v, want ErrNotFound", i, err)
		}
	}
	if legacyHits.Load() != 30 {
		t.Fatalf("after 30 HTTP 404s only %d calls reached the app: the breaker opened on 4xx", legacyHits.Load())
	}
	legacyMode.Store(2)
	legacyHits.Store(0)
	opened = time.Time{}
	for i := 0; i < 50 && opened.IsZero(); i++ {
		if _, err := call("legacy"); breakerRejection(err) {
			opened = time.Now()
		}
	}
	if opened.IsZero() {
		t.Fatal("HTTP 503s did not open the breaker")
	}
	n := legacyHits.Load()
	for i := 0; i < 10; i++ {
		if _, err := call("legacy"); !breakerRejection(err) {
			t.Fatalf("HTTP app during the pause: %v", err)
		}
	}
	t.Logf("HTTP app: 30 × 404 kept the breaker closed; it opened after %d × 503; the pause kept the app at %d hits", n, legacyHits.Load())
	if legacyHits.Load() != n {
		t.Errorf("rejected calls reached the HTTP app")
	}
}

// waitUntil polls cond every 10ms and returns when it first held.
func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Now()
}

// TestGovernanceHRWKeepsKeysOnTheirEndpoint: with HRW hashing on the
// metadata key "user", every call of a key goes to one instance of the
// callee app (4 sidecars, each answering with its own identity), and when
// one instance leaves only its keys move.
func TestGovernanceHRWKeepsKeysOnTheirEndpoint(t *testing.T) {
	const instances, keys = 4, 200
	env := newGovEnv(t, map[string]string{
		"store.yaml": memStore,
		"lb.yaml": policyYAML("echo-sticky", `  targets: [{kind: invoke, name: echo}]
  loadBalancer: {policy: hrw, hashKey: user}
`),
	})
	callees := make([]*testenv.Sidecar, instances)
	for i := range callees {
		callees[i] = env.sidecar(t, "echo")
		id := fmt.Sprintf("echo-%d", i)
		serveApp(t, callees[i], outrig.Handlers{"Who": func(context.Context, *outrig.Invocation) (*outrig.Reply, error) {
			return &outrig.Reply{Data: []byte(id)}, nil
		}})
	}
	c := testenv.Client(t, env.sidecar(t, "client").Sock)
	ctx := context.Background()
	who := func(key string, byHashKey bool) (string, error) {
		opt := outrig.InvokeOption(outrig.WithMetadata(map[string]string{"user": key}))
		if byHashKey {
			opt = outrig.WithHashKey(key)
		}
		resp, err := c.Invoke(ctx, "echo", "Who", nil, opt)
		if err != nil {
			return "", err
		}
		return string(resp.Data), nil
	}
	mapAll := func() (map[string]string, error) {
		m := make(map[string]string, keys)
		for k := 0; k < keys; k++ {
			key := fmt.Sprintf("user-%d", k)
			id, err := who(key, false)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			m[key] = id
		}
		return m, nil
	}
	spread := func(m map[string]string) map[string]int {
		n := map[string]int{}
		for _, id := range m {
			n[id]++
		}
		return n
	}
	var first map[string]string
	testenv.Eventually(t, "all 4 instances serving", 15*time.Second, func() error {
		m, err := mapAll()
		if err != nil {
			return err
		}
		if n := spread(m); len(n) != instances {
			return fmt.Errorf("keys reach %d instances: %v", len(n), n)
		}
		first = m
		return nil
	})
	t.Logf("%d keys over %d instances: %v", keys, instances, spread(first))

	// The same key reaches the same instance on every call, whether it comes
	// as the metadata value or as WithHashKey.
	for k := 0; k < keys; k++ {
		key := fmt.Sprintf("user-%d", k)
		for _, byHashKey := range []bool{false, true, false} {
			if id, err := who(key, byHashKey); err != nil || id != first[key] {
				t.Fatalf("%s (WithHashKey %v): %q %v, first call went to %q", key, byHashKey, id, err, first[key])
			}
		}
	}

	// One instance leaves (SIGTERM: it deregisters): only its keys move.
	gone := "echo-0"
	callees[0].Stop(t)
	var after map[string]string
	testenv.Eventually(t, "the departed instance out of the endpoints", 10*time.Second, func() error {
		m, err := mapAll()
		if err != nil {
			return err
		}
		if n := spread(m); n[gone] != 0 {
			return fmt.Errorf("keys still reach %s: %v", gone, n)
		}
		after = m
		return nil
	})
	moved, wrong := 0, 0
	for key, id := range first {
		if after[key] != id {
			moved++
			if id != gone {
				wrong++
			}
		}
	}
	share := float64(moved) / keys
	t.Logf("after %s left: %d of %d keys moved (%.1f%%, 1/N = %.1f%%), %d of them from a remaining instance; spread %v",
		gone, moved, keys, 100*share, 100.0/instances, wrong, spread(after))
	if wrong != 0 || moved != spread(first)[gone] {
		t.Errorf("%d keys of remaining instances moved; %d moved in all, %s held %d", wrong, moved, gone, spread(first)[gone])
	}
	if share < 0.5/instances || share > 1.5/instances {
		t.Errorf("%.1f%% of keys moved, want about 1/%d", 100*share, instances)
	}
}

// TestGovernanceLiveChange edits Policy files in the resources folder of a
// running sidecar: a change applies to the next call without a restart; a
// policy the sidecar cannot apply is NACKed and the previous one stays in
// force; a policy the control plane cannot parse never arrives; and calls
// queued in a bulkhead finish under the chain they started with when the
// bulkhead is replaced.
func TestGovernanceLiveChange(t *testing.T) {
	res := t.TempDir()
	testenv.WriteFile(t, filepath.Join(res, "store.yaml"), memStore)
	limit := filepath.Join(res, "limit.yaml")
	rateLimit := func(spec string) string {
		return policyYAML("back-ping", "  targets: [{kind: invoke, name: back, method: Ping}]\n  rateLimit: "+spec+"\n")
	}
	testenv.WriteFile(t, limit, rateLimit("{rate: 1000, burst: 1000}"))
	sc := testenv.StartSidecar(t, "host", "--mode", "host", "--app-id", "front,back", "--resources", res)
	front := testenv.Client(t, sc.Sock, outrig.WithAppID("front"))
	var entered atomic.Int64
	release := make(chan struct{})
	st, err := testenv.Client(t, sc.Sock, outrig.WithAppID("back")).StartServe(context.Background(), outrig.Handlers{
		"Ping": func(context.Context, *outrig.Invocation) (*outrig.Reply, error) { return nil, nil },
		"Hold": func(ctx context.Context, _ *outrig.Invocation) (*outrig.Reply, error) {
			entered.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return &outrig.Reply{Data: []byte("held")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()
	ctx := context.Background()
	ping := func() error { _, err := front.Invoke(ctx, "back", "Ping", nil); return err }
	strict := func() error { // the rate-1 policy: one call admitted, the next one limited
		if err := ping(); err != nil {
			return fmt.Errorf("first call: %w", err)
		}
		if err := ping(); !errors.Is(err, outrig.ErrRateLimited) {
			return fmt.Errorf("second call at once: %v, want ErrRateLimited", err)
		}
		return nil
	}
	testenv.Eventually(t, "back reachable", 5*time.Second, ping)
	for i := 0; i < 20; i++ {
		if err := ping(); err != nil {
			t.Fatalf("under rate 1000: %v", err)
		}
	}

	// An edit applies to the next calls, without a restart.
	edited := time.Now()
	testenv.WriteFile(t, limit, rateLimit("{rate: 1, burst: 1}"))
	waitUntil(t, "the edited policy in force", 5*time.Second, func() bool { return strict() == nil })
	t.Logf("edit to policy in force: %v", time.Since(edited))

	// A policy the sidecar cannot apply (its Redis component does not
	// exist) is NACKed; the previous version stays in force.
	rejected := func() float64 {
		return metricSum(t, sc.Admin, "outrig_config_updates_total", "type", "outrig.config.v1.Policy", "result", "rejected")
	}
	r0 := rejected()
	testenv.WriteFile(t, limit, rateLimit("{rate: 1000, scope: cluster, redisComponent: nosuch}"))
	waitUntil(t, "the NACK", 5*time.Second, func() bool { return rejected() > r0 })
	time.Sleep(time.Second) // a token for the strict check
	if err := strict(); err != nil {
		t.Fatalf("after the NACK the previous policy is not in force: %v", err)
	}
	if b, _ := os.ReadFile(sc.Log); !strings.Contains(string(b), "NACK") || !strings.Contains(string(b), "nosuch") {
		t.Errorf("the sidecar log does not report the NACK naming the component")
	}
	md, err := front.GetMetadata(ctx)
	if err != nil || !slices.ContainsFunc(md.Policies, func(p outrig.PolicyInfo) bool { return p.Name == "back-ping" }) {
		t.Fatalf("GetMetadata after the NACK: %+v %v", md, err)
	}

	// A policy the control plane cannot parse is never pushed.
	testenv.WriteFile(t, limit, rateLimit("{rate: -5}"))
	time.Sleep(time.Second)
	if err := strict(); err != nil {
		t.Fatalf("after an invalid file the previous policy is not in force: %v", err)
	}
	if b, _ := os.ReadFile(sc.Log); !strings.Contains(string(b), "rateLimit.rate") {
		t.Errorf("the log does not name the invalid field rateLimit.rate")
	}

	// A bulkhead replaced while calls run and wait: they finish under the
	// chain they entered; new calls get the new bulkhead.
	bulkhead := func(spec string) string {
		return policyYAML("back-hold", "  targets: [{kind: invoke, name: back, method: Hold}]\n  bulkhead: "+spec+"\n")
	}
	testenv.WriteFile(t, filepath.Join(res, "hold.yaml"), bulkhead("{maxConcurrent: 2, maxQueue: 10, queueTimeout: 10s}"))
	testenv.Eventually(t, "bulkhead policy in force", 5*time.Second, func() error {
		md, err := front.GetMetadata(ctx)
		if err != nil || !slices.ContainsFunc(md.Policies, func(p outrig.PolicyInfo) bool { return p.Name == "back-hold" }) {
			return fmt.Errorf("policies %+v %v", md, err)
		}
		return nil
	})
	hold := func(errs chan<- error) { _, err := front.Invoke(ctx, "back", "Hold", nil); errs <- err }
	old := make(chan error, 5)
	for i := 0; i < 5; i++ {
		go hold(old)
	}
	waitUntil(t, "2 calls running", 3*time.Second, func() bool { return entered.Load() == 2 })
	time.Sleep(200 * time.Millisecond) // the 3 others queue
	md, _ = front.GetMetadata(ctx)
	testenv.WriteFile(t, filepath.Join(res, "hold.yaml"), bulkhead("{maxConcurrent: 1}"))
	testenv.Eventually(t, "new bulkhead in force", 5*time.Second, func() error {
		now, err := front.GetMetadata(ctx)
		if err != nil || now.ConfigVersion == md.ConfigVersion {
			return fmt.Errorf("config version %v %v", now, err)
		}
		return nil
	})
	fresh := make(chan error, 1)
	go hold(fresh)
	waitUntil(t, "the new call running under the new bulkhead", 3*time.Second, func() bool { return entered.Load() == 3 })
	start := time.Now()
	_, err = front.Invoke(ctx, "back", "Hold", nil)
	if !errors.Is(err, outrig.ErrRateLimited) || !strings.Contains(err.Error(), "bulkhead full") {
		t.Fatalf("a second call under the new bulkhead (1 slot, no queue): %v, want bulkhead full", err)
	}
	t.Logf("new bulkhead full, rejected in %v while the old chain still holds 2 running and 3 queued calls", time.Since(start))
	close(release)
	for i := 0; i < 5; i++ {
		if err := <-old; err != nil {
			t.Errorf("a call started under the old bulkhead failed: %v", err)
		}
	}
	if err := <-fresh; err != nil {
		t.Errorf("the call under the new bulkhead failed: %v", err)
	}
	if entered.Load() != 6 {
		t.Errorf("%d calls reached back, want 6", entered.Load())
	}
}
