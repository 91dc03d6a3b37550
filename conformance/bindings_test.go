package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outrig/outrig/internal/testenv"
	outrig "github.com/outrig/outrig/sdk-go"
)

// TestBindings runs the bindings conformance suite through the sidecar:
// every output operation each binding offers, and input events reaching the
// app's SubscribeBinding stream. go test ./conformance -run 'TestBindings/mysql'
func TestBindings(t *testing.T) {
	t.Run("kafka", testKafkaBinding)
	t.Run("rocketmq", testRocketMQBinding)
	t.Run("redis", testRedisBinding)
	t.Run("mysql", testMySQLBinding)
	t.Run("http", testHTTPBinding)
	t.Run("cron", testCronBinding)
}

// bdSidecar starts a sidecar of appID whose in-process control plane serves
// yaml (from examples/components/file), and connects a client.
func bdSidecar(t *testing.T, appID, file, yaml string) *outrig.Client {
	t.Helper()
	dir := t.TempDir()
	testenv.WriteFile(t, filepath.Join(dir, file), yaml)
	sc := testenv.StartSidecar(t, appID, "--resources", dir)
	return testenv.Client(t, sc.Sock)
}

// bdInvoke runs one operation and fails the test on error.
func bdInvoke(t *testing.T, c *outrig.Client, name, op string, data []byte, md map[string]string) *outrig.BindingResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := c.InvokeBinding(ctx, name, op, data, md)
	if err != nil {
		t.Fatalf("%s %s: %v", name, op, err)
	}
	return resp
}

// bdRequireOps checks that the binding offers exactly the operations the
// test covers: an unknown operation is refused with INVALID_ARGUMENT naming
// the operations offered.
func bdRequireOps(t *testing.T, c *outrig.Client, name string, tested ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.InvokeBinding(ctx, name, "no-such-operation", nil, nil)
	if !errors.Is(err, outrig.ErrInvalidArgument) {
		t.Fatalf("unknown operation: %v, want ErrInvalidArgument", err)
	}
	msg := err.Error()
	i, j := strings.Index(msg, "offers ["), strings.Index(msg, "], not")
	if i < 0 || j < i {
		t.Fatalf("unknown operation: %q does not list the operations offered", msg)
	}
	offered := strings.Fields(msg[i+len("offers [") : j])
	slices.Sort(offered)
	slices.Sort(tested)
	if !slices.Equal(offered, tested) {
		t.Errorf("%s offers %v, the test covers %v", name, offered, tested)
	}
}

// bdRecorder collects the events of one SubscribeBinding stream.
type bdRecorder struct {
	mu     sync.Mutex
	events []*outrig.BindingEvent
	at     []time.Time
}

func (r *bdRecorder) handle(_ context.Context, e *outrig.BindingEvent) outrig.EventStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	r.at = append(r.at, time.Now())
	return outrig.EventSuccess
}

func (r *bdRecorder) datas() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, e := range r.events {
		out[string(e.Data)]++
	}
	return out
}

func bdSubscribe(t *testing.T, c *outrig.Client, name string) *bdRecorder {
	t.Helper()
	r := &bdRecorder{}
	st, err := c.StartSubscribeBinding(context.Background(), name, r.handle)
	if err != nil {
		t.Fatalf("subscribe binding %s: %v", name, err)
	}
	t.Cleanup(func() { _ = st.Stop() })
	return r
}

