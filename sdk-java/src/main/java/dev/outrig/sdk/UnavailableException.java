package dev.outrig.sdk;

import io.grpc.Status;
import java.time.Duration;

/**
 * The sidecar is unreachable or restarting, a circuit breaker is open, the call was shed, or the backend or callee is down. Usually worth retrying later; {@link #retryAfter()} may say when.
 *
 * <p>Status code: {@code UNAVAILABLE}. See {@link OutrigException} for the whole table.
 */
public class UnavailableException extends OutrigException {
  private static final long serialVersionUID = 1L;

  /**
   * Creates the exception with a message, e.g. to answer an invocation with this code.
   *
   * @param message the message sent to the caller
   */
  public UnavailableException(String message) {
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
  UnavailableException(String operation, String message, Duration retryAfter, Throwable cause) {
    super(Status.Code.UNAVAILABLE, operation, message, retryAfter, cause);
  }
}
