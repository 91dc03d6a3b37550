package redis

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	cstate "github.com/dapr/components-contrib/state"
	"go.uber.org/goleak"
)

type asyncResult struct {
	resp *cstate.GetResponse
	err  error
}

// getAsync starts GetAsync and returns where its answer will arrive.
func getAsync(s *Store, key string) <-chan asyncResult {
	ch := make(chan asyncResult, 1)
	s.GetAsync(&cstate.GetRequest{Key: key}, func(r *cstate.GetResponse, err error) { ch <- asyncResult{r, err} })
	return ch
}

// Many reads started without waiting go out pipelined and each gets its
// own key's value and ETag — as Get answers them; a missing key is an empty
// answer and a plain string (not written by a state store) its value
// without an ETag.
func TestGetAsyncAnswersEachRead(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // after the store's Cleanup
	s, p := newStore(t)
	ctx := context.Background()
	const n = 200
	for i := range n {
		if err := s.Set(ctx, &cstate.SetRequest{Key: fmt.Sprintf("%sk%d", p, i), Value: []byte(fmt.Sprintf("v%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.client.Set(ctx, p+"plain", "raw", 0).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := range n {
			s.client.Del(ctx, fmt.Sprintf("%sk%d", p, i))
		}
		s.client.Del(ctx, p+"plain")
	})
	answers := make([]<-chan asyncResult, n)
	for i := range n {
		answers[i] = getAsync(s, fmt.Sprintf("%sk%d", p, i))
	}
	for i, ch := range answers {
		r := <-ch
		want, err := s.Get(ctx, &cstate.GetRequest{Key: fmt.Sprintf("%sk%d", p, i)})
		if r.err != nil || err != nil || string(r.resp.Data) != fmt.Sprintf("v%d", i) || r.resp.ETag == nil || *r.resp.ETag != *want.ETag {
			t.Fatalf("key %d: %+v, %v; Get says %+v, %v", i, r.resp, r.err, want, err)
		}
	}
	if b := batches(s); b == 0 {
		t.Error("no pipeline of more than one command: the reads were not batched")
	}
	if r := <-getAsync(s, p+"missing"); r.err != nil || r.resp.Data != nil || r.resp.ETag != nil {
		t.Errorf("missing key: %+v, %v; want an empty answer", r.resp, r.err)
	}
	if r := <-getAsync(s, p+"plain"); r.err != nil || string(r.resp.Data) != "raw" || r.resp.ETag != nil {
		t.Errorf("plain string: %+v, %v; want its value without an ETag", r.resp, r.err)
	}
}

// A read started on a closed store, or queued when it closes, is answered
// with an error, never left waiting.
func TestGetAsyncOnClosedStoreFails(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // after the store's Cleanup
	s, p := newStore(t)
	s.Close()
	select {
	case r := <-getAsync(s, p+"k"):
		if !errors.Is(r.err, errBatcherClosed) {
			t.Fatalf("read on a closed store: %v, want %v", r.err, errBatcherClosed)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read on a closed store not answered")
	}
}

// batches reads the batcher's count of multi-command pipelines.
func batches(s *Store) int {
	s.batch.mu.Lock()
	defer s.batch.mu.Unlock()
	return s.batch.batches
}
