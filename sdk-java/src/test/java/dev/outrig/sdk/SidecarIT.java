package dev.outrig.sdk;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every API against a real sidecar built from this repository, over gRPC on a Unix socket and
 * over shared memory, with in-memory components, a cron input binding and an HTTP output
 * binding to a server in this JVM. The last test kills the sidecar and starts a new one.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@Timeout(60)
class SidecarIT {
  private static final String APP = "java-app";
  private Path dir;
  private Path sock;
  private OutrigProcess sidecar;
  private HttpServer http;
  private OutrigClient grpc; // the default over gRPC: unary calls on Multiplex streams
  private OutrigClient unary; // one gRPC call per call
  private OutrigClient shm;

  @BeforeAll
  void start() throws Exception {
    dir = Files.createTempDirectory("outrig-java-it");
    sock = dir.resolve("java.sock");
    http = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    http.createContext("/", ex -> {
      byte[] in = ex.getRequestBody().readAllBytes();
      byte[] out = (ex.getRequestMethod() + " " + ex.getRequestURI().getPath() + " " + new String(in, UTF_8)).getBytes(UTF_8);
      ex.sendResponseHeaders(200, out.length);
      ex.getResponseBody().write(out);
      ex.close();
    });
    http.start();
    Path res = Files.createDirectories(dir.resolve("resources"));
    Files.writeString(res.resolve("components.yaml"), String.join("\n",
        "apiVersion: dapr.io/v1alpha1", "kind: Component", "metadata: { name: statestore }",
        "spec: { type: state.in-memory, version: v1, metadata: [] }", "---",
        "apiVersion: dapr.io/v1alpha1", "kind: Component", "metadata: { name: events }",
        "spec: { type: pubsub.in-memory, version: v1, metadata: [] }", "---",
        "apiVersion: dapr.io/v1alpha1", "kind: Component", "metadata: { name: ticker }",
        "spec:", "  type: bindings.cron", "  version: v1", "  metadata:",
        "  - { name: schedule, value: \"@every 1s\" }", "---",
        "apiVersion: dapr.io/v1alpha1", "kind: Component", "metadata: { name: web }",
        "spec:", "  type: bindings.http", "  version: v1", "  metadata:",
        "  - { name: url, value: \"http://127.0.0.1:" + http.getAddress().getPort() + "\" }", ""));
    sidecar = OutrigProcess.sidecar(dir, APP, sock, List.of("--resources", res.toString()));
    grpc = OutrigClient.builder().address("unix://" + sock).appId(APP).build();
    unary = OutrigClient.builder().address("unix://" + sock).appId(APP).unaryRpc().build();
    shm = OutrigClient.builder().address("unix://" + sock).appId(APP).sharedMemory(sock + ".shm").build();
  }

  @AfterAll
  void stop() throws Exception {
    grpc.close();
    unary.close();
    shm.close();
    if (sidecar != null) {
      sidecar.close();
    }
    http.stop(0);
  }

  private OutrigClient client(String kind) {
    return switch (kind) {
      case "shm" -> shm;
      case "unary" -> unary;
      default -> grpc;
    };
  }

  private static byte[] b(String s) {
    return s.getBytes(UTF_8);
  }

