package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outrig/outrig/internal/testenv"
	outrig "github.com/outrig/outrig/sdk-go"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const memStore = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.in-memory
  version: v1
  metadata: []
`

func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root := testenv.RepoRoot()
	cmd := execCommand(ctx, filepath.Join(testenv.BinDir, "outrig"), "demo", "--bin-dir", testenv.BinDir,
		"--resources", filepath.Join(root, "examples", "resources"), "--extra", filepath.Join(root, "examples", "demo-extra"))
	out, err := cmd.CombinedOutput()
	t.Logf("demo output:\n%s", out)
	if err != nil {
		t.Fatalf("outrig demo failed: %v", err)
	}
	for _, step := range []string{"state-save-get", "state-etag-conflict", "invoke-orders", "publish-subscribe", "component-hot-add", "policy-pushed-live"} {
		if !strings.Contains(string(out), "[ok  ] "+step) {
			t.Errorf("step %s did not pass", step)
		}
	}
	if !strings.Contains(string(out), "summary: 6 passed, 0 failed") {
		t.Error("summary line missing or wrong")
	}
}

func TestBadInputGetsClearErrors(t *testing.T) {
	res := t.TempDir()
	testenv.WriteFile(t, filepath.Join(res, "store.yaml"), memStore)
	sc := testenv.StartSidecar(t, "checkout", "--resources", res)
	c := testenv.Client(t, sc.Sock)
	ctx := context.Background()

	_, err := c.GetState(ctx, "nosuch", "k")
	if !errors.Is(err, outrig.ErrNotFound) || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("unknown store: %v, want ErrNotFound naming it", err)
	}
	err = c.Publish(ctx, "nosuch", "topic", []byte("x"))
	if !errors.Is(err, outrig.ErrNotFound) {
		t.Errorf("unknown pubsub: %v, want ErrNotFound", err)
	}
	if err := c.SaveState(ctx, "statestore", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	it, _ := c.GetState(ctx, "statestore", "k")
	if err := c.SaveState(ctx, "statestore", "k", []byte("v2"), outrig.WithETag(it.ETag)); err != nil {
		t.Fatal(err)
	}
	err = c.SaveState(ctx, "statestore", "k", []byte("v3"), outrig.WithETag(it.ETag))
	if !errors.Is(err, outrig.ErrETagMismatch) {
		t.Errorf("stale etag: %v, want ErrETagMismatch", err)
	}
	_, err = c.Invoke(ctx, "nosuch-app", "M", nil)
	if !errors.Is(err, outrig.ErrNotFound) {
		t.Errorf("unknown app id: %v, want ErrNotFound", err)
	}
}

// TestEmptyFieldsNameTheField sends requests the SDK would refuse itself,
// straight over gRPC, so the sidecar's own validation is what answers.
func TestEmptyFieldsNameTheField(t *testing.T) {
	res := t.TempDir()
	testenv.WriteFile(t, filepath.Join(res, "store.yaml"), memStore)
	sc := testenv.StartSidecar(t, "checkout", "--resources", res)
	rc := rawClient(t, sc.Sock)
	for _, c := range []struct {
		name, field string
		call        func() error
	}{
		{"empty key", "key", func() error { return rc.getState("statestore", "") }},
		{"empty app id", "app_id", func() error { return rc.invoke("", "M") }},
		{"empty method", "method", func() error { return rc.invoke("orders", "") }},
		{"empty topic", "topic", func() error { return rc.publish("events", "") }},
	} {
		err := c.call()
		if code := statusCode(err); code != "InvalidArgument" || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: got %v (%s), want InvalidArgument naming %q", c.name, err, code, c.field)
		}
	}
}

func TestUnixSocketIsPrivate(t *testing.T) {
	res := t.TempDir()
	testenv.WriteFile(t, filepath.Join(res, "store.yaml"), memStore)
	sc := testenv.StartSidecar(t, "checkout", "--resources", res)
	fi, err := os.Stat(sc.Sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestMalformedYAMLKeepsLastGoodConfig(t *testing.T) {
	res := t.TempDir()
	testenv.WriteFile(t, filepath.Join(res, "store.yaml"), memStore)
	cp := testenv.FreeAddr(t)
	testenv.Start(t, "outrig#cp", nil, "control-plane", "--resources", res, "--listen", cp)
	sc := testenv.StartSidecar(t, "checkout", "--control-plane", cp)
	c := testenv.Client(t, sc.Sock)
	ctx := context.Background()
	if err := c.SaveState(ctx, "statestore", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	testenv.WriteFile(t, filepath.Join(res, "store.yaml"), "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: statestore\nspec: [")
	time.Sleep(500 * time.Millisecond)
	if it, err := c.GetState(ctx, "statestore", "k"); err != nil || string(it.Value) != "v" {
		t.Fatalf("after malformed YAML the store no longer serves: %v %v", it, err)
	}
	// A second, valid component arrives while the broken file stays broken.
	testenv.WriteFile(t, filepath.Join(res, "audit.yaml"), strings.ReplaceAll(memStore, "statestore", "audit"))
	testenv.Eventually(t, "new component applied", 5*time.Second, func() error {
		return c.SaveState(ctx, "audit", "k", []byte("v"))
	})
	if it, err := c.GetState(ctx, "statestore", "k"); err != nil || string(it.Value) != "v" {
		t.Fatalf("store lost after another change: %v %v", it, err)
	}
}

func TestSidecarStartsFromPersistedConfigWhenControlPlaneIsDown(t *testing.T) {
	res := t.TempDir()
	testenv.WriteFile(t, filepath.Join(res, "store.yaml"), memStore)
	cpAddr := testenv.FreeAddr(t)
	cp := testenv.Start(t, "outrig#cp", nil, "control-plane", "--resources", res, "--listen", cpAddr)
	dir := t.TempDir()
	state := filepath.Join(dir, "config.json")
	sc := testenv.StartSidecar(t, "checkout", "--control-plane", cpAddr, "--state-file", state)
	testenv.Eventually(t, "config persisted", 5*time.Second, func() error { _, err := os.Stat(state); return err })
	sc.Stop(t)
	cp.Stop(t)

	sc2 := testenv.StartSidecar(t, "checkout", "--control-plane", cpAddr, "--state-file", state)
	c := testenv.Client(t, sc2.Sock)
	if err := c.SaveState(context.Background(), "statestore", "k", []byte("v")); err != nil {
		t.Fatalf("restarted sidecar without control plane cannot use its persisted store: %v", err)
	}
}

func TestAdminEndpoints(t *testing.T) {
	res := t.TempDir()
	testenv.WriteFile(t, filepath.Join(res, "store.yaml"), memStore)
	testenv.WriteFile(t, filepath.Join(res, "redis.yaml"), `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: cache}
