package shm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
)

// Handler serves the calls of shared-memory connections.
//
// Handle runs concurrently with other calls of the same and other
// connections (at most ServerOptions.MaxConcurrentCalls per connection).
// Methods whose handlers have been returning within ~10 µs run on the
// connection's reader goroutine, which saves a thread wake-up; a handler
// that then blocks is still correct — after at most about a millisecond
// another goroutine takes over reading requests. ctx is cancelled when the
// client cancels the call, when the deadline the client sent passes, or when
// the connection closes; it carries the Peer. req is owned by the handler. The returned bytes are copied before
// Handle's caller returns, so the handler may reuse them afterwards. A
// non-nil error is sent as an ERROR frame: its gRPC status (status.FromError;
// codes.Unknown for other errors) reaches the client unchanged.
type Handler interface {
	Handle(ctx context.Context, methodID uint16, req []byte) ([]byte, error)
}

// AsyncHandler is implemented by a Handler that can start some calls without
// blocking and answer them later, from whichever goroutine completes them
// (a Redis store's pipeline reader, say). The server uses it only for calls
// that overlap other calls of their connection: a lone call runs as
// Handle describes (inline, polled for with ServerOptions.LoneSpin).
//
// Why: a handler that blocks costs two goroutine hand-offs per call under
// concurrency — the reader hands its duties to another goroutine, and the
// handler is woken when its backend answers — and on a 2-vCPU VM those
// hand-offs, not the code, were most of the sidecar's CPU with 16 callers
// (docs/benchmarks.md, "Throughput at 16 callers").
//
// HandleAsync runs on the connection's reader goroutine and must not block:
// it either declines (returns false, without calling done; the call then
// runs through Handle) or starts the call and returns true. done must then
// be called exactly once, on any goroutine, possibly before HandleAsync
// returns; it must not block either (it sends the response if the ring has
// room and hands the send to a worker goroutine otherwise). ctx and req are
// as for Handle; done takes resp over (it may be sent after done returns,
// so the handler must not reuse it).
type AsyncHandler interface {
	HandleAsync(ctx context.Context, methodID uint16, req []byte, done func(resp []byte, err error)) bool
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, methodID uint16, req []byte) ([]byte, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, methodID uint16, req []byte) ([]byte, error) {
	return f(ctx, methodID, req)
}

// Peer describes the client of a connection.
type Peer struct {
	// AppID is the app id the client sent in its hello (self-declared).
	AppID string
	// PID and UID are the kernel's view of the client process (SO_PEERCRED).
	PID, UID int
}

type peerKey struct{}

