package dev.outrig.sdk;

import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * The one table between gRPC status codes and the SDK's exception types, used in both
 * directions: statuses from the sidecar become exceptions, and exceptions thrown by {@link
 * InvocationHandler}s become the status of the reply.
 */
final class ErrorMapping {
  /** Response trailer (or header) in which the sidecar says when to retry, in milliseconds. */
  static final String RETRY_AFTER_KEY = "retry-after-ms";

  static final Metadata.Key<String> RETRY_AFTER =
      Metadata.Key.of(RETRY_AFTER_KEY, Metadata.ASCII_STRING_MARSHALLER);

  @FunctionalInterface
  private interface Factory {
    OutrigException create(String op, String message, Duration retryAfter, Throwable cause);
  }

  private record Row(Status.Code code, Factory factory) {}

  private static final List<Row> TABLE =
      List.of(
          new Row(Status.Code.INVALID_ARGUMENT, InvalidArgumentException::new),
          new Row(Status.Code.NOT_FOUND, NotFoundException::new),
          new Row(Status.Code.ABORTED, EtagMismatchException::new),
          new Row(Status.Code.RESOURCE_EXHAUSTED, RateLimitedException::new),
          new Row(Status.Code.UNAVAILABLE, UnavailableException::new),
          new Row(Status.Code.DEADLINE_EXCEEDED, DeadlineExceededException::new),
          new Row(Status.Code.FAILED_PRECONDITION, NotSupportedException::new));

  private ErrorMapping() {}

  /**
   * The exception for a failed call: the table's subclass for the code, else a plain {@link
   * OutrigException}. An OK status (a stream the sidecar ended without error) counts as
   * UNAVAILABLE, and so does UNKNOWN caused by an I/O failure of the connection (grpc-java
   * reports a call cut by the sidecar's death as "UNKNOWN: channel closed" in some races; no
   * status the sidecar sends carries a local cause).
   */
  static OutrigException fromStatus(String op, Status status, Metadata trailers) {
    Status.Code code = status.getCode();
    String msg = status.getDescription();
    if (code == Status.Code.OK) {
      code = Status.Code.UNAVAILABLE;
      msg = "the sidecar ended the stream";
    } else if (code == Status.Code.UNKNOWN && causedByIo(status.getCause())) {
      code = Status.Code.UNAVAILABLE;
      msg = "connection to the sidecar lost: " + (msg == null ? status.getCause() : msg);
    }
    return create(code, op, msg == null ? "" : msg, retryAfter(trailers), status.getCause());
  }

  /**
   * The exception for a failed call answered as an encoded google.rpc.Status (the ERROR frame
   * of shared memory, the status of a Multiplex answer); undecodable or code 0 is INTERNAL.
   *
   * @param carrier names the carrier in the message of an INTERNAL error
   */
  static OutrigException fromRpcStatus(byte[] payload, String carrier) {
    try {
      com.google.rpc.Status st = com.google.rpc.Status.parseFrom(payload);
      if (st.getCode() == 0) {
        return new OutrigException(
            Status.Code.INTERNAL, null, carrier + ": error status with code 0", null, null);
      }
      StatusRuntimeException sre = io.grpc.protobuf.StatusProto.toStatusRuntimeException(st);
      return fromStatus(null, sre.getStatus(), sre.getTrailers());
    } catch (com.google.protobuf.InvalidProtocolBufferException e) {
      return new OutrigException(
          Status.Code.INTERNAL, null, carrier + ": undecodable error status", null, e);
    }
  }

  private static boolean causedByIo(Throwable t) {
    for (int depth = 0; t != null && depth < 8; t = t.getCause(), depth++) {
      if (t instanceof java.io.IOException) {
        return true;
      }
    }
    return false;
  }

  /** The exception for code with the given message; the SDK's own checks use it. */
  static OutrigException create(
      Status.Code code, String op, String message, Duration retryAfter, Throwable cause) {
    for (Row r : TABLE) {
      if (r.code == code) {
        return r.factory.create(op, message, retryAfter, cause);
      }
    }
    return new OutrigException(code, op, message, retryAfter, cause);
  }

  /** An INVALID_ARGUMENT raised by the SDK before calling: names the field and the problem. */
  static InvalidArgumentException invalidArgument(String op, String field, String problem) {
    return new InvalidArgumentException(op, field + " " + problem, null, null);
  }

  /**
   * Converts anything a call can throw into an {@link OutrigException}: unwraps
   * CompletionException/ExecutionException, keeps OutrigExceptions, maps gRPC statuses.
   */
  static OutrigException fromThrowable(String op, Throwable t) {
    Throwable c = unwrap(t);
    if (c instanceof OutrigException oe) {
      return oe;
    }
    if (c instanceof StatusRuntimeException sre) {
      return fromStatus(op, sre.getStatus(), sre.getTrailers());
    }
    if (c instanceof StatusException se) {
      return fromStatus(op, se.getStatus(), se.getTrailers());
    }
    if (c instanceof InterruptedException) {
      Thread.currentThread().interrupt();
      return new OutrigException(Status.Code.CANCELLED, op, "interrupted", null, c);
    }
    return new OutrigException(Status.Code.INTERNAL, op, String.valueOf(c), null, c);
  }

  /**
   * The status answering an invocation whose handler threw t: an {@link OutrigException}'s
   * code and message, a gRPC status exception's status, else INTERNAL with t's text. A status
   * with code OK is not a failure and becomes UNKNOWN.
   */
  static Status toStatus(Throwable t) {
    Throwable c = unwrap(t);
    Status st;
    if (c instanceof OutrigException oe) {
      st = oe.toStatus();
    } else if (c instanceof StatusRuntimeException sre) {
      st = sre.getStatus();
    } else if (c instanceof StatusException se) {
      st = se.getStatus();
    } else {
      String text = c.getMessage() == null ? c.getClass().getName() : c.toString();
      st = Status.INTERNAL.withDescription(text);
    }
    if (st.isOk()) {
      st = Status.UNKNOWN.withDescription(st.getDescription());
    }
    return st;
  }

  static Duration retryAfter(Metadata md) {
    if (md == null) {
      return null;
    }
    String v = md.get(RETRY_AFTER);
    if (v == null) {
      return null;
    }
    try {
      long ms = Long.parseLong(v.trim());
      return ms < 0 ? null : Duration.ofMillis(ms);
    } catch (NumberFormatException e) {
      return null;
    }
  }

  private static Throwable unwrap(Throwable t) {
    Throwable c = t;
    while ((c instanceof CompletionException || c instanceof ExecutionException)
        && c.getCause() != null) {
      c = c.getCause();
    }
    return c;
  }
}
