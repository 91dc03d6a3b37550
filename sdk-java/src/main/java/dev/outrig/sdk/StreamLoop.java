package dev.outrig.sdk;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The loop shared by Subscribe, SubscribeBinding and Serve: open a bidi stream, send the
 * initial request, wait for ready, run a handler for each message and send its answer on the
 * same stream; when the stream fails with UNAVAILABLE (or the sidecar ends it), reconnect with
 * jittered exponential backoff. At most {@code concurrency} handlers run at once; while that
 * many run, no further message is requested from the stream (back-pressure), so with
 * concurrency 1 messages are handled one at a time in order.
 *
 * <p>Thread-safety: gRPC calls the listener serially; handlers run on the handler executor;
 * every operation on a call is made under that attempt's lock.
 */
final class StreamLoop<Q, R> {
  private static final System.Logger LOG = System.getLogger("dev.outrig.sdk");

  /** The loop whose handler the current thread runs (close() must not wait for itself). */
  private static final ThreadLocal<StreamLoop<?, ?>> RUNNING_HANDLER_OF = new ThreadLocal<>();

  /** What distinguishes one kind of stream from another. */
  interface Protocol<Q, R> {
    /** The first request on every new stream. */
    Q initial();

    /** Whether m is the sidecar's ready message. */
    boolean isReady(R m);

    /**
     * The work of one message: it runs the handler and returns the request that answers the
     * message; it never throws. Null when the message needs no answer (ignored).
     */
    Supplier<Q> work(R m);
  }

  private final String op;
  private final GrpcTransport transport;
  private final MethodDescriptor<Q, R> method;
  private final Protocol<Q, R> protocol;
  private final int concurrency;
  private final StreamOptions options;
  private final Executor handlers;
  private final ScheduledExecutorService scheduler;

  private final CompletableFuture<Void> firstReady = new CompletableFuture<>();
  private final CompletableFuture<Void> terminated = new CompletableFuture<>();

  private final Object lock = new Object();
  // Guarded by lock.
  private boolean stopped;
  private boolean everReady;
  private Attempt current;
  private ScheduledFuture<?> pendingReconnect;
  private Duration backoff;
  private int running;

  StreamLoop(
      String op,
      GrpcTransport transport,
      MethodDescriptor<Q, R> method,
      Protocol<Q, R> protocol,
      int concurrency,
      StreamOptions options,
      Executor handlers,
      ScheduledExecutorService scheduler) {
    this.op = op;
    this.transport = transport;
    this.method = method;
    this.protocol = protocol;
    this.concurrency = concurrency;
    this.options = options;
    this.handlers = handlers;
    this.scheduler = scheduler;
    this.backoff = options.minBackoff();
  }

  /** Opens the first stream; the future completes when the sidecar accepted it. */
  CompletableFuture<Void> start() {
    connect();
    return firstReady;
  }

  /** Completes normally when stopped, exceptionally with the failure that ended the loop. */
  CompletableFuture<Void> termination() {
    return terminated;
  }

  boolean isActive() {
    synchronized (lock) {
      return !stopped;
    }
  }

