package outrig

import (
	"context"
	"fmt"
	"strings"
	"sync"

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

// shmTransport carries unary calls over api/shm (an idCaller, see
// byIDTransport); the streams stay on the gRPC transport.
type shmTransport struct {
	path  string
	appID string

	mu   sync.Mutex
	conn *shm.ClientConn
}

func newShmTransport(address, path, appID string) (*shmTransport, error) {
	if path == "" {
		p, ok := strings.CutPrefix(address, "unix://")
		if !ok || p == "" {
			return nil, fmt.Errorf("outrig: WithSharedMemory(\"\") needs a unix:// address, got %q: %w", address, ErrInvalidArgument)
		}
		path = p + ".shm"
	}
	return &shmTransport{path: path, appID: appID}, nil
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
	c, err := shm.Dial(ctx, t.path, shm.DialOptions{AppID: t.appID})
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
