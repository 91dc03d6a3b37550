package dev.outrig.sdk;

import com.google.protobuf.MessageLite;
import dev.outrig.api.runtime.v1.CallFrame;
import dev.outrig.api.runtime.v1.MultiplexGrpc;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;

/**
 * Unary calls on the sidecar's {@code outrig.runtime.v1.Multiplex} streams (multiplex.proto),
 * the default over gRPC: a call takes an idle stream (or opens one), sends one {@link
 * CallFrame} and waits for the one answering it, then leaves the stream open for a later call.
 * Concurrent calls use separate streams, so the pool grows to the calls in flight (at most
 * {@value #MAX_IDLE} are kept idle). A call on a stream costs one message each way instead of
 * a whole HTTP/2 stream (headers, trailers, a new server task).
 *
 * <p>A call whose deadline passes, or whose future is cancelled, cancels its stream: the
 * sidecar cancels the call in progress, and the stream is not reused. An idle stream found
 * ended before the request left (the sidecar restarted) is replaced, once; a request that was
 * sent is never sent again. When the sidecar has no Multiplex service (UNIMPLEMENTED, an older
 * sidecar), that call and every later one go as unary gRPC calls. Methods without a method id
 * (api/shm/SPEC.md §7) always do.
 *
 * <p>Thread-safe. Stream callbacks run on gRPC's transport threads and only complete futures;
 * the continuations of {@link #callAsync} run on the transport's own callback threads.
 */
final class MuxTransport implements Transport {
  static final int MAX_IDLE = 64;

  private final GrpcTransport grpc;
  private final MethodDescriptor<CallFrame, CallFrame> calls = MultiplexGrpc.getCallsMethod();
  private final ArrayDeque<MuxStream> idle = new ArrayDeque<>(); // guarded by itself
  private final AtomicLong nextId = new AtomicLong();
  private final ExecutorService callbacks;
  private volatile boolean absent;
  private volatile boolean closed;

  /** Calls answered on Multiplex streams (not as unary gRPC calls); for tests and diagnostics. */
  final LongAdder muxCalls = new LongAdder();

  MuxTransport(GrpcTransport grpc) {
    this.grpc = grpc;
    AtomicInteger n = new AtomicInteger();
    this.callbacks =
        Executors.newCachedThreadPool(
            r -> {
              Thread t = new Thread(r, "outrig-mux-callback-" + n.incrementAndGet());
              t.setDaemon(true);
              return t;
            });
  }

  /** One open Calls stream; at most one call on it at a time. */
  private final class MuxStream extends ClientCall.Listener<CallFrame> {
    final ClientCall<CallFrame, CallFrame> call;
    final AtomicReference<CompletableFuture<CallFrame>> pending = new AtomicReference<>();
    volatile Status ended; // how the stream ended; null while open

    MuxStream() {
      // Direct executor: the callbacks below only complete a future.
      call =
          grpc.channel()
              .newCall(calls, CallOptions.DEFAULT.withExecutor(Runnable::run));
      call.start(this, new Metadata());
    }

    @Override
    public void onMessage(CallFrame frame) {
      CompletableFuture<CallFrame> p = pending.getAndSet(null);
      if (p != null) {
        p.complete(frame);
      }
    }

    @Override
    public void onClose(Status status, Metadata trailers) {
      ended = status;
      CompletableFuture<CallFrame> p = pending.getAndSet(null);
      if (p != null) {
        p.completeExceptionally(status.asRuntimeException(trailers));
      }
    }

    /**
     * Sends frame; its answer (or the stream's end) completes f. Returns false, sending nothing,
     * when the stream had already ended.
     */
    boolean send(CallFrame frame, CompletableFuture<CallFrame> f) {
      pending.set(f);
      if (ended != null && pending.compareAndSet(f, null)) {
        return false;
      }
      call.request(1);
      call.sendMessage(frame);
      return true;
    }

    void cancel(String why) {
      call.cancel(why, null);
    }
  }

  /** A call sent on a stream. */
  private record Sent(MuxStream stream, long id, CompletableFuture<CallFrame> answer) {}

