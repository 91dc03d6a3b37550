package outrig

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

var allSentinels = []error{
	ErrInvalidArgument, ErrNotFound, ErrETagMismatch, ErrRateLimited,
	ErrUnavailable, ErrDeadlineExceeded, ErrUnsupported,
}

// A status sent by the sidecar comes back as an error that matches exactly
// the sentinel of its code, keeps the message, and keeps the status.
func TestSidecarErrorsMatchOneSentinel(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t)
	cases := []struct {
		code codes.Code
		want error // nil: no sentinel
	}{
		{codes.InvalidArgument, ErrInvalidArgument},
		{codes.NotFound, ErrNotFound},
		{codes.Aborted, ErrETagMismatch},
		{codes.ResourceExhausted, ErrRateLimited},
		{codes.Unavailable, ErrUnavailable},
		{codes.DeadlineExceeded, ErrDeadlineExceeded},
		{codes.FailedPrecondition, ErrUnsupported},
		{codes.Internal, nil},
		{codes.PermissionDenied, nil},
	}
	for _, tc := range cases {
		t.Run(tc.code.String(), func(t *testing.T) {
			msg := "store \"orders\": something about " + tc.code.String()
			ts.fake.setOnCall(func(context.Context, string, proto.Message) (proto.Message, error) {
				return nil, status.Error(tc.code, msg)
			})
			_, err := c.GetState(context.Background(), "orders", "k")
			if err == nil {
				t.Fatal("GetState: want an error")
			}
			for _, s := range allSentinels {
				if got, want := errors.Is(err, s), s == tc.want; got != want {
					t.Errorf("errors.Is(err, %v) = %v, want %v", s, got, want)
				}
			}
			if got := status.Code(err); got != tc.code {
				t.Errorf("status.Code = %v, want %v", got, tc.code)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *Error", err)
			}
			if e.Message() != msg || e.Code() != tc.code || e.Op() != "GetState" {
				t.Errorf("Error = {op %q code %v msg %q}, want {GetState %v %q}", e.Op(), e.Code(), e.Message(), tc.code, msg)
			}
			// Wrapped by the caller, it still matches.
			wrapped := fmt.Errorf("loading order: %w", err)
			if tc.want != nil && !errors.Is(wrapped, tc.want) {
				t.Errorf("wrapped error does not match %v", tc.want)
			}
			if status.Code(wrapped) != tc.code {
				t.Errorf("status.Code(wrapped) = %v, want %v", status.Code(wrapped), tc.code)
			}
			// It unwraps to the status error.
			if u := errors.Unwrap(err); u == nil || status.Code(u) != tc.code {
				t.Errorf("Unwrap = %v, want the status error", u)
			}
		})
	}
}

// The retry-after hint of a unary gRPC call comes in the trailer.
func TestRetryAfterFromTrailer(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t, WithUnaryRPC())
	for _, where := range []string{"trailer", "none", "garbage", "negative"} {
		t.Run(where, func(t *testing.T) {
			ts.fake.setOnCall(func(ctx context.Context, _ string, _ proto.Message) (proto.Message, error) {
				switch where {
				case "trailer":
					_ = grpc.SetTrailer(ctx, metadata.Pairs("retry-after-ms", "250"))
				case "negative":
					_ = grpc.SetTrailer(ctx, metadata.Pairs("retry-after-ms", "-5"))
				case "garbage":
					_ = grpc.SetTrailer(ctx, metadata.Pairs("retry-after-ms", "soon"))
				}
				return nil, status.Error(codes.ResourceExhausted, "rate limited: state/orders/Set")
			})
			err := c.SaveState(context.Background(), "orders", "k", []byte("v"))
			if !errors.Is(err, ErrRateLimited) {
				t.Fatalf("SaveState error = %v, want ErrRateLimited", err)
			}
			d, ok := RetryAfter(fmt.Errorf("wrapped: %w", err))
			want := map[string]time.Duration{"trailer": 250 * time.Millisecond}[where]
			if ok != (want != 0) || d != want {
				t.Errorf("RetryAfter = %v, %v; want %v, %v", d, ok, want, want != 0)
			}
		})
	}
	if _, ok := RetryAfter(errors.New("plain")); ok {
		t.Error("RetryAfter(plain error) = true")
	}
}

func TestDeadlineMatchesContextError(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t)
	ts.fake.setOnCall(func(ctx context.Context, _ string, _ proto.Message) (proto.Message, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.GetState(ctx, "orders", "k")
	if !errors.Is(err, ErrDeadlineExceeded) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want ErrDeadlineExceeded matching context.DeadlineExceeded", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Error("a deadline error matches context.Canceled")
	}
}

// Errors returned by Serve handlers become status codes by the same table.
func TestStatusOfHandlerErrors(t *testing.T) {
	cases := []struct {
		err  error
		code codes.Code
		msg  string
	}{
		{fmt.Errorf("order 7: %w", ErrNotFound), codes.NotFound, "order 7: outrig: not found"},
		{fmt.Errorf("x: %w", ErrETagMismatch), codes.Aborted, "x: outrig: etag mismatch"},
		{ErrRateLimited, codes.ResourceExhausted, "outrig: rate limited"},
		{status.Error(codes.PermissionDenied, "no"), codes.PermissionDenied, "no"},
		{newError("GetState", codes.Unavailable, "redis down"), codes.Unavailable, "redis down"},
		{context.DeadlineExceeded, codes.DeadlineExceeded, "context deadline exceeded"},
		{fmt.Errorf("waiting: %w", context.Canceled), codes.Canceled, "waiting: context canceled"},
		{errors.New("boom"), codes.Unknown, "boom"},
	}
	for _, tc := range cases {
		code, msg := statusOf(tc.err)
		if code != tc.code || msg != tc.msg {
			t.Errorf("statusOf(%v) = %v %q, want %v %q", tc.err, code, msg, tc.code, tc.msg)
		}
	}
}

// The mapping table is one-to-one.
func TestCodeTableIsBijective(t *testing.T) {
	seenCode := map[codes.Code]bool{}
	seenErr := map[error]bool{}
	for _, e := range codeTable {
		if seenCode[e.code] || seenErr[e.sentinel] {
			t.Errorf("duplicate entry %v → %v", e.code, e.sentinel)
		}
		seenCode[e.code], seenErr[e.sentinel] = true, true
		if got := sentinelFor(e.code); got != e.sentinel {
			t.Errorf("sentinelFor(%v) = %v, want %v", e.code, got, e.sentinel)
		}
	}
	if len(codeTable) != len(allSentinels) {
		t.Errorf("codeTable has %d entries, want one per sentinel (%d)", len(codeTable), len(allSentinels))
	}
}

// On the Multiplex streams (and shared memory) there is no trailer: the
// hint is the status's google.rpc.RetryInfo detail, as the sidecar sends it.
func TestRetryAfterFromRetryInfo(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t)
	ts.fake.setOnCall(func(ctx context.Context, _ string, _ proto.Message) (proto.Message, error) {
		st, err := status.New(codes.ResourceExhausted, "rate limited: state/orders/Set").
			WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(250 * time.Millisecond)})
		if err != nil {
			return nil, err
		}
		return nil, st.Err()
	})
	err := c.SaveState(context.Background(), "orders", "k", []byte("v"))
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("SaveState error = %v, want ErrRateLimited", err)
	}
	if d, ok := RetryAfter(err); !ok || d != 250*time.Millisecond {
		t.Errorf("RetryAfter = %v, %v; want 250ms, true", d, ok)
	}
	if ts.mux.calls.Load() != 1 {
		t.Errorf("the call did not travel on a Multiplex stream")
	}
}
