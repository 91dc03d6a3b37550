package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	brokerv1 "github.com/outrig/outrig/api/gen/outrig/broker/v1"
	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/broker"
	"github.com/outrig/outrig/xds/client"
	"github.com/outrig/outrig/xds/registry"
	"github.com/outrig/outrig/xds/resource"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// logBuffer captures log output for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func component(name, typ string, scopes ...string) string {
	s := "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: " + name + "}\nspec:\n  type: " + typ + "\n  version: v1\n  metadata:\n  - {name: k, value: v}\n"
	if len(scopes) > 0 {
		s += "scopes: [" + strings.Join(scopes, ", ") + "]\n"
	}
	return s
}

func policy(name string, rate string) string {
	return "apiVersion: outrig.dev/v1alpha1\nkind: Policy\nmetadata: {name: " + name + "}\nspec:\n  targets:\n  - {kind: invoke, name: payments}\n  rateLimit: {rate: " + rate + "}\n"
}

func docs(d ...string) string { return strings.Join(d, "---\n") }

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	// Write then rename, as editors and config management do.
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type env struct {
	cp      *ControlPlane
	addr    string
	metrics *prometheus.Registry
	logs    *logBuffer
}

func start(t *testing.T, dir string) *env {
	t.Helper()
	logs := &logBuffer{}
	metrics := prometheus.NewRegistry()
	cp, err := New(Options{ResourcesDir: dir, Metrics: metrics,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	addr, stop, err := cp.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return &env{cp: cp, addr: addr, metrics: metrics, logs: logs}
}

func (e *env) counter(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := e.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return total
}

// call is one Handler.Apply call.
type call struct {
	typeURL string
	updated []string
	removed []string
	msgs    map[string]proto.Message
}

type recorder struct{ ch chan call }

func (r *recorder) Apply(typeURL string, updated map[string]proto.Message, removed []string) map[string]error {
	c := call{typeURL: typeURL, removed: append([]string(nil), removed...), msgs: updated}
	for n := range updated {
		c.updated = append(c.updated, n)
	}
	sort.Strings(c.updated)
	sort.Strings(c.removed)
	r.ch <- c
	return nil
}

func (r *recorder) next(t *testing.T) call {
	t.Helper()
	select {
	case c := <-r.ch:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no configuration change arrived")
		return call{}
	}
}

func (r *recorder) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case c := <-r.ch:
		t.Fatalf("unexpected change %s updated %v removed %v", c.typeURL, c.updated, c.removed)
	case <-time.After(d):
	}
}

func (r *recorder) drain() {
	for {
		select {
		case <-r.ch:
		default:
			return
		}
	}
}

func connect(t *testing.T, addr string, appIDs ...string) (*client.Client, *recorder) {
	t.Helper()
	rec := &recorder{ch: make(chan call, 100)}
	c, err := client.New(client.Options{Target: addr, NodeID: "sidecar-test", AppIDs: appIDs, Handler: rec,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	select {
	case <-c.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("client not ready")
	}
	return c, rec
}

func TestOneEditedFileSendsOneResource(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "state.yaml"), docs(component("orders", "state.redis"), component("carts", "state.redis"), component("sessions", "state.memory")))
	write(t, filepath.Join(dir, "nested", "deep", "policies.yml"), policy("limit", "50"))
	e := start(t, dir)
	c, rec := connect(t, e.addr)
	if _, ok := c.Cached(resource.PolicyType, "limit"); !ok {
		t.Fatal("policy from a nested directory not served")
	}
	rec.drain()
	sentBefore := e.counter(t, "outrig_xds_resources_sent_total")

	edited := time.Now()
	write(t, filepath.Join(dir, "state.yaml"), docs(component("orders", "state.redis"), component("carts", "state.mysql"), component("sessions", "state.memory")))
	got := rec.next(t)
	t.Logf("file edit applied by the sidecar's handler after %v (debounce 50ms)", time.Since(edited))
	if got.typeURL != resource.ComponentType || !cmp.Equal(got.updated, []string{"carts"}) || len(got.removed) != 0 {
		t.Fatalf("edit sent %s updated %v removed %v, want carts only", got.typeURL, got.updated, got.removed)
	}
	if typ := got.msgs["carts"].(*configv1.Component).GetType(); typ != "state.mysql" {
		t.Errorf("carts.type = %s", typ)
	}
	if d := e.counter(t, "outrig_xds_resources_sent_total") - sentBefore; d != 1 {
		t.Errorf("resources on the wire for one edit = %v, want 1", d)
	}
	rec.none(t, 200*time.Millisecond)
}

