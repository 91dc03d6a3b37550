package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	outrig "github.com/outrig/outrig/sdk-go"
)

// contender is one way for the application to reach Redis and the echo app.
type contender struct {
	key  string // short name used in keys, topics and flags: direct, tcp, uds, unary, shm, slim, daprd
	name string // as printed in tables
	api  api
	// sidecar serves this contender's calls (nil for direct); its CPU and
	// memory are measured.
	sidecar *proc
	// callee is the echo app's sidecar, whose CPU is added for Invoke.
	callee *proc
}

// contenderKeys is every contender in table order.
var contenderKeys = []string{"direct", "tcp", "uds", "unary", "shm", "slim", "daprd"}

var contenderNames = map[string]string{
	"direct": "direct (go-redis / gRPC)",
	"tcp":    "Outrig gRPC TCP",
	"uds":    "Outrig gRPC UDS",
	"unary":  "Outrig gRPC UDS unary",
	"shm":    "Outrig shm",
	"slim":   "Outrig shm, slim build",
	"daprd":  "daprd v1.16.0 gRPC",
}

// env is every process and connection of a run: Redis (not owned), the
// echo app, Outrig's control plane and sidecars, two daprds.
type env struct {
	root, dir string
	redis     string
	procs     []*proc // in start order; stopped in reverse
	echo      *echoServer
	serve     *outrig.Stream
	serveC    *outrig.Client
	cs        map[string]*contender
	daprdBin  string
	outrigBin string
	slimBin   string // the "slim" contender's sidecar: outrig built without unused backends
	// sidecarEnv is added to the environment of every sidecar (Outrig's
	// and daprd), e.g. GOMAXPROCS=1.
	sidecarEnv []string
}

// components is the Dapr-format component YAML read by both Outrig's
// control plane and daprd: state.redis and pubsub.redis on the same Redis,
// and a state.in-memory store.
func components(redis string) string {
	return fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: %s
spec:
  type: state.redis
  version: v1
  metadata:
  - name: redisHost
    value: %s
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: %s
spec:
  type: pubsub.redis
  version: v1
  metadata:
  - name: redisHost
    value: %s
  - name: maxLenApprox
    value: "%d"
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: %s
spec:
  type: state.in-memory
  version: v1
`, storeName, redis, pubsubName, redis, streamMaxLen, memStoreName)
}

// daprConfig makes daprd resolve every app id to the echo daprd's
// internal port on loopback: the kubernetes name resolver (in daprd's
// stable components) with an address template, since mDNS — the
// standalone default — needs multicast and the sqlite resolver is not in
// the stable build.
func daprConfig(echoInternalPort int) string {
	return fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: compare
spec:
  nameResolution:
    component: kubernetes
    configuration:
      template: "127.0.0.1:%d"
`, echoInternalPort)
}

// setup starts everything and returns the contenders requested.
func setup(ctx context.Context, cfg config) (e *env, err error) {
	e = &env{root: cfg.root, redis: cfg.redis, cs: map[string]*contender{}, sidecarEnv: cfg.sidecarEnv}
	defer func() {
		if err != nil {
			e.teardown()
		}
	}()
	if e.dir, err = os.MkdirTemp("", "outrig-compare-"); err != nil {
		return e, err
	}
	if err := ensureRedis(ctx, cfg.root, cfg.redis); err != nil {
		return e, err
	}
	want := func(k string) bool { return cfg.contenders[k] }
	if want("tcp") || want("uds") || want("unary") || want("shm") || want("slim") {
		if e.outrigBin, err = ensureOutrig(cfg.root, cfg.outrigBin, e.dir, "outrig", ""); err != nil {
			return e, err
		}
	}
	if want("slim") {
		if e.slimBin, err = ensureOutrig(cfg.root, cfg.slimBin, e.dir, "outrig-slim", slimTags); err != nil {
			return e, err
		}
	}
	if want("daprd") {
		if e.daprdBin, err = ensureDaprd(cfg.root, cfg.daprdBin); err != nil {
			return e, err
		}
	}
	res := filepath.Join(e.dir, "resources")
	if err := os.MkdirAll(res, 0o755); err != nil {
		return e, err
	}
	if err := os.WriteFile(filepath.Join(res, "components.yaml"), []byte(components(cfg.redis)), 0o644); err != nil {
		return e, err
	}
	if e.echo, err = startEcho(); err != nil {
		return e, err
	}
	if want("direct") {
		d, err := newDirectAPI(cfg.redis, e.echo.addr)
		if err != nil {
			return e, err
		}
		e.cs["direct"] = &contender{key: "direct", name: contenderNames["direct"], api: d}
	}
	if e.outrigBin != "" {
		if err := e.startOutrig(ctx, res, want); err != nil {
			return e, err
		}
	}
	if want("daprd") {
		if err := e.startDapr(ctx, res); err != nil {
			return e, err
		}
	}
	return e, nil
}

