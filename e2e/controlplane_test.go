package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/outrig/outrig/internal/testenv"
	outrig "github.com/outrig/outrig/sdk-go"
)

// zkStore returns the URL of a fresh store on the ZooKeeper of
// scripts/backends.sh, deleted when the test ends.
func zkStore(t *testing.T) string {
	t.Helper()
	conn, _, err := zk.Connect([]string{"127.0.0.1:2181"}, 4*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := conn.Exists("/"); err != nil {
		conn.Close()
		t.Fatalf("ZooKeeper at 127.0.0.1:2181 is not reachable (scripts/backends.sh up zookeeper): %v", err)
	}
	root := fmt.Sprintf("/outrig-e2e-%d", rand.Uint64())
	t.Cleanup(func() {
		var del func(string)
		del = func(p string) {
			children, _, _ := conn.Children(p)
			for _, c := range children {
				del(p + "/" + c)
			}
			_ = conn.Delete(p, -1)
		}
		del(root)
		conn.Close()
	})
	return "zk://127.0.0.1:2181" + root
}

// httpApp serves every path with "ok from <name>" on a loopback port.
func httpApp(t *testing.T, name string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok from %s", name)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// metric returns the sum of the samples of a metric on an admin endpoint
// (-1 when it cannot be read).
func metric(admin, name string) float64 {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	total, seen := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			total += v
			seen = true
		}
	}
	if !seen {
		return 0
	}
	return total
}

// invoker calls app in a loop and counts the failures.
type invoker struct {
	calls, failures atomic.Int64
	mu              sync.Mutex
	lastErr         error
	stop            context.CancelFunc
	done            chan struct{}
}

