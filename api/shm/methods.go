package shm

import runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"

// Method ids of the unary methods of outrig.runtime.v1.Runtime carried over
// shared memory. The values are part of the wire format (SPEC.md §7): never
// renumber or reuse one. Id 0 is reserved and never valid in a frame.
//
// The streaming methods Subscribe, SubscribeBinding and Serve have no id: they
// stay on gRPC.
const (
	MethodInvoke                  uint16 = 1
	MethodGetState                uint16 = 2
	MethodGetBulkState            uint16 = 3
	MethodSaveState               uint16 = 4
	MethodDeleteState             uint16 = 5
	MethodDeleteBulkState         uint16 = 6
	MethodExecuteStateTransaction uint16 = 7
	MethodPublish                 uint16 = 8
	MethodBulkPublish             uint16 = 9
	MethodInvokeBinding           uint16 = 10
	MethodGetMetadata             uint16 = 11
)

// FullMethod returns the gRPC full method name ("/outrig.runtime.v1.Runtime/GetState")
// of a method id, and false for an id that is not assigned. A server adapter
// uses it to find the handler of the same method in runtimev1.Runtime_ServiceDesc.
func FullMethod(id uint16) (string, bool) {
	switch id {
	case MethodInvoke:
		return runtimev1.Runtime_Invoke_FullMethodName, true
	case MethodGetState:
		return runtimev1.Runtime_GetState_FullMethodName, true
	case MethodGetBulkState:
		return runtimev1.Runtime_GetBulkState_FullMethodName, true
	case MethodSaveState:
		return runtimev1.Runtime_SaveState_FullMethodName, true
	case MethodDeleteState:
		return runtimev1.Runtime_DeleteState_FullMethodName, true
	case MethodDeleteBulkState:
		return runtimev1.Runtime_DeleteBulkState_FullMethodName, true
	case MethodExecuteStateTransaction:
		return runtimev1.Runtime_ExecuteStateTransaction_FullMethodName, true
	case MethodPublish:
		return runtimev1.Runtime_Publish_FullMethodName, true
	case MethodBulkPublish:
		return runtimev1.Runtime_BulkPublish_FullMethodName, true
	case MethodInvokeBinding:
		return runtimev1.Runtime_InvokeBinding_FullMethodName, true
	case MethodGetMetadata:
		return runtimev1.Runtime_GetMetadata_FullMethodName, true
	}
	return "", false
}

// MethodID returns the id assigned to a gRPC full method name, and false for a
// method that has none (the streaming methods, or an unknown name).
func MethodID(fullMethod string) (uint16, bool) {
	for id := MethodInvoke; id <= MethodGetMetadata; id++ {
		if name, _ := FullMethod(id); name == fullMethod {
			return id, true
		}
	}
	return 0, false
}
