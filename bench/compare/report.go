package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// sample is one contender on one operation in one round. Latencies in µs,
// CPU in sidecar µs per call (caller + callee sidecar for Invoke), memory in
// MiB (peak of the samples taken during the throughput runs).
type sample struct {
	Round     int
	Op        string
	Contender string
	P50       float64
	P90       float64
	P99       float64
	P999      float64
	SeqOps    float64
	SeqCPU    float64
	Ops       map[int]float64 // callers → calls/s
	CPU       map[int]float64 // callers → sidecar CPU µs per call
	RSS       float64
	Anon      float64
	Errors    int64
	Load1     float64
	// hist is the round's sequential latency histogram (ns), merged over
	// rounds for the percentiles.
	hist *hdrhistogram.Histogram
}

func (s sample) loadLine() string {
	ks := make([]int, 0, len(s.Ops))
	for k := range s.Ops {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	var b strings.Builder
	for _, k := range ks {
		fmt.Fprintf(&b, "%d: %6.0f/s ", k, s.Ops[k])
	}
	if s.RSS > 0 {
		fmt.Fprintf(&b, " cpu %.1f µs/call  rss %.0f anon %.0f MiB", s.CPU[16], s.RSS, s.Anon)
	}
	return b.String()
}

// meta is where and how the run was made.
type meta struct {
	Start, End          time.Time
	Machine, Kernel, Go string
	CPUs                int
	Commit, Daprd       string
	LoadStart, LoadEnd  string
	RoundLoads          []string
	Command             string
}

func newMeta(cfg config) meta {
	m := meta{Start: time.Now(), CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadStart: loadAvg(), Command: cfg.command}
	if out, err := exec.Command("lscpu").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "Model name" {
				m.Machine = strings.TrimSpace(v)
			}
		}
	}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	m.Commit = cfg.commit
	if out, err := exec.Command("git", "-C", cfg.root, "describe", "--always", "--dirty").Output(); err == nil && m.Commit == "" {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}

// agg is the median over rounds of each figure of one contender and
// operation; p50s keeps each round's p50, in round order.
type agg struct {
	sample
	p50s   []float64
	rounds int
}

type report struct {
	cfg  config
	meta meta
	ops  []operation
	cons []string // contenders measured, table order
	agg  map[string]map[string]*agg
	mem  map[string]memInfo // per contender: median over rounds of the per-round peak
}

func buildReport(cfg config, m meta, samples []sample) *report {
	r := &report{cfg: cfg, meta: m, ops: cfg.ops, agg: map[string]map[string]*agg{}, mem: map[string]memInfo{}}
	for _, k := range contenderKeys {
		if slices.ContainsFunc(samples, func(s sample) bool { return s.Contender == k }) {
			r.cons = append(r.cons, k)
		}
	}
	for _, op := range r.ops {
		r.agg[op.key] = map[string]*agg{}
		for _, c := range r.cons {
			var ss []sample
			for _, s := range samples {
				if s.Op == op.key && s.Contender == c {
					ss = append(ss, s)
				}
			}
			if len(ss) > 0 {
				r.agg[op.key][c] = aggregate(ss)
			}
		}
	}
	for _, c := range r.cons {
		peak := map[int]memInfo{}
		for _, s := range samples {
			if s.Contender == c {
				p := peak[s.Round]
				peak[s.Round] = memInfo{rss: max(p.rss, s.RSS), anon: max(p.anon, s.Anon)}
			}
		}
		var rss, anon []float64
		for _, p := range peak {
			rss, anon = append(rss, p.rss), append(anon, p.anon)
		}
		r.mem[c] = memInfo{rss: median(rss), anon: median(anon)}
	}
	return r
}

