package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// report is the whole run, written as Markdown.
type report struct {
	cfg       config
	start     time.Time
	elapsed   time.Duration
	loadStart string
	loadEnd   string
	machine   string
	command   string
	runs      []*runResult
}

// pct returns the q-quantile (nearest rank) of ds; 0 when empty.
func pct(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func median(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func humanBytes(b int64) string {
	switch {
	case b >= 10<<20:
		return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 10<<10:
		return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

func (r *report) find(n int, mode string) *runResult {
	for _, run := range r.runs {
		if run.n == n && run.mode == mode {
			return run
		}
	}
	return nil
}

func (r *report) write(w io.Writer) {
	c := r.cfg
	fmt.Fprintf(w, "Run %s, %s, %v in all; load average %s at start, %s at end.\n\n",
		r.start.UTC().Format("2006-01-02 15:04 MST"), r.machine, r.elapsed.Round(time.Second), r.loadStart, r.loadEnd)
	fmt.Fprintf(w, "Command: `%s`\n\n", r.command)
	client := "raw delta ADS streams"
	if c.client == "xds" {
		client = "xds/client.Client instances"
	}
	if c.sharedWriteBuf {
		fmt.Fprintf(w, "Control plane run with grpc.SharedWriteBuffer(true) (not the shipped default).\n\n")
	}
	if len(c.cpEnv) > 0 {
		fmt.Fprintf(w, "Control-plane process environment: %s.\n\n", strings.Join(c.cpEnv, " "))
	}
	fmt.Fprintf(w, "Fleet: %d services (app-00 with %d instances, the others %d each), %d components; delta subscribers are %s; endpoints layout: %s; %d repetitions of each change.\n\n",
		c.services, c.endpoints, c.smallEndpoints, c.components, client, c.model.Name(), c.reps)

	fmt.Fprintln(w, "| scenario | N | protocol | p50 ms | p99 ms | max ms | missed | bytes/change (fleet) | bytes/change per sidecar | CP CPU ms/change |")
	fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, sc := range c.scenarios {
		for _, n := range c.ns {
			for _, mode := range c.modes {
				run := r.find(n, mode)
				if run == nil {
					continue
				}
				s := run.scen[sc]
				b := median(s.bytes)
				fmt.Fprintf(w, "| %s | %d | %s | %.1f | %.1f | %.1f | %d | %s | %s | %.0f |\n",
					sc, n, mode, ms(pct(s.lat, 0.5)), ms(pct(s.lat, 0.99)), ms(pct(s.lat, 1)), s.missed,
					humanBytes(b), humanBytes(b/int64(n)), 1000*s.cpu/float64(max(s.changes, 1)))
			}
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| N | protocol | connect+sync s | CP CPU s (connect) | CP CPU s (all changes) | CP RSS MiB synced | CP RSS MiB end | CP peak RSS MiB | simulator RSS MiB | simulator CPU s (all changes) | failed streams | load at end |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, n := range c.ns {
		for _, mode := range c.modes {
			run := r.find(n, mode)
			if run == nil {
				continue
			}
			var cpu float64
			for _, s := range run.scen {
				cpu += s.cpu
			}
			fmt.Fprintf(w, "| %d | %s | %.1f | %.1f | %.2f | %.0f | %.0f | %.0f | %.0f | %.2f | %d | %s |\n",
				n, mode, run.connect.Seconds(), run.connectCPU, cpu, run.rssSynced, run.rssEnd, run.peak, run.simRSS, run.simCPU, run.failed, run.load)
		}
	}
	fmt.Fprintln(w)
	r.writeTargets(w)
}

// writeTargets checks the targets of issue 5 against what was measured.
func (r *report) writeTargets(w io.Writer) {
	fmt.Fprintln(w, "Targets:")
	if run := r.find(1000, "delta"); run != nil {
		for _, sc := range r.cfg.scenarios {
			p := ms(pct(run.scen[sc].lat, 0.99))
			fmt.Fprintf(w, "- N=1000 delta %s: p99 %.1f ms (target ≤ 200 ms: %s)\n", sc, p, verdict(p <= 200))
		}
	}
	for _, sc := range []string{scJoin, scLeave} {
		if !slices.Contains(r.cfg.scenarios, sc) {
			continue
		}
		var per []string
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, n := range r.cfg.ns {
			d, s := r.find(n, "delta"), r.find(n, "sotw")
			if d == nil {
				continue
			}
			b := float64(median(d.scen[sc].bytes)) / float64(n)
			lo, hi = math.Min(lo, b), math.Max(hi, b)
			if s != nil {
				ratio := float64(median(s.scen[sc].bytes)) / math.Max(1, float64(median(d.scen[sc].bytes)))
				per = append(per, fmt.Sprintf("N=%d %.1f×", n, ratio))
			}
		}
		if !math.IsInf(lo, 0) {
			fmt.Fprintf(w, "- %s, delta bytes per sidecar per change: %s to %s across N (independent of N: %s)\n",
				sc, humanBytes(int64(lo)), humanBytes(int64(hi)), verdict(hi <= lo*1.05+64))
		}
		if len(per) > 0 {
			fmt.Fprintf(w, "- %s, SotW bytes ÷ delta bytes: %v (target ≥ 50×)\n", sc, per)
		}
	}
	if run := r.find(5000, "delta"); run != nil {
		fmt.Fprintf(w, "- N=5000 delta control-plane peak RSS %.0f MiB (target ≤ 500 MB = 477 MiB: %s)\n", run.peak, verdict(run.peak*(1<<20) <= 500e6))
	}
	fmt.Fprintln(w)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}
