package main

import (
	"strings"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"
)

func TestReplaceSectionKeepsTheRestOfTheFile(t *testing.T) {
	orig := "# Benchmarks\n\n## Governance chain\n\nfigures\n"
	first, err := replaceSection([]byte(orig), "## Sidecar vs direct access vs Dapr\n\nrun 1\n")
	if err != nil {
		t.Fatal(err)
	}
	want := orig + "\n" + docBegin + "\n## Sidecar vs direct access vs Dapr\n\nrun 1\n" + docEnd + "\n"
	if string(first) != want {
		t.Fatalf("appended section:\n%s\nwant:\n%s", first, want)
	}
	// Hand-written notes after the end marker and sections after it survive a rerun.
	edited := string(first) + "\n### Profile notes\n\nkept\n\n## Later section\n\nalso kept\n"
	second, err := replaceSection([]byte(edited), "## Sidecar vs direct access vs Dapr\n\nrun 2\n")
	if err != nil {
		t.Fatal(err)
	}
	got := string(second)
	if strings.Contains(got, "run 1") || !strings.Contains(got, "run 2") {
		t.Fatalf("generated part not replaced:\n%s", got)
	}
	for _, keep := range []string{"## Governance chain\n\nfigures\n", "### Profile notes\n\nkept\n", "## Later section\n\nalso kept\n"} {
		if !strings.Contains(got, keep) {
			t.Fatalf("lost %q:\n%s", keep, got)
		}
	}
	if strings.Count(got, docBegin) != 1 || strings.Count(got, docEnd) != 1 {
		t.Fatalf("markers duplicated:\n%s", got)
	}
}

func TestReplaceSectionRejectsABrokenMarkerPair(t *testing.T) {
	if _, err := replaceSection([]byte("x\n"+docEnd+"\n"), "new"); err == nil {
		t.Fatal("an end marker without a begin marker was accepted")
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{9, 1, 5}, 5}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestPayloadIsJSONOfTheExactSize(t *testing.T) {
	for _, n := range []int{100, 4096} {
		p := payload(n)
		if len(p) != n || !strings.HasPrefix(string(p), `{"d":"x`) || !strings.HasSuffix(string(p), `x"}`) {
			t.Fatalf("payload(%d) = %d bytes %.10q…", n, len(p), p)
		}
	}
}

func TestRelImg(t *testing.T) {
	if got := relImg("docs/benchmarks.md", "docs/img/compare.png"); got != "img/compare.png" {
		t.Fatalf("relImg = %q", got)
	}
	if got := relImg("README.md", "docs/img/compare.png"); got != "docs/img/compare.png" {
		t.Fatalf("relImg = %q", got)
	}
}

func TestAreaOf(t *testing.T) {
	for _, c := range []struct {
		kernel bool
		sym    string
		want   string
	}{
		{true, "finish_task_switch.isra.0", "kernel (syscalls, scheduling, network stack)"},
		{false, "runtime.copystack", "Go runtime (scheduler, GC, allocation)"},
		{false, "internal/runtime/syscall/linux.Syscall6", "Go runtime (scheduler, GC, allocation)"},
		{false, "google.golang.org/grpc/internal/transport.(*http2Server).HandleStreams", "grpc-go and http2"},
		{false, "github.com/outrig/outrig/api/shm.(*serverConn).run", "api/shm"},
		{false, "github.com/outrig/outrig/service.(*Service).GetState", "outrig (service, governance, state, transports)"},
		{false, "github.com/redis/go-redis/v9.(*baseClient).process", "go-redis"},
		{false, "internal/poll.(*FD).Write", "Go syscall and net wrappers"},
		{false, "bufio.(*Writer).Flush", "other Go code"},
	} {
		if got := areaOf(c.kernel, c.sym); got != c.want {
			t.Errorf("areaOf(%v, %q) = %q, want %q", c.kernel, c.sym, got, c.want)
		}
	}
}

func TestAggregateMergesLatencyAndTakesMediansOfTheRest(t *testing.T) {
	var ss []sample
	for r, base := range []int64{100, 200, 300} { // µs
		h := hdrhistogram.New(1, int64(callTimeout), 3)
		for i := range int64(1000) {
			_ = h.RecordValue((base + i%10) * 1000)
		}
		ss = append(ss, sample{Round: r + 1, P50: float64(base), hist: h,
			Ops: map[int]float64{16: float64(1000 * (r + 1))}, CPU: map[int]float64{16: float64(10 * (3 - r))}})
	}
	a := aggregate(ss)
	if a.P50 < 199 || a.P50 > 211 { // the middle third of 3000 calls
		t.Errorf("merged p50 = %v µs, want about 200-210", a.P50)
	}
	if a.P999 < 300 {
		t.Errorf("merged p99.9 = %v µs, want in the slowest round's range", a.P999)
	}
	if a.Ops[16] != 2000 || a.CPU[16] != 20 {
		t.Errorf("medians: ops %v cpu %v, want 2000 and 20", a.Ops[16], a.CPU[16])
	}
	if got := joinFloats(a.p50s); got != "100 / 200 / 300" {
		t.Errorf("p50 by round = %q", got)
	}
}

// Direct GET's p50 is bimodal between rounds; the latency targets must
// hold against its fastest round too, not only against the merged p50.
func TestLatencyTargetsHoldAgainstDirectsFastestRound(t *testing.T) {
	get := func(p50 float64, rounds ...float64) *agg {
		return &agg{sample: sample{P50: p50}, p50s: rounds}
	}
	for _, c := range []struct {
		shm  float64
		met  bool
		base string
	}{
		{shm: 15, met: true, base: "fastest round (10.0 µs)"},
		{shm: 30, met: false, base: "fastest round (10.0 µs)"}, // −19 µs against the merged p50, +20 against round 1
		{shm: 70, met: false, base: "over all rounds (49.0 µs)"},
	} {
		r := &report{agg: map[string]map[string]*agg{"get100": {
			"direct": get(49, 10, 51, 52),
			"shm":    get(c.shm),
		}}}
		v := r.verdicts()[0]
		if v.met != c.met || !strings.Contains(v.measured, c.base) {
			t.Errorf("shm p50 %v µs: met %v, measured %q; want met %v against direct's %s", c.shm, v.met, v.measured, c.met, c.base)
		}
	}
}
