package shm

import (
	"testing"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
)

// Every unary method of the runtime service has an id, and no streaming one.
func TestMethodTableCoversRuntimeService(t *testing.T) {
	sd := runtimev1.Runtime_ServiceDesc
	seen := map[uint16]bool{}
	for _, m := range sd.Methods {
		full := "/" + sd.ServiceName + "/" + m.MethodName
		id, ok := MethodID(full)
		if !ok {
			t.Errorf("unary method %s has no shm method id", full)
			continue
		}
		if seen[id] {
			t.Errorf("id %d assigned twice", id)
		}
		seen[id] = true
		if back, _ := FullMethod(id); back != full {
			t.Errorf("FullMethod(%d) = %q, want %q", id, back, full)
		}
	}
	for _, s := range sd.Streams {
		if id, ok := MethodID("/" + sd.ServiceName + "/" + s.StreamName); ok {
			t.Errorf("streaming method %s has id %d; streams stay on gRPC", s.StreamName, id)
		}
	}
	if _, ok := FullMethod(0); ok {
		t.Error("id 0 must stay reserved")
	}
}

func TestMethodIDsMatchSpec(t *testing.T) {
	want := map[string]uint16{
		"Invoke": 1, "GetState": 2, "GetBulkState": 3, "SaveState": 4, "DeleteState": 5,
		"DeleteBulkState": 6, "ExecuteStateTransaction": 7, "Publish": 8, "BulkPublish": 9,
		"InvokeBinding": 10, "GetMetadata": 11,
	}
	for name, id := range want {
		if got, ok := MethodID("/outrig.runtime.v1.Runtime/" + name); !ok || got != id {
			t.Errorf("MethodID(%s) = %d, %v; SPEC.md §7 says %d", name, got, ok, id)
		}
	}
}
