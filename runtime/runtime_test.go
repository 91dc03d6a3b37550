package runtime

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cstate "github.com/dapr/components-contrib/state"
	smemory "github.com/dapr/components-contrib/state/in-memory"
	"github.com/dapr/kit/logger"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"

	"github.com/outrig/outrig/components"
)

// closeCounting is an in-memory store that records Close, to observe when
// the runtime closes replaced instances.
type closeCounting struct {
	cstate.Store
	closed *atomic.Int32
}

func (c closeCounting) Close() error { c.closed.Add(1); return c.Store.Close() }

func newTestRuntime(t *testing.T, mode Mode, apps ...string) (*Runtime, *atomic.Int32) {
	t.Helper()
	closed := &atomic.Int32{}
	reg := components.NewRegistry()
	reg.RegisterState("state.in-memory", "v1", func(l logger.Logger) cstate.Store {
		return closeCounting{Store: smemory.NewInMemoryStateStore(l), closed: closed}
	})
	r, err := New(Options{AppIDs: apps, Mode: mode, Registry: reg, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r, closed
}

func comp(name, typ string, md map[string]string, scopes ...string) *configv1.Component {
	c := &configv1.Component{Name: name, Type: typ, Version: "v1", Scopes: scopes}
	for k, v := range md {
		c.Metadata = append(c.Metadata, &configv1.MetadataItem{Name: k, Value: v})
	}
	return c
}

func upd(ms ...proto.Message) map[string]proto.Message {
	out := map[string]proto.Message{}
	for _, m := range ms {
		switch v := m.(type) {
		case *configv1.Component:
			out[v.Name] = v
		case *configv1.Policy:
			out[v.Name] = v
		case *configv1.Subscription:
			out[v.Name] = v
		}
	}
	return out
}

func waitClosed(t *testing.T, c *atomic.Int32, want int32) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for c.Load() != want {
		if time.Now().After(deadline) {
			t.Fatalf("closed instances = %d, want %d", c.Load(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestApplyAddChangeRemoveWithDrain(t *testing.T) {
	r, closed := newTestRuntime(t, ModePod, "app")
	app, _ := r.App("")
	if rej := r.Apply(ComponentType, upd(comp("store", "state.in-memory", nil)), nil); len(rej) != 0 {
		t.Fatalf("rejected: %v", rej)
	}
	s1 := app.Acquire()
	st1 := s1.State["store"]
	if st1 == nil {
		t.Fatal("store not in snapshot")
	}
	if err := st1.Set(context.Background(), nil); err == nil {
		t.Fatal("want validation error")
	}

	// A change creates a new instance; the old one stays open while a call holds s1.
	if rej := r.Apply(ComponentType, upd(comp("store", "state.in-memory", map[string]string{"keyPrefix": "none"})), nil); len(rej) != 0 {
		t.Fatalf("rejected: %v", rej)
	}
	s2 := app.Acquire()
	if s2.State["store"] == st1 {
		t.Fatal("changed component kept its old instance")
	}
	s2.Release()
	time.Sleep(50 * time.Millisecond)
	if closed.Load() != 0 {
		t.Fatal("replaced instance closed while a call still holds the old snapshot")
	}
	s1.Release()
	waitClosed(t, closed, 1)

	// An unchanged re-send keeps the instance.
	s3 := app.Acquire()
	inst := s3.State["store"]
	s3.Release()
	r.Apply(ComponentType, upd(comp("store", "state.in-memory", map[string]string{"keyPrefix": "none"})), nil)
	s4 := app.Acquire()
	if s4.State["store"] != inst {
		t.Fatal("identical spec re-created the instance")
	}
	s4.Release()

	r.Apply(ComponentType, nil, []string{"store"})
	s5 := app.Acquire()
	if s5.State["store"] != nil {
		t.Fatal("removed component still served")
	}
	s5.Release()
	waitClosed(t, closed, 2)
}

func TestApplyRejectsInvalidAndKeepsPrevious(t *testing.T) {
	r, _ := newTestRuntime(t, ModePod, "app")
	app, _ := r.App("")
	r.Apply(ComponentType, upd(comp("store", "state.in-memory", nil)), nil)
	cases := []*configv1.Component{
		comp("store", "state.nosuch", nil),    // unknown type: Init impossible
		comp("store", "queue.in-memory", nil), // not a building block
		{Name: "store", Type: "state.in-memory", Metadata: []*configv1.MetadataItem{{Name: "", Value: "x"}}}, // invalid metadata
	}
	for _, c := range cases {
		rej := r.Apply(ComponentType, upd(c), nil)
		if rej["store"] == nil {
			t.Errorf("%s accepted", c.Type)
			continue
		}
		s := app.Acquire()
		if s.State["store"] == nil || s.Component("store").GetType() != "state.in-memory" {
			t.Errorf("after rejecting %s the previous store no longer serves", c.Type)
		}
		s.Release()
		if got := r.Resources(ComponentType)["store"].(*configv1.Component).GetType(); got != "state.in-memory" {
			t.Errorf("accepted resources now hold %q", got)
		}
	}
}

func TestInitFailureKeepsPreviousVersion(t *testing.T) {
	closed := &atomic.Int32{}
	reg := components.NewRegistry()
	reg.RegisterState("state.in-memory", "v1", func(l logger.Logger) cstate.Store {
		return closeCounting{Store: smemory.NewInMemoryStateStore(l), closed: closed}
	})
	reg.RegisterState("state.hang", "v1", func(l logger.Logger) cstate.Store { return hangingStore{} })
	r, err := New(Options{AppIDs: []string{"app"}, Registry: reg, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	r.Apply(ComponentType, upd(comp("store", "state.in-memory", nil)), nil)
	bad := comp("store", "state.hang", nil)
	bad.InitTimeout = durationpb.New(100 * time.Millisecond)
	start := time.Now()
	rej := r.Apply(ComponentType, upd(bad), nil)
	if rej["store"] == nil || !strings.Contains(rej["store"].Error(), "init") {
		t.Fatalf("hanging Init not rejected: %v", rej)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("Init timeout not applied")
	}
	app, _ := r.App("")
	s := app.Acquire()
	defer s.Release()
	if s.Component("store").GetType() != "state.in-memory" {
		t.Fatal("previous version not kept after a failed Init")
	}
}

type hangingStore struct{ cstate.Store }

func (hangingStore) Init(ctx context.Context, _ cstate.Metadata) error {
	<-ctx.Done()
	return ctx.Err()
}
func (hangingStore) Features() []cstate.Feature { return nil }
func (hangingStore) Close() error               { return nil }

func TestScopesAndHostMode(t *testing.T) {
	r, _ := newTestRuntime(t, ModeHost, "a", "b")
	r.Apply(ComponentType, upd(comp("shared", "state.in-memory", nil), comp("only-a", "state.in-memory", nil, "a")), nil)
	a, _ := r.App("a")
	b, _ := r.App("b")
	sa, sb := a.Acquire(), b.Acquire()
	defer sa.Release()
	defer sb.Release()
	if sa.State["only-a"] == nil || sb.State["only-a"] != nil {
		t.Fatal("scopes not applied per app")
	}
	if sa.State["shared"] == nil || sa.State["shared"] == sb.State["shared"] {
		t.Fatal("host mode: each app needs its own instance of a shared component")
	}
	if _, err := r.App(""); err == nil {
		t.Fatal("host mode must require the app id")
	}
	if _, err := r.App("c"); err == nil {
		t.Fatal("unknown app id accepted")
	}
}

func TestPodModeNeedsOneApp(t *testing.T) {
	if _, err := New(Options{AppIDs: []string{"a", "b"}, Mode: ModePod, Registry: components.NewRegistry()}); err == nil {
		t.Fatal("pod mode with two app ids accepted")
	}
}

func TestPolicyRejectedKeepsPrevious(t *testing.T) {
	r, _ := newTestRuntime(t, ModePod, "app")
	good := &configv1.Policy{Name: "p", Targets: []*configv1.PolicyTarget{{Kind: "state", Name: "store", Method: "Get"}},
		RateLimit: &configv1.RateLimit{Rate: 10, Burst: 10}}
	if rej := r.Apply(PolicyType, upd(good), nil); len(rej) != 0 {
		t.Fatal(rej)
	}
	bad := proto.Clone(good).(*configv1.Policy)
	bad.RateLimit.Rate = -1
	if rej := r.Apply(PolicyType, upd(bad), nil); rej["p"] == nil {
		t.Fatal("invalid policy accepted")
	}
	app, _ := r.App("")
	s := app.Acquire()
	defer s.Release()
	if len(s.PolicyList) != 1 || s.PolicyList[0].GetRateLimit().GetRate() != 10 {
		t.Fatalf("policies in force: %v", s.PolicyList)
	}
	if s.Policies.Lookup("state", "store", "Get", "app").Noop() {
		t.Fatal("policy not compiled into the table")
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