  /**
   * Sends req on an idle or new stream; null when the sidecar has no Multiplex service (the
   * caller then makes a unary call).
   */
  private Sent send(int method, MessageLite req, long timeoutNanos) {
    if (closed) {
      throw new OutrigException(Status.Code.CANCELLED, null, "client closed", null, null);
    }
    CallFrame.Builder b =
        CallFrame.newBuilder()
            .setId(nextId.incrementAndGet())
            .setMethod(method)
            .setPayload(req.toByteString());
    if (timeoutNanos > 0) {
      b.setTimeoutUs(Math.max(TimeUnit.NANOSECONDS.toMicros(timeoutNanos), 1));
    }
    CallFrame frame = b.build();
    for (int attempt = 0; ; attempt++) {
      MuxStream st = take();
      boolean reused = st != null;
      if (st == null) {
        st = new MuxStream();
      }
      CompletableFuture<CallFrame> f = new CompletableFuture<>();
      if (st.send(frame, f)) {
        return new Sent(st, frame.getId(), f);
      }
      // The stream ended before the request left: an idle one when the sidecar restarted, a
      // new one at once when the sidecar has no Multiplex service.
      if (streamFailure(null, st.ended.asRuntimeException()) == null) {
        return null;
      }
      if (!reused || attempt > 0) {
        throw new UnavailableException(
            null, "multiplex stream ended before the call: " + st.ended, null, null);
      }
    }
  }

  private MuxStream take() {
    synchronized (idle) {
      MuxStream st;
      while ((st = idle.pollLast()) != null) {
        if (st.ended == null) {
          return st;
        }
      }
      return null;
    }
  }

  private void put(MuxStream st) {
    synchronized (idle) {
      if (!closed && st.ended == null && idle.size() < MAX_IDLE) {
        idle.addLast(st);
        return;
      }
    }
    st.cancel("not kept idle");
  }

  /**
   * The call's response from its answer frame, or the exception for its failure; null when
   * the sidecar has no Multiplex service. Puts the stream back when it can serve again.
   */
  private <R> R finish(MethodDescriptor<?, R> method, Sent s, CallFrame answer) {
    String op = method.getBareMethodName();
    if (answer.getId() != s.id()) {
      s.stream().cancel("answer for another call");
      throw new OutrigException(
          Status.Code.INTERNAL,
          op,
          "multiplex stream answered call " + s.id() + " with call " + answer.getId(),
          null,
          null);
    }
    put(s.stream());
    if (!answer.getStatus().isEmpty()) {
      throw withOp(op, ErrorMapping.fromRpcStatus(answer.getStatus().toByteArray(), "multiplex"));
    }
    muxCalls.increment();
    return method.parseResponse(answer.getPayload().newInput());
  }

  /** The failure of a stream (its end, as a StatusRuntimeException); null for UNIMPLEMENTED. */
  private OutrigException streamFailure(String op, Throwable t) {
    Throwable c = t instanceof CompletionException || t instanceof ExecutionException ? t.getCause() : t;
    if (c instanceof StatusRuntimeException sre) {
      Status.Code code = sre.getStatus().getCode();
      if (code == Status.Code.UNIMPLEMENTED) {
        absent = true;
        closeIdle();
        return null;
      }
      if (code == Status.Code.UNAVAILABLE || code == Status.Code.OK) {
        grpc.resetConnectBackoff(); // the sidecar is local: reconnect now, not after gRPC's backoff
      }
    }
    return withOp(op, c);
  }

  /**
   * Starts the call on a stream; null when it goes as a unary gRPC call instead (a method
   * without a method id, or a sidecar without the Multiplex service).
   */
  private Sent start(MethodDescriptor<?, ?> method, Object req, long nanos) {
    Integer id = ShmTransport.METHOD_IDS.get(method.getFullMethodName());
    if (id == null || absent) {
      return null;
    }
    try {
      return send(id, (MessageLite) req, nanos);
    } catch (OutrigException e) {
      throw withOp(method.getBareMethodName(), e);
    }
  }

