package registry

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/errkind"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// changeLog records what the registry published.
type changeLog struct {
	r       *Registry
	mu      sync.Mutex
	upserts []string
	removed []string
}

func (l *changeLog) onChange(up map[string]*configv1.Endpoint, rm []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, e := range up {
		if name != e.GetAppId()+"/"+e.GetInstanceId() {
			panic(fmt.Sprintf("upsert %q carries %s/%s", name, e.GetAppId(), e.GetInstanceId()))
		}
		l.upserts = append(l.upserts, name)
	}
	l.removed = append(l.removed, rm...)
}

// take flushes the registry and returns what was published since the last take.
func (l *changeLog) take() (up, rm []string) {
	l.r.Flush()
	l.mu.Lock()
	defer l.mu.Unlock()
	up, rm = l.upserts, l.removed
	l.upserts, l.removed = nil, nil
	sort.Strings(up)
	sort.Strings(rm)
	return up, rm
}

func newTestRegistry(t testing.TB, opts Options) (*Registry, *fakeClock, *changeLog) {
	t.Helper()
	clk := newFakeClock()
	log := &changeLog{}
	opts.Clock = clk
	opts.OnChange = log.onChange
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	log.r = r
	return r, clk, log
}

func ep(id string) *configv1.Endpoint {
	return &configv1.Endpoint{InstanceId: id, Address: "127.0.0.1:" + fmt.Sprint(1000+len(id)), Zone: "z1"}
}

func mustRegister(t testing.TB, r *Registry, app, id string, ttl time.Duration) {
	t.Helper()
	if _, err := r.Register(app, ep(id), ttl); err != nil {
		t.Fatal(err)
	}
}

func TestChangesPublishOnlyTheInstancesThatChanged(t *testing.T) {
	r, _, log := newTestRegistry(t, Options{})
	mustRegister(t, r, "a", "a1", 0)
	mustRegister(t, r, "b", "b1", 0)
	mustRegister(t, r, "a", "a2", 0)
	up, rm := log.take()
	// One batch with the three instances.
	if diff := cmp.Diff([]string{"a/a1", "a/a2", "b/b1"}, up); diff != "" || rm != nil {
		t.Fatalf("published (-want +got):\n%s removed %v", diff, rm)
	}
	// One more instance of a: only it is published, not a's whole set.
	mustRegister(t, r, "a", "a3", 0)
	if up, rm := log.take(); !cmp.Equal(up, []string{"a/a3"}) || rm != nil {
		t.Fatalf("join: got upserts %v removed %v", up, rm)
	}
	_ = r.Deregister("a", "a3")
	log.take()

	// Heartbeats and identical re-registrations change nothing visible.
	if _, err := r.Renew("a", "a1"); err != nil {
		t.Fatal(err)
	}
	mustRegister(t, r, "a", "a1", 0)
	if up, rm := log.take(); up != nil || rm != nil {
		t.Fatalf("renew/identical register published %v %v", up, rm)
	}

	// A changed address is published; deregistering the last instance removes the app.
	changed := ep("b1")
	changed.Address = "10.1.1.1:9"
	if _, err := r.Register("b", changed, 0); err != nil {
		t.Fatal(err)
	}
	if up, rm := log.take(); !cmp.Equal(up, []string{"b/b1"}) || rm != nil {
		t.Fatalf("address change: got upserts %v removed %v", up, rm)
	}
	if err := r.Deregister("b", "b1"); err != nil {
		t.Fatal(err)
	}
	if up, rm := log.take(); up != nil || !cmp.Equal(rm, []string{"b/b1"}) {
		t.Fatalf("deregistration: got upserts %v removed %v", up, rm)
	}
	// Changes that cancel out within one batch publish the end state only.
	mustRegister(t, r, "c", "c1", 0)
	_ = r.Deregister("c", "c1")
	if up, rm := log.take(); up != nil || !cmp.Equal(rm, []string{"c/c1"}) {
		t.Fatalf("register+deregister in one batch: got upserts %v removed %v", up, rm)
	}
	if got := r.Endpoints("a"); len(got) != 2 || got[0].GetInstanceId() != "a1" || got[0].GetAppId() != "a" {
		t.Fatalf("Endpoints(a) = %v", got)
	}
	if r.Endpoints("b") != nil {
		t.Fatal("Endpoints(b) after deregistration is not nil")
	}
	if err := r.Deregister("b", "b1"); err != nil {
		t.Errorf("second Deregister: %v", err)
	}
}

