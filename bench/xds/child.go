package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/outrig/outrig/controlplane"
	"github.com/outrig/outrig/xds/registry"
)

// The control plane under test runs in its own process (this binary
// re-executed with -serve), so that its CPU time and RSS can be read from
// /proc without the simulated sidecars in them. It is the controlplane
// package as `outrig control-plane` runs it (resources directory watched
// with fsnotify, registry, delta xDS on one gRPC server), with leases long
// enough that nothing expires during a run and no endpoints hold after
// start; with -serve sotw it also serves the SotW baseline (sotw.go). With
// -shared-write-buffer its gRPC server gets grpc.SharedWriteBuffer(true)
// (through Options.GRPCOptions), to measure what that option saves.
//
// The parent talks to it over stdin/stdout: the child prints "READY addr"
// once serving, then answers each command line with "ok" or "err ...":
//
//	prof-start PATH   start a CPU profile
//	prof-stop         stop it
//	heap PATH         write a heap profile (after a GC)
//
// The child exits when its stdin closes.

// serveMain is the child's main.
func serveMain(mode, dir, modelName string, sharedWriteBuffer bool) error {
	model, err := modelByName(modelName)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts := controlplane.Options{
		ResourcesDir:  dir,
		ListenAddr:    "127.0.0.1:0",
		Logger:        log,
		Registry:      registry.Options{DefaultTTL: time.Hour, MaxTTL: time.Hour},
		EndpointsHold: -1,
	}
	if sharedWriteBuffer {
		opts.GRPCOptions = append(opts.GRPCOptions, grpc.SharedWriteBuffer(true))
	}
	var hub *sotwHub
	switch mode {
	case "delta":
	case "sotw":
		hub = newSotwHub(model, log)
		opts.Services = []controlplane.Service{hub}
	default:
		return fmt.Errorf("-serve %q: want delta or sotw", mode)
	}
	cp, err := controlplane.New(opts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, stop, err := cp.Start(ctx)
	if err != nil {
		return err
	}
	defer stop()
	if hub != nil {
		go func() {
			if err := hub.follow(ctx, addr); err != nil {
				log.Error("sotw hub stopped", "error", err)
			}
		}()
		select {
		case <-hub.ready:
		case <-time.After(10 * time.Second):
			return errors.New("sotw hub: no answer from the control plane within 10s")
		}
	}
	fmt.Printf("READY %s\n", addr)

	in := bufio.NewScanner(os.Stdin)
	var prof *os.File
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		var err error
		switch cmd {
		case "prof-start":
			if prof, err = os.Create(arg); err == nil {
				err = pprof.StartCPUProfile(prof)
			}
		case "prof-stop":
			pprof.StopCPUProfile()
			if prof != nil {
				err = prof.Close()
				prof = nil
			}
		case "heap":
			var f *os.File
			if f, err = os.Create(arg); err == nil {
				before := memSummary()
				runtime.GC()
				err = errors.Join(pprof.WriteHeapProfile(f), f.Close(),
					os.WriteFile(arg+".mem.txt", []byte("before GC: "+before+"\nafter GC:  "+memSummary()+"\n"), 0o644))
			}
		default:
			err = fmt.Errorf("unknown command %q", cmd)
		}
		if err != nil {
			fmt.Printf("err %v\n", err)
		} else {
			fmt.Println("ok")
		}
	}
	return nil
}

// child is the parent's handle on a control-plane process.
type child struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string // the child's stdout, closed when it ends
	addr  string
	mu    sync.Mutex
}

func startChild(mode, dir, modelName string, sharedWriteBuffer bool, env []string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	cmd := exec.Command(exe, "-serve", mode, "-dir", dir, "-model", modelName,
		fmt.Sprintf("-shared-write-buffer=%v", sharedWriteBuffer))
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(), env...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	c := &child{cmd: cmd, in: in, lines: make(chan string, 4)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(outPipe)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	line, err := c.readLine(20 * time.Second)
	if err != nil || !strings.HasPrefix(line, "READY ") {
		c.stop()
		return nil, fmt.Errorf("control plane (%s) did not start: %q %v", mode, line, err)
	}
	c.addr = strings.TrimPrefix(line, "READY ")
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) readLine(timeout time.Duration) (string, error) {
	select {
	case line, ok := <-c.lines:
		if !ok {
			return "", errors.New("control plane exited")
		}
		return line, nil
	case <-time.After(timeout):
		return "", errors.New("control plane did not answer in time")
	}
}

// command sends one command line and waits for its answer.
func (c *child) command(line string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := fmt.Fprintln(c.in, line); err != nil {
		return err
	}
	ans, err := c.readLine(30 * time.Second)
	if err != nil {
		return err
	}
	if ans != "ok" {
		return fmt.Errorf("control plane: %s: %s", line, ans)
	}
	return nil
}

// stop closes the child's stdin and waits for it to exit (killing it after 10s).
func (c *child) stop() {
	_ = c.in.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// memSummary says where the process's memory is, in MiB, from the Go
// runtime's view (written next to each heap profile).
func memSummary() string {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
	return fmt.Sprintf("heap in use %.0f, heap idle %.0f (released %.0f), stacks %.0f, other runtime %.0f, total from OS %.0f, goroutines %d, GC goal %.0f",
		mib(m.HeapInuse), mib(m.HeapIdle), mib(m.HeapReleased), mib(m.StackInuse),
		mib(m.MSpanSys+m.MCacheSys+m.BuckHashSys+m.GCSys+m.OtherSys), mib(m.Sys), runtime.NumGoroutine(), mib(m.NextGC))
}
