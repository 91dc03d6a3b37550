package dev.outrig.sdk;

import java.time.Duration;
import java.util.function.BiConsumer;

/**
 * Options of the stream loops: {@link OutrigClient#serve}, {@link
 * OutrigClient#subscribeBinding}, and (through {@link SubscribeOptions}) {@link
 * OutrigClient#subscribe}. Immutable and reusable.
 *
 * <p>By default a loop reconnects when its stream fails with UNAVAILABLE or is ended by the
 * sidecar (a sidecar restart), after a jittered exponential backoff from 100 ms to 5 s, and
 * resets the backoff once a stream was ready again. Any other failure ends the loop.
 */
public final class StreamOptions {
  /** The defaults. */
  public static final StreamOptions DEFAULT = builder().build();

  private final boolean reconnect;
  private final boolean waitForSidecar;
  private final Duration minBackoff;
  private final Duration maxBackoff;
  private final int maxConcurrentHandlers; // 0: the loop kind's default
  private final BiConsumer<OutrigException, Duration> onReconnect;

  private StreamOptions(Builder b) {
    this.reconnect = b.reconnect;
    this.waitForSidecar = b.waitForSidecar;
    this.minBackoff = b.minBackoff;
    this.maxBackoff = b.maxBackoff;
    this.maxConcurrentHandlers = b.maxConcurrentHandlers;
    this.onReconnect = b.onReconnect;
  }

  /**
   * A new builder with the defaults.
   *
   * @return the builder
   */
  public static Builder builder() {
    return new Builder();
  }

  /** Builds {@link StreamOptions}. Not thread-safe. */
  public static final class Builder {
    private boolean reconnect = true;
    private boolean waitForSidecar;
    private Duration minBackoff = Duration.ofMillis(100);
    private Duration maxBackoff = Duration.ofSeconds(5);
    private int maxConcurrentHandlers;
    private BiConsumer<OutrigException, Duration> onReconnect;

    private Builder() {}

    /**
     * Whether to reconnect after the sidecar restarts (default true). Without it the first
     * stream failure ends the loop.
     *
     * @param on true to reconnect
     * @return this builder
     */
    public Builder reconnect(boolean on) {
      this.reconnect = on;
      return this;
    }

    /**
     * Whether to keep trying while the sidecar is unreachable before the first stream was
     * ready (default false: starting the loop fails at once with {@link UnavailableException},
     * so a misconfigured address is noticed). Set it when the app may start before its
     * sidecar; the start then blocks (or its future stays pending) until the sidecar answers.
     *
     * @param on true to wait for the sidecar
     * @return this builder
     */
    public Builder waitForSidecar(boolean on) {
      this.waitForSidecar = on;
      return this;
    }

    /**
     * Sets the reconnect delay: it starts at min, doubles after each failed attempt up to max,
     * is jittered (between half and all of the value), and goes back to min once a stream was
     * ready again. Requires {@code 0 < min <= max}.
     *
     * @param min the first delay
     * @param max the largest delay
     * @return this builder
     */
    public Builder reconnectBackoff(Duration min, Duration max) {
      if (min == null
          || max == null
          || min.isNegative()
          || min.isZero()
          || max.compareTo(min) < 0) {
        throw ErrorMapping.invalidArgument(
            "StreamOptions", "reconnectBackoff", "want 0 < min <= max, got " + min + ", " + max);
      }
      this.minBackoff = min;
      this.maxBackoff = max;
      return this;
    }

    /**
     * Bounds how many handler calls run at once. Defaults: 1 for subscriptions (events are
     * handled one at a time, in delivery order) and 64 for serve. When the bound is reached the
     * SDK stops reading the stream, so the sidecar sees back-pressure.
     *
     * @param n a positive bound
     * @return this builder
     */
    public Builder maxConcurrentHandlers(int n) {
      if (n <= 0) {
        throw ErrorMapping.invalidArgument(
            "StreamOptions", "maxConcurrentHandlers", n + " must be positive");
      }
      this.maxConcurrentHandlers = n;
      return this;
    }

    /**
     * Calls hook each time the loop is about to reconnect, with the failure that ended the
     * stream and the delay before the next attempt (e.g. to log it). It runs on the SDK's
     * scheduler thread and must not block.
     *
     * @param hook the hook, or null for none
     * @return this builder
     */
    public Builder onReconnect(BiConsumer<OutrigException, Duration> hook) {
      this.onReconnect = hook;
      return this;
    }

    /**
     * Builds the immutable options.
     *
     * @return the options
     */
    public StreamOptions build() {
      return new StreamOptions(this);
    }
  }

  boolean reconnect() {
    return reconnect;
  }

  boolean waitForSidecar() {
    return waitForSidecar;
  }

  Duration minBackoff() {
    return minBackoff;
  }

  Duration maxBackoff() {
    return maxBackoff;
  }

  int concurrency(int defaultValue) {
    return maxConcurrentHandlers == 0 ? defaultValue : maxConcurrentHandlers;
  }

  BiConsumer<OutrigException, Duration> onReconnect() {
    return onReconnect;
  }
}
