package dev.outrig.sdk;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptors;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * The gRPC transport: one {@link ManagedChannel} shared by every unary call and every stream
 * of a client. When an app id is set, every call carries the {@code outrig-app-id} header.
 */
final class GrpcTransport implements Transport {
  /** The gRPC metadata key naming the calling app (host mode). */
  static final Metadata.Key<String> APP_ID_HEADER =
      Metadata.Key.of("outrig-app-id", Metadata.ASCII_STRING_MARSHALLER);

  /**
   * grpc-netty sets SO_KEEPALIVE on every client channel; Netty's epoll Unix-domain channel
   * does not know that option and logs a WARNING per connection. Raise that one logger's level
   * (a strong reference keeps the setting alive) so a Unix-socket client stays quiet.
   */
  private static final java.util.logging.Logger NETTY_BOOTSTRAP_LOG =
      java.util.logging.Logger.getLogger(
          "io.grpc.netty.shaded.io.netty.bootstrap.Bootstrap");

  private final ManagedChannel managed;
  private final Channel channel;

  private GrpcTransport(ManagedChannel managed, Channel channel) {
    this.managed = managed;
    this.channel = channel;
  }

  /** Creates the channel for target (see {@link Address}) and starts connecting. */
  static GrpcTransport connect(String target, String appId) {
    if (target.startsWith("unix:") && NETTY_BOOTSTRAP_LOG.getLevel() == null) {
      NETTY_BOOTSTRAP_LOG.setLevel(java.util.logging.Level.SEVERE);
    }
    ManagedChannel mc =
        Grpc.newChannelBuilder(target, InsecureChannelCredentials.create()).build();
    return wrap(mc, appId);
  }

  /** Wraps an existing channel (tests use an in-process one); the transport owns it. */
  static GrpcTransport wrap(ManagedChannel mc, String appId) {
    Channel ch = mc;
    if (appId != null && !appId.isEmpty()) {
      Metadata md = new Metadata();
      md.put(APP_ID_HEADER, appId);
      ch = ClientInterceptors.intercept(mc, MetadataUtils.newAttachHeadersInterceptor(md));
    }
    mc.getState(true); // connect now, so that the first call does not pay for it
    return new GrpcTransport(mc, ch);
  }

  /** The channel to open calls and streams on (carries the app id header). */
  Channel channel() {
    return channel;
  }

  /**
   * Makes the next connection attempt immediately instead of after gRPC's backoff; the stream
   * loops call it before reconnecting to a restarted sidecar.
   */
  void resetConnectBackoff() {
    managed.resetConnectBackoff();
  }

  /**
   * After an UNAVAILABLE call, try to connect again at once: the sidecar is local and may just
   * have restarted, and gRPC's own reconnect backoff (up to two minutes) would otherwise fail
   * every call made meanwhile. Connecting to an absent local socket costs little.
   */
  private void afterFailure(io.grpc.Status st) {
    if (st.getCode() == io.grpc.Status.Code.UNAVAILABLE) {
      managed.resetConnectBackoff();
    }
  }

  static CallOptions options(Duration timeout) {
    CallOptions o = CallOptions.DEFAULT;
    if (timeout != null && !timeout.isZero()) {
      o = o.withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS);
    }
    return o;
  }

  @Override
  public <Q, R> R call(MethodDescriptor<Q, R> method, Q req, Duration timeout) {
    try {
      return ClientCalls.blockingUnaryCall(channel, method, options(timeout), req);
    } catch (StatusRuntimeException e) {
      afterFailure(e.getStatus());
      throw ErrorMapping.fromStatus(method.getBareMethodName(), e.getStatus(), e.getTrailers());
    }
  }

  @Override
  public <Q, R> CompletableFuture<R> callAsync(
      MethodDescriptor<Q, R> method, Q req, Duration timeout) {
    ClientCall<Q, R> call = channel.newCall(method, options(timeout));
    CompletableFuture<R> f = new CompletableFuture<>();
    String op = method.getBareMethodName();
    ClientCalls.asyncUnaryCall(
        call,
        req,
        new StreamObserver<R>() {
          private R value;

          @Override
          public void onNext(R v) {
            value = v;
          }

          @Override
          public void onError(Throwable t) {
            afterFailure(io.grpc.Status.fromThrowable(t));
            f.completeExceptionally(ErrorMapping.fromThrowable(op, t));
          }

          @Override
          public void onCompleted() {
            f.complete(value);
          }
        });
    f.whenComplete(
        (r, t) -> {
          if (f.isCancelled()) {
            call.cancel("cancelled by the caller", null);
          }
        });
    return f;
  }

  @Override
  public void close() {
    managed.shutdown();
    try {
      if (!managed.awaitTermination(2, TimeUnit.SECONDS)) {
        managed.shutdownNow();
        managed.awaitTermination(1, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      managed.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }
}
