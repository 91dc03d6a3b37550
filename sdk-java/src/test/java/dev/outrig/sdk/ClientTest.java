package dev.outrig.sdk;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.outrig.api.runtime.v1.BulkPublishFailedEntry;
import dev.outrig.api.runtime.v1.BulkPublishRequest;
import dev.outrig.api.runtime.v1.BulkPublishResponse;
import dev.outrig.api.runtime.v1.GetStateRequest;
import dev.outrig.api.runtime.v1.GetStateResponse;
import dev.outrig.api.runtime.v1.PublishRequest;
import dev.outrig.api.runtime.v1.PublishResponse;
import dev.outrig.api.runtime.v1.RuntimeGrpc;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(30)
class ClientTest {
  /** A store holding one key "k" = "v" with ETag "3"; sleeps for key "slow". */
  static final class OneKeyStore extends RuntimeGrpc.RuntimeImplBase {
    @Override
    public void getState(GetStateRequest req, StreamObserver<GetStateResponse> out) {
      if (req.getKey().equals("slow")) {
        try {
          Thread.sleep(2000);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      if (!req.getStoreName().equals("orders")) {
        out.onError(Status.NOT_FOUND.withDescription("state store \"" + req.getStoreName() + "\" not found").asRuntimeException());
        return;
      }
      var b = GetStateResponse.newBuilder();
      if (req.getKey().equals("k")) {
        b.setData(ByteString.copyFromUtf8("v")).setEtag("3").setFound(true).setContentType("text/plain");
      }
      out.onNext(b.build());
      out.onCompleted();
    }

    @Override
    public void publish(PublishRequest req, StreamObserver<PublishResponse> out) {
      Metadata trailers = new Metadata();
      trailers.put(ErrorMapping.RETRY_AFTER, "1200");
      out.onError(Status.RESOURCE_EXHAUSTED.withDescription("rate limited").asRuntimeException(trailers));
    }

    @Override
    public void bulkPublish(BulkPublishRequest req, StreamObserver<BulkPublishResponse> out) {
      out.onNext(
          BulkPublishResponse.newBuilder()
              .addFailedEntries(BulkPublishFailedEntry.newBuilder().setEntryId("1").setError("too big"))
              .build());
      out.onCompleted();
    }
  }

  @Test
  void getStateReturnsTheItemAndMissingKeysAreNotErrors() throws Exception {
    try (FakeSidecar sc = new FakeSidecar(new OneKeyStore());
        OutrigClient c = sc.clientBuilder().build()) {
      StateItem it = c.getState("orders", "k");
      assertTrue(it.found());
      assertEquals("k", it.key());
      assertArrayEquals("v".getBytes(UTF_8), it.value());
      assertEquals("3", it.etag());
      assertEquals("text/plain", it.contentType());
      StateItem missing = c.getStateAsync("orders", "nope", null).join();
      assertFalse(missing.found());
      assertEquals(0, missing.value().length);
    }
  }

  /** A sidecar without the Multiplex service (this fake, an older sidecar) gets unary calls. */
  @Test
  void aSidecarWithoutMultiplexGetsUnaryCalls() throws Exception {
    try (FakeSidecar sc = new FakeSidecar(new OneKeyStore());
        OutrigClient c = sc.clientBuilder().build()) {
      assertTrue(c.getState("orders", "k").found());
      assertTrue(c.getStateAsync("orders", "k", null).join().found());
      assertTrue(c.getState("orders", "k").found());
      assertEquals(0, c.multiplexCalls());
      assertEquals(List.of("GetState", "GetState", "GetState"), sc.methods);
    }
    try (FakeSidecar sc = new FakeSidecar(new OneKeyStore());
        OutrigClient c = sc.clientBuilder().unaryRpc().build()) {
      assertTrue(c.getState("orders", "k").found());
      assertEquals(-1, c.multiplexCalls());
    }
  }

  @Test
  void sidecarErrorsArriveAsTypedExceptionsInBothForms() throws Exception {
    try (FakeSidecar sc = new FakeSidecar(new OneKeyStore());
        OutrigClient c = sc.clientBuilder().build()) {
      NotFoundException nf =
          assertThrows(NotFoundException.class, () -> c.getState("carts", "k"));
      assertEquals("state store \"carts\" not found", nf.serverMessage());

      RateLimitedException rl =
          assertThrows(RateLimitedException.class, () -> c.publish("events", "t", new byte[0]));
      assertEquals(Duration.ofMillis(1200), rl.retryAfter().orElseThrow());

      CompletionException ce =
          assertThrows(
              CompletionException.class, () -> c.publishAsync("events", "t", new byte[0], null).join());
      RateLimitedException rl2 = assertInstanceOf(RateLimitedException.class, ce.getCause());
      assertEquals(Duration.ofMillis(1200), rl2.retryAfter().orElseThrow());
    }
  }

  @Test
  void argumentErrorsFailBeforeSending() throws Exception {
    try (FakeSidecar sc = new FakeSidecar(new OneKeyStore());
        OutrigClient c = sc.clientBuilder().build()) {
      assertThrows(InvalidArgumentException.class, () -> c.getState("", "k"));
      CompletionException ce =
          assertThrows(CompletionException.class, () -> c.getStateAsync("orders", "", null).join());
      assertInstanceOf(InvalidArgumentException.class, ce.getCause());
      assertTrue(sc.methods.isEmpty(), "nothing reached the sidecar: " + sc.methods);
    }
  }

  @Test
  void defaultTimeoutAndWithTimeoutBoundEachCall() throws Exception {
    try (FakeSidecar sc = new FakeSidecar(new OneKeyStore());
        OutrigClient c = sc.clientBuilder().timeout(Duration.ofMillis(100)).build()) {
      long t0 = System.nanoTime();
      assertThrows(DeadlineExceededException.class, () -> c.getState("orders", "slow"));
      assertTrue(System.nanoTime() - t0 < 1_500_000_000L, "the deadline cut the call short");
      OutrigClient patient = c.withTimeout(Duration.ofSeconds(5));
      assertTrue(patient.getState("orders", "slow").found() == false);
      assertEquals(Duration.ofSeconds(5), patient.timeout());
      patient.close(); // a view: the client keeps working
      assertTrue(c.getState("orders", "k").found());
    }
  }

  @Test
  void bulkPublishReportsFailedEntries() throws Exception {
    try (FakeSidecar sc = new FakeSidecar(new OneKeyStore());
        OutrigClient c = sc.clientBuilder().build()) {
      BulkPublishResult r =
          c.bulkPublish(
              "events", "t", List.of(BulkPublishEntry.of(new byte[1]), BulkPublishEntry.of(new byte[2])), null);
      assertFalse(r.allPublished());
      assertEquals(List.of(new BulkPublishResult.Failure("1", "too big")), r.failed());
    }
  }

  @Test
  void appIdHeaderIsSentOnEveryCallWhenSet() throws Exception {
    try (FakeSidecar sc = new FakeSidecar(new OneKeyStore())) {
      try (OutrigClient c = sc.clientBuilder().appId("checkout").build()) {
        c.getState("orders", "k");
        c.getStateAsync("orders", "k", null).join();
      }
      try (OutrigClient c = sc.clientBuilder().build()) {
        c.getState("orders", "k");
      }
      assertEquals(List.of("checkout", "checkout", "<none>"), sc.appIdHeaders);
    }
  }

  @Test
  void environmentProvidesAddressAndAppIdUnlessTheBuilderSaysOtherwise() {
    Map<String, String> env =
        Map.of(OutrigClient.ENV_ADDRESS, "unix:///tmp/x.sock", OutrigClient.ENV_APP_ID, "billing");
    try (OutrigClient c = OutrigClient.builder().env(env::get).build()) {
      assertEquals("unix:///tmp/x.sock", c.address());
      assertEquals("billing", c.appId());
      assertEquals(OutrigClient.DEFAULT_TIMEOUT, c.timeout());
    }
    try (OutrigClient c =
        OutrigClient.builder().env(env::get).address("127.0.0.1:1").appId("").build()) {
      assertEquals("127.0.0.1:1", c.address());
      assertEquals("", c.appId());
    }
    try (OutrigClient c = OutrigClient.builder().env(k -> null).build()) {
      assertEquals(OutrigClient.DEFAULT_ADDRESS, c.address());
    }
    assertThrows(
        InvalidArgumentException.class,
        () -> OutrigClient.builder().env(k -> null).address("nonsense").build());
  }

  @Test
  void unreachableUnixSocketFailsFastWithUnavailable(@TempDir Path dir) {
    Path sock = dir.resolve("absent.sock");
    assertFalse(Files.exists(sock));
    try (OutrigClient c =
        OutrigClient.builder().env(k -> null).address("unix://" + sock).build()) {
      long t0 = System.nanoTime();
      assertThrows(UnavailableException.class, () -> c.getState("orders", "k"));
      assertTrue(System.nanoTime() - t0 < 3_000_000_000L);
    }
  }

  @Test
  void callsAfterCloseFail() throws Exception {
    try (FakeSidecar sc = new FakeSidecar(new OneKeyStore())) {
      OutrigClient c = sc.clientBuilder().build();
      c.close();
      c.close(); // idempotent
      OutrigException e = assertThrows(OutrigException.class, () -> c.getState("orders", "k"));
      assertTrue(
          e instanceof UnavailableException || e.code() == Status.Code.CANCELLED, e.toString());
      assertThrows(
          UnavailableException.class,
          () -> c.subscribe("events", "t", ev -> EventStatus.SUCCESS, null));
    }
  }
}
