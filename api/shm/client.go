package shm

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ClientConn is an application's shared-memory connection to its sidecar.
//
// Lifecycle: Dial returns an open connection; it closes when Close is called,
// when the sidecar dies or closes its end, or on a protocol error. Done is
// closed at that moment and Err says why. A closed ClientConn never reopens:
// the SDK dials a new one (and may fall back to gRPC meanwhile).
//
// Concurrency: Call, Done, Err and Close are safe for concurrent use by any
// number of goroutines.
type ClientConn struct {
	ep         *endpoint
	maxMessage uint32
	nextStream atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]*call // nil once closed
	// overlapAt is when (UnixNano) a call last started while another was
	// in flight; DialOptions.LoneSpin waits for loneQuiet after it.
	overlapAt atomic.Int64
}

type call struct {
	method  uint16
	arrived atomic.Bool // set before the reply is sent on ch
	ch      chan reply  // buffered 1; the reader sends at most once
}

type reply struct {
	payload []byte
	err     error
}

// Dial connects to the sidecar's shared-memory socket at socketPath, performs
// the handshake (SPEC.md §8) and maps the segment. ctx bounds the handshake
// only. Errors carry a gRPC code: UNAVAILABLE when the sidecar cannot be
// reached or the handshake fails, the sidecar's code when it refuses.
func Dial(ctx context.Context, socketPath string, opts DialOptions) (*ClientConn, error) {
	if err := platformSupported(); err != nil {
		return nil, newError(codes.Unimplemented, err, "shared memory unavailable")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, newError(codes.InvalidArgument, err, "invalid options")
	}
	hctx, cancel := context.WithTimeout(ctx, opts.HandshakeTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(hctx, "unix", socketPath)
	if err != nil {
		return nil, newError(codes.Unavailable, err, "dialing %s", socketPath)
	}
	conn := nc.(*net.UnixConn)
	dl, _ := hctx.Deadline()
	_ = conn.SetDeadline(dl)
	stop := context.AfterFunc(hctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	mem, l, err := clientHandshake(conn, opts)
	stopped := stop()
	if err == nil && !stopped {
		err = hctx.Err()
		_ = unmap(mem)
	}
	if err != nil {
		_ = conn.Close()
		var se *Error
		if errors.As(err, &se) {
			return nil, err
		}
		return nil, newError(codes.Unavailable, err, "handshake with %s", socketPath)
	}
	_ = conn.SetDeadline(time.Time{})

	c := &ClientConn{
		maxMessage: l.maxMessage,
		pending:    make(map[uint64]*call),
	}
	c.ep = newEndpoint(conn, mem, l, roleClient, c, opts.Spin, 1<<16)
	c.ep.setLoneSpin(opts.LoneSpin, c.lone)
	go c.watchIdle()
	return c, nil
}

// clientHandshake runs SPEC.md §8 from the client side and returns the
// mapped, validated segment.
func clientHandshake(conn *net.UnixConn, opts DialOptions) ([]byte, layout, error) {
	h := hello{
		minVersion:       WireVersion,
		maxVersion:       WireVersion,
		requestRingSize:  opts.RequestRingSize,
		responseRingSize: opts.ResponseRingSize,
		pid:              uint32(os.Getpid()),
		appID:            opts.AppID,
	}
	if !opts.NoDescriptorPassing {
		h.flags |= helloCanReceiveFD
	}
	if _, err := conn.Write(h.encode()); err != nil {
		return nil, layout{}, err
	}
	typ, body, fds, err := readMsgFD(conn)
	defer func() {
		for _, fd := range fds {
			closeFD(fd)
		}
	}()
	if err != nil {
		return nil, layout{}, err
	}
	switch typ {
	case msgWelcome:
	case msgReject:
		r, err := decodeReject(body)
		if err != nil {
			return nil, layout{}, err
		}
		return nil, layout{}, newError(codes.Code(r.code), nil, "sidecar refused the connection: %s", r.message)
	default:
		return nil, layout{}, hsErr("message", "type", "got 0x%02x, want welcome (0x02) or reject (0x03)", typ)
	}
	w, err := decodeWelcome(body)
	if err != nil {
		return nil, layout{}, err
	}
	if w.version != WireVersion {
		return nil, layout{}, hsErr("welcome", "version", "got %d, asked for %d", w.version, WireVersion)
	}
	var fd int
	if w.flags == welcomeFD {
		if len(fds) != 1 {
			return nil, layout{}, hsErr("welcome", "flags", "FD mode with %d descriptors attached, want 1", len(fds))
		}
		if opts.NoDescriptorPassing {
			return nil, layout{}, hsErr("welcome", "flags", "FD mode although the hello asked for a path")
		}
		fd = fds[0] // closed by the deferred loop
	} else {
		if len(fds) != 0 {
			return nil, layout{}, hsErr("welcome", "flags", "PATH mode with %d descriptors attached", len(fds))
		}
		if fd, err = openSegmentPath(w.path); err != nil {
			return nil, layout{}, err
		}
		defer closeFD(fd)
	}
	mem, err := mapFD(fd, w.segmentSize)
	if err != nil {
		return nil, layout{}, err
	}
	l, err := readHeader(mem, w.version)
	if err != nil {
		_ = unmap(mem)
		return nil, layout{}, err
	}
	binary.LittleEndian.PutUint32(mem[offClientPID:], uint32(os.Getpid()))
	atomic.StoreUint32(word32(mem, offClientState), stateAttached)
	if _, err := conn.Write(encodeReady()); err != nil {
		_ = unmap(mem)
		return nil, layout{}, err
	}
	return mem, l, nil
}

// Call sends one request of the method and waits for its response.
//
// The returned error is a gRPC status error: the handler's status as the
// sidecar sent it, CANCELLED or DEADLINE_EXCEEDED when ctx ends first (a
// CANCEL frame then tells the sidecar to stop), UNAVAILABLE when the
// connection closed, RESOURCE_EXHAUSTED when req exceeds the segment's max
// message size. req is not retained after Call returns; the response is
// owned by the caller.
func (c *ClientConn) Call(ctx context.Context, methodID uint16, req []byte) ([]byte, error) {
	if methodID == 0 {
		return nil, status.Error(codes.InvalidArgument, "shm: method id 0 is reserved")
	}
	if uint64(len(req)) > uint64(c.maxMessage) {
		return nil, status.Errorf(codes.ResourceExhausted, "shm: request of %d bytes exceeds the max message size %d", len(req), c.maxMessage)
	}
	var timeout uint32
	if dl, ok := ctx.Deadline(); ok {
		d := time.Until(dl)
		if d <= 0 {
			return nil, status.FromContextError(context.DeadlineExceeded).Err()
		}
		if us := (d + time.Microsecond - 1) / time.Microsecond; us <= math.MaxUint32 {
			timeout = uint32(us)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	id := c.nextStream.Add(1)
	cl := &call{method: methodID, ch: make(chan reply, 1)}
	c.mu.Lock()
	if c.pending == nil {
		c.mu.Unlock()
		return nil, c.ep.closedErr()
	}
	c.pending[id] = cl
	overlap := len(c.pending) > 1
	c.mu.Unlock()
	if overlap {
		c.overlapAt.Store(time.Now().UnixNano())
	}

	if err := c.ep.send(ctx, FrameHeader{Method: methodID, Stream: id, TimeoutMicros: timeout}, req, true); err != nil {
		c.forget(id)
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, status.FromContextError(err).Err()
		}
		return nil, err
	}
	return c.await(ctx, cl, id)
}

// await waits for the reply of call id. While no other goroutine performs
// the reader duties, the caller does, so that a lone caller is woken by the
// kernel directly (SPEC.md §6; leader/follower).
func (c *ClientConn) await(ctx context.Context, cl *call, id uint64) ([]byte, error) {
	for {
		select {
		case r := <-cl.ch:
			return r.payload, r.err
		default:
		}
		if ctx.Err() != nil {
			return c.abandon(ctx, cl, id)
		}
		select {
		case r := <-cl.ch:
			return r.payload, r.err
		case <-c.ep.token:
			if c.ep.readTurn(ctx, cl.arrived.Load) == nil {
				r := <-cl.ch
				return r.payload, r.err
			}
		case <-ctx.Done():
			return c.abandon(ctx, cl, id)
		case <-c.ep.done:
			select {
			case r := <-cl.ch:
				return r.payload, r.err
			default:
			}
			c.forget(id)
			return nil, c.ep.err
		}
	}
}

// abandon ends a call whose context ended: the caller is freed now and a
// CANCEL frame tells the sidecar.
func (c *ClientConn) abandon(ctx context.Context, cl *call, id uint64) ([]byte, error) {
	if c.forget(id) {
		c.ep.cancelStream(cl.method, id)
	}
	return nil, status.FromContextError(ctx.Err()).Err()
}

// idleCheck is how often a connection with no reader checks for a dead
// sidecar; while calls wait, their reader notices at once.
const idleCheck = 100 * time.Millisecond

// watchIdle periodically performs the reader duties without sleeping when
// no caller does, so that the death of an idle sidecar closes the
// connection (Done) and stray replies and doorbells are consumed.
func (c *ClientConn) watchIdle() {
	t := time.NewTicker(idleCheck)
	defer t.Stop()
	for {
		select {
		case <-c.ep.done:
			return
		case <-t.C:
		}
		select {
		case <-c.ep.token:
			_ = c.ep.pollOnce()
			c.ep.putToken()
		default: // a caller is reading
		}
	}
}

// lone reports whether calls have not overlapped for loneQuiet
// (DialOptions.LoneSpin): the caller performing the reader duties is then
// the only one waiting. Called by the reader before it spins.
func (c *ClientConn) lone() bool {
	return time.Now().UnixNano()-c.overlapAt.Load() > int64(loneQuiet)
}

// forget removes a pending call; it reports whether it was still pending.
func (c *ClientConn) forget(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pending[id]; !ok {
		return false
	}
	delete(c.pending, id)
	return true
}

// Done is closed when the connection closes for any reason.
func (c *ClientConn) Done() <-chan struct{} { return c.ep.done }

// Err returns nil while the connection is open, then the reason it closed
// (an *Error with code UNAVAILABLE).
func (c *ClientConn) Err() error {
	select {
	case <-c.ep.done:
		return c.ep.err
	default:
		return nil
	}
}

// Close closes the connection: calls in flight fail with UNAVAILABLE and the
// segment is unmapped before Close returns. Closing twice is harmless.
func (c *ClientConn) Close() error {
	c.ep.closeAndRelease(newError(codes.Unavailable, nil, "connection closed by the client"))
	return nil
}

func (c *ClientConn) reserve() bool    { return true }
func (c *ClientConn) canReserve() bool { return true }

// onMessage matches a response to its caller (loop goroutine).
func (c *ClientConn) onMessage(h FrameHeader, payload []byte) error {
	c.mu.Lock()
	cl := c.pending[h.Stream]
	if cl != nil {
		delete(c.pending, h.Stream)
	}
	c.mu.Unlock()
	if cl == nil {
		return nil // the caller gave up (CANCEL) or timed out: drop the late reply
	}
	if cl.method != h.Method {
		return frameErr("method", "response of stream %d has method %d, the request had %d", h.Stream, h.Method, cl.method)
	}
	r := reply{payload: payload}
	if h.Flags&FlagError != 0 {
		r = reply{err: decodeStatus(payload)}
	}
	cl.arrived.Store(true)
	cl.ch <- r
	return nil
}

func (c *ClientConn) onCancel(h FrameHeader) error {
	return frameErr("flags", "CANCEL in the response ring (stream %d)", h.Stream)
}

func (c *ClientConn) onClose(*Error) {
	c.mu.Lock()
	c.pending = nil
	c.mu.Unlock()
}
