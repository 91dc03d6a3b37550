package pubsub

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	cpubsub "github.com/dapr/components-contrib/pubsub"
	"github.com/google/uuid"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
)

// DecodeEvent turns a message from a broker into the TopicEvent sent to the
// app. A CloudEvents JSON envelope is unpacked; anything else is delivered
// as a raw payload under a fresh id.
func DecodeEvent(pubsubName string, msg *cpubsub.NewMessage) *runtimev1.TopicEvent {
	ev := &runtimev1.TopicEvent{Topic: msg.Topic, PubsubName: pubsubName, Metadata: map[string]string{}}
	for k, v := range msg.Metadata {
		ev.Metadata[k] = v
	}
	var ce map[string]any
	if err := json.Unmarshal(msg.Data, &ce); err == nil && ce[cpubsub.IDField] != nil && ce[cpubsub.SpecVersionField] != nil {
		ev.Id = str(ce[cpubsub.IDField])
		ev.Source = str(ce[cpubsub.SourceField])
		ev.Type = str(ce[cpubsub.TypeField])
		ev.SpecVersion = str(ce[cpubsub.SpecVersionField])
		ev.DataContentType = str(ce[cpubsub.DataContentTypeField])
		if b64, ok := ce[cpubsub.DataBase64Field].(string); ok {
			ev.Data, _ = base64.StdEncoding.DecodeString(b64)
		} else if d, ok := ce[cpubsub.DataField]; ok {
			if s, isStr := d.(string); isStr && !strings.Contains(ev.DataContentType, "json") {
				ev.Data = []byte(s)
			} else {
				ev.Data, _ = json.Marshal(d)
			}
		}
		for k, v := range ce {
			switch k {
			case cpubsub.IDField, cpubsub.SourceField, cpubsub.TypeField, cpubsub.SpecVersionField,
				cpubsub.DataContentTypeField, cpubsub.DataField, cpubsub.DataBase64Field:
				continue
			}
			ev.Metadata["cloudevent."+k] = str(v)
		}
		return ev
	}
	ev.Id = uuid.NewString()
	ev.SpecVersion = "1.0"
	ev.Type = cpubsub.DefaultCloudEventType
	ev.Data = msg.Data
	if msg.ContentType != nil {
		ev.DataContentType = *msg.ContentType
	}
	return ev
}

func str(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	default:
		return fmt.Sprint(t)
	}
}