func TestBrokenFileKeepsLastGoodWhileOthersApply(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	write(t, a, docs(component("orders", "state.redis"), component("carts", "state.redis")))
	write(t, b, policy("limit", "50"))
	e := start(t, dir)
	c, rec := connect(t, e.addr)
	rec.drain()

	// a.yaml breaks (a bad field); b.yaml changes at the same time.
	write(t, a, "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: orders}\nspec:\n  type: state.redis\n  version: v1\n  bogus: 1\n")
	write(t, b, policy("limit", "75"))
	got := rec.next(t)
	if got.typeURL != resource.PolicyType || !cmp.Equal(got.updated, []string{"limit"}) {
		t.Fatalf("got %s %v, want the policy change", got.typeURL, got.updated)
	}
	rec.none(t, 200*time.Millisecond) // a's components are neither changed nor removed
	for _, n := range []string{"orders", "carts"} {
		if _, ok := c.Cached(resource.ComponentType, n); !ok {
			t.Errorf("component %s from the broken file is no longer served", n)
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "a.yaml:7: spec.bogus") {
		t.Errorf("log lacks file:line: field of the error:\n%s", logs)
	}
	if v := e.counter(t, "outrig_controlplane_config_files_failing"); v != 1 {
		t.Errorf("failing files gauge = %v, want 1", v)
	}

	// Fixed: its new content applies (carts is gone).
	write(t, a, component("orders", "state.redis"))
	got = rec.next(t)
	if !cmp.Equal(got.removed, []string{"carts"}) {
		t.Fatalf("after fix got updated %v removed %v", got.updated, got.removed)
	}
	if v := e.counter(t, "outrig_controlplane_config_files_failing"); v != 0 {
		t.Errorf("failing files gauge = %v after the fix, want 0", v)
	}
}

func TestFilesAndDirectoriesComeAndGo(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "base.yaml"), component("orders", "state.redis"))
	e := start(t, dir)
	c, rec := connect(t, e.addr)
	rec.drain()

	// A new subdirectory with a file.
	write(t, filepath.Join(dir, "team", "x.yaml"), component("ledger", "state.mysql"))
	if got := rec.next(t); !cmp.Equal(got.updated, []string{"ledger"}) {
		t.Fatalf("new subdir file: got %v", got.updated)
	}
	// Hidden and non-YAML files are ignored.
	write(t, filepath.Join(dir, "team", "notes.txt"), "not yaml")
	if err := os.WriteFile(filepath.Join(dir, ".hidden.yaml"), []byte(component("ghost", "state.redis")), 0o644); err != nil {
		t.Fatal(err)
	}
	rec.none(t, 200*time.Millisecond)
	// Removing the directory removes its objects.
	if err := os.RemoveAll(filepath.Join(dir, "team")); err != nil {
		t.Fatal(err)
	}
	if got := rec.next(t); !cmp.Equal(got.removed, []string{"ledger"}) {
		t.Fatalf("removed dir: got updated %v removed %v", got.updated, got.removed)
	}
	// Renaming a file away from .yaml removes it too.
	if err := os.Rename(filepath.Join(dir, "base.yaml"), filepath.Join(dir, "base.yaml.bak")); err != nil {
		t.Fatal(err)
	}
	if got := rec.next(t); !cmp.Equal(got.removed, []string{"orders"}) {
		t.Fatalf("renamed file: got updated %v removed %v", got.updated, got.removed)
	}
	// The client's cache follows once its Handler accepted the removal.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := c.Cached(resource.ComponentType, "orders"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("orders still cached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDuplicateNameHeldBackUntilFreed(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	write(t, a, component("orders", "state.redis"))
	write(t, b, component("carts", "state.redis"))
	e := start(t, dir)
	c, rec := connect(t, e.addr)
	rec.drain()

	// b.yaml now also defines orders: the change is held back, nothing moves.
	write(t, b, docs(component("carts", "state.mysql"), component("orders", "state.memory")))
	rec.none(t, 300*time.Millisecond)
	if m, _ := c.Cached(resource.ComponentType, "orders"); m.(*configv1.Component).GetType() != "state.redis" {
		t.Fatal("the duplicate replaced the served component")
	}
	if !strings.Contains(e.logs.String(), `Component \"orders\" is already defined in `+a) {
		t.Errorf("conflict not logged:\n%s", e.logs.String())
	}
	// a.yaml drops orders: b's held-back content goes live.
	write(t, a, component("other", "state.redis"))
	want := map[string]string{"carts": "state.mysql", "orders": "state.memory", "other": "state.redis"}
	// Poll the client's cache: it is updated after the handler that feeds
	// rec has accepted the update, so the last update's receipt may come
	// before the cache shows it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var wrong []string
		for n, typ := range want {
			m, found := c.Cached(resource.ComponentType, n)
			if !found || m.(*configv1.Component).GetType() != typ {
				wrong = append(wrong, fmt.Sprintf("%s (found %v, %v)", n, found, m))
			}
		}
		if len(wrong) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("held-back file never went live: %v\n%s", wrong, e.logs.String())
		}
		select { // keep the handler unblocked
		case <-rec.ch:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestScopesAndEndpointsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "c.yaml"), docs(component("shared", "state.redis"), component("private", "state.redis", "billing")))
	e := start(t, dir)
	c, _ := connect(t, e.addr, "checkout")
	if _, ok := c.Cached(resource.ComponentType, "private"); ok {
		t.Error("component scoped to billing reached checkout")
	}
	if _, ok := c.Cached(resource.ComponentType, "shared"); !ok {
		t.Error("unscoped component missing")
	}

	reg, err := client.NewRegistrar(c.Conn(), client.RegistrarOptions{InstanceID: "bill-1", Address: "127.0.0.1:9100",
		AppIDs: []string{"billing"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	<-reg.Registered()
	deadline := time.Now().Add(5 * time.Second)
	for {
		eps, found, err := c.Endpoints(context.Background(), "billing")
		if err != nil {
			t.Fatal(err)
		}
		if found {
			if a := eps[0].GetAddress(); a != "127.0.0.1:9100" {
				t.Fatalf("address %s", a)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("billing endpoints never arrived")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := reg.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e.cp.Registry().Len() != 0 {
		t.Errorf("registry holds %d leases after graceful shutdown", e.cp.Registry().Len())
	}
}

func TestRunAndStartErrors(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without ResourcesDir succeeded")
	}
	cp, err := New(Options{ResourcesDir: filepath.Join(t.TempDir(), "missing"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cp.Start(context.Background()); err == nil {
		t.Error("Start with a missing directory succeeded")
	}

	dir := t.TempDir()
	write(t, filepath.Join(dir, "c.yaml"), component("orders", "state.redis"))
	cp, err = New(Options{ResourcesDir: dir, ListenAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cp.Run(ctx) }()
	time.Sleep(100 * time.Millisecond)
	if _, _, ok := cp.XDS().Resource(resource.ComponentType, "orders"); !ok {
		t.Error("Run did not load the directory")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v after cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, _, err := cp.Start(context.Background()); err == nil {
		t.Error("second start succeeded")
	}
}

// A restarted control plane does not make sidecars drop the endpoints they
// hold: instances re-register within the hold.
func TestRestartKeepsEndpointsWhileInstancesReRegister(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "c.yaml"), component("orders", "state.redis"))
	opts := func(addr string) Options {
		return Options{ResourcesDir: dir, ListenAddr: addr, Logger: slog.New(slog.DiscardHandler),
			Registry: registry.Options{DefaultTTL: 1500 * time.Millisecond, MinTTL: 100 * time.Millisecond}}
	}
	cp1, err := New(opts(""))
	if err != nil {
		t.Fatal(err)
	}
	addr, stop1, err := cp1.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, rec := connect(t, addr, "checkout")
	reg, err := client.NewRegistrar(c.Conn(), client.RegistrarOptions{InstanceID: "bill-1", Address: "127.0.0.1:9100",
		AppIDs: []string{"billing"}, TTL: 1500 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close(context.Background())
	<-reg.Registered()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, found, _ := c.Endpoints(context.Background(), "billing")
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("billing endpoints never arrived")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rec.drain()

	stop1()
	var cp2 *ControlPlane
	var stop2 func()
	for i := 0; ; i++ { // rebind the same port
		cp2, err = New(opts(addr))
		if err != nil {
			t.Fatal(err)
		}
		if _, stop2, err = cp2.Start(context.Background()); err == nil {
			break
		}
		if i == 50 {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer stop2()

	deadline = time.Now().Add(5 * time.Second)
	for cp2.Registry().Len() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("instance did not re-register with the restarted control plane")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rec.none(t, time.Second) // neither the component nor the endpoints were resent or removed
	if _, ok := c.CachedEndpoints("billing"); !ok {
		t.Fatal("the sidecar lost billing's endpoints across the restart")
	}
}

func TestExtraServiceServedAndClosed(t *testing.T) {
	dir := t.TempDir()
	b, err := broker.NewServer(broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := New(Options{ResourcesDir: dir, Logger: slog.New(slog.DiscardHandler), Services: []Service{b}})
	if err != nil {
		t.Fatal(err)
	}
	addr, stop, err := cp.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	bc := brokerv1.NewBrokerClient(conn)
	if _, err := bc.Publish(context.Background(), &brokerv1.PublishRequest{Topic: "t", Data: []byte("x")}); err != nil {
		t.Fatalf("broker not served next to ADS: %v", err)
	}
	// A long-lived stream of the service does not hold up stop.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := bc.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&brokerv1.SubscribeRequest{Request: &brokerv1.SubscribeRequest_Subscription{
		Subscription: &brokerv1.Subscription{Topic: "t", Group: "g"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(4 * time.Second):
		t.Fatal("stop waited for the service's stream")
	}
	if _, err := b.Publish(context.Background(), &brokerv1.PublishRequest{Topic: "t"}); err == nil {
		t.Error("service not closed by stop")
	}
}

func TestServicesClosedWhenStartFails(t *testing.T) {
	b, err := broker.NewServer(broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := New(Options{ResourcesDir: filepath.Join(t.TempDir(), "missing"), Logger: slog.New(slog.DiscardHandler), Services: []Service{b}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cp.Start(context.Background()); err == nil {
		t.Fatal("Start with a missing directory succeeded")
	}
	if _, err := b.Publish(context.Background(), &brokerv1.PublishRequest{Topic: "t"}); err == nil {
		t.Error("service left open after a failed Start")
	}
}
