package dev.outrig.sdk;

import io.grpc.Status;
import java.time.Duration;

/**
 * A first-write-wins write or delete lost: the ETag given no longer matches the stored one. Read the item again and retry with its new ETag.
 *
 * <p>Status code: {@code ABORTED}. See {@link OutrigException} for the whole table.
 */
public class EtagMismatchException extends OutrigException {
  private static final long serialVersionUID = 1L;

  /**
   * Creates the exception with a message, e.g. to answer an invocation with this code.
   *
   * @param message the message sent to the caller
   */
  public EtagMismatchException(String message) {
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
  EtagMismatchException(String operation, String message, Duration retryAfter, Throwable cause) {
    super(Status.Code.ABORTED, operation, message, retryAfter, cause);
  }
}
