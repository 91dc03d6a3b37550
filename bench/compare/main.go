// Command compare measures, in one run on one machine, an application
// reaching Redis and another application five ways: directly (go-redis, a
// plain gRPC call), through an Outrig sidecar over gRPC on TCP, over gRPC on
// a Unix socket and over shared memory, and through Dapr's daprd v1.16.0.
// Operations: GetState and SaveState of 100 B and 4 KiB, Publish, Invoke
// (an echo through two sidecars). Contenders alternate in rounds; the
// report gives the median over rounds.
//
//	go run ./bench/compare [-quick] [-rounds 3] [-calls 20000] [-doc docs/benchmarks.md] [-png docs/img/compare.png]
//
// It starts and stops every process it needs (Redis through
// scripts/backends.sh if nothing answers on 127.0.0.1:6379, Outrig's
// control plane and sidecars from bin/outrig, two daprds built by
// bench/build-daprd.sh), prints the Markdown report on stdout and progress
// on stderr, and rewrites its own section of docs/benchmarks.md. See
// README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// config is the run's parameters, from flags.
type config struct {
	root       string
	redis      string
	outrigBin  string
	slimBin    string
	daprdBin   string
	contenders map[string]bool
	ops        []operation
	rounds     int
	calls      int
	warm       int
	callers    []int
	loadWarm   time.Duration
	loadTime   time.Duration
	quick      bool
	doc, png   string
	jsonOut    string
	profile    string
	profileDur time.Duration
	profileN   int
	command    string
	commit     string
	sidecarEnv []string
	waitLoad   float64
	waitMax    time.Duration
}

