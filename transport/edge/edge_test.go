package edge

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outrig/outrig/errkind"
)

func TestCodeTable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want codes.Code
	}{
		{nil, codes.OK},
		{errkind.Required("key"), codes.InvalidArgument},
		{fmt.Errorf("store %q: %w", "x", errkind.ErrNotFound), codes.NotFound},
		{fmt.Errorf("x: %w", errkind.ErrEtagMismatch), codes.Aborted},
		{errkind.WithRetryAfter(fmt.Errorf("limited: %w", errkind.ErrResourceExhausted), time.Second), codes.ResourceExhausted},
		{fmt.Errorf("x: %w", errkind.ErrUnavailable), codes.Unavailable},
		{fmt.Errorf("x: %w", errkind.ErrUnsupported), codes.FailedPrecondition},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{status.Error(codes.PermissionDenied, "relayed"), codes.PermissionDenied},
		{errors.New("surprise"), codes.Internal},
	} {
		if got := Code(c.err); got != c.want {
			t.Errorf("Code(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	st, ra := Status(errkind.WithRetryAfter(fmt.Errorf("open: %w", errkind.ErrUnavailable), 1500*time.Millisecond))
	if st.Code() != codes.Unavailable || ra != "1500" || st.Message() != "open: unavailable" {
		t.Fatalf("Status = %v %q", st, ra)
	}
}
