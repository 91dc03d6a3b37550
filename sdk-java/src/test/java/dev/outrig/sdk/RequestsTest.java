package dev.outrig.sdk;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outrig.api.runtime.v1.StateOptions.Concurrency;
import dev.outrig.api.runtime.v1.TransactionalStateOperation.OperationType;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

class RequestsTest {
  private static void assertInvalid(String field, Executable call) {
    InvalidArgumentException e = assertThrows(InvalidArgumentException.class, call);
    assertTrue(e.serverMessage().contains(field), e.getMessage());
  }

  @Test
  void saveStateCarriesEtagTtlAndOptions() {
    var req =
        Requests.saveState(
            "orders",
            "o1",
            "v".getBytes(UTF_8),
            StateOptions.builder()
                .etag("")
                .ttl(Duration.ofMillis(1500))
                .consistency(dev.outrig.sdk.Consistency.STRONG)
                .concurrency(dev.outrig.sdk.Concurrency.FIRST_WRITE)
                .metadata("partitionKey", "p")
                .contentType("text/plain")
                .build());
    var item = req.getStates(0);
    assertEquals("orders", req.getStoreName());
    assertEquals("o1", item.getKey());
    assertTrue(item.hasEtag(), "an empty ETag is still present: first-write-wins");
    assertEquals("2", item.getMetadataOrThrow("ttlInSeconds"), "TTL rounds up to whole seconds");
    assertEquals("p", item.getMetadataOrThrow("partitionKey"));
    assertEquals(
        dev.outrig.api.runtime.v1.Consistency.CONSISTENCY_STRONG, item.getOptions().getConsistency());
    assertEquals(Concurrency.CONCURRENCY_FIRST_WRITE, item.getOptions().getConcurrency());
    assertEquals("text/plain", item.getContentType());
  }

  @Test
  void noOptionsSendNoEtagAndNoOptions() {
    var item = Requests.saveState("s", "k", new byte[0], null).getStates(0);
    assertFalse(item.hasEtag());
    assertFalse(item.hasOptions());
    assertTrue(item.getMetadataMap().isEmpty());
  }

  @Test
  void optionsThatMeanNothingForTheCallAreRejected() {
    assertInvalid("ttl", () -> Requests.deleteState("s", "k", StateOptions.ttl(Duration.ofSeconds(1))));
    assertInvalid(
        "contentType",
        () -> Requests.deleteBulkState(
            "s",
            List.of(new DeleteItem("k", StateOptions.builder().contentType("x").build()))));
    assertInvalid(
        "parallelism",
        () -> Requests.getState("s", "k", ReadOptions.builder().parallelism(2).build()));
    assertInvalid(
        "consistency",
        () -> Requests.getBulkState("s", List.of("a"), ReadOptions.consistency(dev.outrig.sdk.Consistency.EVENTUAL)));
    assertInvalid(
        "contentType",
        () -> Requests.bulkPublish(
            "p", "t", List.of(BulkPublishEntry.of(new byte[1])),
            PublishOptions.builder().contentType("text/plain").build()));
  }

  @Test
  void badOptionValuesAreRejectedWhenBuilt() {
    assertInvalid("ttl", () -> StateOptions.ttl(Duration.ZERO));
    assertInvalid("ttl", () -> StateOptions.ttl(Duration.ofSeconds(-1)));
    assertInvalid("parallelism", () -> ReadOptions.builder().parallelism(0));
    assertInvalid("maxRedeliveries", () -> SubscribeOptions.builder().maxRedeliveries(-1));
    assertInvalid("maxConcurrentHandlers", () -> StreamOptions.builder().maxConcurrentHandlers(0));
    assertInvalid(
        "reconnectBackoff",
        () -> StreamOptions.builder().reconnectBackoff(Duration.ofSeconds(2), Duration.ofSeconds(1)));
    assertInvalid("metadata[k]", () -> PublishOptions.builder().metadata("k", null));
  }