func aggregate(ss []sample) *agg {
	sort.Slice(ss, func(i, j int) bool { return ss[i].Round < ss[j].Round })
	field := func(f func(sample) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		return median(v)
	}
	a := &agg{rounds: len(ss)}
	a.Op, a.Contender = ss[0].Op, ss[0].Contender
	// Latency percentiles over every round's recorded calls together (a
	// p99.9 needs many calls); the per-round p50s show the drift.
	h := hdrhistogram.New(1, int64(callTimeout), 3)
	for _, s := range ss {
		if s.hist != nil {
			h.Merge(s.hist)
		}
	}
	us := func(q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1e3 }
	a.P50, a.P90, a.P99, a.P999 = us(50), us(90), us(99), us(99.9)

	a.SeqOps = field(func(s sample) float64 { return s.SeqOps })
	a.SeqCPU = field(func(s sample) float64 { return s.SeqCPU })
	a.RSS = field(func(s sample) float64 { return s.RSS })
	a.Anon = field(func(s sample) float64 { return s.Anon })
	a.Ops, a.CPU = map[int]float64{}, map[int]float64{}
	for n := range ss[0].Ops {
		a.Ops[n] = field(func(s sample) float64 { return s.Ops[n] })
		a.CPU[n] = field(func(s sample) float64 { return s.CPU[n] })
	}
	for _, s := range ss {
		a.Errors += s.Errors
		a.p50s = append(a.p50s, s.P50)
	}
	return a
}

// median of v (the mean of the two middle values for an even count); 0
// for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Markers of the generated part of docs/benchmarks.md; text after the end
// marker (up to the next "## " heading) is kept across runs.
const (
	docBegin = "<!-- bench/compare:begin — generated by go run ./bench/compare; edits between these markers are overwritten -->"
	docEnd   = "<!-- bench/compare:end -->"
)

// refCallers is the concurrency of the throughput and CPU comparisons.
const refCallers = 16

func (r *report) markdown() string {
	var b strings.Builder
	m := r.meta
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("## Sidecar vs direct access vs Dapr\n\n")
	w("What is measured: an application (this Go program) reaching Redis and another application seven ways — ")
	w("**direct** (go-redis `GET`/`SET`/`XADD` to Redis; a plain gRPC call to the echo app for Invoke), ")
	w("the **Outrig** sidecar through the Go SDK over **gRPC on loopback TCP** and **on a Unix socket** (the SDK's default: ")
	w("unary calls on long-lived `Multiplex` streams), over **gRPC on a Unix socket with one unary gRPC call per call** ")
	w("(`WithUnaryRPC`), over **shared memory** (`WithSharedMemory`), the same over shared memory to a **slim build** of the sidecar ")
	w("(`make build-slim`: only the Redis and in-memory components linked), and **Dapr's daprd v1.16.0** (built from the Go module proxy by ")
	w("`bench/build-daprd.sh`) over its gRPC API on loopback TCP. Both sidecars use the same Redis through the same ")
	w("component YAML (`state.redis`, `pubsub.redis`). Invoke is an echo of 100 B through two sidecars: caller sidecar → ")
	w("callee sidecar → echo app (Outrig: the SDK's Serve stream; daprd: a gRPC AppCallback server, daprd's name resolution ")
	w("pointed at the callee daprd). Everything runs on loopback on the same machine as the benchmark itself. ")
	w("Direct state access is a plain `GET`/`SET` of the value, while both sidecars' `state.redis` keep a hash with a ")
	w("version (`HMGET`, a Lua script for writes), so \"p50 − direct\" includes that data layout as well as the sidecar. ")
	w("\"GetState 100 B in-memory\" is the same call on a `state.in-memory` store in each sidecar: the sidecar path without ")
	w("Redis (it has no direct row).\n\n")
	w("How: per contender, operation and round, %d unrecorded warm-up calls, then %d sequential calls recorded in an HDR ", r.cfg.warm, r.cfg.calls)
	w("histogram (the \"1 caller\" throughput is this run's; the latency percentiles are those of all rounds' %d calls together), ", r.cfg.calls*r.cfg.rounds)
	w("then %s callers calling back to back for %v each ", joinInts(r.cfg.callers), r.cfg.loadTime)
	w("(after %v unmeasured). Sidecar CPU is utime+stime from `/proc/<pid>/stat` around the %d-caller window, divided by its ", r.cfg.loadWarm, refCallers)
	w("calls (both sidecars for Invoke); memory is the peak of `VmRSS` and `RssAnon` of the caller's sidecar sampled every ")
	w("100 ms during the throughput runs. %d round(s); in each, every contender runs every operation once, the order rotating ", r.cfg.rounds)
	w("per round and operation; throughput, CPU and memory are medians over rounds, and \"p50 by round\" shows the drift.\n\n")
	if len(m.RoundLoads) > 0 {
		w("1-minute load average at the start of each round: %s. ", strings.Join(m.RoundLoads, ", "))
	}
	w("Run: %s–%s UTC, %s, %d vCPU, kernel %s, %s, commit %s. Load average (1/5/15 min) at start %s, at end %s; ",
		m.Start.UTC().Format("2006-01-02 15:04"), m.End.UTC().Format("15:04"), m.Machine, m.CPUs, m.Kernel, m.Go, m.Commit, m.LoadStart, m.LoadEnd)
	w("the machine is shared with other builds, so absolute figures move between runs; ratios within a run are what to compare.\n\n")
	if len(r.cfg.sidecarEnv) > 0 {
		w("Sidecar environment (Outrig and daprd alike): `%s`.\n\n", strings.Join(r.cfg.sidecarEnv, " "))
	}
	w("Command: `%s` (`make bench` runs `go run ./bench/compare -outrig bin/outrig -outrig-slim bin/outrig-slim $(BENCH_FLAGS)` after `make build build-slim`).\n\n", strings.TrimSpace(m.Command))
	if r.cfg.png != "" {
		w("![latency p50/p99 and throughput at %d callers per contender and operation](%s)\n\n", refCallers, relImg(r.cfg.doc, r.cfg.png))
	}
	for _, op := range r.ops {
		r.opTable(&b, op)
	}
	r.memTable(&b)
	r.targets(&b)
	return b.String()
}