  /**
   * Ends the loop: cancels the stream and any pending reconnect, then waits until the handlers
   * that are running have returned (unless called from one of them). Idempotent.
   */
  void stop() {
    Attempt a;
    synchronized (lock) {
      stopped = true;
      a = current;
      current = null;
      if (pendingReconnect != null) {
        pendingReconnect.cancel(false);
        pendingReconnect = null;
      }
    }
    if (a != null) {
      a.cancel("stopped by the application");
    }
    OutrigException stoppedErr =
        new OutrigException(Status.Code.CANCELLED, op, "stopped before ready", null, null);
    firstReady.completeExceptionally(stoppedErr);
    terminated.complete(null);
    if (RUNNING_HANDLER_OF.get() == this) {
      return;
    }
    boolean interrupted = false;
    synchronized (lock) {
      while (running > 0) {
        try {
          lock.wait();
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }

  private void connect() {
    Attempt a;
    synchronized (lock) {
      pendingReconnect = null;
      if (stopped) {
        return;
      }
      a = new Attempt();
      current = a;
    }
    a.start();
  }

  private void markReady() {
    synchronized (lock) {
      everReady = true;
      backoff = options.minBackoff();
    }
    firstReady.complete(null);
  }

  private void attemptEnded(Attempt a, OutrigException err) {
    Duration delay = null;
    synchronized (lock) {
      if (a != current || stopped) {
        return;
      }
      current = null;
      boolean retryable = err instanceof UnavailableException;
      boolean mayRetry = everReady || options.waitForSidecar();
      if (options.reconnect() && retryable && mayRetry) {
        long b = backoff.toNanos();
        long half = b / 2;
        delay = Duration.ofNanos(half + ThreadLocalRandom.current().nextLong(b - half + 1));
        backoff = backoff.multipliedBy(2);
        if (backoff.compareTo(options.maxBackoff()) > 0) {
          backoff = options.maxBackoff();
        }
        try {
          pendingReconnect =
              scheduler.schedule(this::reconnect, delay.toNanos(), TimeUnit.NANOSECONDS);
        } catch (RejectedExecutionException e) {
          delay = null; // the client is closing
        }
      }
      if (delay == null) {
        stopped = true;
      }
    }
    if (delay == null) {
      firstReady.completeExceptionally(err);
      terminated.completeExceptionally(err);
      return;
    }
    var hook = options.onReconnect();
    if (hook != null) {
      try {
        hook.accept(err, delay);
      } catch (RuntimeException e) {
        LOG.log(System.Logger.Level.WARNING, "outrig " + op + ": reconnect hook threw", e);
      }
    }
  }

  private void reconnect() {
    transport.resetConnectBackoff();
    connect();
  }

  private void runHandler(Attempt a, Supplier<Q> work) {
    synchronized (lock) {
      running++;
    }
    Runnable task =
        () -> {
          RUNNING_HANDLER_OF.set(this);
          try {
            a.answer(work.get());
          } finally {
            RUNNING_HANDLER_OF.remove();
            handlerDone(a);
          }
        };
    try {
      handlers.execute(task);
    } catch (RejectedExecutionException e) {
      handlerDone(a); // the client is closing; the sidecar redelivers
    }
  }

  private void handlerDone(Attempt a) {
    a.handlerDone();
    synchronized (lock) {
      running--;
      if (running == 0) {
        lock.notifyAll();
      }
    }
  }

  /** One stream: from open to close. */
  private final class Attempt extends ClientCall.Listener<R> {
    private final ClientCall<Q, R> call = transport.channel().newCall(method, CallOptions.DEFAULT);
    private final Object callLock = new Object();
    // Guarded by callLock.
    private boolean closed;
    private int inflight;
    private boolean wantMore;
    // Only touched by gRPC's serial listener callbacks.
    private boolean ready;
    private OutrigException protocolError;

    void start() {
      synchronized (callLock) {
        call.start(this, new Metadata());
        call.request(1);
        call.sendMessage(protocol.initial());
      }
    }

    void cancel(String why) {
      synchronized (callLock) {
        if (!closed) {
          closed = true;
          call.cancel(why, null);
        }
      }
    }

    void answer(Q reply) {
      if (reply == null) {
        return;
      }
      synchronized (callLock) {
        if (!closed) {
          call.sendMessage(reply);
        }
      }
    }

    void handlerDone() {
      synchronized (callLock) {
        inflight--;
        if (wantMore && !closed) {
          wantMore = false;
          call.request(1);
        }
      }
    }

    private void requestNext() {
      synchronized (callLock) {
        if (!closed) {
          call.request(1);
        }
      }
    }

    @Override
    public void onMessage(R m) {
      if (!ready) {
        if (!protocol.isReady(m)) {
          protocolError =
              new OutrigException(
                  Status.Code.INTERNAL,
                  op,
                  "stream protocol: the first message from the sidecar is not ready",
                  null,
                  null);
          cancel("protocol error");
          return;
        }
        ready = true;
        markReady();
        requestNext();
        return;
      }
      Supplier<Q> work = protocol.isReady(m) ? null : protocol.work(m);
      if (work == null) {
        requestNext();
        return;
      }
      synchronized (callLock) {
        inflight++;
        if (inflight < concurrency) {
          if (!closed) {
            call.request(1);
          }
        } else {
          wantMore = true;
        }
      }
      runHandler(this, work);
    }

    @Override
    public void onClose(Status status, Metadata trailers) {
      synchronized (callLock) {
        closed = true;
      }
      OutrigException err =
          protocolError != null ? protocolError : ErrorMapping.fromStatus(op, status, trailers);
      attemptEnded(this, err);
    }
  }
}