func TestExpiryAndRenewMovesToTail(t *testing.T) {
	r, clk, log := newTestRegistry(t, Options{DefaultTTL: 10 * time.Second})
	mustRegister(t, r, "a", "i1", 0)
	mustRegister(t, r, "a", "i2", 0)
	log.take()

	clk.Advance(5 * time.Second)
	if _, err := r.Renew("a", "i1"); err != nil { // i1 now expires at 15s, behind i2
		t.Fatal(err)
	}
	clk.Advance(5*time.Second + time.Millisecond) // 10.001s: i2 is overdue
	if n := r.Check(); n != 1 {
		t.Fatalf("Check expired %d, want 1", n)
	}
	if r.visited != 2 {
		t.Errorf("Check examined %d leases, want 2 (the overdue head and the first live one)", r.visited)
	}
	if got := r.Endpoints("a"); len(got) != 1 || got[0].GetInstanceId() != "i1" {
		t.Fatalf("survivors = %v, want i1", got)
	}
	if up, rm := log.take(); up != nil || !cmp.Equal(rm, []string{"a/i2"}) {
		t.Errorf("published %v removed %v, want removal of a/i2", up, rm)
	}
	if _, err := r.Renew("a", "i2"); !errors.Is(err, errkind.ErrNotFound) {
		t.Errorf("Renew of expired lease: err = %v, want ErrNotFound", err)
	}
	clk.Advance(5 * time.Second)
	r.Check()
	if _, rm := log.take(); !cmp.Equal(rm, []string{"a/i1"}) {
		t.Errorf("last expiry removed %v, want [a/i1]", rm)
	}
}

// Check walks only the overdue leases, however many live ones there are.
func TestCheckExaminesOnlyOverdueLeases(t *testing.T) {
	r, clk, _ := newTestRegistry(t, Options{DefaultTTL: 10 * time.Second})
	for i := range 3 {
		mustRegister(t, r, "old", fmt.Sprint("o", i), 0)
	}
	clk.Advance(time.Second)
	for i := range 20000 {
		mustRegister(t, r, fmt.Sprint("app", i%100), fmt.Sprint("n", i), 0)
	}
	clk.Advance(9*time.Second + time.Millisecond)
	if n := r.Check(); n != 3 {
		t.Fatalf("expired %d, want 3", n)
	}
	if r.visited != 4 {
		t.Fatalf("Check examined %d leases among %d, want 4", r.visited, r.Len()+3)
	}
}

func TestPerTTLLists(t *testing.T) {
	r, clk, _ := newTestRegistry(t, Options{})
	mustRegister(t, r, "a", "long", 30*time.Second)
	mustRegister(t, r, "a", "short", 2*time.Second)
	clk.Advance(3 * time.Second)
	if n := r.Check(); n != 1 {
		t.Fatalf("expired %d, want 1", n)
	}
	if got := r.Endpoints("a"); len(got) != 1 || got[0].GetInstanceId() != "long" {
		t.Fatalf("survivors = %v", got)
	}
	// Re-registering with another TTL moves the lease to that TTL's list.
	mustRegister(t, r, "a", "long", 2*time.Second)
	clk.Advance(3 * time.Second)
	if n := r.Check(); n != 1 || r.Len() != 0 {
		t.Fatalf("expired %d, left %d; want 1 and 0", n, r.Len())
	}
	if len(r.lists) != 0 {
		t.Errorf("%d empty lists kept", len(r.lists))
	}
}

func TestTTLClamp(t *testing.T) {
	r, _, _ := newTestRegistry(t, Options{DefaultTTL: 10 * time.Second, MinTTL: time.Second, MaxTTL: time.Minute})
	tests := []struct{ ask, want time.Duration }{
		{0, 10 * time.Second},
		{-time.Second, 10 * time.Second},
		{time.Millisecond, time.Second},
		{time.Hour, time.Minute},
		{1050 * time.Millisecond, 1100 * time.Millisecond},
	}
	for _, tc := range tests {
		got, err := r.Register("a", ep("i"), tc.ask)
		if err != nil || got != tc.want {
			t.Errorf("Register(ttl %v) = %v, %v; want %v", tc.ask, got, err, tc.want)
		}
	}
}

