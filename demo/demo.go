// Package demo runs Outrig's end-to-end demo: a control plane, two sidecars
// (checkout and orders) and two SDK apps from examples/, each a separate
// process, on in-memory components. It prints every step, a summary, and
// leaves no process behind.
package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configure a demo run.
type Options struct {
	// Outrig is the path of the outrig binary; CheckoutApp and OrdersApp the example apps.
	Outrig, CheckoutApp, OrdersApp string
	// Resources is the folder of YAML the control plane starts with (copied).
	Resources string
	// Extra holds the files dropped in while the demo runs (audit.yaml).
	Extra string
	// Out receives the narrative.
	Out io.Writer
	// Keep leaves the work folder (logs) in place.
	Keep bool
	// Backends that must answer before the demo starts, name → address.
	Backends map[string]string
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
}

type runner struct {
	opts  Options
	dir   string
	mu    sync.Mutex
	procs []*proc
}

// Run runs the demo; it returns an error when a step failed.
func Run(ctx context.Context, opts Options) (err error) {
	for name, addr := range opts.Backends {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return fmt.Errorf("backend %s at %s does not answer (%v): run `scripts/backends.sh up %s`", name, addr, err, name)
		}
		c.Close()
	}
	dir, err := os.MkdirTemp("", "outrig-demo-")
	if err != nil {
		return err
	}
	r := &runner{opts: opts, dir: dir}
	defer func() {
		r.stopAll()
		if opts.Keep || err != nil {
			fmt.Fprintf(opts.Out, "logs kept in %s\n", dir)
		} else {
			_ = os.RemoveAll(dir)
		}
	}()
	res := filepath.Join(dir, "resources")
	if err := copyDir(opts.Resources, res); err != nil {
		return fmt.Errorf("copy resources: %w", err)
	}
	r.say("== Outrig demo (work folder %s)", dir)

	cpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	if _, err := r.start("control-plane", opts.Outrig, nil, "control-plane", "--resources", res, "--listen", cpAddr); err != nil {
		return err
	}
	if err := waitTCP(ctx, cpAddr, 20*time.Second); err != nil {
		return fmt.Errorf("control plane: %w (see %s)", err, r.logOf("control-plane"))
	}
	r.say("started control plane on %s, watching %s", cpAddr, res)

	socks := map[string]string{}
	for _, app := range []string{"orders", "checkout"} {
		admin, err := freeAddr()
		if err != nil {
			return err
		}
		sock := filepath.Join(dir, app+".sock")
		socks[app] = "unix://" + sock
		if _, err := r.start("sidecar-"+app, opts.Outrig, nil, "sidecar", "--app-id", app, "--control-plane", cpAddr,
			"--listen", "unix://"+sock, "--admin-listen", admin, "--state-file", filepath.Join(dir, app+".config.json")); err != nil {
			return err
		}
		if err := waitReady(ctx, "http://"+admin+"/readyz", 20*time.Second); err != nil {
			return fmt.Errorf("sidecar %s not ready: %w (see %s)", app, err, r.logOf("sidecar-"+app))
		}
		r.say("started sidecar %-8s app API %s, admin http://%s", app, socks[app], admin)
	}

	orders, err := r.start("app-orders", opts.OrdersApp, []string{"OUTRIG_ADDRESS=" + socks["orders"]})
	if err != nil {
		return err
	}
	if err := waitLine(orders.log, "orders: ready", 15*time.Second); err != nil {
		return fmt.Errorf("orders app: %w (see %s)", err, orders.log)
	}
	r.say("started app orders (serves CreateOrder/GetOrder, subscribes to events/payments)")
	return r.runCheckout(ctx, socks["checkout"], res)
}

// runCheckout runs the driver app, reacting to its WAIT lines and
// collecting its STEP lines.
func (r *runner) runCheckout(ctx context.Context, sock, res string) error {
	cmd := exec.CommandContext(ctx, r.opts.CheckoutApp)
	cmd.Env = append(os.Environ(), "OUTRIG_ADDRESS="+sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = r.opts.Out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start checkout app: %w", err)
	}
	r.say("started app checkout: running the scenario\n")
	var passed, failed []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "WAIT "):
			f := strings.Fields(line) // WAIT <kind> <name>
			name := f[len(f)-1]
			src := filepath.Join(r.opts.Extra, name+".yaml")
			if err := copyFile(src, filepath.Join(res, name+".yaml")); err != nil {
				r.say("  !! could not drop %s: %v", src, err)
			} else {
				r.say("  -> dropped %s.yaml into the resources folder", name)
			}
		case strings.HasPrefix(line, "STEP "):
			f := strings.SplitN(line, " ", 4)
			for len(f) < 4 {
				f = append(f, "")
			}
			mark := "ok  "
			if f[2] == "PASS" {
				passed = append(passed, f[1])
			} else {
				mark = "FAIL"
				failed = append(failed, f[1])
			}
			r.say("  [%s] %-22s %s", mark, f[1], f[3])
		default:
			r.say("  checkout: %s", line)
		}
	}
	werr := cmd.Wait()
	r.say("\n== summary: %d passed, %d failed", len(passed), len(failed))
	if len(failed) > 0 || werr != nil {
		return fmt.Errorf("demo failed: steps %v (checkout exit: %v)", failed, werr)
	}
	if len(passed) == 0 {
		return errors.New("demo failed: no step ran")
	}
	return nil
}

func (r *runner) say(format string, args ...any) {
	fmt.Fprintf(r.opts.Out, format+"\n", args...)
}

func (r *runner) logOf(name string) string { return filepath.Join(r.dir, name+".log") }

// start runs a process in its own process group with output to a log file.
func (r *runner) start(name, bin string, env []string, args ...string) (*proc, error) {
	logPath := r.logOf(name)
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath}
	go func() { _ = cmd.Wait(); f.Close() }()
	r.mu.Lock()
	r.procs = append(r.procs, p)
	r.mu.Unlock()
	return p, nil
}

// stopAll sends SIGTERM to every process group (apps first, control plane
// last), waits briefly, then SIGKILLs what is left.
func (r *runner) stopAll() {
	r.mu.Lock()
	procs := r.procs
	r.procs = nil
	r.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && syscall.Kill(p.cmd.Process.Pid, 0) == nil {
			time.Sleep(20 * time.Millisecond)
		}
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitReady(ctx context.Context, url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s answered %s", url, resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func waitTCP(ctx context.Context, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func waitLine(path, want string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no %q within %s", want, d)
}

func copyDir(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// copyFile writes dst atomically (temp file + rename) so a watcher never
// reads half a file.
func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
