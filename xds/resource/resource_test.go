package resource

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/anypb"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/structpb"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	msgs := []proto.Message{
		&configv1.Component{Name: "orders", Type: "state.redis", Version: "v1", Scopes: []string{"checkout"},
			Metadata: []*configv1.MetadataItem{{Name: "redisHost", Value: "127.0.0.1:6379"}}},
		&configv1.Subscription{Name: "s", PubsubName: "p", Topic: "t", DefaultRoute: "/x", Metadata: map[string]string{"a": "1", "b": "2"}},
		&configv1.Policy{Name: "p", Targets: []*configv1.PolicyTarget{{Kind: "invoke", Name: "payments"}}},
		&configv1.ServiceEndpoints{AppId: "payments", Endpoints: []*configv1.Endpoint{{InstanceId: "i1", Address: "10.0.0.1:1"}}},
		&configv1.Endpoint{AppId: "payments", InstanceId: "i1", Address: "10.0.0.1:1", Metadata: map[string]string{"k": "v"}},
	}
	wantTypes := []string{ComponentType, SubscriptionType, PolicyType, ServiceEndpointsType, EndpointType}
	for i, m := range msgs {
		a, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode(%T): %v", m, err)
		}
		if a.GetTypeUrl() != wantTypes[i] {
			t.Errorf("type url = %q, want %q", a.GetTypeUrl(), wantTypes[i])
		}
		got, err := Decode(a)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if diff := cmp.Diff(m, got, protocmp.Transform()); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   *anypb.Any
	}{
		{"nil", nil},
		{"unknown type", &anypb.Any{TypeUrl: "type.googleapis.com/google.protobuf.Empty"}},
		{"garbage bytes", &anypb.Any{TypeUrl: ComponentType, Value: []byte{0xff, 0xff, 0xff}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode(tc.in); err == nil {
				t.Fatal("Decode succeeded, want error")
			}
		})
	}
	_, err := Decode(&anypb.Any{TypeUrl: "x"})
	if !errors.Is(err, ErrUnknownType) {
		t.Errorf("unknown type error = %v, want ErrUnknownType", err)
	}
}

func TestVersionIsContentHash(t *testing.T) {
	// Map iteration order differs between builds of the same map; the version
	// must not. Build the same content many times in different insert orders.
	mk := func(keys []string) *configv1.Subscription {
		md := map[string]string{}
		for _, k := range keys {
			md[k] = "v-" + k
		}
		return &configv1.Subscription{Name: "s", Topic: "t", Metadata: md}
	}
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	want, err := Version(mk(keys))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		rev := append([]string(nil), keys...)
		for l, r := 0, len(rev)-1; l < r; l, r = l+1, r-1 {
			rev[l], rev[r] = rev[r], rev[l]
		}
		if i%2 == 0 {
			rev = keys
		}
		got, _ := Version(mk(rev))
		if got != want {
			t.Fatalf("version differs for identical content: %s vs %s", got, want)
		}
	}
	changed := mk(keys)
	changed.Topic = "other"
	if v, _ := Version(changed); v == want {
		t.Error("version unchanged after content change")
	}
	// Encode and Version agree on the bytes.
	a, _ := Encode(mk(keys))
	if VersionOf(a.GetValue()) != want {
		t.Error("VersionOf(Encode(m).Value) != Version(m)")
	}
}

func TestNameScopesTypeURL(t *testing.T) {
	if got := Name(&configv1.ServiceEndpoints{AppId: "a"}); got != "a" {
		t.Errorf("Name(ServiceEndpoints) = %q", got)
	}
	if got := Scopes(&configv1.Policy{Scopes: []string{"x"}}); len(got) != 1 || got[0] != "x" {
		t.Errorf("Scopes(Policy) = %v", got)
	}
	if got := Name(&configv1.Endpoint{AppId: "a", InstanceId: "i"}); got != "a/i" {
		t.Errorf("Name(Endpoint) = %q, want a/i", got)
	}
	if _, err := TypeURL(&configv1.MetadataItem{}); !errors.Is(err, ErrUnknownType) {
		t.Errorf("TypeURL(MetadataItem) err = %v", err)
	}
	for _, tu := range AllTypes() {
		m, err := New(tu)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := TypeURL(m); got != tu {
			t.Errorf("TypeURL(New(%s)) = %s", tu, got)
		}
	}
}

