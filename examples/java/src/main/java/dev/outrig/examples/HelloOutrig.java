package dev.outrig.examples;

import static java.nio.charset.StandardCharsets.UTF_8;

import dev.outrig.sdk.EtagMismatchException;
import dev.outrig.sdk.EventStatus;
import dev.outrig.sdk.InvokeOptions;
import dev.outrig.sdk.InvokeResponse;
import dev.outrig.sdk.OutrigClient;
import dev.outrig.sdk.OutrigClientBuilder;
import dev.outrig.sdk.PublishOptions;
import dev.outrig.sdk.Reply;
import dev.outrig.sdk.StateItem;
import dev.outrig.sdk.StateOptions;
import dev.outrig.sdk.Subscription;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A small Java application on Outrig: it keeps state (with an ETag conflict), serves a method
 * and invokes it through the sidecar, and publishes an event it receives itself. It reads the
 * sidecar address from OUTRIG_ADDRESS and its app id from OUTRIG_APP_ID; with OUTRIG_SHM set
 * to the sidecar's shared-memory socket, unary calls go over shared memory.
 *
 * <p>Components used (examples/resources): state store "statestore", pubsub "events".
 */
public final class HelloOutrig {
  private HelloOutrig() {}

  /**
   * Runs the steps and exits non-zero when one fails.
   *
   * @param args unused
   * @throws Exception on failure
   */
  public static void main(String[] args) throws Exception {
    OutrigClientBuilder b = OutrigClient.builder();
    String shm = System.getenv("OUTRIG_SHM");
    if (shm != null && !shm.isEmpty()) {
      b.sharedMemory(shm);
    }
    try (OutrigClient client = b.build()) {
      String appId = client.getMetadata().appId();
      System.out.println("connected to " + client.address() + " as app " + appId
          + (shm != null && !shm.isEmpty() ? " (unary calls over shared memory)" : ""));

      // State: save, read, conditional write, and a lost first-write-wins race.
      String key = "greeting-" + ProcessHandle.current().pid();
      client.saveState("statestore", key, "hello".getBytes(UTF_8));
      StateItem item = client.getState("statestore", key);
      System.out.println("state: " + key + " = " + item.valueAsString() + " (etag " + item.etag() + ")");
      client.saveState("statestore", key, "hello again".getBytes(UTF_8), StateOptions.etag(item.etag()));
      try {
        client.saveState("statestore", key, "too late".getBytes(UTF_8), StateOptions.etag(item.etag()));
        throw new IllegalStateException("a stale ETag was accepted");
      } catch (EtagMismatchException e) {
        System.out.println("state: stale etag rejected: " + e.getMessage());
      }

      // Serving and invoking: this app answers "Hello" and calls itself through the sidecar.
      try (Subscription serving = client.serve(Map.of("Hello",
          in -> Reply.of("hello " + in.dataAsString() + ", from " + appId, "text/plain")), null)) {
        InvokeResponse r = client.invoke(appId, "Hello", "java".getBytes(UTF_8),
            InvokeOptions.builder().contentType("text/plain").build());
        System.out.println("invoke: " + r.dataAsString());
      }

      // Pub/sub: subscribe, publish, receive.
      BlockingQueue<String> received = new ArrayBlockingQueue<>(1);
      try (Subscription sub = client.subscribe("events", "greetings", e -> {
        received.offer(e.dataAsString() + " (attempt " + e.attempt() + ")");
        return EventStatus.SUCCESS;
      }, null)) {
        client.publish("events", "greetings", "{\"text\":\"hi\"}".getBytes(UTF_8),
            PublishOptions.builder().contentType("application/json").build());
        String got = received.poll(10, TimeUnit.SECONDS);
        if (got == null) {
          throw new IllegalStateException("the published event did not arrive within 10s");
        }
        System.out.println("pubsub: received " + got);
      }
      client.deleteState("statestore", key);
      System.out.println("done");
    }
  }
}
