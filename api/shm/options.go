package shm

import (
	"fmt"
	"time"
)

// DefaultSpin is the longest a reader polls its ring after it ran dry
// before it parks on the socket (SPEC.md §6.6). The budget adapts between
// DefaultSpin/16 and DefaultSpin: it halves after a spin that found nothing
// and doubles after one that did. On a loaded 2-core machine spinning did
// not pay (docs/benchmarks.md); set Spin to a negative value to disable it.
const DefaultSpin = 5 * time.Microsecond

// DefaultHandshakeTimeout bounds a handshake when the context has no deadline.
const DefaultHandshakeTimeout = 5 * time.Second

// DialOptions configure a client connection. The zero value is valid.
type DialOptions struct {
	// AppID names the application to the sidecar (at most MaxAppIDLen bytes).
	AppID string
	// RequestRingSize and ResponseRingSize ask for ring sizes in bytes; the
	// server rounds them up to a power of two and clamps them to its limits.
	// 0 takes the server's default.
	RequestRingSize, ResponseRingSize uint32
	// NoDescriptorPassing makes the client ask for a named /dev/shm file
	// instead of a memfd, as a peer that cannot receive SCM_RIGHTS does
	// (the Java SDK). Used by tests and to interoperate-check that mode.
	NoDescriptorPassing bool
	// Spin is the longest a caller waiting for its reply polls the response
	// ring before it parks: 0 means DefaultSpin, negative disables spinning.
	Spin time.Duration
	// LoneSpin, when positive, is the longest a lone caller waits for its
	// reply by polling the response ring before it parks (adaptive, as
	// Spin): while the connection has one call in flight and calls have not
	// overlapped for 10 ms, the caller is not put to sleep and the sidecar
	// needs no doorbell to wake it, which saves two thread wake-ups per
	// call. With more than one call in flight, Spin applies. It costs the
	// app up to a core while it calls back to back. 0 (the default) or
	// negative: off.
	LoneSpin time.Duration
	// HandshakeTimeout bounds the handshake when ctx has no earlier
	// deadline; 0 means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
}

// ServerOptions configure a server. The zero value is valid.
type ServerOptions struct {
	// DefaultRingSize is the size of a ring whose client asked for 0;
	// 0 means DefaultRingSize. Must be a power of two in [MinRingSize, MaxRingSize].
	DefaultRingSize uint32
	// MaxRingSize caps what a client may ask for; 0 means 16 MiB.
	MaxRingSize uint32
	// MaxMessageSize is the largest request or response (all fragments),
	// written to the segment header; 0 means DefaultMaxMessage.
	MaxMessageSize uint32
	// MaxConcurrentCalls bounds the handlers running at once per
	// connection; when it is reached the server stops reading requests, so
	// the request ring fills and the client waits (back-pressure). 0 means
	// 1024.
	MaxConcurrentCalls int
	// ShmDir is where segment files are created for clients that cannot
	// receive a descriptor; "" means /dev/shm.
	ShmDir string
	// Spin is the longest the request reader polls before parking: 0 means
	// DefaultSpin, negative disables spinning.
	Spin time.Duration
	// LoneSpin, when positive, serves a lone caller without any thread
	// wake-up in the server: while a connection has no call running, its
	// request reader polls an empty ring for up to LoneSpin (adaptive, as
	// Spin) before parking, and a request that is the connection's only
	// call and whose handler has finished within LoneSpin on average runs
	// on the reader's goroutine, which keeps the reader duties (no hand-off
	// to another thread). Pair it with handlers that poll their backend
	// instead of sleeping (the sidecar's Redis connections do); with more
	// than one call running, Spin applies and nothing changes. It costs up
	// to a core while a caller calls back to back. 0 (the default) or
	// negative: off.
	LoneSpin time.Duration
	// LoneOnlyIf, when not nil, must also report true for a call to count
	// as lone (LoneSpin): the sidecar passes whether the process serves no
	// other calls, so that two lone callers on two connections do not both
	// keep a core busy. Called on the reader's goroutine; it must be cheap
	// and safe for concurrent use.
	LoneOnlyIf func() bool
	// HandshakeTimeout bounds each handshake; 0 means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
}

func (o DialOptions) withDefaults() (DialOptions, error) {
	if len(o.AppID) > MaxAppIDLen {
		return o, fmt.Errorf("shm: DialOptions.AppID is %d bytes, at most %d allowed", len(o.AppID), MaxAppIDLen)
	}
	if o.Spin == 0 {
		o.Spin = DefaultSpin
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	return o, nil
}

func (o ServerOptions) withDefaults() (ServerOptions, error) {
	if o.DefaultRingSize == 0 {
		o.DefaultRingSize = DefaultRingSize
	}
	if o.MaxRingSize == 0 {
		o.MaxRingSize = 16 << 20
	}
	for _, f := range []struct {
		name string
		v    uint32
	}{{"DefaultRingSize", o.DefaultRingSize}, {"MaxRingSize", o.MaxRingSize}} {
		if f.v < MinRingSize || f.v > MaxRingSize || f.v&(f.v-1) != 0 {
			return o, fmt.Errorf("shm: ServerOptions.%s is %d, want a power of two in [%d, %d]", f.name, f.v, MinRingSize, MaxRingSize)
		}
	}
	if o.DefaultRingSize > o.MaxRingSize {
		return o, fmt.Errorf("shm: ServerOptions.DefaultRingSize %d exceeds MaxRingSize %d", o.DefaultRingSize, o.MaxRingSize)
	}
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = DefaultMaxMessage
	}
	if o.MaxConcurrentCalls < 0 {
		return o, fmt.Errorf("shm: ServerOptions.MaxConcurrentCalls is %d, want >= 0", o.MaxConcurrentCalls)
	}
	if o.MaxConcurrentCalls == 0 {
		o.MaxConcurrentCalls = 1024
	}
	if o.ShmDir == "" {
		o.ShmDir = "/dev/shm"
	}
	if o.Spin == 0 {
		o.Spin = DefaultSpin
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	return o, nil
}