func (r *report) opTable(b *strings.Builder, op operation) {
	a := r.agg[op.key]
	dir, dap := a["direct"], a["daprd"]
	fmt.Fprintf(b, "### %s\n\n", op.name)
	head := "| contender | p50 µs | p90 | p99 | p99.9 | p50 by round | p50 − direct | ÷ daprd's | calls/s, 1 caller |"
	sep := "|---|--:|--:|--:|--:|---|--:|--:|--:|"
	for _, n := range r.cfg.callers {
		head += fmt.Sprintf(" %d callers |", n)
		sep += "--:|"
	}
	head += fmt.Sprintf(" @%d ÷ direct | @%d ÷ daprd | sidecar CPU s/100k calls @%d | … 1 caller | CPU @%d ÷ daprd | errors |\n", refCallers, refCallers, refCallers, refCallers)
	sep += "--:|--:|--:|--:|--:|--:|\n"
	b.WriteString(head)
	b.WriteString(sep)
	for _, c := range r.cons {
		x := a[c]
		if x == nil {
			continue
		}
		row := fmt.Sprintf("| %s | %.1f | %.1f | %.1f | %.1f | %s |", contenderNames[c], x.P50, x.P90, x.P99, x.P999, joinFloats(x.p50s))
		added := func(s *agg) float64 { return s.P50 - dir.P50 }
		switch {
		case dir == nil || c == "direct":
			row += " — | — |"
		case dap == nil || c == "daprd" || added(dap) <= 0:
			row += fmt.Sprintf(" %+.1f | — |", added(x))
		default:
			row += fmt.Sprintf(" %+.1f | %.2f |", added(x), added(x)/added(dap))
		}
		row += fmt.Sprintf(" %.0f |", x.SeqOps)
		for _, n := range r.cfg.callers {
			row += fmt.Sprintf(" %.0f |", x.Ops[n])
		}
		row += ratioCell(x.Ops[refCallers], dir, func(s *agg) float64 { return s.Ops[refCallers] }, c == "direct")
		row += ratioCell(x.Ops[refCallers], dap, func(s *agg) float64 { return s.Ops[refCallers] }, c == "daprd")
		if c == "direct" {
			row += " — | — | — |"
		} else {
			row += fmt.Sprintf(" %.2f | %.2f |", x.CPU[refCallers]/10, x.SeqCPU/10)
			row += ratioCell(x.CPU[refCallers], dap, func(s *agg) float64 { return s.CPU[refCallers] }, c == "daprd")
		}
		row += fmt.Sprintf(" %d |\n", x.Errors)
		b.WriteString(row)
	}
	b.WriteString("\n")
}

