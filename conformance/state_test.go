package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/status"

	outrig "github.com/outrig/outrig/sdk-go"
)

// TestState runs the state conformance suite against every state component
// of examples/components, through the Go SDK and a sidecar process to the
// real server. `go test ./conformance -run 'TestState/mysql'` runs one.
func TestState(t *testing.T) {
	for _, tg := range stateTargets() {
		t.Run(tg.name, func(t *testing.T) {
			requireBackend(t, tg.backend, tg.addr)
			if tg.prepare != nil {
				tg.prepare(t)
			}
			_, c, caps := startStateSidecar(t, tg.store, exampleYAML(t, tg.file))
			s := &stateSuite{c: c, store: tg.store, caps: caps, maxValue: tg.maxValue}
			t.Logf("%s capabilities: %v", tg.store, caps)
			if !hasCap(caps, "ETAG") {
				t.Errorf("%s does not declare ETAG; every store under test should", tg.store)
			}
			for _, b := range stateBehaviours() {
				t.Run(b.name, func(t *testing.T) {
					t.Parallel()
					b.run(t, s)
				})
			}
		})
	}
}

type stateSuite struct {
	c        *outrig.Client
	store    string
	caps     []string
	maxValue int
}

type stateBehaviour struct {
	name string
	run  func(t *testing.T, s *stateSuite)
}

func stateBehaviours() []stateBehaviour {
	return []stateBehaviour{
		{"get-set-delete", testGetSetDelete},
		{"missing-key", testMissingKey},
		{"bulk", testBulk},
		{"etag-first-write", testETagFirstWrite},
		{"etag-last-write", testETagLastWrite},
		{"transaction", testTransaction},
		{"ttl", testTTL},
		{"empty-value", testEmptyValue},
		{"1MiB-value", testLargeValue},
		{"binary-value", testBinaryValue},
		{"unicode-keys", testUnicodeKeys},
		{"concurrent-etag-writers", testConcurrentETag},
	}
}

// get reads key and fails the test on an error.
func (s *stateSuite) get(t *testing.T, key string) *outrig.StateItem {
	t.Helper()
	it, err := s.c.GetState(ctxT(t, 10*time.Second), s.store, key)
	if err != nil {
		t.Fatalf("GetState(%q): %v", key, err)
	}
	return it
}

func (s *stateSuite) save(t *testing.T, key string, v []byte, opts ...outrig.StateOption) {
	t.Helper()
	if err := s.c.SaveState(ctxT(t, 10*time.Second), s.store, key, v, opts...); err != nil {
		t.Fatalf("SaveState(%q, %d bytes): %v", key, len(v), err)
	}
}

// wantValue checks that key holds v.
func (s *stateSuite) wantValue(t *testing.T, key string, v []byte) *outrig.StateItem {
	t.Helper()
	it := s.get(t, key)
	if !it.Found {
		t.Fatalf("GetState(%q): Found=false, want %s", key, show(v))
	}
	if !bytes.Equal(it.Value, v) {
		t.Fatalf("GetState(%q) = %s, want %s", key, show(it.Value), show(v))
	}
	return it
}

func (s *stateSuite) wantMissing(t *testing.T, key string) {
	t.Helper()
	it := s.get(t, key)
	if it.Found || len(it.Value) != 0 || it.ETag != "" {
		t.Fatalf("GetState(%q) = found %v, %s, etag %q; want missing", key, it.Found, show(it.Value), it.ETag)
	}
}

// show prints a value briefly.
func show(v []byte) string {
	if len(v) > 40 {
		return fmt.Sprintf("%d bytes %q...", len(v), v[:40])
	}
	return fmt.Sprintf("%q", v)
}

// wantCode checks that err matches sentinel (and so carries its gRPC code).
func wantCode(t *testing.T, what string, err, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("%s: got %v (code %v), want %v", what, err, status.Code(err), sentinel)
	}
}

func testGetSetDelete(t *testing.T, s *stateSuite) {
	k := keyPrefix(t) + "order"
	s.save(t, k, []byte("v1"))
	it := s.wantValue(t, k, []byte("v1"))
	if it.ETag == "" {
		t.Fatalf("GetState(%q): no ETag from a store that declares ETAG", k)
	}
	s.save(t, k, []byte("v2"))
	it2 := s.wantValue(t, k, []byte("v2"))
	if it2.ETag == it.ETag {
		t.Fatalf("ETag %q did not change on overwrite", it.ETag)
	}
	if err := s.c.DeleteState(ctxT(t, 10*time.Second), s.store, k); err != nil {
		t.Fatal(err)
	}
	s.wantMissing(t, k)
	if err := s.c.DeleteState(ctxT(t, 10*time.Second), s.store, k); err != nil {
		t.Fatalf("deleting a missing key: %v, want success", err)
	}
	s.save(t, k, []byte("v3")) // a deleted key can be written again
	s.wantValue(t, k, []byte("v3"))
}