func run() error {
	quick := flag.Bool("quick", false, "smoke run (~2 min): 1 round, 2,000 calls, 0.5 s per load level; does not touch docs unless -doc/-png are given")
	rounds := flag.Int("rounds", 3, "rounds; each contender runs every operation once per round, in rotating order")
	calls := flag.Int("calls", 10000, "sequential calls recorded per contender, operation and round (after -warm); the latency percentiles come from all rounds' calls together")
	warm := flag.Int("warm", 500, "sequential warm-up calls, not recorded")
	callers := flag.String("callers", "16,64", "concurrent caller counts of the throughput runs (1 caller is the sequential run)")
	loadTime := flag.Duration("load-time", time.Second, "measured time of each throughput run")
	loadWarm := flag.Duration("load-warm", 200*time.Millisecond, "unmeasured start of each throughput run")
	ops := flag.String("ops", "all", "operations, comma-separated: get100,getmem,get4k,save100,save4k,publish,invoke")
	cont := flag.String("contenders", "all", "contenders, comma-separated: "+strings.Join(contenderKeys, ","))
	redis := flag.String("redis", "127.0.0.1:6379", "Redis used by every contender")
	outrigBin := flag.String("outrig", "", "outrig binary (relative to the repository root); empty: build ./cmd/outrig into the run's temporary folder")
	slimBin := flag.String("outrig-slim", "", "outrig binary of the \"slim\" contender (make build-slim); empty: build ./cmd/outrig with every backend but Redis left out")
	daprdBin := flag.String("daprd", "", "daprd binary; empty: the one bench/build-daprd.sh builds or finds in ~/.cache/outrig")
	doc := flag.String("doc", "docs/benchmarks.md", "rewrite this file's \"Sidecar vs direct access vs Dapr\" section; empty: don't")
	png := flag.String("png", "docs/img/compare.png", "write the plot here; empty: don't")
	jsonOut := flag.String("json", "", "also write every sample as JSON here")
	profile := flag.String("profile", "", "after the run, profile this contender's sidecar (tcp, uds, shm, daprd) under GetState 100 B load with perf")
	profileDur := flag.Duration("profile-time", 10*time.Second, "length of the -profile recording")
	profileN := flag.Int("profile-callers", refCallers, "concurrent callers during the -profile recording")
	sidecarEnv := flag.String("sidecar-env", "", "extra environment of every sidecar (Outrig and daprd alike), space-separated K=V, e.g. GOMAXPROCS=1; printed in the report")
	waitLoad := flag.Float64("wait-load", 0, "before starting, wait until the 1-minute load average is at most this (0: don't wait)")
	waitMax := flag.Duration("wait-max", 30*time.Minute, "longest -wait-load waits; then the run starts anyway")
	commit := flag.String("commit", "", "the code measured, as printed in the report; empty: git describe --always --dirty of the repository")
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })

	cfg := config{redis: *redis, outrigBin: *outrigBin, slimBin: *slimBin, daprdBin: *daprdBin, rounds: *rounds, calls: *calls,
		warm: *warm, loadTime: *loadTime, loadWarm: *loadWarm, quick: *quick, doc: *doc, png: *png,
		jsonOut: *jsonOut, profile: *profile, commit: *commit, waitLoad: *waitLoad, waitMax: *waitMax, profileDur: *profileDur, profileN: *profileN,
		command: "go run ./bench/compare " + strings.Join(os.Args[1:], " ")}
	if *quick {
		if !set["rounds"] {
			cfg.rounds = 1
		}
		if !set["calls"] {
			cfg.calls = 3000
		}
		if !set["warm"] {
			cfg.warm = 200
		}
		if !set["load-time"] {
			cfg.loadTime = 500 * time.Millisecond
		}
		if !set["doc"] {
			cfg.doc = ""
		}
		if !set["png"] {
			cfg.png = ""
		}
	}
	cfg.sidecarEnv = strings.Fields(*sidecarEnv)
	if n := cfg.rounds * cfg.calls; n < 20000 && !cfg.quick {
		progress("note: %d rounds × %d calls = %d recorded calls per contender and operation, fewer than the 20,000 of issue 6", cfg.rounds, cfg.calls, n)
	}
	if cfg.rounds < 1 || cfg.calls < 1 || cfg.warm < 0 || cfg.loadTime <= 0 {
		return errors.New("-rounds and -calls must be ≥ 1, -warm ≥ 0, -load-time > 0")
	}
	for _, s := range strings.Split(*callers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 {
			return fmt.Errorf("-callers: %q is not an integer ≥ 2", s)
		}
		cfg.callers = append(cfg.callers, n)
	}
	var err error
	if cfg.ops, err = pickOps(*ops); err != nil {
		return err
	}
	if cfg.contenders, err = pickContenders(*cont); err != nil {
		return err
	}
	if cfg.profile != "" && (cfg.profile == "direct" || !slices.Contains(contenderKeys, cfg.profile)) {
		return fmt.Errorf("-profile %q: want one of tcp, uds, shm, daprd", cfg.profile)
	}
	if cfg.profile != "" {
		cfg.contenders[cfg.profile] = true
	}
	if cfg.root, err = repoRoot(); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := waitForLoad(ctx, cfg.waitLoad, cfg.waitMax); err != nil {
		return err
	}
	meta := newMeta(cfg)
	progress("load average at start: %s", meta.LoadStart)
	e, err := setup(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.teardown()
	samples, err := measureAll(ctx, cfg, e, &meta)
	if err != nil {
		return err
	}
	meta.LoadEnd = loadAvg()
	meta.End = time.Now()
	progress("load average at end: %s", meta.LoadEnd)
	rep := buildReport(cfg, meta, samples)
	md := rep.markdown()
	fmt.Print(md)
	if cfg.jsonOut != "" {
		b, _ := json.MarshalIndent(samples, "", " ")
		if err := os.WriteFile(cfg.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	if cfg.png != "" {
		p := inRoot(cfg.root, cfg.png)
		if err := writePlot(p, rep); err != nil {
			return err
		}
		progress("wrote %s", p)
	}
	if cfg.doc != "" {
		p := inRoot(cfg.root, cfg.doc)
		if err := updateDoc(p, md); err != nil {
			return err
		}
		progress("rewrote the comparison section of %s", p)
	}
	if cfg.profile != "" {
		return profileSidecar(ctx, cfg, e)
	}
	return nil
}

// measureAll runs the rounds: in round r, operation i, the contenders
// start at offset r+i of the table order, so each one runs early and late.
func measureAll(ctx context.Context, cfg config, e *env, m *meta) ([]sample, error) {
	var order []*contender
	for _, k := range contenderKeys {
		if c := e.cs[k]; c != nil {
			order = append(order, c)
		}
	}
	fns := map[string]map[string]callFn{}
	for _, op := range cfg.ops {
		fns[op.key] = map[string]callFn{}
		for _, c := range order {
			if op.mem && c.key == "direct" {
				continue
			}
			fn, err := prepare(ctx, c, op)
			if err != nil {
				return nil, err
			}
			fns[op.key][c.key] = fn
		}
	}
	var out []sample
	for r := range cfg.rounds {
		progress("round %d of %d (load %s)", r+1, cfg.rounds, loadAvg())
		m.RoundLoads = append(m.RoundLoads, fmt.Sprintf("%.2f", load1()))
		for i, op := range cfg.ops {
			for j := range order {
				c := order[(j+r+i)%len(order)]
				if fns[op.key][c.key] == nil {
					continue
				}
				s, err := measureOne(ctx, cfg, c, op, fns[op.key][c.key])
				if err != nil {
					return nil, fmt.Errorf("round %d, %s, %s: %w", r+1, op.name, c.name, err)
				}
				if err := e.checkAlive(); err != nil {
					return nil, err
				}
				s.Round = r + 1
				out = append(out, s)
				progress("  %-24s %-26s p50 %7.1f µs  p99 %7.1f µs  1: %6.0f/s  %s", op.name, c.name, s.P50, s.P99, s.SeqOps, s.loadLine())
			}
		}
	}
	return out, nil
}

// measureOne is one contender on one operation: the sequential run, then
// each concurrency level.
func measureOne(ctx context.Context, cfg config, c *contender, op operation, fn callFn) (sample, error) {
	s := sample{Op: op.key, Contender: c.key, Ops: map[int]float64{}, CPU: map[int]float64{}, Load1: load1()}
	var pids []int
	memPid := 0
	if c.sidecar != nil {
		pids = append(pids, c.sidecar.pid())
		memPid = c.sidecar.pid()
		if op.kind == opInvoke {
			pids = append(pids, c.callee.pid())
		}
	}
	seq, err := sequential(ctx, fn, cfg.warm, cfg.calls, pids)
	if err != nil {
		return s, err
	}
	if seq.errs > 0 {
		s.Errors += seq.errs
		progress("  %s %s: %d errors in the sequential run, last: %v", op.name, c.name, seq.errs, seq.lastErr)
	}
	if seq.calls == 0 {
		return s, fmt.Errorf("no call succeeded: %w", seq.lastErr)
	}
	us := func(v int64) float64 { return float64(v) / 1e3 }
	s.P50, s.P90 = us(seq.hist.ValueAtQuantile(50)), us(seq.hist.ValueAtQuantile(90))
	s.P99, s.P999 = us(seq.hist.ValueAtQuantile(99)), us(seq.hist.ValueAtQuantile(99.9))
	s.hist = seq.hist
	s.SeqOps = float64(seq.calls) / seq.elapsed.Seconds()
	if len(pids) > 0 {
		s.SeqCPU = seq.cpu / float64(seq.calls) * 1e6
	}
	for _, n := range cfg.callers {
		l, err := concurrent(ctx, fn, n, cfg.loadWarm, cfg.loadTime, pids, memPid)
		if err != nil {
			return s, err
		}
		if l.errs > 0 {
			s.Errors += l.errs
			progress("  %s %s: %d errors with %d callers, last: %v", op.name, c.name, l.errs, n, l.lastErr)
		}
		s.Ops[n] = l.opsPerSec()
		if len(pids) > 0 && l.calls > 0 {
			s.CPU[n] = l.cpu / float64(l.calls) * 1e6
		}
		s.RSS, s.Anon = max(s.RSS, l.mem.rss), max(s.Anon, l.mem.anon)
	}
	return s, nil
}

// waitForLoad waits until the 1-minute load average is at most limit, or
// for at most d.
func waitForLoad(ctx context.Context, limit float64, d time.Duration) error {
	if limit <= 0 {
		return nil
	}
	deadline := time.Now().Add(d)
	for l := load1(); l > limit; l = load1() {
		if time.Now().After(deadline) {
			progress("load %.2f still above %.2f after %v: starting anyway", l, limit, d)
			return nil
		}
		progress("load %.2f > %.2f: waiting", l, limit)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(15 * time.Second):
		}
	}
	return nil
}

func pickOps(list string) ([]operation, error) {
	if list == "all" {
		return operations, nil
	}
	var out []operation
	for _, k := range strings.Split(list, ",") {
		i := slices.IndexFunc(operations, func(o operation) bool { return o.key == strings.TrimSpace(k) })
		if i < 0 {
			return nil, fmt.Errorf("-ops: unknown operation %q", k)
		}
		out = append(out, operations[i])
	}
	return out, nil
}

func pickContenders(list string) (map[string]bool, error) {
	m := map[string]bool{}
	if list == "all" {
		for _, k := range contenderKeys {
			m[k] = true
		}
		return m, nil
	}
	for _, k := range strings.Split(list, ",") {
		k = strings.TrimSpace(k)
		if !slices.Contains(contenderKeys, k) {
			return nil, fmt.Errorf("-contenders: unknown contender %q (want %s)", k, strings.Join(contenderKeys, ","))
		}
		m[k] = true
	}
	return m, nil
}

// inRoot resolves a relative path against the repository root.
func inRoot(root, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

// repoRoot is the nearest directory upwards holding go.work.
func repoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		p := filepath.Dir(d)
		if p == d {
			return "", errors.New("run from inside the repository (no go.work found upwards)")
		}
		d = p
	}
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
