package dev.outrig.sdk;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;

/**
 * A Java app and the Go example app {@code orders} (examples/apps/orders, built by
 * run-tests.sh) exchanging invocations and events through two sidecars and one control plane
 * using examples/resources (state.in-memory, pubsub.outrig-broker, a declarative Subscription
 * with routing rules scoped to orders).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(90)
class CrossLanguageIT {
  private static final String JAVA_APP = "checkout-java";
  private OutrigProcess controlPlane;
  private OutrigProcess ordersSidecar;
  private OutrigProcess javaSidecar;
  private OutrigProcess ordersApp;
  private OutrigClient client;

  @BeforeAll
  void start() throws Exception {
    String orders = System.getProperty("outrig.orders", "");
    if (orders.isEmpty() || !Files.isExecutable(Path.of(orders))) {
      fail("system property outrig.orders (the built examples/apps/orders) is not set: run"
          + " sdk-java/run-tests.sh");
    }
    Path dir = Files.createTempDirectory("outrig-java-xlang");
    int cpPort = OutrigProcess.freePort();
    controlPlane = OutrigProcess.controlPlane(dir, OutrigProcess.repo().resolve("examples/resources"), cpPort);
    List<String> cp = List.of("--control-plane", "127.0.0.1:" + cpPort);
    Path ordersSock = dir.resolve("orders.sock");
    ordersSidecar = OutrigProcess.sidecar(dir, "orders", ordersSock, cp);
    ordersApp = OutrigProcess.start(List.of(orders), dir.resolve("orders-app.log"),
        Map.of("OUTRIG_ADDRESS", "unix://" + ordersSock), 0);
    ordersApp.awaitLog("orders: ready", 20);
    Path javaSock = dir.resolve("java.sock");
    javaSidecar = OutrigProcess.sidecar(dir, JAVA_APP, javaSock, cp);
    client = OutrigClient.builder().address("unix://" + javaSock).appId(JAVA_APP)
        .sharedMemory(javaSock + ".shm").build();
  }

  @AfterAll
  void stop() throws Exception {
    if (client != null) {
      client.close();
    }
    for (OutrigProcess p : new OutrigProcess[] {ordersApp, javaSidecar, ordersSidecar, controlPlane}) {
      if (p != null) {
        p.close();
      }
    }
  }

  private static byte[] b(String s) {
    return s.getBytes(UTF_8);
  }

  @Test
  void javaInvokesTheGoAppAndGoErrorsArriveTyped() {
    InvokeResponse r = client.invoke("orders", "CreateOrder",
        b("{\"id\":\"o-7\",\"item\":\"rig\",\"count\":2}"),
        InvokeOptions.builder().contentType("application/json").build());
    assertTrue(r.dataAsString().contains("\"by\":\"" + JAVA_APP + "\""), r.dataAsString());
    assertEquals("application/json", r.contentType());
    assertEquals("{\"id\":\"o-7\",\"item\":\"rig\",\"count\":2}",
        client.invoke("orders", "GetOrder", b("o-7")).dataAsString());
    NotFoundException nf = assertThrows(NotFoundException.class,
        () -> client.invoke("orders", "GetOrder", b("o-unknown")));
    assertTrue(nf.serverMessage().contains("o-unknown"), nf.serverMessage());
    assertThrows(InvalidArgumentException.class,
        () -> client.invoke("orders", "CreateOrder", b("not json")));
  }

  @Test
  void eventsPublishedFromJavaReachTheGoSubscriberWithTheirRoute() throws Exception {
    client.publish("events", "payments", b("{\"orderId\":\"p-1\",\"amount\":42}"),
        PublishOptions.builder().contentType("application/json").build());
    client.publish("events", "payments", b("{\"orderId\":\"p-2\",\"amount\":-42}"),
        PublishOptions.builder().contentType("application/json").metadata("cloudevent.type", "refund").build());
    assertEquals("/payments", awaitReceived("p-1"));
    assertEquals("/refunds", awaitReceived("p-2"));
  }

  @Test
  void javaSubscriberAndServerWorkThroughTheControlPlaneBroker() throws Exception {
    BlockingQueue<String> got = new LinkedBlockingQueue<>();
    try (Subscription sub = client.subscribe("events", "java-topic", e -> {
          got.add(e.dataAsString());
          return EventStatus.SUCCESS;
        }, null);
        Subscription serve = client.serve(Map.of("Ping", in -> Reply.of("pong from java", "text/plain")), null)) {
      client.publish("events", "java-topic", b("{\"hello\":1}"));
      assertEquals("{\"hello\":1}", got.poll(10, TimeUnit.SECONDS));
      assertEquals("pong from java", client.invoke(JAVA_APP, "Ping", new byte[0]).dataAsString());
    }
  }

  @Test
  void theGoAppInvokesJavaAndPublishesToTheJavaSubscriber() throws Exception {
    BlockingQueue<Invocation> calls = new LinkedBlockingQueue<>();
    BlockingQueue<TopicEvent> events = new LinkedBlockingQueue<>();
    try (Subscription sub = client.subscribe("events", "orders-created", e -> {
          events.add(e);
          return EventStatus.SUCCESS;
        }, null);
        Subscription serve = client.serve(Map.of("OrderCreated", in -> {
          calls.add(in);
          return Reply.of("{\"seen\":true}", "application/json");
        }), null)) {
      // Keys in sorted order: JSON event data travels inside the CloudEvent
      // as JSON and is re-encoded on delivery (keys sorted), as in Dapr.
      String order = "{\"announce\":{\"pubsub\":\"events\",\"topic\":\"orders-created\"},"
          + "\"count\":1,\"id\":\"o-go-to-java\",\"item\":\"rig\","
          + "\"notify\":{\"app\":\"" + JAVA_APP + "\",\"method\":\"OrderCreated\"}}";
      // serve and subscribe return once the Java sidecar accepted them.
      InvokeResponse r = client.invoke("orders", "CreateOrder", b(order),
          InvokeOptions.builder().contentType("application/json").build());
      // orders (Go) invoked OrderCreated on this Java app through both sidecars...
      assertTrue(r.dataAsString().contains("\"notified\":\"{\\\"seen\\\":true}\""), r.dataAsString());
      Invocation in = calls.poll(10, TimeUnit.SECONDS);
      assertNotNull(in, "the Java app was not invoked by the Go app");
      assertEquals("orders", in.callerAppId());
      assertEquals(order, in.dataAsString());
      assertEquals("application/json", in.contentType());
      // ...and published the order to the Java subscriber.
      TopicEvent e = events.poll(10, TimeUnit.SECONDS);
      assertNotNull(e, "the event the Go app published did not reach the Java subscriber");
      assertEquals(order, e.dataAsString());
      assertEquals("orders-created", e.topic());
      assertEquals("orders", e.source());
    }
  }

  private String awaitReceived(String orderId) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
    while (true) {
      try {
        return client.invoke("orders", "Received", b(orderId)).dataAsString();
      } catch (NotFoundException e) {
        if (System.nanoTime() > deadline) {
          throw e;
        }
        Thread.sleep(50);
      }
    }
  }
}