func testMissingKey(t *testing.T, s *stateSuite) {
	s.wantMissing(t, keyPrefix(t)+"never-written")
}

func testBulk(t *testing.T, s *stateSuite) {
	p := keyPrefix(t)
	ctx := ctxT(t, 20*time.Second)
	var items []outrig.SaveItem
	want := map[string]string{}
	for i := range 5 {
		k := fmt.Sprintf("%sk%d", p, i)
		want[k] = fmt.Sprintf("value %d", i)
		items = append(items, outrig.SaveItem{Key: k, Value: []byte(want[k])})
	}
	if err := s.c.SaveBulkState(ctx, s.store, items...); err != nil {
		t.Fatal(err)
	}
	keys := []string{p + "k0", p + "k1", p + "k2", p + "k3", p + "k4", p + "absent"}
	got, err := s.c.GetBulkState(ctx, s.store, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(keys) {
		t.Fatalf("GetBulkState: %d items for %d keys: %+v", len(got), len(keys), got)
	}
	seen := map[string]bool{}
	for _, it := range got {
		if it.Err != nil {
			t.Fatalf("GetBulkState %q: %v", it.Key, it.Err)
		}
		if seen[it.Key] {
			t.Fatalf("GetBulkState returned %q twice", it.Key)
		}
		seen[it.Key] = true
		w, ok := want[it.Key]
		switch {
		case it.Key == p+"absent":
			if it.Found || len(it.Value) != 0 {
				t.Fatalf("absent key: found %v value %s", it.Found, show(it.Value))
			}
		case !ok:
			t.Fatalf("GetBulkState returned unknown key %q", it.Key)
		case !it.Found || string(it.Value) != w || it.ETag == "":
			t.Fatalf("GetBulkState %q: found %v value %s etag %q, want %q with an ETag", it.Key, it.Found, show(it.Value), it.ETag, w)
		}
	}
	del := []outrig.DeleteItem{{Key: p + "k0"}, {Key: p + "k1"}, {Key: p + "k2"}, {Key: p + "absent"}}
	if err := s.c.DeleteBulkState(ctx, s.store, del...); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k0", "k1", "k2"} {
		s.wantMissing(t, p+k)
	}
	s.wantValue(t, p+"k3", []byte(want[p+"k3"]))
	s.wantValue(t, p+"k4", []byte(want[p+"k4"]))
}

func testETagFirstWrite(t *testing.T, s *stateSuite) {
	p := keyPrefix(t)
	k := p + "fw"
	ctx := ctxT(t, 20*time.Second)
	s.save(t, k, []byte("v1"))
	e1 := s.get(t, k).ETag
	s.save(t, k, []byte("v2"), outrig.WithETag(e1))
	e2 := s.wantValue(t, k, []byte("v2")).ETag
	if e2 == e1 {
		t.Fatalf("ETag unchanged (%q) after a conditional write", e1)
	}
	wantCode(t, "save with a stale ETag", s.c.SaveState(ctx, s.store, k, []byte("v3"), outrig.WithETag(e1)), outrig.ErrETagMismatch)
	wantCode(t, "save with a stale ETag, first-write explicit", s.c.SaveState(ctx, s.store, k, []byte("v3"),
		outrig.WithETag(e1), outrig.WithConcurrency(outrig.ConcurrencyFirstWrite)), outrig.ErrETagMismatch)
	s.wantValue(t, k, []byte("v2"))

	// An ETag that the store never issued never matches.
	err := s.c.SaveState(ctx, s.store, k, []byte("v4"), outrig.WithETag("99999"))
	wantCode(t, "save with a made-up ETag", err, outrig.ErrETagMismatch)
	err = s.c.SaveState(ctx, s.store, k, []byte("v4"), outrig.WithETag("not-an-etag"))
	if !errors.Is(err, outrig.ErrETagMismatch) && !errors.Is(err, outrig.ErrInvalidArgument) {
		t.Fatalf("save with a malformed ETag: %v, want ErrETagMismatch or ErrInvalidArgument", err)
	}
	s.wantValue(t, k, []byte("v2"))

	// A key that does not exist has no ETag to match.
	err = s.c.SaveState(ctx, s.store, p+"absent", []byte("x"), outrig.WithETag(e2))
	wantCode(t, "save of a missing key with an ETag", err, outrig.ErrETagMismatch)
	s.wantMissing(t, p+"absent")

	wantCode(t, "delete with a stale ETag", s.c.DeleteState(ctx, s.store, k, outrig.WithETag(e1)), outrig.ErrETagMismatch)
	s.wantValue(t, k, []byte("v2"))
	if err := s.c.DeleteState(ctx, s.store, k, outrig.WithETag(e2)); err != nil {
		t.Fatalf("delete with the current ETag: %v", err)
	}
	s.wantMissing(t, k)
}

