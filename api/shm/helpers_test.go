package shm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// goroutineIDs returns the ids of all goroutines and their stacks.
func goroutineStacks() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		m := goroutineHeader.FindSubmatch(g)
		if m != nil {
			out[string(m[1])] = string(g)
		}
	}
	return out
}

var goroutineHeader = regexp.MustCompile(`^goroutine (\d+) \[`)

// checkLeaks fails the test if goroutines started during it are still
// running shortly after it ends (the api module does not depend on goleak,
// so this is the same idea in a few lines).
func checkLeaks(t *testing.T) {
	t.Helper()
	before := goroutineStacks()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			var leaked []string
			for id, st := range goroutineStacks() {
				if _, ok := before[id]; ok || strings.Contains(st, "checkLeaks") || strings.Contains(st, "testing.tRunner") || strings.Contains(st, "testing.(*T).Run") {
					continue
				}
				leaked = append(leaked, st)
			}
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				sort.Strings(leaked)
				t.Errorf("%d goroutines leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// sockPath returns a socket path short enough for sun_path.
func sockPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "shm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s")
}

// startServer listens and serves h until the test ends.
func startServer(t *testing.T, opts ServerOptions, h Handler) *Server {
	t.Helper()
	s, err := Listen(sockPath(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(h) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-errc; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return s
}

func dial(t *testing.T, path string, opts DialOptions) *ClientConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, path, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echo answers every call with its request.
var echo = HandlerFunc(func(_ context.Context, _ uint16, req []byte) ([]byte, error) { return req, nil })

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
