package client

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/xds/resource"
)

var paymentsEP = &configv1.Endpoint{InstanceId: "pay-1", Address: "127.0.0.1:7001"}

// baseline puts the same configuration in any plane.
func baseline(t *testing.T) func(*plane) {
	return func(p *plane) {
		p.set(t, resource.ComponentType, comp("a"), comp("b"), comp("c"))
		p.set(t, resource.PolicyType, &configv1.Policy{Name: "pol"})
		if _, err := p.reg.Register("payments", paymentsEP, time.Minute); err != nil {
			t.Fatal(err)
		}
		p.reg.Flush()
	}
}

func TestReconnectResubscribesWithVersionsAndGetsNothingHeld(t *testing.T) {
	p1 := startPlaneWith(t, "", baseline(t))
	rec := newRecorder()
	c := newClient(t, p1.addr, rec, nil)
	waitReady(t, c)
	if _, found, err := c.Endpoints(context.Background(), "payments"); err != nil || !found {
		t.Fatalf("Endpoints(payments) = %v, %v", found, err)
	}
	rec.drain()
	before := c.Stats()

	// Restart the control plane on the same address with the same content.
	addr := p1.addr
	p1.stop()
	p2 := startPlaneWith(t, addr, baseline(t))

	// The new stream's wildcard subscriptions are answered (empty), the named
	// one not at all: the versions match.
	eventually(t, "client resubscribed", func() bool {
		s := c.Stats()
		return s.Streams >= before.Streams+1 && s.Responses >= before.Responses+3
	})
	rec.none(t, 200*time.Millisecond)
	if got := p2.sent(t); got != 0 {
		t.Errorf("restarted server sent %v resources, want 0 (client re-sent its versions)", got)
	}
	if got := c.Stats().Resources - before.Resources; got != 0 {
		t.Errorf("client received %d resources after reconnect, want 0", got)
	}

	// The new server's changes still arrive, named and wildcard.
	p2.set(t, resource.ComponentType, comp("a"), comp("b"), comp("c"), comp("d"))
	if call := rec.next(t, resource.ComponentType); !cmp.Equal(call.updated, []string{"d"}) {
		t.Fatalf("after reconnect got %v", call.updated)
	}
	if _, err := p2.reg.Register("payments", &configv1.Endpoint{InstanceId: "pay-2", Address: "127.0.0.1:7004"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	call := rec.next(t, resource.EndpointType)
	if !cmp.Equal(call.updated, []string{"payments/pay-2"}) {
		t.Fatalf("second registration applied %v, want only payments/pay-2", call.updated)
	}
	eventually(t, "payments has 2 endpoints", func() bool { eps, _ := c.CachedEndpoints("payments"); return len(eps) == 2 })
}

func TestPersistedConfigUsedWhileControlPlaneDown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "xds", "cache.bin")
	p1 := startPlaneWith(t, "", baseline(t))
	rec1 := newRecorder()
	c1 := newClient(t, p1.addr, rec1, func(o *Options) { o.PersistPath = path })
	waitReady(t, c1)
	if _, found, _ := c1.Endpoints(context.Background(), "payments"); !found {
		t.Fatal("payments not found")
	}
	eventually(t, "cache file written with payments", func() bool {
		snap, err := readPersisted(path)
		if err != nil {
			return false
		}
		for _, r := range snap {
			if r.GetTypeUrl() == resource.EndpointType && len(r.GetResources()) == 1 {
				return true
			}
		}
		return false
	})
	_ = c1.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("cache file mode %v, want 0600", fi.Mode().Perm())
	}
	addr := p1.addr
	p1.stop()

	// The control plane is down: the new client starts from the file.
	rec2 := newRecorder()
	start := time.Now()
	c2 := newClient(t, addr, rec2, func(o *Options) { o.PersistPath = path; o.InitialTimeout = 300 * time.Millisecond })
	waitReady(t, c2)
	t.Logf("ready from the persisted file after %v", time.Since(start))
	got := map[string][]string{}
	rec2.mu.Lock()
	for _, call := range rec2.calls {
		got[call.typeURL] = append(got[call.typeURL], call.updated...)
	}
	rec2.mu.Unlock()
	want := map[string][]string{
		resource.ComponentType: {"a", "b", "c"},
		resource.PolicyType:    {"pol"},
		resource.EndpointType:  {"payments/pay-1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("applied from file (-want +got):\n%s", diff)
	}
	// The persisted endpoints answer lookups while the control plane is down.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if eps, found, err := c2.Endpoints(ctx, "payments"); err != nil || !found || len(eps) != 1 || eps[0].GetAddress() != "127.0.0.1:7001" {
		t.Fatalf("Endpoints(payments) from the file = %v %v %v", eps, found, err)
	}
	rec2.drain()

	// The control plane comes back with one component changed and payments
	// gone: only that travels, and the persisted endpoints are resubscribed.
	p3 := startPlaneWith(t, addr, func(p *plane) {
		p.set(t, resource.ComponentType, comp("a"), comp("b"), &configv1.Component{Name: "c", Type: "state.redis"})
		p.set(t, resource.PolicyType, &configv1.Policy{Name: "pol"})
	})
	var sawComp, sawEP bool
	for !sawComp || !sawEP {
		select {
		case call := <-rec2.notify:
			switch call.typeURL {
			case resource.ComponentType:
				if !cmp.Equal(call.updated, []string{"c"}) || len(call.removed) != 0 {
					t.Fatalf("components after reconnect: updated %v removed %v", call.updated, call.removed)
				}
				sawComp = true
			case resource.EndpointType:
				if !cmp.Equal(call.removed, []string{"payments/pay-1"}) {
					t.Fatalf("endpoints after reconnect: removed %v", call.removed)
				}
				sawEP = true
			default:
				t.Fatalf("unexpected Apply for %s: %v %v", call.typeURL, call.updated, call.removed)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("after reconnect: component change seen %v, endpoint removal seen %v", sawComp, sawEP)
		}
	}
	if got := p3.sent(t); got != 1 {
		t.Errorf("server sent %v resources to a client started from the file, want 1", got)
	}
}

func TestNoPersistedFileWaitsForControlPlane(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.bin")
	p := startPlane(t, "")
	addr := p.addr
	p.stop()
	rec := newRecorder()
	c := newClient(t, addr, rec, func(o *Options) { o.PersistPath = path; o.InitialTimeout = 100 * time.Millisecond })
	select {
	case <-c.Ready():
		t.Fatal("ready without a control plane or a file")
	case <-time.After(300 * time.Millisecond):
	}
	startPlaneWith(t, addr, baseline(t))
	waitReady(t, c)
}

func TestPersistedFileCorruptIsIgnored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.bin")
	if err := os.WriteFile(path, []byte("outrig-xds-cache v1\n\xff\xff\xff"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readPersisted(path); err == nil {
		t.Fatal("readPersisted accepted a corrupt file")
	}
	if err := os.WriteFile(path, []byte("something else"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readPersisted(path); err == nil {
		t.Fatal("readPersisted accepted a file without the magic line")
	}
}
