package dev.outrig.sdk;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.outrig.api.runtime.v1.EventAck;
import dev.outrig.api.runtime.v1.InvocationReply;
import dev.outrig.api.runtime.v1.RuntimeGrpc;
import dev.outrig.api.runtime.v1.ServeRequest;
import dev.outrig.api.runtime.v1.ServeResponse;
import dev.outrig.api.runtime.v1.SubscribeReady;
import dev.outrig.api.runtime.v1.SubscribeRequest;
import dev.outrig.api.runtime.v1.SubscribeResponse;
import dev.outrig.api.runtime.v1.TopicEvent;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(30)
class StreamTest {
  /**
   * A sidecar whose Subscribe answers ready, pushes the events queued in {@code toSend} and
   * records the acks; pubsub "missing" is NOT_FOUND. Serve pushes {@code invocations} and
   * records the replies.
   */
  static final class StreamSidecar extends RuntimeGrpc.RuntimeImplBase {
    final BlockingQueue<SubscribeRequest> initials = new LinkedBlockingQueue<>();
    final BlockingQueue<EventAck> acks = new LinkedBlockingQueue<>();
    final BlockingQueue<InvocationReply> replies = new LinkedBlockingQueue<>();
    volatile List<String> events = List.of();
    volatile List<dev.outrig.api.runtime.v1.Invocation> invocations = List.of();

    @Override
    public StreamObserver<SubscribeRequest> subscribe(StreamObserver<SubscribeResponse> out) {
      return new StreamObserver<>() {
        @Override
        public void onNext(SubscribeRequest m) {
          if (m.hasInitial()) {
            initials.add(m);
            if (m.getInitial().getPubsubName().equals("missing")) {
              out.onError(Status.NOT_FOUND.withDescription("pubsub missing").asRuntimeException());
              return;
            }
            out.onNext(SubscribeResponse.newBuilder().setReady(SubscribeReady.getDefaultInstance()).build());
            for (String id : events) {
              out.onNext(
                  SubscribeResponse.newBuilder()
                      .setEvent(TopicEvent.newBuilder().setId(id).setTopic(m.getInitial().getTopic())
                          .setData(ByteString.copyFromUtf8(id)).setAttempt(1))
                      .build());
            }
          } else {
            acks.add(m.getAck());
          }
        }

        @Override
        public void onError(Throwable t) {}

        @Override
        public void onCompleted() {
          out.onCompleted();
        }
      };
    }

    @Override
    public StreamObserver<ServeRequest> serve(StreamObserver<ServeResponse> out) {
      return new StreamObserver<>() {
        @Override
        public void onNext(ServeRequest m) {
          if (m.hasInitial()) {
            out.onNext(ServeResponse.newBuilder().setReady(SubscribeReady.getDefaultInstance()).build());
            for (var inv : invocations) {
              out.onNext(ServeResponse.newBuilder().setInvocation(inv).build());
            }
          } else {
            replies.add(m.getReply());
          }
        }

        @Override
        public void onError(Throwable t) {}

        @Override
        public void onCompleted() {
          out.onCompleted();
        }
      };
    }
  }

  private static EventAck take(BlockingQueue<EventAck> q) throws InterruptedException {
    EventAck a = q.poll(5, TimeUnit.SECONDS);
    assertTrue(a != null, "no ack within 5s");
    return a;
  }