  @ParameterizedTest
  @ValueSource(strings = {"grpc", "unary", "shm"})
  @Order(1)
  void stateWithEtagsFirstWriteWins(String kind) {
    OutrigClient c = client(kind);
    long shmBefore = shm.sharedMemoryCalls();
    long muxBefore = grpc.multiplexCalls();
    String key = "cart-" + kind;
    c.saveState("statestore", key, b("{\"items\":1}"));
    StateItem it = c.getState("statestore", key);
    assertTrue(it.found());
    assertEquals("{\"items\":1}", it.valueAsString());
    assertFalse(it.etag().isEmpty(), "the in-memory store returns ETags");

    c.saveState("statestore", key, b("{\"items\":2}"), StateOptions.etag(it.etag()));
    EtagMismatchException stale = assertThrows(EtagMismatchException.class,
        () -> c.saveState("statestore", key, b("{\"items\":3}"), StateOptions.etag(it.etag())));
    assertEquals(io.grpc.Status.Code.ABORTED, stale.code());
    assertThrows(EtagMismatchException.class,
        () -> c.deleteState("statestore", key, StateOptions.etag(it.etag())));
    assertEquals("{\"items\":2}", c.getState("statestore", key, ReadOptions.consistency(Consistency.STRONG)).valueAsString());

    c.deleteState("statestore", key, StateOptions.etag(c.getState("statestore", key).etag()));
    assertFalse(c.getState("statestore", key).found());
    c.deleteState("statestore", key); // deleting a missing key succeeds
    assertEquals(-1, grpc.sharedMemoryCalls());
    // The 8 successful calls went over shared memory, or on Multiplex streams, as the client
    // chose; unaryRpc() and shared-memory clients use no Multiplex stream.
    assertEquals(kind.equals("shm") ? 8 : 0, shm.sharedMemoryCalls() - shmBefore);
    assertEquals(kind.equals("grpc") ? 8 : 0, grpc.multiplexCalls() - muxBefore);
    assertEquals(-1, unary.multiplexCalls());
    assertEquals(-1, shm.multiplexCalls());
  }

  @ParameterizedTest
  @ValueSource(strings = {"grpc", "unary", "shm"})
  @Order(2)
  void bulkCallsAndTransactions(String kind) {
    OutrigClient c = client(kind);
    String p = "bulk-" + kind + "-";
    c.saveBulkState("statestore", List.of(SaveItem.of(p + "a", b("1")), SaveItem.of(p + "b", b("2")), SaveItem.of(p + "c", b("3"))));
    List<BulkStateItem> items = c.getBulkState("statestore", List.of(p + "a", p + "b", p + "missing"), ReadOptions.builder().parallelism(2).build());
    Map<String, BulkStateItem> byKey = items.stream().collect(Collectors.toMap(i -> i.item().key(), i -> i));
    assertEquals("1", byKey.get(p + "a").item().valueAsString());
    assertEquals("2", byKey.get(p + "b").item().valueAsString());
    assertFalse(byKey.get(p + "missing").item().found());
    assertTrue(byKey.get(p + "a").failure().isEmpty());

    c.executeStateTransaction("statestore", List.of(
        StateOperation.upsert(p + "a", b("10")), StateOperation.delete(p + "b")), null);
    assertEquals("10", c.getState("statestore", p + "a").valueAsString());
    assertFalse(c.getState("statestore", p + "b").found());

    // A stale ETag fails the whole transaction: nothing of it is applied.
    String etag = c.getState("statestore", p + "c").etag();
    c.saveState("statestore", p + "c", b("30"));
    assertThrows(EtagMismatchException.class, () -> c.executeStateTransaction("statestore", List.of(
        StateOperation.upsert(p + "a", b("11")), StateOperation.upsert(p + "c", b("31"), StateOptions.etag(etag))), null));
    assertEquals("10", c.getState("statestore", p + "a").valueAsString());

    c.deleteBulkState("statestore", List.of(DeleteItem.of(p + "a"), DeleteItem.of(p + "c")));
    assertFalse(c.getState("statestore", p + "a").found());
    assertFalse(c.getState("statestore", p + "c").found());
  }

  @ParameterizedTest
  @ValueSource(strings = {"grpc", "unary", "shm"})
  @Order(3)
  void ttlExpiresItems(String kind) throws Exception {
    OutrigClient c = client(kind);
    String key = "ttl-" + kind;
    c.saveState("statestore", key, b("x"), StateOptions.ttl(Duration.ofSeconds(1)));
    assertTrue(c.getState("statestore", key).found());
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (c.getState("statestore", key).found()) {
      assertTrue(System.nanoTime() < deadline, "item still there 5s after a 1s TTL");
      Thread.sleep(100);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"grpc", "unary", "shm"})
  @Order(4)
  void sidecarErrorsAreTyped(String kind) {
    OutrigClient c = client(kind);
    NotFoundException nf = assertThrows(NotFoundException.class, () -> c.getState("nostore", "k"));
    assertTrue(nf.serverMessage().contains("nostore"), nf.serverMessage());
    assertEquals("GetState", nf.operation().orElseThrow());
    assertThrows(NotFoundException.class, () -> c.publish("nopubsub", "t", b("{}")));
    CompletionException ce = assertThrows(CompletionException.class,
        () -> c.getStateAsync("nostore", "k", null).join());
    assertInstanceOf(NotFoundException.class, ce.getCause());
  }

