package dev.outrig.sdk;

import io.grpc.Status;
import java.time.Duration;

/**
 * The component does not support the operation, e.g. a transaction on a store without transactions.
 *
 * <p>Status code: {@code FAILED_PRECONDITION}. See {@link OutrigException} for the whole table.
 */
public class NotSupportedException extends OutrigException {
  private static final long serialVersionUID = 1L;

  /**
   * Creates the exception with a message, e.g. to answer an invocation with this code.
   *
   * @param message the message sent to the caller
   */
  public NotSupportedException(String message) {
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
  NotSupportedException(String operation, String message, Duration retryAfter, Throwable cause) {
    super(Status.Code.FAILED_PRECONDITION, operation, message, retryAfter, cause);
  }
}
