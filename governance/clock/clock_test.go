package clock

import (
	"testing"
	"time"
)

func TestFakeFiresTimersInOrderWhenDue(t *testing.T) {
	f := NewFake()
	late, early := f.NewTimer(2*time.Second), f.NewTimer(time.Second)
	stopped := f.NewTimer(time.Second)
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop must report true once, then false")
	}
	f.Advance(999 * time.Millisecond)
	select {
	case <-early.C():
		t.Fatal("fired early")
	default:
	}
	f.Advance(5 * time.Second)
	a, b := <-early.C(), <-late.C()
	if a.UnixNano() != int64(time.Second) || b.UnixNano() != int64(2*time.Second) {
		t.Fatalf("fired at %v and %v, want their deadlines", a.UnixNano(), b.UnixNano())
	}
	select {
	case <-stopped.C():
		t.Fatal("stopped timer fired")
	default:
	}
	if f.Now() != int64(5999*time.Millisecond) || f.Timers() != 0 {
		t.Fatalf("now %d timers %d", f.Now(), f.Timers())
	}
	if immediate := f.NewTimer(0); len(immediate.C()) != 1 {
		t.Fatal("zero-duration timer did not fire at once")
	}
}

func TestRealIsMonotonic(t *testing.T) {
	var r Real
	a := r.Now()
	tm := r.NewTimer(time.Millisecond)
	<-tm.C()
	if b := r.Now(); b-a < int64(time.Millisecond) {
		t.Fatalf("1ms timer fired after %dns of clock", b-a)
	}
}