func TestFreezeAndThaw(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, clk, log := newTestRegistry(t, Options{DefaultTTL: 10 * time.Second, Metrics: reg})
	for i := range 10 {
		mustRegister(t, r, "app", fmt.Sprint("i", i), 0)
	}
	log.take()
	// A partition: 7 of 10 stop heartbeating.
	clk.Advance(5 * time.Second)
	for i := 7; i < 10; i++ {
		_, _ = r.Renew("app", fmt.Sprint("i", i))
	}
	clk.Advance(5*time.Second + time.Millisecond)
	if n := r.Check(); n != 0 {
		t.Fatalf("frozen check expired %d", n)
	}
	if !r.Frozen() || testutil.ToFloat64(r.m.frozen) != 1 {
		t.Fatalf("not frozen with 7/10 overdue (gauge %v)", testutil.ToFloat64(r.m.frozen))
	}
	if up, rm := log.take(); up != nil || rm != nil {
		t.Fatalf("frozen registry published %v %v", up, rm)
	}
	// Still frozen on the next check.
	clk.Advance(time.Second)
	if n := r.Check(); n != 0 || !r.Frozen() {
		t.Fatalf("second check: expired %d frozen %v", n, r.Frozen())
	}

	// The partition heals: 5 of the 7 heartbeat again, 2 really died.
	for i := range 5 {
		if _, err := r.Renew("app", fmt.Sprint("i", i)); err != nil {
			t.Fatalf("renew during freeze: %v", err)
		}
	}
	if n := r.Check(); n != 2 {
		t.Fatalf("after thaw expired %d, want 2", n)
	}
	if r.Frozen() || testutil.ToFloat64(r.m.frozen) != 0 {
		t.Fatal("still frozen after heartbeats returned")
	}
	if got := len(r.Endpoints("app")); got != 8 {
		t.Fatalf("%d instances left, want 8", got)
	}
	if n, err := testutil.GatherAndCount(reg, "outrig_registry_frozen"); err != nil || n != 1 {
		t.Errorf("outrig_registry_frozen not exported on the registry passed in (%d, %v)", n, err)
	}
}

func TestNoFreezeBelowThresholdOrMinInstances(t *testing.T) {
	// 6 of 10 overdue is not more than 60%: they expire.
	r, clk, _ := newTestRegistry(t, Options{DefaultTTL: 10 * time.Second})
	for i := range 10 {
		mustRegister(t, r, "app", fmt.Sprint("i", i), 0)
	}
	clk.Advance(5 * time.Second)
	for i := 6; i < 10; i++ {
		_, _ = r.Renew("app", fmt.Sprint("i", i))
	}
	clk.Advance(6 * time.Second)
	if n := r.Check(); n != 6 || r.Frozen() {
		t.Fatalf("expired %d frozen %v, want 6 and not frozen", n, r.Frozen())
	}

	// A lone instance that dies is removed, not frozen forever.
	r2, clk2, _ := newTestRegistry(t, Options{DefaultTTL: 10 * time.Second})
	mustRegister(t, r2, "solo", "s1", 0)
	clk2.Advance(11 * time.Second)
	if n := r2.Check(); n != 1 {
		t.Fatalf("lone instance: expired %d, want 1", n)
	}
}

func TestValidation(t *testing.T) {
	r, _, _ := newTestRegistry(t, Options{})
	tests := []struct {
		app   string
		ep    *configv1.Endpoint
		field string
	}{
		{"", ep("i"), "app_id"},
		{"a", nil, "endpoint"},
		{"a", &configv1.Endpoint{Address: "h:1"}, "endpoint.instance_id"},
		{"a", &configv1.Endpoint{InstanceId: "i"}, "endpoint.address"},
		{"a", &configv1.Endpoint{InstanceId: "i", Address: "no-port"}, "endpoint.address"},
		{"a", &configv1.Endpoint{InstanceId: "i", Address: "host:"}, "endpoint.address"},
		{"a/b", ep("i"), "app_id"},
		{"a*", ep("i"), "app_id"},
		{"a", &configv1.Endpoint{InstanceId: "i/2", Address: "h:1"}, "endpoint.instance_id"},
		{"a", &configv1.Endpoint{InstanceId: "*", Address: "h:1"}, "endpoint.instance_id"},
	}
	for _, tc := range tests {
		_, err := r.Register(tc.app, tc.ep, 0)
		if !errors.Is(err, errkind.ErrInvalidArgument) {
			t.Errorf("Register(%q, %v) err = %v, want invalid argument", tc.app, tc.ep, err)
			continue
		}
		if got := err.Error(); len(got) < len(tc.field) || got[:len(tc.field)] != tc.field {
			t.Errorf("error %q does not start with field %q", got, tc.field)
		}
	}
	if r.Len() != 0 {
		t.Errorf("invalid registrations stored: %d", r.Len())
	}
}

// Deregister calls OnDeregister for every request, held here or not (a
// replicated control plane removes the instance from the shared store).
func TestOnDeregisterHook(t *testing.T) {
	var got []string
	r, _, _ := newTestRegistry(t, Options{OnDeregister: func(app, inst string) { got = append(got, app+"/"+inst) }})
	mustRegister(t, r, "a", "i1", 0)
	_ = r.Deregister("a", "i1")
	_ = r.Deregister("a", "elsewhere")
	if !cmp.Equal(got, []string{"a/i1", "a/elsewhere"}) {
		t.Fatalf("OnDeregister calls = %v", got)
	}
}
