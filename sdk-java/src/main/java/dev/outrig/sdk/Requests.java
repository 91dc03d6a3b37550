package dev.outrig.sdk;

import com.google.protobuf.ByteString;
import dev.outrig.api.runtime.v1.BulkPublishRequest;
import dev.outrig.api.runtime.v1.DeleteBulkStateRequest;
import dev.outrig.api.runtime.v1.DeleteStateRequest;
import dev.outrig.api.runtime.v1.ExecuteStateTransactionRequest;
import dev.outrig.api.runtime.v1.GetBulkStateRequest;
import dev.outrig.api.runtime.v1.GetStateRequest;
import dev.outrig.api.runtime.v1.InvokeBindingRequest;
import dev.outrig.api.runtime.v1.InvokeRequest;
import dev.outrig.api.runtime.v1.PublishRequest;
import dev.outrig.api.runtime.v1.SaveStateRequest;
import dev.outrig.api.runtime.v1.TransactionalStateOperation;
import dev.outrig.api.runtime.v1.TransactionalStateOperation.OperationType;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Checks the arguments of each call and builds its wire request. Every problem is an {@link
 * InvalidArgumentException} naming the call and the field, raised before anything is sent.
 */
final class Requests {
  private Requests() {}

  static GetStateRequest getState(String store, String key, ReadOptions o) {
    String op = "GetState";
    requireStoreKey(op, store, key);
    o = orNone(o, ReadOptions.NONE);
    if (o.parallelism() != 0) {
      throw ErrorMapping.invalidArgument(op, "option parallelism", "applies to GetBulkState only");
    }
    var b = GetStateRequest.newBuilder().setStoreName(store).setKey(key);
    if (o.consistencyOrNull() != null) {
      b.setConsistency(o.consistencyOrNull().toProto());
    }
    return b.putAllMetadata(o.metadata()).build();
  }

  static GetBulkStateRequest getBulkState(String store, List<String> keys, ReadOptions o) {
    String op = "GetBulkState";
    requireStore(op, store);
    if (keys == null || keys.isEmpty()) {
      throw ErrorMapping.invalidArgument(op, "keys", "must not be empty");
    }
    for (int i = 0; i < keys.size(); i++) {
      if (keys.get(i) == null || keys.get(i).isEmpty()) {
        throw ErrorMapping.invalidArgument(op, "keys[" + i + "]", "is empty");
      }
    }
    o = orNone(o, ReadOptions.NONE);
    if (o.consistencyOrNull() != null) {
      throw ErrorMapping.invalidArgument(op, "option consistency", "applies to GetState only");
    }
    return GetBulkStateRequest.newBuilder()
        .setStoreName(store)
        .addAllKeys(keys)
        .setParallelism(o.parallelism())
        .putAllMetadata(o.metadata())
        .build();
  }

  static SaveStateRequest saveState(String store, String key, byte[] value, StateOptions o) {
    String op = "SaveState";
    requireStoreKey(op, store, key);
    requireValue(op, "value", value);
    return SaveStateRequest.newBuilder()
        .setStoreName(store)
        .addStates(orNone(o, StateOptions.NONE).toItem(key, value))
        .build();
  }

  static SaveStateRequest saveBulkState(String store, List<SaveItem> items) {
    String op = "SaveBulkState";
    requireStore(op, store);
    if (items == null || items.isEmpty()) {
      throw ErrorMapping.invalidArgument(op, "items", "must not be empty");
    }
    var b = SaveStateRequest.newBuilder().setStoreName(store);
    for (int i = 0; i < items.size(); i++) {
      SaveItem it = items.get(i);
      if (it == null || it.key() == null || it.key().isEmpty()) {
        throw ErrorMapping.invalidArgument(op, "items[" + i + "].key", "is required");
      }
      b.addStates(it.options().toItem(it.key(), it.value()));
    }
    return b.build();
  }

  static DeleteStateRequest deleteState(String store, String key, StateOptions o) {
    String op = "DeleteState";
    requireStoreKey(op, store, key);
    o = orNone(o, StateOptions.NONE);
    o.checkDelete(op);
    var b = DeleteStateRequest.newBuilder().setStoreName(store).setKey(key);
    if (o.etagProto() != null) {
      b.setEtag(o.etagProto());
    }
    if (o.optionsProto() != null) {
      b.setOptions(o.optionsProto());
    }
    return b.putAllMetadata(o.metadata()).build();
  }

  static DeleteBulkStateRequest deleteBulkState(String store, List<DeleteItem> items) {
    String op = "DeleteBulkState";
    requireStore(op, store);
    if (items == null || items.isEmpty()) {
      throw ErrorMapping.invalidArgument(op, "items", "must not be empty");
    }
    var b = DeleteBulkStateRequest.newBuilder().setStoreName(store);
    for (int i = 0; i < items.size(); i++) {
      DeleteItem it = items.get(i);
      if (it == null || it.key() == null || it.key().isEmpty()) {
        throw ErrorMapping.invalidArgument(op, "items[" + i + "].key", "is required");
      }
      it.options().checkDelete(op + " items[" + i + "]");
      b.addStates(it.options().toItem(it.key(), null));
    }
    return b.build();
  }

