package dev.outrig.sdk;

import io.grpc.Status;
import java.time.Duration;

/**
 * The call's deadline (the client's per-call timeout) passed before the sidecar answered.
 *
 * <p>Status code: {@code DEADLINE_EXCEEDED}. See {@link OutrigException} for the whole table.
 */
public class DeadlineExceededException extends OutrigException {
  private static final long serialVersionUID = 1L;

  /**
   * Creates the exception with a message, e.g. to answer an invocation with this code.
   *
   * @param message the message sent to the caller
   */
  public DeadlineExceededException(String message) {
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
  DeadlineExceededException(String operation, String message, Duration retryAfter, Throwable cause) {
    super(Status.Code.DEADLINE_EXCEEDED, operation, message, retryAfter, cause);
  }
}
