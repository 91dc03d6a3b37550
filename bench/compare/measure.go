package main

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// opKind is an operation of the API measured.
type opKind int

const (
	opGet opKind = iota
	opSave
	opPublish
	opInvoke
)

// operation is one row group of the report: a kind and a payload size.
type operation struct {
	key  string // flag and JSON name: get100, get4k, save100, save4k, publish, invoke
	name string // as printed
	kind opKind
	size int
	// mem: on the in-memory store, without Redis; direct has no such row.
	mem bool
}

// store is the state store the operation uses.
func (o operation) store() string {
	if o.mem {
		return memStoreName
	}
	return storeName
}

var operations = []operation{
	{"get100", "GetState 100 B", opGet, 100, false},
	{"getmem", "GetState 100 B in-memory", opGet, 100, true},
	{"get4k", "GetState 4 KiB", opGet, 4096, false},
	{"save100", "SaveState 100 B", opSave, 100, false},
	{"save4k", "SaveState 4 KiB", opSave, 4096, false},
	{"publish", "Publish 100 B", opPublish, 100, false},
	{"invoke", "Invoke echo 100 B", opInvoke, 100, false},
}

// payload is a JSON document of exactly n bytes (Publish's default content
// type is JSON for both sidecars; state values are opaque bytes).
func payload(n int) []byte {
	b := bytes.Repeat([]byte("x"), n)
	copy(b, `{"d":"`)
	copy(b[n-2:], `"}`)
	return b
}

// callFn makes one call of an operation.
type callFn func(ctx context.Context) error

// prepare returns the call of op for contender c, after the one-off setup it
// needs (the value read by GetState is written first) and a check that the
// call does what it should (the value read back, the echo equal to the
// request).
func prepare(ctx context.Context, c *contender, op operation) (callFn, error) {
	data := payload(op.size)
	key := fmt.Sprintf("compare:%s:%s", c.key, op.key)
	store := op.store()
	var fn callFn
	var check func(ctx context.Context) error
	switch op.kind {
	case opGet:
		if err := c.api.saveState(ctx, store, key, data); err != nil {
			return nil, fmt.Errorf("%s: write the value read by %s: %w", c.name, op.name, err)
		}
		fn = func(ctx context.Context) error { _, err := c.api.getState(ctx, store, key); return err }
		check = func(ctx context.Context) error {
			v, err := c.api.getState(ctx, store, key)
			if err == nil && !bytes.Equal(v, data) {
				err = fmt.Errorf("read %d bytes, want the %d written", len(v), len(data))
			}
			return err
		}
	case opSave:
		fn = func(ctx context.Context) error { return c.api.saveState(ctx, store, key, data) }
		check = func(ctx context.Context) error {
			if err := fn(ctx); err != nil {
				return err
			}
			v, err := c.api.getState(ctx, store, key)
			if err == nil && !bytes.Equal(v, data) {
				err = fmt.Errorf("read back %d bytes, want the %d saved", len(v), len(data))
			}
			return err
		}
	case opPublish:
		topic := "compare-" + c.key
		fn = func(ctx context.Context) error { return c.api.publish(ctx, topic, data) }
		check = fn
	case opInvoke:
		fn = func(ctx context.Context) error { _, err := c.api.invoke(ctx, data); return err }
		check = func(ctx context.Context) error {
			v, err := c.api.invoke(ctx, data)
			if err == nil && !bytes.Equal(v, data) {
				err = fmt.Errorf("echo of %d bytes came back as %d bytes", len(data), len(v))
			}
			return err
		}
	}
	// The first invocations may wait for the callee's registration to
	// reach the caller's sidecar: retry the check for a while.
	deadline := time.Now().Add(20 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := check(cctx)
		cancel()
		if err == nil {
			return fn, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s does not work: %w", c.name, op.name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// callTimeout bounds one call, so that a stuck contender fails the run
// instead of hanging it.
const callTimeout = 10 * time.Second

// seqResult is a sequential run: one caller, back to back.
type seqResult struct {
	hist    *hdrhistogram.Histogram // nanoseconds
	calls   int64
	errs    int64
	lastErr error
	elapsed time.Duration
	cpu     float64 // sidecar CPU seconds during the measured calls
}

// sequential makes warm calls unmeasured, then n calls recorded in an HDR
// histogram; CPU of pids is read around the n calls.
func sequential(ctx context.Context, fn callFn, warm, n int, pids []int) (seqResult, error) {
	r := seqResult{hist: hdrhistogram.New(1, int64(callTimeout), 3)}
	for range warm {
		if err := callOnce(ctx, fn); err != nil {
			r.errs++
			r.lastErr = err
		}
	}
	c0, err := sumCPU(pids)
	if err != nil {
		return r, err
	}
	start := time.Now()
	for range n {
		t := time.Now()
		err := callOnce(ctx, fn)
		d := time.Since(t)
		if err != nil {
			r.errs++
			r.lastErr = err
			if ctx.Err() != nil {
				return r, ctx.Err()
			}
			continue
		}
		r.calls++
		_ = r.hist.RecordValue(int64(d))
	}
	r.elapsed = time.Since(start)
	c1, err := sumCPU(pids)
	if err != nil {
		return r, err
	}
	r.cpu = c1 - c0
	return r, nil
}

func callOnce(ctx context.Context, fn callFn) error {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return fn(cctx)
}

// loadResult is a run of several concurrent callers for a fixed time.
type loadResult struct {
	callers int
	calls   int64 // successful calls in the measured window
	errs    int64
	lastErr error
	elapsed time.Duration
	cpu     float64 // sidecar CPU seconds in the window
	mem     memInfo // peak of the memory samples of memPid in the window
}

func (l loadResult) opsPerSec() float64 { return float64(l.calls) / l.elapsed.Seconds() }

// concurrent runs callers goroutines calling fn back to back: warm
// unmeasured, then d measured (calls counted, CPU of pids read at both
// ends, memory of memPid sampled every 100 ms).
func concurrent(ctx context.Context, fn callFn, callers int, warm, d time.Duration, pids []int, memPid int) (loadResult, error) {
	r := loadResult{callers: callers}
	var ok, bad atomic.Int64
	var errMu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := callOnce(ctx, fn); err != nil {
					bad.Add(1)
					errMu.Lock()
					r.lastErr = err
					errMu.Unlock()
					if ctx.Err() != nil {
						return
					}
					continue
				}
				ok.Add(1)
			}
		}()
	}
	finish := func() { close(stop); wg.Wait() }
	select {
	case <-time.After(warm):
	case <-ctx.Done():
		finish()
		return r, ctx.Err()
	}
	c0, err := sumCPU(pids)
	if err != nil {
		finish()
		return r, err
	}
	n0, e0, t0 := ok.Load(), bad.Load(), time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	end := time.After(d)
sample:
	for {
		if memPid > 0 {
			if m, err := readMem(memPid); err == nil {
				r.mem.rss = max(r.mem.rss, m.rss)
				r.mem.anon = max(r.mem.anon, m.anon)
			}
		}
		select {
		case <-tick.C:
		case <-end:
			break sample
		case <-ctx.Done():
			break sample
		}
	}
	tick.Stop()
	n1, e1, t1 := ok.Load(), bad.Load(), time.Now()
	c1, err := sumCPU(pids)
	finish()
	if err != nil {
		return r, err
	}
	r.calls, r.errs, r.elapsed, r.cpu = n1-n0, e1-e0, t1.Sub(t0), c1-c0
	return r, ctx.Err()
}