func testETagLastWrite(t *testing.T, s *stateSuite) {
	k := keyPrefix(t) + "lw"
	ctx := ctxT(t, 20*time.Second)
	s.save(t, k, []byte("v1"))
	e1 := s.get(t, k).ETag
	s.save(t, k, []byte("v2"), outrig.WithETag(e1)) // a first-write write...
	// ...does not turn the key into a first-write-only key:
	s.save(t, k, []byte("v3"), outrig.WithETag(e1), outrig.WithConcurrency(outrig.ConcurrencyLastWrite))
	s.wantValue(t, k, []byte("v3"))
	s.save(t, k, []byte("v4"), outrig.WithConcurrency(outrig.ConcurrencyLastWrite))
	s.wantValue(t, k, []byte("v4"))
	s.save(t, k, []byte("v5")) // no ETag, no mode: last write wins
	s.wantValue(t, k, []byte("v5"))
	if err := s.c.DeleteState(ctx, s.store, k, outrig.WithETag(e1), outrig.WithConcurrency(outrig.ConcurrencyLastWrite)); err != nil {
		t.Fatalf("last-write delete with a stale ETag: %v", err)
	}
	s.wantMissing(t, k)
}

func testTransaction(t *testing.T, s *stateSuite) {
	p := keyPrefix(t)
	ctx := ctxT(t, 20*time.Second)
	if !hasCap(s.caps, "TRANSACTIONAL") {
		err := s.c.ExecuteStateTransaction(ctx, s.store, outrig.Upsert(p+"a", []byte("1")))
		wantCode(t, "transaction on a store without TRANSACTIONAL", err, outrig.ErrUnsupported)
		s.wantMissing(t, p+"a")
		return
	}
	s.save(t, p+"c", []byte("to delete"))
	err := s.c.ExecuteStateTransaction(ctx, s.store,
		outrig.Upsert(p+"a", []byte("1")), outrig.Upsert(p+"b", []byte("2")), outrig.Delete(p+"c"))
	if err != nil {
		t.Fatal(err)
	}
	s.wantValue(t, p+"a", []byte("1"))
	eb := s.wantValue(t, p+"b", []byte("2")).ETag
	s.wantMissing(t, p+"c")

	// A stale ETag in one operation fails the whole transaction: nothing applies.
	s.save(t, p+"b", []byte("2b"))
	err = s.c.ExecuteStateTransaction(ctx, s.store,
		outrig.Upsert(p+"a", []byte("changed")), outrig.Upsert(p+"b", []byte("3"), outrig.WithETag(eb)), outrig.Delete(p+"d"))
	wantCode(t, "transaction with a stale ETag", err, outrig.ErrETagMismatch)
	s.wantValue(t, p+"a", []byte("1"))
	s.wantValue(t, p+"b", []byte("2b"))
}

