package main

import (
	"flag"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestMain lets the test binary play the control-plane child that runOne
// starts (it re-executes its own binary with -serve).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-serve" {
		fs := flag.NewFlagSet("child", flag.ExitOnError)
		serve := fs.String("serve", "", "")
		dir := fs.String("dir", "", "")
		model := fs.String("model", "", "")
		swb := fs.Bool("shared-write-buffer", false, "")
		_ = fs.Parse(os.Args[1:])
		if err := serveMain(*serve, *dir, *model, *swb); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func smallConfig(client string) config {
	return config{
		ns: []int{4}, modes: []string{"delta", "sotw"}, scenarios: allScenarios,
		services: 3, endpoints: 40, smallEndpoints: 2, components: 6, reps: 2,
		client: client, model: collectionModel{}, modelName: "collection",
		timeout: 10 * time.Second, settle: 50 * time.Millisecond, batch: 2,
	}
}

// TestRunOneSeesEveryChange runs a tiny fleet against a real control-plane
// process for both protocols: every subscriber sees every change, and SotW
// resends the whole component set where delta sends one component.
func TestRunOneSeesEveryChange(t *testing.T) {
	cfg := smallConfig("raw")
	n := cfg.ns[0]
	runs := map[string]*runResult{}
	for _, mode := range cfg.modes {
		r, err := runOne(cfg, n, mode)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		runs[mode] = r
		for _, sc := range cfg.scenarios {
			s := r.scen[sc]
			if s.missed != 0 || len(s.lat) != n*cfg.reps {
				t.Errorf("%s %s: %d latencies, %d missed; want %d and 0", mode, sc, len(s.lat), s.missed, n*cfg.reps)
			}
			for _, b := range s.bytes {
				if b <= 0 {
					t.Errorf("%s %s: a change received %d bytes", mode, sc, b)
				}
			}
		}
		if r.peak <= 0 || r.failed != 0 {
			t.Errorf("%s: control-plane peak RSS %.0f MiB, %d failed streams", mode, r.peak, r.failed)
		}
	}
	d, s := median(runs["delta"].scen[scConfig].bytes), median(runs["sotw"].scen[scConfig].bytes)
	if s < 2*d {
		t.Errorf("config change: SotW %d bytes, delta %d; SotW resends all %d components and should be at least twice delta",
			s, d, cfg.components)
	}
}

// TestRunOneXDSClient runs the delta fleet with xds/client instances.
func TestRunOneXDSClient(t *testing.T) {
	cfg := smallConfig("xds")
	cfg.ns, cfg.reps = []int{2}, 1
	r, err := runOne(cfg, 2, "delta")
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range cfg.scenarios {
		if s := r.scen[sc]; s.missed != 0 || len(s.lat) != 2 {
			t.Errorf("%s: %d latencies, %d missed; want 2 and 0", sc, len(s.lat), s.missed)
		}
	}
}

func TestProcStat(t *testing.T) {
	// Burn a little CPU so that at least one clock tick is accounted.
	deadline := time.Now().Add(30 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	cpu, err := procCPU("self")
	if err != nil || cpu <= 0 {
		t.Errorf("procCPU(self) = %v, %v; want > 0", cpu, err)
	}
	rss, peak, err := procMem("self")
	if err != nil || rss <= 0 || peak < rss {
		t.Errorf("procMem(self) = %v, %v, %v; want 0 < rss <= peak", rss, peak, err)
	}
	if _, err := procCPU("0"); err == nil {
		t.Error("procCPU of pid 0 succeeded")
	}
}
