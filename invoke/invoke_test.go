package invoke

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"

	"github.com/outrig/outrig/errkind"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHTTPChannel(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("X-Caller", r.Header.Get(CallerHeader))
			_, _ = w.Write(append([]byte(r.Method+" "), b...))
		case "/boom":
			http.Error(w, "broken", http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ch := NewHTTPChannel(strings.TrimPrefix(srv.URL, "http://"))
	defer ch.Close()
	ctx := context.Background()

	resp, err := ch.Invoke(ctx, "checkout", &runtimev1.InvokeRequest{Method: "echo", Data: []byte("hi"), HttpVerb: "put"})
	if err != nil || string(resp.Data) != "PUT hi" || resp.Metadata["x-caller"] != "checkout" {
		t.Fatalf("echo: %+v %v", resp, err)
	}
	_, err = ch.Invoke(ctx, "c", &runtimev1.InvokeRequest{Method: "missing"})
	if !errors.Is(err, errkind.ErrNotFound) {
		t.Fatalf("404: %v, want ErrNotFound", err)
	}
	_, err = ch.Invoke(ctx, "c", &runtimev1.InvokeRequest{Method: "boom"})
	var he *HTTPError
	if !errors.Is(err, errkind.ErrUnavailable) || !errors.As(err, &he) || he.HTTPStatus() != 503 {
		t.Fatalf("503: %v, want ErrUnavailable carrying the status", err)
	}
}

func TestServeStreamMatchesRepliesToCallers(t *testing.T) {
	sent := make(chan *runtimev1.Invocation, 3)
	s := NewServeStream(func(inv *runtimev1.Invocation) error { sent <- inv; return nil })
	results := make(chan string, 3)
	for _, m := range []string{"a", "b", "c"} {
		go func() {
			resp, err := s.Call(context.Background(), &runtimev1.Invocation{Method: m})
			if err != nil {
				results <- m + "=err " + err.Error()
				return
			}
			results <- m + "=" + string(resp.Data)
		}()
	}
	var invs []*runtimev1.Invocation
	for range 3 {
		invs = append(invs, <-sent)
	}
	for i := len(invs) - 1; i >= 0; i-- { // answer out of order, each with its own method name
		if err := s.Reply(&runtimev1.InvocationReply{Id: invs[i].Id, Data: []byte(invs[i].Method)}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		m, v, _ := strings.Cut(<-results, "=")
		if m != v {
			t.Errorf("caller %s got %q", m, v)
		}
	}
	if err := s.Reply(&runtimev1.InvocationReply{Id: 999}); !errors.Is(err, errkind.ErrInvalidArgument) {
		t.Fatalf("reply to unknown id: %v", err)
	}
}

func TestServeStreamCloseFailsCallsInFlight(t *testing.T) {
	s := NewServeStream(func(*runtimev1.Invocation) error { return nil })
	errc := make(chan error, 1)
	go func() {
		_, err := s.Call(context.Background(), &runtimev1.Invocation{Method: "m"})
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	s.Close()
	if err := <-errc; !errors.Is(err, errkind.ErrUnavailable) {
		t.Fatalf("call during close: %v, want ErrUnavailable", err)
	}
	if _, err := s.Call(context.Background(), &runtimev1.Invocation{}); !errors.Is(err, errStreamClosed) {
		t.Fatalf("call after close: %v", err)
	}
}

func TestLocalWithoutStreamOrPortIsUnavailable(t *testing.T) {
	l := NewLocal("app", nil)
	if _, err := l.Call(context.Background(), "c", &runtimev1.InvokeRequest{Method: "m"}); !errors.Is(err, errkind.ErrUnavailable) {
		t.Fatalf("got %v", err)
	}
}
