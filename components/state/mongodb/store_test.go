package mongodb

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/dapr/components-contrib/metadata"
	cstate "github.com/dapr/components-contrib/state"
	"github.com/dapr/kit/logger"
	"go.mongodb.org/mongo-driver/bson"
	"go.uber.org/goleak"
)

// The tests use the shared MongoDB-wire server of scripts/backends.sh
// (FerretDB, 127.0.0.1:27017), in a collection unique to the run, dropped
// at the end; it must be up.
func newStore(t *testing.T) *Store {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	s := New(logger.NewLogger("test")).(*Store)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.Init(ctx, cstate.Metadata{Base: metadata.Base{Properties: map[string]string{
		"host": "127.0.0.1:27017", "databaseName": "outrig", "collectionName": "test_" + hex.EncodeToString(b)}}})
	if err != nil {
		t.Fatalf("Init (run `scripts/backends.sh up mongodb`): %v", err)
	}
	return s
}

func TestStore(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := newStore(t)
	ctx := context.Background()
	defer func() {
		_ = s.coll.Drop(ctx)
		s.Close()
	}()
	now := time.Now()
	s.now = func() time.Time { return now }

	t.Run("binary and text values", func(t *testing.T) {
		bin := []byte{0, 0xff, 0xfe, 'a', 0x80}
		for k, v := range map[string][]byte{"bin": bin, "text": []byte(`{"a":"é"}`), "empty": {}} {
			if err := s.Set(ctx, &cstate.SetRequest{Key: k, Value: v}); err != nil {
				t.Fatal(err)
			}
			r, err := s.Get(ctx, &cstate.GetRequest{Key: k})
			if err != nil || !bytes.Equal(r.Data, v) || r.ETag == nil {
				t.Fatalf("%s: %+v, %v", k, r, err)
			}
		}
		// Text stays a BSON string, as contrib writes it.
		var d bson.M
		if err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: "text"}}).Decode(&d); err != nil {
			t.Fatal(err)
		}
		if _, ok := d["value"].(string); !ok {
			t.Fatalf("text stored as %T", d["value"])
		}
	})

	t.Run("contrib document", func(t *testing.T) {
		if _, err := s.coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "dapr"}, {Key: "value", Value: "hi"}, {Key: "_etag", Value: "e1"}, {Key: "_ttl", Value: nil}}); err != nil {
			t.Fatal(err)
		}
		r, err := s.Get(ctx, &cstate.GetRequest{Key: "dapr"})
		if err != nil || string(r.Data) != "hi" || *r.ETag != "e1" {
			t.Fatalf("%+v, %v", r, err)
		}
		e := "e1"
		if err := s.Set(ctx, &cstate.SetRequest{Key: "dapr", Value: []byte("mine"), ETag: &e}); err != nil {
			t.Fatalf("conditional write with contrib's ETag: %v", err)
		}
	})

	t.Run("expired is missing, also for ETags", func(t *testing.T) {
		err := s.Set(ctx, &cstate.SetRequest{Key: "ttl", Value: []byte("v"), Metadata: map[string]string{"ttlInSeconds": "10"}})
		if err != nil {
			t.Fatal(err)
		}
		r, _ := s.Get(ctx, &cstate.GetRequest{Key: "ttl"})
		if r.Metadata[cstate.GetRespMetaKeyTTLExpireTime] == "" {
			t.Fatalf("no expiry time in %+v", r)
		}
		now = now.Add(11 * time.Second)
		if r, err := s.Get(ctx, &cstate.GetRequest{Key: "ttl"}); err != nil || r.ETag != nil {
			t.Fatalf("expired: %+v, %v", r, err)
		}
		got, err := s.BulkGet(ctx, []cstate.GetRequest{{Key: "ttl"}, {Key: "bin"}}, cstate.BulkGetOpts{})
		if err != nil || got[0].ETag != nil || got[1].ETag == nil {
			t.Fatalf("BulkGet: %+v, %v", got, err)
		}
		var e *cstate.ETagError
		err = s.Set(ctx, &cstate.SetRequest{Key: "ttl", Value: []byte("w"), ETag: r.ETag})
		if !errors.As(err, &e) || e.Kind() != cstate.ETagMismatch {
			t.Fatalf("write to an expired key with its old ETag: %v", err)
		}
	})
}

func TestParseMetadata(t *testing.T) {
	s, err := parseMetadata(map[string]string{"host": "h:1", "databaseName": "db", "params": "replicaSet=rs0", "username": "u", "password": "p"})
	if err != nil {
		t.Fatal(err)
	}
	if s.uri != "mongodb://u:p@h:1/db?replicaSet=rs0" || s.collection != defaultCollection {
		t.Fatalf("%+v", s)
	}
	for _, md := range []map[string]string{
		{},
		{"host": "h:1", "server": "s"},
		{"host": "h:1", "operationTimeout": "x"},
		{"host": "h:1", "writeconcern": "some"},
		{"host": "h:1", "readconcern": "fresh"},
	} {
		if _, err := parseMetadata(md); err == nil {
			t.Errorf("parseMetadata(%v): no error", md)
		}
	}
}
