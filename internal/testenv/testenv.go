// Package testenv runs Outrig's real binaries for tests: it builds the
// outrig binary and the example apps once (Main), and starts control
// planes, sidecars and apps as Processes on loopback addresses and Unix
// sockets of the test's own, stopping them (SIGTERM, then SIGKILL) when
// the test ends. Used by the e2e and conformance suites.
package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	outrig "github.com/outrig/outrig/sdk-go"
)

// BinDir holds the binaries built by Main.
var BinDir string

// Main builds the binaries, runs the tests and exits; call it from TestMain.
func Main(m *testing.M) {
	dir, err := os.MkdirTemp("", "outrig-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	BinDir = dir
	for name, pkg := range map[string]string{"outrig": "./cmd/outrig", "checkout-app": "./examples/apps/checkout", "orders-app": "./examples/apps/orders"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Dir = RepoRoot()
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

// RepoRoot is the repository's root folder (the tests run in a package folder below it).
func RepoRoot() string {
	wd, _ := os.Getwd()
	for d := wd; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d
		}
	}
	return filepath.Dir(wd)
}

// Process is a started binary whose output goes to a log file.
type Process struct {
	Cmd *exec.Cmd
	Log string // file holding the process's output
}

// Start runs a binary of BinDir ("outrig", "checkout-app", "orders-app"; a
// "#suffix" only names the log) until the test ends.
func Start(t testing.TB, name string, env []string, args ...string) *Process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(BinDir, strings.SplitN(name, "#", 2)[0])
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{Cmd: cmd, Log: logPath}
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

// Stop sends SIGTERM and waits for the exit.
func (p *Process) Stop(t testing.TB) {
	t.Helper()
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGTERM)
	deadline := time.Now().Add(15 * time.Second)
	for syscall.Kill(p.Cmd.Process.Pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("Process %d did not exit after SIGTERM", p.Cmd.Process.Pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// handedOut holds every address FreeAddr returned in this process: the
// kernel may offer a port again as soon as its probe listener is closed, and
// a test that asked for two addresses (a sidecar's --listen and its
// --admin-listen) then got the same one twice (an e2e test failed so).
var handedOut = struct {
	sync.Mutex
	addrs map[string]bool
}{addrs: map[string]bool{}}

// FreeAddr returns a free loopback TCP address, never one it returned
// before in this process.
func FreeAddr(t testing.TB) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if !handedOut.addrs[addr] {
			handedOut.addrs[addr] = true
			return addr
		}
	}
}

// WaitHTTP waits until url answers want.
func WaitHTTP(t testing.TB, url string, want int, d time.Duration) {
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

// WriteFile writes atomically (temp + rename) so the control plane's
// watcher never sees half a file.
func WriteFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// ResourcesDir returns a folder holding copies of the given files of examples/resources.
func ResourcesDir(t testing.TB, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(RepoRoot(), "examples", "resources", f))
		if err != nil {
			t.Fatal(err)
		}
		WriteFile(t, filepath.Join(dir, f), string(b))
	}
	return dir
}

// Sidecar is a started `outrig sidecar`: its app API socket and admin address.
type Sidecar struct {
	*Process
	Sock, Admin string
}

// StartSidecar runs `outrig sidecar` with extra args and waits for /readyz.
func StartSidecar(t testing.TB, appID string, args ...string) *Sidecar {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, appID+".sock")
	admin := FreeAddr(t)
	base := []string{"sidecar", "--app-id", appID, "--listen", "unix://" + sock, "--admin-listen", admin,
		"--state-file", filepath.Join(dir, "config.json"), "--shutdown-grace", "2s"}
	p := Start(t, "outrig#"+appID, nil, append(base, args...)...)
	WaitHTTP(t, "http://"+admin+"/readyz", 200, 20*time.Second)
	return &Sidecar{Process: p, Sock: sock, Admin: admin}
}

// Client connects the Go SDK to a sidecar socket for the test.
func Client(t testing.TB, sock string, opts ...outrig.Option) *outrig.Client {
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

// Eventually retries f until it returns nil or d passes.
func Eventually(t testing.TB, what string, d time.Duration, f func() error) {
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
