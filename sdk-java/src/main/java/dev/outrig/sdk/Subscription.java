package dev.outrig.sdk;

import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A running stream loop: a subscription to a topic or an input binding ({@link
 * OutrigClient#subscribe}, {@link OutrigClient#subscribeBinding}) or the serving of invocations
 * ({@link OutrigClient#serve}). It keeps running, reconnecting after sidecar restarts, until
 * {@link #close()} or a failure that is not retried. Thread-safe.
 */
public final class Subscription implements AutoCloseable {
  private final StreamLoop<?, ?> loop;
  private final Runnable onClose;

  Subscription(StreamLoop<?, ?> loop, Runnable onClose) {
    this.loop = loop;
    this.onClose = onClose;
  }

  /**
   * Whether the loop still runs (it may be between two streams, reconnecting).
   *
   * @return false once closed or failed for good
   */
  public boolean isActive() {
    return loop.isActive();
  }

  /**
   * The failure that ended the loop, if it ended by itself (not by {@link #close()}): e.g.
   * {@link NotFoundException} for an unknown pubsub, or the first failure when reconnecting is
   * off.
   *
   * @return the failure, or empty while running or after close
   */
  public Optional<OutrigException> failure() {
    CompletableFuture<Void> t = loop.termination();
    if (!t.isCompletedExceptionally()) {
      return Optional.empty();
    }
    try {
      t.join();
      return Optional.empty();
    } catch (CompletionException e) {
      return Optional.of(ErrorMapping.fromThrowable("stream", e));
    }
  }

  /**
   * A future that completes when the loop ends: normally after {@link #close()}, exceptionally
   * with the {@link OutrigException} that ended it.
   *
   * @return the termination future
   */
  public CompletableFuture<Void> termination() {
    return loop.termination().copy();
  }

  /**
   * Waits until the loop has ended.
   *
   * @param timeout how long to wait at most
   * @return true when it ended within the timeout
   * @throws InterruptedException if interrupted while waiting
   */
  public boolean awaitTermination(Duration timeout) throws InterruptedException {
    try {
      loop.termination().get(timeout.toNanos(), TimeUnit.NANOSECONDS);
      return true;
    } catch (ExecutionException e) {
      return true;
    } catch (TimeoutException e) {
      return false;
    }
  }

  /**
   * Ends the loop and waits until its running handlers have returned (unless called from one of
   * them). Events whose handlers had not answered are delivered again by the sidecar.
   * Idempotent.
   */
  @Override
  public void close() {
    loop.stop();
    onClose.run();
  }
}
