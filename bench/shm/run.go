package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

type server struct {
	cmd  *exec.Cmd
	addr string
	dir  string
}

// startServer re-executes this binary as the server of mode.
func startServer(mode string, cfg config) (*server, error) {
	dir, err := os.MkdirTemp("", "shmbench")
	if err != nil {
		return nil, err
	}
	s := &server{addr: filepath.Join(dir, "sock"), dir: dir}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(exe, "-serve", mode, "-addr", s.addr, "-spin", cfg.spin.String(),
		"-scenario", cfg.scenario, "-redis", cfg.redis)
	s.cmd.Stderr = os.Stderr
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		s.stop()
		return nil, fmt.Errorf("%s server did not start: %q %v", mode, line, err)
	}
	return s, nil
}

func (s *server) stop() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	os.RemoveAll(s.dir)
}

// quantiles reported, in percent.
var quantiles = [...]float64{50, 90, 99, 99.9}

type result struct {
	mode       string
	size, conc int
	p          [len(quantiles)]float64 // µs
	throughput float64                 // calls/s
	cpuPerCall float64                 // µs of client + server CPU per call
}

// run measures n calls spread over conc goroutines, after warm calls; every
// goroutine records into its own histogram.
func run(cl client, cfg config, mode string, size, conc, n, warm, serverPID int) (result, error) {
	callers := make([]caller, conc)
	for i := range callers {
		c, err := cl.newCaller()
		if err != nil {
			return result{}, err
		}
		callers[i] = c
	}
	req, wantResp := make([]byte, size), size
	for i := range req {
		req[i] = byte(i)
	}
	if cfg.scenario == "redis" {
		req = []byte(redisKey(size))
	}
	perG, warmPerG := (n+conc-1)/conc, (warm+conc-1)/conc
	hists := make([]*hdrhistogram.Histogram, conc)
	errs := make([]error, conc)
	var warmed, done sync.WaitGroup
	startCh := make(chan struct{})
	warmed.Add(conc)
	done.Add(conc)
	for g := range callers {
		hists[g] = hdrhistogram.New(100, 10_000_000_000, 3) // ns
		go func() {
			defer done.Done()
			c := callers[g]
			for i := 0; i < warmPerG && errs[g] == nil; i++ {
				errs[g] = roundTrip(c, req, wantResp)
			}
			warmed.Done()
			<-startCh
			for i := 0; i < perG && errs[g] == nil; i++ {
				t0 := time.Now()
				errs[g] = roundTrip(c, req, wantResp)
				_ = hists[g].RecordValue(time.Since(t0).Nanoseconds())
			}
		}()
	}
	warmed.Wait()
	cpu0 := cpuTime(serverPID)
	t0 := time.Now()
	close(startCh)
	done.Wait()
	wall := time.Since(t0)
	cpu := cpuTime(serverPID) - cpu0
	for _, err := range errs {
		if err != nil {
			return result{}, err
		}
	}
	total := hdrhistogram.New(100, 10_000_000_000, 3)
	for _, h := range hists {
		total.Merge(h)
	}
	calls := perG * conc
	r := result{mode: mode, size: size, conc: conc,
		throughput: float64(calls) / wall.Seconds(),
		cpuPerCall: float64(cpu.Nanoseconds()) / 1e3 / float64(calls)}
	for i, q := range quantiles {
		r.p[i] = float64(total.ValueAtQuantile(q)) / 1e3
	}
	return r, nil
}

func roundTrip(c caller, req []byte, want int) error {
	n, err := c.call(req)
	if err == nil && n != want {
		err = fmt.Errorf("response of %d bytes, want %d", n, want)
	}
	return err
}

// cpuTime is the CPU time used so far by this process and the server.
func cpuTime(serverPID int) time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	self := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if serverPID == 0 {
		return self
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", serverPID))
	if err != nil {
		return self
	}
	// Fields after the parenthesised command: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return self + time.Duration(ut+st)*time.Second/ticksPerSecond
}
