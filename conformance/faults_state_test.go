package conformance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outrig/outrig/internal/testenv"
	outrig "github.com/outrig/outrig/sdk-go"
)

// Fault behaviour a caller relies on, per call deadline of faultDeadline:
//   - while the server is gone (killed: connections refused), every call
//     returns before its deadline with UNAVAILABLE (the sidecar answers; the
//     SDK's own deadline never fires);
//   - while the server hangs (SIGSTOP: connections open, no answers, as in a
//     network partition), every call returns at its deadline with
//     DEADLINE_EXCEEDED: the sidecar cannot tell a dead server from a slow
//     one before the deadline, and the deadline is the caller's own;
//   - the sidecar stays up (/healthz 200) and never hangs a call;
//   - after the server is back, calls succeed again within faultRecovery,
//     without touching the sidecar.
const (
	faultDeadline = time.Second
	faultRecovery = 10 * time.Second
	faultWorkers  = 4
)

// TestStateFaults kills a server of the test's own (never a shared backend)
// while calls run through the sidecar, then restarts it.
func TestStateFaults(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		srv := ownRedis(t)
		yaml := exampleYAML(t, "state-redis.yaml", "127.0.0.1:6379", srv.addr)
		stateFault(t, srv, "state-redis", yaml)
	})
	t.Run("mysql", func(t *testing.T) {
		t.Parallel()
		srv := ownMariaDB(t)
		mysqlBinarySchema(t, srv.addr, "outrig_state")
		yaml := exampleYAML(t, "state-mysql.yaml", "127.0.0.1:3306", srv.addr)
		stateFault(t, srv, "state-mysql", yaml)
	})
}

// callResult is one call made during a fault test.
type callResult struct {
	start time.Time
	dur   time.Duration
	code  codes.Code
	err   error
}

// faultCall makes call i: a save, a read or a delete, by turns.
func faultCall(c *outrig.Client, store, key string, i int) callResult {
	ctx, cancel := context.WithTimeout(context.Background(), faultDeadline)
	defer cancel()
	r := callResult{start: time.Now()}
	switch i % 3 {
	case 0:
		r.err = c.SaveState(ctx, store, key, []byte(fmt.Sprint("value ", i)))
	case 1:
		_, r.err = c.GetState(ctx, store, key)
	default:
		r.err = c.DeleteState(ctx, store, key)
	}
	r.dur = time.Since(r.start)
	r.code = status.Code(r.err)
	return r
}

// runCalls makes calls from faultWorkers goroutines until stop is closed.
func runCalls(c *outrig.Client, store, prefix string, stop <-chan struct{}) []callResult {
	var (
		mu  sync.Mutex
		all []callResult
		wg  sync.WaitGroup
	)
	for w := range faultWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("%sw%d", prefix, w)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r := faultCall(c, store, key, i)
				mu.Lock()
				all = append(all, r)
				mu.Unlock()
				if r.err != nil {
					time.Sleep(20 * time.Millisecond) // no hot loop against a dead server
				}
			}
		}()
	}
	wg.Wait()
	return all
}

func stateFault(t *testing.T, srv *ownServer, store, yaml string) {
	sc, c, _ := startStateSidecar(t, store, yaml)
	prefix := keyPrefix(t)

	// Calls run; one second in, the server dies; three seconds later the
	// calls stop.
	stop := make(chan struct{})
	resc := make(chan []callResult, 1)
	go func() { resc <- runCalls(c, store, prefix, stop) }()
	time.Sleep(time.Second)
	killedAt := time.Now()
	srv.kill(t)
	deadAt := time.Now()
	time.Sleep(3 * time.Second)
	healthy(t, sc)
	close(stop)
	results := <-resc

	var before, during, unavailable int
	var slowest time.Duration
	for _, r := range results {
		if r.dur >= faultDeadline || r.code == codes.DeadlineExceeded {
			t.Errorf("a call took %v (deadline %v) and ended with %v: %v", r.dur, faultDeadline, r.code, r.err)
		}
		switch {
		case r.start.Add(r.dur).Before(killedAt):
			before++
			if r.err != nil {
				t.Errorf("call before the kill failed: %v", r.err)
			}
		case r.start.After(deadAt):
			during++
			slowest = max(slowest, r.dur)
			if r.code == codes.Unavailable && errors.Is(r.err, outrig.ErrUnavailable) {
				unavailable++
			} else {
				t.Errorf("call with the server down: %v (code %v), want UNAVAILABLE", r.err, r.code)
			}
		default: // in flight at the kill: success or UNAVAILABLE
			if r.err != nil && r.code != codes.Unavailable {
				t.Errorf("call in flight at the kill: %v (code %v), want success or UNAVAILABLE", r.err, r.code)
			}
		}
	}
	if before == 0 || during < 10 {
		t.Fatalf("too few calls to judge: %d before the kill, %d while down", before, during)
	}
	t.Logf("%s: %d calls before the kill, %d while down (%d UNAVAILABLE, slowest %v)", store, before, during, unavailable, slowest)

	// The server comes back: calls succeed again, same sidecar.
	srv.start(t)
	back := time.Now()
	testenv.Eventually(t, store+" recovers after the server restarts", faultRecovery, func() error {
		return faultCall(c, store, prefix+"probe", 0).err
	})
	recovered := time.Since(back)
	stop = make(chan struct{})
	go func() { resc <- runCalls(c, store, prefix, stop) }()
	time.Sleep(time.Second)
	close(stop)
	ok := 0
	for _, r := range <-resc {
		if r.err != nil {
			t.Errorf("call after recovery: %v", r.err)
		} else {
			ok++
		}
	}
	healthy(t, sc)
	t.Logf("%s: recovered %v after the server accepted connections again; %d calls OK after that", store, recovered.Round(time.Millisecond), ok)

	// The server hangs for two seconds.
	srv.freeze(t)
	frozenAt := time.Now()
	stop = make(chan struct{})
	go func() { resc <- runCalls(c, store, prefix, stop) }()
	time.Sleep(2 * time.Second)
	healthy(t, sc)
	close(stop)
	hung := <-resc
	srv.thaw(t)
	thawed := time.Now()
	codesSeen := map[codes.Code]int{}
	var longest time.Duration
	for _, r := range hung {
		codesSeen[r.code]++
		longest = max(longest, r.dur)
		if r.dur > faultDeadline+300*time.Millisecond {
			t.Errorf("call with the server hung took %v (deadline %v)", r.dur, faultDeadline)
		}
		if r.start.After(frozenAt.Add(100*time.Millisecond)) && r.code != codes.DeadlineExceeded && r.code != codes.Unavailable {
			t.Errorf("call with the server hung: %v (code %v), want DEADLINE_EXCEEDED or UNAVAILABLE", r.err, r.code)
		}
	}
	t.Logf("%s: server hung: %d calls, codes %v, longest %v", store, len(hung), codesSeen, longest.Round(time.Millisecond))
	testenv.Eventually(t, store+" recovers after the server resumes", faultRecovery, func() error {
		return faultCall(c, store, prefix+"probe", 0).err
	})
	t.Logf("%s: recovered %v after the server resumed", store, time.Since(thawed).Round(time.Millisecond))
	healthy(t, sc)
	if syscall.Kill(sc.Cmd.Process.Pid, 0) != nil {
		t.Fatal("sidecar process is gone")
	}
}

// healthy checks that the sidecar's /healthz answers 200.
func healthy(t *testing.T, sc *testenv.Sidecar) {
	t.Helper()
	resp, err := http.Get("http://" + sc.Admin + "/healthz")
	if err != nil {
		t.Fatalf("/healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %s", resp.Status)
	}
}
