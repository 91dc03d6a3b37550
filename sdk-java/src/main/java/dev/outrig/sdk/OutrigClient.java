package dev.outrig.sdk;

import dev.outrig.api.runtime.v1.GetMetadataRequest;
import dev.outrig.api.runtime.v1.RuntimeGrpc;
import io.grpc.MethodDescriptor;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * The client of one Outrig sidecar: state, pub/sub, service invocation, bindings and metadata
 * through the building-block API, over gRPC (a Unix socket by default) and optionally shared
 * memory.
 *
 * <pre>{@code
 * try (OutrigClient client = OutrigClient.builder().build()) {
 *   client.saveState("orders", "o1", "{\"qty\":1}".getBytes(UTF_8));
 *   StateItem item = client.getState("orders", "o1");
 *   client.publish("events", "paid", item.value());
 *   InvokeResponse r = client.invoke("payments", "Charge", item.value());
 * }
 * }</pre>
 *
 * <p>Create one client per process and share it: all methods are thread-safe and every call
 * and stream shares one connection. Each unary call exists in a blocking form, which throws
 * {@link OutrigException} (the subclass selected by the gRPC status code), and an {@code
 * ...Async} form returning a {@link CompletableFuture} that completes exceptionally with that
 * exception (wrapped in a {@code CompletionException} by {@code join()}, an {@code
 * ExecutionException} by {@code get()}). Argument errors are {@link InvalidArgumentException}s
 * raised before anything is sent. Options parameters accept null, meaning no options.
 *
 * <p>Every unary call has the client's deadline ({@link OutrigClientBuilder#timeout}, default
 * 10 s); {@link #withTimeout(Duration)} gives a view with another one.
 */
public final class OutrigClient implements AutoCloseable {
  /** The sidecar address used when neither the builder nor {@code OUTRIG_ADDRESS} says. */
  public static final String DEFAULT_ADDRESS = "unix:///tmp/outrig.sock";
  /** Environment variable with the sidecar address. */
  public static final String ENV_ADDRESS = "OUTRIG_ADDRESS";
  /** Environment variable with the calling app's id. */
  public static final String ENV_APP_ID = "OUTRIG_APP_ID";
  /** The default deadline of unary calls. */
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(10);

  private static final int DEFAULT_SERVE_CONCURRENCY = 64;

  private final ClientCore core;
  private final Duration timeout;
  private final boolean owner;

  OutrigClient(ClientCore core, Duration timeout, boolean owner) {
    this.core = core;
    this.timeout = timeout;
    this.owner = owner;
  }

  /**
   * A builder reading unset values from {@code OUTRIG_ADDRESS} and {@code OUTRIG_APP_ID}.
   *
   * @return a new builder
   */
  public static OutrigClientBuilder builder() {
    return new OutrigClientBuilder();
  }

  /**
   * The sidecar address in use, as given (before normalisation).
   *
   * @return the address
   */
  public String address() {
    return core.address();
  }

  /**
   * The app id sent in the {@code outrig-app-id} header ("" when none).
   *
   * @return the app id
   */
  public String appId() {
    return core.appId();
  }

  /**
   * The deadline of this client's unary calls ({@link Duration#ZERO}: none).
   *
   * @return the timeout
   */
  public Duration timeout() {
    return timeout;
  }

  /**
   * A view of this client whose unary calls have another deadline. It shares the connection
   * and streams of this client; closing the view does nothing, closing this client ends both.
   *
   * @param timeout the deadline of each call; {@link Duration#ZERO} means none
   * @return the view
   */
  public OutrigClient withTimeout(Duration timeout) {
    if (timeout == null || timeout.isNegative()) {
      throw ErrorMapping.invalidArgument("withTimeout", "timeout", timeout + " is negative");
    }
    return new OutrigClient(core, timeout, false);
  }

  /** Calls answered over shared memory so far, -1 without it (tests, diagnostics). */
  long sharedMemoryCalls() {
    return core.sharedMemoryCalls();
  }

  /** Calls answered on Multiplex streams so far, -1 when not used (tests, diagnostics). */
  long multiplexCalls() {
    return core.multiplexCalls();
  }

  // ------------------------------------------------------------------ state

  /**
   * Reads key from store. A missing key is not an error: the item's {@code found} is false.
   *
   * @param store the state store component
   * @param key the key
   * @return the item
   */
  public StateItem getState(String store, String key) {
    return getState(store, key, null);
  }

  /**
   * Reads key from store with options (consistency, metadata).
   *
   * @param store the state store component
   * @param key the key
   * @param options the options, or null
   * @return the item
   */
  public StateItem getState(String store, String key, ReadOptions options) {
    return call(
        RuntimeGrpc.getGetStateMethod(),
        Requests.getState(store, key, options),
        r -> Responses.stateItem(key, r));
  }

  /**
   * Async form of {@link #getState(String, String, ReadOptions)}.
   *
   * @param store the state store component
   * @param key the key
   * @param options the options, or null
   * @return the item's future
   */
  public CompletableFuture<StateItem> getStateAsync(String store, String key, ReadOptions options) {
    return callAsync(
        RuntimeGrpc.getGetStateMethod(),
        () -> Requests.getState(store, key, options),
        r -> Responses.stateItem(key, r));
  }

  /**
   * Reads several keys; each result carries its own error. Options: parallelism, metadata.
   *
   * @param store the state store component
   * @param keys the keys, non-empty
   * @param options the options, or null
   * @return one result per key
   */
  public List<BulkStateItem> getBulkState(String store, List<String> keys, ReadOptions options) {
    return call(
        RuntimeGrpc.getGetBulkStateMethod(),
        Requests.getBulkState(store, keys, options),
        Responses::bulkItems);
  }

  /**
   * Async form of {@link #getBulkState}.
   *
   * @param store the state store component
   * @param keys the keys, non-empty
   * @param options the options, or null
   * @return the results' future
   */
  public CompletableFuture<List<BulkStateItem>> getBulkStateAsync(
      String store, List<String> keys, ReadOptions options) {
    return callAsync(
        RuntimeGrpc.getGetBulkStateMethod(),
        () -> Requests.getBulkState(store, keys, options),
        Responses::bulkItems);
  }

  /**
   * Writes value under key (last write wins).
   *
   * @param store the state store component
   * @param key the key
   * @param value the value (0 bytes is valid)
   */
  public void saveState(String store, String key, byte[] value) {
    saveState(store, key, value, null);
  }

  /**
   * Writes value under key with options: an ETag (first-write-wins; a stale one throws {@link
   * EtagMismatchException}), TTL, consistency, concurrency, metadata, content type.
   *
   * @param store the state store component
   * @param key the key
   * @param value the value
   * @param options the options, or null
   */
  public void saveState(String store, String key, byte[] value, StateOptions options) {
    call(
        RuntimeGrpc.getSaveStateMethod(),
        Requests.saveState(store, key, value, options),
        r -> null);
  }

  /**
   * Async form of {@link #saveState(String, String, byte[], StateOptions)}.
   *
   * @param store the state store component
   * @param key the key
   * @param value the value
   * @param options the options, or null
   * @return completes when saved
   */
  public CompletableFuture<Void> saveStateAsync(
      String store, String key, byte[] value, StateOptions options) {
    return callAsync(
        RuntimeGrpc.getSaveStateMethod(),
        () -> Requests.saveState(store, key, value, options),
        r -> null);
  }

  /**
   * Writes several items in one call. Not atomic: use {@link #executeStateTransaction} for that.
   *
   * @param store the state store component
   * @param items the items, non-empty
   */
  public void saveBulkState(String store, List<SaveItem> items) {
    call(RuntimeGrpc.getSaveStateMethod(), Requests.saveBulkState(store, items), r -> null);
  }

  /**
   * Async form of {@link #saveBulkState}.
   *
   * @param store the state store component
   * @param items the items, non-empty
   * @return completes when saved
   */
  public CompletableFuture<Void> saveBulkStateAsync(String store, List<SaveItem> items) {
    return callAsync(
        RuntimeGrpc.getSaveStateMethod(), () -> Requests.saveBulkState(store, items), r -> null);
  }

  /**
   * Deletes key; deleting a missing key succeeds.
   *
   * @param store the state store component
   * @param key the key
   */
  public void deleteState(String store, String key) {
    deleteState(store, key, null);
  }

  /**
   * Deletes key with options (ETag, consistency, concurrency, metadata).
   *
   * @param store the state store component
   * @param key the key
   * @param options the options, or null
   */
  public void deleteState(String store, String key, StateOptions options) {
    call(RuntimeGrpc.getDeleteStateMethod(), Requests.deleteState(store, key, options), r -> null);
  }

  /**
   * Async form of {@link #deleteState(String, String, StateOptions)}.
   *
   * @param store the state store component
   * @param key the key
   * @param options the options, or null
   * @return completes when deleted
   */
  public CompletableFuture<Void> deleteStateAsync(String store, String key, StateOptions options) {
    return callAsync(
        RuntimeGrpc.getDeleteStateMethod(),
        () -> Requests.deleteState(store, key, options),
        r -> null);
  }

  /**
   * Deletes several keys in one call (not atomically).
   *
   * @param store the state store component
   * @param items the items, non-empty
   */
  public void deleteBulkState(String store, List<DeleteItem> items) {
    call(RuntimeGrpc.getDeleteBulkStateMethod(), Requests.deleteBulkState(store, items), r -> null);
  }

  /**
   * Async form of {@link #deleteBulkState}.
   *
   * @param store the state store component
   * @param items the items, non-empty
   * @return completes when deleted
   */
  public CompletableFuture<Void> deleteBulkStateAsync(String store, List<DeleteItem> items) {
    return callAsync(
        RuntimeGrpc.getDeleteBulkStateMethod(),
        () -> Requests.deleteBulkState(store, items),
        r -> null);
  }

  /**
   * Applies the operations atomically: all or none. Stores without transactions throw {@link
   * NotSupportedException}; a stale ETag in any operation fails the whole transaction with
   * {@link EtagMismatchException}.
   *
   * @param store the state store component
   * @param operations upserts and deletes, non-empty
   * @param metadata metadata of the transaction as a whole (e.g. a partition key), or null
   */
  public void executeStateTransaction(
      String store, List<StateOperation> operations, Map<String, String> metadata) {
    call(
        RuntimeGrpc.getExecuteStateTransactionMethod(),
        Requests.transaction(store, operations, metadata),
        r -> null);
  }

  /**
   * Async form of {@link #executeStateTransaction}.
   *
   * @param store the state store component
   * @param operations upserts and deletes, non-empty
   * @param metadata metadata of the transaction, or null
   * @return completes when committed
   */
  public CompletableFuture<Void> executeStateTransactionAsync(
      String store, List<StateOperation> operations, Map<String, String> metadata) {
    return callAsync(
        RuntimeGrpc.getExecuteStateTransactionMethod(),
        () -> Requests.transaction(store, operations, metadata),
        r -> null);
  }

  // ------------------------------------------------------------------ pub/sub

  /**
   * Publishes data as one event (wrapped by the sidecar in a CloudEvents envelope).
   *
   * @param pubsub the pubsub component
   * @param topic the topic
   * @param data the event data
   */
  public void publish(String pubsub, String topic, byte[] data) {
    publish(pubsub, topic, data, null);
  }

  /**
   * Publishes data as one event with options: content type, partition key, raw payload,
   * metadata.
   *
   * @param pubsub the pubsub component
   * @param topic the topic
   * @param data the event data
   * @param options the options, or null
   */
  public void publish(String pubsub, String topic, byte[] data, PublishOptions options) {
    call(RuntimeGrpc.getPublishMethod(), Requests.publish(pubsub, topic, data, options), r -> null);
  }

  /**
   * Async form of {@link #publish(String, String, byte[], PublishOptions)}.
   *
   * @param pubsub the pubsub component
   * @param topic the topic
   * @param data the event data
   * @param options the options, or null
   * @return completes when the sidecar accepted the event
   */
  public CompletableFuture<Void> publishAsync(
      String pubsub, String topic, byte[] data, PublishOptions options) {
    return callAsync(
        RuntimeGrpc.getPublishMethod(),
        () -> Requests.publish(pubsub, topic, data, options),
        r -> null);
  }

  /**
   * Publishes several events in one call. Entries that failed are listed in the result (the
   * others were published); if the call as a whole fails it throws.
   *
   * @param pubsub the pubsub component
   * @param topic the topic
   * @param entries the events, non-empty, with unique ids
   * @param options request-wide options (metadata, partition key, raw payload), or null
   * @return which entries failed
   */
  public BulkPublishResult bulkPublish(
      String pubsub, String topic, List<BulkPublishEntry> entries, PublishOptions options) {
    return call(
        RuntimeGrpc.getBulkPublishMethod(),
        Requests.bulkPublish(pubsub, topic, entries, options),
        Responses::bulkPublish);
  }

  /**
   * Async form of {@link #bulkPublish}.
   *
   * @param pubsub the pubsub component
   * @param topic the topic
   * @param entries the events
   * @param options request-wide options, or null
   * @return the result's future
   */
  public CompletableFuture<BulkPublishResult> bulkPublishAsync(
      String pubsub, String topic, List<BulkPublishEntry> entries, PublishOptions options) {
    return callAsync(
        RuntimeGrpc.getBulkPublishMethod(),
        () -> Requests.bulkPublish(pubsub, topic, entries, options),
        Responses::bulkPublish);
  }

  // ------------------------------------------------------------------ invocation & bindings

  /**
   * Calls method of the application appId through the sidecars and returns its answer.
   *
   * @param appId the callee's app id
   * @param method the method
   * @param data the request payload, passed through untouched
   * @return the callee's answer
   */
  public InvokeResponse invoke(String appId, String method, byte[] data) {
    return invoke(appId, method, data, null);
  }

  /**
   * Calls method of appId with options (content type, metadata, HTTP verb, hash key). A
   * failure answered by the callee arrives with the callee's status code.
   *
   * @param appId the callee's app id
   * @param method the method
   * @param data the request payload
   * @param options the options, or null
   * @return the callee's answer
   */
  public InvokeResponse invoke(String appId, String method, byte[] data, InvokeOptions options) {
    return call(
        RuntimeGrpc.getInvokeMethod(),
        Requests.invoke(appId, method, data, options),
        Responses::invoke);
  }

  /**
   * Async form of {@link #invoke(String, String, byte[], InvokeOptions)}.
   *
   * @param appId the callee's app id
   * @param method the method
   * @param data the request payload
   * @param options the options, or null
   * @return the answer's future
   */
  public CompletableFuture<InvokeResponse> invokeAsync(
      String appId, String method, byte[] data, InvokeOptions options) {
    return callAsync(
        RuntimeGrpc.getInvokeMethod(),
        () -> Requests.invoke(appId, method, data, options),
        Responses::invoke);
  }

  /**
   * Runs operation (e.g. create, get, delete, list, exec, query) on the output binding name.
   *
   * @param name the binding component
   * @param operation the operation
   * @param data the data
   * @param metadata binding-specific metadata, or null
   * @return the binding's answer
   */
  public BindingResponse invokeBinding(
      String name, String operation, byte[] data, Map<String, String> metadata) {
    return call(
        RuntimeGrpc.getInvokeBindingMethod(),
        Requests.invokeBinding(name, operation, data, metadata),
        Responses::binding);
  }

  /**
   * Async form of {@link #invokeBinding}.
   *
   * @param name the binding component
   * @param operation the operation
   * @param data the data
   * @param metadata binding-specific metadata, or null
   * @return the answer's future
   */
  public CompletableFuture<BindingResponse> invokeBindingAsync(
      String name, String operation, byte[] data, Map<String, String> metadata) {
    return callAsync(
        RuntimeGrpc.getInvokeBindingMethod(),
        () -> Requests.invokeBinding(name, operation, data, metadata),
        Responses::binding);
  }

  /**
   * Asks the sidecar what it serves for this app: components, subscriptions, policies.
   *
   * @return the metadata
   */
  public AppMetadata getMetadata() {
    return call(
        RuntimeGrpc.getGetMetadataMethod(),
        GetMetadataRequest.getDefaultInstance(),
        Responses::metadata);
  }

  /**
   * Async form of {@link #getMetadata()}.
   *
   * @return the metadata's future
   */
  public CompletableFuture<AppMetadata> getMetadataAsync() {
    return callAsync(
        RuntimeGrpc.getGetMetadataMethod(),
        GetMetadataRequest::getDefaultInstance,
        Responses::metadata);
  }

  // ------------------------------------------------------------------ streams

  /**
   * Subscribes handler to topic of the pubsub component; returns once the sidecar has
   * accepted the subscription, so events published afterwards reach the handler. See {@link
   * #subscribeAsync} for the behaviour.
   *
   * @param pubsub the pubsub component
   * @param topic the topic
   * @param handler the handler; its verdict is the event's ack
   * @param options the options, or null
   * @return the running subscription; close it to stop
   * @throws OutrigException when the first stream fails (e.g. {@link NotFoundException} for an
   *     unknown pubsub, {@link UnavailableException} when the sidecar is unreachable)
   */
  public Subscription subscribe(
      String pubsub, String topic, TopicEventHandler handler, SubscribeOptions options) {
    return join("Subscribe", subscribeAsync(pubsub, topic, handler, options));
  }

  /**
   * Subscribes handler to topic over the bidirectional Subscribe stream: the sidecar pushes
   * events, the SDK runs the handler (one at a time by default) and acks each event with its
   * verdict. A handler that throws is answered RETRY. When the sidecar restarts (UNAVAILABLE)
   * the SDK reconnects with backoff and subscribes again; other failures end the
   * subscription. Delivery is at least once.
   *
   * @param pubsub the pubsub component
   * @param topic the topic
   * @param handler the handler
   * @param options the options, or null
   * @return completes with the running subscription once the sidecar accepted it, or
   *     exceptionally with the first stream's failure
   */
  public CompletableFuture<Subscription> subscribeAsync(
      String pubsub, String topic, TopicEventHandler handler, SubscribeOptions options) {
    SubscribeOptions o = options == null ? SubscribeOptions.DEFAULT : options;
    try {
      Requests.requirePubsubTopic("Subscribe", pubsub, topic);
      requireHandler("Subscribe", handler);
    } catch (OutrigException e) {
      return CompletableFuture.failedFuture(e);
    }
    return startLoop(
        "Subscribe",
        RuntimeGrpc.getSubscribeMethod(),
        StreamProtocols.subscribe(pubsub, topic, handler, o),
        o.stream().concurrency(1),
        o.stream());
  }

  /**
   * Receives the events of the input binding name; blocking like {@link #subscribe}.
   *
   * @param name the input binding component
   * @param handler the handler; its verdict is the event's ack
   * @param options the loop options, or null
   * @return the running subscription
   */
  public Subscription subscribeBinding(
      String name, BindingEventHandler handler, StreamOptions options) {
    StreamOptions o = options == null ? StreamOptions.DEFAULT : options;
    if (name == null || name.isEmpty()) {
      throw ErrorMapping.invalidArgument("SubscribeBinding", "name", "is required");
    }
    requireHandler("SubscribeBinding", handler);
    return join(
        "SubscribeBinding",
        startLoop(
            "SubscribeBinding",
            RuntimeGrpc.getSubscribeBindingMethod(),
            StreamProtocols.binding(name, handler),
            o.concurrency(1),
            o));
  }

  /**
   * Serves the invocations other applications address to this one; blocking until the
   * sidecar accepted the Serve stream. See {@link #serveAsync}.
   *
   * @param handlers method name → handler
   * @param options the loop options, or null
   * @return the running loop; close it to stop serving
   */
  public Subscription serve(Map<String, InvocationHandler> handlers, StreamOptions options) {
    return join("Serve", serveAsync(handlers, options));
  }

  /**
   * Serves invocations over the Serve stream: each is dispatched to the handler of its method
   * and answered with the same id; an unknown method is answered NOT_FOUND, a handler
   * exception with its status (see {@link InvocationHandler}). Handlers run concurrently, at
   * most 64 at once by default. Reconnects like {@link #subscribeAsync}.
   *
   * @param handlers method name → handler; copied
   * @param options the loop options, or null
   * @return completes with the running loop once the sidecar accepted the stream
   */
  public CompletableFuture<Subscription> serveAsync(
      Map<String, InvocationHandler> handlers, StreamOptions options) {
    StreamOptions o = options == null ? StreamOptions.DEFAULT : options;
    Map<String, InvocationHandler> table;
    try {
      if (handlers == null) {
        throw ErrorMapping.invalidArgument("Serve", "handlers", "is null");
      }
      handlers.forEach(
          (m, h) -> {
            if (m == null || m.isEmpty() || h == null) {
              throw ErrorMapping.invalidArgument("Serve", "handlers[" + m + "]", "is empty or null");
            }
          });
      table = Map.copyOf(handlers);
    } catch (OutrigException e) {
      return CompletableFuture.failedFuture(e);
    }
    return startLoop(
        "Serve",
        RuntimeGrpc.getServeMethod(),
        StreamProtocols.serve(table),
        o.concurrency(DEFAULT_SERVE_CONCURRENCY),
        o);
  }

  /**
   * Stops every subscription and serve loop of this client (waiting for their running
   * handlers), closes the connection and the shared-memory transport, and shuts down the
   * client's own threads. Calls made afterwards fail with {@link UnavailableException}.
   * Idempotent. On a {@link #withTimeout} view it does nothing.
   */
  @Override
  public void close() {
    if (owner) {
      core.close();
    }
  }

  // ------------------------------------------------------------------ plumbing

  private <Q, R, T> T call(MethodDescriptor<Q, R> m, Q req, Function<R, T> conv) {
    return core.call(m, req, timeout, conv);
  }

  private <Q, R, T> CompletableFuture<T> callAsync(
      MethodDescriptor<Q, R> m, Supplier<Q> req, Function<R, T> conv) {
    return core.callAsync(m, req, timeout, conv);
  }

  private <Q, R> CompletableFuture<Subscription> startLoop(
      String op,
      MethodDescriptor<Q, R> method,
      StreamLoop.Protocol<Q, R> protocol,
      int concurrency,
      StreamOptions options) {
    return core.startLoop(op, method, protocol, concurrency, options);
  }

  private static void requireHandler(String op, Object handler) {
    if (handler == null) {
      throw ErrorMapping.invalidArgument(op, "handler", "is null");
    }
  }

  private static <T> T join(String op, CompletableFuture<T> f) {
    try {
      return f.get();
    } catch (InterruptedException e) {
      f.cancel(true);
      Thread.currentThread().interrupt();
      throw new OutrigException(io.grpc.Status.Code.CANCELLED, op, "interrupted", null, e);
    } catch (java.util.concurrent.ExecutionException e) {
      throw ErrorMapping.fromThrowable(op, e);
    }
  }
}
