package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

var modeNames = map[string]string{
	"direct":     "direct Redis (no sidecar)",
	"shm":        "shm rings (api/shm)",
	"uds":        "raw Unix socket",
	"grpc":       "gRPC unary, UDS",
	"grpcstream": "gRPC bidi stream, UDS",
}

// aggregate reduces repeated runs of the same (mode, size, callers) to the
// median of each figure.
func aggregate(rs []result) []result {
	type key struct {
		mode       string
		size, conc int
	}
	groups := map[key][]result{}
	var order []key
	for _, r := range rs {
		k := key{r.mode, r.size, r.conc}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]result, 0, len(order))
	for _, k := range order {
		g := groups[k]
		m := result{mode: k.mode, size: k.size, conc: k.conc}
		for i := range quantiles {
			m.p[i] = median(g, func(r result) float64 { return r.p[i] })
		}
		m.throughput = median(g, func(r result) float64 { return r.throughput })
		m.cpuPerCall = median(g, func(r result) float64 { return r.cpuPerCall })
		out = append(out, m)
	}
	return out
}

func median(g []result, f func(result) float64) float64 {
	v := make([]float64, len(g))
	for i, r := range g {
		v[i] = f(r)
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func find(rs []result, mode string, size, conc int) (result, bool) {
	for _, r := range rs {
		if r.mode == mode && r.size == size && r.conc == conc {
			return r, true
		}
	}
	return result{}, false
}

// report writes the results as Markdown.
func report(w io.Writer, cfg config, results []result, sizes, concs []int, repeat int) {
	fmt.Fprintf(w, "Date: %s. Machine: %s, %d CPUs, GOMAXPROCS %d, %s; load average at the end %s.\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), loadAvg())
	fmt.Fprintf(w, "Command: `go run ./bench/shm %s`. Figures are medians over %d repeats (modes interleaved).\n\n", strings.Join(os.Args[1:], " "), repeat)
	for _, size := range sizes {
		what := "echo of"
		if cfg.scenario == "redis" {
			what = "Redis GET of a value of"
		}
		fmt.Fprintf(w, "%s %d B (latency in µs; CPU = client + server CPU time per call):\n\n", strings.ToUpper(what[:1])+what[1:], size)
		fmt.Fprintln(w, "| transport | callers | p50 | p90 | p99 | p99.9 | calls/s | CPU µs/call |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
		for _, r := range results {
			if r.size == size {
				fmt.Fprintf(w, "| %s | %d | %.1f | %.1f | %.1f | %.1f | %.0f | %.1f |\n", modeNames[r.mode], r.conc,
					r.p[0], r.p[1], r.p[2], r.p[3], r.throughput, r.cpuPerCall)
			}
		}
		fmt.Fprintln(w)
	}
	if cfg.scenario == "redis" {
		fmt.Fprintln(w, "p50 added over direct Redis access, in µs:")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| value | callers | shm | gRPC unary | gRPC stream | raw UDS |")
		fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|")
		for _, size := range sizes {
			for _, conc := range concs {
				base, ok := find(results, "direct", size, conc)
				if !ok {
					continue
				}
				row := fmt.Sprintf("| %d | %d", size, conc)
				for _, m := range []string{"shm", "grpc", "grpcstream", "uds"} {
					if r, ok := find(results, m, size, conc); ok {
						row += fmt.Sprintf(" | %+.1f", r.p[0]-base.p[0])
					} else {
						row += " | –"
					}
				}
				fmt.Fprintln(w, row+" |")
			}
		}
		return
	}
	fmt.Fprintln(w, "p50 of each transport divided by the p50 of shm (above 1 = shm faster):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| payload | callers | raw UDS | gRPC unary | gRPC stream |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|")
	for _, size := range sizes {
		for _, conc := range concs {
			base, ok := find(results, "shm", size, conc)
			if !ok {
				continue
			}
			row := fmt.Sprintf("| %d | %d", size, conc)
			for _, m := range []string{"uds", "grpc", "grpcstream"} {
				if r, ok := find(results, m, size, conc); ok {
					row += fmt.Sprintf(" | %.2f", r.p[0]/base.p[0])
				} else {
					row += " | –"
				}
			}
			fmt.Fprintln(w, row+" |")
		}
	}
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
