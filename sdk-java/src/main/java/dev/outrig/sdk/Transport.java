package dev.outrig.sdk;

import io.grpc.MethodDescriptor;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;

/**
 * How unary calls reach the sidecar: gRPC, or the shared-memory rings. Both take the same
 * protobuf messages of {@code outrig.runtime.v1.Runtime}, named by their gRPC method
 * descriptor. Implementations are thread-safe; failures are always {@link OutrigException}s
 * (thrown, or completing the future exceptionally).
 */
interface Transport extends AutoCloseable {
  /**
   * Calls method with req and waits for the answer.
   *
   * @param timeout the call's deadline from now; zero means none
   */
  <Q, R> R call(MethodDescriptor<Q, R> method, Q req, Duration timeout);

  /**
   * Starts the call and returns its answer as a future. Cancelling the future cancels the call.
   *
   * @param timeout the call's deadline from now; zero means none
   */
  <Q, R> CompletableFuture<R> callAsync(MethodDescriptor<Q, R> method, Q req, Duration timeout);

  /** Releases the transport's resources. Idempotent. */
  @Override
  void close();
}
