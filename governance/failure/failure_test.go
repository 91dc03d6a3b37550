package failure

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outrig/outrig/errkind"
)

type httpErr int

func (e httpErr) Error() string   { return fmt.Sprintf("http %d", int(e)) }
func (e httpErr) HTTPStatus() int { return int(e) }

// isNotFound matches errkind.ErrNotFound only through an Is method.
type isNotFound struct{}

func (isNotFound) Error() string        { return "custom" }
func (isNotFound) Is(target error) bool { return target == errkind.ErrNotFound }

func TestCodeAndClassify(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		code    codes.Code
		outcome Outcome
	}{
		{"nil", nil, codes.OK, Success},
		{"unavailable", fmt.Errorf("redis: %w", errkind.ErrUnavailable), codes.Unavailable, Failure},
		{"deadline kind", fmt.Errorf("x: %w", errkind.ErrDeadlineExceeded), codes.DeadlineExceeded, Failure},
		{"context deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded, Failure},
		{"os deadline", os.ErrDeadlineExceeded, codes.DeadlineExceeded, Failure},
		{"canceled", context.Canceled, codes.Canceled, Ignored},
		{"not found", fmt.Errorf("get: %w", errkind.ErrNotFound), codes.NotFound, Success},
		{"not found by Is", isNotFound{}, codes.NotFound, Success},
		{"invalid", errkind.Required("key"), codes.InvalidArgument, Success},
		{"etag", fmt.Errorf("set: %w", errkind.ErrEtagMismatch), codes.Aborted, Success},
		{"exhausted", errkind.WithRetryAfter(errkind.ErrResourceExhausted, 1), codes.ResourceExhausted, Success},
		{"grpc unavailable", status.Error(codes.Unavailable, "x"), codes.Unavailable, Failure},
		{"grpc internal wrapped", fmt.Errorf("callee: %w", status.Error(codes.Internal, "x")), codes.Internal, Failure},
		{"grpc unknown", status.Error(codes.Unknown, "x"), codes.Unknown, Failure},
		{"grpc deadline", status.Error(codes.DeadlineExceeded, "x"), codes.DeadlineExceeded, Failure},
		{"grpc not found", status.Error(codes.NotFound, "x"), codes.NotFound, Success},
		{"grpc invalid", status.Error(codes.InvalidArgument, "x"), codes.InvalidArgument, Success},
		{"http 500", httpErr(500), codes.Internal, Failure},
		{"http 503", fmt.Errorf("app: %w", httpErr(503)), codes.Unavailable, Failure},
		{"http 504", httpErr(504), codes.DeadlineExceeded, Failure},
		{"http 400", httpErr(400), codes.InvalidArgument, Success},
		{"http 404", httpErr(404), codes.NotFound, Success},
		{"http 408", httpErr(408), codes.InvalidArgument, Success},
		{"http 429", httpErr(429), codes.ResourceExhausted, Success},
		{"unrecognised", errors.New("boom"), codes.Unknown, Failure},
		{"joined, first recognised wins", errors.Join(errors.New("a"), errkind.ErrNotFound, errkind.ErrUnavailable), codes.NotFound, Success},
		{"outermost wins", fmt.Errorf("%w: %w", errkind.ErrUnavailable, httpErr(404)), codes.Unavailable, Failure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Code(tc.err); got != tc.code {
				t.Errorf("Code = %v, want %v", got, tc.code)
			}
			if got := Classify(tc.err); got != tc.outcome {
				t.Errorf("Classify = %v, want %v", got, tc.outcome)
			}
		})
	}
}

func TestParseCode(t *testing.T) {
	for name, want := range map[string]codes.Code{"UNAVAILABLE": codes.Unavailable, "deadline_exceeded": codes.DeadlineExceeded, " Internal ": codes.Internal, "CANCELLED": codes.Canceled} {
		if got, err := ParseCode(name); err != nil || got != want {
			t.Errorf("ParseCode(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := ParseCode("UNAVAIL"); !errors.Is(err, errkind.ErrInvalidArgument) {
		t.Errorf("bad name: %v, want invalid argument", err)
	}
}

func TestCodeDoesNotAllocate(t *testing.T) {
	err := fmt.Errorf("a: %w", fmt.Errorf("b: %w", status.Error(codes.Unavailable, "x")))
	if n := testing.AllocsPerRun(100, func() { Code(err) }); n != 0 {
		t.Fatalf("Code allocates %v", n)
	}
}
