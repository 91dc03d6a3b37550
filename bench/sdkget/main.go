// Command sdkget is the Go twin of the Java SDK's GetState benchmark
// (examples/java/src/main/java/dev/outrig/examples/GetStateBench.java): the
// same calls against the same sidecar, measured the same way, so that
// examples/java/bench.sh can put the Go SDK beside the Java SDK in one run.
//
// It saves a 100-byte value under "bench-key" in the store "statestore",
// then per transport (gRPC on the Unix socket on Multiplex streams and as
// unary calls, and shared memory when -shm is given): warm-up calls, a timed run of one caller, warm-up calls, a
// timed run of -threads callers. Each call is timed on its own; the
// percentiles are those of the sorted latencies (nearest rank); ops/s is
// calls over the run's wall time. It prints Markdown table rows
// "| Go | transport | callers | calls | p50 µs | p90 | p99 | p99.9 | ops/s |".
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"sync"
	"time"

	outrig "github.com/outrig/outrig/sdk-go"
)

func main() {
	address := flag.String("address", "unix:///tmp/outrig.sock", "sidecar address")
	shm := flag.String("shm", "", "shared-memory socket of the sidecar; empty: gRPC only")
	warmup := flag.Int("warmup", 20000, "warm-up calls before each timed run")
	calls := flag.Int("calls", 100000, "timed calls per run")
	threads := flag.Int("threads", 4, "callers of the concurrent run")
	flag.Parse()
	kinds := []string{"grpc-uds", "grpc-uds-unary"}
	if *shm != "" {
		kinds = append(kinds, "shm")
	}
	ctx := context.Background()
	for _, kind := range kinds {
		opts := []outrig.Option{outrig.WithAddress(*address)}
		switch kind {
		case "shm":
			opts = append(opts, outrig.WithSharedMemory(*shm))
		case "grpc-uds-unary":
			opts = append(opts, outrig.WithUnaryRPC()) // "grpc-uds" is the default, Multiplex streams
		}
		c, err := outrig.NewClient(ctx, opts...)
		if err != nil {
			fail(err)
		}
		if err := c.SaveState(ctx, "statestore", "bench-key", make([]byte, 100)); err != nil {
			fail(err)
		}
		for _, n := range []int{1, *threads} {
			run(ctx, c, *warmup, n)
			lat, wall := run(ctx, c, *calls, n)
			fmt.Printf("| Go | %s | %d | %d | %.1f | %.1f | %.1f | %.1f | %.0f |\n", kind, n, len(lat),
				pct(lat, 0.50), pct(lat, 0.90), pct(lat, 0.99), pct(lat, 0.999), float64(len(lat))/wall.Seconds())
		}
		_ = c.Close()
	}
}

// run makes calls GetState calls split over n callers and returns every
// call's latency, sorted, and the wall time.
func run(ctx context.Context, c *outrig.Client, calls, n int) ([]time.Duration, time.Duration) {
	per := calls / n
	lat := make([][]time.Duration, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		lat[i] = make([]time.Duration, per)
		wg.Add(1)
		go func(mine []time.Duration) {
			defer wg.Done()
			<-start
			for j := range mine {
				t0 := time.Now()
				it, err := c.GetState(ctx, "statestore", "bench-key")
				if err != nil {
					fail(err)
				}
				if !it.Found {
					fail(fmt.Errorf("bench-key vanished"))
				}
				mine[j] = time.Since(t0)
			}
		}(lat[i])
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	wall := time.Since(t0)
	all := slices.Concat(lat...)
	slices.Sort(all)
	return all, wall
}

// pct is the nearest-rank percentile q of sorted, in µs (as the Java twin).
func pct(sorted []time.Duration, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(len(sorted)-1, i))
	return float64(sorted[i].Nanoseconds()) / 1000
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sdkget:", err)
	os.Exit(1)
}