func testTTL(t *testing.T, s *stateSuite) {
	k := keyPrefix(t) + "ttl"
	ctx := ctxT(t, 20*time.Second)
	if !hasCap(s.caps, "TTL") {
		err := s.c.SaveState(ctx, s.store, k, []byte("x"), outrig.WithTTL(time.Second))
		wantCode(t, "TTL on a store without TTL", err, outrig.ErrUnsupported)
		s.wantMissing(t, k)
		return
	}
	// A 2 s TTL; stores that keep expiry in whole seconds (MySQL's
	// TIMESTAMP) may end it up to 1 s early.
	const ttl = 2 * time.Second
	s.save(t, k+"-keep", []byte("stays"))
	start := time.Now()
	s.save(t, k, []byte("expires"), outrig.WithTTL(ttl))
	s.wantValue(t, k, []byte("expires"))
	for {
		it := s.get(t, k)
		if !it.Found {
			break
		}
		if time.Since(start) > ttl+3*time.Second {
			t.Fatalf("key with a %v TTL still found after %v", ttl, time.Since(start))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := time.Since(start); d < ttl-time.Second {
		t.Fatalf("key with a %v TTL gone after %v", ttl, d)
	}
	s.wantValue(t, k+"-keep", []byte("stays"))
}

func testEmptyValue(t *testing.T, s *stateSuite) {
	k := keyPrefix(t) + "empty"
	s.save(t, k, []byte{})
	it := s.get(t, k)
	if !it.Found || len(it.Value) != 0 {
		t.Fatalf("0-byte value: found %v value %s, want found and empty", it.Found, show(it.Value))
	}
}

func testLargeValue(t *testing.T, s *stateSuite) {
	k := keyPrefix(t) + "big"
	v := make([]byte, 1<<20)
	for i := range v {
		v[i] = byte(i*7 + i>>8)
	}
	t.Cleanup(func() { // do not leave a megabyte per run on the shared server
		_ = s.c.DeleteState(context.Background(), s.store, k)
	})
	if s.maxValue > 0 {
		// The store cannot hold 1 MiB: it must say so, not break.
		err := s.c.SaveState(ctxT(t, 10*time.Second), s.store, k, v)
		wantCode(t, "1 MiB value on a store limited to "+fmt.Sprint(s.maxValue)+" bytes", err, outrig.ErrInvalidArgument)
		s.wantMissing(t, k)
		v = v[:s.maxValue]
	}
	s.save(t, k, v)
	s.wantValue(t, k, v)
}

func testBinaryValue(t *testing.T, s *stateSuite) {
	k := keyPrefix(t) + "bin"
	v := make([]byte, 0, 512)
	for i := range 256 {
		v = append(v, byte(i))
	}
	for i := 255; i >= 0; i-- { // and every byte after every other, roughly
		v = append(v, byte(i))
	}
	s.save(t, k, v)
	s.wantValue(t, k, v)
}

func testUnicodeKeys(t *testing.T, s *stateSuite) {
	p := keyPrefix(t)
	names := []string{"ключ", "键", "clé", "cle", "Key", "key", "key ", "مفتاح", "e\u0301", "\u00e9", "κλειδί-😀", "tab\tkey"}
	ctx := ctxT(t, 20*time.Second)
	var keys []string
	for i, n := range names {
		k := p + n
		keys = append(keys, k)
		s.save(t, k, []byte(fmt.Sprintf("%d:%s", i, n)))
	}
	for i, k := range keys {
		s.wantValue(t, k, []byte(fmt.Sprintf("%d:%s", i, names[i])))
	}
	got, err := s.c.GetBulkState(ctx, s.store, keys)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]outrig.BulkStateItem{}
	for _, it := range got {
		byKey[it.Key] = it
	}
	for i, k := range keys {
		it, ok := byKey[k]
		if !ok || it.Err != nil || string(it.Value) != fmt.Sprintf("%d:%s", i, names[i]) {
			t.Fatalf("GetBulkState %q: %+v (present %v)", k, it, ok)
		}
	}
}

// testConcurrentETag: 100 writers race with the same ETag on one key; in
// each round exactly one wins and the others get ErrETagMismatch.
func testConcurrentETag(t *testing.T, s *stateSuite) {
	const writers, rounds = 100, 5
	k := keyPrefix(t) + "race"
	s.save(t, k, []byte("start"))
	for r := range rounds {
		etag := s.get(t, k).ETag
		type result struct {
			i   int
			err error
		}
		results := make(chan result, writers)
		start := make(chan struct{})
		for i := range writers {
			go func() {
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				results <- result{i, s.c.SaveState(ctx, s.store, k, []byte(fmt.Sprintf("round %d writer %d", r, i)), outrig.WithETag(etag))}
			}()
		}
		close(start)
		winner, wins, others := -1, 0, 0
		for range writers {
			res := <-results
			switch {
			case res.err == nil:
				wins++
				winner = res.i
			case errors.Is(res.err, outrig.ErrETagMismatch):
			default:
				if others++; others <= 3 {
					t.Errorf("round %d writer %d: %v, want success or ErrETagMismatch", r, res.i, res.err)
				}
			}
		}
		if others > 0 {
			t.Fatalf("round %d: %d writers failed with something else than ErrETagMismatch", r, others)
		}
		if wins != 1 {
			t.Fatalf("round %d: %d writers won, want exactly 1", r, wins)
		}
		s.wantValue(t, k, []byte(fmt.Sprintf("round %d writer %d", r, winner)))
	}
}
