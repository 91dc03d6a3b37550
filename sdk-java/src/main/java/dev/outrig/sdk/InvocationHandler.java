package dev.outrig.sdk;

/**
 * Answers one invocation received through {@link OutrigClient#serve}.
 *
 * <p>An exception is sent to the caller as a gRPC status: an {@link OutrigException}'s code
 * and {@link OutrigException#serverMessage()} (e.g. {@code throw new NotFoundException("no
 * order 42")} gives NOT_FOUND), a {@code StatusRuntimeException}'s or {@code StatusException}'s
 * status, else INTERNAL with the exception's text.
 *
 * <p>Handlers run concurrently on the client's handler executor (at most 64 at once unless
 * {@link StreamOptions.Builder#maxConcurrentHandlers(int)} says otherwise) and must be
 * thread-safe.
 */
@FunctionalInterface
public interface InvocationHandler {
  /**
   * Answers the invocation.
   *
   * @param invocation the call
   * @return the answer; null sends an empty answer
   * @throws Exception a failure, answered as described above
   */
  Reply handle(Invocation invocation) throws Exception;
}