  @Test
  void eachEventIsAckedWithTheHandlersVerdict() throws Exception {
    StreamSidecar impl = new StreamSidecar();
    impl.events = List.of("ok", "boom", "drop", "null");
    try (FakeSidecar sc = new FakeSidecar(impl);
        OutrigClient c = sc.clientBuilder().appId("checkout").build()) {
      Subscription sub =
          c.subscribe(
              "events",
              "payments",
              e -> {
                switch (e.dataAsString()) {
                  case "ok":
                    return EventStatus.SUCCESS;
                  case "boom":
                    throw new IllegalStateException("handler failed");
                  case "drop":
                    return EventStatus.DROP;
                  default:
                    return null;
                }
              },
              SubscribeOptions.builder().deadLetterTopic("dead").maxRedeliveries(2).metadata("k", "v").build());
      var initial = impl.initials.poll(5, TimeUnit.SECONDS).getInitial();
      assertEquals("events", initial.getPubsubName());
      assertEquals("payments", initial.getTopic());
      assertEquals("dead", initial.getDeadLetterTopic());
      assertEquals(2, initial.getMaxRedeliveries());
      assertEquals("v", initial.getMetadataOrThrow("k"));
      List<String> got = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        EventAck a = take(impl.acks);
        got.add(a.getId() + "=" + a.getStatus());
      }
      assertEquals(
          List.of("ok=EVENT_STATUS_SUCCESS", "boom=EVENT_STATUS_RETRY", "drop=EVENT_STATUS_DROP", "null=EVENT_STATUS_RETRY"),
          got);
      assertTrue(sub.isActive());
      assertTrue(sc.appIdHeaders.contains("checkout"), "streams carry the app id too");
      sub.close();
      assertFalse(sub.isActive());
      assertTrue(sub.failure().isEmpty());
    }
  }

  @Test
  void withOneHandlerEventsAreHandledOneAtATimeInOrder() throws Exception {
    StreamSidecar impl = new StreamSidecar();
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < 50; i++) {
      ids.add("e" + i);
    }
    impl.events = ids;
    AtomicInteger running = new AtomicInteger();
    AtomicInteger maxRunning = new AtomicInteger();
    List<String> seen = java.util.Collections.synchronizedList(new ArrayList<>());
    try (FakeSidecar sc = new FakeSidecar(impl);
        OutrigClient c = sc.clientBuilder().build()) {
      c.subscribe("events", "t", e -> {
        maxRunning.accumulateAndGet(running.incrementAndGet(), Math::max);
        Thread.sleep(1);
        seen.add(e.id());
        running.decrementAndGet();
        return EventStatus.SUCCESS;
      }, null);
      for (int i = 0; i < ids.size(); i++) {
        take(impl.acks);
      }
      assertEquals(ids, seen);
      assertEquals(1, maxRunning.get());
    }
  }

  @Test
  void concurrentHandlersRunInParallelUpToTheBound() throws Exception {
    StreamSidecar impl = new StreamSidecar();
    impl.events = List.of("a", "b", "c", "d", "e", "f");
    AtomicInteger running = new AtomicInteger();
    AtomicInteger maxRunning = new AtomicInteger();
    try (FakeSidecar sc = new FakeSidecar(impl);
        OutrigClient c = sc.clientBuilder().build()) {
      c.subscribe("events", "t", e -> {
        maxRunning.accumulateAndGet(running.incrementAndGet(), Math::max);
        Thread.sleep(100);
        running.decrementAndGet();
        return EventStatus.SUCCESS;
      }, SubscribeOptions.builder().stream(StreamOptions.builder().maxConcurrentHandlers(3).build()).build());
      for (int i = 0; i < 6; i++) {
        take(impl.acks);
      }
      assertEquals(3, maxRunning.get());
    }
  }

  @Test
  void unknownPubsubFailsTheSubscribeCall() throws Exception {
    try (FakeSidecar sc = new FakeSidecar(new StreamSidecar());
        OutrigClient c = sc.clientBuilder().build()) {
      NotFoundException e =
          assertThrows(NotFoundException.class, () -> c.subscribe("missing", "t", ev -> EventStatus.SUCCESS, null));
      assertEquals("pubsub missing", e.serverMessage());
      CompletionException ce =
          assertThrows(java.util.concurrent.CompletionException.class,
              () -> c.subscribeAsync("missing", "t", ev -> EventStatus.SUCCESS, null).join());
      assertInstanceOf(NotFoundException.class, ce.getCause());
    }
  }

  @Test
  void subscriptionReconnectsAfterTheSidecarRestarts() throws Exception {
    StreamSidecar impl = new StreamSidecar();
    BlockingQueue<String> reconnects = new LinkedBlockingQueue<>();
    try (FakeSidecar sc = new FakeSidecar(impl);
        OutrigClient c = sc.clientBuilder().build()) {
      Subscription sub = c.subscribe("events", "t", e -> EventStatus.SUCCESS,
          SubscribeOptions.builder().stream(StreamOptions.builder()
              .reconnectBackoff(Duration.ofMillis(20), Duration.ofMillis(200))
              .onReconnect((err, delay) -> reconnects.add(err.code() + " " + delay.toMillis()))
              .build()).build());
      impl.initials.poll(5, TimeUnit.SECONDS);
      sc.stop();
      impl.events = List.of("after-restart");
      sc.start();
      assertTrue(impl.initials.poll(10, TimeUnit.SECONDS) != null, "subscribed again");
      EventAck a = take(impl.acks);
      assertEquals("after-restart", a.getId());
      String r = reconnects.poll(1, TimeUnit.SECONDS);
      assertTrue(r != null && r.startsWith("UNAVAILABLE"), String.valueOf(r));
      assertTrue(sub.isActive());
    }
  }

  @Test
  void withoutReconnectTheFirstFailureEndsTheSubscription() throws Exception {
    StreamSidecar impl = new StreamSidecar();
    try (FakeSidecar sc = new FakeSidecar(impl);
        OutrigClient c = sc.clientBuilder().build()) {
      Subscription sub = c.subscribe("events", "t", e -> EventStatus.SUCCESS,
          SubscribeOptions.builder().stream(StreamOptions.builder().reconnect(false).build()).build());
      sc.stop();
      assertTrue(sub.awaitTermination(Duration.ofSeconds(5)));
      assertFalse(sub.isActive());
      assertInstanceOf(UnavailableException.class, sub.failure().orElseThrow());
      sc.start();
    }
  }

  private static dev.outrig.api.runtime.v1.Invocation inv(long id, String method, String data) {
    return dev.outrig.api.runtime.v1.Invocation.newBuilder()
        .setId(id).setMethod(method).setData(ByteString.copyFromUtf8(data)).setCallerAppId("checkout").build();
  }

  @Test
  void serveRepliesWithTheSameIdAndMapsFailures() throws Exception {
    StreamSidecar impl = new StreamSidecar();
    impl.invocations = List.of(
        inv(1, "Echo", "hi"),
        inv(2, "Nope", ""),
        inv(3, "Missing", ""),
        inv(4, "Crash", ""),
        inv(5, "Denied", ""));
    Map<String, InvocationHandler> handlers = Map.of(
        "Echo", in -> new Reply((in.callerAppId() + ":" + in.dataAsString()).getBytes(UTF_8), "text/plain", Map.of("m", "1")),
        "Missing", in -> { throw new NotFoundException("no order 42"); },
        "Crash", in -> { throw new IllegalStateException("kaput"); },
        "Denied", in -> { throw new StatusRuntimeException(Status.PERMISSION_DENIED.withDescription("no")); });
    try (FakeSidecar sc = new FakeSidecar(impl);
        OutrigClient c = sc.clientBuilder().build();
        Subscription s = c.serve(handlers, null)) {
      Map<Long, InvocationReply> byId = new java.util.HashMap<>();
      for (int i = 0; i < 5; i++) {
        InvocationReply r = impl.replies.poll(5, TimeUnit.SECONDS);
        assertTrue(r != null, "reply " + i);
        byId.put(r.getId(), r);
      }
      assertEquals(0, byId.get(1L).getCode());
      assertEquals("checkout:hi", byId.get(1L).getData().toStringUtf8());
      assertEquals("text/plain", byId.get(1L).getContentType());
      assertEquals("1", byId.get(1L).getMetadataOrThrow("m"));
      assertEquals(Status.Code.NOT_FOUND.value(), byId.get(2L).getCode());
      assertTrue(byId.get(2L).getMessage().contains("Nope"));
      assertEquals(Status.Code.NOT_FOUND.value(), byId.get(3L).getCode());
      assertEquals("no order 42", byId.get(3L).getMessage());
      assertEquals(Status.Code.INTERNAL.value(), byId.get(4L).getCode());
      assertTrue(byId.get(4L).getMessage().contains("kaput"));
      assertEquals(Status.Code.PERMISSION_DENIED.value(), byId.get(5L).getCode());
      assertEquals("no", byId.get(5L).getMessage());
    }
  }

  @Test
  void serveRunsHandlersConcurrently() throws Exception {
    StreamSidecar impl = new StreamSidecar();
    impl.invocations = List.of(inv(1, "Wait", ""), inv(2, "Release", ""));
    CountDownLatch released = new CountDownLatch(1);
    Map<String, InvocationHandler> handlers = Map.of(
        "Wait", in -> {
          if (!released.await(5, TimeUnit.SECONDS)) {
            throw new IllegalStateException("Release never ran while Wait was running");
          }
          return Reply.of("waited", "text/plain");
        },
        "Release", in -> {
          released.countDown();
          return null;
        });
    try (FakeSidecar sc = new FakeSidecar(impl);
        OutrigClient c = sc.clientBuilder().build();
        Subscription s = c.serve(handlers, null)) {
      // Wait answers "waited" only if Release ran while it waited; the two
      // replies may arrive in either order (Release's is sent after it
      // counted down, Wait's as soon as it wakes).
      Map<Long, InvocationReply> byId = new java.util.HashMap<>();
      for (int i = 0; i < 2; i++) {
        InvocationReply r = impl.replies.poll(10, TimeUnit.SECONDS);
        assertTrue(r != null, "reply " + i);
        byId.put(r.getId(), r);
      }
      InvocationReply waited = byId.get(1L);
      assertEquals(0, waited.getCode(), waited.getMessage());
      assertEquals("waited", waited.getData().toStringUtf8());
      assertEquals(0, byId.get(2L).getCode());
    }
  }

  @Test
  void closeWaitsForRunningHandlersAndMayBeCalledFromOne() throws Exception {
    StreamSidecar impl = new StreamSidecar();
    impl.events = List.of("slow", "self-close");
    AtomicInteger finished = new AtomicInteger();
    CountDownLatch started = new CountDownLatch(1);
    try (FakeSidecar sc = new FakeSidecar(impl);
        OutrigClient c = sc.clientBuilder().build()) {
      Subscription sub = c.subscribe("events", "t", e -> {
        started.countDown();
        Thread.sleep(300);
        finished.incrementAndGet();
        return EventStatus.SUCCESS;
      }, null);
      assertTrue(started.await(5, TimeUnit.SECONDS));
      sub.close();
      assertEquals(1, finished.get(), "close returned only after the running handler");

      Subscription[] self = new Subscription[1];
      CountDownLatch closedInside = new CountDownLatch(1);
      impl.events = List.of("x");
      self[0] = c.subscribe("events", "t2", e -> {
        while (self[0] == null) {
          Thread.onSpinWait();
        }
        self[0].close();
        closedInside.countDown();
        return EventStatus.SUCCESS;
      }, null);
      assertTrue(closedInside.await(5, TimeUnit.SECONDS), "close from inside a handler returned");
      assertFalse(self[0].isActive());
    }
  }
}
