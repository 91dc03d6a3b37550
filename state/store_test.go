package state

import (
	"context"
	"errors"
	"testing"

	"github.com/dapr/components-contrib/metadata"
	cstate "github.com/dapr/components-contrib/state"
	smemory "github.com/dapr/components-contrib/state/in-memory"
	"github.com/dapr/kit/logger"

	"github.com/outrig/outrig/errkind"
)

func newMemStore(t *testing.T, appID, prefix string) *Store {
	t.Helper()
	impl := smemory.NewInMemoryStateStore(logger.NewLogger("test"))
	if err := impl.Init(context.Background(), cstate.Metadata{Base: metadata.Base{Name: "mem"}}); err != nil {
		t.Fatal(err)
	}
	s := New("mem", "state.in-memory", appID, prefix, impl)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func ptr(s string) *string { return &s }

func TestGetSetDelete(t *testing.T) {
	ctx := context.Background()
	s := newMemStore(t, "app", "")
	it, err := s.Get(ctx, "missing", "", nil)
	if err != nil || it.Found {
		t.Fatalf("missing key: got found=%v err=%v, want not found and no error", it.Found, err)
	}
	if err := s.Set(ctx, []SetItem{{Key: "k", Value: []byte("v1")}}); err != nil {
		t.Fatal(err)
	}
	it, err = s.Get(ctx, "k", "", nil)
	if err != nil || !it.Found || string(it.Value) != "v1" || it.ETag == "" {
		t.Fatalf("get after set: %+v err=%v", it, err)
	}
	if err := s.Delete(ctx, []DeleteItem{{Key: "k"}}); err != nil {
		t.Fatal(err)
	}
	if it, _ := s.Get(ctx, "k", "", nil); it.Found {
		t.Fatal("key still found after delete")
	}
}

func TestEmptyValueIsFound(t *testing.T) {
	ctx := context.Background()
	s := newMemStore(t, "app", "")
	if err := s.Set(ctx, []SetItem{{Key: "empty", Value: []byte{}}}); err != nil {
		t.Fatal(err)
	}
	it, err := s.Get(ctx, "empty", "", nil)
	if err != nil || !it.Found || len(it.Value) != 0 {
		t.Fatalf("0-byte value: %+v err=%v", it, err)
	}
}

func TestETagFirstWriteWins(t *testing.T) {
	ctx := context.Background()
	s := newMemStore(t, "app", "")
	if err := s.Set(ctx, []SetItem{{Key: "k", Value: []byte("a")}}); err != nil {
		t.Fatal(err)
	}
	it, _ := s.Get(ctx, "k", "", nil)
	if err := s.Set(ctx, []SetItem{{Key: "k", Value: []byte("b"), ETag: ptr(it.ETag)}}); err != nil {
		t.Fatalf("write with current etag: %v", err)
	}
	err := s.Set(ctx, []SetItem{{Key: "k", Value: []byte("c"), ETag: ptr(it.ETag)}})
	if !errors.Is(err, errkind.ErrEtagMismatch) {
		t.Fatalf("stale etag: got %v, want ErrEtagMismatch", err)
	}
	err = s.Delete(ctx, []DeleteItem{{Key: "k", ETag: ptr(it.ETag)}})
	if !errors.Is(err, errkind.ErrEtagMismatch) {
		t.Fatalf("delete with stale etag: got %v, want ErrEtagMismatch", err)
	}
	got, _ := s.Get(ctx, "k", "", nil)
	if string(got.Value) != "b" {
		t.Fatalf("value = %q, want b (the losing writes must not land)", got.Value)
	}
	// Last-write-wins ignores the stale ETag.
	if err := s.Set(ctx, []SetItem{{Key: "k", Value: []byte("d"), ETag: ptr(it.ETag), Concurrency: "last-write"}}); err != nil {
		t.Fatalf("last-write with stale etag: %v", err)
	}
}

func TestValidationNamesField(t *testing.T) {
	ctx := context.Background()
	s := newMemStore(t, "app", "")
	cases := []struct {
		name  string
		err   error
		field string
	}{
		{"get empty key", func() error { _, err := s.Get(ctx, "", "", nil); return err }(), "key"},
		{"set no items", s.Set(ctx, nil), "states"},
		{"set empty key", s.Set(ctx, []SetItem{{Key: "ok"}, {Key: ""}}), "states[1].key"},
		{"bulk get empty key", func() error { _, err := s.BulkGet(ctx, []string{"a", ""}, 0, nil); return err }(), "keys[1]"},
		{"bad ttl", s.Set(ctx, []SetItem{{Key: "k", Metadata: map[string]string{"ttlInSeconds": "soon"}}}), "ttlInSeconds"},
		{"separator in key", s.Set(ctx, []SetItem{{Key: "a||b"}}), "states[0].key"},
	}
	for _, c := range cases {
		if !errors.Is(c.err, errkind.ErrInvalidArgument) {
			t.Errorf("%s: got %v, want ErrInvalidArgument", c.name, c.err)
			continue
		}
		if !contains(c.err.Error(), c.field) {
			t.Errorf("%s: error %q does not name field %q", c.name, c.err, c.field)
		}
	}
}

func contains(s, sub string) bool { return len(sub) == 0 || (len(s) >= len(sub) && index(s, sub) >= 0) }

func index(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestKeyPrefixIsolatesApps(t *testing.T) {
	ctx := context.Background()
	impl := smemory.NewInMemoryStateStore(logger.NewLogger("test"))
	if err := impl.Init(ctx, cstate.Metadata{Base: metadata.Base{Name: "shared"}}); err != nil {
		t.Fatal(err)
	}
	a := New("shared", "state.in-memory", "a", "", impl)
	b := New("shared", "state.in-memory", "b", "", impl)
	none := New("shared", "state.in-memory", "c", "none", impl)
	if err := a.Set(ctx, []SetItem{{Key: "k", Value: []byte("from a")}}); err != nil {
		t.Fatal(err)
	}
	if it, _ := b.Get(ctx, "k", "", nil); it.Found {
		t.Fatal("app b sees app a's key: keys must be prefixed with the app id by default")
	}
	if it, _ := none.Get(ctx, "a||k", "", nil); it.Found {
		t.Fatal("separator keys must be refused")
	}
	raw, _ := impl.Get(ctx, &cstate.GetRequest{Key: "a||k"})
	if raw == nil || string(raw.Data) != "from a" {
		t.Fatalf("stored key is not a||k: %+v", raw)
	}
}

func TestBulkAndTransaction(t *testing.T) {
	ctx := context.Background()
	s := newMemStore(t, "app", "")
	if err := s.Set(ctx, []SetItem{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}}); err != nil {
		t.Fatal(err)
	}
	items, err := s.BulkGet(ctx, []string{"a", "b", "c"}, 0, nil)
	if err != nil || len(items) != 3 {
		t.Fatalf("bulk get: %v %v", items, err)
	}
	got := map[string]Item{}
	for _, it := range items {
		got[it.Key] = it
	}
	if string(got["a"].Value) != "1" || string(got["b"].Value) != "2" || got["c"].Found {
		t.Fatalf("bulk get values: %+v", got)
	}
	err = s.Transaction(ctx, []TxOp{
		{Set: &SetItem{Key: "c", Value: []byte("3")}},
		{Delete: &DeleteItem{Key: "a"}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if it, _ := s.Get(ctx, "a", "", nil); it.Found {
		t.Fatal("transaction delete did not apply")
	}
	if it, _ := s.Get(ctx, "c", "", nil); string(it.Value) != "3" {
		t.Fatal("transaction upsert did not apply")
	}
	if err := s.Delete(ctx, []DeleteItem{{Key: "b"}, {Key: "c"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Transaction(ctx, []TxOp{{}}, nil); !errors.Is(err, errkind.ErrInvalidArgument) {
		t.Fatalf("empty op: %v", err)
	}
}

// GetAsync on a store whose component cannot read asynchronously (the
// in-memory one) says so through CanGetAsync and answers with an error, as
// it does for a missing key name; neither leaves done uncalled.
func TestGetAsyncWithoutAnAsyncComponent(t *testing.T) {
	s := newMemStore(t, "app", "")
	if s.CanGetAsync() {
		t.Fatal("the in-memory store claims to read asynchronously")
	}
	for _, key := range []string{"k", ""} {
		var got error
		called := 0
		s.GetAsync(key, "", nil, func(_ Item, err error) { called++; got = err })
		if called != 1 || got == nil {
			t.Errorf("GetAsync(%q): done called %d times with %v, want once with an error", key, called, got)
		}
		if key == "" && !errors.Is(got, errkind.ErrInvalidArgument) {
			t.Errorf("GetAsync(\"\"): %v, want invalid argument", got)
		}
	}
}
