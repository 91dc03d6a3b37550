package runtime

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	cstate "github.com/dapr/components-contrib/state"
	smemory "github.com/dapr/components-contrib/state/in-memory"
	"github.com/dapr/kit/logger"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"

	"github.com/outrig/outrig/components"
)

// newRedisTestRuntime registers an in-memory store under the type
// state.redis: the runtime's rate-limit client is built from the
// component's metadata whatever the store does, and building it does not
// dial, so these tests need no Redis server (e2e covers the limits on one).
func newRedisTestRuntime(t *testing.T) *Runtime {
	t.Helper()
	reg := components.NewRegistry()
	for _, typ := range []string{"state.redis", "state.in-memory"} {
		reg.RegisterState(typ, "v1", func(l logger.Logger) cstate.Store { return smemory.NewInMemoryStateStore(l) })
	}
	r, err := New(Options{AppIDs: []string{"app"}, Registry: reg, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

func clusterPolicy(method, component string) *configv1.Policy {
	return &configv1.Policy{Name: strings.ToLower(method), Targets: []*configv1.PolicyTarget{{Kind: "invoke", Name: "orders", Method: method}},
		RateLimit: &configv1.RateLimit{Rate: 10, Scope: "cluster", RedisComponent: component}}
}

func snapshotOf(t *testing.T, r *Runtime) *Snapshot {
	t.Helper()
	app, _ := r.App("")
	s := app.Acquire()
	t.Cleanup(s.Release)
	return s
}

func TestClusterRateLimitResolvesRedisComponent(t *testing.T) {
	r := newRedisTestRuntime(t)
	if rej := r.Apply(ComponentType, upd(comp("limits", "state.redis", map[string]string{"redisHost": "127.0.0.1:6379", "redisDB": "2"}),
		comp("plain", "state.in-memory", nil)), nil); len(rej) != 0 {
		t.Fatal(rej)
	}
	if rej := r.Apply(PolicyType, upd(clusterPolicy("Create", "limits"), clusterPolicy("Update", "limits")), nil); len(rej) != 0 {
		t.Fatal(rej)
	}
	s := snapshotOf(t, r)
	create := s.Policies.Lookup("invoke", "orders", "Create", "caller")
	if create.Noop() || len(s.PolicyList) != 2 {
		t.Fatalf("cluster policies not in force: %v", s.PolicyList)
	}
	client := s.instances["limits"].redis
	if client == nil {
		t.Fatal("no Redis client built for the component")
	}
	if got := client.(*redis.Client).Options(); got.Addr != "127.0.0.1:6379" || got.DB != 2 {
		t.Fatalf("client options: addr %q db %d", got.Addr, got.DB)
	}

	// Another policy changes: the unchanged cluster policies keep their
	// chains (their limiter state) and the one client.
	if rej := r.Apply(PolicyType, upd(&configv1.Policy{Name: "other", Targets: []*configv1.PolicyTarget{{Kind: "state", Name: "plain"}},
		RateLimit: &configv1.RateLimit{Rate: 1}}), nil); len(rej) != 0 {
		t.Fatal(rej)
	}
	s2 := snapshotOf(t, r)
	if s2.Policies.Lookup("invoke", "orders", "Create", "caller") != create {
		t.Fatal("an unrelated push reset the cluster policy's chain")
	}
	if s2.instances["limits"].redis != client {
		t.Fatal("an unrelated push built a second client")
	}

	// A policy naming a missing component or a non-Redis one is rejected
	// (NACK) and the previous version stays in force.
	for comp, want := range map[string]string{"nosuch": `no component "nosuch"`, "plain": "not a Redis component"} {
		bad := clusterPolicy("Create", comp)
		rej := r.Apply(PolicyType, upd(bad), nil)
		if rej["create"] == nil || !strings.Contains(rej["create"].Error(), want) {
			t.Fatalf("policy on %s: rejected %v, want an error containing %q", comp, rej, want)
		}
		if s := snapshotOf(t, r); s.Policies.Lookup("invoke", "orders", "Create", "caller") != create {
			t.Fatalf("after the rejected push on %s the previous policy is no longer in force", comp)
		}
	}
	if r.Resources(PolicyType)["create"].(*configv1.Policy).GetRateLimit().GetRedisComponent() != "limits" {
		t.Fatal("the accepted resources record the rejected version")
	}
}

func TestClusterRateLimitFollowsTheComponent(t *testing.T) {
	r := newRedisTestRuntime(t)
	limits := comp("limits", "state.redis", map[string]string{"redisHost": "127.0.0.1:6379"})
	if rej := r.Apply(ComponentType, upd(limits), nil); len(rej) != 0 {
		t.Fatal(rej)
	}
	if rej := r.Apply(PolicyType, upd(clusterPolicy("Create", "limits")), nil); len(rej) != 0 {
		t.Fatal(rej)
	}
	s1 := snapshotOf(t, r)
	old := s1.instances["limits"].redis
	chain := s1.Policies.Lookup("invoke", "orders", "Create", "caller")

	// The component changes: a new client, a fresh chain, and the old client
	// is closed once the snapshot holding it has drained.
	changed := proto.Clone(limits).(*configv1.Component)
	changed.Metadata = append(changed.Metadata, &configv1.MetadataItem{Name: "redisDB", Value: "3"})
	if rej := r.Apply(ComponentType, upd(changed), nil); len(rej) != 0 {
		t.Fatal(rej)
	}
	s2 := snapshotOf(t, r)
	if s2.instances["limits"].redis == old || s2.Policies.Lookup("invoke", "orders", "Create", "caller") == chain {
		t.Fatal("a changed component kept the old client or chain")
	}
	if err := old.Ping(context.Background()).Err(); errors.Is(err, redis.ErrClosed) {
		t.Fatal("old client closed while a snapshot holding it is in use")
	}
	s1.Release()
	waitFor(t, "old client closed", func() bool { return errors.Is(old.Ping(context.Background()).Err(), redis.ErrClosed) })

	// The component goes away: the policy is left out (not in force), then
	// comes back with the component.
	if rej := r.Apply(ComponentType, nil, []string{"limits"}); len(rej) != 0 {
		t.Fatal(rej)
	}
	if s := snapshotOf(t, r); !s.Policies.Lookup("invoke", "orders", "Create", "caller").Noop() || len(s.PolicyList) != 0 {
		t.Fatalf("policy still in force without its component: %v", s.PolicyList)
	}
	if rej := r.Apply(ComponentType, upd(limits), nil); len(rej) != 0 {
		t.Fatal(rej)
	}
	if s := snapshotOf(t, r); s.Policies.Lookup("invoke", "orders", "Create", "caller").Noop() {
		t.Fatal("policy not back in force with its component")
	}
}

func TestRedisClientMetadata(t *testing.T) {
	for _, c := range []struct {
		props map[string]string
		want  string // error substring; "" = ok
	}{
		{map[string]string{}, "redisHost"},
		{map[string]string{"redisHost": "a:1", "redisDB": "x"}, "redisDB"},
		{map[string]string{"redisHost": "a:1", "readTimeout": "5"}, "readTimeout"},
		{map[string]string{"redisHost": "a:1", "enableTLS": "yes please"}, "enableTLS"},
		{map[string]string{"redisHost": "a:1,b:2"}, "redisType node"},
		{map[string]string{"redisHost": "a:1", "redisType": "mesh"}, "redisType"},
		{map[string]string{"redisHost": "a:1", "failover": "true"}, "sentinelMasterName"},
		{map[string]string{"redisHost": "a:1,b:2", "redisType": "cluster"}, ""},
		{map[string]string{"redisHost": "a:1", "failover": "true", "sentinelMasterName": "m"}, ""},
		{map[string]string{"redisHost": "a:1", "enableTLS": "true", "readTimeout": "250ms", "poolSize": "4"}, ""},
	} {
		cl, err := newRedisClient(c.props)
		if cl != nil {
			_ = cl.Close()
		}
		if c.want == "" && err != nil {
			t.Errorf("%v: %v", c.props, err)
		}
		if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%v: error %v, want one naming %q", c.props, err, c.want)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 3s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