// ratioCell is v ÷ ref's figure, or — without a reference.
func ratioCell(v float64, ref *agg, f func(*agg) float64, self bool) string {
	if ref == nil || self || f(ref) == 0 {
		return " — |"
	}
	return fmt.Sprintf(" %.2f |", v/f(ref))
}

func (r *report) memTable(b *strings.Builder) {
	dap, ok := r.mem["daprd"]
	b.WriteString("### Sidecar memory under load\n\n")
	b.WriteString("Peak over every throughput run of a round, median over rounds (MiB). Most of daprd's RSS is pages of its binary; RssAnon is heap and stacks.\n\n")
	b.WriteString("| sidecar | RSS | RssAnon | RSS ÷ daprd | RssAnon ÷ daprd |\n|---|--:|--:|--:|--:|\n")
	for _, c := range r.cons {
		if c == "direct" {
			continue
		}
		m := r.mem[c]
		if ok && c != "daprd" && dap.rss > 0 {
			fmt.Fprintf(b, "| %s | %.1f | %.1f | %.2f | %.2f |\n", contenderNames[c], m.rss, m.anon, m.rss/dap.rss, m.anon/dap.anon)
		} else {
			fmt.Fprintf(b, "| %s | %.1f | %.1f | — | — |\n", contenderNames[c], m.rss, m.anon)
		}
	}
	b.WriteString("\n")
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, " and ")
}

func joinFloats(v []float64) string {
	s := make([]string, len(v))
	for i, f := range v {
		s[i] = fmt.Sprintf("%.0f", f)
	}
	return strings.Join(s, " / ")
}

// relImg is the image path as seen from the document's folder.
func relImg(doc, png string) string {
	d := strings.Split(doc, "/")
	p := strings.Split(png, "/")
	i := 0
	for i < len(d)-1 && i < len(p)-1 && d[i] == p[i] {
		i++
	}
	return strings.Repeat("../", len(d)-1-i) + strings.Join(p[i:], "/")
}

// updateDoc replaces the generated part of the comparison section of path
// (between docBegin and docEnd) with md, or appends the section when the
// file has none. The rest of the file is left as it is.
func updateDoc(path, md string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	out, err := replaceSection(old, md)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o644)
}

func replaceSection(old []byte, md string) ([]byte, error) {
	block := docBegin + "\n" + md + docEnd + "\n"
	i := bytes.Index(old, []byte(docBegin))
	j := bytes.Index(old, []byte(docEnd))
	switch {
	case i < 0 && j < 0:
		out := bytes.TrimRight(old, "\n")
		if len(out) > 0 {
			out = append(out, "\n\n"...)
		}
		return append(out, block...), nil
	case i < 0 || j < i:
		return nil, fmt.Errorf("the markers %q and %q are not both present in that order", docBegin, docEnd)
	}
	j += len(docEnd)
	if j < len(old) && old[j] == '\n' {
		j++
	}
	out := append([]byte{}, old[:i]...)
	out = append(out, block...)
	return append(out, old[j:]...), nil
}