  @Override
  public <Q, R> R call(MethodDescriptor<Q, R> method, Q req, Duration timeout) {
    String op = method.getBareMethodName();
    long nanos = timeout == null ? 0 : timeout.toNanos();
    long start = System.nanoTime();
    Sent s = start(method, req, nanos);
    if (s == null) {
      return grpc.call(method, req, remaining(nanos, start));
    }
    CallFrame answer;
    try {
      answer = nanos > 0 ? s.answer().get(nanos, TimeUnit.NANOSECONDS) : s.answer().get();
    } catch (TimeoutException e) {
      s.stream().cancel("deadline exceeded");
      throw new DeadlineExceededException(op, "deadline of " + timeout + " exceeded", null, null);
    } catch (InterruptedException e) {
      s.stream().cancel("interrupted");
      Thread.currentThread().interrupt();
      throw new OutrigException(Status.Code.CANCELLED, op, "interrupted", null, e);
    } catch (ExecutionException e) {
      OutrigException oe = streamFailure(op, e);
      if (oe == null) {
        return grpc.call(method, req, remaining(nanos, start));
      }
      throw oe;
    }
    return finish(method, s, answer);
  }

  @Override
  public <Q, R> CompletableFuture<R> callAsync(
      MethodDescriptor<Q, R> method, Q req, Duration timeout) {
    String op = method.getBareMethodName();
    long nanos = timeout == null ? 0 : timeout.toNanos();
    long start = System.nanoTime();
    Sent s;
    try {
      s = start(method, req, nanos);
    } catch (OutrigException e) {
      return CompletableFuture.failedFuture(e);
    }
    if (s == null) {
      return grpc.callAsync(method, req, remaining(nanos, start));
    }
    CompletableFuture<CallFrame> raw =
        nanos > 0 ? s.answer().orTimeout(nanos, TimeUnit.NANOSECONDS) : s.answer();
    CompletableFuture<R> out = new CompletableFuture<>();
    // On the callback pool: user continuations must never run on gRPC's transport threads.
    raw.whenCompleteAsync(
        (answer, t) -> {
          if (t == null) {
            try {
              out.complete(finish(method, s, answer));
            } catch (RuntimeException e) {
              out.completeExceptionally(ErrorMapping.fromThrowable(op, e));
            }
            return;
          }
          Throwable cause = t instanceof CompletionException ? t.getCause() : t;
          if (cause instanceof TimeoutException) {
            s.stream().cancel("deadline exceeded");
            out.completeExceptionally(
                new DeadlineExceededException(op, "deadline of " + timeout + " exceeded", null, null));
            return;
          }
          OutrigException oe = streamFailure(op, cause);
          if (oe != null) {
            out.completeExceptionally(oe);
            return;
          }
          grpc.callAsync(method, req, remaining(nanos, start))
              .whenComplete(
                  (r, e2) -> {
                    if (e2 == null) {
                      out.complete(r);
                    } else {
                      out.completeExceptionally(ErrorMapping.fromThrowable(op, e2));
                    }
                  });
        },
        callbacks);
    out.whenComplete(
        (r, t) -> {
          if (out.isCancelled()) {
            s.stream().cancel("cancelled by the caller");
          }
        });
    return out;
  }

  /** What is left of a timeout of nanos (0: none) started at start, for the unary retry. */
  private static Duration remaining(long nanos, long start) {
    if (nanos <= 0) {
      return Duration.ZERO;
    }
    return Duration.ofNanos(Math.max(nanos - (System.nanoTime() - start), 1));
  }

  /** The same failure named after the SDK call that made it. */
  private static OutrigException withOp(String op, Throwable t) {
    OutrigException e = ErrorMapping.fromThrowable(op, t);
    if (e.operation().isPresent()) {
      return e;
    }
    return ErrorMapping.create(e.code(), op, e.serverMessage(), e.retryAfter().orElse(null), e);
  }

  private void closeIdle() {
    MuxStream[] all;
    synchronized (idle) {
      all = idle.toArray(new MuxStream[0]);
      idle.clear();
    }
    for (MuxStream st : all) {
      st.cancel("client closing");
    }
  }

  /** Cancels the idle streams; the gRPC transport is closed by its owner. Idempotent. */
  @Override
  public void close() {
    closed = true;
    closeIdle();
    callbacks.shutdown();
  }
}
