package conformance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/outrig/outrig/internal/testenv"
	outrig "github.com/outrig/outrig/sdk-go"
)

// The Kafka of the fault test is a second KRaft node of our own, started
// with scripts/backends.sh on other ports and in another folder, so that
// killing it does not disturb the shared one on 9092.
const (
	kfPort     = "19092"
	kfCtlPort  = "19093"
	kfAddr     = "127.0.0.1:" + kfPort
	kfDeadline = 2 * time.Second // per publish call
)

// kfDir holds the fault test's Kafka (data, log, pid file). One fixed folder,
// so that a run that was killed leaves nothing the next one cannot stop.
func kfDir() string { return filepath.Join(os.TempDir(), "outrig-kafka-faults") }

// kfBackends runs scripts/backends.sh with the fault test's Kafka settings.
func kfBackends(args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(testenv.RepoRoot(), "scripts", "backends.sh"), args...)
	cmd.Env = append(os.Environ(), "OUTRIG_BACKENDS_DIR="+kfDir(), "OUTRIG_KAFKA_PORT="+kfPort, "OUTRIG_KAFKA_CONTROLLER_PORT="+kfCtlPort)
	return cmd.CombinedOutput()
}

// kfStart starts (or restarts) the private Kafka and waits until it answers.
func kfStart(t *testing.T) {
	t.Helper()
	start := time.Now()
	if out, err := kfBackends("up", "kafka"); err != nil {
		t.Fatalf("start the fault test's Kafka on %s: %v\n%s", kfAddr, err, out)
	}
	t.Logf("private Kafka on %s up in %v", kfAddr, time.Since(start).Round(time.Millisecond))
}

// kfSignal sends sig to the private Kafka (SIGKILL waits for the exit).
func kfSignal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(kfDir(), "kafka.pid"))
	if err != nil {
		t.Fatalf("pid of the fault test's Kafka: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("signal %v to Kafka (pid %d): %v", sig, pid, err)
	}
	for sig == syscall.SIGKILL && syscall.Kill(pid, 0) == nil {
		time.Sleep(20 * time.Millisecond)
	}
}

// kfCall is one publish as the publisher saw it.
type kfCall struct {
	data  string
	start time.Time
	took  time.Duration
	err   error
}

// kfCalls records every publish.
type kfCalls struct {
	mu     sync.Mutex
	calls  []kfCall
	lastOK atomic.Int64 // unix nanos of the end of the last success
}

func (c *kfCalls) record(call kfCall) {
	c.mu.Lock()
	c.calls = append(c.calls, call)
	c.mu.Unlock()
	if call.err == nil {
		c.lastOK.Store(call.start.Add(call.took).UnixNano())
	}
}

// between returns the calls started in [from, to).
func (c *kfCalls) between(from, to time.Time) []kfCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []kfCall
	for _, x := range c.calls {
		if !x.start.Before(from) && x.start.Before(to) {
			out = append(out, x)
		}
	}
	return out
}

// succeededSince waits until a publish that started after since succeeded,
// and returns when it ended.
func (c *kfCalls) succeededSince(t *testing.T, what string, since time.Time, d time.Duration) time.Time {
	t.Helper()
	var at time.Time
	testenv.Eventually(t, what, d, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, x := range c.calls {
			if x.err == nil && x.start.After(since) {
				at = x.start.Add(x.took)
				return nil
			}
		}
		return errors.New("no success yet")
	})
	return at
}

// kfSummary checks the calls of one phase: every failure is UNAVAILABLE and
// every call ended within its deadline (plus scheduling slack); it returns a
// line for the log.
func kfSummary(t *testing.T, phase string, calls []kfCall, wantFailures bool) string {
	t.Helper()
	ok, unavailable := 0, 0
	var slowest time.Duration
	for _, x := range calls {
		slowest = max(slowest, x.took)
		switch {
		case x.err == nil:
			ok++
		case errors.Is(x.err, outrig.ErrUnavailable):
			unavailable++
		default:
			t.Errorf("%s: publish %s (started %s, took %v) failed with %v, want UNAVAILABLE", phase, x.data, x.start.Format("15:04:05.000"), x.took.Round(time.Millisecond), x.err)
		}
		if x.took > kfDeadline+300*time.Millisecond {
			t.Errorf("%s: publish %s took %v, beyond its %v deadline", phase, x.data, x.took, kfDeadline)
		}
	}
	if wantFailures && unavailable == 0 {
		t.Errorf("%s: no publish failed", phase)
	}
	return fmt.Sprintf("%s: %d calls, %d ok, %d UNAVAILABLE, slowest %v", phase, len(calls), ok, unavailable, slowest.Round(time.Millisecond))
}

// TestPubSubFaults stops the backend of a pub/sub component while events
// are published: calls fail within their deadline with UNAVAILABLE, the
// sidecar stays healthy and recovers on its own once the backend is back,
// and every publish that returned success is delivered.
func TestPubSubFaults(t *testing.T) {
	t.Run("kafka", testKafkaFaults)
}

