package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	registryv1 "github.com/outrig/outrig/api/gen/outrig/registry/v1"
	"github.com/outrig/outrig/xds/resource"
)

// config is what the flags select.
type config struct {
	ns             []int
	modes          []string
	scenarios      []string // subset of allScenarios, in that order
	services       int
	endpoints      int // instances of the big service (app-00)
	smallEndpoints int // instances of each other service
	components     int
	reps           int
	client         string // raw or xds (delta mode only)
	model          endpointModel
	modelName      string
	timeout        time.Duration
	settle         time.Duration
	batch          int
	profileDir     string
	sharedWriteBuf bool     // the control plane's gRPC server releases write buffers after each flush
	cpEnv          []string // extra environment of the control-plane process
	verbose        bool     // log every change
}

// Scenario names, in report order.
const (
	scJoin   = "join"
	scLeave  = "leave"
	scConfig = "config"
)

var allScenarios = []string{scJoin, scLeave, scConfig}

// scenarioResult pools the changes of one scenario over the repetitions.
type scenarioResult struct {
	lat     []time.Duration // one per subscriber and change that saw it
	missed  int             // subscribers that did not see a change within the timeout
	bytes   []int64         // payload bytes received by the whole fleet, per change
	cpu     float64         // control-plane CPU seconds, summed over the changes
	changes int
}

// runResult is one (N, mode) run.
type runResult struct {
	n          int
	mode       string
	connect    time.Duration // until every subscriber had every type, traffic stopped and the control plane idled
	connectCPU float64       // control-plane CPU seconds for that
	rssSynced  float64       // control-plane RSS once every subscriber synced, MiB
	rssEnd     float64
	peak       float64 // control-plane VmHWM at the end, MiB
	simRSS     float64 // the simulator's own RSS once synced, MiB
	simCPU     float64 // the simulator's CPU seconds during the changes
	load       string  // load average when the changes ended
	failed     int64
	scen       map[string]*scenarioResult
}

func appName(i int) string { return fmt.Sprintf("app-%02d", i) }

func appNames(m int) []string {
	out := make([]string, m)
	for i := range out {
		out[i] = appName(i)
	}
	return out
}

func endpointOf(app string, i int) *configv1.Endpoint {
	return &configv1.Endpoint{
		InstanceId: fmt.Sprintf("%s-%04d", app, i),
		Address:    fmt.Sprintf("10.%d.%d.%d:50001", i>>16&255, i>>8&255, i&255),
		Zone:       []string{"zone-a", "zone-b", "zone-c"}[i%3],
	}
}

// componentYAML is one component file; marker is the value edited by the
// configuration change.
func componentYAML(i int, marker string) []byte {
	return fmt.Appendf(nil, `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: comp-%02d
spec:
  type: state.redis
  version: v1
  metadata:
  - name: redisHost
    value: 10.0.0.%d:6379
  - name: keyPrefix
    value: %s
`, i, i%250+1, marker)
}

func componentPath(dir string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("comp-%02d.yaml", i))
}

