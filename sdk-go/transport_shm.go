package outrig

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/outrig/outrig/api/shm"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// WithSharedMemory carries the unary calls (state, publish, invoke,
// bindings, metadata) over the shared-memory transport of a sidecar on the
// same host: a pair of rings in a memory segment shared with the sidecar,
// set up over the Unix socket socketPath. An empty socketPath means the
// sidecar's default: the app API socket path plus ".shm" (the address must
// then be a unix:// address). Subscribe, SubscribeBinding and Serve stay on
// gRPC. When the sidecar restarts, the next call reconnects.
func WithSharedMemory(socketPath string) Option {
	return func(c *clientConfig) { c.shm, c.shmPath = true, socketPath }
}

// DefaultBusyPoll is WithBusyPoll's default.
const DefaultBusyPoll = 200 * time.Microsecond

// WithBusyPoll sets how long a call over shared memory (WithSharedMemory)
// polls for its reply before its goroutine sleeps, while it is the client's
// only call in flight and calls have not overlapped for 10 ms: such a
// caller then needs no wake-up by the sidecar (with the sidecar's own
// --busy-poll, a GetState on the in-memory store took 3.7 µs at the median
// instead of 36, docs/benchmarks.md). The budget adapts to how fast replies
// come. It costs up to a core of the app's CPU while one goroutine calls
// back to back; concurrent callers spin at most 5 µs, as before. 0 turns it
// off (do so under a CPU limit of about a core or less); negative values are
// rejected by NewClient. Default: DefaultBusyPoll.
func WithBusyPoll(d time.Duration) Option {
	return func(c *clientConfig) { c.busyPoll, c.hasBusyPoll = d, true }
}

// shmTransport carries unary calls over api/shm (an idCaller, see
// byIDTransport); the streams stay on the gRPC transport.
type shmTransport struct {
	path     string
	appID    string
	busyPoll time.Duration // DialOptions.LoneSpin

	mu   sync.Mutex
	conn *shm.ClientConn
}

func newShmTransport(address, path, appID string, busyPoll time.Duration) (*shmTransport, error) {
	if path == "" {
		p, ok := strings.CutPrefix(address, "unix://")
		if !ok || p == "" {
			return nil, fmt.Errorf("outrig: WithSharedMemory(\"\") needs a unix:// address, got %q: %w", address, ErrInvalidArgument)
		}
		path = p + ".shm"
	}
	return &shmTransport{path: path, appID: appID, busyPoll: busyPoll}, nil
}

// client returns the live shm connection, dialing a new one after the
// previous one failed (the sidecar restarted).
func (t *shmTransport) client(ctx context.Context) (*shm.ClientConn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn != nil {
		select {
		case <-t.conn.Done():
			t.conn.Close()
			t.conn = nil
		default:
			return t.conn, nil
		}
	}
	c, err := shm.Dial(ctx, t.path, shm.DialOptions{AppID: t.appID, LoneSpin: t.busyPoll})
	if err != nil {
		return nil, status.Error(codes.Unavailable, fmt.Sprintf("shared memory %s: %v", t.path, err))
	}
	t.conn = c
	return c, nil
}

// callID implements idCaller over the shared-memory rings.
func (t *shmTransport) callID(ctx context.Context, method uint16, req []byte) ([]byte, error) {
	c, err := t.client(ctx)
	if err != nil {
		return nil, err
	}
	return c.Call(ctx, method, req)
}

func (t *shmTransport) close() {
	t.mu.Lock()
	if t.conn != nil {
		t.conn.Close()
		t.conn = nil
	}
	t.mu.Unlock()
}
