package dev.outrig.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.concurrent.CompletionException;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class ErrorMappingTest {
  static Stream<Arguments> table() {
    return Stream.of(
        Arguments.of(Status.Code.INVALID_ARGUMENT, InvalidArgumentException.class),
        Arguments.of(Status.Code.NOT_FOUND, NotFoundException.class),
        Arguments.of(Status.Code.ABORTED, EtagMismatchException.class),
        Arguments.of(Status.Code.RESOURCE_EXHAUSTED, RateLimitedException.class),
        Arguments.of(Status.Code.UNAVAILABLE, UnavailableException.class),
        Arguments.of(Status.Code.DEADLINE_EXCEEDED, DeadlineExceededException.class),
        Arguments.of(Status.Code.FAILED_PRECONDITION, NotSupportedException.class),
        Arguments.of(Status.Code.INTERNAL, OutrigException.class),
        Arguments.of(Status.Code.UNKNOWN, OutrigException.class),
        Arguments.of(Status.Code.PERMISSION_DENIED, OutrigException.class));
  }

  @ParameterizedTest
  @MethodSource("table")
  void statusFromSidecarSelectsExceptionType(
      Status.Code code, Class<? extends OutrigException> type) {
    OutrigException e =
        ErrorMapping.fromStatus("GetState", Status.fromCode(code).withDescription("boom"), null);
    assertEquals(type, e.getClass());
    assertEquals(code, e.code());
    assertEquals("boom", e.serverMessage());
    assertEquals("GetState", e.operation().orElseThrow());
    assertEquals("outrig GetState: " + code.name() + ": boom", e.getMessage());
  }

  @ParameterizedTest
  @MethodSource("table")
  void exceptionThrownByHandlerRoundTripsToTheSameCode(
      Status.Code code, Class<? extends OutrigException> type) {
    OutrigException created = ErrorMapping.create(code, null, "why", null, null);
    assertEquals(type, created.getClass());
    Status st = ErrorMapping.toStatus(created);
    assertEquals(code, st.getCode());
    assertEquals("why", st.getDescription());
  }

  @Test
  void connectionLostAsUnknownIsUnavailable() {
    // grpc-java's status for a call cut by the sidecar's death, in some races.
    Status cut = Status.UNKNOWN.withDescription("channel closed")
        .withCause(new java.nio.channels.ClosedChannelException());
    OutrigException e = ErrorMapping.fromStatus("GetState", cut, null);
    assertInstanceOf(UnavailableException.class, e);
    assertTrue(e.getMessage().contains("channel closed"), e.getMessage());
    // UNKNOWN from the sidecar (no local cause) stays UNKNOWN.
    OutrigException fromSidecar =
        ErrorMapping.fromStatus("GetState", Status.UNKNOWN.withDescription("app panicked"), null);
    assertEquals(Status.Code.UNKNOWN, fromSidecar.code());
    assertFalse(fromSidecar instanceof UnavailableException);
  }

  @Test
  void retryAfterComesFromTheTrailer() {
    Metadata trailers = new Metadata();
    trailers.put(ErrorMapping.RETRY_AFTER, "250");
    OutrigException e =
        ErrorMapping.fromStatus(
            "Publish", Status.RESOURCE_EXHAUSTED.withDescription("rate limited"), trailers);
    RateLimitedException r = assertInstanceOf(RateLimitedException.class, e);
    assertEquals(Duration.ofMillis(250), r.retryAfter().orElseThrow());
  }

  @Test
  void malformedOrNegativeRetryAfterIsIgnored() {
    for (String v : new String[] {"soon", "-5", ""}) {
      Metadata trailers = new Metadata();
      trailers.put(ErrorMapping.RETRY_AFTER, v);
      OutrigException e =
          ErrorMapping.fromStatus("Publish", Status.RESOURCE_EXHAUSTED, trailers);
      assertFalse(e.retryAfter().isPresent(), v);
    }
    assertFalse(ErrorMapping.fromStatus("Publish", Status.UNAVAILABLE, null).retryAfter().isPresent());
  }

  @Test
  void okStatusOfAnEndedStreamIsUnavailable() {
    OutrigException e = ErrorMapping.fromStatus("Subscribe", Status.OK, new Metadata());
    assertInstanceOf(UnavailableException.class, e);
  }

  @Test
  void handlerExceptionsBecomeStatuses() {
    assertEquals(
        Status.Code.PERMISSION_DENIED,
        ErrorMapping.toStatus(new StatusRuntimeException(Status.PERMISSION_DENIED)).getCode());
    Status internal = ErrorMapping.toStatus(new IllegalStateException("bad state"));
    assertEquals(Status.Code.INTERNAL, internal.getCode());
    assertTrue(internal.getDescription().contains("bad state"), internal.getDescription());
    assertEquals(
        Status.Code.NOT_FOUND,
        ErrorMapping.toStatus(new CompletionException(new NotFoundException("no order")))
            .getCode());
    // A status exception carrying OK is not a success.
    assertEquals(
        Status.Code.UNKNOWN, ErrorMapping.toStatus(new StatusRuntimeException(Status.OK)).getCode());
  }

  @Test
  void fromThrowableUnwrapsAndKeepsOutrigExceptions() {
    NotFoundException nf = new NotFoundException("x");
    assertTrue(ErrorMapping.fromThrowable("Op", new CompletionException(nf)) == nf);
    OutrigException e =
        ErrorMapping.fromThrowable(
            "Op", new CompletionException(new StatusRuntimeException(Status.ABORTED)));
    assertInstanceOf(EtagMismatchException.class, e);
    assertEquals(
        Status.Code.INTERNAL, ErrorMapping.fromThrowable("Op", new RuntimeException("x")).code());
  }

  @Test
  void okIsNotAFailure() {
    assertThrows(IllegalArgumentException.class, () -> new OutrigException(Status.Code.OK, "x"));
  }
}
