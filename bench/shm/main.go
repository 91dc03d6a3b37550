// Command shm benchmarks the shared-memory transport of api/shm against a
// raw Unix-socket round trip, gRPC unary calls over a Unix socket and a gRPC
// bidi stream over a Unix socket, client and server in separate processes
// (the server is this binary re-executed), with an HDR histogram per run.
//
// Scenario "echo": the server answers each request with its bytes.
// Scenario "redis": the request is a key, the server answers with the
// value it GETs from Redis — the shape of a GetState through the sidecar —
// and mode "direct" has the client GET the value itself, so the added
// latency of the transport is the difference.
//
//	go run ./bench/shm [-scenario echo] [-modes shm,uds,grpc,grpcstream] [-sizes 100,4096] [-conc 1,16,64] [-n 20000] [-repeat 3]
//	go run ./bench/shm -scenario redis -redis 127.0.0.1:6379 [-modes direct,shm,grpc]
//
// Every (mode, size, callers) run is repeated -repeat times, modes
// interleaved, and the report gives the median of each figure over the
// repeats. It prints a Markdown report on stdout and progress on stderr.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

type config struct {
	scenario string // echo | redis
	redis    string
	spin     time.Duration
	ring     uint
}

func main() {
	serveMode := flag.String("serve", "", "internal: run as the server of this mode")
	addr := flag.String("addr", "", "internal: the server's socket path")
	scenario := flag.String("scenario", "echo", "echo: the server echoes; redis: the server answers with a value from Redis")
	redisAddr := flag.String("redis", "", "Redis address for -scenario redis")
	modes := flag.String("modes", "", "transports: shm, uds, grpc, grpcstream, direct (redis only); default all of the scenario")
	sizes := flag.String("sizes", "100,4096", "payload sizes in bytes (echo: request and response; redis: the value)")
	concs := flag.String("conc", "1,16,64", "numbers of concurrent callers")
	n := flag.Int("n", 20000, "measured calls per run (after warm-up)")
	warm := flag.Int("warmup", 2000, "warm-up calls per run")
	repeat := flag.Int("repeat", 1, "repeat every run this many times (modes interleaved) and report medians")
	spin := flag.Duration("spin", 0, "shm: the longest each side polls before parking (0 = library default, negative = never)")
	ring := flag.Uint("ring", 0, "shm: ring size in bytes the client asks for (0 = server default)")
	flag.Parse()
	cfg := config{scenario: *scenario, redis: *redisAddr, spin: *spin, ring: *ring}
	if *serveMode != "" {
		serveMain(*serveMode, *addr, cfg)
		return
	}
	switch {
	case cfg.scenario != "echo" && cfg.scenario != "redis":
		check(fmt.Errorf("-scenario %q: want echo or redis", cfg.scenario))
	case cfg.scenario == "redis" && cfg.redis == "":
		check(fmt.Errorf("-scenario redis needs -redis host:port"))
	case *n < 1 || *warm < 0 || *repeat < 1:
		check(fmt.Errorf("-n and -repeat must be positive and -warmup not negative"))
	}
	if *modes == "" {
		*modes = "shm,uds,grpc,grpcstream"
		if cfg.scenario == "redis" {
			*modes = "direct,shm,grpc"
		}
	}
	modeList := strings.Split(*modes, ",")
	for _, m := range modeList {
		if _, ok := modeNames[m]; !ok || (m == "direct" && cfg.scenario != "redis") {
			check(fmt.Errorf("-modes: unknown mode %q for scenario %s", m, cfg.scenario))
		}
	}
	sizeList, err := ints(*sizes)
	check(err)
	concList, err := ints(*concs)
	check(err)
	if cfg.scenario == "redis" {
		check(seedRedis(cfg.redis, sizeList))
	}

	var results []result
	for rep := 0; rep < *repeat; rep++ {
		for _, mode := range modeList {
			rs, err := runMode(cfg, mode, sizeList, concList, *n, *warm)
			check(err)
			results = append(results, rs...)
		}
	}
	report(os.Stdout, cfg, aggregate(results), sizeList, concList, *repeat)
}

// runMode starts the server of one mode (none for direct) and measures
// every size and concurrency against it.
func runMode(cfg config, mode string, sizes, concs []int, n, warm int) ([]result, error) {
	var srv *server
	addr, serverPID := "", 0
	if mode != "direct" {
		var err error
		if srv, err = startServer(mode, cfg); err != nil {
			return nil, err
		}
		defer srv.stop()
		addr, serverPID = srv.addr, srv.cmd.Process.Pid
	}
	cl, err := newClient(mode, addr, cfg)
	if err != nil {
		return nil, err
	}
	defer cl.close()
	var out []result
	for _, size := range sizes {
		for _, conc := range concs {
			r, err := run(cl, cfg, mode, size, conc, n, warm, serverPID)
			if err != nil {
				return nil, fmt.Errorf("%s size %d callers %d: %w", mode, size, conc, err)
			}
			fmt.Fprintf(os.Stderr, "%-10s %5d B %3d callers: p50 %7.1f µs  p99 %8.1f µs  %8.0f calls/s\n",
				mode, size, conc, r.p[0], r.p[2], r.throughput)
			out = append(out, r)
		}
	}
	return out, nil
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("bad list element %q in %q: want positive integers", f, s)
		}
		out = append(out, v)
	}
	return out, nil
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/shm:", err)
		os.Exit(1)
	}
}