// startOutrig starts a control plane, the echo app's sidecar with the
// harness serving "echo" on its Serve stream, and one sidecar per
// transport contender (app id "bench"; each registered with the control
// plane, so Invoke goes caller sidecar → callee sidecar → Serve stream).
func (e *env) startOutrig(ctx context.Context, res string, want func(string) bool) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	cpAddr := "127.0.0.1:" + strconv.Itoa(ports[0])
	cp, err := e.start("control-plane", nil, e.outrigBin, "control-plane", "--resources", res,
		"--listen", cpAddr, "--admin-listen", "127.0.0.1:"+strconv.Itoa(ports[1]), "--log-level", "warn")
	if err != nil {
		return err
	}
	if err := cp.waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[1]), 200, 30*time.Second); err != nil {
		return err
	}
	sidecar := func(bin, name, appID, listen, shm string) (*proc, error) {
		admin, err := freePort()
		if err != nil {
			return nil, err
		}
		p, err := e.start("sidecar-"+name, e.sidecarEnv, bin, "sidecar", "--app-id", appID, "--control-plane", cpAddr,
			"--listen", listen, "--shm-listen", shm, "--internal-listen", "127.0.0.1:0",
			"--admin-listen", "127.0.0.1:"+strconv.Itoa(admin), "--state-file", filepath.Join(e.dir, name+".state.json"),
			"--instance-id", "compare-"+name, "--log-level", "warn")
		if err != nil {
			return nil, err
		}
		return p, p.waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", admin), 200, 30*time.Second)
	}
	echoSock := filepath.Join(e.dir, "echo.sock")
	callee, err := sidecar(e.outrigBin, "echo", echoApp, "unix://"+echoSock, "")
	if err != nil {
		return err
	}
	if e.serveC, err = outrig.NewClient(ctx, outrig.WithAddress("unix://"+echoSock)); err != nil {
		return err
	}
	echo := func(_ context.Context, in *outrig.Invocation) (*outrig.Reply, error) {
		return &outrig.Reply{Data: in.Data, ContentType: in.ContentType}, nil
	}
	if e.serve, err = e.serveC.StartServe(ctx, outrig.Handlers{echoMethod: echo}); err != nil {
		return fmt.Errorf("echo app's Serve stream: %w", err)
	}
	for _, k := range []string{"tcp", "uds", "unary", "shm", "slim"} {
		if !want(k) {
			continue
		}
		bin, carrier := e.outrigBin, k
		if k == "slim" {
			bin, carrier = e.slimBin, "shm"
		}
		var listen, shm, addr string
		switch k {
		case "tcp":
			port, err := freePort()
			if err != nil {
				return err
			}
			addr = "127.0.0.1:" + strconv.Itoa(port)
			listen = addr
		default:
			addr = "unix://" + filepath.Join(e.dir, k+".sock")
			listen = addr
			if carrier == "shm" {
				shm = "auto"
			}
		}
		p, err := sidecar(bin, k, "bench", listen, shm)
		if err != nil {
			return err
		}
		a, err := newOutrigAPI(ctx, addr, carrier)
		if err != nil {
			return err
		}
		e.cs[k] = &contender{key: k, name: contenderNames[k], api: a, sidecar: p, callee: callee}
	}
	return nil
}

// startDapr starts the echo app's daprd (app channel: the harness's gRPC
// AppCallback server) and the caller's daprd, standalone, every listener on
// loopback, no placement, scheduler or mTLS.
func (e *env) startDapr(ctx context.Context, res string) error {
	ports, err := freePorts(12)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(e.dir, "dapr-config.yaml")
	if err := os.WriteFile(cfgPath, []byte(daprConfig(ports[6+3])), 0o644); err != nil {
		return err
	}
	daprd := func(name, appID string, p []int, extra ...string) (*proc, error) {
		args := []string{"--app-id", appID, "--resources-path", res, "--config", cfgPath,
			"--placement-host-address", "", "--scheduler-host-address", "", "--enable-mtls=false",
			"--dapr-listen-addresses", "127.0.0.1", "--dapr-internal-grpc-listen-address", "127.0.0.1",
			"--metrics-listen-address", "127.0.0.1", "--dapr-public-listen-address", "127.0.0.1",
			"--dapr-grpc-port", strconv.Itoa(p[0]), "--dapr-http-port", strconv.Itoa(p[1]),
			"--metrics-port", strconv.Itoa(p[2]), "--dapr-internal-grpc-port", strconv.Itoa(p[3]),
			"--dapr-public-port", strconv.Itoa(p[4]), "--profile-port", strconv.Itoa(p[5]),
			"--log-level", "warn"}
		pr, err := e.start(name, e.sidecarEnv, e.daprdBin, append(args, extra...)...)
		if err != nil {
			return nil, err
		}
		return pr, pr.waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/v1.0/healthz", p[1]), 204, 60*time.Second)
	}
	_, echoPort, _ := net.SplitHostPort(e.echo.addr)
	callee, err := daprd("daprd-echo", echoApp, ports[6:12], "--app-port", echoPort, "--app-protocol", "grpc")
	if err != nil {
		return err
	}
	caller, err := daprd("daprd", "bench", ports[0:6])
	if err != nil {
		return err
	}
	a, err := newDaprAPI("127.0.0.1:" + strconv.Itoa(ports[0]))
	if err != nil {
		return err
	}
	e.cs["daprd"] = &contender{key: "daprd", name: contenderNames["daprd"], api: a, sidecar: caller, callee: callee}
	return nil
}