func FuzzDecode(f *testing.F) {
	seed, _ := Encode(&configv1.Component{Name: "c", Type: "state.redis"})
	f.Add(ComponentType, seed.GetValue())
	f.Add(ServiceEndpointsType, []byte{0x0a, 0x01, 'a'})
	f.Add("bogus", []byte{})
	f.Fuzz(func(t *testing.T, typeURL string, value []byte) {
		m, err := Decode(&anypb.Any{TypeUrl: typeURL, Value: value})
		if err != nil {
			return
		}
		// Whatever decodes must re-encode and decode to the same message.
		a, err := Encode(m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		m2, err := Decode(a)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !proto.Equal(m, m2) {
			t.Fatal("re-decoded message differs")
		}
	})
}

func TestNodeAppIDs(t *testing.T) {
	node := &core.Node{Id: "n", Metadata: NodeMetadata([]string{"a", "b"})}
	if diff := cmp.Diff([]string{"a", "b"}, NodeAppIDs(node)); diff != "" {
		t.Errorf("NodeAppIDs (-want +got):\n%s", diff)
	}
	if got := NodeAppIDs(&core.Node{Id: "n"}); got != nil {
		t.Errorf("NodeAppIDs(no metadata) = %v, want nil", got)
	}
	if got := NodeAppIDs(nil); got != nil {
		t.Errorf("NodeAppIDs(nil) = %v, want nil", got)
	}
	bad, _ := structpb.NewStruct(map[string]any{NodeAppIDsKey: []any{1.0, "", "x"}})
	if diff := cmp.Diff([]string{"x"}, NodeAppIDs(&core.Node{Metadata: bad})); diff != "" {
		t.Errorf("NodeAppIDs(mixed) (-want +got):\n%s", diff)
	}
}

func TestEndpointNamesAndCollections(t *testing.T) {
	if got := EndpointName("pay", "i-1"); got != "pay/i-1" {
		t.Errorf("EndpointName = %q", got)
	}
	if got := EndpointsCollection("pay"); got != "pay/*" || !IsCollection(got) {
		t.Errorf("EndpointsCollection = %q (collection %v)", got, IsCollection(got))
	}
	for _, tc := range []struct {
		name, app, inst string
		ok              bool
		collection      string
	}{
		{"pay/i-1", "pay", "i-1", true, "pay/*"},
		{"pay/*", "", "", false, ""},
		{"pay", "", "", false, ""},
		{"/i", "", "", false, ""},
		{"pay/", "", "", false, ""},
		{"a/b/c", "", "", false, "a/b/*"},
		{"*", "", "", false, ""},
	} {
		app, inst, ok := SplitEndpointName(tc.name)
		if app != tc.app || inst != tc.inst || ok != tc.ok {
			t.Errorf("SplitEndpointName(%q) = %q %q %v", tc.name, app, inst, ok)
		}
		if got := CollectionOf(tc.name); got != tc.collection {
			t.Errorf("CollectionOf(%q) = %q, want %q", tc.name, got, tc.collection)
		}
	}
	if IsCollection("/*") || IsCollection("*") {
		t.Error("a bare glob is not a collection")
	}
	for _, bad := range []string{"", "a/b", "a*"} {
		if err := CheckID("app_id", bad); err == nil {
			t.Errorf("CheckID(%q) accepted", bad)
		}
	}
	if err := CheckID("app_id", "checkout-1.x"); err != nil {
		t.Errorf("CheckID rejected a plain id: %v", err)
	}
}
