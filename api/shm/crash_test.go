package shm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The crash tests run a peer in a child process: the test binary itself,
// re-executed with these variables, which TestMain routes to runChild.
const (
	childRoleEnv = "OUTRIG_SHM_TEST_CHILD"
	childSockEnv = "OUTRIG_SHM_TEST_SOCK"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(childRoleEnv); role != "" {
		os.Exit(runChild(role, os.Getenv(childSockEnv)))
	}
	os.Exit(m.Run())
}

// runChild is the child process: a server whose "block" calls never end, or
// a client that makes such a call. It reports progress on stdout, one word a
// line, and runs until killed.
func runChild(role, sock string) int {
	switch role {
	case "server":
		s, err := Listen(sock, ServerOptions{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Println("listening")
		_ = s.Serve(HandlerFunc(func(ctx context.Context, _ uint16, req []byte) ([]byte, error) {
			if string(req) == "block" {
				fmt.Println("handling")
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return req, nil
		}))
	case "client":
		c, err := Dial(context.Background(), sock, DialOptions{AppID: "child"})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Println("dialed")
		_, err = c.Call(context.Background(), MethodInvoke, []byte("block"))
		fmt.Fprintln(os.Stderr, "block call returned:", err)
	default:
		fmt.Fprintln(os.Stderr, "unknown child role", role)
	}
	return 3
}

type child struct {
	cmd   *exec.Cmd
	lines chan string
}

// startChild starts the test binary as a peer and waits for its first line.
func startChild(t *testing.T, role, sock, firstLine string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childRoleEnv+"="+role, childSockEnv+"="+sock)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 16)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { c.kill() })
	c.expect(t, firstLine)
	return c
}

func (c *child) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case got, ok := <-c.lines:
		if !ok || got != want {
			t.Fatalf("child said %q (open=%v), want %q", got, ok, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("child did not say %q within 10s", want)
	}
}

// kill sends SIGKILL and reaps the child.
func (c *child) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
	for range c.lines {
	}
}

func countFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// segmentMappings counts mappings of segments (memfd or /dev/shm files) in
// this process.
func segmentMappings(t *testing.T) int {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(maps), "\n") {
		if strings.Contains(line, "memfd:outrig-shm") || strings.Contains(line, "/outrig-") {
			n++
		}
	}
	return n
}

func TestSidecarKilledMidCall(t *testing.T) {
	checkLeaks(t)
	sock := sockPath(t)
	peer := startChild(t, "server", sock, "listening")
	c := dial(t, sock, DialOptions{})
	if resp, err := c.Call(context.Background(), MethodGetState, []byte("ping")); err != nil || string(resp) != "ping" {
		t.Fatalf("call before the kill: %q, %v", resp, err)
	}
	if segmentMappings(t) == 0 {
		t.Fatal("no segment mapping found in /proc/self/maps while connected")
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), MethodInvoke, []byte("block"))
		errc <- err
	}()
	peer.expect(t, "handling")
	start := time.Now()
	peer.kill()
	select {
	case err := <-errc:
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("in-flight call: %v, want UNAVAILABLE", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("in-flight call failed %v after the kill", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight call still blocked 5s after the sidecar was killed")
	}
	select {
	case <-c.Done():
	case <-time.After(time.Second):
		t.Fatal("Done not closed after the sidecar died")
	}
	var se *Error
	if !errors.As(c.Err(), &se) || se.Code != codes.Unavailable {
		t.Fatalf("Err() = %v, want an UNAVAILABLE *Error", c.Err())
	}
	if _, err := c.Call(context.Background(), MethodGetState, nil); status.Code(err) != codes.Unavailable {
		t.Fatalf("call after the sidecar died: %v, want UNAVAILABLE", err)
	}
	c.Close()
	if n := segmentMappings(t); n != 0 {
		t.Fatalf("%d segment mappings remain after Close", n)
	}
}

func TestAppKilledMidCall(t *testing.T) {
	checkLeaks(t)
	entered := make(chan struct{}, 1)
	ended := make(chan error, 1)
	s := startServer(t, ServerOptions{}, HandlerFunc(func(ctx context.Context, _ uint16, req []byte) ([]byte, error) {
		entered <- struct{}{}
		<-ctx.Done()
		ended <- ctx.Err()
		return nil, ctx.Err()
	}))
	fdsBefore, mapsBefore := countFDs(t), segmentMappings(t)

	peer := startChild(t, "client", s.Addr(), "dialed")
	<-entered
	if st := s.Stats(); st.Connections != 1 || st.CallsInFlight != 1 {
		t.Fatalf("stats while the app is connected: %+v", st)
	}
	if segmentMappings(t) != mapsBefore+1 {
		t.Fatalf("segment not mapped while the app is connected")
	}
	peer.kill()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("handler context ended with %v, want Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler context not cancelled after the app died")
	}
	waitFor(t, "server to free the segment", 5*time.Second, func() bool {
		st := s.Stats()
		return st.Connections == 0 && st.MappedBytes == 0 && st.CallsInFlight == 0
	})
	if n := segmentMappings(t); n != mapsBefore {
		t.Errorf("%d segment mappings after the app died, want %d", n, mapsBefore)
	}
	if n := countFDs(t); n != fdsBefore {
		t.Errorf("%d open descriptors after the app died, want %d as before it connected", n, fdsBefore)
	}
}

// With no call in flight nobody waits on the socket; the idle check still
// notices the sidecar's death, so an SDK can reconnect before the next call.
func TestSidecarKilledWhileIdle(t *testing.T) {
	checkLeaks(t)
	sock := sockPath(t)
	peer := startChild(t, "server", sock, "listening")
	c := dial(t, sock, DialOptions{})
	if _, err := c.Call(context.Background(), MethodGetState, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	peer.kill()
	select {
	case <-c.Done():
	case <-time.After(10 * idleCheck):
		t.Fatalf("Done not closed %v after an idle sidecar died", 10*idleCheck)
	}
	if status.Code(c.Err()) != codes.Unavailable {
		t.Fatalf("Err() = %v, want UNAVAILABLE", c.Err())
	}
	c.Close()
	if n := segmentMappings(t); n != 0 {
		t.Fatalf("%d segment mappings remain after Close", n)
	}
}
