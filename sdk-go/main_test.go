package outrig_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	outrig "github.com/outrig/outrig/sdk-go"
)

// TestMain starts a real sidecar for the runnable examples: outrig built
// from this repository, in host mode for checkout (the examples' default
// app), greeter and payments, on in-memory components and an HTTP output
// binding. Unit tests do not use it.
func TestMain(m *testing.M) {
	os.Exit(runWithSidecar(m))
}

func runWithSidecar(m *testing.M) int {
	dir, err := os.MkdirTemp("", "outrig-sdk-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "sdk-go examples: "+format+"\n", args...)
		return 1
	}
	bin := filepath.Join(dir, "outrig")
	build := exec.Command("go", "build", "-o", bin, "./cmd/outrig")
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fail("build outrig: %v", err)
	}

	// The audit-log binding posts to this server, which answers "recorded".
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail("%v", err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("recorded")) })}
	go hs.Serve(hl)
	defer hs.Close()

	res := filepath.Join(dir, "resources")
	_ = os.MkdirAll(res, 0o755)
	yaml := fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: orders}
spec: {type: state.in-memory, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: events}
spec: {type: pubsub.in-memory, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: audit-log}
spec:
  type: bindings.http
  version: v1
  metadata:
  - {name: url, value: "http://%s/audit"}
`, hl.Addr())
	if err := os.WriteFile(filepath.Join(res, "components.yaml"), []byte(yaml), 0o644); err != nil {
		return fail("%v", err)
	}
	sock := filepath.Join(dir, "outrig.sock")
	admin, err := freeAddr()
	if err != nil {
		return fail("%v", err)
	}
	logf, _ := os.Create(filepath.Join(dir, "sidecar.log"))
	sc := exec.Command(bin, "sidecar", "--mode", "host", "--app-id", "checkout,greeter,payments", "--resources", res,
		"--listen", "unix://"+sock, "--admin-listen", admin, "--state-file", filepath.Join(dir, "config.json"))
	sc.Stdout, sc.Stderr = logf, logf
	sc.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sc.Start(); err != nil {
		return fail("start sidecar: %v", err)
	}
	defer func() {
		_ = syscall.Kill(-sc.Process.Pid, syscall.SIGTERM)
		_ = sc.Wait()
	}()
	if err := waitReady("http://" + admin + "/readyz"); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "sidecar.log"))
		return fail("sidecar not ready: %v\n%s", err, b)
	}
	os.Setenv(outrig.EnvAddress, "unix://"+sock)
	os.Setenv(outrig.EnvAppID, "checkout")

	// payments answers the Invoke example.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pay, err := outrig.NewClient(ctx, outrig.WithAppID("payments"))
	if err != nil {
		return fail("%v", err)
	}
	defer pay.Close()
	srv, err := pay.StartServe(ctx, outrig.Handlers{"Charge": func(context.Context, *outrig.Invocation) (*outrig.Reply, error) {
		return &outrig.Reply{Data: []byte(`{"charged":42}`), ContentType: "application/json"}, nil
	}})
	if err != nil {
		return fail("payments serve: %v", err)
	}
	defer srv.Stop()
	return m.Run()
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitReady(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready", url)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
