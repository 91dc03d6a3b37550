package dev.outrig.sdk;

import io.grpc.Status;
import java.time.Duration;

/**
 * A field of the request is missing or malformed; the message names the field.
 *
 * <p>Status code: {@code INVALID_ARGUMENT}. See {@link OutrigException} for the whole table.
 */
public class InvalidArgumentException extends OutrigException {
  private static final long serialVersionUID = 1L;

  /**
   * Creates the exception with a message, e.g. to answer an invocation with this code.
   *
   * @param message the message sent to the caller
   */
  public InvalidArgumentException(String message) {
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
  InvalidArgumentException(String operation, String message, Duration retryAfter, Throwable cause) {
    super(Status.Code.INVALID_ARGUMENT, operation, message, retryAfter, cause);
  }
}
