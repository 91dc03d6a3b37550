package dev.outrig.sdk;

import io.grpc.Status;
import java.time.Duration;

/**
 * The call was rejected by a rate limit or a full bulkhead. {@link #retryAfter()} carries the
 * sidecar's hint (trailer {@code retry-after-ms}) of when a new call may pass.
 *
 * <p>Status code: {@code RESOURCE_EXHAUSTED}. See {@link OutrigException} for the whole table.
 */
public class RateLimitedException extends OutrigException {
  private static final long serialVersionUID = 1L;

  /**
   * Creates the exception with a message, e.g. to answer an invocation with this code.
   *
   * @param message the message sent to the caller
   */
  public RateLimitedException(String message) {
    this(null, message, null, null);
  }

  /**
   * Used by the SDK's mapping table.
   *
   * @param operation the SDK call that failed, or null
   * @param message the sidecar's message
   * @param retryAfter the retry hint, or null
   * @param cause the underlying exception, or null
   */
  RateLimitedException(String operation, String message, Duration retryAfter, Throwable cause) {
    super(Status.Code.RESOURCE_EXHAUSTED, operation, message, retryAfter, cause);
  }
}
