package dev.outrig.sdk;

import com.google.protobuf.MessageLite;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.io.ByteArrayInputStream;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Unary calls over the shared-memory transport (api/shm/SPEC.md). Methods without a shm id
 * (§7), and methods the sidecar answers UNIMPLEMENTED, go over gRPC. When the connection dies
 * (sidecar restart) calls go over gRPC while a new connection is dialled, at most every 200 ms.
 */
final class ShmTransport implements Transport {
  /** Method ids of SPEC.md §7, by full gRPC method name. */
  static final Map<String, Integer> METHOD_IDS =
      Map.ofEntries(
          Map.entry("outrig.runtime.v1.Runtime/Invoke", 1),
          Map.entry("outrig.runtime.v1.Runtime/GetState", 2),
          Map.entry("outrig.runtime.v1.Runtime/GetBulkState", 3),
          Map.entry("outrig.runtime.v1.Runtime/SaveState", 4),
          Map.entry("outrig.runtime.v1.Runtime/DeleteState", 5),
          Map.entry("outrig.runtime.v1.Runtime/DeleteBulkState", 6),
          Map.entry("outrig.runtime.v1.Runtime/ExecuteStateTransaction", 7),
          Map.entry("outrig.runtime.v1.Runtime/Publish", 8),
          Map.entry("outrig.runtime.v1.Runtime/BulkPublish", 9),
          Map.entry("outrig.runtime.v1.Runtime/InvokeBinding", 10),
          Map.entry("outrig.runtime.v1.Runtime/GetMetadata", 11));

  private static final long HANDSHAKE_TIMEOUT_MS = 5000;
  private static final long REDIAL_INTERVAL_NANOS = 200_000_000L;

  private final String socketPath;
  private final String appId;
  private final long busyPollNanos;
  private final Transport grpc;
  private final ExecutorService callbacks;
  private final ReentrantLock dialLock = new ReentrantLock();
  /** Calls answered over shared memory (not over gRPC); for tests and diagnostics. */
  final java.util.concurrent.atomic.LongAdder shmCalls = new java.util.concurrent.atomic.LongAdder();

  private volatile ShmConnection conn;
  private volatile boolean closed;
  private long lastDial;

  private ShmTransport(
      String socketPath, String appId, long busyPollNanos, Transport grpc, ShmConnection first) {
    this.socketPath = socketPath;
    this.appId = appId;
    this.busyPollNanos = busyPollNanos;
    this.grpc = grpc;
    this.conn = first;
    this.lastDial = System.nanoTime();
    AtomicInteger n = new AtomicInteger();
    this.callbacks =
        Executors.newCachedThreadPool(
            r -> {
              Thread t = new Thread(r, "outrig-shm-callback-" + n.incrementAndGet());
              t.setDaemon(true);
              return t;
            });
  }

  /**
   * Dials socketPath and performs the handshake.
   *
   * @param grpc the transport for methods shm does not carry, and while reconnecting
   * @param busyPollNanos how long a lone call polls for its reply (0: not at all)
   * @throws UnavailableException when the socket does not answer or the handshake fails
   */
  static ShmTransport connect(
      String socketPath, String appId, Transport grpc, long busyPollNanos) {
    return new ShmTransport(
        socketPath, appId, busyPollNanos, grpc, dial(socketPath, appId, busyPollNanos));
  }

  private static ShmConnection dial(String socketPath, String appId, long busyPollNanos) {
    ShmHandshake.Result r = ShmHandshake.connect(socketPath, appId, HANDSHAKE_TIMEOUT_MS);
    return new ShmConnection(r.socket(), r.segment(), busyPollNanos);
  }

  /** The live connection, redialling a dead one at most every 200 ms; null: use gRPC. */
  private ShmConnection live() {
    ShmConnection c = conn;
    if (c != null && !c.isDead()) {
      return c;
    }
    if (closed || !dialLock.tryLock()) {
      return null;
    }
    try {
      c = conn;
      if (c != null && !c.isDead()) {
        return c;
      }
      long now = System.nanoTime();
      if (now - lastDial < REDIAL_INTERVAL_NANOS) {
        return null;
      }
      lastDial = now;
      try {
        conn = dial(socketPath, appId, busyPollNanos);
        return conn;
      } catch (OutrigException e) {
        return null;
      }
    } finally {
      dialLock.unlock();
    }
  }

