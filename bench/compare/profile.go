package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// profileSidecar records the CPU profile of one contender's sidecar with
// perf while refCallers callers make GetState 100 B calls, and prints the
// top frames by self time and by inclusive time. The sidecar binaries have
// no pprof endpoint; perf samples the running process as it is.
func profileSidecar(ctx context.Context, cfg config, e *env) error {
	c := e.cs[cfg.profile]
	if c == nil || c.sidecar == nil {
		return fmt.Errorf("-profile %s: no such sidecar in this run", cfg.profile)
	}
	perf, err := exec.LookPath("perf")
	if err != nil {
		return fmt.Errorf("-profile needs perf (apt-get install linux-perf): %w", err)
	}
	op := operations[0] // GetState 100 B
	fn, err := prepare(ctx, c, op)
	if err != nil {
		return err
	}
	data := filepath.Join(os.TempDir(), "outrig-compare-perf-"+cfg.profile+".data")
	secs := strconv.FormatFloat(cfg.profileDur.Seconds(), 'f', 1, 64)
	rec := exec.CommandContext(ctx, perf, "record", "-F", "1999", "-g", "-p", strconv.Itoa(c.sidecar.pid()), "-o", data, "--", "sleep", secs)
	rec.Stderr = os.Stderr
	if err := rec.Start(); err != nil {
		return fmt.Errorf("perf record: %w", err)
	}
	progress("profiling %s for %ss under %s with %d callers", c.name, secs, op.name, cfg.profileN)
	load, lerr := concurrent(ctx, fn, cfg.profileN, 200*time.Millisecond, cfg.profileDur, []int{c.sidecar.pid()}, c.sidecar.pid())
	if err := rec.Wait(); err != nil {
		return fmt.Errorf("perf record: %w", err)
	}
	if lerr != nil {
		return lerr
	}
	progress("perf data kept in %s (perf report -i %s)", data, data)
	fmt.Printf("\n### CPU profile of %s under %s, %d callers (%.0f calls/s, %.1f µs sidecar CPU per call)\n\n",
		c.name, op.name, cfg.profileN, load.opsPerSec(), load.cpu/float64(max(load.calls, 1))*1e6)
	areas, err := selfByArea(ctx, perf, data)
	if err != nil {
		return err
	}
	fmt.Printf("self time by area:\n\n| area | share of sidecar CPU | µs per call |\n|---|--:|--:|\n")
	perCall := load.cpu / float64(max(load.calls, 1)) * 1e6
	for _, a := range areas {
		fmt.Printf("| %s | %.1f%% | %.1f |\n", a.name, a.pct, a.pct/100*perCall)
	}
	fmt.Println()
	for _, view := range []struct{ title, children string }{
		{"self time (top frames)", "--no-children"},
		{"inclusive time (frame and its callees)", "--children"},
	} {
		out, err := exec.CommandContext(ctx, perf, "report", "-i", data, "--stdio", view.children,
			"--sort", "symbol", "-g", "none", "--percent-limit", "1").Output()
		if err != nil {
			return fmt.Errorf("perf report: %w", err)
		}
		fmt.Printf("%s:\n\n```\n", view.title)
		n := 0
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" {
				continue
			}
			fmt.Println(l)
			if n++; n == 40 {
				break
			}
		}
		fmt.Print("```\n\n")
	}
	return nil
}

// area is a share of the profile's self time.
type area struct {
	name string
	pct  float64
}

// areaOf classifies a perf symbol by where the code comes from.
func areaOf(kernel bool, sym string) string {
	switch {
	case kernel:
		return "kernel (syscalls, scheduling, network stack)"
	case strings.HasPrefix(sym, "runtime.") || strings.HasPrefix(sym, "internal/runtime") || strings.HasPrefix(sym, "runtime/"):
		return "Go runtime (scheduler, GC, allocation)"
	case strings.HasPrefix(sym, "google.golang.org/grpc"), strings.HasPrefix(sym, "golang.org/x/net/http2"):
		return "grpc-go and http2"
	case strings.HasPrefix(sym, "google.golang.org/protobuf"):
		return "protobuf"
	case strings.HasPrefix(sym, "github.com/redis/go-redis"):
		return "go-redis"
	case strings.HasPrefix(sym, "github.com/outrig/outrig/api/shm"):
		return "api/shm"
	case strings.HasPrefix(sym, "github.com/outrig/"):
		return "outrig (service, governance, state, transports)"
	case strings.HasPrefix(sym, "github.com/prometheus"):
		return "prometheus metrics"
	case strings.HasPrefix(sym, "syscall.") || strings.HasPrefix(sym, "internal/poll") || strings.HasPrefix(sym, "net.") || strings.HasPrefix(sym, "internal/syscall"):
		return "Go syscall and net wrappers"
	}
	return "other Go code"
}

// selfByArea sums perf's self time per area, largest first.
func selfByArea(ctx context.Context, perf, data string) ([]area, error) {
	out, err := exec.CommandContext(ctx, perf, "report", "-i", data, "--stdio", "--no-children",
		"--sort", "symbol", "-g", "none", "--percent-limit", "0").Output()
	if err != nil {
		return nil, fmt.Errorf("perf report: %w", err)
	}
	sum := map[string]float64{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || !strings.HasSuffix(f[0], "%") {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		sum[areaOf(f[1] == "[k]", f[2])] += pct
	}
	var as []area
	for n, p := range sum {
		as = append(as, area{n, p})
	}
	sort.Slice(as, func(i, j int) bool { return as[i].pct > as[j].pct })
	return as, nil
}