// PeerFromContext returns the client of the call whose handler context is ctx.
func PeerFromContext(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

// ServerStats are counters of a server, for tests and metrics.
type ServerStats struct {
	// Connections is the number of established connections whose segment is mapped.
	Connections int64
	// ConnectionsTotal counts connections that completed the handshake.
	ConnectionsTotal int64
	// HandshakeFailures counts connections that did not complete the handshake.
	HandshakeFailures int64
	// MappedBytes is the size of all segments currently mapped.
	MappedBytes int64
	// CallsInFlight is the number of handlers running now.
	CallsInFlight int64
	// Calls counts handler invocations; CallsCancelled those the client cancelled.
	Calls, CallsCancelled int64
	// Rescues counts inline handlers that overran, so that another goroutine
	// took over reading requests.
	Rescues int64
	// LoneRuns counts slow handlers run on the reader's goroutine because
	// each was its connection's only call (ServerOptions.LoneSpin).
	LoneRuns int64
	// AsyncCalls counts calls started through AsyncHandler.
	AsyncCalls int64
	// Wakeups counts the doorbells rung to wake a client that slept waiting
	// for replies (each costs the app a thread wake-up; a lone caller
	// polling for its reply, DialOptions.LoneSpin, needs none).
	Wakeups int64
}

// Server accepts shared-memory connections on a Unix socket.
//
// Lifecycle: Listen binds the socket; Serve runs the accept loop until Close;
// Close stops accepting, closes every connection (clients see UNAVAILABLE),
// cancels handler contexts and waits for handlers to return and for every
// segment to be unmapped. Serve may be called once. Stats and Close are safe
// for concurrent use.
type Server struct {
	ln   *net.UnixListener
	opts ServerOptions

	mu      sync.Mutex
	conns   map[*serverConn]struct{}
	raw     map[*net.UnixConn]struct{} // connections still in the handshake
	serving bool
	closed  bool
	wg      sync.WaitGroup // handshakes, connections until unmapped, handlers

	conns64, connsTotal, hsFailures, mapped, inflight, calls, cancelled, rescues, loneRuns, wakeups, asyncCalls atomic.Int64
	costs                                                                                                       methodCosts
}

// Listen creates the Unix socket at socketPath. A stale socket file left by a
// dead process is replaced; a live one is an error.
func Listen(socketPath string, opts ServerOptions) (*Server, error) {
	if err := platformSupported(); err != nil {
		return nil, err
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	addr := &net.UnixAddr{Name: socketPath, Net: "unix"}
	ln, err := net.ListenUnix("unix", addr)
	if err != nil && errors.Is(err, syscall.EADDRINUSE) {
		if c, derr := net.DialTimeout("unix", socketPath, time.Second); derr == nil {
			_ = c.Close()
			return nil, fmt.Errorf("shm: listen %s: a server is already listening there: %w", socketPath, err)
		}
		if rerr := os.Remove(socketPath); rerr != nil {
			return nil, fmt.Errorf("shm: listen %s: removing stale socket: %w", socketPath, rerr)
		}
		ln, err = net.ListenUnix("unix", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("shm: listen %s: %w", socketPath, err)
	}
	s := &Server{
		ln:    ln,
		opts:  opts,
		conns: make(map[*serverConn]struct{}),
		raw:   make(map[*net.UnixConn]struct{}),
	}
	s.costs.fastBelow.Store(int64(inlineMax))
	return s, nil
}

// Addr returns the socket path.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("shm: server closed")

// Serve accepts connections and serves their calls with h until Close; it
// then returns ErrServerClosed.
func (s *Server) Serve(h Handler) error {
	if h == nil {
		return errors.New("shm: Serve needs a non-nil Handler")
	}
	s.mu.Lock()
	if s.serving || s.closed {
		s.mu.Unlock()
		return errors.New("shm: Serve called twice or after Close")
	}
	s.serving = true
	s.mu.Unlock()
	backoff := 5 * time.Millisecond
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("shm: accept: %w", err)
			}
			// Out of descriptors and the like: wait and retry, as net/http does.
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = conn.Close()
			return ErrServerClosed
		}
		s.raw[conn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.accept(conn, h)
	}
}

// accept runs the handshake of one connection and starts serving it.
func (s *Server) accept(conn *net.UnixConn, h Handler) {
	defer s.wg.Done()
	sc, err := s.handshake(conn, h)
	s.mu.Lock()
	delete(s.raw, conn)
	if err == nil && s.closed {
		err = ErrServerClosed
	}
	if err != nil {
		s.mu.Unlock()
		s.hsFailures.Add(1)
		_ = conn.Close()
		if sc != nil {
			_ = unmap(sc.ep.mem)
		}
		return
	}
	s.conns[sc] = struct{}{}
	s.wg.Add(1) // released by onClose
	s.mu.Unlock()
	s.conns64.Add(1)
	s.connsTotal.Add(1)
	s.mapped.Add(int64(sc.mapped))
	sc.goServe()
}

// handshake runs SPEC.md §8 from the server side.
func (s *Server) handshake(conn *net.UnixConn, h Handler) (*serverConn, error) {
	_ = conn.SetDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	refuse := func(code codes.Code, err error) error {
		_, _ = conn.Write(reject{code: uint32(code), message: err.Error()}.encode())
		return err
	}
	typ, body, err := readMsg(conn)
	if err != nil {
		return nil, err
	}
	if typ != msgHello {
		return nil, refuse(codes.InvalidArgument, hsErr("message", "type", "got 0x%02x, want hello (0x01)", typ))
	}
	hi, err := decodeHello(body)
	if err != nil {
		return nil, refuse(codes.InvalidArgument, err)
	}
	if hi.minVersion > WireVersion || hi.maxVersion < WireVersion {
		return nil, refuse(codes.FailedPrecondition, hsErr("hello", "version", "client speaks [%d, %d], this sidecar speaks %d", hi.minVersion, hi.maxVersion, WireVersion))
	}
	pid, uid, err := peerCred(conn)
	if err != nil {
		pid, uid = int(hi.pid), -1
	}
	l := newLayout(
		ringSizeFor(hi.requestRingSize, uint64(s.opts.DefaultRingSize), uint64(s.opts.MaxRingSize)),
		ringSizeFor(hi.responseRingSize, uint64(s.opts.DefaultRingSize), uint64(s.opts.MaxRingSize)),
		s.opts.MaxMessageSize)
	dir := ""
	if hi.flags&helloCanReceiveFD == 0 {
		dir = s.opts.ShmDir
	}
	fd, path, err := createSegmentFD(l.segmentSize, dir, uid)
	if err != nil {
		return nil, refuse(codes.ResourceExhausted, err)
	}
	defer removePath(path) // the client has it open once it sent READY; on failure nobody needs it
	mem, err := mapFD(fd, l.segmentSize)
	if err != nil {
		closeFD(fd)
		return nil, refuse(codes.ResourceExhausted, err)
	}
	writeHeader(mem, l, uint32(os.Getpid()))
	w := welcome{version: WireVersion, segmentSize: l.segmentSize}
	sendFD := -1
	if path == "" {
		w.flags, sendFD = welcomeFD, fd
	} else {
		w.flags, w.path = welcomePath, path
	}
	err = writeMsgFD(conn, w.encode(), sendFD)
	closeFD(fd)
	if err == nil {
		err = readReady(conn, mem)
	}
	if err != nil {
		_ = unmap(mem)
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})

	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), peerKey{}, Peer{AppID: hi.appID, PID: pid, UID: uid}))
	sc := newServerConn(s, h, ctx, cancel, l.segmentSize)
	sc.ep = newEndpoint(conn, mem, l, roleServer, sc, s.opts.Spin, s.opts.MaxConcurrentCalls)
	sc.ep.dataBells = &s.wakeups
	if s.opts.LoneSpin > 0 {
		sc.ep.setLoneSpin(s.opts.LoneSpin, sc.idle)
	}
	sc.ep.onFail = cancel             // handlers learn at once that the client is gone
	sc.ep.beforeSpaceWait = sc.rescue // the reader may be running this very handler
	return sc, nil
}

