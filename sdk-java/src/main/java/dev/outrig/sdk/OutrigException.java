package dev.outrig.sdk;

import io.grpc.Status;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;

/**
 * The exception of every failed Outrig call: the SDK's own argument checks and every error
 * the sidecar answered with. It is unchecked.
 *
 * <p>The gRPC status code the sidecar sent selects the subclass (one table, see the list
 * below); codes without a subclass (INTERNAL, UNKNOWN, CANCELLED, ...) give a plain {@code
 * OutrigException}. Catch the subclass you can act on:
 *
 * <ul>
 *   <li>{@link InvalidArgumentException} — INVALID_ARGUMENT: a field is missing or malformed
 *   <li>{@link NotFoundException} — NOT_FOUND: unknown store, pubsub, binding, app id or method
 *   <li>{@link EtagMismatchException} — ABORTED: a first-write-wins write or delete lost
 *   <li>{@link RateLimitedException} — RESOURCE_EXHAUSTED: rate limited or bulkhead full
 *   <li>{@link UnavailableException} — UNAVAILABLE: sidecar unreachable, breaker open, call
 *       shed, backend or callee down
 *   <li>{@link DeadlineExceededException} — DEADLINE_EXCEEDED: the call's deadline passed
 *   <li>{@link NotSupportedException} — FAILED_PRECONDITION: the component does not support
 *       the operation
 * </ul>
 *
 * <p>Application code may also throw these from an {@link InvocationHandler}: the caller then
 * receives the exception's code and {@link #serverMessage()}.
 */
public class OutrigException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final transient Status.Code code;
  /** The SDK call that failed, or null. */
  private final String operation;

  /** The message as the sidecar sent it. */
  private final String serverMessage;
  private final transient Duration retryAfter;

  /**
   * Creates an exception with a status code and message, e.g. to answer an invocation with
   * {@code new OutrigException(Status.Code.PERMISSION_DENIED, "not your order")}.
   *
   * @param code the gRPC status code; OK is not a failure and is rejected
   * @param message the message sent to the caller
   */
  public OutrigException(Status.Code code, String message) {
    this(code, null, message, null, null);
  }

  /**
   * Full constructor used by the SDK and the subclasses.
   *
   * @param code the gRPC status code
   * @param operation the SDK call that failed (e.g. "GetState"), or null
   * @param message the message as the sidecar sent it
   * @param retryAfter the sidecar's retry hint, or null
   * @param cause the underlying exception, or null
   */
  OutrigException(
      Status.Code code, String operation, String message, Duration retryAfter, Throwable cause) {
    super(format(code, operation, message), cause);
    Objects.requireNonNull(code, "code");
    if (code == Status.Code.OK) {
      throw new IllegalArgumentException("OutrigException: code OK is not a failure");
    }
    this.code = code;
    this.operation = operation;
    this.serverMessage = message == null ? "" : message;
    this.retryAfter = retryAfter;
  }

  private static String format(Status.Code code, String operation, String message) {
    String text = (code == null ? "UNKNOWN" : code.name()) + ": " + (message == null ? "" : message);
    return operation == null ? "outrig: " + text : "outrig " + operation + ": " + text;
  }

  /**
   * The gRPC status code of the failure.
   *
   * @return the code, never OK
   */
  public Status.Code code() {
    return code;
  }

  /**
   * The SDK call that failed, e.g. {@code GetState}; empty for exceptions created by
   * application code.
   *
   * @return the operation name, if known
   */
  public Optional<String> operation() {
    return Optional.ofNullable(operation);
  }

  /**
   * The message exactly as the sidecar (or the SDK's argument check) wrote it, without the
   * {@code "outrig <op>: <CODE>: "} prefix of {@link #getMessage()}.
   *
   * @return the raw message, possibly empty
   */
  public String serverMessage() {
    return serverMessage;
  }

  /**
   * The sidecar's hint of how long to wait before retrying a rejected call, from the {@code
   * retry-after-ms} response trailer (typically on {@link RateLimitedException} and {@link
   * UnavailableException}).
   *
   * @return the hint, or empty when the sidecar gave none
   */
  public Optional<Duration> retryAfter() {
    return Optional.ofNullable(retryAfter);
  }

  /**
   * The gRPC status equivalent to this exception (code and {@link #serverMessage()}).
   *
   * @return the status
   */
  public Status toStatus() {
    return Status.fromCode(code).withDescription(serverMessage);
  }
}