func startInvoking(c *outrig.Client, app string) *invoker {
	ctx, cancel := context.WithCancel(context.Background())
	inv := &invoker{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(inv.done)
		for ctx.Err() == nil {
			cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
			resp, err := c.Invoke(cctx, app, "ping", nil)
			ccancel()
			if ctx.Err() != nil {
				return
			}
			inv.calls.Add(1)
			if err == nil && !strings.HasPrefix(string(resp.Data), "ok from ") {
				err = fmt.Errorf("answer %q", resp.Data)
			}
			if err != nil {
				inv.failures.Add(1)
				inv.mu.Lock()
				inv.lastErr = err
				inv.mu.Unlock()
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return inv
}

func (inv *invoker) finish(t *testing.T, what string) {
	t.Helper()
	inv.stop()
	<-inv.done
	t.Logf("%s: %d calls, %d failed", what, inv.calls.Load(), inv.failures.Load())
	if n := inv.failures.Load(); n > 0 {
		inv.mu.Lock()
		defer inv.mu.Unlock()
		t.Fatalf("%s: %d of %d calls failed; last: %v", what, n, inv.calls.Load(), inv.lastErr)
	}
	if inv.calls.Load() < 100 {
		t.Fatalf("%s: only %d calls made", what, inv.calls.Load())
	}
}

func waitMetric(t *testing.T, admin, name string, want float64, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	testenv.Eventually(t, fmt.Sprintf("%s = %v on %s", name, want, admin), d, func() error {
		if got := metric(admin, name); got != want {
			return fmt.Errorf("%s = %v", name, got)
		}
		return nil
	})
	return time.Since(start)
}

// TestReplicaKilledCallsNeverFail runs two control-plane replicas on one
// ZooKeeper store, a callee and a caller sidecar connected to the first
// replica, and SIGKILLs that replica while the caller invokes the callee
// in a loop: both sidecars reconnect to the second replica within 2s, the
// second replica sends them nothing they already hold, the registrations
// move to it, and no call fails.
func TestReplicaKilledCallsNeverFail(t *testing.T) {
	store := zkStore(t)
	res := t.TempDir()
	testenv.WriteFile(t, filepath.Join(res, "store.yaml"), memStore)
	out, err := execCommand(context.Background(), filepath.Join(testenv.BinDir, "outrig"),
		"control-plane", "load", "--store", store, "--resources", res).CombinedOutput()
	if err != nil {
		t.Fatalf("control-plane load: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))

	addrA, addrB := testenv.FreeAddr(t), testenv.FreeAddr(t)
	adminA, adminB := testenv.FreeAddr(t), testenv.FreeAddr(t)
	a := testenv.Start(t, "outrig#cp-a", nil, "control-plane", "--store", store, "--listen", addrA, "--admin-listen", adminA)
	testenv.Start(t, "outrig#cp-b", nil, "control-plane", "--store", store, "--listen", addrB, "--admin-listen", adminB)
	testenv.WaitHTTP(t, "http://"+adminA+"/readyz", 200, 20*time.Second)
	testenv.WaitHTTP(t, "http://"+adminB+"/readyz", 200, 20*time.Second)

	cps := addrA + "," + addrB
	testenv.StartSidecar(t, "orders", "--control-plane", cps, "--app-port", strconv.Itoa(httpApp(t, "orders")))
	caller := testenv.StartSidecar(t, "checkout", "--control-plane", cps)
	c := testenv.Client(t, caller.Sock)
	testenv.Eventually(t, "checkout invokes orders", 10*time.Second, func() error {
		_, err := c.Invoke(context.Background(), "orders", "ping", nil)
		return err
	})
	if err := c.SaveState(context.Background(), "statestore", "k", []byte("v")); err != nil {
		t.Fatalf("configuration from the store not applied: %v", err)
	}
	waitMetric(t, adminA, "outrig_xds_streams", 2, 5*time.Second)
	waitMetric(t, adminB, "outrig_registry_instances", 0, time.Second)
	sentBefore := metric(adminB, "outrig_xds_resources_sent_total")

	inv := startInvoking(c, "orders")
	time.Sleep(500 * time.Millisecond)
	killed := time.Now()
	if err := syscall.Kill(a.Cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	reconnect := waitMetric(t, adminB, "outrig_xds_streams", 2, 5*time.Second)
	t.Logf("both sidecars reconnected to the second replica %v after the SIGKILL", reconnect)
	if reconnect > 2*time.Second {
		t.Errorf("reconnection took %v, want < 2s", reconnect)
	}
	moved := waitMetric(t, adminB, "outrig_registry_instances", 2, 5*time.Second)
	t.Logf("both registrations held by the second replica %v after the SIGKILL", time.Since(killed))
	_ = moved
	// Keep calling past the killed replica's ZooKeeper session (4s), when
	// its instance nodes vanish.
	time.Sleep(6*time.Second - time.Since(killed))
	inv.finish(t, "calls while a replica was killed")
	if got := metric(adminB, "outrig_xds_resources_sent_total") - sentBefore; got != 0 {
		t.Errorf("the second replica sent %v resources to sidecars that failed over, want 0", got)
	}
}

// TestControlPlaneOutage: with the control plane down, running sidecars
// keep serving (configuration and endpoints); a sidecar restarted meanwhile
// starts from its persisted configuration and endpoints; when the control
// plane returns, the registrations come back without restarting anything.
func TestControlPlaneOutage(t *testing.T) {
	res := t.TempDir()
	testenv.WriteFile(t, filepath.Join(res, "store.yaml"), memStore)
	cpAddr, cpAdmin := testenv.FreeAddr(t), testenv.FreeAddr(t)
	cpArgs := []string{"control-plane", "--resources", res, "--listen", cpAddr, "--admin-listen", cpAdmin}
	cp := testenv.Start(t, "outrig#cp", nil, cpArgs...)
	testenv.WaitHTTP(t, "http://"+cpAdmin+"/readyz", 200, 20*time.Second)

	testenv.StartSidecar(t, "orders", "--control-plane", cpAddr, "--app-port", strconv.Itoa(httpApp(t, "orders")))
	state := filepath.Join(t.TempDir(), "checkout.state")
	caller := testenv.StartSidecar(t, "checkout", "--control-plane", cpAddr, "--state-file", state)
	c := testenv.Client(t, caller.Sock)
	testenv.Eventually(t, "checkout invokes orders", 10*time.Second, func() error {
		_, err := c.Invoke(context.Background(), "orders", "ping", nil)
		return err
	})
	waitMetric(t, cpAdmin, "outrig_registry_instances", 2, 5*time.Second)
	testenv.Eventually(t, "orders' endpoint persisted", 5*time.Second, func() error {
		b, err := os.ReadFile(state)
		if err != nil {
			return err
		}
		if !bytes.Contains(b, []byte("orders/")) {
			return fmt.Errorf("not yet")
		}
		return nil
	})

	// The control plane goes away entirely.
	if err := syscall.Kill(cp.Cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	inv := startInvoking(c, "orders")
	time.Sleep(2 * time.Second)
	inv.finish(t, "calls with the control plane down")
	if err := c.SaveState(context.Background(), "statestore", "k", []byte("v")); err != nil {
		t.Fatalf("state with the control plane down: %v", err)
	}

	// A caller restarted now starts from its persisted configuration and
	// endpoints.
	caller.Stop(t)
	caller2 := testenv.StartSidecar(t, "checkout", "--control-plane", cpAddr, "--state-file", state)
	c2 := testenv.Client(t, caller2.Sock)
	if err := c2.SaveState(context.Background(), "statestore", "k", []byte("v")); err != nil {
		t.Fatalf("restarted sidecar without control plane: persisted store unusable: %v", err)
	}
	inv = startInvoking(c2, "orders")
	time.Sleep(time.Second)
	inv.finish(t, "calls from a sidecar restarted while the control plane is down")

	// The control plane returns (same address, empty registry): both
	// sidecars register again on their own, and calls go on.
	inv = startInvoking(c2, "orders")
	back := time.Now()
	testenv.Start(t, "outrig#cp-again", nil, cpArgs...)
	testenv.WaitHTTP(t, "http://"+cpAdmin+"/readyz", 200, 20*time.Second)
	waitMetric(t, cpAdmin, "outrig_registry_instances", 2, 15*time.Second)
	t.Logf("both registrations back %v after the control plane restarted", time.Since(back))
	time.Sleep(time.Second)
	inv.finish(t, "calls while the control plane came back")
	resp, err := http.Get("http://" + caller2.Admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("caller not ready after the control plane returned: %d", resp.StatusCode)
	}
}