func testKafkaFaults(t *testing.T) {
	if out, err := kfBackends("down", "kafka"); err != nil { // leftovers of a killed run
		t.Fatalf("stop a leftover fault-test Kafka: %v\n%s", err, out)
	}
	kfStart(t)
	t.Cleanup(func() {
		if out, err := kfBackends("down", "kafka"); err != nil {
			t.Errorf("stop the fault test's Kafka: %v\n%s", err, out)
		}
	})

	yaml := psComponentYAML(t, "pubsub-kafka.yaml", map[string]string{"brokers": kfAddr})
	e := startPSEnv(t, "kafka-pubsub", map[string]string{"pubsub-kafka.yaml": yaml})
	sc, c := e.sidecar(t, "conf-fk-"+e.run)
	topic := e.topic("faults")
	r := newPSRecorder(nil)
	e.subscribe(t, c, topic, r)
	e.awaitReady(t, c, topic, r)

	calls := &kfCalls{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var seq atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				d := fmt.Sprintf("fault/k%d/%d", w, seq.Add(1))
				ctx, cancel := context.WithTimeout(context.Background(), kfDeadline)
				begin := time.Now()
				err := c.Publish(ctx, e.name, topic, []byte(d), outrig.WithContentType("text/plain"), outrig.WithPartitionKey(psKey(d)))
				cancel()
				calls.record(kfCall{data: d, start: begin, took: time.Since(begin), err: err})
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	unhealthy := make(chan string, 1)
	go func() { // the sidecar's /healthz answers 200 throughout
		defer close(unhealthy)
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := http.Get("http://" + sc.Admin + "/healthz")
			if err != nil || resp.StatusCode != http.StatusOK {
				unhealthy <- fmt.Sprintf("/healthz: %v %v", err, resp)
				return
			}
			resp.Body.Close()
			time.Sleep(200 * time.Millisecond)
		}
	}()
	var report []string

	// 1. Killed: publishes fail fast with UNAVAILABLE.
	time.Sleep(3 * time.Second)
	killedAt := time.Now()
	kfSignal(t, syscall.SIGKILL)
	t.Logf("Kafka killed at %s", killedAt.Format("15:04:05.000"))
	time.Sleep(10 * time.Second)
	restartAt := time.Now()
	report = append(report, kfSummary(t, "killed 10s", calls.between(killedAt, restartAt), true))

	// 2. Restarted: the sidecar recovers by itself.
	restarted := make(chan error, 1)
	go func() { // the script returns once Kafka answers its own health check
		out, err := kfBackends("up", "kafka")
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, out)
		}
		restarted <- err
	}()
	listening := make(chan time.Time, 1)
	go func() { // when the restarted broker accepts connections
		defer close(listening)
		for time.Since(restartAt) < 3*time.Minute {
			if conn, err := net.DialTimeout("tcp", kfAddr, 100*time.Millisecond); err == nil {
				conn.Close()
				listening <- time.Now()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	okAgain := calls.succeededSince(t, "publishes succeed again after Kafka restarted", restartAt, 120*time.Second)
	backAt := <-listening
	report = append(report, fmt.Sprintf("restart: Kafka listening %v after it was started, publishes succeed %v after that",
		backAt.Sub(restartAt).Round(time.Millisecond), okAgain.Sub(backAt).Round(time.Millisecond)))
	if err := <-restarted; err != nil {
		t.Fatalf("restart the fault test's Kafka: %v", err)
	}
	report = append(report, kfSummary(t, "restarting", calls.between(restartAt, okAgain), false))

	// 3. Frozen (SIGSTOP: connections open, nothing answers): calls end
	// within their deadline, with UNAVAILABLE; after SIGCONT they succeed.
	time.Sleep(2 * time.Second)
	frozenAt := time.Now()
	kfSignal(t, syscall.SIGSTOP)
	time.Sleep(4 * time.Second)
	thawAt := time.Now()
	kfSignal(t, syscall.SIGCONT)
	report = append(report, kfSummary(t, "frozen 4s", calls.between(frozenAt, thawAt), true))
	thawOK := calls.succeededSince(t, "publishes succeed again after Kafka thawed", thawAt, 60*time.Second)
	report = append(report, fmt.Sprintf("thaw: publishes succeed %v after SIGCONT", thawOK.Sub(thawAt).Round(time.Millisecond)))

	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	if msg, bad := <-unhealthy; bad {
		t.Errorf("sidecar unhealthy during the faults: %s", msg)
	}
	all := calls.between(time.Time{}, time.Now())
	report = append(report, kfSummary(t, "whole run", all, true))
	for _, line := range report {
		t.Log(line)
	}

	// No acknowledged publish is lost.
	var acked []string
	for _, x := range all {
		if x.err == nil {
			acked = append(acked, x.data)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for r.got(acked) < len(acked) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	counts, _, _, _ := r.snapshot()
	var lost []string
	for _, d := range acked {
		if counts[d] == 0 {
			lost = append(lost, d)
		}
	}
	sort.Strings(lost)
	t.Logf("%d publishes acknowledged, %d delivered, %d lost, %d duplicates", len(acked), len(acked)-len(lost), len(lost), r.duplicates())
	if len(lost) > 0 {
		t.Errorf("%d acknowledged publishes were never delivered, e.g. %v", len(lost), lost[:min(5, len(lost))])
	}
}
