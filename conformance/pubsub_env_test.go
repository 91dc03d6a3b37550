package conformance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outrig/outrig/internal/testenv"
	outrig "github.com/outrig/outrig/sdk-go"
)

// This file holds what the pub/sub, bindings and fault suites share: the
// example component files with values replaced, a control plane with
// sidecars around one component, and a recorder of delivered events.

// psComponentYAML returns examples/components/<file> with the values of the
// metadata entries named in set replaced. It fails the test when a name is
// not in the file, so the examples stay the source of every setting.
func psComponentYAML(t testing.TB, file string, set map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", "components", file))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for name, v := range set {
		found := false
		for i := 0; i+1 < len(lines); i++ {
			next := strings.TrimLeft(lines[i+1], " ")
			if strings.TrimSpace(lines[i]) == "- name: "+name && strings.HasPrefix(next, "value:") {
				lines[i+1] = lines[i+1][:len(lines[i+1])-len(next)] + "value: " + strconv.Quote(v)
				found = true
			}
		}
		if !found {
			t.Fatalf("%s: no metadata entry %q with a value", file, name)
		}
	}
	return strings.Join(lines, "\n")
}

// psRunID is a short random id that keeps topics, groups and app ids of one
// run apart from earlier runs on the same servers.
func psRunID() string { return fmt.Sprintf("%06x", rand.Uint32()&0xffffff) }

// psEnv is a control plane serving one component file, and sidecars of it.
type psEnv struct {
	name   string // the component's name in its file
	cpAddr string
	run    string
}

// startPSEnv starts a control plane on a folder holding files (name →
// YAML); name is the component the suite uses.
func startPSEnv(t *testing.T, name string, files map[string]string) *psEnv {
	t.Helper()
	dir := t.TempDir()
	for f, y := range files {
		testenv.WriteFile(t, filepath.Join(dir, f), y)
	}
	addr := testenv.FreeAddr(t)
	testenv.Start(t, "outrig#cp", nil, "control-plane", "--resources", dir, "--listen", addr)
	return &psEnv{name: name, cpAddr: addr, run: psRunID()}
}

