package invoke

import (
	"context"
	"errors"
	"fmt"
	"sync"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"

	"github.com/outrig/outrig/errkind"
)

// AppChannel reaches the app behind an app port.
type AppChannel interface {
	Invoke(ctx context.Context, callerAppID string, req *runtimev1.InvokeRequest) (*runtimev1.InvokeResponse, error)
	Close() error
}

// Local delivers invocations addressed to one app served by this sidecar:
// to one of its Serve streams (round robin), else to its app port, else
// UNAVAILABLE. Safe for concurrent use.
type Local struct {
	appID   string
	channel AppChannel // nil when the app has no port

	mu      sync.Mutex
	streams []*ServeStream
	next    int
}

// NewLocal returns the callee side of appID; channel may be nil.
func NewLocal(appID string, channel AppChannel) *Local {
	return &Local{appID: appID, channel: channel}
}

// AppID is the app served.
func (l *Local) AppID() string { return l.appID }

// Attach adds a Serve stream; the returned func removes it.
func (l *Local) Attach(s *ServeStream) func() {
	l.mu.Lock()
	l.streams = append(l.streams, s)
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, x := range l.streams {
			if x == s {
				l.streams = append(l.streams[:i], l.streams[i+1:]...)
				break
			}
		}
	}
}

func (l *Local) pick() *ServeStream {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.streams) == 0 {
		return nil
	}
	s := l.streams[l.next%len(l.streams)]
	l.next++
	return s
}

// Call hands the invocation to the app.
func (l *Local) Call(ctx context.Context, callerAppID string, req *runtimev1.InvokeRequest) (*runtimev1.InvokeResponse, error) {
	for range 3 { // a stream may close under us; try the next one
		s := l.pick()
		if s == nil {
			break
		}
		resp, err := s.Call(ctx, &runtimev1.Invocation{
			Method: req.Method, Data: req.Data, ContentType: req.ContentType, Metadata: req.Metadata,
			CallerAppId: callerAppID, HttpVerb: req.HttpVerb,
		})
		if errors.Is(err, errStreamClosed) {
			continue
		}
		return resp, err
	}
	if l.channel != nil {
		return l.channel.Invoke(ctx, callerAppID, req)
	}
	return nil, fmt.Errorf("app %q has no Serve stream and no app port: %w", l.appID, errkind.ErrUnavailable)
}

// Close closes the app channel.
func (l *Local) Close() error {
	if l.channel != nil {
		return l.channel.Close()
	}
	return nil
}
