package rocketmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	cbindings "github.com/dapr/components-contrib/bindings"
	"github.com/dapr/components-contrib/metadata"
	"github.com/dapr/kit/logger"
	"github.com/google/go-cmp/cmp"
)

func TestParseTopics(t *testing.T) {
	got, err := parseTopics(" a , b||blue || green,,c||x")
	if err != nil {
		t.Fatal(err)
	}
	want := []topic{{name: "a"}, {name: "b", expr: "blue || green"}, {name: "c", expr: "x"}}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(topic{})); d != "" {
		t.Errorf("topics (-want +got):\n%s", d)
	}
	if _, err := parseTopics("||tag"); err == nil {
		t.Error("an entry without a topic was accepted")
	}
}

func TestInitRefusesBadMetadata(t *testing.T) {
	for _, tc := range []struct {
		props map[string]string
		want  string
	}{
		{map[string]string{"nameServer": "127.0.0.1:9876", "accessProto": "http"}, "accessProto"},
		{map[string]string{"nameServer": "127.0.0.1:9876", "topics": "orders"}, "consumerGroup"},
		{map[string]string{"consumerGroup": "g"}, "nameServer"},
	} {
		err := New(logger.NewLogger("test")).Init(context.Background(), cbindings.Metadata{Base: metadata.Base{Properties: tc.props}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want one naming %s", tc.props, err, tc.want)
		}
	}
}

// Uses the RocketMQ of scripts/backends.sh (it must be up): an input topic
// that does not exist when the binding starts receives once create made it.
func TestReadTopicCreatedLater(t *testing.T) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	run := hex.EncodeToString(b)
	topic := "rmqbind-" + run
	bd := New(logger.NewLogger("test"))
	props := map[string]string{"nameServer": "127.0.0.1:9876", "consumerGroup": "rmqbind-" + run, "topics": topic + "||blue"}
	if err := bd.Init(context.Background(), cbindings.Metadata{Base: metadata.Base{Properties: props}}); err != nil {
		t.Fatalf("Init (run `scripts/backends.sh up rocketmq`): %v", err)
	}
	defer bd.Close()
	var mu sync.Mutex
	got := map[string]map[string]string{}
	err := bd.Read(t.Context(), func(_ context.Context, r *cbindings.ReadResponse) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		got[string(r.Data)] = r.Metadata
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the input waits for its topic meanwhile
	// The first two messages create the topic: both were sent after the
	// input was reading, so the one its filter passes must arrive.
	// The topic's expression is the default tag; "red" is filtered out.
	if _, err := bd.Invoke(t.Context(), &cbindings.InvokeRequest{Operation: cbindings.CreateOperation, Data: []byte("red"),
		Metadata: map[string]string{MetaTag: "red"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := bd.Invoke(t.Context(), &cbindings.InvokeRequest{Operation: cbindings.CreateOperation, Data: []byte("m"),
		Metadata: map[string]string{MetaKey: "order-1"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		md, ok := got["m"]
		_, red := got["red"]
		mu.Unlock()
		if ok {
			if md[MetaTag] != "blue" || md[MetaKey] != "order-1" || md["rocketmq-topic"] != topic {
				t.Errorf("metadata %v, want tag blue, key order-1, topic %s", md, topic)
			}
			if red {
				t.Error("a message tagged red passed the topic's blue filter")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the message that created the topic was not read within 20s")
		}
	}
}
