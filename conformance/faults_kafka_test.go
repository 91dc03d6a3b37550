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

// kfKill kills the private Kafka at once (SIGKILL: a crash, no clean shutdown).
func kfKill(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(kfDir(), "kafka.pid"))
	if err != nil {
		t.Fatalf("pid of the fault test's Kafka: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill Kafka (pid %d): %v", pid, err)
	}
	for syscall.Kill(pid, 0) == nil {
		time.Sleep(20 * time.Millisecond)
	}
}

// kfOutcome is what the publishers saw.
type kfOutcome struct {
	mu        sync.Mutex
	acked     []string         // data of publishes that returned success
	failures  map[string]int   // error class → count
	slowest   time.Duration    // longest call, success or failure
	failTimes []time.Duration  // durations of failed calls
	lastOK    atomic.Int64     // unix nanos of the last success
	firstFail atomic.Int64     // unix nanos of the first failure after the kill
	examples  map[string]error // one error per class
}

func (o *kfOutcome) record(d string, took time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.slowest = max(o.slowest, took)
	if err == nil {
		o.acked = append(o.acked, d)
		o.lastOK.Store(time.Now().UnixNano())
		return
	}
	o.failTimes = append(o.failTimes, took)
	class := "other"
	switch {
	case errors.Is(err, outrig.ErrUnavailable):
		class = "UNAVAILABLE"
	case errors.Is(err, outrig.ErrDeadlineExceeded):
		class = "DEADLINE_EXCEEDED"
	}
	o.failures[class]++
	if o.examples[class] == nil {
		o.examples[class] = err
	}
	o.firstFail.CompareAndSwap(0, time.Now().UnixNano())
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

	out := &kfOutcome{failures: map[string]int{}, examples: map[string]error{}}
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
				out.record(d, time.Since(begin), err)
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	healthy := make(chan string, 1)
	go func() { // the sidecar's /healthz answers 200 throughout
		for {
			select {
			case <-stop:
				close(healthy)
				return
			default:
			}
			resp, err := http.Get("http://" + sc.Admin + "/healthz")
			if err != nil || resp.StatusCode != http.StatusOK {
				healthy <- fmt.Sprintf("/healthz: %v %v", err, resp)
				close(healthy)
				return
			}
			resp.Body.Close()
			time.Sleep(200 * time.Millisecond)
		}
	}()

	time.Sleep(3 * time.Second)
	killedAt := time.Now()
	kfKill(t)
	t.Logf("Kafka killed after %d acknowledged publishes", len(out.acked))
	time.Sleep(10 * time.Second) // calls keep failing meanwhile
	if out.firstFail.Load() == 0 {
		t.Errorf("no publish failed in the 10s after Kafka was killed")
	}
	restartAt := time.Now()
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
		for {
			if c, err := net.DialTimeout("tcp", kfAddr, 100*time.Millisecond); err == nil {
				c.Close()
				listening <- time.Now()
				return
			}
			if time.Since(restartAt) > 3*time.Minute {
				close(listening)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	// The sidecar recovers by itself: publishes succeed again.
	testenv.Eventually(t, "publishes succeed again after Kafka restarted", 120*time.Second, func() error {
		if time.Unix(0, out.lastOK.Load()).Before(restartAt) {
			return errors.New("no success since the restart")
		}
		return nil
	})
	recoveredAt := time.Now()
	backAt := <-listening
	if err := <-restarted; err != nil {
		t.Fatalf("restart the fault test's Kafka: %v", err)
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	if msg, bad := <-healthy; bad {
		t.Errorf("sidecar unhealthy during the outage: %s", msg)
	}

	out.mu.Lock()
	acked := append([]string(nil), out.acked...)
	sort.Slice(out.failTimes, func(i, j int) bool { return out.failTimes[i] < out.failTimes[j] })
	if n := len(out.failTimes); n > 0 {
		t.Logf("failed calls took: min %v, median %v, p99 %v, max %v", out.failTimes[0].Round(time.Millisecond),
			out.failTimes[n/2].Round(time.Millisecond), out.failTimes[n*99/100].Round(time.Millisecond), out.failTimes[n-1].Round(time.Millisecond))
	}
	failures := fmt.Sprint(out.failures)
	slowest := out.slowest
	for class, err := range out.examples {
		t.Logf("failure %s, e.g.: %v", class, err)
		if class != "UNAVAILABLE" {
			t.Errorf("%d publishes failed with %s, want UNAVAILABLE", out.failures[class], class)
		}
	}
	out.mu.Unlock()
	t.Logf("outage: publishes failing %v after the kill; restart: Kafka listening %v after it was started, publishes succeed %v after that; failures %s; slowest call %v (deadline %v)",
		time.Unix(0, out.firstFail.Load()).Sub(killedAt).Round(time.Millisecond), backAt.Sub(restartAt).Round(time.Millisecond),
		recoveredAt.Sub(backAt).Round(time.Millisecond), failures, slowest.Round(time.Millisecond), kfDeadline)
	if slowest > kfDeadline+time.Second {
		t.Errorf("a publish took %v, beyond its %v deadline", slowest, kfDeadline)
	}

	// No acknowledged publish is lost.
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