// sidecar starts a sidecar of appID and connects a client to it.
func (e *psEnv) sidecar(t *testing.T, appID string) (*testenv.Sidecar, *outrig.Client) {
	t.Helper()
	sc := testenv.StartSidecar(t, appID, "--control-plane", e.cpAddr)
	c := testenv.Client(t, sc.Sock)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The sidecar is ready once its configuration arrived; the component
	// itself may still be initialising (Kafka and RocketMQ take a moment).
	for {
		md, err := c.GetMetadata(ctx)
		if err == nil && slices.ContainsFunc(md.Components, func(ci outrig.ComponentInfo) bool { return ci.Name == e.name }) {
			return sc, c
		}
		if ctx.Err() != nil {
			t.Fatalf("sidecar %s: component %q not loaded within 30s (last: %v, %+v)", appID, e.name, err, md)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// topic returns a topic name unique to this run.
func (e *psEnv) topic(what string) string { return "conf-" + e.run + "-" + what }

// psProbe is the data prefix of readiness probes; recorders count them apart.
const psProbe = "probe/"

// psRecorder records the events one subscriber (one Subscribe stream) got.
// Data of recorded events is "<anything>/<key>/<seq>", probes are "probe/<n>".
type psRecorder struct {
	verdict func(e *outrig.TopicEvent) outrig.EventStatus

	mu       sync.Mutex
	counts   map[string]int    // data → deliveries
	attempts map[string][]int  // data → attempt numbers in arrival order
	ids      map[string]string // data → CloudEvent id of the first delivery
	arrivals []string          // data in arrival order (first deliveries only)
	probes   int
	total    int // deliveries, probes excluded
}

func newPSRecorder(verdict func(e *outrig.TopicEvent) outrig.EventStatus) *psRecorder {
	if verdict == nil {
		verdict = func(*outrig.TopicEvent) outrig.EventStatus { return outrig.EventSuccess }
	}
	return &psRecorder{verdict: verdict, counts: map[string]int{}, attempts: map[string][]int{}, ids: map[string]string{}}
}

func (r *psRecorder) handle(_ context.Context, e *outrig.TopicEvent) outrig.EventStatus {
	d := string(e.Data)
	r.mu.Lock()
	if strings.HasPrefix(d, psProbe) {
		r.probes++
		r.mu.Unlock()
		return outrig.EventSuccess
	}
	r.total++
	if r.counts[d] == 0 {
		r.ids[d] = e.ID
		r.arrivals = append(r.arrivals, d)
	}
	r.counts[d]++
	r.attempts[d] = append(r.attempts[d], e.Attempt)
	r.mu.Unlock()
	return r.verdict(e)
}

func (r *psRecorder) probeCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.probes
}

// got returns how many of want were delivered at least once.
func (r *psRecorder) got(want []string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, d := range want {
		if r.counts[d] > 0 {
			n++
		}
	}
	return n
}

// snapshot copies the counts.
func (r *psRecorder) snapshot() (counts map[string]int, attempts map[string][]int, ids map[string]string, arrivals []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	counts, attempts, ids = map[string]int{}, map[string][]int{}, map[string]string{}
	for k, v := range r.counts {
		counts[k] = v
		attempts[k] = slices.Clone(r.attempts[k])
		ids[k] = r.ids[k]
	}
	return counts, attempts, ids, slices.Clone(r.arrivals)
}

// duplicates is the number of deliveries beyond the first of each event.
func (r *psRecorder) duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total - len(r.counts)
}

// subscribe opens a Subscribe stream for r until the test ends.
func (e *psEnv) subscribe(t *testing.T, c *outrig.Client, topic string, r *psRecorder, opts ...outrig.SubscribeOption) {
	t.Helper()
	st, err := c.StartSubscribe(context.Background(), e.name, topic, r.handle, opts...)
	if err != nil {
		t.Fatalf("subscribe %s/%s: %v", e.name, topic, err)
	}
	t.Cleanup(func() { _ = st.Stop() })
}

// awaitReady publishes probes to topic until each recorder got one: the
// component's subscription is then in place (a Kafka consumer group has
// finished its rebalance, a RocketMQ consumer owns its queues). Probes carry
// different partition keys so that they reach every partition.
func (e *psEnv) awaitReady(t *testing.T, pub *outrig.Client, topic string, recs ...*psRecorder) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(90 * time.Second)
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := pub.Publish(ctx, e.name, topic, []byte(psProbe+strconv.Itoa(i)),
			outrig.WithContentType("text/plain"), outrig.WithPartitionKey("probe-"+strconv.Itoa(i)))
		cancel()
		if err != nil && time.Now().After(deadline) {
			t.Fatalf("probe of %s: %v", topic, err)
		}
		wait := time.Now().Add(300 * time.Millisecond)
		for time.Now().Before(wait) {
			ready := true
			for _, r := range recs {
				if r.probeCount() == 0 {
					ready = false
				}
			}
			if ready {
				t.Logf("%s ready after %v (%d probes)", topic, time.Since(start).Round(time.Millisecond), i+1)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: subscribers not receiving within 90s (%d probes published)", topic, i+1)
		}
	}
}

// psEvents returns n event data strings "<what>/<key>/<seq>" over keys keys.
func psEvents(what string, n, keys int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s/k%d/%d", what, i%keys, i)
	}
	return out
}

// psKey is the key part of an event's data.
func psKey(d string) string { return strings.Split(d, "/")[1] }

// publishAll publishes events with workers concurrent publishers, each
// event with its key as partition key. It fails the test on any error.
func (e *psEnv) publishAll(t *testing.T, pub *outrig.Client, topic string, events []string, workers int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(events))
	next := make(chan string)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range next {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := pub.Publish(ctx, e.name, topic, []byte(d), outrig.WithContentType("text/plain"), outrig.WithPartitionKey(psKey(d)))
				cancel()
				if err != nil {
					errs <- fmt.Errorf("publish %s: %w", d, err)
				}
			}
		}()
	}
	for _, d := range events {
		next <- d
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// awaitAll waits until each recorder got every event of want at least once.
func awaitAll(t *testing.T, what string, d time.Duration, want []string, recs ...*psRecorder) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		missing := 0
		for _, r := range recs {
			missing += len(want) - r.got(want)
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, r := range recs {
				counts, _, _, _ := r.snapshot()
				var lost []string
				for _, w := range want {
					if counts[w] == 0 {
						lost = append(lost, w)
					}
				}
				sort.Strings(lost)
				if len(lost) > 0 {
					t.Errorf("%s: %d of %d events not delivered within %v, e.g. %v", what, len(lost), len(want), d, lost[:min(5, len(lost))])
				}
			}
			t.FailNow()
		}
		time.Sleep(20 * time.Millisecond)
	}
}