  @ParameterizedTest
  @ValueSource(strings = {"grpc", "unary", "shm"})
  @Order(5)
  void manyConcurrentAsyncCallsAndLargeValues(String kind) {
    OutrigClient c = client(kind);
    List<CompletableFuture<Void>> saves = new ArrayList<>();
    for (int i = 0; i < 200; i++) {
      saves.add(c.saveStateAsync("statestore", "conc-" + kind + "-" + i, b("v" + i), null));
    }
    CompletableFuture.allOf(saves.toArray(CompletableFuture[]::new)).join();
    List<CompletableFuture<StateItem>> gets = new ArrayList<>();
    for (int i = 0; i < 200; i++) {
      gets.add(c.getStateAsync("statestore", "conc-" + kind + "-" + i, null));
    }
    for (int i = 0; i < 200; i++) {
      assertEquals("v" + i, gets.get(i).join().valueAsString());
    }
    // 1 MiB: many frames over shared memory, in both directions.
    byte[] big = new byte[1 << 20];
    for (int i = 0; i < big.length; i++) {
      big[i] = (byte) (i * 31 + 7);
    }
    c.saveState("statestore", "big-" + kind, big);
    assertArrayEquals(big, c.getState("statestore", "big-" + kind).value());
  }

  @ParameterizedTest
  @ValueSource(strings = {"grpc", "unary", "shm"})
  @Order(6)
  void publishedEventsReachTheSubscriberAndRetryRedelivers(String kind) throws Exception {
    OutrigClient c = client(kind);
    String topic = "orders-" + kind;
    BlockingQueue<TopicEvent> got = new LinkedBlockingQueue<>();
    try (Subscription sub = grpc.subscribe("events", topic, e -> {
      got.add(e);
      return e.dataAsString().contains("retry") && e.attempt() == 1 ? EventStatus.RETRY : EventStatus.SUCCESS;
    }, SubscribeOptions.builder().maxRedeliveries(2).build())) {
      c.publish("events", topic, b("{\"n\":1}"), PublishOptions.builder().contentType("application/json").partitionKey("k").build());
      c.publish("events", topic, b("{\"retry\":true}"));
      BulkPublishResult r = c.bulkPublish("events", topic,
          List.of(BulkPublishEntry.of(b("{\"n\":2}")), BulkPublishEntry.of(b("{\"n\":3}"))), null);
      assertTrue(r.allPublished(), r.toString());
      List<String> seen = new ArrayList<>();
      while (seen.size() < 5) {
        TopicEvent e = got.poll(10, TimeUnit.SECONDS);
        assertTrue(e != null, "events so far: " + seen);
        assertEquals(topic, e.topic());
        assertEquals("events", e.pubsubName());
        assertFalse(e.id().isEmpty());
        seen.add(e.dataAsString() + "#" + e.attempt());
      }
      assertEquals(Set.of("{\"n\":1}#1", "{\"retry\":true}#1", "{\"retry\":true}#2", "{\"n\":2}#1", "{\"n\":3}#1"), Set.copyOf(seen));
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"grpc", "unary", "shm"})
  @Order(7)
  void invokeReachesTheServeStreamOfTheApp(String kind) throws Exception {
    OutrigClient c = client(kind);
    Map<String, InvocationHandler> handlers = Map.of(
        "Echo", in -> new Reply(b(in.callerAppId() + ":" + in.dataAsString() + ":" + in.metadata().getOrDefault("x-trace", "")), "text/plain", Map.of()),
        "Missing", in -> { throw new NotFoundException("no order 42"); },
        "Crash", in -> { throw new IllegalStateException("kaput"); },
        "Slow", in -> {
          try {
            Thread.sleep(3000);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
          return new Reply(b("late"), "text/plain", Map.of());
        });
    try (Subscription s = grpc.serve(handlers, null)) {
      InvokeResponse r = c.invoke(APP, "Echo", b("hi"), InvokeOptions.builder().contentType("text/plain").metadata("x-trace", "t1").build());
      assertEquals(APP + ":hi:t1", r.dataAsString());
      NotFoundException nf = assertThrows(NotFoundException.class, () -> c.invoke(APP, "Missing", new byte[0]));
      assertTrue(nf.serverMessage().contains("no order 42"), nf.serverMessage());
      OutrigException crash = assertThrows(OutrigException.class, () -> c.invoke(APP, "Crash", new byte[0]));
      assertEquals(io.grpc.Status.Code.INTERNAL, crash.code());
      assertTrue(crash.serverMessage().contains("kaput"), crash.serverMessage());
      assertThrows(NotFoundException.class, () -> c.invoke(APP, "Unknown", new byte[0]));
      assertEquals(APP + ":async:", c.invokeAsync(APP, "Echo", b("async"), null).join().dataAsString());
      // The caller's deadline bounds the call on every carrier; the client serves the next call.
      long t0 = System.nanoTime();
      assertThrows(DeadlineExceededException.class,
          () -> c.withTimeout(Duration.ofMillis(300)).invoke(APP, "Slow", new byte[0]));
      CompletionException late = assertThrows(CompletionException.class,
          () -> c.withTimeout(Duration.ofMillis(300)).invokeAsync(APP, "Slow", new byte[0], null).join());
      assertInstanceOf(DeadlineExceededException.class, late.getCause());
      long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
      assertTrue(ms < 2500, "two 300 ms deadlines took " + ms + " ms");
      assertEquals(APP + ":after:", c.invoke(APP, "Echo", b("after")).dataAsString());
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"grpc", "unary", "shm"})
  @Order(8)
  void outputBindingAndMetadata(String kind) {
    OutrigClient c = client(kind);
    BindingResponse r = c.invokeBinding("web", "post", b("ping"), Map.of("path", "/hook"));
    assertEquals("POST /hook ping", new String(r.data(), UTF_8));
    AppMetadata md = c.getMetadata();
    assertEquals(APP, md.appId());
    Set<String> names = md.components().stream().map(AppMetadata.ComponentInfo::name).collect(Collectors.toSet());
    assertTrue(names.containsAll(Set.of("statestore", "events", "ticker", "web")), names.toString());
    assertEquals(md.appId(), c.getMetadataAsync().join().appId());
  }

  /**
   * A lone shared-memory caller polls for its reply (busyPoll, on by default), so the sidecar
   * seldom has to ring a doorbell to wake the app ({@code outrig_shm_wakeups_total}); a client
   * that does not poll ({@code busyPoll(ZERO)}) is woken for most calls. Compared in one run,
   * after a warm-up (the JIT), so that a loaded machine moves both alike.
   */
  @Test
  @Order(8)
  void loneSharedMemoryCallerPollsForItsReply() throws Exception {
    int calls = 300;
    long polling = wakeups(Duration.ofNanos(200_000), calls);
    long sleeping = wakeups(Duration.ZERO, calls);
    assertTrue(sleeping >= calls / 2, "a client that does not poll was woken " + sleeping + " times in " + calls + " calls");
    // Usually a handful against most calls (33 against 260 with both cores saturated by other
    // processes); replies that take longer than the budget wake a polling client too.
    assertTrue(polling < sleeping,
        "a lone polling caller was woken " + polling + " times in " + calls + " calls, one that does not poll " + sleeping);
    assertThrows(InvalidArgumentException.class, () -> OutrigClient.builder().busyPoll(Duration.ofNanos(-1)));
  }

  /** Wake-ups the sidecar rang for calls sequential GetState calls of a client with busyPoll. */
  private long wakeups(Duration busyPoll, int calls) throws Exception {
    try (OutrigClient c = OutrigClient.builder().address("unix://" + sock).appId(APP)
        .sharedMemory(sock + ".shm").busyPoll(busyPoll).build()) {
      c.saveState("statestore", "lone", b("v"));
      for (int i = 0; i < 1000; i++) { // warm-up
        c.getState("statestore", "lone");
      }
      long before = metric("outrig_shm_wakeups_total");
      for (int i = 0; i < calls; i++) {
        assertEquals("v", c.getState("statestore", "lone").valueAsString());
      }
      return metric("outrig_shm_wakeups_total") - before;
    }
  }

  private long metric(String name) throws Exception {
    java.net.http.HttpResponse<String> r = java.net.http.HttpClient.newHttpClient().send(
        java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + sidecar.adminPort + "/metrics")).build(),
        java.net.http.HttpResponse.BodyHandlers.ofString());
    for (String line : r.body().split("\n")) {
      if (line.startsWith(name + " ")) {
        return (long) Double.parseDouble(line.substring(name.length() + 1).trim());
      }
    }
    throw new AssertionError(name + " not on /metrics");
  }

  @Test
  @Order(9)
  void inputBindingEventsArrive() throws Exception {
    BlockingQueue<BindingEvent> got = new LinkedBlockingQueue<>();
    try (Subscription s = grpc.subscribeBinding("ticker", e -> {
      got.add(e);
      return EventStatus.SUCCESS;
    }, null)) {
      BindingEvent e = got.poll(10, TimeUnit.SECONDS);
      assertTrue(e != null, "no cron event within 10s");
      assertEquals("ticker", e.name());
    }
  }

  @Test
  @Order(10)
  void clientsRecoverWhenTheSidecarIsKilledAndRestarted() throws Exception {
    BlockingQueue<String> got = new LinkedBlockingQueue<>();
    BlockingQueue<String> reconnects = new LinkedBlockingQueue<>();
    Subscription sub = grpc.subscribe("events", "restart", e -> {
      got.add(e.dataAsString());
      return EventStatus.SUCCESS;
    }, SubscribeOptions.builder().stream(StreamOptions.builder()
        .onReconnect((err, d) -> reconnects.add(err.code().name())).build()).build());
    sidecar.kill();
    // Calls fail fast while the sidecar is down, on every carrier.
    assertThrows(UnavailableException.class, () -> grpc.getState("statestore", "k"));
    assertThrows(UnavailableException.class, () -> unary.getState("statestore", "k"));
    assertThrows(UnavailableException.class, () -> shm.getState("statestore", "k"));
    Path res = dir.resolve("resources");
    long t0 = System.nanoTime();
    sidecar = OutrigProcess.sidecar(dir, APP, sock, List.of("--resources", res.toString()));
    for (OutrigClient c : new OutrigClient[] {grpc, unary, shm}) {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (true) {
        try {
          c.saveState("statestore", "after-restart", b("ok"));
          break;
        } catch (UnavailableException e) {
          assertTrue(System.nanoTime() < deadline, "no recovery within 10s: " + e);
          Thread.sleep(50);
        }
      }
    }
    System.out.printf("recovered %d ms after the new sidecar started%n",
        TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
    assertEquals("ok", shm.getState("statestore", "after-restart").valueAsString());
    // The subscription subscribed again: an event published now reaches it.
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
    String e = null;
    while (e == null && System.nanoTime() < deadline) {
      grpc.publish("events", "restart", b("\"after\""));
      e = got.poll(500, TimeUnit.MILLISECONDS);
    }
    assertEquals("\"after\"", e);
    assertTrue(sub.isActive());
    assertTrue(reconnects.contains("UNAVAILABLE"), reconnects.toString());
    sub.close();
  }
}
