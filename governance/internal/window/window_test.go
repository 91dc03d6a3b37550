package window

import (
	"testing"
	"time"
)

const s = int64(time.Second)

func TestWindowSlides(t *testing.T) {
	w, err := New(10*time.Second, 10)
	if err != nil {
		t.Fatal(err)
	}
	w.Add4(0, 1, 2, 0, 0)
	w.Add(5*s, 0, 10)
	if got := w.Sum(9 * s); got[0] != 11 || got[1] != 2 {
		t.Fatalf("sum at 9s %v, want [11 2 ...]", got)
	}
	if got := w.Sum(10 * s); got[0] != 10 {
		t.Fatalf("sum at 10s %v: the bucket of 0s should have left", got)
	}
	// Writing into a reused bucket resets it.
	w.Add(20*s, 0, 1)
	if got := w.Sum(20 * s); got[0] != 1 {
		t.Fatalf("sum at 20s %v, want only the new event", got)
	}
	var seen []int64
	w.Each(25*s, true, func(v [Fields]int64) { seen = append(seen, v[0]) })
	if len(seen) != 1 || seen[0] != 1 {
		t.Fatalf("complete buckets at 25s: %v, want [1]", seen)
	}
	w.Reset()
	if got := w.Sum(20 * s); got[0] != 0 {
		t.Fatalf("sum after reset %v", got)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(time.Second, 0); err == nil {
		t.Error("0 buckets accepted")
	}
	if _, err := New(5, 10); err == nil {
		t.Error("bucket shorter than 1ns accepted")
	}
}
