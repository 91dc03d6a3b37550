package dev.outrig.sdk;

import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.function.Supplier;
import io.grpc.MethodDescriptor;
import java.time.Duration;

/**
 * What an {@link OutrigClient} and its {@link OutrigClient#withTimeout} views share: the
 * transports, the handler executor, the reconnect scheduler and the running stream loops.
 */
final class ClientCore {
  private final String address;
  private final String appId;
  private final GrpcTransport grpc;
  private final Transport unary;
  private final Executor handlers;
  private final ExecutorService ownedHandlers; // null when the user gave the executor
  private final ScheduledExecutorService scheduler;
  private final Set<StreamLoop<?, ?>> loops = ConcurrentHashMap.newKeySet();
  private final AtomicBoolean closed = new AtomicBoolean();

  ClientCore(String address, String appId, GrpcTransport grpc, Transport unary, Executor handlers) {
    this.address = address;
    this.appId = appId;
    this.grpc = grpc;
    this.unary = unary;
    this.ownedHandlers = handlers == null ? Executors.newCachedThreadPool(daemon("handler")) : null;
    this.handlers = handlers == null ? ownedHandlers : handlers;
    this.scheduler = Executors.newSingleThreadScheduledExecutor(daemon("scheduler"));
  }

  String address() {
    return address;
  }

  String appId() {
    return appId;
  }

  /** Whether unary calls go over shared memory. */
  boolean sharedMemory() {
    return unary instanceof ShmTransport;
  }

  /** Calls answered over shared memory so far; -1 without shared memory. */
  long sharedMemoryCalls() {
    return unary instanceof ShmTransport t ? t.shmCalls.sum() : -1;
  }

  /** Calls answered on Multiplex streams so far; -1 when they are not used. */
  long multiplexCalls() {
    return unary instanceof MuxTransport t ? t.muxCalls.sum() : -1;
  }

  <Q, R, T> T call(MethodDescriptor<Q, R> m, Q req, Duration timeout, Function<R, T> conv) {
    return conv.apply(unary.call(m, req, timeout));
  }

  <Q, R, T> CompletableFuture<T> callAsync(
      MethodDescriptor<Q, R> m, Supplier<Q> req, Duration timeout, Function<R, T> conv) {
    Q q;
    try {
      q = req.get();
    } catch (OutrigException e) {
      return CompletableFuture.failedFuture(e);
    }
    return unary.callAsync(m, q, timeout).thenApply(conv);
  }

  /**
   * Starts a stream loop; the future completes with its handle once the first stream is ready.
   * Cancelling the future stops the loop.
   */
  <Q, R> CompletableFuture<Subscription> startLoop(
      String op,
      MethodDescriptor<Q, R> method,
      StreamLoop.Protocol<Q, R> protocol,
      int concurrency,
      StreamOptions options) {
    if (closed.get()) {
      return CompletableFuture.failedFuture(
          new UnavailableException(op, "the client is closed", null, null));
    }
    StreamLoop<Q, R> loop =
        new StreamLoop<>(
            op, grpc, method, protocol, concurrency, options, handlers, scheduler);
    loops.add(loop);
    loop.termination().whenComplete((v, t) -> loops.remove(loop));
    Subscription sub = new Subscription(loop, () -> loops.remove(loop));
    CompletableFuture<Subscription> f = loop.start().thenApply(v -> sub);
    f.whenComplete(
        (s, t) -> {
          if (f.isCancelled()) {
            loop.stop();
          }
        });
    return f;
  }

  /** Stops the loops, closes the transports and the client's own threads. Idempotent. */
  void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    for (StreamLoop<?, ?> l : loops) {
      l.stop();
    }
    scheduler.shutdownNow();
    if (unary != grpc) {
      unary.close();
    }
    grpc.close();
    if (ownedHandlers != null) {
      ownedHandlers.shutdown();
      try {
        ownedHandlers.awaitTermination(1, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private static ThreadFactory daemon(String kind) {
    AtomicInteger n = new AtomicInteger();
    return r -> {
      Thread t = new Thread(r, "outrig-" + kind + "-" + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    };
  }
}
