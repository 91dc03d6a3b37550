package config

import (
	"testing"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"google.golang.org/protobuf/proto"
)

func TestRedacted(t *testing.T) {
	ref := &configv1.SecretKeyRef{Name: "redis", Key: "password"}
	in := &configv1.Component{Name: "orders", Type: "state.redis", Metadata: []*configv1.MetadataItem{
		{Name: "redisHost", Value: "r:6379"},
		{Name: "redisPassword", Value: "hunter2"},
		{Name: "fromSecret", SecretKeyRef: ref},
		{Name: "resolvedSecret", Value: "resolved", SecretKeyRef: ref},
		{Name: "SASL_PASSWORD", Value: "x"},
		{Name: "access-key-id", Value: "x"},
		{Name: "apiKey", Value: "x"},
		{Name: "privateKey", Value: "x"},
		{Name: "authToken", Value: "x"},
		{Name: "awsCredentials", Value: "x"},
		{Name: "connectionString", Value: "mongodb://u:p@h"},
		{Name: "clientSecret", Value: "x"},
		{Name: "consumerGroup", Value: "g"},
		{Name: "keyPrefix", Value: "name"},
		nil,
	}}
	orig := proto.Clone(in)
	got := Redacted(in)
	r := RedactedValue
	want := &configv1.Component{Name: "orders", Type: "state.redis", Metadata: []*configv1.MetadataItem{
		{Name: "redisHost", Value: "r:6379"},
		{Name: "redisPassword", Value: r},
		{Name: "fromSecret", Value: r, SecretKeyRef: ref},
		{Name: "resolvedSecret", Value: r, SecretKeyRef: ref},
		{Name: "SASL_PASSWORD", Value: r},
		{Name: "access-key-id", Value: r},
		{Name: "apiKey", Value: r},
		{Name: "privateKey", Value: r},
		{Name: "authToken", Value: r},
		{Name: "awsCredentials", Value: r},
		{Name: "connectionString", Value: r},
		{Name: "clientSecret", Value: r},
		{Name: "consumerGroup", Value: "g"},
		{Name: "keyPrefix", Value: "name"},
		nil,
	}}
	if d := diff(want, got); d != "" {
		t.Errorf("Redacted (-want +got):\n%s", d)
	}
	if d := diff(orig, in); d != "" {
		t.Errorf("Redacted modified its input (-before +after):\n%s", d)
	}
	if Redacted(nil) != nil {
		t.Error("Redacted(nil) != nil")
	}
}
