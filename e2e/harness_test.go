// Package e2e tests Outrig through its real binaries: the outrig binary and
// the example apps are built once in TestMain, and every test starts the
// processes it needs on loopback addresses and Unix sockets of its own.
package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	outrig "github.com/outrig/outrig/sdk-go"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "outrig-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	for name, pkg := range map[string]string{"outrig": "./cmd/outrig", "checkout-app": "./examples/apps/checkout", "orders-app": "./examples/apps/orders"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Dir = repoRoot()
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", pkg, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Dir(wd)
}

// process is a started binary whose output goes to a log file.
type process struct {
	cmd *exec.Cmd
	log string
}

func start(t *testing.T, name string, env []string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, strings.SplitN(name, "#", 2)[0])
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, log: logPath}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("--- %s log:\n%s", name, tail(string(b), 4000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// stop sends SIGTERM and waits for the exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	deadline := time.Now().Add(15 * time.Second)
	for syscall.Kill(p.cmd.Process.Pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not exit after SIGTERM", p.cmd.Process.Pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitHTTP(t *testing.T, url string, want int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: want %d within %s, last: %s", url, want, d, last)
}

// writeFile writes atomically (temp + rename) so the control plane's
// watcher never sees half a file.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// resourcesDir returns a folder holding copies of the given files of examples/resources.
func resourcesDir(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(repoRoot(), "examples", "resources", f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, f), string(b))
	}
	return dir
}

type sidecarProc struct {
	*process
	sock, admin string
}

// startSidecar runs `outrig sidecar` with extra args and waits for /readyz.
func startSidecar(t *testing.T, appID string, args ...string) *sidecarProc {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, appID+".sock")
	admin := freeAddr(t)
	base := []string{"sidecar", "--app-id", appID, "--listen", "unix://" + sock, "--admin-listen", admin,
		"--state-file", filepath.Join(dir, "config.json"), "--shutdown-grace", "2s"}
	p := start(t, "outrig#"+appID, nil, append(base, args...)...)
	waitHTTP(t, "http://"+admin+"/readyz", 200, 20*time.Second)
	return &sidecarProc{process: p, sock: sock, admin: admin}
}

func client(t *testing.T, sock string, opts ...outrig.Option) *outrig.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := outrig.NewClient(ctx, append([]outrig.Option{outrig.WithAddress("unix://" + sock), outrig.WithTimeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func eventually(t *testing.T, what string, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