  @Override
  public <Q, R> R call(MethodDescriptor<Q, R> method, Q req, Duration timeout) {
    Integer id = METHOD_IDS.get(method.getFullMethodName());
    ShmConnection c = id == null ? null : live();
    if (c == null) {
      return grpc.call(method, req, timeout);
    }
    String op = method.getBareMethodName();
    long nanos = timeout == null ? 0 : timeout.toNanos();
    ShmConnection.Call call = c.start(id, ((MessageLite) req).toByteArray(), nanos);
    c.awaitPolling(call);
    byte[] resp;
    try {
      resp = nanos > 0 ? call.future.get(nanos, TimeUnit.NANOSECONDS) : call.future.get();
    } catch (TimeoutException e) {
      c.abandon(call);
      throw new DeadlineExceededException(op, "deadline of " + timeout + " exceeded", null, null);
    } catch (InterruptedException e) {
      c.abandon(call);
      Thread.currentThread().interrupt();
      throw new OutrigException(Status.Code.CANCELLED, op, "interrupted", null, e);
    } catch (ExecutionException e) {
      OutrigException oe = withOp(op, e.getCause());
      if (oe.code() == Status.Code.UNIMPLEMENTED) {
        return grpc.call(method, req, timeout);
      }
      throw oe;
    }
    shmCalls.increment();
    return method.parseResponse(new ByteArrayInputStream(resp));
  }

  @Override
  public <Q, R> CompletableFuture<R> callAsync(
      MethodDescriptor<Q, R> method, Q req, Duration timeout) {
    Integer id = METHOD_IDS.get(method.getFullMethodName());
    ShmConnection c = id == null ? null : live();
    if (c == null) {
      return grpc.callAsync(method, req, timeout);
    }
    String op = method.getBareMethodName();
    long nanos = timeout == null ? 0 : timeout.toNanos();
    ShmConnection.Call call = c.start(id, ((MessageLite) req).toByteArray(), nanos);
    CompletableFuture<byte[]> raw =
        nanos > 0 ? call.future.orTimeout(nanos, TimeUnit.NANOSECONDS) : call.future;
    CompletableFuture<R> out = new CompletableFuture<>();
    // Complete on the callback pool: user continuations must never run on the reader thread.
    raw.whenCompleteAsync(
        (resp, t) -> {
          if (t == null) {
            shmCalls.increment();
            try {
              out.complete(method.parseResponse(new ByteArrayInputStream(resp)));
            } catch (RuntimeException e) {
              out.completeExceptionally(ErrorMapping.fromThrowable(op, e));
            }
            return;
          }
          Throwable cause = t instanceof java.util.concurrent.CompletionException ? t.getCause() : t;
          if (cause instanceof TimeoutException) {
            c.abandon(call);
            out.completeExceptionally(
                new DeadlineExceededException(op, "deadline of " + timeout + " exceeded", null, null));
            return;
          }
          OutrigException oe = withOp(op, cause);
          if (oe.code() == Status.Code.UNIMPLEMENTED) {
            grpc.callAsync(method, req, timeout)
                .whenComplete((r, e2) -> {
                  if (e2 == null) {
                    out.complete(r);
                  } else {
                    out.completeExceptionally(ErrorMapping.fromThrowable(op, e2));
                  }
                });
            return;
          }
          out.completeExceptionally(oe);
        },
        callbacks);
    out.whenComplete(
        (r, t) -> {
          if (out.isCancelled()) {
            c.abandon(call);
          }
        });
    return out;
  }

  /** The same failure named after the SDK call that made it. */
  private static OutrigException withOp(String op, Throwable t) {
    OutrigException e = ErrorMapping.fromThrowable(op, t);
    if (e.operation().isPresent()) {
      return e;
    }
    return ErrorMapping.create(e.code(), op, e.serverMessage(), e.retryAfter().orElse(null), e);
  }

  @Override
  public void close() {
    closed = true;
    dialLock.lock();
    try {
      ShmConnection c = conn;
      if (c != null) {
        c.close();
      }
    } finally {
      dialLock.unlock();
    }
    callbacks.shutdown();
  }
}