  static ExecuteStateTransactionRequest transaction(
      String store, List<StateOperation> ops, Map<String, String> metadata) {
    String op = "ExecuteStateTransaction";
    requireStore(op, store);
    if (ops == null || ops.isEmpty()) {
      throw ErrorMapping.invalidArgument(op, "operations", "must contain at least one operation");
    }
    var b = ExecuteStateTransactionRequest.newBuilder().setStoreName(store);
    for (int i = 0; i < ops.size(); i++) {
      StateOperation s = ops.get(i);
      String field = "operations[" + i + "]";
      if (s == null) {
        throw ErrorMapping.invalidArgument(op, field, "is null");
      }
      if (s.key() == null || s.key().isEmpty()) {
        throw ErrorMapping.invalidArgument(op, field + ".key", "is required");
      }
      OperationType type;
      if (s.kind() == StateOperation.Kind.UPSERT) {
        type = OperationType.OPERATION_TYPE_UPSERT;
      } else {
        s.options().checkDelete(op + " " + field);
        type = OperationType.OPERATION_TYPE_DELETE;
      }
      b.addOperations(
          TransactionalStateOperation.newBuilder()
              .setOperationType(type)
              .setRequest(s.options().toItem(s.key(), s.value())));
    }
    return b.putAllMetadata(checkedMetadata(op, metadata)).build();
  }

  static PublishRequest publish(String pubsub, String topic, byte[] data, PublishOptions o) {
    String op = "Publish";
    requirePubsubTopic(op, pubsub, topic);
    requireValue(op, "data", data);
    o = orNone(o, PublishOptions.NONE);
    return PublishRequest.newBuilder()
        .setPubsubName(pubsub)
        .setTopic(topic)
        .setData(ByteString.copyFrom(data))
        .setDataContentType(o.contentType())
        .putAllMetadata(o.metadata())
        .build();
  }

  static BulkPublishRequest bulkPublish(
      String pubsub, String topic, List<BulkPublishEntry> entries, PublishOptions o) {
    String op = "BulkPublish";
    requirePubsubTopic(op, pubsub, topic);
    if (entries == null || entries.isEmpty()) {
      throw ErrorMapping.invalidArgument(op, "entries", "must not be empty");
    }
    o = orNone(o, PublishOptions.NONE);
    if (!o.contentType().isEmpty()) {
      throw ErrorMapping.invalidArgument(
          op, "option contentType", "does not apply: set BulkPublishEntry.contentType");
    }
    var b = BulkPublishRequest.newBuilder().setPubsubName(pubsub).setTopic(topic);
    Map<String, Integer> seen = new HashMap<>();
    for (int i = 0; i < entries.size(); i++) {
      BulkPublishEntry e = entries.get(i);
      if (e == null) {
        throw ErrorMapping.invalidArgument(op, "entries[" + i + "]", "is null");
      }
      String id = e.id().isEmpty() ? Integer.toString(i) : e.id();
      Integer prev = seen.putIfAbsent(id, i);
      if (prev != null) {
        throw ErrorMapping.invalidArgument(
            op, "entries[" + i + "].id", "\"" + id + "\" duplicates entries[" + prev + "]");
      }
      b.addEntries(
          dev.outrig.api.runtime.v1.BulkPublishEntry.newBuilder()
              .setEntryId(id)
              .setEvent(ByteString.copyFrom(e.data()))
              .setContentType(e.contentType())
              .putAllMetadata(e.metadata()));
    }
    return b.putAllMetadata(o.metadata()).build();
  }

  static InvokeRequest invoke(String appId, String method, byte[] data, InvokeOptions o) {
    String op = "Invoke";
    if (appId == null || appId.isEmpty()) {
      throw ErrorMapping.invalidArgument(op, "appId", "is required");
    }
    if (method == null || method.isEmpty()) {
      throw ErrorMapping.invalidArgument(op, "method", "is required");
    }
    requireValue(op, "data", data);
    o = orNone(o, InvokeOptions.NONE);
    return InvokeRequest.newBuilder()
        .setAppId(appId)
        .setMethod(method)
        .setData(ByteString.copyFrom(data))
        .setContentType(o.contentType())
        .setHttpVerb(o.httpVerb())
        .setHashKey(o.hashKey())
        .putAllMetadata(o.metadata())
        .build();
  }

  static InvokeBindingRequest invokeBinding(
      String name, String operation, byte[] data, Map<String, String> metadata) {
    String op = "InvokeBinding";
    if (name == null || name.isEmpty()) {
      throw ErrorMapping.invalidArgument(op, "name", "is required");
    }
    if (operation == null || operation.isEmpty()) {
      throw ErrorMapping.invalidArgument(op, "operation", "is required");
    }
    requireValue(op, "data", data);
    return InvokeBindingRequest.newBuilder()
        .setName(name)
        .setOperation(operation)
        .setData(ByteString.copyFrom(data))
        .putAllMetadata(checkedMetadata(op, metadata))
        .build();
  }

  static void requirePubsubTopic(String op, String pubsub, String topic) {
    if (pubsub == null || pubsub.isEmpty()) {
      throw ErrorMapping.invalidArgument(op, "pubsub", "is required");
    }
    if (topic == null || topic.isEmpty()) {
      throw ErrorMapping.invalidArgument(op, "topic", "is required");
    }
  }

  static Map<String, String> checkedMetadata(String op, Map<String, String> md) {
    if (md == null) {
      return Map.of();
    }
    Map<String, String> out = new HashMap<>();
    MetadataMaps.putAll(op, out, md);
    return out;
  }

  private static void requireStore(String op, String store) {
    if (store == null || store.isEmpty()) {
      throw ErrorMapping.invalidArgument(op, "store", "is required");
    }
  }

  private static void requireStoreKey(String op, String store, String key) {
    requireStore(op, store);
    if (key == null || key.isEmpty()) {
      throw ErrorMapping.invalidArgument(op, "key", "is required");
    }
  }

  private static void requireValue(String op, String field, byte[] value) {
    if (value == null) {
      throw ErrorMapping.invalidArgument(op, field, "is null (use an empty array)");
    }
  }

  private static <T> T orNone(T o, T none) {
    return o == null ? none : o;
  }
}