func (e *env) start(name string, env []string, bin string, args ...string) (*proc, error) {
	p, err := startProc(name, filepath.Join(e.dir, name+".log"), env, bin, args...)
	if err != nil {
		return nil, err
	}
	e.procs = append(e.procs, p)
	return p, nil
}

// teardown stops every process (reverse start order) and removes the
// work directory unless a process failed (its log is then kept).
func (e *env) teardown() {
	for _, c := range e.cs {
		_ = c.api.close()
	}
	if e.serve != nil {
		e.serve.Stop()
	}
	if e.serveC != nil {
		_ = e.serveC.Close()
	}
	keep := false
	for i := len(e.procs) - 1; i >= 0; i-- {
		p := e.procs[i]
		if p.exited() {
			fmt.Fprintf(os.Stderr, "compare: %s had exited early (%v); logs kept in %s\n", p.name, p.err, e.dir)
			keep = true
		}
		p.stop(10 * time.Second)
	}
	if e.echo != nil {
		e.echo.stop()
	}
	if e.dir != "" && !keep {
		_ = os.RemoveAll(e.dir)
	}
}

// checkAlive fails if a child process has died.
func (e *env) checkAlive() error {
	for _, p := range e.procs {
		if p.exited() {
			return fmt.Errorf("%s exited (%v); log %s:\n%s", p.name, p.err, p.log, p.logTail(20))
		}
	}
	return nil
}

// ensureRedis starts Redis with scripts/backends.sh when nothing answers
// PING at addr.
func ensureRedis(ctx context.Context, root, addr string) error {
	if pingRedis(addr) == nil {
		return nil
	}
	if addr != "127.0.0.1:6379" {
		return fmt.Errorf("no Redis answers at %s (only 127.0.0.1:6379 is started by scripts/backends.sh)", addr)
	}
	progress("no Redis at %s: scripts/backends.sh up redis", addr)
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "backends.sh"), "up", "redis")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("scripts/backends.sh up redis: %w", err)
	}
	return pingRedis(addr)
}

func pingRedis(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return fmt.Errorf("redis %s: %w", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return fmt.Errorf("redis %s: %w", addr, err)
	}
	b := make([]byte, 7)
	if _, err := c.Read(b); err != nil || !bytes.HasPrefix(b, []byte("+PONG")) {
		return fmt.Errorf("redis %s: no PONG (%q, %v)", addr, b, err)
	}
	return nil
}

// ensureOutrig returns the outrig binary: bin when given, else one built
// from ./cmd/outrig into dir (so that a stale bin/outrig is never measured).
// slimTags builds the "slim" contender's sidecar: every backend but Redis
// left out, as `make build-slim` does by default (OUTRIG_OMIT).
const slimTags = "outrig_no_mysql,outrig_no_mongodb,outrig_no_zookeeper,outrig_no_kafka,outrig_no_rocketmq,outrig_no_http,outrig_no_cron"

// ensureOutrig returns the outrig binary bin (relative to the repository
// root), or builds ./cmd/outrig with tags into dir/name when bin is empty.
func ensureOutrig(root, bin, dir, name, tags string) (string, error) {
	if bin != "" {
		if !filepath.IsAbs(bin) {
			bin = filepath.Join(root, bin)
		}
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("outrig binary: %w", err)
		}
		return bin, nil
	}
	bin = filepath.Join(dir, name)
	progress("building ./cmd/outrig into %s (tags %q)", name, tags)
	cmd := exec.Command("go", "build", "-tags", tags, "-o", bin, "./cmd/outrig")
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/outrig: %w", err)
	}
	return bin, nil
}

// ensureDaprd returns daprd's path: bin if given, else what
// bench/build-daprd.sh prints (it builds daprd from the Go module proxy
// into ~/.cache/outrig the first time).
func ensureDaprd(root, bin string) (string, error) {
	if bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("-daprd %s: %w", bin, err)
		}
		return bin, nil
	}
	progress("bench/build-daprd.sh (builds daprd v1.16.0 into ~/.cache/outrig the first time: several minutes)")
	var out bytes.Buffer
	cmd := exec.Command(filepath.Join(root, "bench", "build-daprd.sh"))
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("bench/build-daprd.sh: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	bin = lines[len(lines)-1]
	if _, err := os.Stat(bin); err != nil {
		return "", errors.New("bench/build-daprd.sh printed no binary path: " + out.String())
	}
	return bin, nil
}
