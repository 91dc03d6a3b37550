package dev.outrig.sdk;

import io.grpc.Status;
import java.time.Duration;

/**
 * An unknown state store, pubsub, binding, app id or method. For {@code invoke}, a callee that answered NOT_FOUND gives the same exception; {@link #serverMessage()} tells them apart.
 *
 * <p>Status code: {@code NOT_FOUND}. See {@link OutrigException} for the whole table.
 */
public class NotFoundException extends OutrigException {
  private static final long serialVersionUID = 1L;

  /**
   * Creates the exception with a message, e.g. to answer an invocation with this code.
   *
   * @param message the message sent to the caller
   */
  public NotFoundException(String message) {
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
  NotFoundException(String operation, String message, Duration retryAfter, Throwable cause) {
    super(Status.Code.NOT_FOUND, operation, message, retryAfter, cause);
  }
}
