package redis

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
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// The tests use the shared Redis of scripts/backends.sh (127.0.0.1:6379),
// with keys unique to the run; it must be up (they fail otherwise).
const addr = "127.0.0.1:6379"

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	s := New(logger.NewLogger("test")).(*Store)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Init(ctx, cstate.Metadata{Base: metadata.Base{Properties: map[string]string{"redisHost": addr, "dialTimeout": "1s"}}}); err != nil {
		t.Fatalf("Init (run `scripts/backends.sh up redis`): %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, keyPrefix()
}

// keyPrefix returns a key prefix unique to the run.
func keyPrefix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "redistest-" + hex.EncodeToString(b) + "-"
}

func etagMismatch(err error) bool {
	var e *cstate.ETagError
	return errors.As(err, &e) && e.Kind() == cstate.ETagMismatch
}

// An ETag read before a delete never matches the key written again.
func TestETagNotReusedAfterRecreate(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s, p := newStore(t)
	ctx := context.Background()
	k := p + "k"
	if err := s.Set(ctx, &cstate.SetRequest{Key: k, Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	old, err := s.Get(ctx, &cstate.GetRequest{Key: k})
	if err != nil || old.ETag == nil {
		t.Fatalf("Get: %+v, %v", old, err)
	}
	if err := s.Delete(ctx, &cstate.DeleteRequest{Key: k}); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, &cstate.SetRequest{Key: k, Value: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	err = s.Set(ctx, &cstate.SetRequest{Key: k, Value: []byte("c"), ETag: old.ETag, Options: cstate.SetStateOption{Concurrency: cstate.FirstWrite}})
	if !etagMismatch(err) {
		t.Fatalf("write with the ETag of the deleted incarnation: %v, want a mismatch", err)
	}
	s.Close()
}

// Data written by contrib's state.redis (first-write flag included) and
// plain strings are readable and writable.
func TestForeignData(t *testing.T) {
	s, p := newStore(t)
	ctx := context.Background()
	raw := goredis.NewClient(&goredis.Options{Addr: addr})
	defer raw.Close()
	dapr, plain := p+"dapr", p+"plain"
	t.Cleanup(func() { raw.Del(context.Background(), dapr, plain) })
	if err := raw.HSet(ctx, dapr, "data", "from dapr", "version", "3", "first-write", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := raw.Set(ctx, plain, "just a string", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Get(ctx, &cstate.GetRequest{Key: dapr})
	if err != nil || string(r.Data) != "from dapr" || r.ETag == nil || *r.ETag != "3" {
		t.Fatalf("contrib's hash: %+v, %v", r, err)
	}
	// A write without an ETag succeeds despite contrib's first-write flag.
	if err := s.Set(ctx, &cstate.SetRequest{Key: dapr, Value: []byte("mine")}); err != nil {
		t.Fatal(err)
	}
	r, err = s.Get(ctx, &cstate.GetRequest{Key: plain})
	if err != nil || string(r.Data) != "just a string" || r.ETag != nil {
		t.Fatalf("plain string: %+v, %v", r, err)
	}
	got, err := s.BulkGet(ctx, []cstate.GetRequest{{Key: dapr}, {Key: plain}, {Key: p + "none"}}, cstate.BulkGetOpts{})
	if err != nil || string(got[0].Data) != "mine" || string(got[1].Data) != "just a string" || got[2].Data != nil || got[2].Error != "" {
		t.Fatalf("BulkGet: %+v, %v", got, err)
	}
}

// A transaction naming one key twice applies both operations in order.
func TestMultiSameKeyTwice(t *testing.T) {
	s, p := newStore(t)
	ctx := context.Background()
	k := p + "k"
	err := s.Multi(ctx, &cstate.TransactionalStateRequest{Operations: []cstate.TransactionalStateOperation{
		cstate.SetRequest{Key: k, Value: []byte("1")},
		cstate.DeleteRequest{Key: k},
		cstate.SetRequest{Key: k, Value: []byte("2")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.Get(ctx, &cstate.GetRequest{Key: k}); err != nil || string(r.Data) != "2" {
		t.Fatalf("Get: %+v, %v", r, err)
	}
}

func TestParseMetadata(t *testing.T) {
	s, err := parseMetadata(map[string]string{"redisHost": "h:1", "redisDB": "2", "dialTimeout": "250", "readTimeout": "2s", "redisMaxRetries": "-1", "ttlInSeconds": "60"})
	if err != nil {
		t.Fatal(err)
	}
	if s.opts.Addr != "h:1" || s.opts.DB != 2 || s.opts.DialTimeout != 250*time.Millisecond || s.opts.ReadTimeout != 2*time.Second ||
		s.opts.MaxRetries != -1 || s.defaultTTL != 60 || !s.opts.ContextTimeoutEnabled {
		t.Fatalf("options %+v", s)
	}
	for _, md := range []map[string]string{
		{},
		{"redisHost": "a:1,b:2"},
		{"redisHost": "a:1", "redisType": "cluster"},
		{"redisHost": "a:1", "failover": "true"},
		{"redisHost": "a:1", "dialTimeout": "soon"},
		{"redisHost": "a:1", "redisDB": "x"},
		{"redisHost": "a:1", "enableTLS": "maybe"},
	} {
		if _, err := parseMetadata(md); err == nil {
			t.Errorf("parseMetadata(%v): no error", md)
		}
	}
}
