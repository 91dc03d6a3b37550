package redis

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dapr/components-contrib/metadata"
	cstate "github.com/dapr/components-contrib/state"
	"github.com/dapr/kit/logger"
	"go.uber.org/goleak"

	"github.com/outrig/outrig/internal/busypoll"
)

// A store built by Polling reads Redis replies by polling while its gate
// grants it (a lone call from shared memory), and reads them as before
// otherwise; values of every size come back intact either way.
func TestPollingStoreReadsRepliesWhileAlone(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	gate := busypoll.NewGate(200 * time.Microsecond)
	s := Polling(gate)(logger.NewLogger("test")).(*Store)
	ctx := context.Background()
	if err := s.Init(ctx, cstate.Metadata{Base: metadata.Base{Properties: map[string]string{"redisHost": addr, "dialTimeout": "1s"}}}); err != nil {
		t.Fatalf("Init (run `scripts/backends.sh up redis`): %v", err)
	}
	defer s.Close()
	p := keyPrefix()
	roundTrip := func(k string, v []byte) {
		t.Helper()
		if err := s.Set(ctx, &cstate.SetRequest{Key: k, Value: v}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, &cstate.GetRequest{Key: k})
		if err != nil || !bytes.Equal(got.Data, v) {
			t.Fatalf("Get %s: %d bytes, %v; want the %d written", k, len(got.Data), err, len(v))
		}
	}
	sizes := []int{1, 100, 4 << 10, 1 << 20} // 1 MiB takes many reads
	for _, n := range sizes {
		roundTrip(fmt.Sprintf("%sfree%d", p, n), bytes.Repeat([]byte{'a'}, n))
	}
	if got := gate.Polls(); got != 0 {
		t.Fatalf("%d reads polled with no call in flight", got)
	}
	gate.Enter(true) // what the shared-memory dispatcher does around a call
	for _, n := range sizes {
		roundTrip(fmt.Sprintf("%slone%d", p, n), bytes.Repeat([]byte{'b'}, n))
	}
	gate.Leave(true)
	if gate.Polls() == 0 {
		t.Fatal("no read polled during a lone polling call")
	}
	for _, n := range sizes {
		_ = s.Delete(ctx, &cstate.DeleteRequest{Key: fmt.Sprintf("%sfree%d", p, n)})
		_ = s.Delete(ctx, &cstate.DeleteRequest{Key: fmt.Sprintf("%slone%d", p, n)})
	}
}
