package busypoll

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func TestGateGrantsPollingOnlyToALonePollingCall(t *testing.T) {
	var off *Gate
	off.Enter(true) // a nil gate is off and safe to use
	off.Leave(true)
	if off.Budget() != 0 || off.Max() != 0 || off.Polls() != 0 || off.Lone() {
		t.Fatal("a nil gate polls")
	}
	if g := NewGate(-time.Second); g.Max() != 0 {
		t.Fatalf("negative budget: Max %v, want 0", g.Max())
	}

	const budget = 300 * time.Microsecond
	g := NewGate(budget)
	if got := g.Budget(); got != 0 || !g.Lone() {
		t.Fatalf("no call in flight: budget %v (want 0), lone %v (want true)", got, g.Lone())
	}
	g.Enter(false)
	if got := g.Budget(); got != 0 || !g.Lone() {
		t.Fatalf("a lone call that may not poll: budget %v (want 0), lone %v (want true)", got, g.Lone())
	}
	g.Leave(false)
	g.Enter(true)
	if got := g.Budget(); got != budget {
		t.Fatalf("a lone polling call: budget %v, want %v", got, budget)
	}
	g.Enter(false) // a second call overlaps
	if got := g.Budget(); got != 0 || g.Lone() {
		t.Fatalf("two calls in flight: budget %v (want 0), lone %v", got, g.Lone())
	}
	g.Leave(false)
	if got := g.Budget(); got != 0 || g.Lone() {
		t.Fatalf("alone again right after an overlap: budget %v, lone %v; want 0 and false for %v", got, g.Lone(), Quiet)
	}
	time.Sleep(Quiet + 5*time.Millisecond)
	if got := g.Budget(); got != budget || !g.Lone() {
		t.Fatalf("alone for longer than %v: budget %v (want %v), lone %v", Quiet, got, budget, g.Lone())
	}
	g.Leave(true)
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// lonePollingGate returns a gate that grants budget to every read (one
// polling call in flight) until the test ends.
func lonePollingGate(t *testing.T, budget time.Duration) *Gate {
	g := NewGate(budget)
	g.Enter(true)
	t.Cleanup(func() { g.Leave(true) })
	return g
}

func TestWrappedConnReadsWhatThePeerSends(t *testing.T) {
	g := lonePollingGate(t, 2*time.Millisecond)
	raw, peer := tcpPair(t)
	c := g.Wrap(raw)
	if c == raw {
		t.Fatal("a TCP connection was not wrapped")
	}
	buf := make([]byte, 64)
	// A reply within the budget (found by polling) and one after it (found
	// by the runtime's poller once the poll gave up).
	for _, delay := range []time.Duration{0, 500 * time.Microsecond, 20 * time.Millisecond} {
		msg := "after " + delay.String()
		go func() {
			time.Sleep(delay)
			_, _ = peer.Write([]byte(msg))
		}()
		n, err := io.ReadFull(c, buf[:len(msg)])
		if err != nil || string(buf[:n]) != msg {
			t.Fatalf("read %q, %v; want %q", buf[:n], err, msg)
		}
	}
	if g.Polls() == 0 {
		t.Fatal("no read polled although the gate granted a budget")
	}
	// Writes and the rest of net.Conn pass through.
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(peer, buf[:4]); err != nil || string(buf[:4]) != "ping" {
		t.Fatalf("peer read %q, %v", buf[:4], err)
	}
	if c.RemoteAddr().String() != peer.LocalAddr().String() {
		t.Fatalf("RemoteAddr %v, want %v", c.RemoteAddr(), peer.LocalAddr())
	}
}

func TestWrappedConnKeepsDeadlinesAndEOF(t *testing.T) {
	g := lonePollingGate(t, time.Millisecond)
	raw, peer := tcpPair(t)
	c := g.Wrap(raw)
	buf := make([]byte, 8)

	if err := c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := c.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("the deadline of 20ms fired after %v", waited)
	}
	_ = c.SetReadDeadline(time.Time{})

	_ = peer.Close()
	if n, err := c.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer closed: %d, %v; want 0, EOF", n, err)
	}
	_ = c.Close()
	if _, err := c.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v, want net.ErrClosed", err)
	}
}

func TestWrapLeavesOtherConnsAlone(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if NewGate(time.Millisecond).Wrap(a) != a {
		t.Fatal("a pipe (no socket to poll) was wrapped")
	}
	raw, _ := tcpPair(t)
	if NewGate(0).Wrap(raw) != raw {
		t.Fatal("a gate that is off wrapped a connection")
	}
}

// A connection whose peer answers after the gate's budget polls less and
// less (a remote or slow backend costs little polling); one whose peer
// answers within it — after the shrunk budget but before the gate's — gets
// its budget back, as does one that answers at once.
func TestPollBudgetAdaptsToThePeer(t *testing.T) {
	const most = 20 * time.Millisecond
	g := lonePollingGate(t, most)
	raw, peer := tcpPair(t)
	c := g.Wrap(raw).(*conn)
	buf := make([]byte, 8)
	answerAfter := func(d time.Duration, times int) {
		t.Helper()
		for i := 0; i < times; i++ {
			go func() {
				time.Sleep(d)
				_, _ = peer.Write([]byte("late"))
			}()
			if _, err := io.ReadFull(c, buf[:4]); err != nil {
				t.Fatal(err)
			}
		}
	}
	answerAfter(3*most, 6)
	if c.cur != most/16 {
		t.Fatalf("after six late answers the budget is %v, want the floor %v", c.cur, most/16)
	}
	answerAfter(most/4, 6) // after the floor's 1.25 ms, within the gate's 20 ms
	if c.cur != most {
		t.Fatalf("after six answers within the gate's budget the budget is %v, want %v", c.cur, most)
	}
	answerAfter(3*most, 6)
	for i := 0; i < 6; i++ {
		if _, err := peer.Write([]byte("soon")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf[:4]); err != nil || string(buf[:4]) != "soon" {
			t.Fatalf("read %q, %v", buf[:4], err)
		}
	}
	if c.cur != most {
		t.Fatalf("after six prompt answers the budget is %v, want %v", c.cur, most)
	}
}
