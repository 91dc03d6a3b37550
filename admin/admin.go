// Package admin is the sidecar's admin HTTP endpoint: /healthz, /readyz,
// /metrics (Prometheus) and /config_dump (the configuration in force,
// secrets redacted). It listens on loopback by default.
package admin

import (
	"encoding/json"
	"net/http"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"

	"github.com/outrig/outrig/config"
	rt "github.com/outrig/outrig/runtime"
)

// Handler returns the admin mux.
func Handler(r *rt.Runtime, reg *prometheus.Registry, ready func() bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			http.Error(w, "waiting for the first configuration", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /config_dump", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		_ = enc.Encode(Dump(r))
	})
	return mux
}

// ConfigDump is the JSON document served at /config_dump.
type ConfigDump struct {
	Mode          string                     `json:"mode"`
	Apps          map[string]AppDump         `json:"apps"`
	Components    map[string]json.RawMessage `json:"components"`
	Subscriptions map[string]json.RawMessage `json:"subscriptions"`
	Policies      map[string]json.RawMessage `json:"policies"`
}

// AppDump is one app's view.
type AppDump struct {
	ConfigVersion string   `json:"configVersion"`
	Components    []string `json:"components"`
	Policies      []string `json:"policies"`
}

// Dump builds the config dump with component secrets redacted.
func Dump(r *rt.Runtime) ConfigDump {
	d := ConfigDump{Mode: string(r.Mode()), Apps: map[string]AppDump{}}
	d.Components = encode(r.Resources(rt.ComponentType), func(m proto.Message) proto.Message {
		return config.Redacted(m.(*configv1.Component))
	})
	d.Subscriptions = encode(r.Resources(rt.SubscriptionType), nil)
	d.Policies = encode(r.Resources(rt.PolicyType), nil)
	for _, id := range r.AppIDs() {
		app, _ := r.App(id)
		s := app.Acquire()
		ad := AppDump{ConfigVersion: s.Version, Components: s.ComponentNames()}
		for _, p := range s.PolicyList {
			ad.Policies = append(ad.Policies, p.GetName())
		}
		s.Release()
		sort.Strings(ad.Policies)
		d.Apps[id] = ad
	}
	return d
}

func encode(in map[string]proto.Message, tr func(proto.Message) proto.Message) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(in))
	for k, m := range in {
		if tr != nil {
			m = tr(m)
		}
		b, err := protojson.Marshal(m)
		if err != nil {
			continue
		}
		out[k] = b
	}
	return out
}