  @Test
  void missingArgumentsNameTheField() {
    assertInvalid("store", () -> Requests.getState("", "k", null));
    assertInvalid("key", () -> Requests.getState("s", null, null));
    assertInvalid("keys[1]", () -> Requests.getBulkState("s", List.of("a", ""), null));
    assertInvalid("keys", () -> Requests.getBulkState("s", List.of(), null));
    assertInvalid("value", () -> Requests.saveState("s", "k", null, null));
    assertInvalid("items[1].key", () -> Requests.saveBulkState("s", List.of(SaveItem.of("a", new byte[0]), SaveItem.of("", new byte[0]))));
    assertInvalid("operations[0].key", () -> Requests.transaction("s", List.of(StateOperation.delete("")), null));
    assertInvalid("operations", () -> Requests.transaction("s", List.of(), null));
    assertInvalid("pubsub", () -> Requests.publish("", "t", new byte[0], null));
    assertInvalid("topic", () -> Requests.publish("p", "", new byte[0], null));
    assertInvalid("appId", () -> Requests.invoke("", "m", new byte[0], null));
    assertInvalid("method", () -> Requests.invoke("a", "", new byte[0], null));
    assertInvalid("operation", () -> Requests.invokeBinding("b", "", new byte[0], null));
  }

  @Test
  void bulkPublishNumbersEntriesAndRejectsDuplicateIds() {
    var req =
        Requests.bulkPublish(
            "p",
            "t",
            List.of(
                BulkPublishEntry.of("a".getBytes(UTF_8)),
                new BulkPublishEntry("x", "b".getBytes(UTF_8), "text/plain", Map.of("k", "v"))),
            PublishOptions.builder().partitionKey("pk").build());
    assertEquals("0", req.getEntries(0).getEntryId());
    assertEquals("x", req.getEntries(1).getEntryId());
    assertEquals("text/plain", req.getEntries(1).getContentType());
    assertEquals("pk", req.getMetadataOrThrow("partitionKey"));
    assertInvalid(
        "entries[1].id",
        () -> Requests.bulkPublish(
            "p", "t",
            List.of(new BulkPublishEntry("1", new byte[0], "", null), BulkPublishEntry.of(new byte[0])),
            null));
  }

  @Test
  void transactionMapsUpsertsAndDeletes() {
    var req =
        Requests.transaction(
            "s",
            List.of(
                StateOperation.upsert("a", "1".getBytes(UTF_8), StateOptions.etag("e1")),
                StateOperation.delete("b")),
            Map.of("partitionKey", "p"));
    assertEquals(OperationType.OPERATION_TYPE_UPSERT, req.getOperations(0).getOperationType());
    assertEquals("e1", req.getOperations(0).getRequest().getEtag().getValue());
    assertEquals("1", req.getOperations(0).getRequest().getValue().toStringUtf8());
    assertEquals(OperationType.OPERATION_TYPE_DELETE, req.getOperations(1).getOperationType());
    assertEquals("b", req.getOperations(1).getRequest().getKey());
    assertEquals("p", req.getMetadataOrThrow("partitionKey"));
  }

  @Test
  void publishOptionsSetWellKnownMetadata() {
    var req =
        Requests.publish(
            "p", "t", new byte[] {1},
            PublishOptions.builder().rawPayload().partitionKey("k").contentType("application/octet-stream").build());
    assertEquals("true", req.getMetadataOrThrow("rawPayload"));
    assertEquals("k", req.getMetadataOrThrow("partitionKey"));
    assertEquals("application/octet-stream", req.getDataContentType());
  }

  @Test
  void invokeOptionsReachTheRequest() {
    var req =
        Requests.invoke(
            "orders", "CreateOrder", new byte[0],
            InvokeOptions.builder().contentType("application/json").httpVerb("PUT").hashKey("h").metadata("x-a", "1").build());
    assertEquals("orders", req.getAppId());
    assertEquals("PUT", req.getHttpVerb());
    assertEquals("h", req.getHashKey());
    assertEquals("1", req.getMetadataOrThrow("x-a"));
    assertEquals("application/json", req.getContentType());
  }
}
