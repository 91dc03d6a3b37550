package zkstore

import (
	"context"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// watchSet keeps at most one ZooKeeper watch armed per path and turns their
// one-shot events into wake-ups of one loop. A path whose watch has not
// fired is read without arming another (go-zookeeper would keep both), so
// watches never pile up.
//
// Used by one goroutine (the loop); the forwarding goroutines only touch
// the mutex-guarded fired set and the wake channel.
type watchSet struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{} // capacity 1

	mu    sync.Mutex
	armed map[string]bool // path → a watch is pending
	fired []string        // paths whose watch fired since the last take
}

func newWatchSet(ctx context.Context) *watchSet {
	ctx, cancel := context.WithCancel(ctx)
	return &watchSet{ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1), armed: map[string]bool{}}
}

// stop ends the forwarding goroutines (their ZooKeeper watches stay until
// they fire or the session ends).
func (w *watchSet) stop() {
	w.cancel()
	w.wg.Wait()
}

func (w *watchSet) isArmed(p string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.armed[p]
}

// forward waits for ch's one event in a goroutine.
func (w *watchSet) forward(p string, ch <-chan zk.Event) {
	w.mu.Lock()
	w.armed[p] = true
	w.mu.Unlock()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		select {
		case <-ch:
		case <-w.ctx.Done():
			return
		}
		w.mu.Lock()
		w.armed[p] = false
		w.fired = append(w.fired, p)
		w.mu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}()
}

// armData makes sure a data watch is pending on p (which must exist).
func (w *watchSet) armData(conn *zk.Conn, p string) error {
	if w.isArmed(p) {
		return nil
	}
	_, _, ch, err := conn.GetW(p)
	if err != nil {
		return err
	}
	w.forward(p, ch)
	return nil
}

// armChildren returns p's children and makes sure a child watch is
// pending on p.
func (w *watchSet) armChildren(conn *zk.Conn, p string) ([]string, error) {
	if w.isArmed(p) {
		children, _, err := conn.Children(p)
		return children, err
	}
	children, _, ch, err := conn.ChildrenW(p)
	if err != nil {
		return nil, err
	}
	w.forward(p, ch)
	return children, nil
}

// wait blocks until a watch fired (then waits a few milliseconds more, so
// that a burst of events is read once) and returns the paths that fired,
// or nil and false when the context ended.
func (w *watchSet) wait() bool {
	_, ok := w.take()
	return ok
}

func (w *watchSet) take() ([]string, bool) {
	select {
	case <-w.ctx.Done():
		return nil, false
	case <-w.wake:
	}
	select {
	case <-w.ctx.Done():
		return nil, false
	case <-time.After(10 * time.Millisecond):
	}
	select { // a wake-up for what is taken below
	case <-w.wake:
	default:
	}
	w.mu.Lock()
	fired := w.fired
	w.fired = nil
	w.mu.Unlock()
	return fired, true
}