func readReady(conn *net.UnixConn, mem []byte) error {
	typ, body, err := readMsg(conn)
	if err != nil {
		return err
	}
	if typ != msgReady || len(body) != 0 {
		return hsErr("message", "type", "got 0x%02x with %d body bytes, want an empty ready (0x04)", typ, len(body))
	}
	if st := atomic.LoadUint32(word32(mem, offClientState)); st != stateAttached {
		return hsErr("ready", "client_state", "segment says %d, want %d (attached)", st, stateAttached)
	}
	return nil
}

// Close stops the server; see Server. It returns the listener's close error.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	for c := range s.raw {
		_ = c.Close()
	}
	conns := make([]*serverConn, 0, len(s.conns))
	for sc := range s.conns {
		conns = append(conns, sc)
	}
	s.mu.Unlock()
	err := s.ln.Close()
	for _, sc := range conns {
		sc.ep.fail(newError(codes.Unavailable, nil, "sidecar shutting down"))
	}
	s.wg.Wait()
	return err
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{
		Connections:       s.conns64.Load(),
		ConnectionsTotal:  s.connsTotal.Load(),
		HandshakeFailures: s.hsFailures.Load(),
		MappedBytes:       s.mapped.Load(),
		CallsInFlight:     s.inflight.Load(),
		Calls:             s.calls.Load(),
		CallsCancelled:    s.cancelled.Load(),
		Rescues:           s.rescues.Load(),
		LoneRuns:          s.loneRuns.Load(),
		AsyncCalls:        s.asyncCalls.Load(),
		Wakeups:           s.wakeups.Load(),
	}
}