spec:
  type: state.redis
  version: v1
  ignoreErrors: true
  initTimeout: 200ms
  metadata:
  - {name: redisHost, value: "127.0.0.1:1"}
  - {name: redisPassword, value: "hunter2-secret"}
`)
	sc := testenv.StartSidecar(t, "checkout", "--resources", res)
	c := testenv.Client(t, sc.Sock)
	_ = c.SaveState(context.Background(), "statestore", "k", []byte("v"))
	for _, path := range []string{"/healthz", "/readyz"} {
		testenv.WaitHTTP(t, "http://"+sc.Admin+path, 200, time.Second)
	}
	dump := get(t, "http://"+sc.Admin+"/config_dump")
	if strings.Contains(dump, "hunter2-secret") {
		t.Fatal("/config_dump shows a password")
	}
	if !strings.Contains(dump, "statestore") || !strings.Contains(dump, "<redacted>") {
		t.Fatalf("/config_dump: %s", dump)
	}
	metrics := get(t, "http://"+sc.Admin+"/metrics")
	if !strings.Contains(metrics, `outrig_api_requests_total{app="checkout",code="OK",component="statestore",method="SaveState"}`) {
		t.Fatalf("/metrics lacks the SaveState counter:\n%s", grep(metrics, "outrig_api"))
	}
	if strings.Contains(metrics, "hunter2-secret") {
		t.Fatal("/metrics shows a password")
	}
	b, _ := os.ReadFile(sc.Log)
	if strings.Contains(string(b), "hunter2-secret") {
		t.Fatal("the sidecar's log shows a password")
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestDemoOnRealBackends(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root := testenv.RepoRoot()
	cmd := execCommand(ctx, filepath.Join(testenv.BinDir, "outrig"), "demo", "--backends", "real", "--bin-dir", testenv.BinDir,
		"--resources", filepath.Join(root, "examples", "resources-real"), "--extra", filepath.Join(root, "examples", "demo-extra"))
	out, err := cmd.CombinedOutput()
	t.Logf("demo output:\n%s", out)
	if err != nil {
		t.Fatalf("outrig demo --backends real failed (are Redis and Kafka up? scripts/backends.sh up redis kafka): %v", err)
	}
	if !strings.Contains(string(out), "summary: 6 passed, 0 failed") {
		t.Fatal("not every step passed")
	}
}

// A sidecar that cannot open one of its listeners exits with an error
// naming the flag — after undoing what it had started — and never panics.
func TestSidecarListenerErrorsExitCleanly(t *testing.T) {
	res := t.TempDir()
	missing := filepath.Join(t.TempDir(), "no", "such", "dir")
	notDir := filepath.Join(t.TempDir(), "file")
	testenv.WriteFile(t, notDir, "")
	for _, tc := range []struct{ flag, value string }{
		{"--shm-listen", filepath.Join(missing, "x.shm")},
		{"--listen", "unix://" + filepath.Join(notDir, "x.sock")}, // a file where the folder would be
		{"--admin-listen", "256.0.0.1:1"},
	} {
		t.Run(strings.TrimPrefix(tc.flag, "--"), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sock := "unix://" + filepath.Join(t.TempDir(), "app.sock")
			args := []string{"sidecar", "--app-id", "x", "--resources", res, "--listen", sock, "--admin-listen", "127.0.0.1:0", tc.flag, tc.value}
			out, err := execCommand(ctx, filepath.Join(testenv.BinDir, "outrig"), args...).CombinedOutput()
			if err == nil {
				t.Fatalf("sidecar started with %s %s:\n%s", tc.flag, tc.value, out)
			}
			if strings.Contains(string(out), "panic") || strings.Contains(string(out), "goroutine ") {
				t.Fatalf("sidecar panicked:\n%s", out)
			}
			if !strings.Contains(string(out), tc.flag) {
				t.Errorf("error does not name %s:\n%s", tc.flag, out)
			}
		})
	}
}
