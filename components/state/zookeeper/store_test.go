package zookeeper

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/dapr/components-contrib/metadata"
	cstate "github.com/dapr/components-contrib/state"
	"github.com/dapr/kit/logger"
	"go.uber.org/goleak"

	"github.com/outrig/outrig/errkind"
)

// The tests use the shared ZooKeeper of scripts/backends.sh
// (127.0.0.1:2181) under a prefix path unique to the run; it must be up.
func newStore(t *testing.T, md map[string]string) *Store {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	props := map[string]string{"servers": "127.0.0.1:2181", "sessionTimeout": "5s", "keyPrefixPath": "/outrig-test/" + hex.EncodeToString(b)}
	for k, v := range md {
		props[k] = v
	}
	s := New(logger.NewLogger("test")).(*Store)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Init(ctx, cstate.Metadata{Base: metadata.Base{Properties: props}}); err != nil {
		t.Fatalf("Init (run `scripts/backends.sh up zookeeper`): %v", err)
	}
	return s
}

func etagMismatch(err error) bool {
	var e *cstate.ETagError
	return errors.As(err, &e) && e.Kind() == cstate.ETagMismatch
}

func TestStore(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := newStore(t, nil)
	defer s.Close()
	ctx := context.Background()
	set := func(k, v string, etag *string) error {
		return s.Set(ctx, &cstate.SetRequest{Key: k, Value: []byte(v), ETag: etag})
	}
	get := func(k string) *cstate.GetResponse {
		t.Helper()
		r, err := s.Get(ctx, &cstate.GetRequest{Key: k})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	t.Run("etag not reused after re-create", func(t *testing.T) {
		if err := set("k", "a", nil); err != nil {
			t.Fatal(err)
		}
		old := get("k").ETag
		if err := s.Delete(ctx, &cstate.DeleteRequest{Key: "k"}); err != nil {
			t.Fatal(err)
		}
		if err := set("k", "b", nil); err != nil {
			t.Fatal(err)
		}
		if err := set("k", "c", old); !etagMismatch(err) {
			t.Fatalf("write with the ETag of the deleted node: %v, want a mismatch", err)
		}
	})

	t.Run("transaction all or nothing", func(t *testing.T) {
		if err := set("t1", "1", nil); err != nil {
			t.Fatal(err)
		}
		e1 := get("t1").ETag
		if err := set("t1", "2", nil); err != nil {
			t.Fatal(err)
		}
		err := s.Multi(ctx, &cstate.TransactionalStateRequest{Operations: []cstate.TransactionalStateOperation{
			cstate.SetRequest{Key: "t2", Value: []byte("new")},
			cstate.SetRequest{Key: "t1", Value: []byte("3"), ETag: e1},
		}})
		if !etagMismatch(err) {
			t.Fatalf("stale ETag in a transaction: %v", err)
		}
		if r := get("t2"); r.ETag != nil {
			t.Fatalf("t2 written by a failed transaction: %q", r.Data)
		}
		// One key twice, and a delete of a missing key.
		err = s.Multi(ctx, &cstate.TransactionalStateRequest{Operations: []cstate.TransactionalStateOperation{
			cstate.SetRequest{Key: "t3", Value: []byte("x")},
			cstate.SetRequest{Key: "t3", Value: []byte("y")},
			cstate.DeleteRequest{Key: "never"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if r := get("t3"); string(r.Data) != "y" {
			t.Fatalf("t3 = %q", r.Data)
		}
	})

	t.Run("too large refused, session unharmed", func(t *testing.T) {
		err := set("big", string(make([]byte, 1<<20)), nil)
		if !errors.Is(err, errkind.ErrInvalidArgument) {
			t.Fatalf("1 MiB: %v, want invalid argument", err)
		}
		if err := set("small", "ok", nil); err != nil {
			t.Fatalf("after the refusal: %v", err)
		}
	})

	t.Run("malformed etag", func(t *testing.T) {
		bad := "v1"
		var e *cstate.ETagError
		if err := set("small", "x", &bad); !errors.As(err, &e) || e.Kind() != cstate.ETagInvalid {
			t.Fatalf("malformed ETag: %v", err)
		}
	})
	s.Close()
}

// Init gives up at its context's deadline when no server answers.
func TestInitUnreachable(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := New(logger.NewLogger("test")).(*Store)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Init(ctx, cstate.Metadata{Base: metadata.Base{Properties: map[string]string{"servers": "127.0.0.1:1"}}})
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("Init against nothing: %v after %v", err, time.Since(start))
	}
}
