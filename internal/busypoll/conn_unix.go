//go:build unix

package busypoll

import (
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// conn polls with non-blocking read(2) calls through the socket's RawConn
// (Go's sockets are non-blocking), then falls back to the runtime's poller.
// Deadlines keep working: the poller honours them once a poll ends, which is
// within the budget.
//
// The budget adapts per connection, as the shared-memory spin does: a read
// whose data came later than the gate's budget halves the next poll (down to
// a sixteenth of the gate's), any other read doubles it, so a backend that
// answers slowly (a remote Redis, a slow command) costs little polling.
type conn struct {
	net.Conn
	raw  syscall.RawConn
	gate *Gate
	// cur is the current budget; reads of a connection are not concurrent
	// (its user, go-redis's pool, hands it to one goroutine at a time).
	cur time.Duration
}

func wrap(c net.Conn, g *Gate) net.Conn {
	var sc syscall.Conn
	switch t := c.(type) {
	case *net.TCPConn:
		sc = t
	case *net.UnixConn:
		sc = t
	default:
		return c
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &conn{Conn: c, raw: raw, gate: g, cur: g.Max()}
}

// SyscallConn exposes the socket (go-redis checks pooled connections
// through it).
func (c *conn) SyscallConn() (syscall.RawConn, error) { return c.raw, nil }

func (c *conn) Read(p []byte) (int, error) {
	most := c.gate.Budget()
	if most == 0 || len(p) == 0 {
		return c.Conn.Read(p)
	}
	c.gate.polls.Add(1)
	budget := min(c.cur, most)
	var (
		n      int
		rerr   error
		polled bool
	)
	start := time.Now()
	err := c.raw.Read(func(fd uintptr) bool {
		for i := 0; ; i++ {
			n, rerr = syscall.Read(int(fd), p)
			switch {
			case rerr == syscall.EINTR:
				continue
			case rerr != syscall.EAGAIN:
				return true
			case polled:
				return false // woken by the poller but nothing to read: sleep again
			case i%8 == 7 && time.Since(start) > budget:
				polled = true
				return false
			}
		}
	})
	// An answer that came after the poll gave up but within the gate's
	// budget would have been caught by polling longer: grow then too, or a
	// budget once fallen below the backend's usual answer time would stay
	// at its floor.
	if polled && time.Since(start) >= most {
		c.cur = max(most/16, budget/2)
	} else {
		c.cur = min(most, 2*budget)
	}
	if err == nil && rerr != nil {
		err = os.NewSyscallError("read", rerr)
	}
	if err != nil {
		return 0, &net.OpError{Op: "read", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}
