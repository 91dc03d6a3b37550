package dev.outrig.sdk;

import io.grpc.ManagedChannel;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.Executor;
import java.util.function.Function;

/**
 * Builds an {@link OutrigClient}; made by {@link OutrigClient#builder()}. Not thread-safe.
 *
 * <p>Unset values come from the environment: the address from {@code OUTRIG_ADDRESS} (else
 * {@link OutrigClient#DEFAULT_ADDRESS}) and the app id from {@code OUTRIG_APP_ID}.
 */
public final class OutrigClientBuilder {
  private String address;
  private String appId;
  private Duration timeout = OutrigClient.DEFAULT_TIMEOUT;
  private String shmSocket;
  private Duration busyPoll = DEFAULT_BUSY_POLL;
  private boolean unaryRpc;
  private Executor handlerExecutor;
  private Function<String, String> env = System::getenv;
  private ManagedChannel channel;

  /** The default of {@link #busyPoll(Duration)}: 200 µs. */
  public static final Duration DEFAULT_BUSY_POLL = Duration.ofNanos(200_000);

  OutrigClientBuilder() {}

  /**
   * Sets the sidecar address; it takes precedence over {@code OUTRIG_ADDRESS}. Forms: {@code
   * unix:///abs/path}, {@code unix:relative/path}, {@code /abs/path}, {@code host:port}, {@code
   * dns:///host:port}.
   *
   * @param address the address
   * @return this builder
   */
  public OutrigClientBuilder address(String address) {
    this.address = Objects.requireNonNull(address, "address");
    return this;
  }

  /**
   * Names the calling application; it takes precedence over {@code OUTRIG_APP_ID}. When
   * non-empty, every call carries the {@code outrig-app-id} gRPC metadata header, which a
   * sidecar serving several apps (host mode) needs to know who calls.
   *
   * @param appId the app id; "" sends no header
   * @return this builder
   */
  public OutrigClientBuilder appId(String appId) {
    this.appId = Objects.requireNonNull(appId, "appId");
    return this;
  }

  /**
   * Sets the default deadline of every unary call, from the moment it is made (default 10 s).
   * {@link Duration#ZERO} means no deadline. It does not apply to the streams of subscribe and
   * serve. Use {@link OutrigClient#withTimeout(Duration)} for a different deadline on some
   * calls.
   *
   * @param timeout the timeout, not negative
   * @return this builder
   */
  public OutrigClientBuilder timeout(Duration timeout) {
    if (timeout == null || timeout.isNegative()) {
      throw ErrorMapping.invalidArgument("OutrigClientBuilder", "timeout", timeout + " is negative");
    }
    this.timeout = timeout;
    return this;
  }

  /**
   * Routes the unary calls (state, publish, invoke, bindings, metadata) over the
   * shared-memory transport whose handshake socket is socketPath (the sidecar's {@code
   * --shm-listen}); the streams (subscribe, serve) stay on gRPC. {@link
   * OutrigClientBuilder#build()} connects at once and fails with {@link UnavailableException}
   * when the socket does not answer.
   *
   * @param socketPath the Unix socket path of the sidecar's shared-memory listener
   * @return this builder
   */
  public OutrigClientBuilder sharedMemory(String socketPath) {
    if (socketPath == null || socketPath.isEmpty()) {
      throw ErrorMapping.invalidArgument("OutrigClientBuilder", "sharedMemory", "path is empty");
    }
    this.shmSocket = socketPath;
    return this;
  }

  /**
   * Sets how long a call over shared memory polls for its reply before its thread sleeps,
   * while it is the client's only call in flight and calls have not overlapped for 10 ms: the
   * sidecar then needs no doorbell to wake the app, which saves thread wake-ups per call. The
   * budget adapts to how fast replies come, and the polling threads yield their CPU between
   * polls. It costs up to a core (two threads polling) while one thread calls back to back;
   * concurrent callers poll at most 20 µs, as before. {@link Duration#ZERO} turns it off (do so
   * under a CPU limit of about a core or less). Default: {@link #DEFAULT_BUSY_POLL}.
   *
   * @param busyPoll the longest poll, zero for none
   * @return this builder
   */
  public OutrigClientBuilder busyPoll(Duration busyPoll) {
    if (busyPoll == null || busyPoll.isNegative()) {
      throw ErrorMapping.invalidArgument(
          "OutrigClientBuilder", "busyPoll", busyPoll + " is negative (zero turns polling off)");
    }
    this.busyPoll = busyPoll;
    return this;
  }

  /**
   * Sends every unary call as its own gRPC call instead of on the sidecar's {@code Multiplex}
   * streams (the default over gRPC; multiplex.proto). Both carry the same messages with the
   * same semantics; the streams cost less per call. Use it to compare, or when a proxy between
   * app and sidecar only passes unary calls. Without shared memory only.
   *
   * @return this builder
   */
  public OutrigClientBuilder unaryRpc() {
    this.unaryRpc = true;
    return this;
  }

  /**
   * Sets the executor that runs subscription and invocation handlers. By default the client
   * owns a cached pool of daemon threads, shut down by {@link OutrigClient#close()}; an
   * executor given here is not shut down by the client.
   *
   * @param executor the executor
   * @return this builder
   */
  public OutrigClientBuilder handlerExecutor(Executor executor) {
    this.handlerExecutor = Objects.requireNonNull(executor, "executor");
    return this;
  }

  /** For tests: where unset values are looked up (instead of System.getenv). */
  OutrigClientBuilder env(Function<String, String> env) {
    this.env = env;
    return this;
  }

  /** For tests: use this channel (e.g. in-process) instead of dialing the address. */
  OutrigClientBuilder channel(ManagedChannel channel) {
    this.channel = channel;
    return this;
  }

  /**
   * Creates the client. It does not wait for the sidecar: the connection is made in the
   * background, and a call made while the sidecar is unreachable fails with {@link
   * UnavailableException}. (With {@link #sharedMemory(String)} the handshake happens here.)
   *
   * @return the client
   * @throws InvalidArgumentException when the address is malformed
   * @throws UnavailableException when the shared-memory socket does not answer
   */
  public OutrigClient build() {
    String addr = address;
    if (addr == null) {
      String v = env.apply(OutrigClient.ENV_ADDRESS);
      addr = v == null || v.isEmpty() ? OutrigClient.DEFAULT_ADDRESS : v;
    }
    String id = appId;
    if (id == null) {
      String v = env.apply(OutrigClient.ENV_APP_ID);
      id = v == null ? "" : v;
    }
    String target = Address.toTarget(addr);
    GrpcTransport grpc =
        channel != null ? GrpcTransport.wrap(channel, id) : GrpcTransport.connect(target, id);
    Transport unary;
    if (shmSocket != null) {
      try {
        unary = ShmTransport.connect(shmSocket, id, grpc, busyPoll.toNanos());
      } catch (RuntimeException e) {
        grpc.close();
        throw e;
      }
    } else {
      unary = unaryRpc ? grpc : new MuxTransport(grpc);
    }
    return new OutrigClient(
        new ClientCore(addr, id, grpc, unary, handlerExecutor), timeout, true);
  }
}