// bdCreateUntilReceived invokes create with probe data until the input side
// delivers one (the consumer owns its partitions or queues), then creates
// the events and waits for all of them.
func bdCreateUntilReceived(t *testing.T, c *outrig.Client, name string, r *bdRecorder, md map[string]string, events []string) {
	t.Helper()
	start := time.Now()
	for i := 0; ; i++ {
		bdInvoke(t, c, name, "create", []byte(psProbe+string(rune('a'+i%26))), md)
		got := false
		for wait := time.Now().Add(500 * time.Millisecond); time.Now().Before(wait) && !got; time.Sleep(10 * time.Millisecond) {
			for d := range r.datas() {
				got = got || strings.HasPrefix(d, psProbe)
			}
		}
		if got {
			t.Logf("%s input ready after %v", name, time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Since(start) > 90*time.Second {
			t.Fatalf("%s: no input event within 90s of creating probes", name)
		}
	}
	for _, d := range events {
		bdInvoke(t, c, name, "create", []byte(d), md)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := r.datas()
		var missing []string
		for _, d := range events {
			if got[d] == 0 {
				missing = append(missing, d)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d created events did not reach the app within 30s: %q", name, len(missing), len(events), missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testKafkaBinding(t *testing.T) {
	requireBackend(t, "kafka", "127.0.0.1:9092")
	run := psRunID()
	topic := "conf-" + run + "-binding"
	yaml := psComponentYAML(t, "bindings-kafka.yaml", map[string]string{"publishTopic": topic, "topics": topic})
	c := bdSidecar(t, "conf-bk-"+run, "bindings-kafka.yaml", yaml)
	bdRequireOps(t, c, "kafka-binding", "create")
	r := bdSubscribe(t, c, "kafka-binding")
	events := psEvents("kafka", 20, 4)
	bdCreateUntilReceived(t, c, "kafka-binding", r, map[string]string{"partitionKey": "order-1"}, events)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Name != "kafka-binding" || e.Metadata["__topic"] != topic || e.Metadata["__key"] != "order-1" {
			t.Errorf("event name %q metadata %v: want the binding's name, topic %s and key order-1", e.Name, e.Metadata, topic)
			break
		}
	}
}

func testRocketMQBinding(t *testing.T) {
	requireBackend(t, "rocketmq", "127.0.0.1:9876")
	run := psRunID()
	topic := "conf-" + run + "-binding"
	yaml := psComponentYAML(t, "bindings-rocketmq.yaml", map[string]string{"topics": topic})
	c := bdSidecar(t, "conf-br-"+run, "bindings-rocketmq.yaml", yaml)
	bdRequireOps(t, c, "rocketmq-binding", "create")
	r := bdSubscribe(t, c, "rocketmq-binding")
	events := psEvents("rocketmq", 20, 4)
	bdCreateUntilReceived(t, c, "rocketmq-binding", r, map[string]string{"rocketmq-topic": topic, "rocketmq-tag": "conf"}, events)
}

func testRedisBinding(t *testing.T) {
	requireBackend(t, "redis", "127.0.0.1:6379")
	run := psRunID()
	c := bdSidecar(t, "conf-bredis-"+run, "bindings-redis.yaml", psComponentYAML(t, "bindings-redis.yaml", nil))
	const b = "redis-binding"
	bdRequireOps(t, c, b, "create", "get", "delete", "increment")
	key := "conf-" + run + "-key"
	md := map[string]string{"key": key}

	bdInvoke(t, c, b, "create", []byte("hello, 世界"), md)
	if got := bdInvoke(t, c, b, "get", nil, md); string(got.Data) != "hello, 世界" {
		t.Errorf("get after create: %q", got.Data)
	}
	bdInvoke(t, c, b, "delete", nil, md)
	if got := bdInvoke(t, c, b, "get", nil, md); len(got.Data) != 0 {
		t.Errorf("get after delete: %q, want nothing", got.Data)
	}

	// get with delete=true reads and removes (GETDEL).
	bdInvoke(t, c, b, "create", []byte("once"), md)
	if got := bdInvoke(t, c, b, "get", nil, map[string]string{"key": key, "delete": "true"}); string(got.Data) != "once" {
		t.Errorf("get delete=true: %q", got.Data)
	}
	if got := bdInvoke(t, c, b, "get", nil, md); len(got.Data) != 0 {
		t.Errorf("get after get delete=true: %q, want nothing", got.Data)
	}

	// increment counts from a missing key.
	counter := map[string]string{"key": key + "-n"}
	for range 3 {
		bdInvoke(t, c, b, "increment", nil, counter)
	}
	if got := bdInvoke(t, c, b, "get", nil, counter); string(got.Data) != "3" {
		t.Errorf("after 3 increments: %q, want 3", got.Data)
	}
	bdInvoke(t, c, b, "delete", nil, counter)

	// create with ttlInSeconds expires.
	bdInvoke(t, c, b, "create", []byte("short-lived"), map[string]string{"key": key + "-ttl", "ttlInSeconds": "1"})
	testenv.Eventually(t, "key with ttlInSeconds=1 expires", 5*time.Second, func() error {
		if got := bdInvoke(t, c, b, "get", nil, map[string]string{"key": key + "-ttl"}); len(got.Data) != 0 {
			return errors.New("still there")
		}
		return nil
	})

	// A request without the key metadata is refused as invalid, naming it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.InvokeBinding(ctx, b, "get", nil, nil); !errors.Is(err, outrig.ErrInvalidArgument) || !strings.Contains(err.Error(), "key") {
		t.Errorf("get without key: %v, want ErrInvalidArgument naming the key", err)
	}
}

func testMySQLBinding(t *testing.T) {
	requireBackend(t, "mysql", "127.0.0.1:3306")
	run := psRunID()
	c := bdSidecar(t, "conf-bmysql-"+run, "bindings-mysql.yaml", psComponentYAML(t, "bindings-mysql.yaml", nil))
	const b = "mysql-binding"
	bdRequireOps(t, c, b, "exec", "query", "close")
	table := "conf_" + run
	sql := func(s string) map[string]string { return map[string]string{"sql": strings.ReplaceAll(s, "{t}", table)} }

	bdInvoke(t, c, b, "exec", nil, sql("CREATE TABLE {t} (id INT PRIMARY KEY, name VARCHAR(64))"))
	md := sql("INSERT INTO {t} (id, name) VALUES (?, ?), (?, ?)")
	md["params"] = `[1, "ada", 2, "grace ☃"]`
	resp := bdInvoke(t, c, b, "exec", nil, md)
	if resp.Metadata["rows-affected"] != "2" || resp.Metadata["operation"] != "exec" {
		t.Errorf("insert answered metadata %v, want rows-affected 2", resp.Metadata)
	}
	md = sql("SELECT id, name FROM {t} WHERE id >= ? ORDER BY id")
	md["params"] = `[1]`
	resp = bdInvoke(t, c, b, "query", nil, md)
	var rows []struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(resp.Data, &rows); err != nil {
		t.Fatalf("query answered %q: %v", resp.Data, err)
	}
	if len(rows) != 2 || rows[0].ID != 1 || rows[0].Name != "ada" || rows[1].Name != "grace ☃" {
		t.Errorf("query rows %+v", rows)
	}
	// A SQL error comes back as an error, and the binding keeps working.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.InvokeBinding(ctx, b, "query", nil, sql("SELECT nosuchcolumn FROM {t}")); err == nil {
		t.Error("bad SQL: no error")
	}
	// A request without sql is refused as invalid, naming it.
	if _, err := c.InvokeBinding(ctx, b, "exec", nil, nil); !errors.Is(err, outrig.ErrInvalidArgument) || !strings.Contains(err.Error(), "sql") {
		t.Errorf("exec without sql: %v, want ErrInvalidArgument naming sql", err)
	}
	if resp := bdInvoke(t, c, b, "exec", nil, sql("DELETE FROM {t} WHERE id = 1")); resp.Metadata["rows-affected"] != "1" {
		t.Errorf("delete answered metadata %v, want rows-affected 1", resp.Metadata)
	}
	bdInvoke(t, c, b, "exec", nil, sql("DROP TABLE {t}"))

	// close ends the connection pool: later calls fail.
	bdInvoke(t, c, b, "close", nil, nil)
	if _, err := c.InvokeBinding(ctx, b, "query", nil, sql("SELECT 1")); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("query after close: %v, want an error saying the binding is closed", err)
	}
}

// bdHTTPRequest is what the test server saw.
type bdHTTPRequest struct {
	Method, Path, Body, Header, ContentType string
}

func testHTTPBinding(t *testing.T) {
	var mu sync.Mutex
	var seen []bdHTTPRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := bdHTTPRequest{Method: r.Method, Path: r.URL.Path, Body: string(body), Header: r.Header.Get("X-Conformance"), ContentType: r.Header.Get("Content-Type")}
		mu.Lock()
		seen = append(seen, req)
		mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/fail") {
			http.Error(w, "no such order", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Answer", "42")
		_ = json.NewEncoder(w).Encode(req)
	}))
	defer srv.Close()
	run := psRunID()
	yaml := psComponentYAML(t, "bindings-http.yaml", map[string]string{"url": srv.URL + "/api"})
	c := bdSidecar(t, "conf-bhttp-"+run, "bindings-http.yaml", yaml)
	const b = "http-binding"
	ops := []string{"create", "get", "head", "post", "put", "patch", "delete", "options", "trace"}
	bdRequireOps(t, c, b, ops...)
	for _, op := range ops {
		t.Run(op, func(t *testing.T) {
			method := strings.ToUpper(op)
			if op == "create" {
				method = http.MethodPost
			}
			withBody := method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
			var data []byte
			if withBody {
				data = []byte(`{"order":"` + op + `"}`)
			}
			resp := bdInvoke(t, c, b, op, data, map[string]string{"path": "/orders/" + op, "X-Conformance": op})
			mu.Lock()
			last := seen[len(seen)-1]
			mu.Unlock()
			want := bdHTTPRequest{Method: method, Path: "/api/orders/" + op, Body: string(data), Header: op}
			if withBody {
				want.ContentType = "application/json; charset=utf-8"
			}
			if last != want {
				t.Errorf("server saw %+v, want %+v", last, want)
			}
			if resp.Metadata["statusCode"] != "200" || resp.Metadata["X-Answer"] != "42" {
				t.Errorf("answer metadata %v, want statusCode 200 and the X-Answer header", resp.Metadata)
			}
			if method != http.MethodHead {
				var echo bdHTTPRequest
				if err := json.Unmarshal(resp.Data, &echo); err != nil || echo != want {
					t.Errorf("answer body %q (%v), want the echo of %+v", resp.Data, err, want)
				}
			}
		})
	}
	t.Run("status-not-2xx", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.InvokeBinding(ctx, b, "get", nil, map[string]string{"path": "/fail"})
		if err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("GET answered 404: %v, want an error naming the status", err)
		}
		resp := bdInvoke(t, c, b, "get", nil, map[string]string{"path": "/fail", "errorIfNot2XX": "false"})
		if resp.Metadata["statusCode"] != "404" || !strings.Contains(string(resp.Data), "no such order") {
			t.Errorf("errorIfNot2XX=false: metadata %v data %q, want the 404 answer", resp.Metadata, resp.Data)
		}
	})
}

func testCronBinding(t *testing.T) {
	run := psRunID()
	c := bdSidecar(t, "conf-bcron-"+run, "bindings-cron.yaml", psComponentYAML(t, "bindings-cron.yaml", nil))
	const b = "cron-binding"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.InvokeBinding(ctx, b, "create", nil, nil); !errors.Is(err, outrig.ErrNotFound) {
		t.Errorf("cron as output binding: %v, want ErrNotFound (input only)", err)
	}
	r := bdSubscribe(t, c, b)
	testenv.Eventually(t, "3 cron events (schedule @every 1s)", 10*time.Second, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.events) < 3 {
			return errors.New("fewer than 3 events")
		}
		return nil
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, e := range r.events {
		if e.Name != b || e.Metadata["readTimeUTC"] == "" {
			t.Errorf("event %d: name %q metadata %v, want the binding's name and readTimeUTC", i, e.Name, e.Metadata)
		}
		if i > 0 {
			if gap := r.at[i].Sub(r.at[i-1]); gap < 300*time.Millisecond || gap > 3*time.Second {
				t.Errorf("events %d and %d %v apart, want about 1s", i-1, i, gap)
			}
		}
	}
}