// runOne measures one fleet size against one protocol.
func runOne(cfg config, n int, mode string) (*runResult, error) {
	dir, err := os.MkdirTemp("", "xds-fleet-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	for i := range cfg.components {
		if err := os.WriteFile(componentPath(dir, i), componentYAML(i, "initial"), 0o600); err != nil {
			return nil, err
		}
	}
	cp, err := startChild(mode, dir, cfg.modelName, cfg.sharedWriteBuf, cfg.cpEnv)
	if err != nil {
		return nil, err
	}
	defer cp.stop()
	pid := strconv.Itoa(cp.pid())

	regConn, err := grpc.NewClient(cp.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer regConn.Close()
	reg := registryv1.NewRegistryClient(regConn)
	if err := registerAll(reg, cfg); err != nil {
		return nil, err
	}
	time.Sleep(200 * time.Millisecond) // the registry publishes at once; let the last batch go out

	res := &runResult{n: n, mode: mode, scen: map[string]*scenarioResult{}}
	f := newFleet(n)
	defer f.close()
	apps := appNames(cfg.services)
	subs := cfg.model.Subscribe(apps)

	cpu0, _ := procCPU(pid)
	t0 := time.Now()
	for start := 0; start < n; start += cfg.batch {
		end := min(n, start+cfg.batch)
		for i := start; i < end; i++ {
			var err error
			switch {
			case mode == "sotw":
				err = f.startSotw(cp.addr, i, cfg.model, subs)
			case cfg.client == "xds":
				err = f.startXDSClient(cp.addr, i, cfg.model, apps)
			default:
				err = f.startDelta(cp.addr, i, cfg.model, subs)
			}
			if err != nil {
				return nil, err
			}
		}
		if err := f.waitSyncedAtLeast(end, 2*time.Minute); err != nil {
			return nil, err
		}
	}
	synced := time.Since(t0)
	f.waitQuiet(300*time.Millisecond, 30*time.Second)
	waitIdle(pid, 60*time.Second)
	res.connect = time.Since(t0)
	logf("N=%d %s: synced after %v, traffic stopped and control plane idle after %v",
		n, mode, synced.Round(time.Millisecond), res.connect.Round(time.Millisecond))
	cpu1, _ := procCPU(pid)
	res.connectCPU = cpu1 - cpu0
	res.rssSynced, _, _ = procMem(pid)
	res.simRSS, _, _ = procMem("self")
	logf("N=%d %s: %d subscribers synced in %v (control plane %.1f CPU s, RSS %.0f MiB; simulator RSS %.0f MiB)",
		n, mode, n, res.connect.Round(time.Millisecond), res.connectCPU, res.rssSynced, res.simRSS)

	if cfg.profileDir != "" {
		if err := cp.command(fmt.Sprintf("prof-start %s", filepath.Join(cfg.profileDir, fmt.Sprintf("cpu-%s-%d.pprof", mode, n)))); err != nil {
			return nil, err
		}
	}
	sim0, _ := procCPU("self")
	m := &measurer{cfg: cfg, f: f, pid: pid}
	for _, sc := range allScenarios {
		res.scen[sc] = &scenarioResult{}
	}
	want := func(sc string) bool { return slices.Contains(cfg.scenarios, sc) }
	for rep := range cfg.reps {
		tag := fmt.Sprintf("%s-n%d-r%03d-x", mode, n, rep)
		if want(scJoin) || want(scLeave) {
			if err := m.joinLeave(reg, res, apps[0], rep, "join-"+tag); err != nil {
				return nil, err
			}
		}
		if want(scConfig) {
			marker := "edit-" + tag
			if err := m.change(res.scen[scConfig], present(resource.ComponentType, marker), func() error {
				return os.WriteFile(componentPath(dir, 0), componentYAML(0, marker), 0o600)
			}); err != nil {
				return nil, fmt.Errorf("config: %w", err)
			}
		}
	}
	sim1, _ := procCPU("self")
	res.simCPU = sim1 - sim0
	res.load = loadAvg()
	if cfg.profileDir != "" {
		if err := cp.command("prof-stop"); err != nil {
			return nil, err
		}
		if err := cp.command(fmt.Sprintf("heap %s", filepath.Join(cfg.profileDir, fmt.Sprintf("heap-%s-%d.pprof", mode, n)))); err != nil {
			return nil, err
		}
	}
	res.rssEnd, res.peak, _ = procMem(pid)
	res.failed = f.failed.Load()
	return res, nil
}

// registerAll registers the instances of every service through the
// control plane's Registry service.
func registerAll(reg registryv1.RegistryClient, cfg config) error {
	type job struct {
		app string
		i   int
	}
	jobs := make(chan job)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				_, err := reg.Register(context.Background(), &registryv1.RegisterRequest{
					AppId: j.app, Endpoint: endpointOf(j.app, j.i), Ttl: durationpb.New(time.Hour)})
				if err != nil {
					select {
					case errc <- fmt.Errorf("register %s #%d: %w", j.app, j.i, err):
					default:
					}
				}
			}
		}()
	}
	for a := range cfg.services {
		count := cfg.smallEndpoints
		if a == 0 {
			count = cfg.endpoints
		}
		for i := range count {
			jobs <- job{appName(a), i}
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// joinLeave registers instance inst of app, then deregisters it, measuring
// both changes.
func (m *measurer) joinLeave(reg registryv1.RegistryClient, res *runResult, app string, rep int, inst string) error {
	ep := endpointOf(app, 0)
	ep.InstanceId = inst
	ep.Address = fmt.Sprintf("10.200.%d.%d:50001", rep>>8&255, rep&255)
	ctx := context.Background()
	typeURL := m.cfg.model.TypeURL()
	if err := m.change(res.scen[scJoin], present(typeURL, inst), func() error {
		_, err := reg.Register(ctx, &registryv1.RegisterRequest{AppId: app, Endpoint: ep, Ttl: durationpb.New(time.Hour)})
		return err
	}); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if err := m.change(res.scen[scLeave], gone(typeURL, inst, m.cfg.model.Left(app, inst)), func() error {
		_, err := reg.Deregister(ctx, &registryv1.DeregisterRequest{AppId: app, InstanceId: inst})
		return err
	}); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	return nil
}

// measurer runs the changes of one run.
type measurer struct {
	cfg config
	f   *fleet
	pid string
	id  int64
}

// change arms p, triggers the change and waits until every subscriber saw
// it (or the timeout), then until traffic stops; it adds the latencies, the
// bytes received by the fleet and the control plane's CPU time to sr.
func (m *measurer) change(sr *scenarioResult, p probe, trigger func() error) error {
	m.id++
	b0 := m.f.bytes.n.Load()
	c0, err := procCPU(m.pid)
	if err != nil {
		return err
	}
	c := m.f.arm(m.id, p)
	if err := trigger(); err != nil {
		m.f.cur.Store(nil)
		return err
	}
	select {
	case <-c.done:
	case <-time.After(m.cfg.timeout):
	}
	m.f.cur.Store(nil)
	// Traffic stops before the control plane has handled the last ACKs:
	// wait for both, so that no work spills into the next change.
	m.f.waitQuiet(m.cfg.settle, 10*time.Second)
	waitIdle(m.pid, 30*time.Second)
	b1 := m.f.bytes.n.Load()
	c1, err := procCPU(m.pid)
	if err != nil {
		return err
	}
	var lat []time.Duration
	for i := range c.lat {
		if d := c.lat[i].Load(); d > 0 {
			lat = append(lat, time.Duration(d))
		} else {
			sr.missed++
		}
	}
	sr.lat = append(sr.lat, lat...)
	if m.cfg.verbose {
		logf("  change %d: p50 %.1f ms, max %.1f ms, %s, control plane %.2f CPU s",
			m.id, ms(pct(lat, 0.5)), ms(pct(lat, 1)), humanBytes(b1-b0), c1-c0)
	}
	sr.bytes = append(sr.bytes, b1-b0)
	sr.cpu += c1 - c0
	sr.changes++
	return nil
}
