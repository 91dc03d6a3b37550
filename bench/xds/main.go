// Command xds is the fleet simulator of the control plane: N simulated
// sidecars, each a real gRPC stream on its own connection, subscribe by
// wildcard to configuration and by name to the endpoints of M services of a
// control plane running in its own process (this binary re-executed; see
// child.go). For an instance joining, an instance leaving and a
// configuration change it measures the time until every subscriber has the
// change, the bytes the fleet received, and the control plane's CPU time
// and RSS, for delta xDS and, in the same run, for a state-of-the-world
// baseline (sotw.go).
//
//	go run ./bench/xds [-n 100,1000,5000] [-services 10] [-endpoints 1000] [-reps 5] [-out plot.png]
//
// It prints a Markdown report on stdout and progress on stderr.
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "xds:", err)
		os.Exit(1)
	}
}

func run() error {
	serve := flag.String("serve", "", "internal: run as the control plane of this protocol (delta or sotw)")
	dir := flag.String("dir", "", "internal: the control plane's resources directory")
	ns := flag.String("n", "100,1000,5000", "fleet sizes (simulated sidecars)")
	modes := flag.String("modes", "delta,sotw", "protocols to measure: delta, sotw")
	scen := flag.String("scenarios", "join,leave,config", "changes to measure: join, leave, config")
	services := flag.Int("services", 10, "services (app ids) every sidecar subscribes to")
	endpoints := flag.Int("endpoints", 1000, "instances of the big service app-00, where instances join and leave")
	small := flag.Int("small-endpoints", 5, "instances of each other service")
	components := flag.Int("components", 20, "components in the resources directory (one file each)")
	reps := flag.Int("reps", 5, "repetitions of each change")
	clientKind := flag.String("client", "raw", "delta subscribers: raw (bare delta ADS streams) or xds (xds/client.Client)")
	modelName := flag.String("model", "collection", "how endpoints are cut into resources (see model.go): collection")
	out := flag.String("out", "", "write a PNG plot of the results to this file")
	timeout := flag.Duration("timeout", 30*time.Second, "give up waiting for a change after this long")
	settle := flag.Duration("settle", 150*time.Millisecond, "after a change, wait until no byte arrived for this long")
	batch := flag.Int("batch", 250, "subscribers connected at a time")
	profileDir := flag.String("profile-dir", "", "write the control plane's CPU profile (changes only) and heap profile per run here")
	sharedWriteBuf := flag.Bool("shared-write-buffer", false, "run the control plane's gRPC server with grpc.SharedWriteBuffer(true) (default: as shipped)")
	verbose := flag.Bool("v", false, "log every change (its own p50 and max)")
	cpEnv := flag.String("cp-env", "", "extra environment of the control-plane process, comma-separated KEY=VALUE (e.g. GOMEMLIMIT=400MiB)")
	flag.Parse()

	if *serve != "" {
		return serveMain(*serve, *dir, *modelName, *sharedWriteBuf)
	}
	model, err := modelByName(*modelName)
	if err != nil {
		return err
	}
	cfg := config{
		modes: strings.Split(*modes, ","), services: *services, endpoints: *endpoints,
		smallEndpoints: *small, components: *components, reps: *reps, client: *clientKind,
		model: model, modelName: *modelName, timeout: *timeout, settle: *settle, batch: *batch,
		profileDir: *profileDir, sharedWriteBuf: *sharedWriteBuf, verbose: *verbose,
	}
	for _, kv := range strings.Split(*cpEnv, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("-cp-env: %q is not KEY=VALUE", kv)
		}
		cfg.cpEnv = append(cfg.cpEnv, kv)
	}
	for _, s := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-n: %q is not a positive integer", s)
		}
		cfg.ns = append(cfg.ns, n)
	}
	for _, sc := range strings.Split(*scen, ",") {
		if !slices.Contains(allScenarios, sc) {
			return fmt.Errorf("-scenarios: %q is none of %v", sc, allScenarios)
		}
	}
	for _, sc := range allScenarios {
		if strings.Contains(","+*scen+",", ","+sc+",") {
			cfg.scenarios = append(cfg.scenarios, sc)
		}
	}
	for _, m := range cfg.modes {
		if m != "delta" && m != "sotw" {
			return fmt.Errorf("-modes: %q is neither delta nor sotw", m)
		}
	}
	switch {
	case cfg.services < 1:
		return fmt.Errorf("-services must be at least 1, got %d", cfg.services)
	case cfg.endpoints < 1 || cfg.smallEndpoints < 1:
		return fmt.Errorf("-endpoints and -small-endpoints must be at least 1")
	case cfg.components < 1:
		return fmt.Errorf("-components must be at least 1, got %d", cfg.components)
	case cfg.reps < 1:
		return fmt.Errorf("-reps must be at least 1, got %d", cfg.reps)
	case cfg.client != "raw" && cfg.client != "xds":
		return fmt.Errorf("-client %q: want raw or xds", cfg.client)
	case cfg.batch < 1:
		return fmt.Errorf("-batch must be at least 1, got %d", cfg.batch)
	}
	if cfg.profileDir != "" {
		if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
			return err
		}
	}

	rep := &report{cfg: cfg, start: time.Now(), loadStart: loadAvg(), machine: cpuModel(),
		command: "go run ./bench/xds " + strings.Join(os.Args[1:], " ")}
	for _, n := range cfg.ns {
		for _, mode := range cfg.modes {
			r, err := runOne(cfg, n, mode)
			if err != nil {
				return fmt.Errorf("N=%d %s: %w", n, mode, err)
			}
			for _, sc := range cfg.scenarios {
				s := r.scen[sc]
				logf("N=%d %-5s %-6s p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms  missed %d  %s/change  CP %.0f ms CPU/change",
					n, mode, sc, ms(pct(s.lat, 0.50)), ms(pct(s.lat, 0.99)), ms(pct(s.lat, 1)), s.missed,
					humanBytes(median(s.bytes)), 1000*s.cpu/float64(max(s.changes, 1)))
			}
			rep.runs = append(rep.runs, r)
		}
	}
	rep.elapsed = time.Since(rep.start)
	rep.loadEnd = loadAvg()
	rep.write(os.Stdout)
	if *out != "" {
		if err := writePlot(*out, rep); err != nil {
			return err
		}
		logf("plot written to %s", *out)
	}
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}
